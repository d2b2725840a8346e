"""What every section of the report reads: the journal prefix the report covers, read once
(`ReportContext`), and the facts derived from it (a run's class and provenance counts, stored
files decoded after their hashes are checked)."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

import numpy as np
from numpy.typing import NDArray

from forensic.case import Case
from forensic.errors import CaseError
from forensic.journal import Entry, enrolled_keys
from forensic.media import decode_image
from forensic.records import (
    COSIGN,
    RUN_STEP,
    ExhibitRecord,
    RunRecord,
    exhibits,
    find_exhibit,
    read_runs,
)
from forensic.report.layout import Styles
from forensic.report.model import Attachment, ReportRequest
from forensic.report.templates import Templates

CLASS_TEXT = {
    "evidence": "Evidence-grade: classical, deterministic processing only",
    "inferred": "Contains inferred pixels: investigative lead only, NOT for identification",
    "redacted": "Redacted disclosure copy: areas deliberately destroyed",
}


class ReportContext:
    """The inputs of one report and what the sections look up in them. Each section is a
    function of this context that returns flowables."""

    def __init__(
        self,
        case: Case,
        entries: list[Entry],
        request: ReportRequest,
        templates: Templates,
        attachments: list[Attachment],
    ) -> None:
        self.case = case
        self.entries = entries
        self.request = request
        self.templates = templates
        self.attachments = attachments
        self.st = Styles()
        self.opened = entries[0].payload
        self.names = enrolled_keys(entries)
        self.policy = case.policy()
        self.profile_name = str(self.opened["policy"].get("profile") or "")
        self.label = self.policy.profile(self.profile_name or None).generative.label
        chosen = request.exhibits
        self.exhibits: list[ExhibitRecord] = [
            x for x in exhibits(entries) if chosen is None or x.exhibit_id in chosen
        ]
        wanted = {x.exhibit_id for x in self.exhibits}
        self.all_runs = read_runs(entries)
        self.runs: list[RunRecord] = [r for r in self.all_runs if r.exhibit_id in wanted]
        self.cosigns: dict[str, list[Entry]] = {}
        for e in entries:
            if e.kind == COSIGN.name:
                self.cosigns.setdefault(str(e.payload["entry"]), []).append(e)
        self.step_hash = {
            (e.payload["run"], e.payload["step"]): e.hash
            for e in entries
            if e.kind == RUN_STEP.name
        }
        #: Runs' pictures being prepared in worker threads (`forensic.report.runs.pictures_ahead`).
        self.pictures: dict[str, Future[Any]] = {}


#: A run reference (``R3``), as a run's input names it.
RUN_REF = re.compile(r"^[Rr][0-9]+$")


def source_of(ctx: ReportContext, ref: str) -> ExhibitRecord:
    """A run's input, an exhibit (``E1``) or an earlier run's output (``R1``), read from the
    journal entries the report covers (`forensic.pipeline.sources.find_source` reads the
    whole journal again: once per run, that was a third of a long report's time)."""
    case_id = ctx.case.case_id
    if not RUN_REF.match(ref):
        return find_exhibit(ctx.entries, ref, case_id=case_id)
    run = next(r for r in ctx.all_runs if r.run_id == ref.upper())
    return run.as_source(find_exhibit(ctx.entries, run.exhibit_id, case_id=case_id))


def decode_b64(text: str) -> bytes:
    return base64.b64decode(text)


def run_counts(run: RunRecord) -> dict[str, int]:
    """Output pixels per provenance class (over every frame of a video run)."""
    return {k: int(v) for k, v in run.provenance["counts"].items()}


def run_class(run: RunRecord) -> str:
    """Plain-language class of a run's output: evidence-grade, inferred or redacted."""
    counts = run_counts(run)
    if run.get("tainted") or counts.get("inferred", 0) > 0:
        return "inferred"
    if counts.get("redacted", 0) > 0:
        return "redacted"
    return "evidence"


def decode_checked(case: Case, record: Mapping[str, Any], what: str) -> NDArray[Any]:
    """A stored image, decoded once its bytes match the record."""
    pixels, _ = decode_image(case.store.read_checked(record, what), where=what)
    return pixels


def tiff16(case: Case, record: Mapping[str, Any], what: str) -> NDArray[np.uint16]:
    """A stored 16-bit map (a generative step's TIFF), decoded once its bytes match."""
    import cv2

    data = case.store.read_checked(record, what)
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.dtype != np.uint16:
        raise CaseError(f"{what}: {record['file']} is not a 16-bit map")
    return np.asarray(pixels, np.uint16)
