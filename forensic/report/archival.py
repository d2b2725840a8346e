"""PDF/A-3b (ISO 19005-3, level B): what the report adds so that archives and courts' e-filing
systems accept it, attachments included.

reportlab 5.1.0 (open-source) has no PDF/A mode: it embeds TrueType subsets (symbolic, one
``cmap`` subtable, no ``/Encoding``: what ISO 19005-2/3 6.2.11.6 asks of symbolic TrueType)
but writes no OutputIntent and no XMP, and starts every page with its default font (an
unembedded Helvetica) unless told otherwise. This module supplies the rest, in the first
revision, deterministically (the report's date, not the clock):

* an sRGB OutputIntent (``/GTS_PDFA1``) with the shipped ICC profile (``icc/sRGB.icc``),
  which makes the pages' DeviceRGB and DeviceGray colour allowed (6.2.4.3);
* the document information dictionary and an XMP packet with the same title, author,
  subject, keywords, creator, producer and dates (6.6.2.3), plus ``pdfaid:part`` 3 and
  ``pdfaid:conformance`` B;
* a writer for the signing revisions (`ArchivalWriter`) that leaves the metadata alone:
  pyHanko would otherwise set the information dictionary's ``/ModDate`` and ``/Producer``
  to the signing time and itself, which then disagree with the XMP packet.

The attachments are associated files (6.8): each file specification has ``/AFRelationship``
and ``/UF``, each embedded stream a MIME ``/Subtype``, and the catalog's ``/AF`` lists them
(`forensic.report.pdf.sign_with_attachments`).

How it was checked: veraPDF, the reference validator, is a Java application that none of
the registries this project uses (PyPI, npm, Debian) carries, so it was not run here;
``tests/test_report_archival.py`` checks the requirements above structurally on a signed and
an approved report, and docs/spec.md says how a lab runs veraPDF on its own reports.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any
from xml.sax.saxutils import escape

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from reportlab.pdfbase import pdfdoc

#: The ICC profile of the OutputIntent (see icc/LICENSE.txt).
ICC_FILE = "sRGB.icc"
OUTPUT_CONDITION = "sRGB IEC61966-2.1"
PDFA_PART, PDFA_CONFORMANCE = 3, "B"


def srgb_profile() -> bytes:
    """The shipped sRGB ICC profile's bytes."""
    return files("forensic.report").joinpath("icc", ICC_FILE).read_bytes()


def pdf_date(when: datetime) -> str:
    """A date as the information dictionary writes it (UTC, to the second)."""
    return when.astimezone(UTC).strftime("D:%Y%m%d%H%M%S+00'00'")


def xmp_date(when: datetime) -> str:
    """The same instant as XMP writes it."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def xmp_packet(
    *,
    title: str,
    author: str,
    subject: str,
    keywords: str,
    creator: str,
    producer: str,
    created: datetime,
) -> bytes:
    """The document's XMP metadata: PDF/A identification and the information dictionary's
    entries as their XMP equivalents (ISO 19005-3, 6.6.2.3.1)."""

    def alt(text: str) -> str:
        return f'<rdf:Alt><rdf:li xml:lang="x-default">{escape(text)}</rdf:li></rdf:Alt>'

    rows = [
        f"<pdfaid:part>{PDFA_PART}</pdfaid:part>",
        f"<pdfaid:conformance>{PDFA_CONFORMANCE}</pdfaid:conformance>",
        "<dc:format>application/pdf</dc:format>",
        f"<dc:title>{alt(title)}</dc:title>",
    ]
    if author:
        rows.append(
            f"<dc:creator><rdf:Seq><rdf:li>{escape(author)}</rdf:li></rdf:Seq></dc:creator>"
        )
    rows += [
        f"<dc:description>{alt(subject)}</dc:description>",
        f"<pdf:Keywords>{escape(keywords)}</pdf:Keywords>",
        f"<pdf:Producer>{escape(producer)}</pdf:Producer>",
        f"<xmp:CreatorTool>{escape(creator)}</xmp:CreatorTool>",
        f"<xmp:CreateDate>{xmp_date(created)}</xmp:CreateDate>",
        f"<xmp:ModifyDate>{xmp_date(created)}</xmp:ModifyDate>",
    ]
    body = "\n".join(f"   {row}" for row in rows)
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""\n'
        '    xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/"\n'
        '    xmlns:dc="http://purl.org/dc/elements/1.1/"\n'
        '    xmlns:pdf="http://ns.adobe.com/pdf/1.3/"\n'
        '    xmlns:xmp="http://ns.adobe.com/xap/1.0/">\n'
        f"{body}\n"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="r"?>'
    ).encode()


class ArchivalInfo(pdfdoc.PDFInfo):  # type: ignore[misc]
    """reportlab's document information dictionary with the report's date (reportlab's
    invariant mode would write 2000-01-01) and no empty or XMP-less entries (reportlab
    writes ``/Trapped`` and an empty ``/Keywords``)."""

    def __init__(self, created: datetime) -> None:
        super().__init__()
        self.created = created

    def format(self, document: Any) -> bytes:
        entries = {
            "Title": self.title,
            "Author": self.author,
            "Subject": self.subject,
            "Keywords": self.keywords,
            "Creator": self.creator,
            "Producer": self.producer,
        }
        d: dict[str, Any] = {k: pdfdoc.PDFString(v) for k, v in entries.items() if v}
        d["CreationDate"] = d["ModDate"] = pdfdoc.PDFString(pdf_date(self.created))
        return bytes(pdfdoc.PDFDictionary(d).format(document))

    def xmp(self) -> bytes:
        return xmp_packet(
            title=self.title,
            author=self.author,
            subject=self.subject,
            keywords=self.keywords,
            creator=self.creator,
            producer=self.producer,
            created=self.created,
        )


class _PlainStream(pdfdoc.PDFStream):  # type: ignore[misc]
    """A stream written without a /Filter key: the XMP packet, which PDF/A wants readable
    without decoding (6.6.2.1); reportlab writes an empty /Filter array for ``filters=[]``."""

    def format(self, document: Any) -> bytes:
        content = document.encrypt.encode(self.content)
        d = pdfdoc.PDFDictionary(self.dictionary.dict.copy())
        d["Length"] = len(content)
        return bytes(pdfdoc.format(d, document) + b"\nstream\n" + content + b"endstream\n")


def start_archival(canvas: Any, created: datetime) -> None:
    """Give a fresh reportlab canvas's document the archival information dictionary (call
    before the document's title, author and keywords are set)."""
    canvas._doc.info = ArchivalInfo(created)


def finish_archival(canvas: Any) -> None:
    """Add the XMP packet and the sRGB OutputIntent to the catalog of ``canvas``'s document
    (call once the pages are drawn, before the document is saved)."""
    doc = canvas._doc
    info = doc.info
    assert isinstance(info, ArchivalInfo), "start_archival was not called"
    metadata = _PlainStream(content=info.xmp())
    metadata.dictionary["Type"] = pdfdoc.PDFName("Metadata")
    metadata.dictionary["Subtype"] = pdfdoc.PDFName("XML")
    profile = pdfdoc.PDFStream(content=srgb_profile())  # deflated as any other stream
    profile.dictionary["N"] = 3
    intent = pdfdoc.PDFDictionary(
        {
            "Type": pdfdoc.PDFName("OutputIntent"),
            "S": pdfdoc.PDFName("GTS_PDFA1"),
            "OutputConditionIdentifier": pdfdoc.PDFString(OUTPUT_CONDITION),
            "Info": pdfdoc.PDFString(OUTPUT_CONDITION),
            "RegistryName": pdfdoc.PDFString("http://www.color.org"),
            "DestOutputProfile": doc.Reference(profile, "forensicICCsRGB"),
        }
    )
    catalog = doc.Catalog
    catalog.Metadata = metadata  # a key reportlab's catalog writes as a reference
    catalog.OutputIntents = pdfdoc.PDFArray([intent])
    # reportlab's catalog writes only the keys it lists; OutputIntents is not one of them.
    catalog.__NoDefault__ = [*type(catalog).__NoDefault__, "OutputIntents"]


class ArchivalWriter(IncrementalPdfFileWriter):
    """pyHanko's incremental writer, leaving the document's metadata as the report wrote it
    (information dictionary and XMP agree; the signing time is in the signature)."""

    def _update_meta(self) -> None:
        return None


def profile_sha256() -> str:
    return hashlib.sha256(srgb_profile()).hexdigest()
