"""Property-based fuzzing of the loaders, recipes and policies (see `stress.fuzz`): for any
input, a result or a ForensicError, never another exception, within a bounded time.
Deterministic (derandomized, no example database); `make stress` runs more examples."""

from __future__ import annotations

import pytest

from stress.fuzz import DEFAULT_EXAMPLES, targets

TARGETS = targets(DEFAULT_EXAMPLES)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_fuzz_target_raises_only_forensic_errors(name: str) -> None:
    TARGETS[name]()
