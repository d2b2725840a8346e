"""`verify` catches every kind of tampering, and names what broke."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest

from forensic.case import Case
from forensic.ingest import ingest
from forensic.journal import CHECKPOINT_FILE, ENTRY_TYPE, JOURNAL_FILE, canonical, pae, seal
from forensic.keys import Signer
from forensic.verify import Verdict, verify_case
from tests.conftest import NOW


@pytest.fixture
def full_case(case: Case, signer: Signer, media: Path) -> Case:
    ingest(case, [media / "camera_noisy.png", media / "cctv.mp4"], signer=signer, now=NOW)
    assert verify_case(case.root).ok
    return case


def _lines(case: Case) -> list[bytes]:
    return (case.root / JOURNAL_FILE).read_bytes().splitlines()


def _write_lines(case: Case, lines: list[bytes]) -> None:
    (case.root / JOURNAL_FILE).write_bytes(b"".join(line + b"\n" for line in lines))


def _failed(case: Case) -> Verdict:
    verdict = verify_case(case.root)
    assert not verdict.ok
    assert verdict.failure
    return verdict


def _rewrite_body(line: bytes, change: Any) -> bytes:
    """Edit an entry's body and re-encode it canonically, keeping the old signature."""
    env = json.loads(line)
    body = json.loads(base64.b64decode(env["payload"]))
    change(body)
    env["payload"] = base64.b64encode(canonical(body)).decode()
    return canonical(env)


def test_round_trip_via_cli(run_cli, tmp_path: Path, media: Path, key_dir: Path) -> None:
    case_dir = tmp_path / "c"
    assert run_cli("case", "init", case_dir, "--case-id", "RT-1", "--title", "Round trip")[0] == 0
    code, out, err = run_cli("ingest", case_dir, media / "astronaut16.png", media / "cctv.mp4")
    assert code == 0, err
    assert "E1" in out
    assert "E2" in out
    code, out, _ = run_cli("verify", case_dir, "--pixels", "--trust", key_dir / "examiner.pub.pem")
    assert code == 0
    assert "VERIFIED" in out
    assert [line.split(".")[0] for line in out.splitlines() if line[:1].isdigit()] == [
        str(i)
        for i in range(1, 10)  # 8 checks, plus decoding with --pixels
    ]
    code, out, _ = run_cli("verify", case_dir, "--json")
    doc = json.loads(out)
    assert code == 0
    assert doc["ok"]
    assert doc["checkpoint"]["count"] == 3


def test_flipped_byte_in_evidence(full_case: Case) -> None:
    stored = next(p for p in full_case.evidence_dir.iterdir() if p.suffix == ".mp4")
    os.chmod(stored, 0o644)
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    stored.write_bytes(bytes(data))
    verdict = _failed(full_case)
    assert "exhibit E2 (cctv.mp4)" in verdict.failure
    assert "altered" in verdict.failure
    assert verdict.checks[5].status == "FAILED"


def test_missing_evidence_file(full_case: Case) -> None:
    stored = next(p for p in full_case.evidence_dir.iterdir() if p.suffix == ".png")
    stored.unlink()
    assert "missing" in _failed(full_case).failure


def _all_fields(body: dict[str, Any]) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for key, value in body.items():
        if isinstance(value, dict) and value:
            paths.extend((key, *sub) for sub in _all_fields(value))
        else:
            paths.append((key,))
    return paths


def _mutate(body: dict[str, Any], path: tuple[str, ...]) -> None:
    target = body
    for key in path[:-1]:
        target = target[key]
    old = target[path[-1]]
    if isinstance(old, bool):
        target[path[-1]] = not old
    elif isinstance(old, int):
        target[path[-1]] = old + 1
    elif isinstance(old, str):
        target[path[-1]] = old + "x"
    elif isinstance(old, list):
        target[path[-1]] = [*old, "x"]
    else:
        target[path[-1]] = "x"


def test_any_field_of_any_line_edited(full_case: Case) -> None:
    original = _lines(full_case)
    tried = 0
    for index, line in enumerate(original):
        body = json.loads(base64.b64decode(json.loads(line)["payload"]))
        for path in _all_fields(body):
            lines = list(original)
            lines[index] = _rewrite_body(line, lambda b, p=path: _mutate(b, p))
            _write_lines(full_case, lines)
            verdict = _failed(full_case)
            assert f"journal line {index + 1}" in verdict.failure, (path, verdict.failure)
            tried += 1
    assert tried > 40


@pytest.mark.parametrize("field", ["payloadType", "keyid", "sig"])
def test_envelope_fields_edited(full_case: Case, field: str) -> None:
    lines = _lines(full_case)
    env = json.loads(lines[1])
    if field == "payloadType":
        env["payloadType"] = "application/json"
    elif field == "keyid":
        env["signatures"][0]["keyid"] = "0" * 64
    else:
        sig = bytearray(base64.b64decode(env["signatures"][0]["sig"]))
        sig[0] ^= 1
        env["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    lines[1] = canonical(env)
    _write_lines(full_case, lines)
    assert "journal line 2" in _failed(full_case).failure


def test_line_deleted(full_case: Case) -> None:
    lines = _lines(full_case)
    _write_lines(full_case, [lines[0], lines[2]])
    failure = _failed(full_case).failure
    assert "journal line 2" in failure
    assert "deleted, inserted or moved" in failure


def test_first_line_deleted(full_case: Case) -> None:
    _write_lines(full_case, _lines(full_case)[1:])
    assert "case.open" in _failed(full_case).failure


def test_two_lines_swapped(full_case: Case) -> None:
    lines = _lines(full_case)
    _write_lines(full_case, [lines[0], lines[2], lines[1]])
    assert "deleted, inserted or moved" in _failed(full_case).failure


def test_last_line_cut_off(full_case: Case) -> None:
    _write_lines(full_case, _lines(full_case)[:-1])
    failure = _failed(full_case).failure
    assert "checkpoint records 3" in failure
    assert "missing from the end" in failure


def test_last_line_cut_in_half(full_case: Case) -> None:
    data = (full_case.root / JOURNAL_FILE).read_bytes()
    (full_case.root / JOURNAL_FILE).write_bytes(data[: len(data) - 200])
    assert "cut off" in _failed(full_case).failure


def test_checkpoint_removed_or_edited(full_case: Case) -> None:
    cp = full_case.root / CHECKPOINT_FILE
    text = cp.read_bytes()
    cp.unlink()
    assert "checkpoint" in _failed(full_case).failure
    env = json.loads(text)
    body = json.loads(base64.b64decode(env["payload"]))
    body["count"] = 2
    env["payload"] = base64.b64encode(canonical(body)).decode()
    cp.write_bytes(canonical(env) + b"\n")
    assert "checkpoint's signature" in _failed(full_case).failure


def test_policy_file_replaced(full_case: Case) -> None:
    policy = full_case.root / "policy.toml"
    os.chmod(policy, 0o644)
    policy.write_text(
        policy.read_text().replace('lanes = ["classical"]', 'lanes = ["classical", "generative"]')
    )
    failure = _failed(full_case).failure
    assert "policy.toml" in failure
    assert "replaced or edited" in failure


def test_manifest_edited(full_case: Case) -> None:
    manifest = full_case.root / "case.json"
    os.chmod(manifest, 0o644)
    manifest.write_text(manifest.read_text().replace("Test case", "Another title"))
    assert "case.json" in _failed(full_case).failure


def test_entry_resigned_with_another_key(full_case: Case, other_signer: Signer) -> None:
    lines = _lines(full_case)
    payload = base64.b64decode(json.loads(lines[1])["payload"])
    lines[1] = seal(ENTRY_TYPE, payload, other_signer)
    _write_lines(full_case, lines)
    failure = _failed(full_case).failure
    assert "journal line 2" in failure
    assert "not enrolled" in failure


def test_entry_resigned_with_another_key_and_actor(full_case: Case, other_signer: Signer) -> None:
    lines = _lines(full_case)
    env = json.loads(lines[2])
    body = json.loads(base64.b64decode(env["payload"]))
    body["actor"] = other_signer.fingerprint
    lines[2] = seal(ENTRY_TYPE, canonical(body), other_signer)
    _write_lines(full_case, lines)
    assert "not enrolled" in _failed(full_case).failure


def test_whole_case_forged_with_another_key_needs_trust(
    full_case: Case, other_signer: Signer, key_dir: Path, run_cli
) -> None:
    # An attacker re-signs every entry and the checkpoint with their own key, rewriting the
    # enrolment too. Only pinning the examiner's real key (--trust) can catch that.
    from forensic.case import examiner_record

    lines = _lines(full_case)
    forged, prev = [], "0" * 64
    for line in lines:
        body = json.loads(base64.b64decode(json.loads(line)["payload"]))
        body["actor"], body["prev"] = other_signer.fingerprint, prev
        if body["kind"] == "case.open":
            body["payload"]["examiner"] = examiner_record(other_signer)
        raw = canonical(body)
        forged.append(seal(ENTRY_TYPE, raw, other_signer))
        prev = __import__("hashlib").sha256(raw).hexdigest()
    _write_lines(full_case, forged)
    from forensic.journal import CHECKPOINT_TYPE, entries_root, read_entries

    entries = read_entries(full_case.root)
    cp = {
        "schema": "forensic.checkpoint/1",
        "case_id": "T-001",
        "count": len(entries),
        "root": entries_root(entries),
        "head": entries[-1].hash,
        "time": "2026-11-24T10:00:00.000000Z",
        "actor": other_signer.fingerprint,
    }
    (full_case.root / CHECKPOINT_FILE).write_bytes(
        seal(CHECKPOINT_TYPE, canonical(cp), other_signer) + b"\n"
    )
    assert verify_case(full_case.root).ok  # self-consistent...
    code, _, err = run_cli("verify", full_case.root, "--trust", key_dir / "examiner.pub.pem")
    assert code == 1
    assert "not one of the --trust keys" in err


def test_cli_failure_is_one_sentence_and_exit_1(full_case: Case, run_cli) -> None:
    _write_lines(full_case, _lines(full_case)[:-1])
    code, out, err = run_cli("verify", full_case.root)
    assert code == 1
    assert err.startswith("error: Verification failed: the journal has 2 entries")
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in out + err
    assert "4. signed checkpoint covers the whole journal: FAILED" in out
    code, out, _ = run_cli("verify", full_case.root, "--json")
    doc = json.loads(out)
    assert code == 1
    assert doc["ok"] is False
    assert "checkpoint" in doc["failure"]


def test_pae_is_dsse_v1() -> None:
    assert pae("t/x", b"hello") == b"DSSEv1 3 t/x 5 hello"
