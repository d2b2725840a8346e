"""A structural check of the PDF/A-3b requirements a report can break (ISO 19005-3, level B),
read with pypdf, a PDF library we did not write. It is not veraPDF (the reference validator,
not installable from the registries this project uses): it checks the clauses named below on
the newest revision of a file, and returns what fails as sentences."""

from __future__ import annotations

import io
import re
import struct
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

import pypdf
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, StreamObject

NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "pdf": "http://ns.adobe.com/pdf/1.3/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
}
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def _pdf_date(text: str) -> datetime:
    m = re.fullmatch(r"D:(\d{14})(Z|[+-]\d\d'\d\d'?)?", text)
    assert m, text
    when = datetime.strptime(m.group(1), "%Y%m%d%H%M%S")
    tz = m.group(2) or "Z"
    if tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        offset = sign * (int(tz[1:3]) * 60 + int(tz[4:6]))
        return when.replace(tzinfo=UTC).__sub__(_minutes(offset))
    return when.replace(tzinfo=UTC)


def _minutes(n: int) -> Any:
    from datetime import timedelta

    return timedelta(minutes=n)


def _xmp_values(xmp: bytes) -> dict[str, str]:
    """The simple values and the first item of arrays, by ``prefix:name``."""
    root = ET.fromstring(xmp.split(b"?>", 1)[1].rsplit(b"<?xpacket", 1)[0])
    out: dict[str, str] = {}
    for desc in root.iter(f"{{{NS['rdf']}}}Description"):
        for key, value in desc.attrib.items():  # properties written as attributes
            for prefix, uri in NS.items():
                if key.startswith(f"{{{uri}}}"):
                    out[f"{prefix}:{key[len(uri) + 2 :]}"] = value
        for child in desc:
            for prefix, uri in NS.items():
                if child.tag.startswith(f"{{{uri}}}"):
                    name = f"{prefix}:{child.tag[len(uri) + 2 :]}"
                    items = list(child.iter(f"{{{NS['rdf']}}}li"))
                    default = [i for i in items if i.get(XML_LANG) == "x-default"]
                    chosen = (default or items or [child])[0]
                    out[name] = chosen.text or ""
    return out


def _cmap_subtables(font: bytes) -> int:
    """The number of encoding subtables of a TrueType font's ``cmap`` table."""
    count = struct.unpack(">H", font[4:6])[0]
    for i in range(count):
        tag, _, offset, _ = struct.unpack(">4sIII", font[12 + 16 * i : 28 + 16 * i])
        if tag == b"cmap":
            return int(struct.unpack(">H", font[offset + 2 : offset + 4])[0])
    return 0


def _fonts(resources: Any, seen: set[int]) -> list[tuple[str, DictionaryObject]]:
    """Every font of ``resources`` and of the forms and Type 3 glyphs it uses."""
    out: list[tuple[str, DictionaryObject]] = []
    if not isinstance(resources, DictionaryObject) or id(resources) in seen:
        return out
    seen.add(id(resources))
    for name, ref in (resources.get("/Font") or {}).items():
        out.append((str(name), ref.get_object()))
    for ref in (resources.get("/XObject") or {}).values():
        xobject = ref.get_object()
        if xobject.get("/Subtype") == "/Form":
            out += _fonts(xobject.get("/Resources"), seen)
    return out


def pdfa3b_problems(data: bytes) -> list[str]:
    """What stops ``data`` (its newest revision) from meeting the checked PDF/A-3b clauses."""
    problems: list[str] = []
    # 6.1.2: the header, then a comment of at least four bytes above 127.
    if not re.match(rb"%PDF-1\.[0-7]\r?\n%[\x80-\xff]{4}", data):
        problems.append("6.1.2: the header is not %PDF-1.n followed by a binary comment")
    reader = pypdf.PdfReader(io.BytesIO(data))
    trailer = reader.trailer
    if "/Encrypt" in trailer:
        problems.append("6.1.3: the file is encrypted")
    if "/ID" not in trailer:
        problems.append("6.1.3: the trailer has no /ID")
    root = trailer["/Root"]
    # 6.6.2: XMP metadata with the PDF/A identification, equal to the information dictionary.
    meta = root.get("/Metadata")
    xmp: dict[str, str] = {}
    if meta is None:
        problems.append("6.6.2.1: the catalog has no /Metadata")
    else:
        meta = meta.get_object()
        if "/Filter" in meta:
            problems.append("6.6.2.1: the metadata stream is compressed")
        if meta.get("/Type") != "/Metadata" or meta.get("/Subtype") != "/XML":
            problems.append("6.6.2.1: the metadata stream is not /Type /Metadata /Subtype /XML")
        xmp = _xmp_values(meta.get_data())
        if xmp.get("pdfaid:part") != "3" or xmp.get("pdfaid:conformance") != "B":
            problems.append(
                f"6.6.4: the XMP says pdfaid:part={xmp.get('pdfaid:part')}, "
                f"conformance={xmp.get('pdfaid:conformance')}, not 3 and B"
            )
    info = trailer.get("/Info")
    if info is not None:
        info = info.get_object()
        pairs = {
            "/Title": "dc:title",
            "/Author": "dc:creator",
            "/Subject": "dc:description",
            "/Keywords": "pdf:Keywords",
            "/Creator": "xmp:CreatorTool",
            "/Producer": "pdf:Producer",
        }
        for key, prop in pairs.items():
            if key in info and str(info[key]) != xmp.get(prop):
                problems.append(
                    f"6.6.2.3.1: {key} is {str(info[key])!r} but {prop} is {xmp.get(prop)!r}"
                )
        for key, prop in (("/CreationDate", "xmp:CreateDate"), ("/ModDate", "xmp:ModifyDate")):
            if key in info:
                value = xmp.get(prop)
                if value is None or _pdf_date(str(info[key])) != datetime.fromisoformat(value):
                    problems.append(f"6.6.2.3.1: {key} is {info[key]} but {prop} is {value}")
    # 6.2.3: one OutputIntent with an RGB display or printer profile of ICC version <= 4.
    intents = (root.get("/OutputIntents") or ArrayObject()).get_object()
    profiles = {
        i.get_object().raw_get("/DestOutputProfile").idnum
        for i in intents
        if "/DestOutputProfile" in i.get_object()
    }
    if not intents or len(profiles) != 1:
        problems.append("6.2.3: no OutputIntent with a single destination profile")
    else:
        intent = intents[0].get_object()
        icc = intent["/DestOutputProfile"].get_object()
        profile = icc.get_data()
        if intent.get("/S") != "/GTS_PDFA1":
            problems.append(f"6.2.3: the OutputIntent's /S is {intent.get('/S')}")
        if profile[8] > 4 or profile[12:16] not in (b"mntr", b"prtr") or icc.get("/N") != 3:
            problems.append("6.2.3: the output profile is not an RGB ICC v2-v4 mntr/prtr profile")
        if profile[16:20] != b"RGB ":
            problems.append("6.2.4.3: DeviceRGB is used without an RGB OutputIntent")
    # 6.2.11: every font embedded; symbolic TrueType without /Encoding, one cmap subtable.
    checked: set[int] = set()
    for number, page in enumerate(reader.pages, start=1):
        for name, font in _fonts(page.get("/Resources"), set()):
            key = id(font)
            if key in checked:
                continue
            checked.add(key)
            base = str(font.get("/BaseFont"))
            descriptor = font.get("/FontDescriptor")
            if font.get("/Subtype") == "/Type0":
                descriptor = font["/DescendantFonts"][0].get_object().get("/FontDescriptor")
            if descriptor is None:
                problems.append(f"6.2.11.4.1: font {base} ({name}, page {number}) is not embedded")
                continue
            descriptor = descriptor.get_object()
            files = [k for k in ("/FontFile", "/FontFile2", "/FontFile3") if k in descriptor]
            if not files:
                problems.append(f"6.2.11.4.1: font {base} has no embedded font program")
                continue
            if font.get("/Subtype") == "/TrueType" and int(descriptor["/Flags"]) & 4:
                if "/Encoding" in font:
                    problems.append(f"6.2.11.6: symbolic TrueType {base} has an /Encoding")
                program = descriptor[files[0]].get_object().get_data()
                if _cmap_subtables(program) != 1:
                    problems.append(
                        f"6.2.11.6: symbolic TrueType {base}'s cmap has "
                        f"{_cmap_subtables(program)} subtables, not exactly one"
                    )
            if font.get("/Subtype") == "/TrueType" and "/Widths" in font:
                span = int(font["/LastChar"]) - int(font["/FirstChar"]) + 1
                if len(font["/Widths"]) != span:
                    problems.append(f"6.2.11.5: font {base}'s /Widths do not cover its codes")
        # 6.3: annotations printable and visible; an appearance unless zero-sized.
        for ref in (page.get("/Annots") or ArrayObject()).get_object():
            annot = ref.get_object()
            flags = int(annot.get("/F", 0))
            if annot.get("/Subtype") != "/Popup" and (not flags & 4 or flags & (1 | 2 | 32)):
                problems.append(f"6.3.2: an annotation on page {number} has flags {flags}")
            x0, y0, x1, y1 = (float(v) for v in annot.get("/Rect", [0, 0, 0, 0]))
            if (x0, y0) != (x1, y1) and "/AP" not in annot:
                problems.append(f"6.3.3: an annotation on page {number} has no appearance")
            if "/A" in annot or "/AA" in annot:
                problems.append(f"6.4.1: an annotation on page {number} has an action")
        if "/AA" in page:
            problems.append(f"6.5.2: page {number} has additional actions")
        if "/Group" in page:
            problems.append(f"6.2.10: page {number} has a transparency group")
    form = root.get("/AcroForm")
    if form is not None:
        form = form.get_object()
        if getattr(form.get("/NeedAppearances"), "value", False) or "/XFA" in form:
            problems.append("6.4.1/6.4.2: the form asks for appearances or holds XFA")
    if "/AA" in root or "/JavaScript" in (root.get("/Names") or {}):
        problems.append("6.5: the catalog has actions or JavaScript")
    # Every object: no external streams, no LZW, images not interpolated, no soft masks or
    # blending (no transparency).
    for number in range(1, int(trailer["/Size"])):
        try:
            obj = reader.get_object(IndirectObject(number, 0, reader))
        except Exception:  # a free entry
            continue
        if isinstance(obj, StreamObject):
            if {"/F", "/FFilter", "/FDecodeParms"} & set(obj) and obj.get("/Type") != (
                "/EmbeddedFile"
            ):
                problems.append(f"6.1.7.1: stream {number} refers to an external file")
            filters = obj.get("/Filter")
            names = [filters] if not isinstance(filters, ArrayObject) else list(filters)
            if "/LZWDecode" in names:
                problems.append(f"6.1.7.2: stream {number} uses LZWDecode")
            if obj.get("/Subtype") == "/Image":
                interpolate = getattr(obj.get("/Interpolate"), "value", False)
                if interpolate or "/Alternates" in obj or "/OPI" in obj:
                    problems.append(f"6.2.8: image {number} interpolates or has alternates")
                if "/SMask" in obj:
                    problems.append(f"6.2.10: image {number} has a soft mask")
        elif (
            isinstance(obj, DictionaryObject)
            and obj.get("/Type") == "/ExtGState"
            and (obj.get("/SMask", "/None") != "/None" or float(obj.get("/CA", 1)) < 1)
        ):
            problems.append(f"6.2.10: graphics state {number} uses transparency")
    # 6.8: attachments are associated files with a MIME type.
    tree = (root.get("/Names") or {}).get("/EmbeddedFiles")
    associated = {ref.idnum for ref in (root.get("/AF") or ArrayObject()).get_object()}
    if tree is not None:
        names = (tree.get_object().get("/Names") or ArrayObject()).get_object()
        for i in range(0, len(names), 2):
            name, ref = str(names[i]), names[i + 1]
            spec = ref.get_object()
            missing = [k for k in ("/F", "/UF", "/AFRelationship") if k not in spec]
            if missing:
                problems.append(f"6.8: the attachment {name} lacks {', '.join(missing)}")
            if "/Subtype" not in spec["/EF"]["/F"].get_object():
                problems.append(f"6.8: the attachment {name} has no MIME type (/Subtype)")
            if ref.idnum not in associated:
                problems.append(f"6.8: the attachment {name} is not in the catalog's /AF")
    return problems
