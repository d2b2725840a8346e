"""A case made by an older forensic still verifies and replays bit-exact.

`fixtures/legacy/case/` was made once, by the code of commit c856441 (see
`fixtures/legacy/README.md`), and is never regenerated: its point is to be old. Every later
version must accept its journal, signatures, checkpoint, evidence and stored outputs, decode
them to the recorded hashes, and replay every recorded step from the evidence bit for bit.

Only `forensic.verify.verify_case`, `forensic.cli.main` and `forensic.keys` are imported here,
so that the test survives the package's modules being moved.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from forensic import cli
from forensic.keys import fingerprint, load_public_pem
from forensic.verify import verify_case

LEGACY = Path(__file__).resolve().parent.parent / "fixtures" / "legacy"
PUBLIC_PEM = LEGACY / "examiner.pub.pem"
FINGERPRINT = "165c6f91d23ace743920eecd8cd203b7e59046700863072aa7d902fc0b4cfe43"
#: The journal as committed: a changed value means the fixture was regenerated or edited.
JOURNAL_SHA256 = "5640abfbdada5967319f6c9b936d9a30bd1ef1692cbe81d9917203d5edf742ac"
ENTRIES = 12

#: Every step the case records, as (run, step, op), in replay order.
STEPS = [
    ("R1", 1, "denoise_nl_means"),
    ("R1", 2, "levels"),
    ("R1", 3, "unsharp_mask"),
    ("R2", 1, "levels"),
    ("R2", 2, "register_frames"),
    ("R2", 3, "average_frames"),
]
#: Stored outputs: R1's final PNG (a still run) and R2's FFV1 output video (a video run).
STILL_OUTPUT = "derived/2922e815792124a08a7d965aae911aa092e3cbe96702c68f8b87fc83926ef4ca.png"
VIDEO_OUTPUT = "derived/5c03c1940681d5d7e5b92969757c02f31494e0b659aa2c29d26fbdf3015c2d88.mkv"


def _legacy_copy(tmp_path: Path) -> Path:
    """A copy of the legacy case with the modes the case store gives it.

    Git keeps only 0644/0755, so the files the store makes read-only (0444) are made so again:
    `verify` notes a writable evidence file, and the test expects no notes at all.
    """
    root = tmp_path / "case"
    shutil.copytree(LEGACY / "case", root)
    read_only = [root / "case.json", root / "policy.toml"]
    read_only += [p for sub in ("evidence", "derived") for p in (root / sub).iterdir()]
    for path in read_only:
        os.chmod(path, 0o444)
    return root


def _flip_byte(path: Path) -> None:
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    os.chmod(path, 0o444)


@pytest.fixture
def legacy_case(tmp_path: Path) -> Path:
    return _legacy_copy(tmp_path)


def test_fixture_is_the_committed_one() -> None:
    journal = (LEGACY / "case" / "journal.jsonl").read_bytes()
    assert hashlib.sha256(journal).hexdigest() == JOURNAL_SHA256
    assert len(journal.splitlines()) == ENTRIES
    key = load_public_pem(PUBLIC_PEM.read_text("ascii"), where=str(PUBLIC_PEM))
    assert fingerprint(key) == FINGERPRINT


def test_legacy_case_verifies_and_replays_bit_exact(legacy_case: Path) -> None:
    key = load_public_pem(PUBLIC_PEM.read_text("ascii"), where=str(PUBLIC_PEM))
    verdict = verify_case(legacy_case, trusted=[key], pixels=True, replay=True)

    assert verdict.ok, verdict.failure
    assert verdict.failure is None
    # Every check ran and passed: none skipped (nothing failed before it), none with a note
    # (the key is pinned, the read-only modes are restored, no stray or writable file).
    assert [c.number for c in verdict.checks] == list(range(1, len(verdict.checks) + 1))
    assert len(verdict.checks) == 10
    for check in verdict.checks:
        assert check.status == "ok", (check.number, check.name, check.detail)
        assert check.notes == [], (check.number, check.name, check.notes)
    assert verdict.checkpoint is not None
    assert verdict.checkpoint["count"] == ENTRIES

    assert verdict.replay is not None
    assert [(r["run"], r["step"], r["op"]) for r in verdict.replay] == STEPS
    for r in verdict.replay:
        assert r["verdict"] == "bit-exact", r
        assert r["lane"] == "classical", r


@pytest.mark.parametrize("stored", [STILL_OUTPUT, VIDEO_OUTPUT])
def test_one_flipped_byte_in_a_stored_output_fails(legacy_case: Path, stored: str) -> None:
    _flip_byte(legacy_case / stored)
    verdict = verify_case(legacy_case, pixels=True, replay=True)
    assert not verdict.ok
    assert verdict.failure is not None
    assert stored in verdict.failure
    assert "SHA-256" in verdict.failure


def test_cli_verify_replay_exits_0(legacy_case: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["verify", str(legacy_case), "--pixels", "--replay", "--trust", str(PUBLIC_PEM)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "VERIFIED: 12 entries" in out
    for run, step, op in STEPS:
        assert f"run {run} step {step} {op}: bit-exact" in out

    assert cli.main([*argv, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] is True
    assert [r["verdict"] for r in result["replay"]] == ["bit-exact"] * len(STEPS)


def test_cli_verify_fails_on_a_flipped_byte(
    legacy_case: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _flip_byte(legacy_case / STILL_OUTPUT)
    assert cli.main(["verify", str(legacy_case), "--replay"]) == 1
    assert STILL_OUTPUT in capsys.readouterr().err
