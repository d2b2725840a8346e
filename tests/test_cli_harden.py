"""Bad input an examiner can give the CLI, found by a sweep of every command (harden): each
gives a clear error naming the bad thing and a non-zero exit, never an internal error (70)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from forensic.case import Case

INTERNAL = 70


def _png(path: Path, shape: tuple[int, ...] = (48, 64, 3)) -> Path:
    pixels = np.random.default_rng(7).integers(0, 256, shape, dtype=np.uint8)
    assert cv2.imwrite(str(path), pixels)
    return path


def test_a_case_whose_lock_cannot_be_opened_is_refused_not_a_crash(
    run_cli, case: Case, tmp_path: Path
) -> None:
    # As on a read-only file system: the lock file cannot be opened for writing (a folder
    # in its place fails the same way for root, whom permissions do not stop).
    lock = case.root / ".lock"
    lock.unlink(missing_ok=True)
    lock.mkdir()
    journal = (case.root / "journal.jsonl").read_bytes()
    code, _, err = run_cli("ingest", case.root, _png(tmp_path / "still.png"))
    assert code == 2, err
    assert "cannot be written" in err
    assert ".lock" in err
    assert (case.root / "journal.jsonl").read_bytes() == journal
