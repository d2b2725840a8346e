"""Issue 15: an append interrupted at any of its writes leaves a case that verifies and that the
next writer finishes (journaled); a forged intent, a rolled-back journal, a replaced key copy
and planted files are named by `verify`; broken stored files fail cleanly, never exit 70."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from forensic import api, journal
from forensic.case import Case
from forensic.errors import JournalError
from forensic.ingest import ingest
from forensic.journal import CHECKPOINT_TYPE, ENTRY_TYPE, PENDING_FILE, canonical, seal
from forensic.keys import Signer, public_pem
from forensic.verify import verify_case

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs (no `except Exception` catches it)."""


def _crash_at(monkeypatch: pytest.MonkeyPatch, write_number: int) -> None:
    """Make the journal's ``write_number``-th durable write (1: the intent, 2: the journal,
    3: the checkpoint) complete and then kill the command."""
    calls = {"n": 0}
    real: Callable[..., None] = journal.write_atomic

    def write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
        real(path, data, mode=mode)
        calls["n"] += 1
        if calls["n"] == write_number:
            raise Killed

    monkeypatch.setattr(journal, "write_atomic", write)


def _recover_entries(case: Case) -> list[dict[str, Any]]:
    return [e.payload for e in case.entries() if e.kind == "case.recover"]


@pytest.mark.parametrize(
    ("write_number", "action", "recorded"),
    [(1, "rolled back", False), (2, "completed", True), (3, "cleaned", True)],
)
def test_an_ingest_killed_at_each_write_is_finished_by_the_next_writer(
    case: Case,
    signer: Signer,
    media: Path,
    monkeypatch: pytest.MonkeyPatch,
    write_number: int,
    action: str,
    recorded: bool,
) -> None:
    ingest(case, [media / "camera_noisy.png"], signer=signer, now=NOW)
    with monkeypatch.context() as patch:
        _crash_at(patch, write_number)
        with pytest.raises(Killed):
            ingest(case, [media / "camera_blur_gauss.png"], signer=signer, now=NOW)
    assert (case.root / PENDING_FILE).exists()

    # Before anyone writes: verify passes, and says what happened (not tampering).
    verdict = verify_case(case.root)
    assert verdict.ok, verdict.failure
    notes = " ".join(verdict.checks[3].notes)
    assert "interrupted" in notes or "left behind" in notes
    stored = [x.stored for x in api.exhibits(case)]
    assert len(stored) == (2 if recorded else 1)

    # The next writer finishes it and journals how; the case then verifies with no note.
    ingest(case, [media / "camera_clean.png"], signer=signer, now=LATER)
    assert not (case.root / PENDING_FILE).exists()
    recovered = _recover_entries(case)
    assert [r["action"] for r in recovered] == [action]
    ingest(case, [media / "camera_blur_gauss.png"], signer=signer, now=LATER)
    assert len(api.exhibits(case)) == 3  # the interrupted exhibit recorded exactly once
    verdict = verify_case(case.root)
    assert verdict.ok, verdict.failure
    assert not verdict.checks[3].notes
    assert not any("not recorded" in n for c in verdict.checks for n in c.notes)


def test_a_rolled_back_run_leaves_no_unrecorded_output(
    case: Case, signer: Signer, media: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(case, [media / "camera_noisy.png"], signer=signer, now=NOW)
    recipe = api.load_recipe("dark-noisy")
    with monkeypatch.context() as patch:
        _crash_at(patch, 1)
        with pytest.raises(Killed):
            api.run_recipe(case, "E1", recipe, signer=signer, now=NOW)
    assert any(case.derived_dir.iterdir())  # the run's files were committed before its entries
    result = api.recover_case(case, signer=signer, now=LATER)
    assert result.entry is not None
    assert result.entry.payload["action"] == "rolled back"
    assert result.entry.payload["unrecorded_files"]
    assert not [p for p in case.derived_dir.iterdir() if not p.name.startswith(".tmp-")]
    assert verify_case(case.root).ok
    # Running it again after the roll-back records it once.
    api.run_recipe(case, "E1", recipe, signer=signer, now=LATER)
    assert len(api.runs(case)) == 1
    assert verify_case(case.root).ok


def test_recover_lists_and_removes_temporaries_in_every_case_folder(
    case: Case, signer: Signer
) -> None:
    """A command killed mid-write leaves ``.tmp-`` files; ``recover --remove-temporary`` finds
    them in every folder that atomic writes use, timestamps/ (RFC 3161 tokens) included."""
    left = []
    for folder in ("evidence", "derived", "reports", "keys", "timestamps"):
        (case.root / folder).mkdir(exist_ok=True)
        (case.root / folder / ".tmp-abc123").write_bytes(b"partial")
        (case.root / folder / "kept.txt").write_bytes(b"not a temporary")
        left.append(f"{folder}/.tmp-abc123")
    listed = api.recover_case(case, signer=signer, now=NOW)
    assert sorted(listed.temporaries) == sorted(left)
    assert all((case.root / rel).exists() for rel in left)  # listing removes nothing
    removed = api.recover_case(case, signer=signer, now=NOW, remove_temporaries=True)
    assert removed.removed_temporaries
    assert not any((case.root / rel).exists() for rel in left)
    assert all((case.root / f / "kept.txt").exists() for f in ("evidence", "timestamps"))


def test_recover_with_nothing_interrupted_journals_nothing(case: Case, signer: Signer) -> None:
    before = len(case.entries())
    result = api.recover_case(case, signer=signer, now=NOW)
    assert result.entry is None
    assert len(case.entries()) == before


def test_a_forged_intent_is_tampering_not_an_interruption(
    case: Case, signer: Signer, other_signer: Signer, media: Path
) -> None:
    ingest(case, [media / "camera_noisy.png"], signer=signer, now=NOW)
    # An intent in the right shape, signed by a key the case does not enrol.
    entries = case.entries()
    body = dict(entries[-1].body, seq=len(entries), prev=entries[-1].hash, kind="evidence.ingest")
    body["actor"] = other_signer.fingerprint
    line = seal(ENTRY_TYPE, canonical(body), other_signer)
    cp = {
        "schema": "forensic.checkpoint/1",
        "case_id": case.case_id,
        "count": len(entries) + 1,
        "root": "0" * 64,
        "head": "0" * 64,
        "time": "2026-11-28T09:00:00.000000Z",
        "actor": other_signer.fingerprint,
    }
    (case.root / PENDING_FILE).write_bytes(
        line + b"\n" + seal(CHECKPOINT_TYPE, canonical(cp), other_signer) + b"\n"
    )
    verdict = verify_case(case.root)
    assert not verdict.ok
    assert "journal.pending is not signed by an examiner enrolled" in str(verdict.failure)
    with pytest.raises(JournalError, match="not signed by an examiner enrolled"):
        ingest(case, [media / "camera_blur_gauss.png"], signer=signer, now=LATER)


def test_a_journal_ahead_of_its_checkpoint_without_an_intent_still_fails(
    case: Case, signer: Signer, media: Path
) -> None:
    old_checkpoint = (case.root / "journal.checkpoint").read_bytes()
    ingest(case, [media / "camera_noisy.png"], signer=signer, now=NOW)
    (case.root / "journal.checkpoint").write_bytes(old_checkpoint)
    verdict = verify_case(case.root)
    assert not verdict.ok
    assert "entries were added after it" in str(verdict.failure)


def test_verify_checkpoint_catches_a_rollback(
    case: Case, signer: Signer, media: Path, tmp_path: Path
) -> None:
    saved = {n: (case.root / n).read_bytes() for n in ("journal.jsonl", "journal.checkpoint")}
    ingest(case, [media / "camera_noisy.png"], signer=signer, now=NOW)
    kept = tmp_path / "kept.checkpoint"
    kept.write_bytes((case.root / "journal.checkpoint").read_bytes())
    ingest(case, [media / "camera_blur_gauss.png"], signer=signer, now=LATER)
    verdict = verify_case(case.root, checkpoint=kept)
    assert verdict.ok, verdict.failure
    assert "extends kept.checkpoint" in verdict.checks[3].detail
    # Roll the journal back to the self-consistent state before both ingests.
    for name, data in saved.items():
        (case.root / name).write_bytes(data)
    assert verify_case(case.root).checks[3].status == "ok"  # nothing inside the case tells
    verdict = verify_case(case.root, checkpoint=kept)
    assert not verdict.ok
    assert "does not extend the checkpoint" in str(verdict.failure)
    assert "rolled back" in str(verdict.failure)


def test_verify_checkpoint_refuses_a_fifo(case: Case, tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    verdict = verify_case(case.root, checkpoint=fifo)
    assert not verdict.ok
    assert "not a regular file" in str(verdict.failure)


def test_a_replaced_public_key_copy_fails_and_strays_are_named(
    case: Case, signer: Signer, other_signer: Signer, media: Path
) -> None:
    ingest(case, [media / "camera_noisy.png"], signer=signer, now=NOW)
    (case.root / "reports").mkdir(exist_ok=True)
    (case.root / "reports" / "planted.pdf").write_bytes(b"%PDF-1.7\n")
    (case.root / "notes.txt").write_text("stray")
    (case.root / "keys" / "extra.pem").write_text("stray")
    verdict = verify_case(case.root)
    assert verdict.ok, verdict.failure
    notes = verdict.checks[7].notes
    assert "reports/planted.pdf is not recorded in the journal" in notes
    assert "notes.txt is not recorded in the journal" in notes
    assert "keys/extra.pem is not recorded in the journal" in notes

    copy = case.root / "keys" / f"{signer.fingerprint}.pem"
    original = copy.read_bytes()
    copy.chmod(0o644)
    copy.write_bytes(public_pem(other_signer.public_key).encode())
    verdict = verify_case(case.root)
    assert not verdict.ok
    assert f"keys/{signer.fingerprint}.pem is not the public key enrolled" in str(verdict.failure)
    copy.write_bytes(original[:40])
    assert not verify_case(case.root).ok
    copy.unlink()
    verdict = verify_case(case.root)
    assert verdict.ok
    assert any("is missing" in n for n in verdict.checks[7].notes)


def test_a_manifest_with_a_renamed_key_fails_cleanly(
    case: Case, run_cli: Callable[..., tuple[int, str, str]]
) -> None:
    path = case.root / "case.json"
    manifest = json.loads(path.read_text())
    manifest["case"] = manifest.pop("case_id")
    path.chmod(0o644)
    path.write_text(json.dumps(manifest))
    verdict = verify_case(case.root)
    assert not verdict.ok
    assert "lacks or mistypes 'case_id' (str)" in str(verdict.failure)
    code, _out, err = run_cli("verify", case.root)
    assert code == 1, err
    assert "case_id" in err


def test_verify_pixels_with_a_missing_evidence_file_fails_cleanly(
    case: Case, signer: Signer, media: Path, run_cli: Callable[..., tuple[int, str, str]]
) -> None:
    ingest(case, [media / "camera_noisy.png"], signer=signer, now=NOW)
    stored = case.root / api.exhibits(case)[0].stored
    stored.unlink()
    code, _out, err = run_cli("verify", case.root, "--pixels")
    assert code == 1, err
    assert "missing" in err
    assert "internal error" not in err.lower()


def test_verify_pixels_with_a_damaged_stored_video_fails_cleanly(
    case: Case, signer: Signer, media: Path, run_cli: Callable[..., tuple[int, str, str]]
) -> None:
    ingest(case, [media / "cctv.mp4"], signer=signer, now=NOW)
    api.run_recipe(
        case,
        "E1",
        _frames_recipe(),
        signer=signer,
        now=NOW,
    )
    videos = sorted(case.derived_dir.glob("*.mkv"))
    assert videos
    target = videos[0]
    data = bytearray(target.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    target.chmod(0o644)
    target.write_bytes(bytes(data))
    code, _out, err = run_cli("verify", case.root, "--pixels")
    assert code == 1, err
    assert "no longer matches its recorded SHA-256" in err
    assert "internal error" not in err.lower()


def _frames_recipe() -> Any:
    from forensic.recipe import parse_recipe

    return parse_recipe(
        b'[[steps]]\nop = "invert"\nframes = [0, 3]\n',
        where="test recipe",
    )
