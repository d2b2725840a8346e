"""What a report embeds: the journal, checkpoint, manifest, policy, the public keys and
certificates the journal enrols, per-frame hash lists, and the stored maps and frame records its
runs name; and what the unsigned bytes depend on besides them (`builder_versions`).

Everything here is derived from the journal (and files whose hashes it records), so that
`forensic.report.check` can tell each attachment of a report from its journal alone.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import zlib
from collections.abc import Mapping
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

import numpy as np
import PIL
import reportlab

from forensic.case import Case
from forensic.errors import VerificationError
from forensic.hashing import sha256_hex
from forensic.journal import CHECKPOINT_FILE, JOURNAL_FILE, Entry, canonical
from forensic.records import (
    ENROLMENT_KINDS,
    PKI_BIND,
    ExhibitRecord,
    RunRecord,
    exhibits,
    read_runs,
)
from forensic.report.model import Attachment, ReportRequest, attachment_name
from forensic.report.templates import Templates
from forensic.versions import tool_version

#: The report's own manifest: what it covers and how it was built.
MANIFEST = "report.json"
#: Attachments every report carries.
REQUIRED = (JOURNAL_FILE, CHECKPOINT_FILE, "case.json", "policy.toml", MANIFEST)


#: The report's layout generation, raised when the same inputs and libraries give other bytes:
#: 2 is PDF/A-3b with previews encoded by forensic (`forensic.report.archival`,
#: `forensic.report.layout.EncodedImage`). A report of another layout is not rebuilt (a note
#: says why) rather than failing the comparison.
REPORT_LAYOUT = "2"


def builder_versions() -> dict[str, str]:
    """What the unsigned bytes depend on besides the inputs: a rebuild is compared only
    where these are the same."""
    return {
        "forensic": tool_version()["version"],
        "layout": REPORT_LAYOUT,
        "reportlab": reportlab.Version,
        "pillow": PIL.__version__,
        "numpy": np.__version__,
        "zlib": zlib.ZLIB_RUNTIME_VERSION,
        "pyhanko": dist_version("pyhanko"),
    }


def key_attachments(entries: list[Entry]) -> list[Attachment]:
    """The public keys and certificates the journal enrols and binds, as attachments. An
    examiner's certificates are named by their journal key, so when one binds twice (the
    same certificate again, or a new one) the latest binding's are attached, once each: a
    name attached twice makes the report unreadable to `verify` (and the bundle and the
    report check already keep the latest)."""
    pem = "application/x-pem-file"
    out: list[Attachment] = []
    for e in entries:
        if e.kind in ENROLMENT_KINDS:
            p = e.payload.get("examiner", e.payload)
            out.append(
                Attachment(
                    f"key-{p['fingerprint']}.pem",
                    str(p["public_key"]).encode(),
                    pem,
                    f"Ed25519 journal key of {p['name']}",
                )
            )
        if e.kind == PKI_BIND.name:
            fp16 = e.actor[:16]
            out.append(
                Attachment(
                    f"report-signing-{fp16}.cert.pem",
                    str(e.payload["certificate"]).encode(),
                    pem,
                    "report-signing certificate",
                )
            )
            out.append(
                Attachment(
                    f"lab-ca-{fp16}.cert.pem",
                    str(e.payload["ca_certificate"]).encode(),
                    pem,
                    "lab CA certificate",
                )
            )
    latest = {a.name: a for a in out}  # first position, latest binding
    return list(latest.values())


def frames_csv(exhibit: ExhibitRecord) -> bytes:
    """A video exhibit's per-frame hashes as CSV (``E2-frames.csv``)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["index", "pts", "type", "key", "sha256"])
    for f in exhibit.frames:
        writer.writerow([f["index"], f.get("pts"), f.get("type"), f.get("key"), f["sha256"]])
    return buf.getvalue().encode("utf-8")


def video_run_files(run: RunRecord) -> list[tuple[Mapping[str, Any], str]]:
    """A streamed video run's per-frame lists and generative map videos, attached to the report
    so that any single frame can be proved from the PDF alone (the output video itself stays
    in the case: it can be large). Empty for a still run."""
    if not run.is_video:
        return []
    rid = run.run_id
    out: list[tuple[Mapping[str, Any], str]] = [
        (run["inputs"], f"input frame list of {rid}"),
        (run["frames"], f"output frame list of {rid}"),
    ]
    for step in run.steps:
        out.append((step["applied"], f"per-frame record of {rid} step {step.number}"))
        for key, video in (step.get("maps") or {}).items():
            out.append((video, f"{key} maps of {rid} step {step.number}"))
    return out


def output_files(run: RunRecord) -> list[Mapping[str, Any]]:
    """A run's stored output: its image, or its lossless video (``file``, ``sha256``,
    ``size``)."""
    return [run.output["video"] if run.is_video else run.output]


def attached_outputs(runs: list[RunRecord], limit: int) -> set[str]:
    """The case paths of the outputs a report attaches: in run order, each output that still
    fits in ``limit`` bytes with those before it (the lab's ``outputs_max_mb``)."""
    chosen: set[str] = set()
    total = 0
    for run in runs:
        for record in output_files(run):
            size = int(record["size"])
            if total + size <= limit and str(record["file"]) not in chosen:
                chosen.add(str(record["file"]))
                total += size
    return chosen


def selected_runs(entries: list[Entry], chosen: tuple[str, ...] | None) -> list[RunRecord]:
    """The runs of the exhibits ``chosen`` (None: every run)."""
    return [r for r in read_runs(entries) if chosen is None or r.exhibit_id in chosen]


def collect_attachments(
    case: Case,
    entries: list[Entry],
    request: ReportRequest,
    *,
    journal: bytes,
    templates: Templates,
) -> list[Attachment]:
    """Everything embedded in the report, derived from the journal (and files it hashes)."""
    items = [
        Attachment(JOURNAL_FILE, journal, "application/x-ndjson", "the signed journal"),
        Attachment(
            CHECKPOINT_FILE,
            request.checkpoint.encode() + b"\n",
            "application/json",
            "the signed checkpoint",
        ),
        Attachment(
            "case.json",
            case.store.read_bytes("case.json"),
            "application/json",
            "the case manifest",
        ),
        Attachment(
            "policy.toml",
            case.store.read_bytes("policy.toml"),
            "application/toml",
            "the case's policy",
        ),
    ]
    manifest = {
        "format": "forensic-report/1",
        "case_id": case.case_id,
        **request.as_dict(),
        "templates": {"sha256": templates.sha256, "files": templates.files},
        "builder": builder_versions(),
    }
    items.append(
        Attachment(
            MANIFEST,
            canonical(manifest),
            "application/json",
            "what this report covers and how it was built",
        )
    )
    items = [dataclasses.replace(item, relationship="Source") for item in items]
    items += key_attachments(entries)
    for x in exhibits(entries):
        if request.exhibits is not None and x.exhibit_id not in request.exhibits:
            continue
        if x.is_video:
            items.append(
                Attachment(
                    f"{x.exhibit_id}-frames.csv",
                    frames_csv(x),
                    "text/csv",
                    f"per-frame SHA-256 of {x.exhibit_id}",
                )
            )
    seen: set[str] = set()
    runs = selected_runs(entries, request.exhibits)
    outputs = attached_outputs(runs, templates.outputs_max_bytes)
    for run in runs:
        maps = [
            (r, f"output of {run.run_id}") for r in output_files(run) if str(r["file"]) in outputs
        ]
        maps += [(r, f"provenance map of {run.run_id}") for r in run.provenance_records()]
        maps += video_run_files(run)
        for step in run.steps:
            for rec in step.applied():
                for key, m in (rec.get("maps") or {}).get("files", {}).items():
                    maps.append((m, f"{key} map of {run.run_id} step {step.number}"))
        for record, what in maps:
            rel = str(record["file"])
            if rel in seen:
                continue
            seen.add(rel)
            data = case.store.read_bytes(rel)
            if sha256_hex(data) != record["sha256"]:
                raise VerificationError(f"{rel} no longer matches its recorded SHA-256")
            mime = {
                ".png": "image/png",
                ".mkv": "video/x-matroska",
                ".json": "application/json",
            }.get(Path(rel).suffix, "image/tiff")
            items.append(Attachment(attachment_name(rel), data, mime, what))
    return items
