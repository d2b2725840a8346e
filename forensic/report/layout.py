"""The report's page geometry, fonts, paragraph styles, tables and display images.

Display images are previews at their printed resolution: reduced by an integer block mean
(exact integer arithmetic in numpy, not OpenCV's SIMD paths, so the same stored pixels give
the same PDF bytes on any machine) to at most `PREVIEW_DPI` at the size they are printed, and
encoded once, here, into the stream the PDF holds (`EncodedImage`): 8-bit JPEG (photographic
pictures; DCTDecode) or, for magnified pixels whose edges JPEG would blur, deflate over PNG
"Sub" predictor rows (FlateDecode with /Predictor 15), which turns the repeated pixels into
runs that compress fast and small. reportlab is handed the finished stream: it neither decodes
the preview again (to name it) nor deflates it a second time. The hashed originals are attached
losslessly or stay in the case, as the report says.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
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
from reportlab.pdfbase import pdfdoc, pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, Paragraph, Table, TableStyle
from reportlab.platypus.tables import CellStyle

from forensic import provenance
from forensic.errors import InputError
from forensic.report.templates import Templates

PAGE_W, PAGE_H = A4
MARGIN = 16 * mm
TEXT_W = PAGE_W - 2 * MARGIN
#: The most pixels per inch a preview keeps at the size it is printed (an integer reduction
#: brings it to between half this and this).
PREVIEW_DPI = 200
JPEG_QUALITY = 85
#: zlib level of magnified previews: their repeated rows are long matches that level 1 finds;
#: level 6 made a 540 x 540 grey region 20% smaller at 25 times the time (2 ms against 57 ms).
FLATE_LEVEL = 1
BOX_COLOUR = colors.Color(1.0, 0.85, 0.0)  # the box that marks a magnified region
CLASS_COLOURS = {  # provenance classes as tints over a grey copy of the output (RGB, alpha)
    "original": None,
    "transformed": ((64, 128, 255), 0.35),
    "resampled": ((255, 200, 0), 0.45),
    "inferred": ((230, 0, 120), 0.6),
    "redacted": ((0, 0, 0), 1.0),
}
INFERRED_RED = colors.Color(0.8, 0.0, 0.2)


# -- fonts, styles, tables ----------------------------------------------------------------


@contextlib.contextmanager
def fixed_settings() -> Iterator[None]:
    """reportlab's settings that shape the bytes, fixed whatever the environment says
    (RL_* variables, ~/.reportlab_settings, SOURCE_DATE_EPOCH): ASCII85 off (pure Python,
    ~98% of build time with images), page compression on, invariant output, and table cells
    in the report's own (embedded) font."""
    fixed = {"useA85": 0, "pageCompression": 1, "invariant": 1}
    old = {k: getattr(rl_config, k) for k in fixed}
    epoch = os.environ.pop("SOURCE_DATE_EPOCH", None)
    for key, value in fixed.items():
        setattr(rl_config, key, value)
    # A table cell holding a plain string (an empty spacer cell, say) selects this font even
    # when it draws nothing; reportlab's default, Helvetica, is not embedded (PDF/A, 6.2.11.4).
    cell_font = CellStyle.fontname
    CellStyle.fontname = "ForensicSans"
    try:
        yield
    finally:
        CellStyle.fontname = cell_font
        for key, value in old.items():
            setattr(rl_config, key, value)
        if epoch is not None:
            os.environ["SOURCE_DATE_EPOCH"] = epoch


#: The font files registered under each name, by SHA-256 (parsing a TrueType file costs
#: about 0.1 s; a report registers three).
_REGISTERED: dict[str, str] = {}


def register_fonts(templates: Templates) -> None:
    """Register the templates' fonts with reportlab (`InputError` for an unusable one); a
    font already registered from the same bytes is kept."""
    for name, role in (
        ("ForensicSans", "regular"),
        ("ForensicSans-Bold", "bold"),
        ("ForensicMono", "mono"),
    ):
        digest = templates.files.get(str(templates.font(role).relative_to(templates.folder)))
        if digest is not None and _REGISTERED.get(name) == digest:
            continue
        try:
            pdfmetrics.registerFont(TTFont(name, str(templates.font(role))))
        except (TTFError, OSError) as exc:
            raise InputError(
                f"report templates: the font {templates.font(role)} cannot be used ({exc})",
                hint="copy the fonts from the project's reports/fonts/",
            ) from None
        if digest is not None:
            _REGISTERED[name] = digest
    pdfmetrics.registerFontFamily(
        "ForensicSans",
        normal="ForensicSans",
        bold="ForensicSans-Bold",
        italic="ForensicSans",
        boldItalic="ForensicSans-Bold",
    )


class Styles:
    """The paragraph styles every section uses."""

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
        # Two full SHA-256 side by side in one table row.
        self.hash_pair = ParagraphStyle("hash_pair", parent=self.mono, fontSize=5.3, leading=7)
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


def para(text: str, style: ParagraphStyle) -> Paragraph:
    """A paragraph of plain text (escaped: never markup)."""
    return Paragraph(escape(text), style)


def kv_table(rows: list[tuple[str, Any]], st: Styles, key_w: float = 34 * mm) -> Table:
    """A two-column table of (key, value) rows; a value may be a flowable."""
    data = []
    for key, value in rows:
        cell: Any = value if isinstance(value, Flowable) else para(str(value), st.cell)
        data.append([para(key, st.cell), cell])
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


def grid(data: list[list[Any]], widths: list[float], *, header: bool = True) -> Table:
    """A ruled table, its first row a repeated header unless ``header`` is false."""
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


def to_rgb8(image: NDArray[Any]) -> NDArray[np.uint8]:
    """An 8-bit copy for display, H x W x 1 (grey) or H x W x 3 (colour): 16-bit samples keep
    their top 8 bits, alpha is dropped. Grey stays one channel (a third of the work)."""
    pixels = image
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    elif pixels.dtype != np.uint8:
        pixels = np.clip(np.rint(pixels.astype(np.float64) * 255), 0, 255).astype(np.uint8)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return np.ascontiguousarray(pixels[:, :, :1] if pixels.shape[2] < 3 else pixels[:, :, :3])


def reduce_pixels(pixels: NDArray[np.uint8], factor: int) -> NDArray[np.uint8]:
    """Block mean by an integer factor in exact integer arithmetic (reproducible anywhere):
    the factor² strided views summed in uint32, then rounded half up."""
    if factor <= 1:
        return pixels
    h, w = pixels.shape[0] // factor, pixels.shape[1] // factor
    # uint16 holds 16 x 16 x 255: half the memory traffic of uint32 for the usual factors.
    total = np.zeros((h, w, *pixels.shape[2:]), np.uint16 if factor <= 16 else np.uint32)
    for dy in range(factor):
        for dx in range(factor):
            total += pixels[dy : dy + h * factor : factor, dx : dx + w * factor : factor]
    n = factor * factor
    return np.asarray((total + n // 2) // n, dtype=np.uint8)  # no overflow: total <= n*255


def reduce_classes(pmap: NDArray[np.uint8], factor: int) -> NDArray[np.uint8]:
    """A provenance map reduced by an integer factor: each block takes the most severe class
    it holds (`forensic.provenance.CLASSES` is in order of severity), so one inferred or
    redacted pixel still shows in the preview."""
    if factor <= 1:
        return pmap
    h, w = pmap.shape[0] // factor, pmap.shape[1] // factor
    out = np.zeros((h, w), np.uint8)
    for dy in range(factor):
        for dx in range(factor):
            np.maximum(
                out, pmap[dy : dy + h * factor : factor, dx : dx + w * factor : factor], out=out
            )
    return out


def preview_factor(shape: tuple[int, ...], printed_w: float, printed_h: float) -> int:
    """The integer reduction that brings an image printed ``printed_w`` x ``printed_h`` points
    to at most `PREVIEW_DPI`."""
    h, w = shape[0], shape[1]
    most = max(w / (printed_w / 72), h / (printed_h / 72))
    return max(1, -(-int(most) // PREVIEW_DPI))


def _is_grey(pixels: NDArray[np.uint8]) -> bool:
    return pixels.shape[2] == 1 or bool(
        np.array_equal(pixels[:, :, 0], pixels[:, :, 1])
        and np.array_equal(pixels[:, :, 0], pixels[:, :, 2])
    )


@dataclass(frozen=True)
class EncodedImage:
    """A preview encoded as the PDF image stream it becomes: ``data`` under ``filter``
    (``/DCTDecode`` or ``/FlateDecode``, with ``predictor_colors`` set when PNG predictor rows
    are used), ``width`` x ``height`` samples of ``colours`` components (1 grey, 3 RGB)."""

    data: bytes
    filter: str
    width: int
    height: int
    colours: int
    predictor: bool = False

    @functools.cached_property
    def name(self) -> str:
        """The XObject's name: the same stream drawn twice is stored once."""
        digest = hashlib.sha256(self.data)
        digest.update(f"{self.filter} {self.width} {self.height} {self.colours}".encode())
        return "FI" + digest.hexdigest()[:32]


def encode_jpeg(pixels: NDArray[np.uint8]) -> EncodedImage:
    """An H x W x 1 or x 3 preview as baseline JPEG (grey when R = G = B)."""
    grey = _is_grey(pixels)
    picture = PILImage.fromarray(
        np.ascontiguousarray(pixels[:, :, 0]) if grey else pixels, "L" if grey else "RGB"
    )
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=JPEG_QUALITY, subsampling=0, optimize=False)
    return EncodedImage(
        out.getvalue(), "/DCTDecode", picture.width, picture.height, 1 if grey else 3
    )


def encode_flate(pixels: NDArray[np.uint8]) -> EncodedImage:
    """An H x W x 1 or x 3 image losslessly, as deflate over PNG "Sub" rows: each row starts
    with filter byte 1 and holds each sample minus the one a pixel to its left (mod 256), the
    PNG predictor of ISO 32000-1, 7.4.4.4, so a pixel repeated sideways becomes zeros and a
    repeated row an identical row (a long match for deflate)."""
    grey = _is_grey(pixels)
    samples = np.ascontiguousarray(pixels[:, :, :1] if grey else pixels)
    h, w, c = samples.shape
    rows = np.empty((h, 1 + w * c), np.uint8)
    rows[:, 0] = 1  # PNG filter type Sub
    flat = samples.reshape(h, w * c)
    rows[:, 1 : 1 + c] = flat[:, :c]
    np.subtract(flat[:, c:], flat[:, :-c], out=rows[:, 1 + c :])  # wraps mod 256 in uint8
    return EncodedImage(
        zlib.compress(rows.tobytes(), FLATE_LEVEL), "/FlateDecode", w, h, c, predictor=True
    )


class _ImageXObject(pdfdoc.PDFImageXObject):  # type: ignore[misc]
    """reportlab's image XObject, given the finished stream (reportlab's own would decode
    the image to name it and deflate it again)."""

    def __init__(self, image: EncodedImage) -> None:  # no super(): it would load a source
        self.name = image.name
        self.image = image
        self.width, self.height = image.width, image.height
        self.mask = None

    def format(self, document: Any) -> bytes:
        image = self.image
        stream = pdfdoc.PDFStream(content=image.data, filters=[])
        d = stream.dictionary
        d["Type"] = pdfdoc.PDFName("XObject")
        d["Subtype"] = pdfdoc.PDFName("Image")
        d["Width"] = image.width
        d["Height"] = image.height
        d["BitsPerComponent"] = 8
        d["ColorSpace"] = pdfdoc.PDFName("DeviceGray" if image.colours == 1 else "DeviceRGB")
        d["Filter"] = pdfdoc.PDFName(image.filter[1:])
        if image.predictor:
            d["DecodeParms"] = pdfdoc.PDFDictionary(
                {
                    "Predictor": 15,
                    "Colors": image.colours,
                    "BitsPerComponent": 8,
                    "Columns": image.width,
                }
            )
        return bytes(stream.format(document))


def draw_encoded(canv: Canvas, image: EncodedImage, x: float, y: float, w: float, h: float) -> None:
    """Draw ``image`` into the rectangle (x, y, w, h) of ``canv``, registering its XObject
    the first time (as ``Canvas.drawImage`` does)."""
    canv._currentPageHasImages = 1
    doc = canv._doc
    reg = doc.getXObjectName(image.name)
    if not doc.idToObject.get(reg):
        xobject = _ImageXObject(image)
        canv._setXObjects(xobject)
        doc.Reference(xobject, reg)
        doc.addForm(image.name, xobject)
    canv.saveState()
    canv.translate(x, y)
    canv.scale(w, h)
    canv._code.append(f"/{reg} Do")
    canv.restoreState()
    canv._formsinuse.append(image.name)


class PreviewImage(Flowable):  # type: ignore[misc]
    """An encoded preview printed ``width`` x ``height`` points."""

    def __init__(self, image: EncodedImage, width: float, height: float) -> None:
        super().__init__()
        self.image = image
        self.drawWidth, self.drawHeight = width, height
        self.hAlign = "CENTER"  # as reportlab's Image, when it stands alone in a frame

    def wrap(self, avail_w: float, avail_h: float) -> tuple[float, float]:
        return self.drawWidth, self.drawHeight

    def draw(self) -> None:
        draw_encoded(self.canv, self.image, 0, 0, self.drawWidth, self.drawHeight)


class BoxedImage(Flowable):  # type: ignore[misc]
    """A preview with a rectangle drawn over it (vector lines: the preview's pixels are not
    changed) marking ``box`` = (x, y, w, h) in the pixels of the original."""

    def __init__(self, image: PreviewImage, source_w: int, box: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.image = image
        self.width, self.height = image.drawWidth, image.drawHeight
        self.scale = image.drawWidth / source_w
        self.box = box

    def wrap(self, avail_w: float, avail_h: float) -> tuple[float, float]:
        return self.width, self.height

    def draw(self) -> None:
        self.image.drawOn(self.canv, 0, 0)
        x, y, w, h = self.box
        k = self.scale
        self.canv.setStrokeColor(BOX_COLOUR)
        self.canv.setLineWidth(1.2)
        self.canv.rect(x * k, self.height - (y + h) * k, w * k, h * k, stroke=1, fill=0)


def image_flowable(
    pixels: NDArray[np.uint8],
    width: float,
    max_height: float,
    *,
    sharp: bool = False,
    box: tuple[int, int, int, int] | None = None,
) -> Flowable:
    """An RGB image fitted into ``width`` x ``max_height`` points, embedded as a preview at
    its printed resolution (see the module's docstring), with ``box`` marked on it."""
    h, w = pixels.shape[:2]
    scale = min(width / w, max_height / h)
    shown = reduce_pixels(pixels, preview_factor(pixels.shape, w * scale, h * scale))
    encoded = encode_flate(shown) if sharp else encode_jpeg(shown)
    image = PreviewImage(encoded, w * scale, h * scale)
    return image if box is None else BoxedImage(image, w, box)


def magnified(
    pixels: NDArray[np.uint8], box: tuple[int, int, int, int], width: float, max_height: float
) -> tuple[Flowable, float]:
    """The region ``box`` of an image, enlarged by pixel repetition (nearest neighbour: every
    source pixel stays one visible square) to fit ``width`` x ``max_height`` points, embedded
    at about `PREVIEW_DPI`; returns the flowable and the printed size of one source pixel in
    millimetres."""
    x, y, w, h = box
    crop = pixels[y : y + h, x : x + w]
    points = min(width / crop.shape[1], max_height / crop.shape[0])  # per source pixel
    repeat = max(1, int(points * PREVIEW_DPI / 72))  # at most PREVIEW_DPI
    big = np.repeat(np.repeat(crop, repeat, 0), repeat, 1)
    image = PreviewImage(encode_flate(big), crop.shape[1] * points, crop.shape[0] * points)
    return image, points * 25.4 / 72


def _luma(rgb: NDArray[np.uint8]) -> NDArray[np.int64]:
    r, g, b = (rgb[:, :, i].astype(np.int64) for i in range(3))
    return (299 * r + 587 * g + 114 * b + 500) // 1000


@functools.cache
def _tint_table() -> NDArray[np.uint8]:
    """Every (class, grey level) pair's tinted colour: the blend `overlay` shows."""
    weight = np.zeros(len(provenance.CLASSES), np.int32)  # of the tint, out of 256
    tint = np.zeros((len(provenance.CLASSES), 3), np.int32)
    for code, name in enumerate(provenance.CLASSES):
        spec = CLASS_COLOURS[name]
        if spec is not None:
            weight[code] = round(spec[1] * 256)
            tint[code] = spec[0]
    grey = np.arange(256, dtype=np.int32)[None, :, None]
    a = weight[:, None, None]
    table = ((grey * (256 - a) + tint[:, None, :] * a + 128) >> 8).astype(np.uint8)
    table.setflags(write=False)
    return table


def overlay(output: NDArray[np.uint8], pmap: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """The output in grey with each provenance class tinted (integer arithmetic: one look-up
    of each pixel's class and grey level in a table of the blends)."""
    grey = output[:, :, 0] if output.shape[2] == 1 else _luma(output)
    return np.asarray(_tint_table()[pmap, grey], np.uint8)


#: Heat maps are scaled so that this fraction of their values is below white: one outlier
#: does not leave the rest of the map black.
HEAT_QUANTILE = 0.995


def heat_top(values: NDArray[np.uint16]) -> int:
    """The value a heat map shows as white: the `HEAT_QUANTILE` quantile of the map (an
    exact order statistic), at least 1."""
    flat = values[:, :, 0] if values.ndim == 3 else values
    if not flat.size:
        return 1
    counts = np.bincount(flat.ravel(), minlength=65536)
    rank = int(np.ceil(HEAT_QUANTILE * flat.size))
    return max(1, int(np.searchsorted(np.cumsum(counts), rank)))


def heat_ramp(t: NDArray[np.int64]) -> NDArray[np.uint8]:
    """Black-red-yellow-white for t in 0..765 (three linear segments)."""
    r = np.clip(t, 0, 255)
    g = np.clip(t - 255, 0, 255)
    b = np.clip(t - 510, 0, 255)
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


def heat_map(values: NDArray[np.uint16]) -> tuple[NDArray[np.uint8], int, int]:
    """The map as a ramp from black (0) to white (`heat_top`, values above are white);
    returns the image, that top value and the map's maximum."""
    if values.ndim == 3:
        values = values[:, :, 0]
    top = heat_top(values)
    t = np.minimum(values.astype(np.int64) * 765 // top, 765)
    return heat_ramp(t), top, int(values.max()) if values.size else 0


def heat_legend(top: int, peak: int, st: Styles, width: float) -> Table:
    """A colour bar with its scale: black is 0, white is ``top`` (of 65535) and above."""
    bar = heat_ramp(np.repeat(np.arange(0, 766, 3, dtype=np.int64)[None, :], 8, axis=0))
    top_text = f"{100 * top / 65535:.2f}%"
    table = Table(
        [
            [
                para("0", st.small),
                image_flowable(bar, width - 24 * mm, 3 * mm, sharp=True),
                para(top_text, st.small),
            ],
            [
                para(
                    f"black 0 to white {top_text} of full scale and above; the map's maximum is "
                    f"{100 * peak / 65535:.2f}%",
                    st.small,
                ),
                "",
                "",
            ],
        ],
        colWidths=[5 * mm, width - 22 * mm, 17 * mm],
        hAlign="LEFT",
    )
    table.setStyle(
        TableStyle(
            [
                ("SPAN", (0, 1), (2, 1)),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("LEFTPADDING", (0, 0), (-1, -1), 1),
                ("RIGHTPADDING", (0, 0), (-1, -1), 1),
            ]
        )
    )
    return table


def swatch(rgb: tuple[int, int, int]) -> Table:
    """A small square of colour (a legend key)."""
    box = Table([[""]], colWidths=[3 * mm], rowHeights=[3 * mm])
    box.setStyle(
        TableStyle([("BACKGROUND", (0, 0), (0, 0), colors.Color(*(c / 255 for c in rgb)))])
    )
    return box


# -- text ------------------------------------------------------------------------------------


def short_fp(fp: str) -> str:
    """A fingerprint shortened to 16 hex digits."""
    return f"{fp[:16]}…"


def entry_time(stamp: str) -> str:
    """A journal timestamp to the second: ``2026-11-24 09:30:00Z``."""
    return stamp.replace("T", " ")[:19] + "Z"


def params_text(params: dict[str, Any]) -> str:
    """Parameters as ``key=json`` pairs, sorted, or ``(none)``."""
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(params.items())) or "(none)"
