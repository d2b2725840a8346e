"""The append-only, hash-chained, signed journal (docs/spec.md is the normative description).

Each line of ``journal.jsonl`` is a DSSE envelope (canonical JSON, RFC 8785) whose payload is the
canonical JSON of one entry. Entry ``n`` carries the SHA-256 of entry ``n-1``'s payload bytes, so
editing, deleting, inserting or reordering a line breaks the chain. ``journal.checkpoint`` is a
signed statement of the entry count and the Merkle root over all entry hashes; it is rewritten
after every append, so cutting lines off the end is caught too.

Appends hold a file lock on the case, rewrite the journal through a temporary file (fsync, rename,
fsync the folder) and never edit a line in place.

An append touches two files, so it is made crash-atomic by an *intent* written first (spec §6):
``journal.pending`` holds the appended lines followed by the new signed checkpoint. Then the
journal is replaced, then the checkpoint, then the intent is removed. Whatever moment a crash
hits, the case is in one of three states that the next writer (and ``forensic case recover``)
tells apart from tampering by the intent's signature and completes (the journal already holds
the lines: the intent's checkpoint is put in place) or rolls back (it does not: the intent is
removed), journaling a ``case.recover`` entry that says which. ``verify`` reads the same states.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import filelock
import rfc8785

from forensic.errors import CaseError, JournalError
from forensic.fsutil import fsync_dir, write_atomic
from forensic.hashing import ZERO_HASH, merkle_root
from forensic.keys import Signer, load_public_pem, verify_signature
from forensic.timeutil import utc_timestamp
from forensic.versions import library_versions, tool_version

JOURNAL_FILE = "journal.jsonl"
CHECKPOINT_FILE = "journal.checkpoint"
#: The intent of an append in progress (see the module docstring).
PENDING_FILE = "journal.pending"
#: The entry kind a writer journals after completing or rolling back an interrupted append
#: (declared with the others in `forensic.records`).
RECOVER_KIND = "case.recover"
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


#: SHA-256 digests of byte strings found to be canonical in this process (`is_canonical`).
_CANONICAL_SEEN: set[bytes] = set()
_CANONICAL_SEEN_MAX = 1 << 16


def is_canonical(value: Any, data: bytes) -> bool:
    """Whether ``data``, which parsed to ``value``, is its RFC 8785 form. Whether bytes are
    canonical depends on the bytes alone, so bytes found canonical once are not serialised
    again (by their SHA-256): a run reads the case's journal several times, and the pure-Python
    canonicalisation of every entry was most of a video run's fixed cost."""
    key = hashlib.sha256(data).digest()
    if key in _CANONICAL_SEEN:
        return True
    if canonical(value) != data:
        return False
    if len(_CANONICAL_SEEN) >= _CANONICAL_SEEN_MAX:
        _CANONICAL_SEEN.clear()
    _CANONICAL_SEEN.add(key)
    return True


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
    if not is_canonical(doc, line):
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
    if not is_canonical(body, env.payload):
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
    return parse_checkpoint(data, where=str(path))


def parse_checkpoint(data: bytes, *, where: str) -> Checkpoint:
    """Parse a checkpoint statement (one envelope line); JournalError naming ``where``."""
    path = where
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


def enrolled_public_keys(entries: list[Entry]) -> dict[str, Any]:
    """Fingerprint -> Ed25519 public key for the keys that ``entries`` enrol (as recorded;
    ``verify`` checks that each fingerprint matches its key)."""
    keys: dict[str, Any] = {}
    for entry in entries:
        if entry.kind in ("case.open", "key.rotate"):  # key.rotate: the examiner's new key
            examiner = entry.payload.get("examiner", {})
            pem, fpr = examiner.get("public_key"), examiner.get("fingerprint")
        elif entry.kind == "case.examiner.add":
            pem, fpr = entry.payload.get("public_key"), entry.payload.get("fingerprint")
        else:
            continue
        with contextlib.suppress(ValueError, TypeError, CaseError, JournalError):
            keys[str(fpr)] = load_public_pem(str(pem), where=f"journal line {entry.line_no}")
    return keys


@dataclass(frozen=True)
class PendingAppend:
    """``journal.pending`` parsed: the lines of one append and the checkpoint after them."""

    entries: list[Entry]
    checkpoint: Checkpoint
    sha256: str


def read_pending(case_dir: Path) -> PendingAppend | None:
    """The intent of an interrupted append, or None; JournalError when it is malformed."""
    path = case_dir / PENDING_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise JournalError(f"cannot read {path}: {exc.strerror}") from None
    lines = data.splitlines()
    if not data.endswith(b"\n") or len(lines) < 2:
        raise JournalError(f"{path} is incomplete: it is not an intent written by this tool")
    checkpoint = parse_checkpoint(lines[-1], where=str(path))
    first = int(checkpoint.body["count"]) - (len(lines) - 1)
    entries = [parse_entry(line, first + n) for n, line in enumerate(lines[:-1], start=1)]
    return PendingAppend(entries, checkpoint, hashlib.sha256(data).hexdigest())


#: What an interrupted append needs (see `assess_pending`).
COMPLETE = "complete"
ROLL_BACK = "roll back"
LEFTOVER = "leftover"


@dataclass(frozen=True)
class Interruption:
    """An append that a crash interrupted, and what finishing it takes (``action``):

    * `COMPLETE`: the journal holds its lines, the checkpoint is the one before: put the
      intent's signed checkpoint in place;
    * `ROLL_BACK`: the journal does not hold its lines: nothing of it was recorded; remove it;
    * `LEFTOVER`: journal and checkpoint are final; only the intent file remains.
    """

    action: str
    pending: PendingAppend

    @property
    def first_seq(self) -> int:
        return self.pending.entries[0].seq

    @property
    def last_seq(self) -> int:
        return self.pending.entries[-1].seq

    def describe(self) -> str:
        cp = self.pending.checkpoint.body
        span = f"entries {self.first_seq} to {self.last_seq}"
        who = f"signed by {str(cp['actor'])[:16]}… at {cp['time']}"
        if self.action == COMPLETE:
            return (
                f"an append ({span}, {who}) was interrupted after the journal was written and "
                "before its checkpoint was replaced; its signed checkpoint is in "
                f"{PENDING_FILE} and covers the whole journal"
            )
        if self.action == ROLL_BACK:
            return (
                f"an append ({span}, {who}) was interrupted before the journal was written: "
                f"nothing of it is recorded; {PENDING_FILE} holds its unused intent"
            )
        return f"an append ({span}, {who}) completed; only its {PENDING_FILE} was left behind"


def _signed_by(envelope: Envelope, payload_type: str, keys: Mapping[str, Any]) -> bool:
    key = keys.get(envelope.keyid)
    return key is not None and verify_signature(
        key, envelope.signature, pae(payload_type, envelope.payload)
    )


def assess_pending(
    case_dir: Path, entries: list[Entry], checkpoint: Checkpoint | None
) -> Interruption | None:
    """Tell an interrupted append from tampering (module docstring; spec §6).

    The intent must be signed, entries and checkpoint alike, by a key enrolled in the case
    (before it or by its own lines), belong to this case and chain onto the journal; and the
    journal and checkpoint must be in one of the states a crash can leave. Anything else raises
    `JournalError`: the intent was not written by an interrupted append of this case.
    """
    pending = read_pending(case_dir)
    if pending is None:
        return None
    where = f"{case_dir / PENDING_FILE}"
    cp = pending.checkpoint
    keys = enrolled_public_keys(entries + pending.entries)
    signed = _signed_by(cp.envelope, CHECKPOINT_TYPE, keys) and all(
        e.envelope.keyid == cp.envelope.keyid and _signed_by(e.envelope, ENTRY_TYPE, keys)
        for e in pending.entries
    )
    if not signed:
        raise JournalError(
            f"{where} is not signed by an examiner enrolled in the case: it was not written by "
            "an interrupted append",
            hint="run `forensic verify` on the case; nothing was written",
        )
    case_ids = {cp.body["case_id"]} | {e.body["case_id"] for e in pending.entries}
    if entries and case_ids != {entries[0].body["case_id"]}:
        raise JournalError(f"{where} belongs to another case")
    count, start = int(cp.body["count"]), pending.entries[0].seq
    hashes = [e.hash for e in pending.entries]
    chained = [e.seq for e in pending.entries] == list(range(start, count))
    if chained and len(entries) == count and [e.hash for e in entries[start:]] == hashes:
        if entries_root(entries) != cp.body["root"]:
            raise JournalError(f"{where}: its checkpoint does not cover the journal")
        if checkpoint is not None and checkpoint.envelope.payload == cp.envelope.payload:
            return Interruption(LEFTOVER, pending)
        before = entries[:start]
        if (checkpoint is None and not before) or (
            checkpoint is not None
            and checkpoint.body["count"] == start
            and checkpoint.body["root"] == entries_root(before)
        ):
            return Interruption(COMPLETE, pending)
    elif chained and len(entries) == start:
        prev = entries[-1].hash if entries else ZERO_HASH
        consistent = (checkpoint is None and not entries) or (
            checkpoint is not None
            and checkpoint.body["count"] == start
            and checkpoint.body["root"] == entries_root(entries)
        )
        if pending.entries[0].body["prev"] == prev and consistent:
            return Interruption(ROLL_BACK, pending)
    raise JournalError(
        f"{where} does not fit the journal and its checkpoint: they are not in a state an "
        "interrupted append leaves",
        hint="run `forensic verify` on the case; nothing was written",
    )


#: Relative paths of case files named in entry payloads (content-addressed stored files).
_STORED_PATH = re.compile(r"(?:evidence|derived|reports)/[0-9a-f]{64}[A-Za-z0-9._-]*")


def _stored_paths(entries: list[Entry]) -> set[str]:
    found: set[str] = set()
    for entry in entries:
        found.update(_STORED_PATH.findall(entry.envelope.payload.decode("utf-8", "replace")))
    return found


def finish_plan(entries: list[Entry], interruption: Interruption) -> dict[str, Any]:
    """The ``case.recover`` payload that records finishing ``interruption``."""
    pending = interruption.pending
    removed = []
    if interruption.action == ROLL_BACK:
        removed = sorted(_stored_paths(pending.entries) - _stored_paths(entries))
    return {
        "action": {COMPLETE: "completed", ROLL_BACK: "rolled back", LEFTOVER: "cleaned"}[
            interruption.action
        ],
        "pending_sha256": pending.sha256,
        "entries": [interruption.first_seq, interruption.last_seq],
        "interrupted_checkpoint": pending.checkpoint.body,
        "unrecorded_files": removed,
        "detail": interruption.describe(),
    }


def finish_interrupted(case_dir: Path, interruption: Interruption, keep: list[Entry]) -> None:
    """Carry out ``interruption``'s action; the caller holds the case lock. Files named by
    ``keep`` (the recorded entries and those about to be committed) are never removed."""
    pending = interruption.pending
    if interruption.action == COMPLETE:
        env = pending.checkpoint.envelope
        line = canonical(
            {
                "payload": base64.b64encode(env.payload).decode("ascii"),
                "payloadType": env.payload_type,
                "signatures": [
                    {"keyid": env.keyid, "sig": base64.b64encode(env.signature).decode("ascii")}
                ],
            }
        )
        write_atomic(case_dir / CHECKPOINT_FILE, line + b"\n", mode=0o644)
    elif interruption.action == ROLL_BACK:
        # Files the unrecorded entries named and no recorded entry names: staged by the
        # interrupted command and committed before its journal write, never part of the record.
        named = _stored_paths([e for e in keep if e.kind != RECOVER_KIND])
        for rel in sorted(_stored_paths(pending.entries) - named):
            path = case_dir / rel
            if path.is_file() and not path.is_symlink():
                os.chmod(path, 0o644)
                path.unlink()
    (case_dir / PENDING_FILE).unlink()
    fsync_dir(case_dir)


def leftover_temporaries(case_dir: Path) -> list[Path]:
    """Temporary files of `write_atomic` left in the case root by a crash (only writers that
    hold the case lock write there, so the next one may remove them)."""
    return sorted(p for p in case_dir.glob(".tmp-*") if p.is_file() and not p.is_symlink())


class JournalWriter:
    """Appends entries while holding the case lock. Obtain one from `open_writer`."""

    def __init__(
        self,
        case_dir: Path,
        case_id: str,
        signer: Signer,
        entries: list[Entry],
        *,
        interruption: Interruption | None = None,
    ) -> None:
        self.case_dir = case_dir
        self.case_id = case_id
        self.signer = signer
        self.entries = entries
        self._staged: list[bytes] = []
        #: An interrupted earlier append found when the case was opened: it is finished, and
        #: a ``case.recover`` entry records how, with this writer's first commit (nothing on
        #: disk changes if this writer commits nothing).
        self.interruption = interruption
        self._recovery: dict[str, Any] | None = None

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
        if self.interruption is not None and self._recovery is None:
            self._recovery = finish_plan(self.entries, self.interruption)
            self._stage(RECOVER_KIND, self._recovery, now=now)
        return self._stage(kind, payload, now=now)

    def stage_recovery(self, *, now: datetime) -> Entry | None:
        """Stage only the ``case.recover`` entry (``forensic case recover``); None when there
        is nothing to recover."""
        if self.interruption is None or self._recovery is not None:
            return None
        self._recovery = finish_plan(self.entries, self.interruption)
        return self._stage(RECOVER_KIND, self._recovery, now=now)

    def _stage(self, kind: str, payload: Mapping[str, Any], *, now: datetime) -> Entry:
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
        """Write every staged entry and the new checkpoint, crash-atomically: the intent
        (``journal.pending``: the lines, then the checkpoint) first, then the journal, then the
        checkpoint, then the intent is removed (spec §6)."""
        if not self._staged:
            return
        if self.interruption is not None:
            # The earlier append is finished first, so that this one's intent always meets a
            # journal and checkpoint that agree.
            finish_interrupted(self.case_dir, self.interruption, self.entries)
            self.interruption = None
        path = self.case_dir / JOURNAL_FILE
        old = path.read_bytes() if path.exists() else b""
        lines = b"".join(line + b"\n" for line in self._staged)
        checkpoint = self._checkpoint_line(now) + b"\n"
        pending = self.case_dir / PENDING_FILE
        write_atomic(pending, lines + checkpoint, mode=0o644)
        write_atomic(path, old + lines, mode=0o644)
        self._staged = []
        write_atomic(self.case_dir / CHECKPOINT_FILE, checkpoint, mode=0o644)
        pending.unlink()
        fsync_dir(self.case_dir)

    def _checkpoint_line(self, now: datetime) -> bytes:
        body = {
            "schema": CHECKPOINT_SCHEMA,
            "case_id": self.case_id,
            "count": len(self.entries),
            "root": entries_root(self.entries),
            "head": self.entries[-1].hash,
            "time": utc_timestamp(now),
            "actor": self.signer.fingerprint,
        }
        return seal(CHECKPOINT_TYPE, canonical(body), self.signer)


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
def open_writer(
    case_dir: Path, case_id: str, signer: Signer, *, now: datetime | None = None
) -> Iterator[JournalWriter]:
    """Lock the case, check the journal's tail against its checkpoint, and yield a writer.

    An append that a crash interrupted is finished with the writer's first commit (see
    `JournalWriter.interruption`), or at once, journaled at ``now``, when ``now`` is given."""
    lock = filelock.FileLock(str(case_dir / LOCK_FILE), timeout=LOCK_TIMEOUT_S)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise CaseError(
            f"{case_dir} is locked by another forensic process",
            hint=f"wait for it to finish; the lock is {case_dir / LOCK_FILE}",
        ) from None
    except OSError as exc:  # a read-only file system or folder: nothing can be written
        raise CaseError(
            f"case {case_dir} cannot be written: its lock {case_dir / LOCK_FILE} cannot be "
            f"opened ({exc.strerror or exc}); nothing was written",
            hint="a read-only case can still be shown and verified; to write, use a case folder "
            "this user may write to",
        ) from None
    try:
        path = case_dir / JOURNAL_FILE
        entries = read_entries(case_dir) if path.exists() else []
        interruption = assess_pending(case_dir, entries, read_checkpoint(case_dir))
        for leftover in leftover_temporaries(case_dir):
            leftover.unlink()
        if interruption is None:
            check_tail(case_dir, entries)
        # else `assess_pending` has checked the journal against both checkpoints.
        elif entries and signer.fingerprint not in enrolled_keys(entries):
            raise CaseError(
                f"{case_dir}: {interruption.describe()}",
                hint="an enrolled examiner runs `forensic case recover` (or any writing command)",
            )
        writer = JournalWriter(case_dir, case_id, signer, entries, interruption=interruption)
        if now is not None and writer.stage_recovery(now=now) is not None:
            writer.commit(now=now)
        yield writer
    finally:
        lock.release()
