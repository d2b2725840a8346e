"""The case folder: manifest, policy copy, evidence and derived stores, journal.

Layout (docs/architecture.md)::

    CASE/
      case.json            manifest, written once at `case init`
      policy.toml          the policy in force, read-only; its SHA-256 is in the case.open entry
      journal.jsonl        signed, hash-chained entries (forensic.journal)
      journal.checkpoint   signed count + Merkle root of the journal
      evidence/            originals, content-addressed: <sha256><.ext>, mode 0444
      derived/             enhancement outputs (later issues)
      keys/                PEM public keys of enrolled examiners (a convenience copy)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from forensic.errors import CaseError, InputError, PolicyError
from forensic.fsutil import fsync_dir, read_regular, write_atomic
from forensic.hashing import sha256_hex
from forensic.journal import (
    JOURNAL_FILE,
    Entry,
    JournalWriter,
    enrolled_keys,
    open_writer,
    read_entries,
)
from forensic.keys import Signer, public_pem
from forensic.policy import MAX_POLICY_BYTES, Policy, Profile, load_policy
from forensic.store import DERIVED_DIR, EVIDENCE_DIR, KEYS_DIR, LocalCaseStore
from forensic.timeutil import utc_timestamp

CASE_FORMAT = "forensic-case/1"
MANIFEST = "case.json"
POLICY_COPY = "policy.toml"
CASE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
FIELD_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
#: The keys every manifest has, with their types (checked when a case is opened).
MANIFEST_FIELDS: dict[str, type] = {
    "case_id": str,
    "title": str,
    "created": str,
    "profile": str,
    "fields": dict,
}


@dataclass(frozen=True)
class Case:
    root: Path
    manifest: dict[str, Any]

    @property
    def case_id(self) -> str:
        return str(self.manifest["case_id"])

    @property
    def store(self) -> LocalCaseStore:
        """Paths, checked reads and staged writes inside the case (`forensic.store`)."""
        return LocalCaseStore(self.root)

    @property
    def evidence_dir(self) -> Path:
        return self.root / EVIDENCE_DIR

    def entries(self) -> list[Entry]:
        return read_entries(self.root)

    @contextlib.contextmanager
    def writer(self, signer: Signer, *, now: datetime | None = None) -> Iterator[JournalWriter]:
        """The journal writer (`forensic.journal.open_writer`); with ``now``, an append that a
        crash interrupted is finished and journaled at once. A key that was replaced or
        revoked in this case is refused first (`forensic.keyring.check_signer`)."""
        from forensic.keyring import check_signer

        with open_writer(self.root, self.case_id, signer) as writer:
            check_signer(writer.entries, signer, case_id=self.case_id)
            # What open_writer(now=now) does, after the check: a revoked key journals nothing.
            if now is not None and writer.stage_recovery(now=now) is not None:
                writer.commit(now=now)
            yield writer

    @property
    def derived_dir(self) -> Path:
        return self.root / DERIVED_DIR

    def policy(self) -> Policy:
        """The case's own copy of the policy (verified against its journaled hash)."""
        from forensic.policy import parse_policy

        path = self.root / POLICY_COPY
        raw = read_regular(path, what="case policy", max_bytes=MAX_POLICY_BYTES, error=CaseError)
        opened = self.entries()[0].payload["policy"]
        if sha256_hex(raw) != opened["sha256"]:
            raise CaseError(
                f"the case's {POLICY_COPY} differs from the one journaled when it was opened",
                hint="run `forensic verify` on the case; nothing will run under an altered policy",
            )
        return parse_policy(raw, where=str(path))

    def profile(self) -> Profile:
        return self.policy().profile(str(self.entries()[0].payload["policy"]["profile"]))


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8") + b"\n"


def init_case(
    case_dir: Path,
    *,
    case_id: str,
    title: str,
    policy_path: Path | None,
    signer: Signer,
    now: datetime,
    profile: str | None = None,
    fields: dict[str, str] | None = None,
) -> Case:
    """Create a case folder and sign its ``case.open`` entry.

    The folder is assembled under a temporary name beside ``case_dir`` and renamed into place, so
    an interrupted ``case init`` leaves no half-made case.
    """
    from forensic.policy import default_policy_path

    if not CASE_ID_RE.fullmatch(case_id):
        raise InputError(
            f"--case-id {case_id!r} is not allowed",
            hint="use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    if not title.strip():
        raise InputError("--title must not be empty")
    if case_dir.exists() and (not case_dir.is_dir() or any(case_dir.iterdir())):
        raise CaseError(
            f"{case_dir} already exists and is not an empty folder",
            hint="choose a new folder for the case; existing cases are never overwritten",
        )
    policy = load_policy(policy_path if policy_path is not None else default_policy_path())
    chosen = policy.profile(profile)
    extra = dict(fields or {})
    for key, value in extra.items():
        if key in ("case_id", "title") or not FIELD_RE.fullmatch(key):
            raise InputError(
                f"--field {key}={value}: field names are 1 to 32 lowercase letters, digits or "
                "'_', starting with a letter (case_id and title have their own options)"
            )
        if not value.strip():
            raise InputError(f"--field {key}= is empty")
    present = {"case_id", "title", *extra}
    missing = [f for f in policy.required_fields if f not in present]
    if missing:
        raise PolicyError(
            f"policy {policy.name!r} requires the case field(s) {', '.join(missing)} "
            "(case.required_fields)",
            hint="give each as --field NAME=VALUE",
        )
    parent = case_dir.resolve().parent
    if parent.exists() and not parent.is_dir():
        raise CaseError(f"{parent} is a file, not a folder: the case cannot be made in it")
    # Like `mkdir -p`: `case init cases/2026/0142` works on a fresh machine.
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{case_dir.name}.init-", dir=parent))
    # mkdtemp's 0700 would lock out a lab's reviewers group; others still get nothing.
    os.chmod(staging, 0o750)  # noqa: S103
    try:
        manifest = {
            "format": CASE_FORMAT,
            "case_id": case_id,
            "title": title,
            "created": utc_timestamp(now),
            "journal": JOURNAL_FILE,
            "policy": POLICY_COPY,
            "profile": chosen.name,
            "fields": dict(sorted(extra.items())),
        }
        _populate(staging, manifest, policy, signer, now)
        if case_dir.exists():
            case_dir.rmdir()  # empty, checked above
        os.rename(staging, case_dir)
        fsync_dir(parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return open_case(case_dir)


def _populate(
    root: Path, manifest: dict[str, Any], policy: Policy, signer: Signer, now: datetime
) -> None:
    for sub in (EVIDENCE_DIR, DERIVED_DIR, KEYS_DIR):
        (root / sub).mkdir()
    raw_manifest = manifest_bytes(manifest)
    write_atomic(root / MANIFEST, raw_manifest, mode=0o444)
    write_atomic(root / POLICY_COPY, policy.raw, mode=0o444)
    write_atomic(
        root / KEYS_DIR / f"{signer.fingerprint}.pem", public_pem(signer.public_key).encode()
    )
    with open_writer(root, str(manifest["case_id"]), signer) as writer:
        writer.append(
            "case.open",
            {
                "case_id": manifest["case_id"],
                "title": manifest["title"],
                "manifest_sha256": sha256_hex(raw_manifest),
                "policy": {
                    "file": POLICY_COPY,
                    "sha256": policy.sha256,
                    "name": policy.name,
                    "profile": manifest["profile"],
                },
                "fields": manifest["fields"],
                "examiner": examiner_record(signer),
            },
            now=now,
        )


def examiner_record(signer: Signer) -> dict[str, str]:
    return {
        "name": signer.name,
        "fingerprint": signer.fingerprint,
        "public_key": public_pem(signer.public_key),
    }


def open_case(case_dir: Path) -> Case:
    if not case_dir.exists():
        raise CaseError(f"no case at {case_dir}", hint="create one with `forensic case init DIR`")
    if not case_dir.is_dir():
        raise CaseError(f"{case_dir} is not a case folder (it is a file)")
    path = case_dir / MANIFEST
    if not os.path.lexists(path):
        raise CaseError(
            f"{case_dir} is not a case folder: it has no {MANIFEST}",
            hint="create a case with `forensic case init DIR`",
        )
    raw = read_regular(path, what="case manifest", error=CaseError)
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise CaseError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != CASE_FORMAT:
        raise CaseError(f"{path} is not a {CASE_FORMAT} manifest")
    wrong = [
        f"{key!r} ({kind.__name__})"
        for key, kind in MANIFEST_FIELDS.items()
        if not isinstance(manifest.get(key), kind)
    ]
    if wrong:
        raise CaseError(
            f"{path} lacks or mistypes {', '.join(wrong)}: it is not the manifest this tool wrote",
            hint="run `forensic verify` on the case; the journal records the manifest's SHA-256",
        )
    return Case(root=case_dir, manifest=manifest)


def enrol_examiner(
    case: Case, public_key_pem: str, *, name: str, signer: Signer, now: datetime
) -> Entry:
    """Let another examiner sign entries in this case. Must be signed by an enrolled examiner."""
    from forensic.keys import fingerprint, load_public_pem

    key = load_public_pem(public_key_pem, where="--public-key")
    fpr = fingerprint(key)
    # The rule `keys init` applies to the examiner's own name: reports print it in a table
    # cell, which a longer one overflows (and control codes would reach every terminal).
    if not name.strip() or not re.fullmatch(r"[^\x00-\x1f\x7f]{1,200}", name):
        raise InputError(
            f"--name must be 1 to 200 printable characters (it has {len(name):,})",
            hint="give the examiner's full name",
        )
    with case.writer(signer) as writer:
        if fpr in enrolled_keys(writer.entries):
            raise InputError(f"examiner key {fpr[:16]}… is already enrolled in case {case.case_id}")
        write_atomic(case.root / KEYS_DIR / f"{fpr}.pem", public_pem(key).encode())
        return writer.append(
            "case.examiner.add",
            {"name": name, "fingerprint": fpr, "public_key": public_pem(key)},
            now=now,
        )


# -- key lifecycle (issue 15; the rules are forensic.keyring's) ----------------------------------


def rotate_key(case: Case, old: Signer, new: Signer, *, now: datetime) -> Entry:
    """Replace the examiner's key ``old`` by ``new`` in this case: a ``key.rotate`` entry
    signed by ``old`` that carries ``new``'s signature over the same content. Afterwards
    ``old`` signs nothing more in the case and ``new`` signs for the examiner."""
    from forensic.keyring import rotation_key, rotation_payload

    if new.fingerprint == old.fingerprint:
        raise InputError("the new key is the key in use; create a new one with `keys init`")
    with case.writer(old) as writer:
        if new.fingerprint in enrolled_keys(writer.entries):
            raise InputError(
                f"the new key {new.fingerprint[:16]}… is already enrolled in case {case.case_id}",
                hint="rotate to a key that has never been used in this case",
            )
        payload = rotation_payload(
            case_id=case.case_id,
            seq=len(writer.entries),
            prev=writer.entries[-1].hash,
            time=utc_timestamp(now),
            old=old,
            new=new,
        )
        known = enrolled_keys(writer.entries)
        entry = writer.stage("key.rotate", payload, now=now)
        rotation_key(entry, enrolled=known)  # what verify will check, before anything is written
        write_atomic(
            case.root / KEYS_DIR / f"{new.fingerprint}.pem", public_pem(new.public_key).encode()
        )
        writer.commit(now=now)
        return entry


def parse_effective(text: str) -> datetime:
    """``--effective``: an ISO 8601 time with its zone (``2026-11-20T14:00:00Z``)."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(
            f"--effective {text!r} is not a time",
            hint="write it as ISO 8601 with its zone, e.g. 2026-11-20T14:00:00Z",
        ) from None
    if when.tzinfo is None or when.utcoffset() is None:
        raise InputError(
            f"--effective {text!r} has no time zone",
            hint="add Z for UTC (2026-11-20T14:00:00Z) or an offset (+01:00)",
        )
    try:
        when.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+05:00 is before year 1 in UTC
        raise InputError(
            f"--effective {text!r} is out of range in UTC",
            hint="write it as ISO 8601 with its zone, e.g. 2026-11-20T14:00:00Z",
        ) from None
    return when


def revoke_key(
    case: Case,
    key: str,
    *,
    reason: str,
    effective: datetime | None,
    signer: Signer,
    now: datetime,
) -> Entry:
    """Revoke the enrolled key ``key`` (a fingerprint, or a unique prefix of at least 8 hex
    digits) from ``effective`` (default: now; never later than now). Entries it signed from
    then on fail verification. Signed by any enrolled key still valid, the revoked one
    included."""
    from forensic.keyring import read_keyring

    wanted = key.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{8,64}", wanted):
        raise InputError(
            f"{key!r} is not a key fingerprint",
            hint="give the fingerprint (64 hex digits, or its first 8 or more) that "
            "`forensic case show` lists",
        )
    if not reason.strip() or len(reason) > 2000 or re.search(r"[\x00-\x08\x0b-\x1f\x7f]", reason):
        raise InputError("--reason must be 1 to 2000 characters of text, without control codes")
    when = now if effective is None else effective
    if when.astimezone(UTC) > now.astimezone(UTC):
        raise InputError(
            f"--effective {utc_timestamp(when)} is in the future",
            hint="a revocation takes effect when it is recorded or earlier (a compromise)",
        )
    with case.writer(signer) as writer:
        names = enrolled_keys(writer.entries)
        matches = [fpr for fpr in names if fpr.startswith(wanted)]
        if len(matches) != 1:
            known = ", ".join(f"{fpr[:16]}… ({name})" for fpr, name in names.items())
            raise InputError(
                f"{'no' if not matches else 'more than one'} key enrolled in case "
                f"{case.case_id} has the fingerprint {wanted[:16]}…",
                hint=f"enrolled keys: {known}",
            )
        target = matches[0]
        earlier = read_keyring(writer.entries).revocation(target)
        if earlier is not None and earlier.effective <= when:
            raise InputError(
                f"key {target[:16]}… is already revoked in case {case.case_id}: "
                f"{earlier.describe().removeprefix('its ')}"
            )
        return writer.append(
            "key.revoke",
            {
                "fingerprint": target,
                "name": names[target],
                "effective": utc_timestamp(when),
                "reason": reason.strip(),
            },
            now=now,
        )
