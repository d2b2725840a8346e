"""The append-only, hash-chained, signed journal (docs/spec.md is the normative description).

Each line of ``journal.jsonl`` is a DSSE envelope (canonical JSON, RFC 8785) whose payload is the
canonical JSON of one entry. Entry ``n`` carries the SHA-256 of entry ``n-1``'s payload bytes, so
editing, deleting, inserting or reordering a line breaks the chain. ``journal.checkpoint`` is a
signed statement of the entry count and the Merkle root over all entry hashes; it is rewritten
after every append, so cutting lines off the end is caught too.

Appends hold a file lock on the case, rewrite the journal through a temporary file (fsync, rename,
fsync the folder) and never edit a line in place.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import filelock
import rfc8785

from forensic.errors import CaseError, JournalError
from forensic.fsutil import write_atomic
from forensic.hashing import ZERO_HASH, merkle_root
from forensic.keys import Signer
from forensic.timeutil import utc_timestamp
from forensic.versions import library_versions, tool_version

JOURNAL_FILE = "journal.jsonl"
CHECKPOINT_FILE = "journal.checkpoint"
LOCK_FILE = ".lock"
ENTRY_TYPE = "application/vnd.forensic.journal-entry+json"
CHECKPOINT_TYPE = "application/vnd.forensic.checkpoint+json"
ENTRY_SCHEMA = "forensic.journal-entry/1"
CHECKPOINT_SCHEMA = "forensic.checkpoint/1"
LOCK_TIMEOUT_S = 120.0


def canonical(obj: Any) -> bytes:
    """RFC 8785 JSON Canonicalization Scheme bytes."""
    try:
        return bytes(rfc8785.dumps(obj))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise JournalError(f"cannot canonicalise a journal value: {exc}") from None


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: the exact bytes that are signed."""
    ptype = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(ptype), ptype, len(payload), payload)


def seal(payload_type: str, payload: bytes, signer: Signer) -> bytes:
    """A canonical DSSE envelope, one line without its newline."""
    return canonical(
        {
            "payload": base64.b64encode(payload).decode("ascii"),
            "payloadType": payload_type,
            "signatures": [
                {
                    "keyid": signer.fingerprint,
                    "sig": base64.b64encode(signer.sign(pae(payload_type, payload))).decode(
                        "ascii"
                    ),
                }
            ],
        }
    )


@dataclass(frozen=True)
class Envelope:
    """A parsed DSSE envelope: not yet checked against any key."""

    payload_type: str
    payload: bytes
    keyid: str
    signature: bytes


def open_envelope(line: bytes, *, where: str) -> Envelope:
    """Parse one envelope line; raise JournalError naming ``where`` if it is malformed."""
    try:
        doc = json.loads(line)
        if not isinstance(doc, dict) or set(doc) != {"payload", "payloadType", "signatures"}:
            raise ValueError("not a DSSE envelope")
        sigs = doc["signatures"]
        if not isinstance(sigs, list) or len(sigs) != 1 or set(sigs[0]) != {"keyid", "sig"}:
            raise ValueError("exactly one signature with keyid and sig is required")
        env = Envelope(
            payload_type=str(doc["payloadType"]),
            payload=base64.b64decode(doc["payload"], validate=True),
            keyid=str(sigs[0]["keyid"]),
            signature=base64.b64decode(sigs[0]["sig"], validate=True),
        )
    except (ValueError, TypeError, binascii.Error) as exc:
        raise JournalError(f"{where} is not a valid signed envelope: {exc}") from None
    if canonical(doc) != line:
        raise JournalError(f"{where} is not in canonical form (RFC 8785)")
    return env


@dataclass(frozen=True)
class Entry:
    """One journal entry as read from disk."""

    line_no: int
    envelope: Envelope
    body: dict[str, Any]

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.envelope.payload).hexdigest()

    @property
    def seq(self) -> int:
        return int(self.body["seq"])

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def actor(self) -> str:
        return str(self.body["actor"])

    @property
    def time(self) -> str:
        return str(self.body["time"])

    @property
    def payload(self) -> dict[str, Any]:
        value = self.body["payload"]
        assert isinstance(value, dict)
        return value


ENTRY_FIELDS = {
    "schema",
    "case_id",
    "seq",
    "prev",
    "time",
    "kind",
    "actor",
    "tool",
    "versions",
    "payload",
}


def parse_entry(line: bytes, line_no: int) -> Entry:
    where = f"journal line {line_no}"
    env = open_envelope(line, where=where)
    if env.payload_type != ENTRY_TYPE:
        raise JournalError(f"{where} has payload type {env.payload_type!r}, not {ENTRY_TYPE!r}")
    try:
        body = json.loads(env.payload)
    except ValueError as exc:
        raise JournalError(f"{where}: the entry is not JSON ({exc})") from None
    if not isinstance(body, dict) or set(body) != ENTRY_FIELDS:
        raise JournalError(
            f"{where}: the entry does not have exactly the fields {sorted(ENTRY_FIELDS)}"
        )
    if body["schema"] != ENTRY_SCHEMA or not isinstance(body["payload"], dict):
        raise JournalError(f"{where}: unknown entry schema {body['schema']!r}")
    if canonical(body) != env.payload:
        raise JournalError(f"{where}: the entry is not in canonical form (RFC 8785)")
    return Entry(line_no=line_no, envelope=env, body=body)


def read_entries(case_dir: Path) -> list[Entry]:
    path = case_dir / JOURNAL_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CaseError(
            f"{case_dir} has no journal ({JOURNAL_FILE})", hint="is this a case folder?"
        ) from None
    if data and not data.endswith(b"\n"):
        raise JournalError(f"{path}: the last line is incomplete (the journal was cut off)")
    return [parse_entry(line, n) for n, line in enumerate(data.splitlines(), start=1)]


@dataclass(frozen=True)
class Checkpoint:
    envelope: Envelope
    body: dict[str, Any]


CHECKPOINT_FIELDS = {"schema", "case_id", "count", "root", "head", "time", "actor"}


def read_checkpoint(case_dir: Path) -> Checkpoint | None:
    path = case_dir / CHECKPOINT_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    env = open_envelope(data.rstrip(b"\n"), where=f"the checkpoint {path}")
    try:
        body = json.loads(env.payload)
    except ValueError as exc:
        raise JournalError(f"the checkpoint {path} is not JSON ({exc})") from None
    if (
        env.payload_type != CHECKPOINT_TYPE
        or not isinstance(body, dict)
        or set(body) != CHECKPOINT_FIELDS
        or body["schema"] != CHECKPOINT_SCHEMA
        or canonical(body) != env.payload
    ):
        raise JournalError(f"the checkpoint {path} is not a valid {CHECKPOINT_SCHEMA} statement")
    return Checkpoint(envelope=env, body=body)


def entries_root(entries: list[Entry]) -> str:
    return merkle_root([bytes.fromhex(e.hash) for e in entries])


def enrolled_keys(entries: list[Entry]) -> dict[str, str]:
    """Fingerprint -> examiner name, for the keys that ``entries`` enrol (unverified)."""
    keys: dict[str, str] = {}
    for entry in entries:
        if entry.kind in ("case.open", "key.rotate"):  # key.rotate: the examiner's new key
            examiner = entry.payload.get("examiner", {})
            keys[str(examiner.get("fingerprint"))] = str(examiner.get("name"))
        elif entry.kind == "case.examiner.add":
            keys[str(entry.payload.get("fingerprint"))] = str(entry.payload.get("name"))
    return keys


class JournalWriter:
    """Appends entries while holding the case lock. Obtain one from `open_writer`."""

    def __init__(self, case_dir: Path, case_id: str, signer: Signer, entries: list[Entry]) -> None:
        self.case_dir = case_dir
        self.case_id = case_id
        self.signer = signer
        self.entries = entries
        self._staged: list[bytes] = []

    def append(self, kind: str, payload: Mapping[str, Any], *, now: datetime) -> Entry:
        """Sign one entry and write it (journal and checkpoint) at once."""
        entry = self.stage(kind, payload, now=now)
        self.commit(now=now)
        return entry

    def stage(self, kind: str, payload: Mapping[str, Any], *, now: datetime) -> Entry:
        """Sign an entry and hold it in memory; `commit` writes every staged entry at once.

        A group of entries staged together (a run's steps and the run) reaches the disk in one
        atomic rewrite, or not at all.
        """
        if self.entries and self.signer.fingerprint not in enrolled_keys(self.entries):
            raise CaseError(
                f"examiner key {self.signer.fingerprint[:16]}… ({self.signer.name}) is not enrolled "
                f"in case {self.case_id}",
                hint="an enrolled examiner must first run `forensic case add-examiner`",
            )
        body = {
            "schema": ENTRY_SCHEMA,
            "case_id": self.case_id,
            "seq": len(self.entries),
            "prev": self.entries[-1].hash if self.entries else ZERO_HASH,
            "time": utc_timestamp(now),
            "kind": kind,
            "actor": self.signer.fingerprint,
            "tool": tool_version(),
            "versions": library_versions(),
            "payload": dict(payload),
        }
        raw = canonical(body)
        line = seal(ENTRY_TYPE, raw, self.signer)
        entry = parse_entry(line, len(self.entries) + 1)
        self.entries.append(entry)
        self._staged.append(line)
        return entry

    def commit(self, *, now: datetime) -> None:
        if not self._staged:
            return
        path = self.case_dir / JOURNAL_FILE
        old = path.read_bytes() if path.exists() else b""
        write_atomic(path, old + b"".join(line + b"\n" for line in self._staged), mode=0o644)
        self._staged = []
        self._write_checkpoint(now)

    def _write_checkpoint(self, now: datetime) -> None:
        body = {
            "schema": CHECKPOINT_SCHEMA,
            "case_id": self.case_id,
            "count": len(self.entries),
            "root": entries_root(self.entries),
            "head": self.entries[-1].hash,
            "time": utc_timestamp(now),
            "actor": self.signer.fingerprint,
        }
        line = seal(CHECKPOINT_TYPE, canonical(body), self.signer)
        write_atomic(self.case_dir / CHECKPOINT_FILE, line + b"\n", mode=0o644)


def check_tail(case_dir: Path, entries: list[Entry]) -> None:
    """Refuse to append to a journal whose end does not match its signed checkpoint."""
    cp = read_checkpoint(case_dir)
    if not entries and cp is None:
        return
    hint = "run `forensic verify` on the case; nothing was written"
    if cp is None:
        raise JournalError(f"{case_dir}: the journal has entries but no checkpoint", hint=hint)
    if cp.body["count"] != len(entries) or cp.body["root"] != entries_root(entries):
        raise JournalError(
            f"{case_dir}: the journal ({len(entries)} entries) does not match its signed "
            f"checkpoint ({cp.body['count']} entries)",
            hint=hint,
        )


@contextlib.contextmanager
def open_writer(case_dir: Path, case_id: str, signer: Signer) -> Iterator[JournalWriter]:
    """Lock the case, check the journal's tail against its checkpoint, and yield a writer."""
    lock = filelock.FileLock(str(case_dir / LOCK_FILE), timeout=LOCK_TIMEOUT_S)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise CaseError(
            f"{case_dir} is locked by another forensic process",
            hint=f"wait for it to finish; the lock is {case_dir / LOCK_FILE}",
        ) from None
    try:
        path = case_dir / JOURNAL_FILE
        entries = read_entries(case_dir) if path.exists() else []
        check_tail(case_dir, entries)
        yield JournalWriter(case_dir, case_id, signer, entries)
    finally:
        lock.release()
