"""The application API: everything a person does with forensic, as plain functions.

Interfaces (the CLI, the workbench, the batch runner) call only this module. Each function
takes explicit arguments (the clock as ``now=``, keys as `Signer` values, callbacks for progress
and cancellation) and returns a typed value; failures raise `forensic.errors.ForensicError`
subclasses, which an interface turns into a message in one place. Nothing here reads a
terminal, prints or exits.

Groups:

* keys and signers: `create_keys`, `key_info`, `public_key_pem`, `unlock_signer`,
  `unlock_report_signer` (a passphrase is a string or a callable that returns one, so a TTY
  prompt, an environment variable and a web form are all the same to it);
* cases: `create_case`, `open_case`, `case_overview`, `add_examiner`;
* evidence: `ingest`, `exhibits`;
* runs: `load_recipe`, `plan_run` (every problem, before anything runs), `run_recipe`
  (progress and cancel hooks), `runs`, `find_run`, `replay_run`, `export_run`, `export_c2pa`, `cosign`;
* verification: `verify_case`; bundles and timestamps: `write_bundle`, `verify_bundle`,
  `is_bundle`, `timestamp_case`;
* reports: `issue_report`, `approve_report`, `verify_report`, `pki_init`, `pki_bind`;
* reference: `check_policy`, `operations`, `operation`, `bundled_recipes`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from forensic import bundle as bundle_mod
from forensic import case as case_mod
from forensic import cosign as cosign_mod
from forensic import export as export_mod
from forensic import ingest as ingest_mod
from forensic import keyring as keyring_mod
from forensic import keys as keys_mod
from forensic import pki as pki_mod
from forensic import recipe as recipe_mod
from forensic import report as report_mod
from forensic import tsa as tsa_mod
from forensic import verify as verify_mod
from forensic.case import Case
from forensic.errors import ForensicError, InputError
from forensic.journal import Entry, enrolled_keys
from forensic.keys import KeyInfo, Signer
from forensic.ops.framework import Operation
from forensic.pipeline import replay as replay_mod
from forensic.pipeline import run as run_mod
from forensic.pipeline import steps as steps_mod
from forensic.pipeline.replay import StepVerdict
from forensic.pki import ReportSigner
from forensic.policy import Policy
from forensic.records import ExhibitRecord, ReportRecord, RunRecord, read_runs
from forensic.records import exhibits as read_exhibits
from forensic.records import find_run as read_run
from forensic.records import reports as read_reports
from forensic.store import DERIVED_DIR, EVIDENCE_DIR, KEYS_DIR, REPORTS_DIR, TIMESTAMPS_DIR
from forensic.timeutil import utc_timestamp
from forensic.verify import Verdict

#: A passphrase, or a function that asks for one (called at most once per call that needs it).
Passphrase = str | Callable[[], str]


def _passphrase(passphrase: Passphrase) -> str:
    return passphrase() if callable(passphrase) else passphrase


# -- keys and signers ----------------------------------------------------------------------------


def create_keys(
    key_dir: Path | None, *, name: str, passphrase: Passphrase, now: datetime
) -> KeyInfo:
    """Create the examiner's journal key in ``key_dir`` (default: the user's key folder)."""
    folder = keys_mod.resolve_key_dir(key_dir)
    return keys_mod.create_key(folder, name=name, passphrase=_passphrase(passphrase), now=now)


def key_info(key_dir: Path | None) -> KeyInfo:
    return keys_mod.read_key_info(keys_mod.resolve_key_dir(key_dir))


def public_key_pem(key_dir: Path | None) -> str:
    return keys_mod.public_pem(key_info(key_dir).public_key)


def unlock_signer(key_dir: Path | None, passphrase: Passphrase) -> Signer:
    """The examiner's journal signer."""
    return keys_mod.unlock(keys_mod.resolve_key_dir(key_dir), _passphrase(passphrase))


def unlock_report_signer(
    key_dir: Path | None,
    passphrase: Passphrase,
    *,
    notify: Callable[[str], None] | None = None,
) -> tuple[Signer, ReportSigner]:
    """The journal key and the report-signing key, which share the examiner's passphrase
    (asked once). Report keys in the PKCS#8 format of earlier versions are upgraded to the
    journal key's format on the way (`upgrade_keys`); ``notify`` sees a sentence for each."""
    folder = keys_mod.resolve_key_dir(key_dir)
    secret = _passphrase(passphrase)
    signer = keys_mod.unlock(folder, secret)
    return signer, pki_mod.load_report_signer(folder, passphrase=secret, notify=notify)


# -- cases ---------------------------------------------------------------------------------------


#: Create a case folder and sign its ``case.open`` entry.
create_case = case_mod.init_case


open_case = case_mod.open_case


@dataclass(frozen=True)
class CaseOverview:
    """What a case holds, read from its journal (nothing is verified)."""

    case: Case
    entries: int
    policy: dict[str, Any]
    examiners: dict[str, str]
    exhibits: list[ExhibitRecord]
    runs: list[RunRecord]
    reports: list[ReportRecord]
    awaiting_cosignature: list[dict[str, Any]] = field(default_factory=list)
    #: Each enrolled key's lifecycle: active, replaced (``key.rotate``) or revoked.
    keys: list[KeyStatus] = field(default_factory=list)


@dataclass(frozen=True)
class KeyStatus:
    """One enrolled key as `case show` lists it: ``status`` is "active", "replaced" (with
    ``replaced_by`` and the journal ``line``) or "revoked" (with ``effective``, ``reason`` and
    the ``line``); a key both replaced and revoked is "revoked" with both."""

    fingerprint: str
    name: str
    status: str
    line: int | None = None
    replaced_by: str | None = None
    effective: str | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def key_statuses(entries: Sequence[Entry]) -> list[KeyStatus]:
    """Every enrolled key's lifecycle, read from the journal as written (``verify`` checks that
    the rotations and revocations are valid). A malformed lifecycle entry leaves the keys
    listed as enrolled, each "active": `case show` describes, verify judges."""
    try:
        ring = keyring_mod.read_keyring(entries)
    except ForensicError:
        return [KeyStatus(f, n, "active") for f, n in enrolled_keys(list(entries)).items()]
    out: list[KeyStatus] = []
    for fpr, name in ring.names.items():
        rotation = ring.rotations.get(fpr)
        revocation = ring.revocation(fpr)
        if revocation is not None:
            out.append(
                KeyStatus(
                    fpr,
                    name,
                    "revoked",
                    line=revocation.line,
                    replaced_by=rotation.new if rotation else None,
                    effective=utc_timestamp(revocation.effective),
                    reason=revocation.reason,
                )
            )
        elif rotation is not None:
            out.append(
                KeyStatus(fpr, name, "replaced", line=rotation.line, replaced_by=rotation.new)
            )
        else:
            out.append(KeyStatus(fpr, name, "active"))
    return out


def case_overview(case: Case) -> CaseOverview:
    entries = case.entries()
    return CaseOverview(
        case=case,
        entries=len(entries),
        policy=dict(entries[0].payload.get("policy") or {}) if entries else {},
        examiners=enrolled_keys(entries),
        exhibits=read_exhibits(entries),
        runs=read_runs(entries),
        reports=read_reports(entries),
        awaiting_cosignature=cosign_mod.missing_cosignatures(
            entries, required=_cosign_required(case)
        ),
        keys=key_statuses(entries),
    )


def _cosign_required(case: Case) -> bool:
    try:
        return bool(case.profile().generative.require_cosign)
    except ForensicError:
        return True  # an unreadable policy: show everything that might need one


#: Enrol another examiner (signed by an enrolled one).
add_examiner = case_mod.enrol_examiner


# -- evidence ------------------------------------------------------------------------------------


#: Ingest files into a case, all or nothing.
ingest = ingest_mod.ingest


def exhibits(case: Case) -> list[ExhibitRecord]:
    return read_exhibits(case.entries())


# -- runs ----------------------------------------------------------------------------------------


#: A recipe file, or the name of a recipe shipped with forensic.
load_recipe = recipe_mod.load_recipe
bundled_recipes = recipe_mod.bundled_recipes
#: Check a recipe against an exhibit (or a still run's output) and the case's policy; every
#: problem found, no pixel read, nothing recorded.
plan_run = steps_mod.plan_run
#: Run and record a recipe; ``cancel`` returning True stops it with nothing recorded.
run_recipe = run_mod.run_recipe
#: A recipe run over ``--frames A:B`` or ``--seconds S:E`` (a shipped recipe on a video).
recipe_with_range = recipe_mod.with_range
#: Journal that a run is superseded (``run.supersede``), with the examiner's reason.
supersede_run = run_mod.supersede_run
#: Refuse a run name a report cannot print (batch manifests check theirs before any work).
check_run_name = run_mod.check_run_name


def runs(case: Case) -> list[RunRecord]:
    return read_runs(case.entries())


def find_run(case: Case, ref: str) -> RunRecord:
    return read_run(case.entries(), ref, case_id=case.case_id)


def replay_run(case: Case, ref: str, *, device: str = "auto") -> list[StepVerdict]:
    """Re-run one recorded run from the evidence and judge each step under the case's
    policy tolerance; generative steps run on ``device`` (``auto``: the recorded kind when
    present here, else the CPU) and their verdicts name both devices."""
    policy = case.policy()
    return replay_mod.replay_run(
        case,
        find_run(case, ref),
        max_abs_difference=policy.max_abs_difference,
        min_psnr_db=policy.min_psnr_db,
        device=device,
    )


#: Write a run's output out of the case (journaled).
export_run = export_mod.export_run
#: A still run's output with C2PA Content Credentials, signed with the report certificate.
export_c2pa = export_mod.export_c2pa
cosign = cosign_mod.cosign
COSIGN_STATEMENT = cosign_mod.STATEMENT


# -- verification --------------------------------------------------------------------------------


def verify_case(
    case_dir: Path,
    *,
    trusted: Sequence[Any] = (),
    pixels: bool = False,
    replay: bool = False,
    checkpoint: Path | None = None,
    progress: Callable[[verify_mod.Check], None] | None = None,
    replay_device: str = "auto",
) -> Verdict:
    """The numbered checks over a case (never raises for a broken case; see `Verdict`).
    ``checkpoint`` is a checkpoint kept outside the case that the journal must extend;
    ``progress`` sees each check as it finishes; ``replay_device`` is where a replay re-runs
    generative steps (``auto``, ``cpu``, ``cuda``)."""
    return verify_mod.verify_case(
        case_dir,
        trusted=trusted,
        pixels=pixels,
        replay=replay,
        checkpoint=checkpoint,
        progress=progress,
        replay_device=replay_device,
    )


def load_trusted_keys(paths: Sequence[Path]) -> list[Any]:
    """Public keys to pin (``verify --trust``), read from PEM files."""
    from forensic.errors import InputError

    out = []
    for path in paths:
        try:
            text = read_pem_file(path, what="trusted key")
        except UnicodeDecodeError as exc:
            raise InputError(f"cannot read the trusted key {path}: {exc}") from None
        out.append(keys_mod.load_public_pem(text, where=str(path)))
    return out


# -- reports -------------------------------------------------------------------------------------


def pki_init(
    key_dir: Path | None, *, lab: str, passphrase: Passphrase, now: datetime
) -> tuple[Path, ReportSigner]:
    """Create the lab CA and the report-signing certificate in the examiner's key folder
    (never overwrites); returns the folder and the new report signer."""
    folder = keys_mod.resolve_key_dir(key_dir)
    secret = _passphrase(passphrase)
    signer = keys_mod.unlock(folder, secret)
    return folder, pki_mod.init_pki(folder, signer, passphrase=secret, lab=lab, now=now)


pki_bind = pki_mod.bind
issue_report = report_mod.issue_report
approve_report = report_mod.approve_report
verify_report = report_mod.verify_report


# -- reference -----------------------------------------------------------------------------------


def check_policy(path: Path) -> Policy:
    from forensic.policy import load_policy

    return load_policy(path)


#: Which lanes `operations` can list.
LANES = ("classical", "generative", "all")


def operations(*, include_temporal: bool = True, lane: str = "classical") -> dict[str, Operation]:
    """The operations of ``lane`` (classical, generative or all) by name. Listing the
    generative lane imports it (and torch): a classical listing never does."""
    from forensic.classical.registry import registry

    if lane not in LANES:
        raise InputError(f"lane {lane!r}: no such lane", hint=f"lanes: {', '.join(LANES)}")
    found: dict[str, Operation] = {}
    if lane in ("classical", "all"):
        found.update(registry(include_temporal=include_temporal))
    if lane in ("generative", "all"):
        from forensic import lanes

        for name in lanes.generative_names():
            op = lanes.lookup(name)
            if op is not None:
                found[name] = op
    return found


def operation(name: str) -> Operation:
    """The current version of operation ``name`` in either lane (``generative.`` names the
    generative lane)."""
    from forensic import lanes
    from forensic.classical.registry import get

    if not name.startswith(lanes.GENERATIVE_PREFIX):
        return get(name)
    op = lanes.lookup(name)
    if op is None:
        names = lanes.generative_names()
        close = [n for n in names if name.lower() in n or n in name.lower()]
        raise InputError(
            f"no generative operation named {name!r}",
            hint=(f"did you mean {', '.join(close)}? " if close else "")
            + "`forensic ops list --lane generative` shows them all",
        )
    return op


# == Requested by the CLI (forensic/cli/) ========================================================
# Added while the CLI moved onto this module; to be reviewed by the API's owner and folded into
# the groups above. Nothing above this line was changed.


def write_public_key(key_dir: Path | None, out: Path) -> str:
    """Write the examiner's public key as PEM to the new file ``out`` (atomically; never
    overwrites); returns the PEM."""
    from forensic.errors import InputError
    from forensic.fsutil import write_atomic

    pem = public_key_pem(key_dir)
    if out.exists():
        raise InputError(f"{out} already exists", hint="choose a new file name")
    write_atomic(out, pem.encode("ascii"))
    return pem


def public_key_from_pem(text: str, *, where: str) -> Any:
    """An Ed25519 public key from PEM text (``verify --trust``); ``where`` names it in
    messages. `load_trusted_keys` reads files and names them its own way."""
    return keys_mod.load_public_pem(text, where=where)


def run_output_frames(case: Case, run: RunRecord) -> list[dict[str, Any]]:
    """A video run's per-frame output records (its hashed artifact, checked against its
    recorded SHA-256); empty for a still run."""
    if not run.is_video:
        return []
    from forensic.records import load_artifact

    return load_artifact(case.store, run["frames"], what=f"run {run['run']} output frame")


def http_timestamper(url: str | None) -> Any:
    """The RFC 3161 time-stamping client for ``url`` (``--tsa-url``), or None without one;
    pass it to `issue_report` / `approve_report` as ``timestamper``."""
    if not url:
        return None
    return tsa_mod.HttpTimeStamper(url)


def read_pem_file(path: Path, *, what: str) -> str:
    """The text of a PEM file given on the command line (a public key): a regular file of at
    most 64 KiB (a FIFO or device is refused by type, not read); UnicodeDecodeError when it
    is not ASCII."""
    from forensic.fsutil import read_regular

    return read_regular(path, what=what, max_bytes=64 << 10).decode("ascii")


# -- recovery after a crash ------------------------------------------------------------------------


@dataclass(frozen=True)
class Recovery:
    """What `recover_case` did: the journaled ``case.recover`` entry (None when no append was
    interrupted) and the temporary files it found in the case's folders (removed only when
    asked: another command may be writing them)."""

    entry: Entry | None
    temporaries: tuple[str, ...]
    removed_temporaries: bool


def recover_case(
    case: Case, *, signer: Signer, now: datetime, remove_temporaries: bool = False
) -> Recovery:
    """Finish an append that a crash interrupted (docs/spec.md §6), journaling how, and list
    (or remove) the temporary files that interrupted commands left in the case's folders.

    Any writing command does the first part by itself; this is the explicit, manual step.
    ``remove_temporaries`` must only be used when no other command is working on the case.
    """
    from forensic.store import STAGING_PREFIX

    with case.writer(signer) as writer:
        entry = writer.stage_recovery(now=now)
        writer.commit(now=now)
        temporaries = sorted(
            f"{folder}/{name}"
            for folder in (EVIDENCE_DIR, DERIVED_DIR, REPORTS_DIR, KEYS_DIR, TIMESTAMPS_DIR)
            for name in case.store.listing(folder)
            if name.startswith(STAGING_PREFIX)
        )
        if remove_temporaries:
            for rel in temporaries:
                case.store.local_path(rel).unlink(missing_ok=True)
    return Recovery(entry, tuple(temporaries), remove_temporaries)


# == Requested by the workbench (forensic/workbench/) ============================================
# Looking without recording: nothing below writes to a case.

#: A recipe from TOML text (the workbench's editor and its "load" button); the same checks
#: and messages as a recipe file.
parse_recipe = recipe_mod.parse_recipe


def case_viewer(case: Case) -> Any:
    """Read-only access to the case's images by reference (``E1``, ``R2``, ``R2.map``,
    ``R2.3``), video frames found frame-exactly from the nearest keyframe with a small cache
    (`forensic.pipeline.viewer.CaseViewer`)."""
    from forensic.pipeline.viewer import CaseViewer

    return CaseViewer(case)


def preview_recipe(
    case: Case, source_ref: str, recipe: Any, *, index: int | None = None, image: Any = None
) -> Any:
    """``recipe`` computed on one frame (``index`` of a video, or the still) with the run's
    own step code; checked first like `plan_run` (its first problem is raised). Nothing is
    stored or journaled: the result (`forensic.pipeline.viewer.Preview`) is not a record.
    ``image`` is that frame when the caller has it decoded already."""
    from dataclasses import replace

    from forensic.pipeline.sources import find_source
    from forensic.pipeline.viewer import preview

    checked = recipe
    source = find_source(case, source_ref)
    if source.is_video and all(s.frames is None and s.seconds is None for s in recipe.steps):
        # A preview is one frame: a recipe without frame ranges is checked as if it had one.
        frame = 0 if index is None else index
        checked = replace(
            recipe, steps=tuple(replace(s, frames=(frame, frame)) for s in recipe.steps)
        )
    plan = plan_run(case, source_ref, checked)
    plan.raise_first()
    return preview(case, plan.source, plan.recipe, image=image, index=index)


# == Key at-rest upgrade and key lifecycle (issue 15) ============================================


def upgrade_keys(key_dir: Path | None, passphrase: Passphrase) -> list[pki_mod.KeyUpgrade]:
    """Rewrite the key folder's legacy PKCS#8 report and CA keys in the journal key's format
    (scrypt); the journal key is unlocked first, so a wrong passphrase changes nothing.
    Returns what was upgraded (empty when the folder was already up to date)."""
    folder = keys_mod.resolve_key_dir(key_dir)
    secret = _passphrase(passphrase)
    keys_mod.unlock(folder, secret)
    return pki_mod.upgrade_pki_keys(folder, passphrase=secret)


#: Replace the examiner's key in a case (``key.rotate``, signed by the old key and the new).
rotate_key = case_mod.rotate_key
#: Revoke an enrolled key from an effective time (``key.revoke``).
revoke_key = case_mod.revoke_key
#: ``--effective`` text to an aware datetime (InputError naming the option otherwise).
parse_effective = case_mod.parse_effective


#: Largest model file ``approve_model`` reads (ONNX's protobuf limit is 2 GiB).
MAX_MODEL_BYTES = 2 << 30


def approve_model(path: Path, manifest: dict[str, Any], *, profile: str) -> dict[str, Any]:
    """What a lab adds to its policy to approve an ONNX model file: its SHA-256 and declared
    ``manifest`` (checked against the graph by a trial run on a blank input), as a
    ``[[profiles.PROFILE.generative.models]]`` entry. The file is read once; nothing is
    written."""
    from forensic.errors import InputError, ParameterError
    from forensic.fsutil import open_regular
    from forensic.hashing import sha256_hex
    from forensic.lanes import inspect_model
    from forensic.ops.models import parse_manifest

    def fail(message: str) -> InputError:
        return InputError(f"the manifest {message}")

    if not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", profile):
        raise InputError(
            f"--profile {profile!r}: a profile name is lowercase letters, digits, - or _"
        )
    declared = parse_manifest(manifest, fail)
    with os.fdopen(open_regular(path, what="model file"), "rb") as fh:
        data = fh.read(MAX_MODEL_BYTES + 1)
    if len(data) > MAX_MODEL_BYTES:
        raise InputError(f"model file {path} is larger than {MAX_MODEL_BYTES:,} bytes")
    digest = sha256_hex(data)
    try:
        graph = inspect_model(data, declared, where=str(path))
    except ParameterError as exc:
        raise InputError(f"{path}: {exc.detail}", hint=exc.hint) from None
    entry = (
        f"[[profiles.{profile}.generative.models]]\n"
        f'sha256 = "{digest}"\n'
        f"manifest = {declared.toml()}\n"
    )
    return {
        "ok": True,
        "file": str(path),
        "bytes": len(data),
        "sha256": digest,
        "manifest": declared.as_dict(),
        "graph": graph,
        "profile": profile,
        "policy_entry": entry,
    }


# -- evidence bundles and trusted timestamps (issue 20) ------------------------------------------


def timestamp_case(case: Case) -> tsa_mod.Stamp:
    """Take an RFC 3161 token over the case's current checkpoint from the TSA its policy
    names, check it against the policy's TSA trust root and store it (`forensic.tsa.Stamp`)."""
    return tsa_mod.stamp_checkpoint(case)


def write_bundle(
    case: Case,
    out: Path,
    *,
    now: datetime,
    archive: bool = False,
    templates_dir: Path | None = None,
) -> bundle_mod.Bundled:
    """Write the case as a BagIt evidence bundle (`forensic.bundle.Bundled`); with a
    ``[timestamps]`` policy, a token over the checkpoint is taken first (required: or fail)."""
    return bundle_mod.write_bundle(
        case,
        out,
        now=now,
        archive=archive,
        templates_dir=templates_dir,
        stamp=lambda c: tsa_mod.stamp_checkpoint(c).as_dict(),
    )


def is_bundle(path: Path) -> bool:
    """``path`` is an evidence bundle (a BagIt folder or its tar), not a case or a report."""
    return bundle_mod.is_bundle(path)


def verify_bundle(
    path: Path, *, trusted: Sequence[Any] = (), pixels: bool = False, replay: bool = False
) -> bundle_mod.BundleVerdict:
    """The bundle's checks, then the case's and every report's inside it
    (`forensic.bundle.BundleVerdict`; never raises for a bad bundle)."""
    return bundle_mod.verify_bundle(path, trusted=trusted, pixels=pixels, replay=replay)


def report_tsa_url(case: Case, tsa_url: str | None) -> str | None:
    """The TSA that countersigns a report's PDF signature: ``--tsa-url``, else the case
    policy's ``[timestamps] url``, else none."""
    if tsa_url:
        return tsa_url
    settings = case.policy().timestamps
    return None if settings is None else settings.url


# == Requested by the batch runner (forensic/batch/, issue 19) ====================================
# Workers compute (ingest's copy and decoding, a still run, a part of a video run); the process
# holding the signing key records, through the same code as `ingest` and `run_recipe`.

#: Phase 1 of ingest for one file (`forensic.ingest.Prepared`, a temporary copy in the case).
prepare_ingest = ingest_mod.prepare
#: Phase 2: journal prepared files (a file already in the case keeps its exhibit, no entry).
commit_ingest = ingest_mod.commit


def split_run(plan: steps_mod.RunPlan, frames_per_part: int) -> list[list[int]]:
    """A video run's frames in parts cut at safe points (`forensic.pipeline.parts`)."""
    from forensic.pipeline.parts import split_frames

    return split_frames(plan, frames_per_part)


def compute_run_part(
    case: Case, plan: steps_mod.RunPlan, indices: list[int] | None, *, first: bool
) -> Any:
    """Compute (never record) a still run whole (``indices`` None) or one part of a video
    run; ``first`` marks the part that also checks the stored file's SHA-256."""
    from forensic.pipeline.parts import compute_video_part
    from forensic.pipeline.still import compute_still

    if indices is None:
        return compute_still(case, plan)
    return compute_video_part(case, plan, indices, check_file=first)


def recorded_runs_like(case: Case, plan: steps_mod.RunPlan) -> list[RunRecord]:
    """Runs already recorded with the same recipe bytes, input and range (a rerun adds
    nothing; the batch skips them)."""
    return run_mod.same_runs(case.entries(), plan)


def record_run(
    case: Case,
    plan: steps_mod.RunPlan,
    computed: Any,
    *,
    signer: Signer,
    now: datetime,
    name: str | None = None,
) -> steps_mod.RunSummary:
    """Store and journal a run computed by `compute_run_part`: a still's result, or a video's
    parts in order (an iterable, consumed lazily), exactly as `run_recipe` would have. A run
    identical to a recorded one is refused (`InputError`); a failure records nothing."""
    from forensic.errors import InputError
    from forensic.pipeline.parts import replay_parts
    from forensic.pipeline.still import run_still
    from forensic.pipeline.video import run_video

    earlier = recorded_runs_like(case, plan)
    if earlier:
        raise InputError(
            f"recipe {plan.recipe.name!r} was already run on {plan.source.label} with the same "
            f"range: {', '.join(r.run_id for r in earlier)}"
        )
    if plan.indices is None:
        return run_still(case, plan, signer=signer, now=now, name=name, computed=computed)
    return run_video(
        case, plan, signer=signer, now=now, name=name, computed=replay_parts(plan, computed)
    )


def generative_devices(case: Case) -> list[dict[str, Any]]:
    """Where ``case``'s generative steps may run from this machine: for ``auto``, ``cpu`` and
    ``cuda``, ``{name, available, reason, uses, note}`` (``reason`` says why a choice is not
    available: the case's policy, ``generative.devices``, or no CUDA GPU here). The choices
    `run_recipe`'s ``device`` accepts; the workbench's device selector shows them."""
    from forensic.lanes import device_options

    return device_options(case.profile().generative.devices)
