"""Colour of decoded video: the tags a stream carries and how frames become full-range RGB.

`colour_plan` decides, for one pixel format with its range and matrix tags, how FFmpeg's
converter is asked to produce full-range RGB (or grey), and records what was signalled, what was
used and, in sentences, what was assumed (docs/spec.md §3.4). `forensic.media` applies it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import av
import av.error
import numpy as np
import numpy.typing as npt

from forensic.errors import InputError

#: How video frames become RGB arrays for enhancement. The conversion is part of the record:
#: `verify --replay` repeats it and compares the converted frame's hash with the recorded one.
#: :func:`conversion_record` gives the full record for one exhibit (range, matrix, assumptions).
FRAME_CONVERSION: dict[str, Any] = {
    "converter": "PyAV VideoFrame.reformat (libswscale)",
    "interpolation": "BILINEAR",
    "threads": 1,
    "source_colorspace": (
        "as signalled by the stream; when unspecified ITU-R BT.601 and, for YUV, limited range "
        "(FFmpeg's defaults); output full-range RGB or grey"
    ),
}


# -- colour ------------------------------------------------------------------------------------
# Names as FFmpeg prints them (av_color_range_name, av_color_space_name, ...), by the integer
# values of AVColorRange, AVColorSpace, AVColorPrimaries and AVColorTransferCharacteristic.

_RANGE_NAMES = {0: "unspecified", 1: "limited", 2: "full"}
_MATRIX_NAMES = {
    0: "gbr",
    1: "bt709",
    2: "unspecified",
    3: "reserved",
    4: "fcc",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "ycgco",
    9: "bt2020nc",
    10: "bt2020c",
    11: "smpte2085",
    12: "chroma-derived-nc",
    13: "chroma-derived-c",
    14: "ictcp",
}
_PRIMARIES_NAMES = {
    1: "bt709",
    2: "unspecified",
    4: "bt470m",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "film",
    9: "bt2020",
    10: "smpte428",
    11: "smpte431",
    12: "smpte432",
    22: "ebu3213",
}
_TRANSFER_NAMES = {
    1: "bt709",
    2: "unspecified",
    4: "gamma22",
    5: "gamma28",
    6: "smpte170m",
    7: "smpte240m",
    8: "linear",
    9: "log100",
    10: "log316",
    11: "iec61966-2-4",
    12: "bt1361e",
    13: "iec61966-2-1",
    14: "bt2020-10",
    15: "bt2020-12",
    16: "smpte2084",
    17: "smpte428",
    18: "arib-std-b67",
}
# Signalled matrix -> libswscale's name for the YUV->RGB matrix (PyAV's Colorspace enum), and
# the name the record uses for it.
_SWS_MATRIX = {
    "bt709": ("ITU709", "bt709"),
    "bt470bg": ("ITU601", "bt601"),
    "smpte170m": ("ITU601", "bt601"),
    "fcc": ("FCC", "fcc"),
    "smpte240m": ("SMPTE240M", "smpte240m"),
    "bt2020nc": ("BT2020", "bt2020nc"),
    "bt2020c": ("BT2020", "bt2020nc"),
}
_DEFAULT_MATRIX = ("ITU601", "bt601")


def _name(table: dict[int, str], value: int) -> str:
    return table.get(value, f"unknown-{value}")


def _target_for(fmt: av.VideoFormat) -> str:
    bits = max(c.bits for c in fmt.components)
    if len(fmt.components) == 1:
        return "gray16le" if bits > 8 else "gray"
    return "rgb48le" if bits > 8 else "rgb24"


@dataclass(frozen=True)
class ColourPlan:
    """How one decoded pixel format with its colour tags becomes full-range RGB (or grey).

    ``range`` and ``matrix`` are what the conversion used; ``signalled_*`` what the stream said;
    ``assumed`` says, in sentences, where the two differ and why.
    """

    source_format: str
    target_format: str
    family: str  # "yuv", "rgb" or "grey"
    signalled_range: str
    signalled_matrix: str
    range: str  # "limited" or "full"
    matrix: str  # "bt601", "bt709", "bt2020nc", "smpte240m", "fcc"; "none" for RGB and grey
    assumed: tuple[str, ...]
    sws_matrix: str
    sws_src_range: str  # "MPEG" (limited) or "JPEG" (full)
    expand_grey: bool  # limited-range grey: libswscale keeps grey as is, so numpy expands it

    def reformat_kwargs(self) -> dict[str, Any]:
        return {
            "format": self.target_format,
            "src_colorspace": self.sws_matrix,
            "dst_colorspace": self.sws_matrix,
            "src_color_range": self.sws_src_range,
            "dst_color_range": "JPEG",
            "interpolation": str(FRAME_CONVERSION["interpolation"]),
            "threads": int(FRAME_CONVERSION["threads"]),
        }

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            **FRAME_CONVERSION,
            "source_pixel_format": self.source_format,
            "target_pixel_format": self.target_format,
            "range": {"signalled": self.signalled_range, "used": self.range, "output": "full"},
            "matrix": {"signalled": self.signalled_matrix, "used": self.matrix},
            "assumed": list(self.assumed),
            "reformat": {
                k: v
                for k, v in self.reformat_kwargs().items()
                if k in ("src_colorspace", "dst_colorspace", "src_color_range", "dst_color_range")
            },
        }
        if self.expand_grey:
            out["range_expansion"] = GREY_EXPANSION
        return out


#: Limited-range grey is expanded here, because libswscale treats every grey format as full range.
GREY_EXPANSION = (
    "numpy: out = floor(((v - black) * max * 2 + (white - black)) / (2 * (white - black))), "
    "clipped to [0, max]; black = 16 * 2^(b-8), white = 235 * 2^(b-8), b = 8 or 16 bits"
)


def colour_plan(pixel_format: str, color_range: int, colorspace: int) -> ColourPlan:
    """Decide the conversion for a pixel format and its AVColorRange / AVColorSpace tags.

    Defaults where the stream says nothing are FFmpeg's (libswscale's): YUV is limited range
    (yuvj formats: full) with the ITU-R BT.601 matrix; grey and RGB are full range.
    """
    try:
        fmt = av.VideoFormat(pixel_format)
    except (ValueError, av.error.FFmpegError):
        raise InputError(f"unknown pixel format {pixel_format!r}") from None
    signalled_range = _name(_RANGE_NAMES, color_range)
    signalled_matrix = _name(_MATRIX_NAMES, colorspace)
    assumed: list[str] = []
    family = "rgb" if fmt.is_rgb else "grey" if len(fmt.components) == 1 else "yuv"
    sws_matrix, matrix = _DEFAULT_MATRIX
    expand = False
    if family == "yuv":
        if pixel_format.startswith("yuvj"):
            used_range = "full"
            if signalled_range != "full":
                assumed.append(
                    f"range signalled {signalled_range}, but the {pixel_format} pixel format is "
                    "full range by definition: full range used"
                )
        elif signalled_range in ("limited", "full"):
            used_range = signalled_range
        else:
            used_range = "limited"
            assumed.append(
                "colour range not signalled: limited (16-235) assumed, as FFmpeg does for YUV"
            )
        if signalled_matrix in _SWS_MATRIX:
            sws_matrix, matrix = _SWS_MATRIX[signalled_matrix]
            if signalled_matrix == "bt2020c":
                assumed.append(
                    "BT.2020 constant luminance converted with the non-constant-luminance "
                    "matrix (the converter has no other)"
                )
        elif signalled_matrix in ("unspecified", "reserved"):
            assumed.append("colour matrix not signalled: ITU-R BT.601 assumed, as FFmpeg does")
        else:
            assumed.append(
                f"colour matrix {signalled_matrix} is not supported by the converter: "
                "ITU-R BT.601 used; colours may be wrong"
            )
    elif family == "grey":
        matrix = "none"
        if signalled_range == "limited":
            used_range, expand = "limited", True
        else:
            used_range = "full"
            if signalled_range != "full":
                assumed.append(
                    "colour range not signalled: grey samples taken as full range, as FFmpeg does"
                )
    else:
        matrix, used_range = "none", "full"
        if signalled_range == "limited":
            assumed.append("RGB tagged limited range: samples used as stored (full range)")
    return ColourPlan(
        source_format=pixel_format,
        target_format=_target_for(fmt),
        family=family,
        signalled_range=signalled_range,
        signalled_matrix=signalled_matrix,
        range=used_range,
        matrix=matrix,
        assumed=tuple(assumed),
        sws_matrix=sws_matrix,
        sws_src_range="MPEG" if used_range == "limited" and family == "yuv" else "JPEG",
        expand_grey=expand,
    )


def colour_facts(frame: av.VideoFrame) -> dict[str, Any]:
    plan = colour_plan(frame.format.name, int(frame.color_range), int(frame.colorspace))
    return {
        "range": plan.signalled_range,
        "matrix": plan.signalled_matrix,
        "primaries": _name(_PRIMARIES_NAMES, int(frame.color_primaries)),
        "transfer": _name(_TRANSFER_NAMES, int(frame.color_trc)),
        "used_range": plan.range,
        "used_matrix": plan.matrix,
        "assumed": list(plan.assumed),
    }


def expand_grey(pixels: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Limited-range grey (black 16, white 235, scaled to the bit depth) to full range."""
    top = 65535 if pixels.dtype == np.uint16 else 255
    scale = 1 if top == 255 else 256
    black, white = 16 * scale, 235 * scale
    span = white - black
    v = pixels.astype(np.int64) - black
    out = np.floor_divide(v * top * 2 + span, 2 * span)
    return np.ascontiguousarray(np.clip(out, 0, top).astype(pixels.dtype))
