"""The report's page geometry, fonts, paragraph styles, tables and display images.

Display images are reduced with integer arithmetic in numpy (not OpenCV's SIMD paths), so that
the same stored pixels give the same PDF bytes on any machine; the hashed originals are
attached losslessly.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterator
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
from reportlab.platypus import Flowable, Image, Paragraph, Table, TableStyle

from forensic import provenance
from forensic.errors import InputError
from forensic.report.templates import Templates

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


# -- fonts, styles, tables ----------------------------------------------------------------


@contextlib.contextmanager
def fixed_settings() -> Iterator[None]:
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


def register_fonts(templates: Templates) -> None:
    """Register the templates' fonts with reportlab (`InputError` for an unusable one)."""
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
    """An 8-bit RGB copy for display: 16-bit samples keep their top 8 bits, alpha is dropped."""
    pixels = image
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    elif pixels.dtype != np.uint8:
        pixels = np.clip(np.rint(pixels.astype(np.float64) * 255), 0, 255).astype(np.uint8)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    return np.ascontiguousarray(pixels[:, :, :3])


def reduce_pixels(pixels: NDArray[np.uint8], factor: int) -> NDArray[np.uint8]:
    """Block mean by an integer factor in exact integer arithmetic (reproducible anywhere)."""
    if factor <= 1:
        return pixels
    h, w = (pixels.shape[0] // factor) * factor, (pixels.shape[1] // factor) * factor
    blocks = pixels[:h, :w].astype(np.int64).reshape(h // factor, factor, w // factor, factor, -1)
    total = blocks.sum(axis=(1, 3))
    n = factor * factor
    return np.asarray((total + n // 2) // n, dtype=np.uint8)


def display_factor(shape: tuple[int, ...]) -> int:
    """The integer reduction that brings the longer side to at most `DISPLAY_MAX`."""
    return max(1, -(-max(shape[0], shape[1]) // DISPLAY_MAX))


def image_flowable(pixels: NDArray[np.uint8], width: float, max_height: float) -> Image:
    """An RGB image as a PNG flowable that fits ``width`` x ``max_height``."""
    h, w = pixels.shape[:2]
    scale = min(width / w, max_height / h)
    png = io.BytesIO()
    PILImage.fromarray(pixels, "RGB").save(png, format="PNG", compress_level=1)
    png.seek(0)
    return Image(png, width=w * scale, height=h * scale)


def _luma(rgb: NDArray[np.uint8]) -> NDArray[np.int64]:
    r, g, b = (rgb[:, :, i].astype(np.int64) for i in range(3))
    return (299 * r + 587 * g + 114 * b + 500) // 1000


def overlay(output: NDArray[np.uint8], pmap: NDArray[np.uint8]) -> NDArray[np.uint8]:
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


def heat_map(values: NDArray[np.uint16]) -> tuple[NDArray[np.uint8], float]:
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
