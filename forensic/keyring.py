"""Which examiner key is valid for which entries: enrolment, rotation and revocation.

A case's journal enrols keys (``case.open``, ``case.examiner.add``), replaces one examiner's key
by another (``key.rotate``) and revokes keys (``key.revoke``); docs/spec.md §3.5 is the
normative description. This module reads those entries and answers two questions:

* for the writer (`check_signer`): may this key sign a new entry now? Not once it has been
  replaced or revoked.
* for ``verify`` (`rotation_key`, `lifecycle_failure`): is a rotation entry's second signature,
  by the new key, good; and is every entry signed by a key that was valid for it? A key
  replaced at journal line *n* signs nothing after line *n*; a key revoked with effective time
  *t* signs nothing timed *t* or later, nor anything after its revocation entry (whatever time
  it claims), except that revocation entry itself when a key revokes itself.

The rotation statement the new key signs (`rotation_statement`) binds it to the entry's case,
position (``seq``, ``prev``) and time, so it cannot be replayed into another case or place.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from forensic.errors import CaseError, ForensicError, KeyringError
from forensic.journal import Entry, canonical, pae
from forensic.keys import Signer, fingerprint, load_public_pem, public_pem, verify_signature
from forensic.records import KEY_REVOKE, KEY_ROTATE
from forensic.timeutil import utc_timestamp

#: DSSE payload type of the statement the new key signs in a ``key.rotate`` entry.
ROTATION_TYPE = "application/vnd.forensic.key-rotation+json"
ROTATION_STATEMENT = "forensic.key-rotation/1"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
MAX_REASON = 2000


def parse_time(text: object, *, what: str) -> datetime:
    """A journal timestamp (``YYYY-MM-DDTHH:MM:SS.ffffffZ``, UTC) as an aware datetime."""
    try:
        return datetime.strptime(str(text), TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise KeyringError(
            f"{what} {text!r} is not a UTC time written as YYYY-MM-DDTHH:MM:SS.ffffffZ"
        ) from None


def short(fpr: str) -> str:
    return f"{fpr[:16]}…"


# -- rotation ------------------------------------------------------------------------------------


def rotation_statement(
    *, case_id: str, seq: int, prev: str, time: str, payload: Mapping[str, Any]
) -> bytes:
    """The canonical JSON the new key signs: the entry's case, position and time, and its
    payload without the signature itself."""
    return canonical(
        {
            "statement": ROTATION_STATEMENT,
            "case_id": case_id,
            "seq": seq,
            "prev": prev,
            "time": time,
            "replaces": payload["replaces"],
            "examiner": payload["examiner"],
        }
    )


def rotation_payload(
    *, case_id: str, seq: int, prev: str, time: str, old: Signer, new: Signer
) -> dict[str, Any]:
    """A ``key.rotate`` payload for the entry at ``seq`` after ``prev``, timed ``time``, with
    the new key's signature (the old key signs the entry itself)."""
    payload: dict[str, Any] = {
        "replaces": old.fingerprint,
        "examiner": {
            "name": new.name,
            "fingerprint": new.fingerprint,
            "public_key": public_pem(new.public_key),
        },
    }
    statement = rotation_statement(case_id=case_id, seq=seq, prev=prev, time=time, payload=payload)
    signature = new.sign(pae(ROTATION_TYPE, statement))
    payload["new_key_signature"] = base64.b64encode(signature).decode("ascii")
    return payload


def rotation_key(entry: Entry, *, enrolled: Mapping[str, object]) -> Ed25519PublicKey:
    """The new key a ``key.rotate`` entry enrols, once its payload and the new key's signature
    check out; ``enrolled`` holds the keys enrolled before it. Raises KeyringError."""
    p = entry.payload
    try:
        examiner = p["examiner"]
        key = load_public_pem(str(examiner["public_key"]), where="its new public key")
        signature = base64.b64decode(str(p["new_key_signature"]), validate=True)
        statement = rotation_statement(
            case_id=str(entry.body["case_id"]),
            seq=entry.seq,
            prev=str(entry.body["prev"]),
            time=entry.time,
            payload=p,
        )
    except (KeyError, TypeError, ValueError, binascii.Error, ForensicError) as exc:
        detail = exc.message if isinstance(exc, ForensicError) else f"{type(exc).__name__} {exc}"
        raise KeyringError(f"the key rotation is malformed ({detail})") from None
    new = fingerprint(key)
    if new != examiner.get("fingerprint"):
        raise KeyringError("the new key's fingerprint does not match its public key")
    if p["replaces"] != entry.actor:
        raise KeyringError(
            f"it replaces key {short(str(p['replaces']))} but is signed by {short(entry.actor)}; "
            "only a key's holder can rotate it"
        )
    if new in enrolled:
        raise KeyringError(f"its new key {short(new)} is already enrolled in the case")
    if not verify_signature(key, signature, pae(ROTATION_TYPE, statement)):
        raise KeyringError(
            f"the new key {short(new)}'s signature over the rotation does not verify"
        )
    return key


# -- the keyring ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Revocation:
    """A ``key.revoke`` entry."""

    fingerprint: str
    effective: datetime
    reason: str
    line: int
    seq: int
    actor: str

    def describe(self) -> str:
        return (
            f"its revocation at journal line {self.line} (key.revoke, effective "
            f"{utc_timestamp(self.effective)}, reason: {self.reason})"
        )


@dataclass(frozen=True)
class Rotation:
    """A ``key.rotate`` entry: ``old`` replaced by ``new``."""

    old: str
    new: str
    line: int
    seq: int


@dataclass
class Keyring:
    """The keys a journal enrols, with their names, rotations and revocations (as written;
    `lifecycle_failure` is what checks them)."""

    names: dict[str, str]
    rotations: dict[str, Rotation]
    revocations: dict[str, list[Revocation]]

    def revocation(self, fpr: str) -> Revocation | None:
        """The key's revocation with the earliest effective time, or None."""
        found = self.revocations.get(fpr) or []
        return min(found, key=lambda r: r.effective) if found else None

    def label(self, fpr: str) -> str:
        name = self.names.get(fpr)
        return f"key {short(fpr)}" + (f" ({name})" if name else "")


def _revocation(entry: Entry, names: Mapping[str, str]) -> Revocation:
    p = entry.payload
    target = p.get("fingerprint")
    if not isinstance(target, str) or target not in names:
        raise KeyringError(f"it revokes key {target!r}, which is not enrolled in the case")
    effective = parse_time(p.get("effective"), what="its effective time")
    if effective > parse_time(entry.time, what="its time"):
        raise KeyringError(
            f"its effective time {p.get('effective')} is after the entry's own time "
            f"{entry.time}; a revocation takes effect when it is recorded or earlier"
        )
    reason = p.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise KeyringError("it gives no reason")
    return Revocation(target, effective, reason, entry.line_no, entry.seq, entry.actor)


def read_keyring(entries: Sequence[Entry]) -> Keyring:
    """Every key the journal enrols, replaces and revokes. Raises KeyringError naming the
    journal line of a malformed rotation or revocation."""
    ring = Keyring(names={}, rotations={}, revocations={})
    for entry in entries:
        p = entry.payload
        try:
            if entry.kind in ("case.open", KEY_ROTATE.name):
                examiner = p.get("examiner") or {}
                ring.names[str(examiner.get("fingerprint"))] = str(examiner.get("name"))
            elif entry.kind == "case.examiner.add":
                ring.names[str(p.get("fingerprint"))] = str(p.get("name"))
            if entry.kind == KEY_ROTATE.name:
                new = str((p.get("examiner") or {}).get("fingerprint"))
                # The first rotation counts: a second one by the same key is signed after it.
                ring.rotations.setdefault(
                    entry.actor, Rotation(entry.actor, new, entry.line_no, entry.seq)
                )
            elif entry.kind == KEY_REVOKE.name:
                revocation = _revocation(entry, ring.names)
                ring.revocations.setdefault(revocation.fingerprint, []).append(revocation)
        except (AttributeError, TypeError) as exc:
            raise KeyringError(
                f"journal line {entry.line_no} ({entry.kind}) is malformed ({exc})"
            ) from None
        except KeyringError as exc:
            raise KeyringError(
                f"journal line {entry.line_no} ({entry.kind}): {exc.message}"
            ) from None
    return ring


def invalid_signer(ring: Keyring, entry: Entry) -> str | None:
    """Why ``entry``'s signer could not sign it (replaced or revoked before it), or None."""
    rotation = ring.rotations.get(entry.actor)
    if rotation is not None and entry.seq > rotation.seq:
        return (
            f"is signed by {ring.label(entry.actor)}, which was replaced by "
            f"{ring.label(rotation.new)} at journal line {rotation.line} (key.rotate)"
        )
    for revocation in sorted(ring.revocations.get(entry.actor) or [], key=lambda r: r.seq):
        if entry.seq == revocation.seq:
            continue  # a key may sign its own revocation
        signer = ring.label(entry.actor)
        if parse_time(entry.time, what="the entry's time") >= revocation.effective:
            return f"is signed by {signer} at {entry.time}, after {revocation.describe()}"
        if entry.seq > revocation.seq:
            return (
                f"is signed by {signer} after {revocation.describe()}: it comes later in the "
                f"journal, whatever time it claims ({entry.time})"
            )
    return None


def lifecycle_failure(entries: Sequence[Entry]) -> str | None:
    """``verify``: the first entry signed by a key that was replaced or revoked before it, or a
    malformed revocation, as a sentence; None when every signer was valid."""
    try:
        ring = read_keyring(entries)
        for entry in entries:
            problem = invalid_signer(ring, entry)
            if problem is not None:
                return f"journal line {entry.line_no} ({entry.kind}) {problem}"
    except KeyringError as exc:
        return exc.message
    return None


def check_signer(entries: Sequence[Entry], signer: Signer, *, case_id: str) -> None:
    """Refuse to let a replaced or revoked key sign a new entry (raises CaseError)."""
    try:
        ring = read_keyring(entries)
    except KeyringError as exc:
        raise CaseError(
            f"case {case_id}: {exc.message}", hint="run `forensic verify` on the case"
        ) from None
    rotation = ring.rotations.get(signer.fingerprint)
    if rotation is not None:
        raise CaseError(
            f"examiner key {short(signer.fingerprint)} ({signer.name}) was replaced in case "
            f"{case_id} by {ring.label(rotation.new)} (journal line {rotation.line})",
            hint="sign with the new key: --key-dir pointing at the folder that holds it",
        )
    revocation = ring.revocation(signer.fingerprint)
    if revocation is not None:
        raise CaseError(
            f"examiner key {short(signer.fingerprint)} ({signer.name}) is revoked in case "
            f"{case_id}: {revocation.describe().removeprefix('its ')}",
            hint="a revoked key signs nothing more; an enrolled examiner can enrol a new key "
            "with `forensic case add-examiner`",
        )
