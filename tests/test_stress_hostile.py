"""The hostile-input harness in quick mode (``python -m stress --quick``; ``make stress`` runs
the full set): no exit 70, no hang, no traceback, originals unchanged, the case verifies."""

from __future__ import annotations

import pytest

from stress import hostile


@pytest.mark.slow
def test_hostile_inputs_quick() -> None:
    counts = hostile.run(True, log=lambda _text: None)
    details = hostile.run.details  # type: ignore[attr-defined]
    assert counts["inputs"] >= 15
    for failure in ("exit_70", "hangs", "tracebacks", "other_exits", "originals_changed"):
        assert counts[failure] == 0, (failure, details["outcomes"])
    assert counts["refusals_not_naming_file"] == 0, details["refusals_not_naming_file"]
    assert counts["unexpected"] == 0, details["unexpected"]
    assert counts["case_unusable"] == 0, details["verify"]
    assert counts["accepted_with_warning"] >= 1  # the concealed JPEG damage
    assert counts["refused"] >= 12
