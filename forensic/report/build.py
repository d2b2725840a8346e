"""Build the unsigned report PDF: a pure function of the journal, the files it hashes and the
templates.

Everything printed comes from journal entries (``entries``: the prefix of the journal the
report covers) or from case files whose hashes those entries record and that were checked
before the build. reportlab runs in invariant mode (fixed dates and document ID) and without
ASCII85 (pure-Python, and most of reportlab's time otherwise), so the same inputs give the
same bytes: ``forensic verify REPORT.pdf --case CASE`` rebuilds the report and compares.
Display images are reduced with integer arithmetic in numpy (not OpenCV's SIMD paths) for
the same reason.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
from numpy.typing import NDArray
from PIL import Image as PILImage
from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.pdfgen import canvas as rl_canvas
from reportlab.platypus import (
    BaseDocTemplate,
    CondPageBreak,
    Flowable,
    Frame,
    Image,
    KeepTogether,
    NextPageTemplate,
    PageBreak,
    PageTemplate,
    Paragraph,
    Preformatted,
    Spacer,
    Table,
    TableStyle,
)

from forensic import provenance
from forensic.case import Case, exhibits
from forensic.enhance import applied, find_source, image_hash, load_frames, runs
from forensic.errors import CaseError, InputError
from forensic.hashing import sha256_hex
from forensic.journal import ENTRY_TYPE, Entry, enrolled_keys, entries_root
from forensic.media import decode_image
from forensic.report.templates import Templates, paragraphs
from forensic.timeutil import utc_timestamp
from forensic.versions import tool_version

PAGE_W, PAGE_H = A4
MARGIN = 16 * mm
TEXT_W = PAGE_W - 2 * MARGIN
DISPLAY_MAX = 1024  # longest side of an image as embedded (the hashed original is attached)
CLASS_COLOURS = {  # provenance classes as tints over a grey copy of the output (RGB, alpha)
    "original": None,
    "transformed": ((64, 128, 255), 0.35),
    "resampled": ((255, 200, 0), 0.45),
    "inferred": ((230, 0, 120), 0.6),
    "redacted": ((0, 0, 0), 1.0),
}
INFERRED_RED = colors.Color(0.8, 0.0, 0.2)


@dataclass(frozen=True)
class ReportRequest:
    """What a report covers: everything a rebuild needs besides the case and templates."""

    number: int  # the report's number in the case: 1 + earlier report.generated entries
    count: int  # journal entries covered (a prefix of the journal)
    exhibits: tuple[str, ...] | None  # None: every exhibit
    signer: str  # fingerprint of the examiner who signs the report
    checkpoint: str  # the signed checkpoint line (DSSE envelope) covering ``count`` entries
    now: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "entries": self.count,
            "exhibits": None if self.exhibits is None else list(self.exhibits),
            "signer": self.signer,
            "checkpoint": self.checkpoint,
            "generated_at": utc_timestamp(self.now),
        }


@dataclass(frozen=True)
class Attachment:
    """A file embedded in the signed PDF: name in the PDF, bytes, what it is."""

    name: str
    data: bytes
    mime: str
    description: str

    @property
    def sha256(self) -> str:
        return sha256_hex(self.data)


# -- layout helpers ------------------------------------------------------------------------


@contextlib.contextmanager
def _fixed_settings() -> Iterator[None]:
    """reportlab's settings that shape the bytes, fixed whatever the environment says
    (RL_* variables, ~/.reportlab_settings, SOURCE_DATE_EPOCH): ASCII85 off (pure Python,
    ~98% of build time with images), page compression on, invariant output."""
    fixed = {"useA85": 0, "pageCompression": 1, "invariant": 1}
    old = {k: getattr(rl_config, k) for k in fixed}
    epoch = os.environ.pop("SOURCE_DATE_EPOCH", None)
    for key, value in fixed.items():
        setattr(rl_config, key, value)
    try:
        yield
    finally:
        for key, value in old.items():
            setattr(rl_config, key, value)
        if epoch is not None:
            os.environ["SOURCE_DATE_EPOCH"] = epoch


def _fonts(templates: Templates) -> None:
    for name, role in (
        ("ForensicSans", "regular"),
        ("ForensicSans-Bold", "bold"),
        ("ForensicMono", "mono"),
    ):
        try:
            pdfmetrics.registerFont(TTFont(name, str(templates.font(role))))
        except (TTFError, OSError) as exc:
            raise InputError(
                f"report templates: the font {templates.font(role)} cannot be used ({exc})",
                hint="copy the fonts from the project's reports/fonts/",
            ) from None
    pdfmetrics.registerFontFamily(
        "ForensicSans",
        normal="ForensicSans",
        bold="ForensicSans-Bold",
        italic="ForensicSans",
        boldItalic="ForensicSans-Bold",
    )


class _Styles:
    def __init__(self) -> None:
        base = ParagraphStyle("body", fontName="ForensicSans", fontSize=9, leading=12, spaceAfter=4)
        self.body = base
        tight = ParagraphStyle("tight", parent=base, spaceAfter=0)
        self.small = ParagraphStyle("small", parent=tight, fontSize=7.5, leading=9.5)
        self.cell = ParagraphStyle("cell", parent=tight, fontSize=7.5, leading=9.5)
        self.mono = ParagraphStyle(
            "mono", parent=tight, fontName="ForensicMono", fontSize=6.6, leading=8.4
        )
        # Small enough that a SHA-256 in hex fits one line of a table column.
        self.hash = ParagraphStyle("hash", parent=self.mono, fontSize=5.8, leading=7.4)
        self.title = ParagraphStyle(
            "title",
            parent=base,
            fontName="ForensicSans-Bold",
            fontSize=18,
            leading=23,
            spaceAfter=6,
        )
        self.h1 = ParagraphStyle(
            "h1",
            parent=base,
            fontName="ForensicSans-Bold",
            fontSize=13,
            leading=17,
            spaceBefore=8,
            spaceAfter=5,
        )
        self.h2 = ParagraphStyle(
            "h2",
            parent=base,
            fontName="ForensicSans-Bold",
            fontSize=10.5,
            leading=14,
            spaceBefore=7,
            spaceAfter=3,
        )
        self.caption = ParagraphStyle(
            "caption",
            parent=tight,
            fontSize=7,
            leading=9,
            alignment=TA_CENTER,
            textColor=colors.Color(0.25, 0.25, 0.25),
        )
        self.banner = ParagraphStyle(
            "banner",
            parent=tight,
            fontName="ForensicSans-Bold",
            fontSize=10,
            leading=13,
            textColor=colors.white,
            alignment=TA_CENTER,
        )


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(text), style)


def _kv_table(rows: list[tuple[str, Any]], st: _Styles, key_w: float = 34 * mm) -> Table:
    data = []
    for key, value in rows:
        cell: Any = value if isinstance(value, Flowable) else _p(str(value), st.cell)
        data.append([_p(key, st.cell), cell])
    table = Table(data, colWidths=[key_w, TEXT_W - key_w], hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("FONTNAME", (0, 0), (0, -1), "ForensicSans-Bold"),
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.Color(0.8, 0.8, 0.8)),
                ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
            ]
        )
    )
    return table


def _grid(data: list[list[Any]], widths: list[float], *, header: bool = True) -> Table:
    table = Table(data, colWidths=widths, hAlign="LEFT", repeatRows=1 if header else 0)
    style = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.Color(0.7, 0.7, 0.7)),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        ("LEFTPADDING", (0, 0), (-1, -1), 2.5),
        ("RIGHTPADDING", (0, 0), (-1, -1), 2.5),
    ]
    if header:
        style.append(("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.9, 0.9, 0.9)))
    table.setStyle(TableStyle(style))
    return table


# -- images ----------------------------------------------------------------------------------


def _to_rgb8(image: NDArray[Any]) -> NDArray[np.uint8]:
    """An 8-bit RGB copy for display: 16-bit samples keep their top 8 bits, alpha is dropped."""
    pixels = image
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    elif pixels.dtype != np.uint8:
        pixels = np.clip(np.rint(pixels.astype(np.float64) * 255), 0, 255).astype(np.uint8)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    return np.ascontiguousarray(pixels[:, :, :3])


def _reduce(pixels: NDArray[np.uint8], factor: int) -> NDArray[np.uint8]:
    """Block mean by an integer factor in exact integer arithmetic (reproducible anywhere)."""
    if factor <= 1:
        return pixels
    h, w = (pixels.shape[0] // factor) * factor, (pixels.shape[1] // factor) * factor
    blocks = pixels[:h, :w].astype(np.int64).reshape(h // factor, factor, w // factor, factor, -1)
    total = blocks.sum(axis=(1, 3))
    n = factor * factor
    return np.asarray((total + n // 2) // n, dtype=np.uint8)


def _display_factor(shape: tuple[int, ...]) -> int:
    return max(1, -(-max(shape[0], shape[1]) // DISPLAY_MAX))


def _flowable(pixels: NDArray[np.uint8], width: float, max_height: float) -> Image:
    h, w = pixels.shape[:2]
    scale = min(width / w, max_height / h)
    png = io.BytesIO()
    PILImage.fromarray(pixels, "RGB").save(png, format="PNG", compress_level=1)
    png.seek(0)
    return Image(png, width=w * scale, height=h * scale)


def _luma(rgb: NDArray[np.uint8]) -> NDArray[np.int64]:
    r, g, b = (rgb[:, :, i].astype(np.int64) for i in range(3))
    return (299 * r + 587 * g + 114 * b + 500) // 1000


def _overlay(output: NDArray[np.uint8], pmap: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """The output in grey with each provenance class tinted (integer arithmetic)."""
    grey = _luma(output)
    out = np.repeat(grey[:, :, None], 3, axis=2)
    for code, name in enumerate(provenance.CLASSES):
        spec = CLASS_COLOURS[name]
        if spec is None:
            continue
        (r, g, b), alpha = spec
        a = round(alpha * 256)
        mask = pmap == code
        tint = np.array([r, g, b], np.int64)
        out[mask] = (out[mask] * (256 - a) + tint * a + 128) >> 8
    return out.astype(np.uint8)


def _heat(values: NDArray[np.uint16]) -> tuple[NDArray[np.uint8], float]:
    """A black-red-yellow-white ramp scaled to the map's maximum; returns the image and that
    maximum as a fraction of full scale."""
    top = int(values.max()) if values.size else 0
    if values.ndim == 3:
        values = values[:, :, 0]
    t = (values.astype(np.int64) * 765) // max(top, 1)  # 0..765: three linear segments
    r = np.clip(t, 0, 255)
    g = np.clip(t - 255, 0, 255)
    b = np.clip(t - 510, 0, 255)
    return np.stack([r, g, b], axis=2).astype(np.uint8), top / 65535


def _swatch(rgb: tuple[int, int, int]) -> Table:
    box = Table([[""]], colWidths=[3 * mm], rowHeights=[3 * mm])
    box.setStyle(
        TableStyle([("BACKGROUND", (0, 0), (0, 0), colors.Color(*(c / 255 for c in rgb)))])
    )
    return box


# -- reading the case ------------------------------------------------------------------------


def _read_checked(case: Case, record: dict[str, Any], what: str) -> bytes:
    rel = str(record["file"])
    try:
        data = (case.root / rel).read_bytes()
    except OSError as exc:
        raise CaseError(f"{what}: cannot read {rel}: {exc.strerror}") from None
    if sha256_hex(data) != record["sha256"]:
        raise CaseError(
            f"{what}: {rel} no longer matches its recorded SHA-256",
            hint="run `forensic verify` on the case; a report is never built from altered files",
        )
    return data


def _decode_checked(case: Case, record: dict[str, Any], what: str) -> NDArray[Any]:
    pixels, _ = decode_image(_read_checked(case, record, what), where=what)
    return pixels


def _tiff16(case: Case, record: dict[str, Any], what: str) -> NDArray[np.uint16]:
    import cv2

    data = _read_checked(case, record, what)
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.dtype != np.uint16:
        raise CaseError(f"{what}: {record['file']} is not a 16-bit map")
    return np.asarray(pixels, np.uint16)


def _short(fp: str) -> str:
    return f"{fp[:16]}…"


def _time(stamp: str) -> str:
    return stamp.replace("T", " ")[:19] + "Z"


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(params.items())) or "(none)"


def run_class(run: dict[str, Any]) -> str:
    """Plain-language class of a run's output: evidence-grade, inferred or redacted."""
    counts = _counts(run)
    if run.get("tainted") or counts.get("inferred", 0) > 0:
        return "inferred"
    if counts.get("redacted", 0) > 0:
        return "redacted"
    return "evidence"


CLASS_TEXT = {
    "evidence": "Evidence-grade: classical, deterministic processing only",
    "inferred": "Contains inferred pixels: investigative lead only, NOT for identification",
    "redacted": "Redacted disclosure copy: areas deliberately destroyed",
}


#: Output frames listed in the report's table; the complete list is attached.
FRAME_ROWS = 60


def attachment_name(case_path: str) -> str:
    """A case file's name as an attachment: flat (``derived/x.png`` -> ``derived_x.png``),
    because poppler's ``pdfdetach -saveall`` cannot save names that contain a folder."""
    return case_path.replace("/", "_")


def video_run_files(
    run: dict[str, Any], steps: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], str]]:
    """A streamed video run's per-frame lists and generative map videos, attached to the report
    so that any single frame can be proved from the PDF alone (the output video itself stays
    in the case: it can be large)."""
    if run.get("format") != "forensic-run/2":
        return []
    rid = run["run"]
    out = [
        (run["inputs"], f"input frame list of {rid}"),
        (run["frames"], f"output frame list of {rid}"),
    ]
    for step in steps:
        out.append((step["applied"], f"per-frame record of {rid} step {step['step']}"))
        for key, video in (step.get("maps") or {}).items():
            out.append((video, f"{key} maps of {rid} step {step['step']}"))
    return out


def provenance_records(run: dict[str, Any]) -> list[dict[str, Any]]:
    """A run's provenance-map records: one for a still image, one per frame for video (one
    FFV1 video of maps for a streamed video run)."""
    if run.get("format") == "forensic-run/2":
        return [{**run["provenance"]["video"], "counts": run["provenance"]["counts"]}]
    if run.get("media") == "video":
        return [f["provenance"] for f in run.get("frames", [])]
    return [run["provenance"]]


def _counts(run: dict[str, Any]) -> dict[str, int]:
    total: dict[str, int] = {}
    for record in provenance_records(run):
        for k, v in record["counts"].items():
            total[k] = total.get(k, 0) + int(v)
    return total


# -- the document ----------------------------------------------------------------------------


class _Report:
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
        self.st = _Styles()
        self.opened = entries[0].payload
        self.names = enrolled_keys(entries)
        self.policy = case.policy()
        self.profile_name = str(self.opened["policy"].get("profile") or "")
        self.label = self.policy.profile(self.profile_name or None).generative.label
        chosen = request.exhibits
        self.exhibits = [x for x in exhibits(entries) if chosen is None or x["exhibit"] in chosen]
        wanted = {x["exhibit"] for x in self.exhibits}
        self.runs = [(r, s) for r, s in runs(entries) if r["exhibit"] in wanted]
        self.cosigns: dict[str, list[Entry]] = {}
        for e in entries:
            if e.kind == "cosign":
                self.cosigns.setdefault(str(e.payload["entry"]), []).append(e)
        self.step_hash = {
            (e.payload["run"], e.payload["step"]): e.hash for e in entries if e.kind == "run.step"
        }

    # Each section returns flowables.

    def cover(self) -> list[Any]:
        st, t, req = self.st, self.templates, self.request
        head = self.entries[-1]
        cp = json.loads(_b64(json.loads(req.checkpoint)["payload"]))
        examiners = []
        for fp, name in self.names.items():
            bound = [e for e in self.entries if e.kind == "pki.bind" and e.actor == fp]
            cert = " · report certificate bound" if bound else ""
            examiners.append(f"{name} — Ed25519 {fp}{cert}")
        signer = self.names.get(req.signer, "?")
        classes = [run_class(r) for r, _ in self.runs]
        counts = {k: classes.count(k) for k in CLASS_TEXT}
        out: list[Any] = [
            _p(t.lab["name"], st.h2),
            _p(t.lab["address"], st.small),
            Spacer(1, 6 * mm),
            _p(t.wording["title"], st.title),
            _p(f"Case {self.case.case_id}: {self.opened.get('title', '')}", st.h1),
            Spacer(1, 3 * mm),
            _kv_table(
                [
                    ("Report", f"Report {req.number} of case {self.case.case_id}"),
                    ("Date", utc_timestamp(req.now)),
                    ("Laboratory", f"{t.lab['name']}. {t.lab['accreditation']}"),
                    ("Examiners", _p("\n".join(examiners), st.cell)),
                    ("Signed by", f"{signer} (Ed25519 {req.signer})"),
                    (
                        "Tool",
                        f"forensic {tool_version()['version']}; templates sha256 {t.sha256}",
                    ),
                    (
                        "Policy",
                        f"{self.opened['policy'].get('name')}, profile "
                        f"{self.profile_name or '(default)'}, sha256 "
                        f"{self.opened['policy']['sha256']}",
                    ),
                    (
                        "Exhibits",
                        ", ".join(x["exhibit"] for x in self.exhibits) or "none",
                    ),
                    (
                        "Outputs",
                        f"{len(self.runs)} run(s): {counts['evidence']} evidence-grade, "
                        f"{counts['inferred']} with inferred pixels, "
                        f"{counts['redacted']} redacted",
                    ),
                    (
                        "Verification",
                        f"PASSED when issued: {req.count} journal entries, every signature, "
                        "the hash chain, the signed checkpoint, evidence files and stored "
                        "outputs checked by forensic verify.",
                    ),
                    ("Journal head", _p(head.hash, st.mono)),
                    ("Merkle root", _p(checkpoint_root(self.entries), st.mono)),
                    (
                        "Checkpoint",
                        f"{cp['count']} entries, signed {_time(cp['time'])} by "
                        f"{self.names.get(cp['actor'], cp['actor'])}",
                    ),
                ],
                st,
            ),
            Spacer(1, 4 * mm),
        ]
        out += [_p(p, st.body) for p in paragraphs(t.wording["purpose"])]
        return out

    def summary(self) -> list[Any]:
        st = self.st
        out: list[Any] = [_p("Summary: what was received, done and produced", st.h1)]
        out += [_p(p, st.body) for p in paragraphs(self.templates.wording["lay_summary"])]
        out.append(Spacer(1, 2 * mm))
        rows: list[list[Any]] = [
            [_p(h, st.cell) for h in ("Output", "From", "Steps", "What it is", "Output")]
        ]
        for run, steps in self.runs:
            kind = run_class(run)
            ops = ", ".join(s["op"] for s in steps)
            result = run["output"]
            sha = (
                f"{result['sha256'][:16]}…"
                if result.get("sha256")
                else f"{result['frames']} frames, Merkle root {result['merkle_root'][:16]}…"
            )
            text = Paragraph(
                f"<font color='#{'cc0033' if kind == 'inferred' else '000000'}'>"
                f"{escape(CLASS_TEXT[kind])}</font>",
                st.cell,
            )
            rows.append(
                [
                    _p(f"{run['run']} {run['name']}", st.cell),
                    _p(run["exhibit"] if not run.get("source") else run["source"]["run"], st.cell),
                    _p(ops, st.cell),
                    text,
                    _p(sha, st.cell),
                ]
            )
        if len(rows) == 1:
            rows.append([_p("No enhancement runs.", st.cell), "", "", "", ""])
        out.append(_grid(rows, [28 * mm, 14 * mm, 46 * mm, 56 * mm, TEXT_W - 144 * mm]))
        return out

    def evidence(self) -> list[Any]:
        st = self.st
        out: list[Any] = [PageBreak(), _p("Evidence received", st.h1)]
        by_seq = {e.payload.get("exhibit"): e for e in self.entries if e.kind == "evidence.ingest"}
        for x in self.exhibits:
            entry = by_seq[x["exhibit"]]
            facts = x.get("facts", {})
            fact_text = ", ".join(f"{k} {v}" for k, v in sorted(facts.items()) if k != "exif")
            ph = x["pixel_hash"]
            rows: list[tuple[str, Any]] = [
                ("Original name", x["original"]["name"]),
                ("Size", f"{x['size']:,} bytes ({x['format']}, {x['media']})"),
                ("SHA-256 (file)", _p(x["sha256"], st.mono)),
                (f"Pixel hash ({ph['algorithm']})", _p(ph["sha256"], st.mono)),
                ("Media facts", fact_text),
                ("Ingested", f"{_time(entry.time)} by {self.names.get(entry.actor, entry.actor)}"),
                ("Journal entry", _p(f"#{entry.seq} {entry.hash}", st.mono)),
            ]
            if x["media"] == "video":
                rows.insert(
                    4,
                    (
                        "Frames",
                        f"{ph.get('frame_count')} decoded frames; Merkle "
                        "root of the per-frame hashes above; the full list "
                        f"is attached as {x['exhibit']}-frames.csv",
                    ),
                )
            if x.get("warnings"):
                rows.append(("Warnings", " ".join(x["warnings"])))
            out.append(
                KeepTogether(
                    [_p(f"{x['exhibit']}: {x['original']['name']}", st.h2), _kv_table(rows, st)]
                )
            )
        if not self.exhibits:
            out.append(_p("No exhibits selected.", st.body))
        return out

    def run_section(self, run: dict[str, Any], steps: list[dict[str, Any]]) -> list[Any]:
        st = self.st
        kind = run_class(run)
        out: list[Any] = []
        if kind == "inferred":
            out += [NextPageTemplate("inferred"), PageBreak()]
        else:
            out.append(CondPageBreak(90 * mm))
        source = run["source"]["run"] if run.get("source") else run["exhibit"]
        out.append(_p(f"Output {run['run']}: {run['name']} (from {source})", st.h1))
        out.append(_p(CLASS_TEXT[kind], st.h2))
        recipe = run["recipe"]
        out.append(
            _kv_table(
                [
                    ("Recipe", f"{recipe['name']} (sha256 {recipe['sha256']})"),
                    (
                        "Policy profile",
                        f"{run['policy']['profile']} (policy sha256 {run['policy']['sha256']})",
                    ),
                    ("Lanes", ", ".join(run["lanes"])),
                    *self.output_rows(run),
                ],
                st,
            )
        )
        for step in steps:
            out += self.step_block(run, step)
        out += self.images(run, steps, kind)
        if kind == "inferred":
            out += [NextPageTemplate("normal"), PageBreak()]
        return out

    def output_rows(self, run: dict[str, Any]) -> list[tuple[str, Any]]:
        st, result = self.st, run["output"]
        if "video" in result:
            video = result["video"]
            return [
                ("Input frames", f"{run['inputs']['count']} decoded frames of {run['exhibit']}"),
                (
                    "Output frames",
                    f"{result['frames']} frame(s) (listed below), stored losslessly as "
                    f"{video['file']} (FFV1 in Matroska, {video['pix_fmt']}, "
                    f"{video['size']:,} bytes)",
                ),
                ("Output video SHA-256", _p(video["sha256"], st.mono)),
                ("Merkle root (pixels)", _p(result["merkle_root"], st.mono)),
            ]
        if run.get("media") == "video":
            return [
                ("Output frames", f"{result['frames']} frames (listed below)"),
                ("Merkle root", _p(result["merkle_root"], st.mono)),
            ]
        return [
            (
                "Output file",
                f"{result['file']} ({result['size']:,} bytes, {result['width']}×"
                f"{result['height']} {result['channels']} {result['dtype']})",
            ),
            ("Output SHA-256", _p(result["sha256"], st.mono)),
            ("Output pixels", _p(result["pixel_sha256"], st.mono)),
        ]

    def step_block(self, run: dict[str, Any], step: dict[str, Any]) -> list[Any]:
        st = self.st
        records = applied(step, self.case.root)
        first = records[0]
        algorithm = step.get("algorithm") or {}
        refs = algorithm.get("references") or []
        ref_text = (
            "; ".join(
                r["citation"]
                + (f" doi:{r['doi']}" if r.get("doi") else "")
                + (f" ({r['note']})" if r.get("note") else "")
                for r in refs
            )
            or "not recorded in this run's journal (run made before references were journaled)"
        )
        entry_hash = self.step_hash.get((run["run"], step["step"]), "")
        rows: list[tuple[str, Any]] = [
            ("Operation", f"{step['op']} v{step['op_version']} — {step['lane']} lane"),
            ("Method", algorithm.get("summary", "(not recorded)")),
            ("Reference", ref_text),
            ("Parameters", _p(_params(first["params"]), st.mono)),
        ]
        if step.get("roi"):
            rows.append(("Region", f"x, y, width, height = {step['roi']}"))
        if first.get("inputs"):
            used = [i["frame"] for i in first["inputs"]]
            rows.append(
                (
                    "Frames combined",
                    f"{len(used)} frames, {used[0]}–{used[-1]}, into one output (labelled "
                    f"frame {first['frame']}); Merkle root of their pixel hashes "
                    f"{first['input']['merkle_root'][:16]}…",
                )
            )
        elif step.get("frames") or first.get("frame") is not None:
            frames = [r["frame"] for r in records]
            rows.append(
                (
                    "Frames",
                    f"{len(frames)} frames, {frames[0]}–{frames[-1]} (parameters "
                    "above are frame "
                    f"{frames[0]}'s; every frame's are in the journal)",
                )
            )
        if first.get("details"):
            rows.append(("Estimates", _params(first["details"])))
        if step.get("temporal") == "map" and len(records) > 1 and records[-1].get("details"):
            # Frame 0 of a registration is the reference (identity): show the last one too.
            rows.append(
                (f"Estimates, frame {records[-1]['frame']}", _params(records[-1]["details"]))
            )
        if isinstance(step.get("applied"), dict):
            rows.append(
                (
                    "Per-frame record",
                    _p(
                        f"{step['applied']['count']} frame record(s) in "
                        f"{attachment_name(step['applied']['file'])} (attached), SHA-256 "
                        f"{step['applied']['sha256']}; Merkle root of the output frames "
                        f"{step['applied']['merkle_root']}",
                        st.mono,
                    ),
                )
            )
        rows += [
            ("Input pixels", _p(first["input"].get("pixel_sha256", "(several frames)"), st.mono)),
            ("Output pixels", _p(first["output"]["pixel_sha256"], st.mono)),
            ("Journal entry", _p(entry_hash, st.mono)),
        ]
        if step.get("model"):
            m = step["model"]
            facts = "; ".join(
                str(m[k])
                for k in ("name", "architecture", "framework", "device", "determinism")
                if m.get(k)
            )
            rows.append(("Model", facts or "(none recorded)"))
            for key, title in (
                ("weights_sha256", "Weights SHA-256"),
                ("model_card_sha256", "Model card SHA-256"),
            ):
                if m.get(key):
                    rows.append((title, _p(str(m[key]), st.mono)))
            rows.append(
                (
                    "Inferred",
                    f"{100 * float(step.get('inferred_fraction', 0)):.2f}% of "
                    "the pixels of a frame (at most)",
                )
            )
            cos = self.cosigns.get(entry_hash, [])
            rows.append(
                (
                    "Co-signed",
                    "; ".join(f"{self.names.get(c.actor, c.actor)} at {_time(c.time)}" for c in cos)
                    or "no",
                )
            )
        warnings = step.get("warnings") or []
        rows.append(("ENFSI warnings", " ".join(warnings) if warnings else "none raised"))
        return [_p(f"Step {step['step']}: {step['op']}", st.h2), _kv_table(rows, st)]

    def _before_after(
        self, run: dict[str, Any]
    ) -> tuple[NDArray[Any], NDArray[Any], NDArray[np.uint8], str]:
        """Input and output pixels (first frame for video) and the output's provenance map."""
        label = f"run {run['run']}"
        if run.get("format") == "forensic-run/2":
            from forensic.videorun import load_artifact, read_stored_frame

            outputs = load_artifact(self.case.root, run["frames"], what=label)
            first = outputs[0]
            source = find_source(self.case, run["exhibit"])
            before = load_frames(self.case, source, [int(first["frame"])])[0].image
            after = read_stored_frame(self.case.root, run["output"]["video"], 0)
            pmap = read_stored_frame(self.case.root, run["provenance"]["video"], 0)
            if image_hash(after) != first["output"]["pixel_sha256"]:
                raise CaseError(f"{label}: its stored output video does not match the record")
            note = f"frame {first['frame']}; output 1 of {len(outputs)}"
            return before, after, np.asarray(pmap, np.uint8), note
        if run.get("media") == "video":
            frame = run["frames"][0]
            source = find_source(self.case, run["exhibit"])
            before = load_frames(self.case, source, [int(frame["frame"])])[0].image
            after = _decode_checked(self.case, frame["output"], label)
            pmap = _decode_checked(self.case, frame["provenance"], label)
            note = f"frame {frame['frame']} of {len(run['frames'])}"
        else:
            ref = run["source"]["run"] if run.get("source") else run["exhibit"]
            source = find_source(self.case, ref)
            before = load_frames(self.case, source, None)[0].image
            after = _decode_checked(self.case, run["output"], label)
            pmap = _decode_checked(self.case, run["provenance"], label)
            note = ""
        return before, after, np.asarray(pmap, np.uint8), note

    def images(self, run: dict[str, Any], steps: list[dict[str, Any]], kind: str) -> list[Any]:
        st = self.st
        before, after, pmap, note = self._before_after(run)
        b8, a8 = _to_rgb8(before), _to_rgb8(after)
        half = (TEXT_W - 6 * mm) / 2
        fb, fa = _display_factor(b8.shape), _display_factor(a8.shape)
        caption_b = (
            f"Before: {(run.get('source', {}) and 'source run output') or 'evidence'} "
            f"{b8.shape[1]}×{b8.shape[0]}" + (f", {note}" if note else "")
        )
        caption_a = f"After: {a8.shape[1]}×{a8.shape[0]}" + (
            f", shown reduced ×1/{fa}" if fa > 1 else ""
        )
        pair = Table(
            [
                [
                    _flowable(_reduce(b8, fb), half, 95 * mm),
                    _flowable(_reduce(a8, fa), half, 95 * mm),
                ],
                [_p(caption_b, st.caption), _p(caption_a, st.caption)],
            ],
            colWidths=[half + 3 * mm, half + 3 * mm],
        )
        out: list[Any] = [
            CondPageBreak(110 * mm),
            _p("Before and after (same displayed scale of the scene)", st.h2),
            pair,
        ]
        roi = next((s["roi"] for s in steps if s.get("roi")), None)
        if roi and b8.shape == a8.shape:
            x, y, w, h = (int(v) for v in roi)
            zoom = max(1, min(8, int(half // max(w, 1)), int((60 * mm) // max(h, 1))))
            crops = [
                np.repeat(np.repeat(im[y : y + h, x : x + w], zoom, 0), zoom, 1) for im in (b8, a8)
            ]
            out += [
                _p(
                    f"Magnified region x={x}, y={y}, {w}×{h} px, ×{zoom} (nearest neighbour)", st.h2
                ),
                Table(
                    [[_flowable(c, half, 70 * mm) for c in crops]], colWidths=[half + 3 * mm] * 2
                ),
            ]
        counts = _counts(run)
        total = max(1, sum(counts.values()))
        legend: list[list[Any]] = []
        for name in provenance.CLASSES:
            spec = CLASS_COLOURS[name]
            swatch = _swatch(spec[0]) if spec else _swatch((200, 200, 200))
            share = 100 * counts.get(name, 0) / total
            legend.append(
                [swatch, _p(f"{name}: {counts.get(name, 0):,} px ({share:.2f}%)", st.cell)]
            )
        legend_table = Table(legend, colWidths=[5 * mm, half - 5 * mm])
        overlay = _reduce(_overlay(a8, pmap), fa)
        out += [
            CondPageBreak(80 * mm),
            _p("Provenance map (what happened to each output pixel)", st.h2),
            Table(
                [[_flowable(overlay, half, 90 * mm), legend_table]],
                colWidths=[half + 3 * mm, half + 3 * mm],
            ),
            _p(
                "Grey: original pixels; tints mark the class of each pixel. The map itself is "
                "attached, losslessly, with its SHA-256.",
                st.caption,
            ),
        ]
        if run.get("media") == "video":
            out += self.frame_table(run)
        if kind == "inferred":
            out += self.maps(run, steps)
        if run.get("presentation"):
            from forensic.videorun import read_stored_frame

            pres = run["presentation"]
            p8 = _to_rgb8(read_stored_frame(self.case.root, pres, 0))
            out += [
                CondPageBreak(90 * mm),
                _p("Labelled presentation copy (first frame)", st.h2),
                _flowable(_reduce(p8, _display_factor(p8.shape)), TEXT_W, 110 * mm),
                _p(f"{pres['file']}, sha256 {pres['sha256']}", st.caption),
            ]
        if run.get("output", {}).get("presentation"):
            pres = run["output"]["presentation"]
            shown = _decode_checked(self.case, pres, f"run {run['run']} presentation copy")
            p8 = _to_rgb8(shown)
            out += [
                CondPageBreak(90 * mm),
                _p("Labelled presentation copy", st.h2),
                _flowable(_reduce(p8, _display_factor(p8.shape)), TEXT_W, 110 * mm),
                _p(f"sha256 {pres['sha256']}", st.caption),
            ]
        return out

    def frame_table(self, run: dict[str, Any]) -> list[Any]:
        st = self.st
        if run.get("format") == "forensic-run/2":
            from forensic.videorun import load_artifact

            outputs = load_artifact(self.case.root, run["frames"], what=f"run {run['run']}")
            pts = {
                i["frame"]: i.get("pts")
                for i in load_artifact(self.case.root, run["inputs"], what=f"run {run['run']}")
            }
            head = [[_p(h, st.cell) for h in ("Frame", "PTS", "Output pixel hash", "Frame hash")]]
            shown = outputs[:FRAME_ROWS]
            table = head + [
                [
                    _p(str(o["frame"]), st.cell),
                    _p(str(pts.get(o["frame"])), st.cell),
                    _p(o["output"]["pixel_sha256"], st.mono),
                    _p(o["output"]["frame_sha256"][:16] + "…", st.mono),
                ]
                for o in shown
            ]
            note = (
                f"The first {FRAME_ROWS} of {len(outputs)} frames; all are in "
                if len(outputs) > FRAME_ROWS
                else "All frames; also in "
            ) + (
                f"{attachment_name(run['frames']['file'])} (attached). The frame hash is what "
                "ingesting the output video (or its lossless export) records per frame."
            )
            return [
                _p("Output frames", st.h2),
                _grid(table, [14 * mm, 20 * mm, TEXT_W - 70 * mm, 36 * mm]),
                _p(note, st.caption),
            ]
        rows: list[list[Any]] = [[_p(h, st.cell) for h in ("Frame", "PTS", "Output file SHA-256")]]
        for frame in run["frames"]:
            rows.append(
                [
                    _p(str(frame["frame"]), st.cell),
                    _p(str(frame.get("pts")), st.cell),
                    _p(frame["output"]["sha256"], st.mono),
                ]
            )
        return [_p("Output frames", st.h2), _grid(rows, [14 * mm, 20 * mm, TEXT_W - 34 * mm])]

    def maps(self, run: dict[str, Any], steps: list[dict[str, Any]]) -> list[Any]:
        st = self.st
        out: list[Any] = []
        titles = {
            "inferred_content": "Inferred content (difference from the classical baseline)",
            "uncertainty": "Uncertainty (spread over perturbed runs)",
            "consistency": "Data consistency (output degraded again vs. the input)",
        }
        for step in steps:
            for record in applied(step, self.case.root):
                meta = record.get("maps")
                if not meta:
                    continue
                if "frames" in meta and "files" not in meta:
                    from forensic.videorun import read_stored_frame

                    cells, captions = [], []
                    for key in ("inferred_content", "uncertainty", "consistency"):
                        video = step["maps"][key]
                        raw = read_stored_frame(
                            self.case.root, video, meta["frames"][key]["stored"]
                        )
                        heat, top = _heat(np.asarray(raw, np.uint16))
                        heat = _reduce(heat, _display_factor(heat.shape))
                        cells.append(_flowable(heat, TEXT_W / 3 - 3 * mm, 60 * mm))
                        captions.append(
                            _p(
                                f"{titles[key]}, frame {record['frame']}; black 0 → white "
                                f"{100 * top:.2f}% of full scale; {video['file']}",
                                st.caption,
                            )
                        )
                    out += [
                        _p(f"Generative maps, {step['op']} (first frame)", st.h2),
                        Table([cells, captions], colWidths=[TEXT_W / 3] * 3),
                    ]
                    break
                cells, captions = [], []
                for key in ("inferred_content", "uncertainty", "consistency"):
                    heat, top = _heat(_tiff16(self.case, meta["files"][key], key))
                    heat = _reduce(heat, _display_factor(heat.shape))
                    cells.append(_flowable(heat, TEXT_W / 3 - 3 * mm, 60 * mm))
                    captions.append(
                        _p(
                            f"{titles[key]}; black 0 → white {100 * top:.2f}% of full "
                            f"scale; sha256 {meta['files'][key]['sha256']}",
                            st.caption,
                        )
                    )
                frame = "" if record.get("frame") is None else f", frame {record['frame']}"
                unc = meta.get("uncertainty", {})
                out += [
                    CondPageBreak(100 * mm),
                    _p(f"What step {step['step']} ({step['op']}) invented{frame}", st.h2),
                    Table([cells, captions], colWidths=[TEXT_W / 3] * 3),
                    _kv_table(
                        [
                            ("Baseline", meta.get("baseline", "")),
                            (
                                "Uncertainty",
                                f"{unc.get('runs')} runs, seeds {unc.get('seeds')}; "
                                f"{unc.get('perturbation', '')}",
                            ),
                            ("Consistency", meta.get("consistency_model", "")),
                            ("Means", _params(meta.get("summary", {}))),
                        ],
                        st,
                    ),
                ]
        return out

    def custody(self) -> list[Any]:
        st = self.st
        rows: list[list[Any]] = [
            [_p(h, st.cell) for h in ("#", "Time (UTC)", "Examiner", "Entry", "Entry SHA-256")]
        ]
        for e in self.entries:
            rows.append(
                [
                    _p(str(e.seq), st.cell),
                    _p(_time(e.time), st.cell),
                    _p(self.names.get(e.actor, _short(e.actor)), st.cell),
                    _p(describe(e), st.cell),
                    _p(e.hash, st.hash),
                ]
            )
        return [
            PageBreak(),
            _p("Chain of custody: every journal entry", st.h1),
            _p(
                "Each row is one signed journal entry. Entry n stores the SHA-256 of entry n-1, "
                "so no row can be changed, removed or reordered without breaking the chain; "
                "the signed checkpoint below covers them all.",
                st.body,
            ),
            Spacer(1, 2 * mm),
            _grid(rows, [7 * mm, 21 * mm, 22 * mm, 46 * mm, TEXT_W - 96 * mm]),
        ]

    def verification(self) -> list[Any]:
        st = self.st
        checkpoint = json.loads(self.request.checkpoint)
        body = json.loads(_b64(checkpoint["payload"]))
        cid = self.case.case_id
        commands = [
            "# with forensic (signatures, attached journal, and the case when you have it):",
            f"forensic verify report.pdf --case {cid}",
            "# save the attachments (listed below) with poppler:",
            "pdfdetach -saveall report.pdf",
            "# with pyHanko, trusting the attached lab CA certificate:",
            "pyhanko sign validate --trust lab-ca-<fingerprint>.cert.pem report.pdf",
            "# with poppler:",
            "pdfsig report.pdf",
            "# a journal entry's Ed25519 signature with OpenSSL and jq (here entry 0):",
            *openssl_recipe(),
        ]
        rows: list[list[Any]] = [
            [_p(a.name, st.cell), _p(a.description, st.cell), _p(a.sha256, st.hash)]
            for a in self.attachments
        ]
        return [
            PageBreak(),
            _p("How to verify this report", st.h1),
            _p(
                "The PDF is signed (PAdES, ECDSA P-256) with the examiner's report certificate, "
                "which a journal entry signed by both keys binds to the examiner's Ed25519 "
                "journal key. The journal, its checkpoint, the policy, the public keys and the "
                "maps are attached to this PDF, so the report alone is a complete record. Any "
                "change to a single byte of the signed file invalidates the signature.",
                st.body,
            ),
            Spacer(1, 2 * mm),
            Preformatted("\n".join(commands), st.mono),
            _p("Signed checkpoint", st.h2),
            _p(
                "The checkpoint is the examiner's signed statement of the journal's length and "
                "Merkle root (RFC 9162) when this report was issued. Keep a copy outside the "
                "case: a journal cut back to an earlier, self-consistent state is detectable "
                "only against such a copy.",
                st.body,
            ),
            _p(json.dumps(body, indent=1, sort_keys=True), st.mono),
            _p(f"keyid {checkpoint['signatures'][0]['keyid']}", st.mono),
            _p(f"sig {checkpoint['signatures'][0]['sig']}", st.mono),
            _p("Attachments", st.h2),
            _grid(
                [[_p(h, st.cell) for h in ("File", "What", "SHA-256")], *rows],
                [60 * mm, 34 * mm, TEXT_W - 94 * mm],
            ),
        ]

    def declarations(self) -> list[Any]:
        st, w = self.st, self.templates.wording
        out: list[Any] = [PageBreak(), _p("Methodology", st.h1)]
        out += [_p(p, st.body) for p in paragraphs(w["methodology"])]
        out.append(_p("Limitations", st.h1))
        out += [_p(p, st.body) for p in paragraphs(w["limitations"])]
        out.append(_p("Declaration", st.h1))
        out += [_p(p, st.body) for p in paragraphs(w["declaration"])]
        signer = self.names.get(self.request.signer, "?")
        out += [
            Spacer(1, 6 * mm),
            _p(
                f"{signer}, {utc_timestamp(self.request.now)}. Signed digitally: see the PDF "
                "signature panel and the verification section.",
                st.body,
            ),
        ]
        return out

    def story(self) -> list[Any]:
        story = self.cover() + self.summary() + self.evidence()
        for run, steps in self.runs:
            story += self.run_section(run, steps)
        return story + self.custody() + self.declarations() + self.verification()


def openssl_recipe(line: int = 1) -> list[str]:
    """Shell commands that check one journal entry's signature with OpenSSL (tested)."""
    return [
        f"sed -n {line}p journal.jsonl > line.json",
        "jq -r .payload line.json | base64 -d > payload.json",
        f"printf 'DSSEv1 {len(ENTRY_TYPE)} {ENTRY_TYPE} %d ' \\",
        "  $(wc -c < payload.json) > pae.bin && cat payload.json >> pae.bin",
        "jq -r '.signatures[0].sig' line.json | base64 -d > sig.bin",
        "openssl pkeyutl -verify -pubin -rawin -in pae.bin -sigfile sig.bin \\",
        "  -inkey key-$(jq -r '.signatures[0].keyid' line.json).pem",
    ]


def _b64(text: str) -> bytes:
    import base64

    return base64.b64decode(text)


def checkpoint_root(entries: list[Entry]) -> str:
    return entries_root(entries)


def describe(entry: Entry) -> str:
    """A short readable description of a journal entry, for the custody table."""
    p = entry.payload
    kind = entry.kind
    if kind == "case.open":
        return f"case opened: {p.get('case_id')}, policy {p['policy'].get('name')}"
    if kind == "evidence.ingest":
        return f"evidence {p['exhibit']} ingested: {p['original']['name']}"
    if kind == "run.step":
        return f"{p['run']} step {p['step']}: {p['op']} ({p['lane']})"
    if kind == "run":
        out = p.get("output") or {}
        sha = f" → {out['sha256'][:16]}…" if out.get("sha256") else ""
        return f"{p['run']} {p['name']} on {p['exhibit']}{sha}"
    if kind == "cosign":
        return f"co-signed {p['run']} step {p['step']} ({p['op']})"
    if kind == "pki.bind":
        return "report certificate bound to the journal key"
    if kind == "case.examiner.add":
        return f"examiner enrolled: {p.get('name')}"
    if kind == "report.generated":
        return f"report {p.get('number')} issued: sha256 {str(p.get('sha256'))[:16]}…"
    if kind == "report.approved":
        return f"report {p.get('number')} approved: sha256 {str(p.get('sha256'))[:16]}…"
    if kind == "export":
        quality = "lossless" if p.get("lossless") else "LOSSY presentation copy, not evidence"
        burnt = ", frame number and timecode burnt in" if p.get("burn_in") else ""
        return f"{p.get('run')} exported as {p.get('export_format')} ({quality}{burnt}): {p.get('name')}"
    return kind


class _NumberedCanvas(rl_canvas.Canvas):  # type: ignore[misc]
    """Writes "page n of N" and the case ID on every page once the page count is known."""

    footer = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for number, state in enumerate(self._pages, start=1):
            self.__dict__.update(state)
            self.setFont("ForensicSans", 7)
            self.setFillColor(colors.Color(0.3, 0.3, 0.3))
            self.drawString(MARGIN, 9 * mm, self.footer)
            self.drawRightString(PAGE_W - MARGIN, 9 * mm, f"page {number} of {total}")
            super().showPage()
        super().save()


def build_pdf(
    case: Case,
    entries: list[Entry],
    request: ReportRequest,
    templates: Templates,
    attachments: list[Attachment],
) -> bytes:
    """The unsigned report: the same inputs give the same bytes."""
    _fonts(templates)
    report = _Report(case, entries, request, templates, attachments)
    label = report.label

    def inferred_page(canv: rl_canvas.Canvas, _doc: Any) -> None:
        # A band at the top and bottom of every page that shows inferred content.
        canv.saveState()
        canv.setFillColor(INFERRED_RED)
        for y in (PAGE_H - 11 * mm, 12 * mm):
            canv.rect(0, y, PAGE_W, 7 * mm, stroke=0, fill=1)
        canv.setFillColor(colors.white)
        canv.setFont("ForensicSans-Bold", 11)
        for y in (PAGE_H - 8.7 * mm, 14.3 * mm):
            canv.drawCentredString(PAGE_W / 2, y, label)
        canv.restoreState()

    buf = io.BytesIO()
    title = f"{templates.wording['title']}: case {case.case_id}, report {request.number}"
    doc = BaseDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN + 4 * mm,
        bottomMargin=MARGIN + 8 * mm,
        title=title,
        author=report.names.get(request.signer, ""),
        subject=f"forensic case {case.case_id}",
        creator=f"forensic {tool_version()['version']}",
        invariant=1,
        pageCompression=1,
    )
    body = Frame(doc.leftMargin, doc.bottomMargin, doc.width, doc.height, id="body")
    doc.addPageTemplates(
        [
            PageTemplate(id="normal", frames=[body]),
            PageTemplate(id="inferred", frames=[body], onPage=inferred_page),
        ]
    )
    footer = (
        f"forensic report {request.number} · case {case.case_id} · {utc_timestamp(request.now)}"
    )

    class _Canvas(_NumberedCanvas):
        pass

    _Canvas.footer = footer
    with _fixed_settings():
        doc.build(report.story(), canvasmaker=_Canvas)
    return buf.getvalue()
