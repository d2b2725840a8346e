"""PDF/A-3b pieces of the report (`forensic.report.archival`) and the structural checker the
report tests use (tests/pdfa.py): it must fail on a PDF that is not PDF/A."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from reportlab.pdfgen import canvas

from forensic.report.archival import pdf_date, srgb_profile, xmp_date, xmp_packet
from tests.pdfa import _xmp_values, pdfa3b_problems


def test_a_plain_reportlab_pdf_fails_the_check_with_the_clauses_named() -> None:
    buf = io.BytesIO()
    page = canvas.Canvas(buf, invariant=1)
    page.drawString(72, 720, "Helvetica, not embedded")
    page.save()
    problems = " | ".join(pdfa3b_problems(buf.getvalue()))
    assert "6.6.2.1: the catalog has no /Metadata" in problems
    assert "6.2.3: no OutputIntent" in problems
    assert "font /Helvetica (/F1, page 1) is not embedded" in problems


def test_the_xmp_packet_says_pdfa_3b_and_matches_the_information_dictionary() -> None:
    when = datetime(2026, 11, 24, 9, 30, 5, 123456, tzinfo=UTC)
    packet = xmp_packet(
        title="Report <1> & more",
        author="Zoë",
        subject="case X",
        keywords="a; b",
        creator="forensic",
        producer="ReportLab",
        created=when,
    )
    values = _xmp_values(packet)
    assert values["pdfaid:part"] == "3"
    assert values["pdfaid:conformance"] == "B"
    assert values["dc:title"] == "Report <1> & more"  # escaped, and read back as written
    assert values["dc:creator"] == "Zoë"
    assert values["xmp:CreateDate"] == xmp_date(when) == "2026-11-24T09:30:05+00:00"
    assert pdf_date(when) == "D:20261124093005+00'00'"
    no_author = _xmp_values(
        xmp_packet(
            title="t",
            author="",
            subject="s",
            keywords="k",
            creator="c",
            producer="p",
            created=when,
        )
    )
    assert "dc:creator" not in no_author


def test_the_shipped_output_profile_is_an_srgb_display_profile() -> None:
    profile = srgb_profile()
    assert int.from_bytes(profile[:4], "big") == len(profile)  # the header's own size field
    assert profile[12:20] == b"mntrRGB "
    assert profile[36:40] == b"acsp"
    assert profile[8] == 2  # ICC version 2, which PDF/A-3 (PDF 1.7) readers all accept
