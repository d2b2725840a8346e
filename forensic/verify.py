"""`forensic verify`: numbered checks over a case, needing only public keys.

Each check yields a verdict line. `verify_case` returns every verdict; `Verdict.raise_for_failure`
turns the first failure into one `VerificationError` with one plain sentence. A check that
cannot run because an earlier one failed is reported as skipped, never as passed.
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from forensic.case import MANIFEST, POLICY_COPY, Case, open_case
from forensic.errors import CaseError, ForensicError, VerificationError
from forensic.hashing import merkle_root, sha256_file, sha256_hex
from forensic.journal import (
    CHECKPOINT_FILE,
    CHECKPOINT_TYPE,
    COMPLETE,
    ENTRY_TYPE,
    JOURNAL_FILE,
    LOCK_FILE,
    PENDING_FILE,
    Checkpoint,
    Entry,
    assess_pending,
    entries_root,
    pae,
    parse_checkpoint,
    read_checkpoint,
    read_entries,
)
from forensic.keys import fingerprint, load_public_pem, verify_signature
from forensic.records import (
    CASE_OPEN,
    COSIGN,
    EXAMINER_ADD,
    KEY_ROTATE,
    PKI_BIND,
    RUN,
    RUN_STEP,
    RUN_SUPERSEDE,
    ExhibitRecord,
    FileRef,
    RunRecord,
    exhibits,
    load_artifact,
    read_runs,
    reports,
    step_entries,
)
from forensic.store import (
    DERIVED_DIR,
    EVIDENCE_DIR,
    KEYS_DIR,
    REPORTS_DIR,
    STAMP_SUFFIX,
    TIMESTAMPS_DIR,
    CaseStore,
    timestamp_names,
)
from forensic.verdicts import FAIL, PASS, SKIP, Check, CheckFailed, CheckResults, run_checks

if TYPE_CHECKING:
    from forensic.videoio import VideoHashes

# `Check` and the statuses are defined once, in `forensic.verdicts`, and re-exported here.
__all__ = ["CHECK_NAMES", "FAIL", "PASS", "SKIP", "Check", "Verdict", "verify_case"]


@dataclass
class Verdict(CheckResults):
    """A case's verdict: every check (`forensic.verdicts.Check`), the checkpoint read, and the
    replay's per-step results when asked for."""

    case_dir: Path
    checks: list[Check]
    checkpoint: dict[str, Any] | None = None
    replay: list[dict[str, Any]] | None = None
    #: The RFC 3161 tokens on checkpoints that check 4 judged (spec §4.1).
    timestamps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failure(self) -> str | None:
        """The first failed check's sentence, or None."""
        failed = self.first_failure
        return None if failed is None else failed.detail

    def raise_for_failure(self) -> None:
        if not self.ok:
            raise VerificationError(f"Verification failed: {self.failure}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "case": str(self.case_dir),
            "ok": self.ok,
            "failure": self.failure,
            "checks": [c.as_dict() for c in self.checks],
            "checkpoint": self.checkpoint,
            "replay": self.replay,
            "timestamps": self.timestamps,
        }


#: The checks below end with this (`forensic.verdicts.CheckFailed`).
_Fail = CheckFailed


@dataclass
class _State:
    case_dir: Path
    case: Case | None = None
    entries: list[Entry] | None = None
    keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    policy: Any = None
    profile: str | None = None
    #: ``--checkpoint FILE``: a checkpoint kept outside the case that the journal must extend.
    external_checkpoint: Path | None = None
    #: Names of recorded files in evidence/ and derived/ (checks 6 and 7 note the others).
    recorded: set[str] = field(default_factory=set)
    #: The case is a bundle's copy whose originals stay in the evidence store (spec §12).
    evidence_withheld: bool = False
    #: Checks 1-5 of a journal alone (a report's attachment): no case folder around it.
    journal_only: bool = False
    timestamps: list[dict[str, Any]] = field(default_factory=list)


CHECK_NAMES = (
    "case folder and journal are readable",
    "every entry is signed by an examiner key enrolled in the case and valid for it",
    "hash chain is unbroken",
    "signed checkpoint covers the whole journal",
    "case manifest and policy match the record",
    "evidence files match their recorded hashes",
    "enhancement runs are complete and their stored outputs match their hashes",
    "every other file of the case folder is accounted for",
    "evidence and stored videos decode to their recorded pixel and frame hashes",
    "replaying every run from the evidence reproduces its recorded outputs",
)


def verify_case(
    case_dir: Path,
    *,
    trusted: Sequence[Ed25519PublicKey] = (),
    pixels: bool = False,
    replay: bool = False,
    journal_only: bool = False,
    checkpoint: Path | None = None,
    progress: Callable[[Check], None] | None = None,
    evidence_withheld: bool = False,
    replay_device: str = "auto",
) -> Verdict:
    """Run every check on ``case_dir``. Never raises for a broken case; see `Verdict`.

    ``replay_device`` (``auto``, ``cpu``, ``cuda``) is where ``replay`` re-runs generative
    steps (`forensic.pipeline.replay.replay_device`).

    ``progress`` sees each `Check` as it finishes (an interface shows the verdict lines as
    they come; a replay can take minutes).

    ``journal_only`` runs checks 1-5 (journal, signatures, chain, checkpoint, manifest and
    policy): what can be checked of a journal without the evidence, such as the copy attached
    to a report.

    ``checkpoint`` is a checkpoint kept outside the case (a copy of an earlier
    ``journal.checkpoint``): check 4 then also proves that the journal extends it, which no
    check inside the case alone can (a journal rolled back to an earlier, self-consistent
    state).
    """
    state = _State(
        case_dir=case_dir,
        external_checkpoint=checkpoint,
        evidence_withheld=evidence_withheld,
        journal_only=journal_only,
    )
    steps: list[Callable[[_State, Check], None]] = [
        _check_readable,
        lambda s, c: _check_signatures(s, c, {fingerprint(k) for k in trusted}),
        _check_chain,
        _check_checkpoint,
        _check_manifest_policy,
        _check_evidence,
        _check_runs,
        _check_other_files,
    ]
    names = list(CHECK_NAMES[:8])
    if journal_only:
        del steps[5:], names[5:]
        pixels = replay = False
    if pixels:
        steps.append(_check_pixels)
        names.append(CHECK_NAMES[8])
    if replay:
        steps.append(lambda s, c: _check_replay(s, c, verdict, replay_device))
        names.append(CHECK_NAMES[9])
    verdict = Verdict(case_dir=case_dir, checks=[])
    verdict.checks = run_checks(
        [(name, functools.partial(step, state)) for name, step in zip(names, steps, strict=True)],
        # Without a readable journal or trustworthy keys, the later checks mean nothing.
        blocking={1, 2},
        progress=progress,
    )
    verdict.timestamps = state.timestamps
    if state.case is not None:
        try:
            cp = read_checkpoint(case_dir)
            verdict.checkpoint = None if cp is None else cp.body
        except ForensicError:
            verdict.checkpoint = None
    return verdict


def _check_readable(state: _State, check: Check) -> None:
    state.case = open_case(state.case_dir)
    state.entries = read_entries(state.case.root)
    if not state.entries:
        raise _Fail("the journal is empty: the case.open entry is missing")
    check.detail = f"{len(state.entries)} entries"


def _describe(entry: Entry) -> str:
    try:
        payload = entry.payload
        if entry.kind == RUN_STEP.name:
            return (
                f"journal line {entry.line_no} (run {payload['run']} step {payload['step']}, "
                f"{payload['op']})"
            )
        if entry.kind == RUN.name:
            return f"journal line {entry.line_no} (run {payload['run']})"
    except (KeyError, TypeError, ValueError):
        pass
    return f"journal line {entry.line_no} ({entry.kind})"


def _check_signatures(state: _State, check: Check, trusted: set[str]) -> None:
    assert state.entries is not None
    first = state.entries[0]
    if first.kind != CASE_OPEN.name:
        raise _Fail(f"{_describe(first)} should be case.open: the start of the journal is missing")
    for entry in state.entries:
        where = _describe(entry)
        if entry.kind == CASE_OPEN.name:
            if entry is not first:
                raise _Fail(f"{where} opens the case a second time")
            ex = entry.payload.get("examiner", {})
            key = load_public_pem(str(ex.get("public_key", "")), where=where)
            fpr = fingerprint(key)
            if fpr != ex.get("fingerprint"):
                raise _Fail(f"{where}: the examiner's fingerprint does not match their public key")
            if trusted and fpr not in trusted:
                raise _Fail(
                    f"the case was opened with key {fpr[:16]}…, which is not one of the --trust keys"
                )
            state.keys[fpr] = key
        signer = state.keys.get(entry.envelope.keyid)
        if signer is None:
            raise _Fail(
                f"{where} is signed by key {entry.envelope.keyid[:16]}…, which is not enrolled in "
                "this case"
            )
        if entry.actor != entry.envelope.keyid:
            raise _Fail(f"{where} names actor {entry.actor[:16]}… but is signed by another key")
        if not verify_signature(
            signer, entry.envelope.signature, pae(ENTRY_TYPE, entry.envelope.payload)
        ):
            raise _Fail(
                f"{where}: the signature does not verify; the entry was altered after signing"
            )
        if entry.kind == PKI_BIND.name:
            from forensic.pki import check_binding

            try:
                check_binding(entry)
            except ForensicError as exc:
                raise _Fail(f"{where}: {exc.message}") from None
        if entry.kind == EXAMINER_ADD.name:
            key = load_public_pem(str(entry.payload.get("public_key", "")), where=where)
            if fingerprint(key) != entry.payload.get("fingerprint"):
                raise _Fail(f"{where}: the fingerprint does not match the enrolled public key")
            state.keys[fingerprint(key)] = key
        if entry.kind == KEY_ROTATE.name:
            _enrol_rotated_key(state, entry, where)
    _check_key_lifecycle(state)
    check.detail = f"{len(state.entries)} signatures, {len(state.keys)} examiner key(s)"
    if not trusted:
        check.notes.append(
            "keys were taken from the case itself; pass --trust PEM to pin the examiner's key"
        )


def _check_chain(state: _State, check: Check) -> None:
    assert state.entries is not None
    assert state.case is not None
    prev = "0" * 64
    for index, entry in enumerate(state.entries):
        where = _describe(entry)
        if entry.seq != index:
            raise _Fail(
                f"{where} has sequence number {entry.seq} where {index} was expected: "
                "an entry was deleted, inserted or moved"
            )
        if entry.body["prev"] != prev:
            raise _Fail(f"{where} does not follow the entry before it: the chain is broken")
        if entry.body["case_id"] != state.case.case_id:
            raise _Fail(
                f"{where} belongs to case {entry.body['case_id']!r}, not {state.case.case_id!r}"
            )
        prev = entry.hash
    check.detail = f"entries 0 to {len(state.entries) - 1}, head {prev[:16]}…"


def _check_checkpoint(state: _State, check: Check) -> None:
    assert state.entries is not None
    assert state.case is not None
    cp = read_checkpoint(state.case.root)
    try:
        interruption = assess_pending(state.case.root, state.entries, cp)
    except ForensicError as exc:
        raise _Fail(exc.message) from None
    if interruption is not None:
        # A crash between the writes of one append (spec §6), told apart from tampering by
        # the intent's signature; the next writer or `forensic case recover` finishes it.
        check.notes.append(
            f"{interruption.describe()}; any writing command or `forensic case recover` finishes it"
        )
        if interruption.action == COMPLETE:
            cp = interruption.pending.checkpoint
    if cp is None:
        raise _Fail(f"the signed checkpoint ({CHECKPOINT_FILE}) is missing")
    _check_signed_checkpoint(state, cp, "the checkpoint")
    count = len(state.entries)
    if cp.body["count"] != count:
        what = (
            "entries are missing from the end"
            if cp.body["count"] > count
            else "entries were added after it"
        )
        raise _Fail(
            f"the journal has {count} entries but the signed checkpoint records {cp.body['count']}: {what}"
        )
    if cp.body["root"] != entries_root(state.entries) or cp.body["head"] != state.entries[-1].hash:
        raise _Fail("the journal's Merkle root differs from the signed checkpoint")
    check.detail = f"{count} entries, root {cp.body['root'][:16]}…, signed {cp.body['time']}"
    if state.external_checkpoint is not None:
        check.detail += "; " + _check_extends(state, state.external_checkpoint)
    stamped = _check_timestamps(state, check)
    if stamped:
        check.detail += "; " + stamped


def _check_signed_checkpoint(state: _State, cp: Checkpoint, what: str) -> None:
    assert state.case is not None
    key = state.keys.get(cp.envelope.keyid)
    if key is None or cp.body["actor"] != cp.envelope.keyid:
        raise _Fail(f"{what} is signed by a key that is not enrolled in this case")
    if not verify_signature(key, cp.envelope.signature, pae(CHECKPOINT_TYPE, cp.envelope.payload)):
        raise _Fail(f"{what}'s signature does not verify; it was altered")
    if cp.body["case_id"] != state.case.case_id:
        raise _Fail(f"{what} belongs to another case")


#: An outside checkpoint is one line; anything larger is not one.
_MAX_CHECKPOINT_BYTES = 64 * 1024


def _check_extends(state: _State, path: Path) -> str:
    """The journal extends the checkpoint in ``path`` (``--checkpoint``): its first ``count``
    entries have the checkpoint's Merkle root and head."""
    assert state.entries is not None
    what = f"the checkpoint {path}"
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise _Fail(f"{what} is not a regular file")
        if info.st_size > _MAX_CHECKPOINT_BYTES:
            raise _Fail(f"{what} is {info.st_size} bytes: not a checkpoint (one line)")
        data = path.read_bytes()
    except OSError as exc:
        raise _Fail(f"cannot read {what}: {exc.strerror}") from None
    try:
        outside = parse_checkpoint(data, where=str(path))
    except ForensicError as exc:
        raise _Fail(exc.message) from None
    _check_signed_checkpoint(state, outside, what)
    count = int(outside.body["count"])
    if not _journal_extends(state, outside):
        raise _Fail(
            f"the journal does not extend {what} ({count} entries, root "
            f"{str(outside.body['root'])[:16]}…, signed {outside.body['time']}): entries it "
            "covers were removed or changed, or the journal was rolled back to an earlier state"
        )
    return f"extends {path.name} ({count} entries signed {outside.body['time']})"


def _journal_extends(state: _State, cp: Checkpoint) -> bool:
    """The journal's first ``count`` entries have the checkpoint's Merkle root and head."""
    assert state.entries is not None
    count = int(cp.body["count"])
    prefix = state.entries[:count]
    return (
        1 <= count <= len(state.entries)
        and entries_root(prefix) == cp.body["root"]
        and prefix[-1].hash == cp.body["head"]
    )


_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # forensic.timeutil.utc_timestamp
#: A token's time may precede its checkpoint's own (the examiner's clock) by this much.
_CLOCK_SKEW = timedelta(minutes=5)


def _check_timestamps(state: _State, check: Check) -> str:
    """Every RFC 3161 token in ``timestamps/`` (spec §4.1): the checkpoint copy beside it is
    the one its name and its imprint say, signed by an enrolled key, and extended by the
    journal; the token's CMS signature verifies and its TSA certificate chains to the case
    policy's TSA trust root. Returns a phrase for the detail ("" without tokens)."""
    from forensic.tsa import check_token

    assert state.case is not None
    assert state.entries is not None
    if state.journal_only:
        return ""  # a report's attached journal: its case's tokens are checked with the case
    store = state.case.store
    tokens = [n for n in store.listing(TIMESTAMPS_DIR) if n.endswith(STAMP_SUFFIX)]
    try:
        settings = state.case.policy().timestamps
    except ForensicError:
        if tokens:
            raise _Fail(
                "the case's policy cannot be read, so its TSA trust root cannot judge the "
                "timestamp tokens"
            ) from None
        return ""  # check 5 names what is wrong with the policy
    if not tokens:
        if settings is not None and settings.required:
            check.notes.append(
                "the policy requires trusted timestamps, but no checkpoint of this case has a "
                "token (`forensic timestamp CASE` takes one)"
            )
        return ""
    if settings is None:
        raise _Fail(
            f"{TIMESTAMPS_DIR}/ holds timestamp tokens, but the case's policy has no "
            "[timestamps] trust_root to judge them against"
        )
    latest = 0
    for name in tokens:
        digest = name.removesuffix(STAMP_SUFFIX)
        cp_rel, token_rel = timestamp_names(digest)
        try:
            line = store.read_bytes(cp_rel)
        except OSError:
            raise _Fail(f"{token_rel}: the checkpoint it covers, {cp_rel}, is missing") from None
        if sha256_hex(line.rstrip(b"\n")) != digest:
            raise _Fail(f"{cp_rel} is not the checkpoint its name says: its SHA-256 differs")
        try:
            cp = parse_checkpoint(line, where=cp_rel)
        except ForensicError as exc:
            raise _Fail(exc.message) from None
        _check_signed_checkpoint(state, cp, cp_rel)
        if not _journal_extends(state, cp):
            raise _Fail(
                f"the journal does not extend the timestamped checkpoint {cp_rel} "
                f"({cp.body['count']} entries): entries it covers were removed or changed"
            )
        try:
            token = store.read_bytes(token_rel)
        except OSError:
            raise _Fail(f"{token_rel} cannot be read") from None
        result = check_token(token, bytes.fromhex(digest), settings.trust_roots)
        if result.problem is not None:
            raise _Fail(f"{token_rel}: {result.problem}")
        assert result.gen_time is not None
        try:
            signed = datetime.strptime(str(cp.body["time"]), _TIME_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            raise _Fail(f"{cp_rel} has no valid time") from None
        if result.gen_time < signed - _CLOCK_SKEW:
            check.notes.append(
                f"{token_rel}: the TSA's time {result.gen_time:%Y-%m-%dT%H:%M:%SZ} is before "
                f"the time its checkpoint states ({cp.body['time']}): the examiner's clock was "
                "ahead"
            )
        state.recorded |= {cp_rel, token_rel}
        state.timestamps.append(
            {"token": token_rel, "checkpoint": cp_rel, "entries": int(cp.body["count"])}
            | result.as_dict()
        )
        latest = max(latest, int(cp.body["count"]))
    if settings.required and latest < len(state.entries):
        check.notes.append(
            f"{len(state.entries) - latest} entries were recorded after the last timestamped "
            "checkpoint (`forensic timestamp CASE` takes a token over the current one)"
        )
    last = max(state.timestamps, key=lambda t: int(t["entries"]))
    return (
        f"{len(tokens)} timestamp token(s) verified, the latest over {latest} entries at "
        f"{last['gen_time']} by {last['tsa']}"
    )


def _check_manifest_policy(state: _State, check: Check) -> None:
    assert state.entries is not None
    assert state.case is not None
    opened = state.entries[0].payload
    manifest = state.case.root / MANIFEST
    if sha256_hex(manifest.read_bytes()) != opened.get("manifest_sha256"):
        raise _Fail(f"{MANIFEST} differs from the one recorded when the case was opened")
    policy_path = state.case.root / POLICY_COPY
    try:
        digest = sha256_file(policy_path)[0]
    except FileNotFoundError:
        raise _Fail(f"the case's policy file {POLICY_COPY} is missing") from None
    if digest != opened.get("policy", {}).get("sha256"):
        raise _Fail(f"the case's {POLICY_COPY} was replaced or edited after the case was opened")
    from forensic.policy import parse_policy

    policy = parse_policy(policy_path.read_bytes(), where=f"the case's {POLICY_COPY}")
    if "sha256" not in policy.hash_algorithms or "ed25519" not in policy.signature_algorithms:
        raise _Fail(
            "the case's policy does not accept SHA-256 and Ed25519, which this journal uses "
            "(crypto.hash_algorithms, crypto.signature_algorithms)"
        )
    profile = opened["policy"].get("profile")
    if profile is not None:
        policy.profile(str(profile))
        state.profile = str(profile)
    state.policy = policy
    check.detail = (
        f"policy {opened['policy'].get('name')!r}"
        + (f", profile {profile!r}" if profile else "")
        + f", sha256 {digest[:16]}…"
    )


def _check_evidence(state: _State, check: Check) -> None:
    assert state.entries is not None
    assert state.case is not None
    items = exhibits(state.entries)
    referenced = set()
    withheld = 0
    for item in items:
        rel = item.stored
        referenced.add(Path(rel).name)
        path = state.case.store.local_path(rel)
        label = item.label
        try:
            digest, size = sha256_file(path)
        except FileNotFoundError:
            if state.evidence_withheld and not path.is_symlink():
                withheld += 1  # a bundle without originals (spec §12): the journal has the hash
                continue
            raise _Fail(f"{label}: the stored file {rel} is missing") from None
        if size != item["size"] or digest != item["sha256"]:
            raise _Fail(
                f"{label}: {rel} no longer matches its recorded SHA-256; the evidence was altered"
            )
        if os.stat(path).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
            check.notes.append(f"{label}: {rel} is writable; it should be read-only (0444)")
    state.recorded |= {f"{EVIDENCE_DIR}/{name}" for name in referenced}
    for stray in state.case.store.listing(EVIDENCE_DIR):
        if stray not in referenced:
            check.notes.append(f"evidence/{stray} is not recorded in the journal")
    check.detail = f"{len(items) - withheld} exhibit(s) re-hashed"
    if withheld:
        check.detail += (
            f"; {withheld} kept in the evidence store (not in this bundle): their recorded "
            "SHA-256 are in the journal"
        )


def _check_pixels(state: _State, check: Check) -> None:
    from forensic.media import analyse, sniff_image
    from forensic.videoio import hash_video

    assert state.entries is not None
    assert state.case is not None
    items = exhibits(state.entries)
    for item in items:
        label = item.label
        # Decode only what the journal records: a missing or altered file is named as such,
        # never handed to a decoder.
        path = state.case.store.check_file({"file": item.stored, "sha256": item.sha256}, label)
        try:
            with path.open("rb") as fh:
                is_image = sniff_image(fh.read(16)) is not None
            if is_image or item.get("frames") is None:
                record = analyse(path, where=label)
                if record.pixel_hash["sha256"] != item["pixel_hash"]["sha256"]:
                    raise _Fail(f"{label}: decoding no longer gives the recorded pixel hash")
                continue
            # A video: only its frame hashes are needed, not ingest's other facts.
            recorded = [f["sha256"] for f in item["frames"]]
            decoded = hash_video(path, where=label, check=_frames_are(recorded)).frames
        except (OSError, ValueError) as exc:
            raise _Fail(f"{label}: {item.stored} cannot be decoded: {exc}") from None
        if decoded != recorded:
            raise _Fail(f"{label}: decoding no longer gives the recorded frame hashes")
        leaves = [bytes.fromhex(h) for h in decoded]
        if merkle_root(leaves) != item["pixel_hash"]["sha256"]:
            raise _Fail(f"{label}: decoding no longer gives the recorded pixel hash")
    videos = _check_run_videos(state.case.store, state.entries)
    check.detail = f"{len(items)} exhibit(s) and {videos} stored video(s) decoded"


def _frames_are(recorded: list[str]) -> Callable[[VideoHashes], bool]:
    return lambda hashes: hashes.frames == recorded


def _video_roots(hashes: VideoHashes) -> tuple[int, str, str]:
    """(frames, Merkle root of the pixel hashes, Merkle root of the frame hashes)."""
    assert hashes.pixels is not None
    return (
        len(hashes.frames),
        merkle_root([bytes.fromhex(h) for h in hashes.pixels]),
        merkle_root([bytes.fromhex(h) for h in hashes.frames]),
    )


def _roots_are(expected: tuple[int, str, str]) -> Callable[[VideoHashes], bool]:
    return lambda hashes: _video_roots(hashes) == expected


def _check_run_videos(store: CaseStore, entries: list[Any]) -> int:
    """Every FFV1 video a streamed run stored decodes, frame by frame, to the pixel hashes and
    frame hashes recorded for it (the run checked the pixel-format mapping of each frame as it
    wrote it; this proves the files). One decoding gives both."""
    from forensic.videoio import hash_video

    count = 0
    for run in read_runs(entries):
        if not run.is_video:
            continue
        for what, record in run.files():
            if not str(record["file"]).endswith(".mkv"):
                continue
            label = f"run {run.run_id} {what} {record['file']}"
            path = store.check_file(record, label)
            expected = (record["frames"], record["merkle_root"], record["frame_hashes_root"])
            try:
                found = _video_roots(
                    hash_video(path, where=label, pixels=True, check=_roots_are(expected))
                )
            except (OSError, ValueError) as exc:
                raise _Fail(f"{label}: cannot be decoded: {exc}") from None
            if found[:2] != expected[:2]:
                raise _Fail(f"{label}: decoding does not give the recorded frames")
            if found[2] != expected[2]:
                raise _Fail(f"{label}: its frame hashes are not the recorded ones")
            count += 1
    return count


def _check_files(store: CaseStore, label: str, records: Sequence[FileRef], seen: set[str]) -> int:
    """Each (what, {file, sha256}) exists and matches its hash; names go into ``seen``."""
    for what, record in records:
        rel = str(record["file"])
        seen.add(Path(rel).name)
        try:
            digest = store.file_sha256(rel)
        except FileNotFoundError:
            raise _Fail(f"{label}: its {what} file {rel} is missing") from None
        if digest != record["sha256"]:
            raise _Fail(f"{label}: its {what} file {rel} no longer matches its recorded SHA-256")
    return len(records)


def _check_video_run(store: CaseStore, run: RunRecord, exhibit: ExhibitRecord, label: str) -> None:
    """A video run (forensic-run/2): its files hash right before they are read, its input
    frames are the exhibit's, and its per-frame chain holds (`_check_video_chain`)."""
    recorded_frames = exhibit.frames
    for f in load_artifact(store, run["inputs"], what=f"{label} input frame"):
        if f["frame"] >= len(recorded_frames) or (
            recorded_frames[f["frame"]]["sha256"] != f["source_sha256"]
        ):
            raise CaseError(f"{label} frame {f['frame']}: not a frame of {run.exhibit_id}")
    _check_video_chain(store, run)


def _check_video_chain(store: CaseStore, run: RunRecord) -> None:
    """Frame by frame, every step's input is the previous step's output (reductions: their
    inputs' hashes), the run's outputs are the last ones, and every Merkle root and count
    recorded in an entry matches its artifact. Raises CaseError naming the step and frame."""
    label = f"run {run.run_id}"
    steps = run.steps
    inputs = load_artifact(store, run["inputs"], what=f"{label} input frame")
    roots = [bytes.fromhex(i["source_sha256"]) for i in inputs]
    if len(inputs) != run["inputs"]["count"] or merkle_root(roots) != run["inputs"]["merkle_root"]:
        raise CaseError(f"{label}: its input frame list does not match its count or Merkle root")
    current: dict[int, str] = {i["frame"]: i["converted"]["pixel_sha256"] for i in inputs}
    for step in steps:
        where = f"{label} step {step['step']} ({step['op']})"
        applied = load_artifact(store, step["applied"], what=f"{where} frame")
        hashes = [bytes.fromhex(r["output"]["pixel_sha256"]) for r in applied]
        if (
            len(applied) != step["applied"]["count"]
            or merkle_root(hashes) != step["applied"]["merkle_root"]
        ):
            raise CaseError(f"{where}: its frame list does not match its count or Merkle root")
        for rec in applied:
            if "inputs" in rec:
                for source in rec["inputs"]:
                    if current.pop(source["frame"], None) != source["pixel_sha256"]:
                        raise CaseError(
                            f"{where}, frame {source['frame']}: its input is not the previous "
                            "step's output"
                        )
                if (
                    merkle_root([bytes.fromhex(i["pixel_sha256"]) for i in rec["inputs"]])
                    != rec["input"]["merkle_root"]
                ):
                    raise CaseError(f"{where}, frame {rec['frame']}: its inputs' root is wrong")
            elif current.get(rec["frame"]) != rec["input"]["pixel_sha256"]:
                raise CaseError(
                    f"{where}, frame {rec['frame']}: its input is not the previous step's output"
                )
            current[rec["frame"]] = rec["output"]["pixel_sha256"]
    outputs = load_artifact(store, run["frames"], what=f"{label} output frame")
    produced = [(o["frame"], o["output"]["pixel_sha256"]) for o in outputs]
    if produced != sorted(current.items()):
        raise CaseError(f"{label}: its outputs are not the last steps' outputs")
    leaves = [bytes.fromhex(h) for _, h in produced]
    if (
        merkle_root(leaves) != run["output"]["merkle_root"]
        or len(outputs) != run["frames"]["count"]
    ):
        raise CaseError(f"{label}: its output frame list does not match its Merkle root")
    if run["output"]["video"]["merkle_root"] != run["output"]["merkle_root"]:
        raise CaseError(f"{label}: its output video's frames are not its outputs")


def _check_runs(state: _State, check: Check) -> None:
    """Every run's steps exist and chain, frame by frame (evidence -> step -> ... -> output),
    every step was allowed by the case's profile, and the stored outputs and provenance maps
    match their recorded hashes."""
    assert state.entries is not None
    assert state.case is not None
    store = state.case.store
    items = {x.exhibit_id: x for x in exhibits(state.entries)}
    recorded = read_runs(state.entries)
    by_hash = {e.hash for e in state.entries}
    profile = None
    if state.policy is not None and state.profile is not None:
        profile = state.policy.profile(state.profile)
    files = 0
    referenced = {h for run in recorded for h in run.step_hashes}
    seen_runs: set[str] = set()
    for e in step_entries(state.entries):
        if e.hash not in referenced:
            raise _Fail(
                f"{_describe(e)} belongs to no run: an enhancement run was cut short or its "
                "run entry removed"
            )
    for run in recorded:
        if run.run_id in seen_runs:
            raise _Fail(f"run {run.run_id} is recorded twice")
        seen_runs.add(run.run_id)
    stored_files: set[str] = set()
    outputs: dict[str, str] = {}
    for run in recorded:
        steps = run.steps
        label = f"run {run.run_id}"
        if len(steps) != len(run.step_hashes) or not all(h in by_hash for h in run.step_hashes):
            raise _Fail(f"{label}: the journal lacks some of its step entries")
        exhibit = items.get(run.exhibit_id)
        if exhibit is None:
            raise _Fail(f"{label}: its exhibit {run.exhibit_id} was never ingested")
        for number, step in enumerate(steps, start=1):
            where = f"{label} step {number} ({step.get('op')})"
            if step.get("run") != run.run_id or step.get("step") != number:
                raise _Fail(f"{where}: the step entry belongs to another run or position")
            if profile is not None:
                try:
                    profile.check_operation(step["op"], step["lane"], where=where)
                except ForensicError as exc:
                    raise _Fail(exc.message) from None
            weights = step.model.get("weights_sha256")
            if weights is not None:
                copy = step.model.get("weights_copy")
                if copy is not None and copy.get("sha256") != weights:
                    raise _Fail(f"{where}: the stored weights are not the weights recorded")
                if profile is not None and weights not in profile.generative.approved_models:
                    raise _Fail(
                        f"{where}: its model weights {weights} are not approved by the policy"
                    )
                recorded_manifest = step.model.get("manifest")
                declared = None if profile is None else profile.generative.manifest(weights)
                if (
                    profile is not None
                    and recorded_manifest is not None
                    and (declared is None or declared.as_dict() != recorded_manifest)
                ):
                    raise _Fail(
                        f"{where}: the manifest recorded for model {weights} is not the one "
                        "the policy declares"
                    )
        if run.is_video:
            try:
                _check_video_run(store, run, exhibit, label)
            except CaseError as exc:
                raise _Fail(exc.message) from None
            files += _check_files(store, label, run.files(), stored_files)
            continue
        if run.get("media") == "video":
            raise _Fail(
                f"{label}: a {run.format} run of a {run.get('media')} exhibit; this version "
                "reads video runs only in the streamed format forensic-run/2"
            )
        if run.source_run is not None:
            earlier = outputs.get(run.source_run)
            if earlier is None or earlier != run["input"]["pixel_sha256"]:
                raise _Fail(f"{label}: its input is not the output of run {run.source_run}")
        elif run["input"]["pixel_sha256"] != exhibit.pixel_sha256:
            raise _Fail(f"{label}: its input is not exhibit {run.exhibit_id}'s pixels")
        outputs[run.run_id] = run.output["pixel_sha256"]
        start, chain, output = run.still_chain()
        expected = start["pixel_sha256"]
        for step, rec in chain:
            where = f"{label} step {step.number} ({step.op})"
            if rec["input"]["pixel_sha256"] != expected:
                raise _Fail(f"{where}: its input is not the previous step's output")
            expected = rec["output"]["pixel_sha256"]
        if output["pixel_sha256"] != expected:
            raise _Fail(f"{label}: its output is not the last step's output")
        files += _check_files(store, label, run.files(), stored_files)
    state.recorded |= {f"{DERIVED_DIR}/{name}" for name in stored_files}
    for stray in store.listing(DERIVED_DIR):
        if stray not in stored_files:
            check.notes.append(f"derived/{stray} is not recorded in the journal")
    by_entry = {e.hash: e for e in state.entries}
    for report in reports(state.entries):
        e = by_entry[report.entry_hash]
        try:
            digest = store.file_sha256(report.stored)
        except (FileNotFoundError, IsADirectoryError):
            raise _Fail(
                f"{_describe(e)}: the case's copy of the report {report.stored} is missing"
            ) from None
        if digest != report.sha256:
            raise _Fail(
                f"{_describe(e)}: the case's copy {report.stored} no longer matches its SHA-256"
            )
        files += 1
    steps_by_hash = {e.hash: e for e in step_entries(state.entries)}
    for e in state.entries:
        if e.kind != COSIGN.name:
            continue
        target = steps_by_hash.get(str(e.payload.get("entry")))
        if target is None or target.payload.get("lane") != "generative":
            raise _Fail(f"{_describe(e)} co-signs no generative step of this case")
        if target.actor == e.actor:
            raise _Fail(f"{_describe(e)} is signed by the step's own examiner")
    runs_seen: set[str] = set()
    for e in state.entries:  # a run is superseded only after it was recorded, and only once
        if e.kind == RUN.name:
            runs_seen.add(str(e.payload.get("run")))
        elif e.kind == RUN_SUPERSEDE.name:
            if str(e.payload.get("run")) not in runs_seen:
                raise _Fail(
                    f"{_describe(e)} supersedes no earlier run of this case that stood "
                    "(not recorded before it, or already superseded)"
                )
            runs_seen.discard(str(e.payload.get("run")))
    check.detail = (
        f"{len(recorded)} run(s), {sum(len(r.steps) for r in recorded)} step(s), {files} file(s)"
    )


#: What the tool itself keeps in a case root (spec §3-§6); the folders are checked by content.
_ROOT_FILES = frozenset({MANIFEST, POLICY_COPY, JOURNAL_FILE, CHECKPOINT_FILE, LOCK_FILE})
_ROOT_DIRS = frozenset({EVIDENCE_DIR, DERIVED_DIR, REPORTS_DIR, KEYS_DIR, TIMESTAMPS_DIR})
_MAX_PEM_BYTES = 64 * 1024


def _check_other_files(state: _State, check: Check) -> None:
    """The copies of enrolled public keys in ``keys/`` are those keys (spec §5 points
    independent verifiers at them); every other file anywhere in the case folder is one the
    record names, or is named here as a note (planted reports, stray keys, leftovers)."""
    assert state.entries is not None
    assert state.case is not None
    root = state.case.root
    expected = set(state.recorded)
    for fpr in state.keys:
        rel = f"{KEYS_DIR}/{fpr}.pem"
        expected.add(rel)
        path = root / rel
        if not path.exists() and not path.is_symlink():
            check.notes.append(
                f"{rel}, the copy of an enrolled examiner's public key, is missing (the key "
                "itself is in the journal: `forensic case show` prints it)"
            )
            continue
        try:
            if not path.is_file() or path.is_symlink() or path.stat().st_size > _MAX_PEM_BYTES:
                raise CaseError(f"{rel} is not a public key file")
            copy = load_public_pem(path.read_text("ascii"), where=rel)
        except (ForensicError, OSError, ValueError):
            copy = None
        if copy is None or fingerprint(copy) != fpr:
            raise _Fail(
                f"{rel} is not the public key enrolled in the journal under that fingerprint: "
                "it was replaced or damaged, and a verifier who uses it would check against "
                "the wrong key"
            )
    expected |= {r.stored for r in reports(state.entries)}
    count = 0
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        rel_dir = here.relative_to(root).as_posix()
        for name in sorted(dirnames):
            sub = here / name
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if sub.is_symlink():
                check.notes.append(f"{rel} is a symbolic link, which the tool never makes")
            elif rel_dir != "." or name not in _ROOT_DIRS:
                check.notes.append(f"{rel}/ is a folder the record does not know")
        dirnames[:] = []
        if rel_dir == ".":
            dirnames[:] = sorted(d for d in _ROOT_DIRS if (root / d).is_dir())
            dirnames[:] = [d for d in dirnames if not (root / d).is_symlink()]
        for name in sorted(filenames):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            count += 1
            if (here / name).is_symlink():
                check.notes.append(f"{rel} is a symbolic link, which the tool never makes")
            elif (rel_dir == "." and name in _ROOT_FILES) or rel in expected:
                continue
            elif rel_dir in (EVIDENCE_DIR, DERIVED_DIR):
                continue  # checks 6 and 7 name what they do not know
            elif name.startswith(".tmp-"):
                check.notes.append(f"{rel} is a temporary file left by an interrupted command")
            elif rel_dir == "." and name == PENDING_FILE:
                continue  # check 4
            else:
                check.notes.append(f"{rel} is not recorded in the journal")
    check.detail = f"{count} file(s) in the case folder, {len(check.notes)} noted"


def _check_replay(state: _State, check: Check, verdict: Verdict, device: str = "auto") -> None:
    from forensic.pipeline.replay import replay_run

    assert state.entries is not None
    assert state.case is not None
    policy = state.policy
    tolerance = (policy.max_abs_difference, policy.min_psnr_db) if policy else (0, float("inf"))
    results = []
    for run in read_runs(state.entries):
        results += replay_run(
            state.case,
            run,
            max_abs_difference=tolerance[0],
            min_psnr_db=tolerance[1],
            device=device,
        )
    verdict.replay = [r.as_dict() for r in results]
    failed = [r for r in results if r.verdict == "not reproduced"]
    loose = [r for r in results if r.verdict == "within tolerance"]
    for r in loose:
        check.notes.append(
            f"run {r.run} step {r.step} ({r.op}): within tolerance, max difference "
            f"{r.max_abs_difference}, PSNR {r.psnr_db} dB; environment differs: "
            + "; ".join(r.differences[:4])
        )
    if failed:
        first = failed[0]
        raise _Fail(
            f"run {first.run} step {first.step} ({first.op}) was not reproduced"
            + (f": {first.detail}" if first.detail else "")
        )
    exact = sum(r.verdict == "bit-exact" for r in results)
    check.detail = f"{len(results)} step(s): {exact} bit-exact, {len(loose)} within tolerance"


# -- key lifecycle (issue 15): rotation and revocation, judged by forensic.keyring ---------------


def _enrol_rotated_key(state: _State, entry: Entry, where: str) -> None:
    """A ``key.rotate`` entry (its old key's signature already checked): the new key's
    signature must hold too; then the new key signs for the examiner."""
    from forensic.keyring import rotation_key

    try:
        key = rotation_key(entry, enrolled=state.keys)
    except ForensicError as exc:
        raise _Fail(f"{where}: {exc.message}") from None
    state.keys[fingerprint(key)] = key


def _check_key_lifecycle(state: _State) -> None:
    """No entry is signed by a key replaced before it, or revoked from before its time."""
    from forensic.keyring import lifecycle_failure

    assert state.entries is not None
    problem = lifecycle_failure(state.entries)
    if problem is not None:
        raise _Fail(problem)
