"""Build the unsigned report PDF: a pure function of the journal, the files it hashes and the
templates.

Everything printed comes from journal entries (``entries``: the prefix of the journal the
report covers) or from case files whose hashes those entries record and that were checked
before the build. reportlab runs in invariant mode (fixed dates and document ID) and without
ASCII85 (pure-Python, and most of reportlab's time otherwise), so the same inputs give the
same bytes: ``forensic verify REPORT.pdf --case CASE`` rebuilds the report and compares.

The sections are in `front` (cover, summary, evidence), `runs` (one section per run) and
`back` (custody, declarations, how to verify); `layout` holds the styles, tables and display
images they share, `context` what they read from the journal.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas as rl_canvas
from reportlab.platypus import (
    BaseDocTemplate,
    CondPageBreak,
    Frame,
    NextPageTemplate,
    PageBreak,
    PageTemplate,
)

from forensic.case import Case
from forensic.journal import Entry
from forensic.report.archival import finish_archival, start_archival
from forensic.report.back import custody, declarations, verification
from forensic.report.context import ReportContext, run_class
from forensic.report.front import cover, evidence, summary
from forensic.report.layout import (
    INFERRED_RED,
    MARGIN,
    PAGE_H,
    PAGE_W,
    TEXT_W,
    fixed_settings,
    grid,
    para,
    register_fonts,
)
from forensic.report.model import Attachment, ReportRequest
from forensic.report.runs import pictures_ahead, run_section
from forensic.report.templates import Templates
from forensic.timeutil import utc_timestamp
from forensic.versions import tool_version

__all__ = ["build_pdf", "story"]


def story(ctx: ReportContext) -> list[Any]:
    """Every section, in order, as flowables. Superseded runs (``run.supersede``) are listed
    in one short table, not in full."""
    out = cover(ctx) + summary(ctx) + evidence(ctx)
    standing = [run for run in ctx.runs if not run.is_superseded]
    for i, run in enumerate(standing):
        out += run_section(ctx, run)
        following = standing[i + 1] if i + 1 < len(standing) else None
        if run_class(run) == "inferred" and (
            following is None or run_class(following) != "inferred"
        ):
            # Leave the labelled pages; the next section starts on an unlabelled one (and,
            # starting with a NotAtTopPageBreak, adds no blank page).
            out += [NextPageTemplate("normal"), PageBreak()]
    out += superseded_runs(ctx)
    return out + custody(ctx) + declarations(ctx) + verification(ctx)


def superseded_runs(ctx: ReportContext) -> list[Any]:
    """One table of the runs marked superseded: kept in the case and verified, not relied on."""
    rows = [
        [
            para(run.run_id, ctx.st.cell),
            para(f"{run.name} on {run.exhibit_id}", ctx.st.cell),
            para(str(mark.get("reason", "")), ctx.st.cell),
            para(str(mark.get("by") or "-"), ctx.st.cell),
        ]
        for run in ctx.runs
        if (mark := run.superseded) is not None
    ]
    if not rows:
        return []
    header = [para(t, ctx.st.cell) for t in ("Run", "Recipe and input", "Reason", "Replaced by")]
    return [
        CondPageBreak(40 * mm),
        para("Superseded runs", ctx.st.h2),
        para(
            "These runs were recorded and are verified with the case, but the examiner marked "
            "them superseded (journal entry run.supersede); this report does not rely on them.",
            ctx.st.body,
        ),
        grid([header, *rows], [14 * mm, 50 * mm, TEXT_W - 88 * mm, 24 * mm]),
    ]


class _NumberedCanvas(rl_canvas.Canvas):  # type: ignore[misc]
    """Writes "page n of N" and the case ID on every page once the page count is known, and
    makes the document PDF/A-3b (`forensic.report.archival`)."""

    footer = ""
    created = datetime(2000, 1, 1, tzinfo=UTC)  # the report's date (set per report)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []
        start_archival(self, self.created)

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
        finish_archival(self)
        super().save()


def build_pdf(
    case: Case,
    entries: list[Entry],
    request: ReportRequest,
    templates: Templates,
    attachments: list[Attachment],
) -> bytes:
    """The unsigned report: the same inputs give the same bytes."""
    register_fonts(templates)
    ctx = ReportContext(case, entries, request, templates, attachments)
    label = ctx.label

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
        author=ctx.names.get(request.signer, ""),
        subject=f"forensic case {case.case_id}",
        creator=f"forensic {tool_version()['version']}",
        keywords=f"forensic report; case {case.case_id}; report {request.number}",
        invariant=1,
        pageCompression=1,
        # Every page starts with this font selected: an embedded one (reportlab's default is
        # an unembedded Helvetica, which PDF/A forbids).
        initialFontName="ForensicSans",
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
    _Canvas.created = request.now
    standing = [run for run in ctx.runs if not run.is_superseded]
    with fixed_settings(), pictures_ahead(ctx, standing):
        doc.build(story(ctx), canvasmaker=_Canvas)
    return buf.getvalue()
