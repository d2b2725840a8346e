"""The stress harnesses of issue 15 in their reduced form (`make stress` runs them in full)."""

from __future__ import annotations

import shutil

import pytest

from stress import concurrent, kill, tamper


@pytest.mark.slow
def test_kill_at_each_rename_leaves_every_case_usable() -> None:
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed (make system-deps installs it)")
    result = kill.run(quick=True, log=lambda _line: None)
    assert result["killed"] >= 4, result
    assert result["cases left unusable"] == 0, result["unusable"]
    assert result["originals changed"] == 0
    assert result["exit 70"] == 0
    assert result["hangs"] == 0


@pytest.mark.slow
def test_tampering_is_detected_or_harmless() -> None:
    result = tamper.run(quick=True, log=lambda _line: None)
    assert result["trials"] >= 30
    assert result["undetected changes to anything the record protects"] == 0, result["unexplained"]
    assert result["internal errors (exit 70)"] == [], result["internal errors (exit 70)"]


@pytest.mark.slow
def test_concurrent_writers_are_recorded_once() -> None:
    result = concurrent.run(quick=True)
    assert result["verify"] == "ok"
    assert result["recorded twice"] == 0
    assert result["exhibits recorded"] == result["exhibits expected"]
    assert result["runs recorded"] == result["runs expected"]
    assert result["exit 70"] == 0
    assert result["hangs"] == 0
