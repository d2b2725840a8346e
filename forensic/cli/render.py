"""Everything the CLI prints: text on a rich `Console`, ``--json`` documents, progress bars.

Each function takes values the application API (`forensic.api`) returned and prints them;
none reads a case, a key or the clock.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    from forensic.api import CaseOverview
    from forensic.case import Case
    from forensic.ingest import IngestResult
    from forensic.journal import Entry
    from forensic.keys import KeyInfo
    from forensic.ops.framework import Operation
    from forensic.pipeline.steps import RunSummary
    from forensic.pki import ReportSigner
    from forensic.policy import Policy
    from forensic.records import ExhibitRecord, ReportRecord, RunRecord
    from forensic.report import Issued, ReportVerdict
    from forensic.verify import Check, Verdict

#: Output frames `case show` prints per run; --json lists them all.
SHOWN_FRAMES = 20


def console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


# -- keys ----------------------------------------------------------------------------------------


def key(info: KeyInfo, pem: str, as_json: bool, *, created: bool) -> None:
    data = {
        "name": info.name,
        "fingerprint": info.fingerprint,
        "created": info.created,
        "key_file": str(info.path),
        "public_key": pem,
    }
    if as_json:
        emit_json(data)
        return
    out = console()
    if created:
        out.print(f"Created examiner key for {info.name} in {info.path}")
    out.print(f"Examiner:    {info.name}")
    out.print(f"Fingerprint: {info.fingerprint}  (SHA-256 of the raw Ed25519 public key)")
    out.print(f"Created:     {info.created}")
    out.print(f"Key file:    {info.path}")
    out.print(pem, end="")


def public_key(pem: str, info: KeyInfo, out: Path | None, as_json: bool) -> None:
    """`keys export-public`: the PEM on standard output, or the file written (``out``)."""
    if as_json:
        emit_json(
            {
                "name": info.name,
                "fingerprint": info.fingerprint,
                "public_key": pem,
                "file": None if out is None else str(out),
            }
        )
    elif out is None:
        sys.stdout.write(pem)
    else:
        console().print(f"Wrote public key to {out}", markup=False)


def entry_ref(entry: Entry) -> dict[str, Any]:
    """A journal entry as ``--json`` names it: ``{"seq", "hash", "kind", "time"}``."""
    return {"seq": entry.seq, "hash": entry.hash, "kind": entry.kind, "time": entry.time}


# -- cases ---------------------------------------------------------------------------------------


def case_created(
    case: Case, policy: Mapping[str, Any], examiner: str, fingerprint: str, as_json: bool
) -> None:
    if as_json:
        emit_json({"case": str(case.root), "case_id": case.case_id, "policy": policy})
        return
    console().print(
        f"Created case {case.case_id} in {case.root}\n"
        f"Policy {policy['name']!r}, profile {policy['profile']!r}, "
        f"sha256 {policy['sha256']}\n"
        f"Examiner {examiner} ({fingerprint})"
    )


def run_view(run: RunRecord, frames: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What `case show` says of a run; ``frames`` are a video run's output frame records
    (`forensic.api.run_output_frames`), empty for a still run."""
    video = run["output"]["video"]["file"] if run.is_video else None
    return {
        "run": run["run"],
        "name": run["name"],
        "exhibit": run["exhibit"],
        "recipe": f"{run['recipe']['name']} ({run['recipe']['sha256'][:12]}…)",
        "recipe_sha256": run["recipe"]["sha256"],
        "lanes": run["lanes"],
        "steps": [s["op"] for s in run.steps],
        "output": run["output"],
        "provenance": run["provenance"],
        "frames": [
            {
                "frame": f["frame"],
                "output": {**f["output"], "file": f"{video} #{f['output']['stored']}"},
                "provenance": f["provenance"],
            }
            for f in frames
        ],
        "warnings": run["warnings"],
        "superseded": None if run.superseded is None else dict(run.superseded),
        "range": run.get("range"),
    }


def _key_status(status: Any) -> str:
    """The lifecycle after a key's fingerprint in `case show`: nothing for an active key."""
    if status is None or status.status == "active":
        return ""
    if status.status == "replaced":
        return f"  (replaced by {status.replaced_by[:16]} at journal line {status.line})"
    return f"  (REVOKED from {status.effective} at journal line {status.line}: {status.reason})"


def case_overview(overview: CaseOverview, runs: Sequence[dict[str, Any]], as_json: bool) -> None:
    """`case show`: ``runs`` are the overview's runs as `run_view` describes them."""
    case = overview.case
    if as_json:
        emit_json(
            {
                "case": str(case.root),
                "case_id": case.case_id,
                "title": case.manifest["title"],
                "fields": case.manifest.get("fields", {}),
                "policy": overview.policy,
                "entries": overview.entries,
                "examiners": overview.examiners,
                "keys": [k.as_dict() for k in overview.keys],
                "exhibits": [
                    {k: v for k, v in x.payload.items() if k != "frames"} for x in overview.exhibits
                ],
                "runs": list(runs),
                "awaiting_cosignature": overview.awaiting_cosignature,
                "reports": [r.as_dict() for r in overview.reports],
            }
        )
        return
    out = console()
    out.print(
        f"Case {case.case_id}: {case.manifest['title']}  ({overview.entries} journal entries)",
        markup=False,
    )
    policy = overview.policy
    if policy:
        out.print(
            f"Policy {policy.get('name')!r}, profile {policy.get('profile', '-')!r}", markup=False
        )
    for name, value in case.manifest.get("fields", {}).items():
        out.print(f"{name}: {value}", markup=False)
    statuses = {k.fingerprint: k for k in overview.keys}
    for fpr, examiner in overview.examiners.items():
        out.print(f"Examiner {examiner}  {fpr}{_key_status(statuses.get(fpr))}", markup=False)
    _exhibits(out, overview.exhibits)
    for r in runs:
        out.print(
            f"{r['run']}  {r['name']} on {r['exhibit']}  (recipe {r['recipe']}, "
            f"lanes {', '.join(r['lanes'])}, {len(r['steps'])} steps)",
            markup=False,
        )
        if r.get("superseded"):
            mark = r["superseded"]
            by = f" by {mark['by']}" if mark.get("by") else ""
            out.print(f"    SUPERSEDED{by}: {mark.get('reason')}", markup=False)
        out.print(f"    steps   {' -> '.join(r['steps'])}", markup=False)
        _output(out, r["output"], r["provenance"])
        for f in r["frames"][:SHOWN_FRAMES]:
            out.print(
                f"    frame {f['frame']}  {f['output']['file']}  pixels {f['output']['pixel_sha256']}",
                markup=False,
            )
        if len(r["frames"]) > SHOWN_FRAMES:
            out.print(
                f"    ... {len(r['frames']) - SHOWN_FRAMES} more frames (all with --json)",
                markup=False,
            )
        for warning in r["warnings"]:
            out.print(f"    warning: {warning}", markup=False)
    if not runs:
        out.print("No enhancement runs yet (forensic enhance CASE EXHIBIT --recipe FILE).")
    for m in overview.awaiting_cosignature:
        out.print(
            f"Awaiting co-signature: step {m['run']}.{m['step']} ({m['op']}); a second examiner "
            f"runs `forensic cosign CASE {m['run']}.{m['step']}`",
            markup=False,
        )
    _reports(out, overview.reports)


def _exhibits(out: Console, items: Sequence[ExhibitRecord]) -> None:
    # One block per exhibit, full hashes on one line each: examiners compare and copy them.
    for item in items:
        x = item.payload
        facts = x["facts"]
        if x["media"] == "video":
            kind = f"{facts['codec']} video {facts['width']}x{facts['height']}, {facts['frame_count']} frames"
        else:
            kind = f"{x['format']} image {facts['width']}x{facts['height']} {facts['dtype']}"
        out.print(f"{x['exhibit']}  {x['original']['name']}  ({kind}, {x['size']:,} bytes)")
        out.print(f"    sha256  {x['sha256']}")
        out.print(f"    pixels  {x['pixel_hash']['algorithm']} {x['pixel_hash']['sha256']}")
        for warning in x.get("warnings", []):
            out.print(f"    warning: {warning}")


def _reports(out: Console, reports: Sequence[ReportRecord]) -> None:
    if not reports:
        out.print("No reports yet.")
        return
    for r in reports:
        kind = "approved" if r.approval else "generated"
        out.print(
            f"Report {r.number} {kind}  {r.payload.get('file')}  sha256 {r.sha256}  {r.time}",
            markup=False,
        )


def examiner_enrolled(entry: Entry, case_id: str, as_json: bool) -> None:
    name, fingerprint = entry.payload["name"], entry.payload["fingerprint"]
    if as_json:
        emit_json(
            {
                "case_id": case_id,
                "name": name,
                "fingerprint": fingerprint,
                "entry": entry_ref(entry),
            }
        )
        return
    console().print(f"Enrolled {name} ({fingerprint}) in case {case_id}", markup=False)


def recovery(result: Any, case_id: str, as_json: bool) -> None:
    """`forensic case recover`: what was finished, and the temporary files found."""
    entry = result.entry
    if as_json:
        emit_json(
            {
                "case_id": case_id,
                "recovered": None if entry is None else entry.payload,
                "entry_seq": None if entry is None else entry.seq,
                "temporary_files": list(result.temporaries),
                "temporary_files_removed": result.removed_temporaries,
            }
        )
        return
    out = console()
    if entry is None:
        out.print(f"Case {case_id}: no interrupted append; nothing to recover.")
    else:
        out.print(
            f"Case {case_id}: {entry.payload['action']} an interrupted append "
            f"(entries {entry.payload['entries'][0]} to {entry.payload['entries'][1]}); "
            f"journaled as entry {entry.seq} (case.recover).",
            markup=False,
        )
        for rel in entry.payload["unrecorded_files"]:
            out.print(f"  removed {rel}: named only by the unrecorded append", markup=False)
    verb = "removed" if result.removed_temporaries else "left in place"
    for rel in result.temporaries:
        out.print(f"  temporary file {rel} ({verb})", markup=False)
    if result.temporaries and not result.removed_temporaries:
        out.print("  (--remove-temporary removes them when no other command is running)")


def cosigned(examiner: str, entry: Entry, statement: str, as_json: bool) -> None:
    step = f"{entry.payload['run']}.{entry.payload['step']}"
    if as_json:
        emit_json(
            {
                "step": step,
                "op": entry.payload["op"],
                "examiner": examiner,
                "fingerprint": entry.actor,
                "statement": statement,
                "entry": entry_ref(entry),
            }
        )
        return
    console().print(f"{examiner} co-signed step {step}: {statement}", markup=False)


# -- evidence ------------------------------------------------------------------------------------


@contextmanager
def ingest_progress(enabled: bool) -> Iterator[Any]:
    """A progress bar per video being hashed (on standard error), or None."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(where: str, done: int, total: int | None) -> None:
            if where not in tasks:
                tasks[where] = bar.add_task(f"Hashing frames of {Path(where).name}", total=total)
            if done % 25 == 0 or (total is not None and done >= total):
                bar.update(tasks[where], completed=done)

        yield update


def ingested(results: Sequence[IngestResult], as_json: bool) -> None:
    if as_json:
        emit_json(
            [
                {
                    "exhibit": r.exhibit,
                    "new": r.new,
                    "source": str(r.source),
                    "sha256": r.sha256,
                    "stored": r.stored,
                    "pixel_hash": r.payload["pixel_hash"],
                    "warnings": r.payload.get("warnings", []),
                }
                for r in results
            ]
        )
        return
    out = console()
    for r in results:
        if r.new:
            out.print(f"{r.exhibit}  {r.source.name}  sha256 {r.sha256}")
            out.print(
                f"    pixels {r.payload['pixel_hash']['algorithm']} {r.payload['pixel_hash']['sha256']}"
            )
            for warning in r.payload.get("warnings", []):
                out.print(f"    warning: {warning}")
        else:
            out.print(
                f"{r.exhibit}  {r.source.name}  already in the case (same SHA-256); not added again"
            )


# -- runs ----------------------------------------------------------------------------------------


class RunProgress:
    """Progress callbacks for a run: ``frames`` (a video's frames) and ``tiles`` (the tiles of
    each network pass of a generative step); either is None when nothing is shown."""

    def __init__(self, bar: Any = None) -> None:
        self._bar = bar
        self._frames: Any = None
        self._tiles: Any = None
        self.frames: Callable[[int, int], None] | None = (
            None if bar is None else self._update_frames
        )
        self.tiles: Callable[[int, int], None] | None = None if bar is None else self._update_tiles

    def _update_frames(self, done: int, total: int) -> None:
        if self._frames is None:
            self._frames = self._bar.add_task("frames", total=total)
        self._bar.update(self._frames, completed=done, total=total)

    def _update_tiles(self, done: int, total: int) -> None:
        if self._tiles is None:
            self._tiles = self._bar.add_task("network tiles", total=total)
        self._bar.update(self._tiles, completed=done, total=total)


@contextmanager
def run_progress(enabled: bool, what: str) -> Iterator[RunProgress]:
    """One progress display for a run: a bar of frames (video) and one of the tiles of the
    current network pass (generative steps run the network once for the output and once per
    uncertainty rerun), each with its rate and time left."""
    if not enabled:
        yield RunProgress()
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn(f"{what}: " + "{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        yield RunProgress(bar)


def superseded(run: RunRecord, as_json: bool) -> None:
    """`run supersede`: the run now marked superseded."""
    mark = dict(run.superseded or {})
    if as_json:
        emit_json({"run": run.run_id, "superseded": mark})
        return
    by = f", replaced by {mark['by']}" if mark.get("by") else ""
    console().print(
        f"{run.run_id} ({run.name}) is marked superseded{by}: {mark.get('reason')}", markup=False
    )


def run_summary(summary: RunSummary, as_json: bool) -> None:
    if as_json:
        emit_json(
            {
                "run": summary.run_id,
                "exhibit": summary.exhibit,
                "recipe": summary.recipe,
                "output": summary.output,
                "provenance": summary.provenance,
                "steps": [s.as_dict() for s in summary.steps],
                "warnings": summary.warnings,
            }
        )
        return
    out = console()
    out.print(f"{summary.run_id}: recipe {summary.recipe!r} on {summary.exhibit}", markup=False)
    for s in (step.as_dict() for step in summary.steps):
        if s["output"] is None:
            out.print(f"  step {s['step']} {s['op']}: no frame in its range", markup=False)
            continue
        frames = f", {s['frames']} frames" if "merkle_root" in summary.output else ""
        out.print(
            f"  step {s['step']} {s['op']} ({s['effect']}{frames}, {s['duration_ms']:.0f} ms) -> "
            f"{s['output']['width']}x{s['output']['height']} pixels "
            f"{s['output']['pixel_sha256'][:16]}…",
            markup=False,
        )
    _output(out, summary.output, summary.provenance)
    for warning in summary.warnings:
        out.print(f"warning: {warning}", markup=False)


def _output(out: Console, output: Mapping[str, Any], pmap: Mapping[str, Any]) -> None:
    if "merkle_root" in output:
        out.print(
            f"    output  {output['frames']} frames, Merkle root of their pixel hashes "
            f"{output['merkle_root']}",
            markup=False,
        )
        if "video" in output:
            out.print(f"    video   {output['video']['file']} (FFV1, lossless)", markup=False)
        if "video" in pmap:
            counts = ", ".join(f"{k} {v}" for k, v in pmap["counts"].items() if v)
            out.print(f"    provenance maps {pmap['video']['file']} ({counts})", markup=False)
        return
    out.print(f"    output  {output['file']}", markup=False)
    out.print(f"    sha256  {output['sha256']}", markup=False)
    out.print(
        f"    pixels  {output['pixel_hash_algorithm']} {output['pixel_sha256']}", markup=False
    )
    counts = ", ".join(f"{k} {v}" for k, v in pmap["counts"].items() if v)
    out.print(f"    provenance map {pmap['file']} ({counts})", markup=False)


def exported(payload: Mapping[str, Any], fmt: str, out_path: Path, as_json: bool) -> None:
    if as_json:
        emit_json(payload)
        return
    out = console()
    kind = "lossless" if payload["lossless"] else "LOSSY presentation copy"
    out.print(
        f"exported run {payload['run']} as {fmt} ({kind}, {payload['frames']} frame(s)) to "
        f"{out_path}",
        markup=False,
    )
    if "file" in payload:
        out.print(f"    sha256  {payload['file']['sha256']}", markup=False)
        out.print(f"    frames  Merkle root {payload['frame_hashes_root']}", markup=False)
    else:
        out.print(f"    listing {out_path / 'frames.json'}", markup=False)
    if payload.get("note"):
        out.print(f"note: {payload['note']}", markup=False)


def exported_c2pa(payload: Mapping[str, Any], out_path: Path, as_json: bool) -> None:
    if as_json:
        emit_json(payload)
        return
    out = console()
    credentials = payload["c2pa"]
    where = "embedded" if credentials["embedded"] else f"sidecar {credentials['sidecar']}"
    out.print(
        f"exported run {payload['run']} with C2PA Content Credentials ({where}) to "
        f"{out_path / payload['file']['name']}",
        markup=False,
    )
    out.print(f"    sha256    {payload['file']['sha256']}", markup=False)
    out.print(f"    manifest  {credentials['label']}", markup=False)
    out.print(f"    actions   {', '.join(credentials['actions'])}", markup=False)
    out.print(f"    source    {credentials['asset_digital_source_type']}", markup=False)


def recipes(items: Sequence[Mapping[str, Any]], as_json: bool) -> None:
    if as_json:
        emit_json(list(items))
        return
    out = console()
    for item in items:
        out.print(f"{item['name']}: {item['description']}", markup=False)
        out.print(f"    steps: {' -> '.join(item['steps'])}", markup=False)
        out.print(f"    file:  {item['path']}", markup=False)


# -- verification --------------------------------------------------------------------------------


class CaseChecks:
    """Prints a case's verdict in text: each check's line as the verifier finishes it (this
    object is the ``progress`` callback), then the lines not yet printed, the replay and the
    result. The header comes before the first line, so nothing is printed if the verifier
    never reports."""

    def __init__(self, case_dir: Path) -> None:
        self.case_dir = case_dir
        self.out = console()
        self.printed: set[int] = set()
        self.started = False

    def _start(self) -> None:
        if not self.started:
            self.started = True
            self.out.print(f"Verifying case at {self.case_dir}")

    def __call__(self, check: Check) -> None:
        self._start()
        self._check(check)

    def _check(self, c: Check) -> None:
        self.printed.add(c.number)
        self.out.print(
            f"{c.number}. {c.name}: {c.status}" + (f" ({c.detail})" if c.detail and c.ok else "")
        )
        for note in c.notes:
            self.out.print(f"   note: {note}", markup=False)

    def finish(self, verdict: Verdict) -> None:
        self._start()
        out = self.out
        for c in verdict.checks:
            if c.number not in self.printed:
                self._check(c)
        replayed = verdict.replay or []
        ordered = [r for r in replayed if r["lane"] == "classical"] + [
            r for r in replayed if r["lane"] != "classical"
        ]
        for i, r in enumerate(ordered):
            if r["lane"] != "classical" and (i == 0 or ordered[i - 1]["lane"] == "classical"):
                out.print("   generative steps (their output is inferred, whatever the verdict):")
            extra = ""
            if r["max_abs_difference"] is not None:
                extra = f" (max difference {r['max_abs_difference']}, PSNR {r['psnr_db']} dB)"
            detail = f": {r['detail']}" if r["detail"] else ""
            out.print(
                f"   run {r['run']} step {r['step']} {r['op']}: {r['verdict']}{extra}{detail}",
                markup=False,
            )
        if verdict.ok:
            cp = verdict.checkpoint or {}
            out.print(f"VERIFIED: {cp.get('count')} entries, Merkle root {cp.get('root')}")


def report_verdict(verdict: ReportVerdict, path: Path, case: Path | None, as_json: bool) -> None:
    """A report's verdict; the caller turns a failure into the exit code."""
    if as_json:
        emit_json(verdict.as_dict())
        return
    out = console()
    out.print(f"Verifying report {path}" + (f" against case {case}" if case else ""), markup=False)
    for c in verdict.checks:
        out.print(
            f"{c.number}. {c.name}: {c.status}" + (f" ({c.detail})" if c.detail and c.ok else ""),
            markup=False,
        )
        for note in c.notes:
            out.print(f"   note: {note}", markup=False)
    for a in verdict.approvals:
        out.print(
            f"   approved by {a['examiner']} at {a['time']} (approved copy sha256 {a['sha256']})",
            markup=False,
        )
    if case is None and verdict.ok:
        out.print("   note: pass --case CASE to check the report against its case", markup=False)


def report_verified(verdict: ReportVerdict, path: Path) -> None:
    console().print(f"VERIFIED: {path}, {len(verdict.signatures)} signature(s)", markup=False)


# -- reports and the PKI -------------------------------------------------------------------------


def pki_created(
    ca_cert: Path,
    signing_cert: Path,
    report_signer: ReportSigner,
    fingerprint: str,
    as_json: bool,
) -> None:
    if as_json:
        emit_json(
            {
                "ca_certificate": str(ca_cert),
                "signing_certificate": str(signing_cert),
                "subject": report_signer.certificate.subject.rfc4514_string(),
                "fingerprint": fingerprint,
            }
        )
        return
    out = console()
    out.print(f"Lab CA certificate      {ca_cert}", markup=False)
    out.print(f"Report-signing cert     {signing_cert}", markup=False)
    out.print(f"    subject {report_signer.certificate.subject.rfc4514_string()}", markup=False)
    out.print(f"    bound to journal key {fingerprint}", markup=False)


def pki_bound(
    report_signer: ReportSigner, fingerprint: str, case_id: str, entry: Entry, as_json: bool
) -> None:
    if as_json:
        emit_json(
            {
                "case_id": case_id,
                "subject": report_signer.certificate.subject.rfc4514_string(),
                "fingerprint": fingerprint,
                "entry": entry_ref(entry),
            }
        )
        return
    console().print(
        f"Bound {report_signer.certificate.subject.rfc4514_string()} to {fingerprint} "
        f"in case {case_id}",
        markup=False,
    )


def _issued(issued: Issued, case_id: str, case_dir: Path) -> dict[str, Any]:
    return {
        "report": str(issued.path),
        "case_id": case_id,
        "number": issued.number,
        "sha256": issued.sha256,
        "stored": issued.stored,
        "entry": entry_ref(issued.entry),
        "verify": f"forensic verify {issued.path} --case {case_dir}",
    }


def report_issued(issued: Issued, case_id: str, case_dir: Path, as_json: bool) -> None:
    if as_json:
        emit_json({**_issued(issued, case_id, case_dir), "pages": issued.pages})
        return
    out = console()
    out.print(f"Report {issued.number} of case {case_id}: {issued.path}", markup=False)
    out.print(f"    sha256 {issued.sha256}, {issued.pages} pages", markup=False)
    out.print(
        f"    copy in the case: {issued.stored}; journal entry #{issued.entry.seq}", markup=False
    )
    out.print(f"    check it: forensic verify {issued.path} --case {case_dir}", markup=False)


def report_approved(issued: Issued, case_id: str, case_dir: Path, as_json: bool) -> None:
    if as_json:
        emit_json(_issued(issued, case_id, case_dir))
        return
    console().print(
        f"Approved report {issued.number} of case {case_id}: {issued.path} "
        f"(sha256 {issued.sha256}; journal entry #{issued.entry.seq})",
        markup=False,
    )


# -- reference -----------------------------------------------------------------------------------


def policy(policy: Policy, policy_file: Path, as_json: bool) -> None:
    if as_json:
        emit_json(
            {
                "ok": True,
                "name": policy.name,
                "sha256": policy.sha256,
                "default_profile": policy.default_profile,
                "profiles": {n: p.as_dict() for n, p in policy.profiles.items()},
            }
        )
        return
    out = console()
    out.print(f"{policy_file}: OK, policy {policy.name!r}, sha256 {policy.sha256}", markup=False)
    for pname, prof in policy.profiles.items():
        default = " (default)" if pname == policy.default_profile else ""
        allowed = ", ".join(prof.lanes) or "no lane"
        out.print(f"  profile {pname}{default}: lanes {allowed}", markup=False)
        for digest, manifest in prof.generative.manifests.items():
            what = f"{manifest.task}, {manifest.name}" if manifest.name else manifest.task
            out.print(f"    approved model {digest} ({what})", markup=False)


def operations(ops: Sequence[Operation], as_json: bool) -> None:
    if as_json:
        emit_json([op.as_dict() for op in ops])
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_lines=False)
    lanes = sorted({op.lane for op in ops})
    columns = (
        ("operation",) + (("lane",) if len(lanes) > 1 else ()) + ("category", "class", "effect")
    )
    for column in columns:
        table.add_column(column, no_wrap=True)
    table.add_column("what it does", overflow="fold", min_width=24)
    for op in sorted(ops, key=lambda o: (o.lane, o.category, o.name)):
        lane = (op.lane,) if len(lanes) > 1 else ()
        table.add_row(op.name, *lane, op.category, op.swgit_class, op.effect, escape(op.summary))
    out = console()
    out.print(table)
    out.print("`forensic ops show NAME` gives the description, parameters and references.")


def operation(op: Operation, as_json: bool) -> None:
    if as_json:
        emit_json(op.as_dict())
        return
    from rich.markup import escape
    from rich.table import Table

    out = console()
    out.print(f"[bold]{op.name}[/bold] (version {op.version}): {escape(op.summary)}")
    out.print(
        f"lane {op.lane} | SWGIT class {op.swgit_class} | category {op.category} | "
        f"effect on provenance: {op.effect}"
    )
    out.print()
    out.print(op.description, markup=False)
    out.print()
    if op.params:
        table = Table(box=None, pad_edge=False, title_justify="left", title="Parameters")
        table.add_column("name", no_wrap=True)
        for column in ("default", "allowed", "meaning"):
            table.add_column(column, overflow="fold")
        for p in op.params:
            default = "required" if p.required else ("auto" if p.default is None else p.default)
            meaning = p.description + (f" Auto: {p.auto}." if p.auto else "")
            table.add_row(*(escape(c) for c in (p.name, _plain(default), p.allowed(), meaning)))
        out.print(table)
        out.print()
    out.print(f"Output: {op.output_dtype}", markup=False)
    out.print(f"Determinism: {op.determinism}", markup=False)
    out.print()
    out.print("References:")
    for ref in op.references:
        doi = f" https://doi.org/{ref.doi}" if ref.doi else ""
        note = f" ({ref.note})" if ref.note else ""
        out.print(f"  - {ref.citation}{doi}{note}", markup=False)


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


# -- key upgrade and lifecycle (issue 15) --------------------------------------------------------


def notice(sentence: str) -> None:
    """A sentence for the person at the terminal (standard error), e.g. a key file upgraded."""
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"note: {sentence}", markup=False)


def keys_upgraded(key_dir: Path, upgraded: Sequence[Any], as_json: bool) -> None:
    if as_json:
        emit_json(
            {
                "key_dir": str(key_dir),
                "upgraded": [
                    {"legacy": str(u.legacy), "replacement": str(u.replacement)} for u in upgraded
                ],
            }
        )
        return
    out = console()
    for u in upgraded:
        out.print(f"Upgraded {u.legacy} -> {u.replacement}", markup=False)
    if not upgraded:
        out.print(f"Nothing to upgrade in {key_dir}: every key uses scrypt", markup=False)


def key_rotated(old: str, new: str, name: str, case_id: str, entry: Entry, as_json: bool) -> None:
    if as_json:
        emit_json(
            {"case_id": case_id, "old": old, "new": new, "name": name, "entry": entry_ref(entry)}
        )
        return
    out = console()
    out.print(f"Rotated key {old} to {new} ({name}) in case {case_id}", markup=False)
    out.print(
        "The old key signs nothing more in this case; bind a report certificate for the new "
        "key (`forensic pki init` / `pki bind` with its --key-dir) before issuing reports.",
        markup=False,
    )


def key_revoked(entry: Entry, case_id: str, as_json: bool) -> None:
    payload = entry.payload
    if as_json:
        emit_json({"case_id": case_id, "revoked": payload, "entry": entry_ref(entry)})
        return
    console().print(
        f"Revoked key {payload['fingerprint']} ({payload['name']}) in case {case_id} from "
        f"{payload['effective']}: {payload['reason']}",
        markup=False,
    )


def model_approval(approval: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(approval)
        return
    out = console()
    out.print(
        f"{approval['file']}: {approval['bytes']:,} bytes, sha256 {approval['sha256']}; "
        f"trial run {approval['graph']['trial']['input']} -> "
        f"{approval['graph']['trial']['output']}",
        markup=False,
    )
    out.print("Add to the lab's policy (then open cases with it):", markup=False)
    sys.stdout.write("\n" + approval["policy_entry"])


# -- evidence bundles and timestamps -------------------------------------------------------------


def bundled(result: Mapping[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(dict(result))
        return
    out = console()
    kind = "archive" if result["archive"] else "folder"
    out.print(
        f"Bundle of case {result['case_id']} written ({kind}): {result['bundle']}, "
        f"{result['files']} file(s), {result['bytes']:,} bytes, originals: {result['originals']}",
        markup=False,
    )
    if result["timestamp"]:
        t = result["timestamp"]
        out.print(
            f"   timestamped checkpoint ({t['entries']} entries) at {t['gen_time']} by {t['tsa']}",
            markup=False,
        )
    for note in result["notes"]:
        out.print(f"   note: {note}", markup=False)
    out.print(f"   check it with: forensic verify {result['bundle']}", markup=False)


def timestamped(stamp: Mapping[str, Any], case_id: str, as_json: bool) -> None:
    if as_json:
        emit_json({"case_id": case_id, **stamp})
        return
    console().print(
        f"Checkpoint of case {case_id} ({stamp['entries']} entries, sha256 "
        f"{stamp['checkpoint_sha256'][:16]}…) timestamped at {stamp['gen_time']} by "
        f"{stamp['tsa']}: {stamp['token']}",
        markup=False,
    )


def bundle_verdict(verdict: Any, path: Path, as_json: bool) -> None:
    """A bundle's verdict; the caller turns a failure into the exit code."""
    if as_json:
        emit_json(verdict.as_dict())
        return
    out = console()
    out.print(f"Verifying bundle {path}", markup=False)
    for c in verdict.checks:
        out.print(
            f"{c.number}. {c.name}: {c.status}" + (f" ({c.detail})" if c.detail and c.ok else ""),
            markup=False,
        )
        for note in c.notes:
            out.print(f"   note: {note}", markup=False)
    if verdict.ok:
        out.print(f"VERIFIED: {path}", markup=False)
