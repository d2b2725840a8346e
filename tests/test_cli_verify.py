"""`forensic verify CASE` prints each check's line once, in order, whenever the verifier
reports it (``progress``: as each check finishes, or only after all of them)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from forensic.case import Case

Run = Callable[..., tuple[int, str, str]]


def test_verify_prints_each_check_once_with_live_progress(
    run_cli: Run, case: Case, media: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import forensic.verify

    assert run_cli("ingest", case.root, media / "camera_noisy.png")[0] == 0
    code, without, err = run_cli("verify", case.root)
    assert code == 0, err
    real = forensic.verify.verify_case
    reported: list[int] = []

    def reporting(*args: Any, progress: Any = None, **kwargs: Any) -> Any:
        verdict = real(*args, **kwargs)
        for check in verdict.checks:
            reported.append(check.number)
            if progress is not None:
                progress(check)
        return verdict

    monkeypatch.setattr(forensic.verify, "verify_case", reporting)
    code, live, err = run_cli("verify", case.root)
    assert code == 0, err
    assert reported
    assert live == without
    code, out, _ = run_cli("verify", case.root, "--json")
    assert code == 0
    assert json.loads(out)["ok"] is True
