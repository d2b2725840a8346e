"""Key lifecycle: rotation (signed by the old key and the new) and revocation (with an effective
time that may precede the entry), judged by `verify` and enforced by the writer."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from forensic.case import Case, enrol_examiner, revoke_key, rotate_key
from forensic.errors import CaseError, InputError
from forensic.journal import JOURNAL_FILE, canonical, enrolled_keys, open_writer, read_entries
from forensic.keyring import ROTATION_TYPE, read_keyring
from forensic.keys import Signer, create_key, public_pem, unlock
from forensic.store import KEYS_DIR
from forensic.verify import FAIL, verify_case
from tests.conftest import NOW, Run

NEW_PASSPHRASE = "the-new-key-passphrase"
HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def new_key_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("newkey") / "new"
    with pytest.MonkeyPatch.context() as fast:
        # The KDF is tested in test_keys; here only the key matters.
        fast.setattr("forensic.keys.SCRYPT_N", 2**10)
        create_key(folder, name="Test Examiner", passphrase=NEW_PASSPHRASE, now=NOW)
    return folder


@pytest.fixture(scope="module")
def new_signer(new_key_dir: Path) -> Signer:
    return unlock(new_key_dir, NEW_PASSPHRASE)


def _enrol(case: Case, who: Signer, *, signer: Signer, at: int) -> None:
    """Any ordinary entry, signed by ``signer`` at NOW + ``at`` hours."""
    enrol_examiner(
        case, public_pem(who.public_key), name=who.name, signer=signer, now=NOW + at * HOUR
    )


def _failure(case: Case) -> str:
    verdict = verify_case(case.root)
    assert not verdict.ok
    assert verdict.checks[1].status == FAIL, "the lifecycle is judged by check 2"
    return verdict.failure or ""


def test_rotation_verifies_and_the_new_key_signs_for_the_examiner(
    case: Case, signer: Signer, new_signer: Signer, other_signer: Signer
) -> None:
    entry = rotate_key(case, signer, new_signer, now=NOW + HOUR)
    assert entry.kind == "key.rotate"
    assert entry.actor == signer.fingerprint
    assert entry.payload["replaces"] == signer.fingerprint
    assert entry.payload["examiner"]["fingerprint"] == new_signer.fingerprint
    assert (case.root / KEYS_DIR / f"{new_signer.fingerprint}.pem").exists()
    assert new_signer.fingerprint in enrolled_keys(read_entries(case.root))
    _enrol(case, other_signer, signer=new_signer, at=2)
    verdict = verify_case(case.root)
    assert verdict.ok, verdict.failure
    assert "3 examiner key(s)" in verdict.checks[1].detail
    # The writer refuses the replaced key, naming its successor.
    with pytest.raises(CaseError, match="was replaced") as info:
        revoke_key(
            case, other_signer.fingerprint, reason="x", effective=None, signer=signer, now=NOW
        )
    assert new_signer.fingerprint[:16] in info.value.message
    with pytest.raises(InputError, match="already enrolled"):
        rotate_key(case, new_signer, other_signer, now=NOW + 3 * HOUR)


def test_an_entry_signed_by_the_old_key_after_rotation_fails(
    case: Case, signer: Signer, new_signer: Signer, other_signer: Signer
) -> None:
    rotate_key(case, signer, new_signer, now=NOW + HOUR)
    # Bypass the case's writer (which refuses the old key), as someone holding it could.
    with open_writer(case.root, case.case_id, signer) as writer:
        writer.append("case.examiner.add", _add_payload(other_signer), now=NOW + 2 * HOUR)
    failure = _failure(case)
    assert "journal line 3 (case.examiner.add)" in failure
    assert f"key {signer.fingerprint[:16]}" in failure
    assert "replaced by" in failure
    assert new_signer.fingerprint[:16] in failure
    assert "journal line 2 (key.rotate)" in failure


def _add_payload(who: Signer) -> dict[str, str]:
    return {
        "name": who.name,
        "fingerprint": who.fingerprint,
        "public_key": public_pem(who.public_key),
    }


def _rewrite_line(case: Case, line_no: int, edit: object) -> None:
    """Change line ``line_no``'s entry payload with ``edit`` and re-encode it, unsigned."""
    path = case.root / JOURNAL_FILE
    lines = path.read_bytes().splitlines()
    envelope = json.loads(lines[line_no - 1])
    body = json.loads(base64.b64decode(envelope["payload"]))
    edit(body["payload"])  # type: ignore[operator]
    envelope["payload"] = base64.b64encode(canonical(body)).decode()
    lines[line_no - 1] = canonical(envelope)
    path.write_bytes(b"\n".join(lines) + b"\n")


def test_a_rotation_without_the_new_keys_signature_fails(
    case: Case, signer: Signer, new_signer: Signer, other_signer: Signer
) -> None:
    from forensic.keyring import rotation_payload

    with open_writer(case.root, case.case_id, signer) as writer:
        # A rotation whose "new key" signature was made by another key: the old key signs the
        # entry, but the named new key never agreed.
        payload = rotation_payload(
            case_id=case.case_id,
            seq=1,
            prev=writer.entries[-1].hash,
            time="2026-11-24T10:30:00.000000Z",
            old=signer,
            new=other_signer,
        )
        payload["examiner"] = {
            "name": new_signer.name,
            "fingerprint": new_signer.fingerprint,
            "public_key": public_pem(new_signer.public_key),
        }
        writer.append("key.rotate", payload, now=NOW + HOUR)
    failure = _failure(case)
    assert "journal line 2 (key.rotate)" in failure
    assert "signature over the rotation does not verify" in failure
    assert ROTATION_TYPE.startswith("application/")


def test_a_rotation_replayed_at_another_place_fails(
    case: Case, signer: Signer, new_signer: Signer, other_signer: Signer
) -> None:
    from forensic.keyring import rotation_payload

    _enrol(case, other_signer, signer=signer, at=1)
    with open_writer(case.root, case.case_id, signer) as writer:
        entries = writer.entries
        # The new key's signature made for position 1 (after case.open), used at position 2.
        payload = rotation_payload(
            case_id=case.case_id,
            seq=1,
            prev=entries[0].hash,
            time="2026-11-24T11:30:00.000000Z",
            old=signer,
            new=new_signer,
        )
        writer.append("key.rotate", payload, now=NOW + 2 * HOUR)
    assert "signature over the rotation does not verify" in _failure(case)


def test_revocation_with_a_past_effective_time_fails_later_entries(
    case: Case, signer: Signer, other_signer: Signer, new_signer: Signer
) -> None:
    _enrol(case, other_signer, signer=signer, at=1)  # line 2
    _enrol(case, new_signer, signer=other_signer, at=3)  # line 3: made after the compromise
    assert verify_case(case.root).ok
    # Line 4: the lab revokes Other Person's key from NOW + 2h (before line 3 was signed).
    revoke_key(
        case,
        other_signer.fingerprint[:12],
        reason="laptop stolen",
        effective=NOW + 2 * HOUR,
        signer=signer,
        now=NOW + 5 * HOUR,
    )
    ring = read_keyring(read_entries(case.root))
    revocation = ring.revocation(other_signer.fingerprint)
    assert revocation is not None
    assert revocation.line == 4
    failure = _failure(case)
    assert "journal line 3 (case.examiner.add)" in failure
    assert f"key {other_signer.fingerprint[:16]}… (Other Person)" in failure
    assert "at 2026-11-24T12:30:00.000000Z" in failure
    assert "revocation at journal line 4 (key.revoke, effective 2026-11-24T11:30:00.000000Z" in (
        failure
    )
    assert "laptop stolen" in failure
    # The writer refuses the revoked key.
    with pytest.raises(CaseError, match="is revoked"):
        revoke_key(
            case, signer.fingerprint, reason="x", effective=None, signer=other_signer, now=NOW
        )


def test_entries_before_the_effective_time_stay_valid_and_backdating_does_not_help(
    case: Case, signer: Signer, other_signer: Signer, new_signer: Signer
) -> None:
    _enrol(case, other_signer, signer=signer, at=1)  # line 2
    _enrol(case, new_signer, signer=other_signer, at=2)  # line 3: before the compromise
    revoke_key(
        case,
        other_signer.fingerprint,
        reason="key file copied",
        effective=NOW + 3 * HOUR,
        signer=other_signer,  # an examiner may revoke their own key
        now=NOW + 4 * HOUR,
    )
    verdict = verify_case(case.root)
    assert verdict.ok, verdict.failure
    # Someone holding the revoked key appends an entry claiming a time before the revocation.
    with open_writer(case.root, case.case_id, other_signer) as writer:
        writer.append(
            "cosign",
            {"entry": "0" * 64, "run": "R1", "step": 1, "op": "x", "statement": "s"},
            now=NOW + 2 * HOUR,
        )
    failure = _failure(case)
    assert "journal line 5 (cosign)" in failure
    assert "comes later in the journal, whatever time it claims" in failure
    assert "revocation at journal line 4" in failure


def test_tampered_revocations_fail(case: Case, signer: Signer, other_signer: Signer) -> None:
    _enrol(case, other_signer, signer=signer, at=1)
    revoke_key(
        case,
        other_signer.fingerprint,
        reason="left the lab",
        effective=NOW + 2 * HOUR,
        signer=signer,
        now=NOW + 3 * HOUR,
    )
    assert verify_case(case.root).ok

    def later(payload: dict[str, str]) -> None:
        payload["effective"] = "2026-11-24T13:30:00.000000Z"

    _rewrite_line(case, 3, later)
    failure = _failure(case)
    assert "journal line 3 (key.revoke)" in failure
    assert "signature does not verify" in failure


def test_malformed_revocations_signed_by_a_valid_key_fail(
    case: Case, signer: Signer, other_signer: Signer
) -> None:
    with open_writer(case.root, case.case_id, signer) as writer:
        writer.append(
            "key.revoke",
            {
                "fingerprint": other_signer.fingerprint,
                "name": "?",
                "effective": "2026-11-24T09:00:00.000000Z",
                "reason": "never enrolled",
            },
            now=NOW + HOUR,
        )
    assert "is not enrolled in the case" in _failure(case)


def test_a_revocation_taking_effect_after_its_entry_fails(case: Case, signer: Signer) -> None:
    with open_writer(case.root, case.case_id, signer) as writer:
        writer.append(
            "key.revoke",
            {
                "fingerprint": signer.fingerprint,
                "name": "Test Examiner",
                "effective": "2026-12-24T09:00:00.000000Z",
                "reason": "scheduled",
            },
            now=NOW + HOUR,
        )
    failure = _failure(case)
    assert "journal line 2 (key.revoke)" in failure
    assert "after the entry's own time" in failure


def test_revoke_key_refuses_bad_requests(case: Case, signer: Signer, other_signer: Signer) -> None:
    with pytest.raises(InputError, match="no key enrolled"):
        revoke_key(
            case, other_signer.fingerprint, reason="x", effective=None, signer=signer, now=NOW
        )
    with pytest.raises(InputError, match="not a key fingerprint"):
        revoke_key(case, "xyz", reason="x", effective=None, signer=signer, now=NOW)
    with pytest.raises(InputError, match="in the future"):
        revoke_key(
            case, signer.fingerprint, reason="x", effective=NOW + HOUR, signer=signer, now=NOW
        )
    with pytest.raises(InputError, match="--reason"):
        revoke_key(case, signer.fingerprint, reason="  ", effective=None, signer=signer, now=NOW)
    revoke_key(case, signer.fingerprint, reason="done", effective=None, signer=signer, now=NOW)
    assert len(read_entries(case.root)) == 2


def test_cli_rotate_and_revoke(
    run_cli: Run,
    case: Case,
    new_key_dir: Path,
    new_signer: Signer,
    signer: Signer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, _, err = run_cli("keys", "rotate", case.root, "--new-key-dir", new_key_dir)
    assert code == 2
    assert "FORENSIC_NEW_PASSPHRASE" in err
    assert "Traceback" not in err
    monkeypatch.setenv("FORENSIC_NEW_PASSPHRASE", NEW_PASSPHRASE)
    code, out, err = run_cli("keys", "rotate", case.root, "--new-key-dir", new_key_dir)
    assert code == 0, err
    assert new_signer.fingerprint in out
    code, _, err = run_cli("verify", case.root)
    assert code == 0, err
    code, out, err = run_cli("case", "show", case.root)
    assert code == 0, err
    assert f"replaced by {new_signer.fingerprint[:16]}" in out
    # The old key (the session's default --key-dir) is refused from now on.
    code, _, err = run_cli("case", "revoke-key", case.root, signer.fingerprint, "--reason", "x")
    assert code == 2
    assert "was replaced" in err
    assert "Traceback" not in err
    monkeypatch.setenv("FORENSIC_PASSPHRASE", NEW_PASSPHRASE)
    for bad, message in (
        (["--effective", "yesterday"], "is not a time"),
        (["--effective", "2026-11-24T09:00:00"], "has no time zone"),
        (["--effective", "2999-01-01T00:00:00Z"], "in the future"),
    ):
        args = ["case", "revoke-key", case.root, signer.fingerprint, "--reason", "x", *bad]
        code, _, err = run_cli(*args, "--key-dir", new_key_dir)
        assert code == 2, err
        assert message in err
        assert "Traceback" not in err
    code, _, err = run_cli(
        "case",
        "revoke-key",
        case.root,
        "deadbeefdeadbeef",
        "--reason",
        "x",
        "--key-dir",
        new_key_dir,
    )
    assert code == 2
    assert "no key enrolled" in err
    # Revoke the old key from before the rotation: the rotation it signed now fails verify.
    code, out, err = run_cli(
        "case",
        "revoke-key",
        case.root,
        signer.fingerprint[:8],
        "--reason",
        "compromised",
        "--effective",
        "2026-11-24T09:00:00+00:00",
        "--key-dir",
        new_key_dir,
    )
    assert code == 0, err
    assert "Revoked key" in out
    code, out, err = run_cli("case", "show", case.root, "--json")
    assert code == 0, err
    statuses = {k["fingerprint"]: k for k in json.loads(out)["keys"]}
    old = statuses[signer.fingerprint]
    assert old["status"] == "revoked"
    assert old["reason"] == "compromised"
    assert old["replaced_by"] == new_signer.fingerprint
    assert statuses[new_signer.fingerprint]["status"] == "active"
    code, out, err = run_cli("verify", case.root)
    assert code == 1
    # The key was compromised before the case was opened: its case.open entry fails first.
    assert "journal line 1 (case.open)" in err + out
    assert "compromised" in err + out


def test_after_rotation_the_new_key_binds_a_report_certificate(
    case: Case,
    signer: Signer,
    new_signer: Signer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from forensic.pki import bind, check_binding, init_pki

    monkeypatch.setattr("forensic.keys.SCRYPT_N", 2**10)  # the PKI's KDF is tested elsewhere
    rotate_key(case, signer, new_signer, now=NOW + HOUR)
    made = init_pki(tmp_path, new_signer, passphrase=NEW_PASSPHRASE, lab="Lab", now=NOW)
    entry = bind(case, new_signer, made, now=NOW + 2 * HOUR)
    assert entry.actor == new_signer.fingerprint
    assert "CN=Test Examiner" in check_binding(entry)["subject"]
    verdict = verify_case(case.root)
    assert verdict.ok, verdict.failure
    # The old key's certificate cannot be bound any more: the writer refuses the old key.
    old_pki = tmp_path / "old"
    old_pki.mkdir()
    with pytest.raises(CaseError, match="was replaced"):
        bind(case, signer, init_pki(old_pki, signer, passphrase="x" * 8, lab="L", now=NOW), now=NOW)


def test_the_reports_custody_table_describes_rotations_and_revocations(
    case: Case, signer: Signer, new_signer: Signer
) -> None:
    from forensic.report.back import describe

    rotation = rotate_key(case, signer, new_signer, now=NOW + HOUR)
    revocation = revoke_key(
        case,
        signer.fingerprint,
        reason="retired",
        effective=None,
        signer=new_signer,
        now=NOW + 2 * HOUR,
    )
    assert describe(rotation) == (
        f"key {signer.fingerprint[:16]}… replaced by {new_signer.fingerprint[:16]}… (Test Examiner)"
    )
    assert describe(revocation) == (
        f"key {signer.fingerprint[:16]}… (Test Examiner) revoked from "
        "2026-11-24T11:30:00.000000Z: retired"
    )
    assert verify_case(case.root).ok
