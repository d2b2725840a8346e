from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from forensic import fsutil
from forensic.case import Case, enrolled_keys
from forensic.errors import CaseError, JournalError
from forensic.hashing import merkle_root
from forensic.journal import CHECKPOINT_FILE, ENTRY_TYPE, JOURNAL_FILE, canonical, pae, read_entries
from forensic.keys import Signer
from forensic.verify import verify_case
from tests.conftest import NOW, PASSPHRASE


def _leaf(d: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + d).digest()


def _node(a: bytes, b: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + a + b).digest()


def test_merkle_root_follows_rfc9162() -> None:
    d = [hashlib.sha256(bytes([i])).digest() for i in range(5)]
    assert merkle_root([]) == hashlib.sha256(b"").hexdigest()
    assert merkle_root(d[:1]) == _leaf(d[0]).hex()
    assert merkle_root(d[:2]) == _node(_leaf(d[0]), _leaf(d[1])).hex()
    # n = 3 splits 2 + 1; n = 5 splits 4 + 1.
    assert merkle_root(d[:3]) == _node(_node(_leaf(d[0]), _leaf(d[1])), _leaf(d[2])).hex()
    four = _node(_node(_leaf(d[0]), _leaf(d[1])), _node(_leaf(d[2]), _leaf(d[3])))
    assert merkle_root(d) == _node(four, _leaf(d[4])).hex()


def _mth_recursive(d: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.1 as written: split at the largest power of two below n."""
    if len(d) == 1:
        return _leaf(d[0])
    k = 1
    while k * 2 < len(d):
        k *= 2
    return _node(_mth_recursive(d[:k]), _mth_recursive(d[k:]))


def test_the_incremental_merkle_tree_gives_rfc9162_roots_at_every_size() -> None:
    """`MerkleTree` (leaf by leaf, O(log n) memory; what a video run uses) against the
    recursive definition, after each of 300 leaves (every carry pattern up to 2^8 + 44)."""
    from forensic.hashing import MerkleTree

    d = [hashlib.sha256(i.to_bytes(2, "big")).digest() for i in range(300)]
    tree = MerkleTree()
    for n in range(1, len(d) + 1):
        tree.add(d[n - 1])
        assert tree.count == n
        assert tree.root() == _mth_recursive(d[:n]).hex(), n
    assert merkle_root(iter(d)) == tree.root()


def test_entries_are_canonical_chained_and_complete(case: Case, signer: Signer) -> None:
    entries = case.entries()
    assert [e.kind for e in entries] == ["case.open"]
    body = entries[0].body
    assert body["seq"] == 0
    assert body["prev"] == "0" * 64
    assert body["time"] == "2026-11-24T09:30:00.000000Z"
    assert body["actor"] == signer.fingerprint
    assert {"numpy", "opencv-python-headless", "scikit-image", "av"} <= set(body["versions"])
    assert body["tool"]["name"] == "forensic"
    line = (case.root / JOURNAL_FILE).read_bytes().splitlines()[0]
    assert canonical(json.loads(line)) == line


def test_journal_signature_verifies_with_openssl(case: Case, key_dir: Path, tmp_path: Path) -> None:
    """A third-party tool checks our signature from the spec alone (docs/spec.md)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed")
    env = json.loads((case.root / JOURNAL_FILE).read_bytes().splitlines()[0])
    payload = base64.b64decode(env["payload"])
    (tmp_path / "pae.bin").write_bytes(pae(ENTRY_TYPE, payload))
    (tmp_path / "sig.bin").write_bytes(base64.b64decode(env["signatures"][0]["sig"]))
    pem = case.root / "keys" / f"{env['signatures'][0]['keyid']}.pem"
    cmd = [
        openssl,
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        str(pem),
        "-rawin",
        "-in",
        str(tmp_path / "pae.bin"),
        "-sigfile",
        str(tmp_path / "sig.bin"),
    ]
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    (tmp_path / "pae.bin").write_bytes(pae(ENTRY_TYPE, payload.replace(b"T-001", b"T-002")))
    assert subprocess.run(cmd, capture_output=True).returncode != 0


def test_append_is_atomic_when_the_write_fails(
    case: Case, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = (case.root / JOURNAL_FILE).read_bytes()
    cp_before = (case.root / CHECKPOINT_FILE).read_bytes()

    def boom(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fsutil.os, "replace", boom)
    with pytest.raises(OSError, match="No space left"), case.writer(signer) as w:
        w.append("test.note", {"x": 1}, now=NOW)
    monkeypatch.undo()
    assert (case.root / JOURNAL_FILE).read_bytes() == before
    assert (case.root / CHECKPOINT_FILE).read_bytes() == cp_before
    assert not [p for p in case.root.iterdir() if p.name.startswith(".tmp-")]
    verify_case(case.root).raise_for_failure()


def test_writer_refuses_a_journal_that_disagrees_with_its_checkpoint(
    case: Case, signer: Signer
) -> None:
    with case.writer(signer) as w:
        w.append("test.note", {"n": 1}, now=NOW)
    path = case.root / JOURNAL_FILE
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]))
    with pytest.raises(JournalError, match="checkpoint"), case.writer(signer):
        pass
    assert path.read_bytes() == b"".join(lines[:-1])


def test_unenrolled_examiner_cannot_append(case: Case, other_signer: Signer) -> None:
    with pytest.raises(CaseError, match="not enrolled"), case.writer(other_signer) as w:
        w.append("test.note", {}, now=NOW)


def test_enrolled_second_examiner_can_append(
    case: Case, signer: Signer, other_signer: Signer
) -> None:
    from forensic.case import enrol_examiner
    from forensic.keys import public_pem

    enrol_examiner(
        case, public_pem(other_signer.public_key), name="Other Person", signer=signer, now=NOW
    )
    with case.writer(other_signer) as w:
        w.append("test.note", {"by": "other"}, now=NOW)
    assert other_signer.fingerprint in enrolled_keys(case.entries())
    verify_case(case.root).raise_for_failure()


APPENDER = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from forensic.case import open_case
from forensic.keys import unlock
case = open_case(Path(sys.argv[1]))
signer = unlock(Path(sys.argv[2]), sys.argv[3])
for i in range(int(sys.argv[5])):
    with case.writer(signer) as w:
        w.append("test.note", {"writer": sys.argv[4], "i": i}, now=datetime.now(UTC))
"""


def test_two_processes_appending_at_once(case: Case, key_dir: Path) -> None:
    n = 15
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", APPENDER, str(case.root), str(key_dir), PASSPHRASE, who, str(n)]
        )
        for who in ("a", "b")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    entries = read_entries(case.root)
    notes = [e.payload for e in entries if e.kind == "test.note"]
    assert sorted((x["writer"], x["i"]) for x in notes) == sorted(
        (w, i) for w in "ab" for i in range(n)
    )
    verify_case(case.root).raise_for_failure()


def test_canonical_form_is_checked_by_the_bytes_even_when_the_value_was_seen() -> None:
    """`is_canonical` remembers bytes found canonical, never values: the same value written
    with other whitespace or key order is refused after its canonical bytes were accepted,
    and an entry line read twice is accepted twice."""
    from forensic.journal import is_canonical, open_envelope

    value = {"b": [1, "x"], "a": {"é": True, "c": None}}
    good = canonical(value)
    for _ in range(2):
        assert is_canonical(value, good)
    for other in (
        json.dumps(value).encode(),
        json.dumps(value, separators=(",", ":")).encode(),  # keys in the wrong order
        json.dumps(value, sort_keys=True, separators=(",", ":")).encode(),  # \\u00e9 escaped
        good + b" ",
    ):
        assert json.loads(other) == value
        assert not is_canonical(value, other)
    envelope = {
        "payload": "e30=",
        "payloadType": ENTRY_TYPE,
        "signatures": [{"keyid": "k", "sig": ""}],
    }
    line = canonical(envelope)
    assert open_envelope(line, where="line 1").payload == b"{}"
    assert open_envelope(line, where="line 1").payload == b"{}"
    spaced = json.dumps(envelope).encode()
    with pytest.raises(JournalError, match="not in canonical form"):
        open_envelope(spaced, where="line 2")
