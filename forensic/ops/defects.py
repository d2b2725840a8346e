"""Defect masks of damaged photographs and film: detection, examiner's edits, encoding.

Below both lanes (like `forensic.ops.measure`): the classical lane's analysis step
``detect_defects`` records the masks, and the generative lane's ``generative.fill_defects``
fills exactly the mask that the same detection, with the same parameters, gives on its input
(or the mask it is handed), so that what is filled is what was shown. Nothing here changes a
pixel.

Masks are boolean H x W arrays. An operation's details carry them as text (`encode_mask`): the
mask's bits packed row by row (numpy ``packbits``), compressed (zlib) and base64-encoded, after
its size; `mask_sha256` is the canonical pixel hash of the mask as an 8-bit image (0 or 255),
the same hash a stored mask image has. A run stores each mask as a file instead (a 1-bit PNG,
`mask_png`, or a frame of an FFV1 mask video; `forensic.pipeline.masks`) and records its name
and hashes; entries written before that keep the text, which still reads.

Detectors (each returns a mask; levels are fractions of full scale, so that they mean the
same on 8- and 16-bit scans, and contrasts are also compared with the local texture, so that
a textured area is not taken for damage; the thresholds are in each function's docstring):

* ``dust``: small compact spots, darker or brighter than their surroundings (the residual from
  a median of the neighbourhood), of at most ``max_spot_area`` pixels.
* ``scratches``: thin straight lines among the same kind of residual (Hough segments).
* ``tears``: long bands of bare paper (bright, colourless, flat, much brighter than the picture
  around), as a tear or a crease that breaks the emulsion exposes.
* ``stains``: large discoloured areas (water or foxing stains): a local shift of warmth
  (log R - log B; in grey, of brightness) against the picture's large-scale surroundings.
  Reliable on monochrome and toned prints; on colour photographs warm objects pass for stains.
"""

from __future__ import annotations

import base64
import re
import zlib
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from forensic.errors import ParameterError
from forensic.hashing import image_hash
from forensic.ops.framework import Param
from forensic.ops.pixels import Float, Image, luma, split_alpha, to_float

Mask = NDArray[np.bool_]
KINDS = ("dust", "scratches", "tears", "stains")
REGION_GRAMMAR = (
    "regions separated by ';': rect(x, y, width, height) or polygon(x1, y1, x2, y2, x3, y3, "
    "...), in pixels"
)
KINDS_GRAMMAR = "a comma-separated list of: " + ", ".join(KINDS)


# -- encoding ---------------------------------------------------------------------------------


def encode_mask(mask: Mask) -> str:
    """``"HxW:" + base64(zlib(packbits(mask)))``: compact, exact text for a record."""
    h, w = mask.shape
    packed = np.packbits(mask.astype(np.uint8), axis=None).tobytes()
    return f"{h}x{w}:" + base64.b64encode(zlib.compress(packed, 9)).decode("ascii")


def decode_mask(op: str, name: str, text: str, shape: tuple[int, ...] | None = None) -> Mask:
    """The mask `encode_mask` wrote; `ParameterError` naming ``name`` if it is not one (or
    not of ``shape``)."""
    match = re.fullmatch(r"(\d+)x(\d+):([A-Za-z0-9+/=]*)", text.strip())
    if match is None:
        raise ParameterError(op, name, "is not an encoded mask (HxW:base64)")
    h, w = int(match[1]), int(match[2])
    try:
        packed = zlib.decompress(base64.b64decode(match[3]))
    except (ValueError, zlib.error):
        raise ParameterError(op, name, "is not an encoded mask (bad base64 or zlib data)") from None
    bits = np.unpackbits(np.frombuffer(packed, np.uint8))
    if bits.size < h * w or bits.size > h * w + 7:
        raise ParameterError(op, name, f"holds {bits.size} bits, not {h} x {w}")
    if shape is not None and (h, w) != tuple(shape[:2]):
        raise ParameterError(op, name, f"is a {w} x {h} mask; the image is {shape[1]} x {shape[0]}")
    return np.asarray(bits[: h * w].reshape(h, w).astype(bool))


def mask_sha256(mask: Mask) -> str:
    """Canonical pixel hash of the mask as an 8-bit grey image (0 or 255)."""
    return image_hash(mask_image(mask))


def mask_image(mask: Mask) -> NDArray[np.uint8]:
    return np.where(mask, 255, 0).astype(np.uint8)


def mask_record(mask: Mask) -> dict[str, Any]:
    """What a step records of a mask: its pixel count, share, SHA-256 and the mask itself."""
    return {
        "pixels": int(mask.sum()),
        "fraction": round(float(mask.mean()), 6) if mask.size else 0.0,
        "sha256": mask_sha256(mask),
        "encoded": encode_mask(mask),
    }


def mask_png(mask: Mask) -> bytes:
    """The mask as a 1-bit grey PNG (0 or 255 when decoded): how a run stores it in the case's
    ``derived/`` area. Checked to decode back to the same mask."""
    ok, buffer = cv2.imencode(".png", mask_image(mask), [cv2.IMWRITE_PNG_BILEVEL, 1])
    data = buffer.tobytes()
    if not ok or not np.array_equal(read_mask_png(data, where="mask PNG"), mask):
        raise RuntimeError("internal error: the 1-bit mask PNG did not round-trip")
    return data


def read_mask_png(data: bytes, *, where: str) -> Mask:
    """The mask a `mask_png` file holds; `ValueError` naming ``where`` when it is not one."""
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded is None or decoded.ndim != 2 or decoded.dtype != np.uint8:
        raise ValueError(f"{where}: not a 1-bit grey PNG mask")
    if not np.isin(decoded, (0, 255)).all():
        raise ValueError(f"{where}: a mask PNG holds only 0 and 255")
    return np.asarray(decoded == 255)


def is_mask_record(value: Any) -> bool:
    """A `mask_record` (inline ``encoded`` text) or one whose mask is stored as a file
    (``png`` of a still run, ``stored`` frame of a video run's mask video)."""
    return (
        isinstance(value, dict)
        and {"pixels", "fraction", "sha256"} <= set(value)
        and ("encoded" in value or "png" in value or "stored" in value)
    )


# -- the examiner's regions -------------------------------------------------------------------

#: Beyond any image side this tool reads (the pixel ceiling is 2**30).
MAX_POLYGON_COORDINATE = 1 << 30

_REGION = re.compile(r"\s*(rect|polygon)\s*\(([^()]*)\)\s*")


def parse_regions(op: str, name: str, text: str) -> list[tuple[str, list[float]]]:
    """``rect(x, y, w, h); polygon(x1, y1, ...)`` -> [(kind, numbers)]; `ParameterError` naming
    ``name`` and the bad region otherwise."""
    regions: list[tuple[str, list[float]]] = []
    for position, part in enumerate(p for p in text.split(";") if p.strip()):
        match = _REGION.fullmatch(part)
        if match is None:
            raise ParameterError(
                op, name, f"region {position + 1} {part.strip()!r} is not rect(...) or polygon(...)",
                hint=REGION_GRAMMAR,
            )  # fmt: skip
        try:
            numbers = [float(v) for v in match[2].split(",")]
        except ValueError:
            raise ParameterError(
                op, name, f"region {position + 1} {part.strip()!r} has a value that is not a number"
            ) from None
        if not all(np.isfinite(numbers)):
            raise ParameterError(op, name, f"region {position + 1} has a non-finite value")
        kind = match[1]
        if kind == "rect" and (len(numbers) != 4 or numbers[2] <= 0 or numbers[3] <= 0):
            raise ParameterError(
                op, name, f"region {position + 1}: rect takes x, y, width > 0, height > 0"
            )
        if kind == "polygon" and (len(numbers) < 6 or len(numbers) % 2):
            raise ParameterError(
                op, name, f"region {position + 1}: polygon takes at least 3 x, y points"
            )
        if kind == "polygon" and max(abs(v) for v in numbers) > MAX_POLYGON_COORDINATE:
            # OpenCV draws polygons on 32-bit integer points: a larger value would wrap round
            # and silently mark other pixels.
            raise ParameterError(
                op,
                name,
                f"region {position + 1}: polygon coordinates must lie within "
                f"±{MAX_POLYGON_COORDINATE:,} px",
            )
        regions.append((kind, numbers))
    if not regions:
        raise ParameterError(op, name, "holds no region", hint=REGION_GRAMMAR)
    return regions


def regions_mask(shape: tuple[int, ...], regions: list[tuple[str, list[float]]]) -> Mask:
    """The pixels the regions cover (a polygon: the pixels whose centres it contains, edges
    included, as OpenCV's fillPoly draws it)."""
    canvas = np.zeros(shape[:2], np.uint8)
    for kind, numbers in regions:
        if kind == "rect":
            x, y, w, h = (round(v) for v in numbers)
            canvas[max(0, y) : max(0, y + h), max(0, x) : max(0, x + w)] = 1
        else:
            points = np.rint(np.asarray(numbers).reshape(-1, 2)).astype(np.int32)
            cv2.fillPoly(canvas, [points], 1)
    return canvas.astype(bool)


def validate_regions(op: str, value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ParameterError(op, name, f"is {value!r}; allowed: {REGION_GRAMMAR}")
    parse_regions(op, name, value)
    return value


def parse_kinds(op: str, text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise ParameterError(op, "kinds", f"is {text!r}; allowed: {KINDS_GRAMMAR}")
    return tuple(k for k in KINDS if k in kinds)  # canonical order, no repeats


def validate_kinds(op: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ParameterError(op, "kinds", f"is {value!r}; allowed: {KINDS_GRAMMAR}")
    return ",".join(parse_kinds(op, value))


# -- detection --------------------------------------------------------------------------------


def _planes(image: Image) -> tuple[Float, Float | None]:
    """(luma on [0, 1], RGB on [0, 1] or None for grey)."""
    values = to_float(split_alpha(image)[0])
    if values.ndim == 2:
        return values, None
    return luma(values), values


def _components(mask: Mask) -> tuple[NDArray[np.int32], int]:
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    return np.asarray(labels, np.int32), int(count)


def _shape_stats(labels: NDArray[np.int32], count: int) -> NDArray[np.float64]:
    """Per component (1..count): area, length and thickness (4 standard deviations along the
    major and minor axes, + 1 px): a straight line is long and 1 to 3 px thick whatever its
    direction; a curved edge of the same area is thick."""
    stats = np.zeros((count + 1, 3))
    if count == 0:
        return stats
    for index, where in enumerate(ndimage.find_objects(labels), start=1):
        if where is None:
            continue
        ys, xs = np.nonzero(labels[where] == index)
        area = float(ys.size)
        if ys.size > 2:
            low, high = np.linalg.eigvalsh(np.cov(np.stack([ys, xs]).astype(np.float64)))
            stats[index] = (
                area,
                4.0 * np.sqrt(max(high, 0.0)) + 1,
                4.0 * np.sqrt(max(low, 0.0)) + 1,
            )
        else:
            stats[index] = (area, float(ys.size), 1.0)
    return stats


def _spot_contrast(grey: Float, size: int) -> tuple[Float, Float]:
    """(residual from the median of a ``size`` window, local activity): the activity is the
    mean absolute residual over a 21 x 21 window, so that a speck on a textured area must
    stand out from that texture, not just from the image's flattest parts."""
    residual = np.asarray(grey - ndimage.median_filter(grey, size=size, mode="reflect"))
    activity = ndimage.uniform_filter(np.abs(residual), 21, mode="reflect")
    return residual, activity


def detect_dust(
    grey: Float, *, sensitivity: float, max_spot_area: int
) -> tuple[Mask, dict[str, Any]]:
    """Small compact spots: ``|luma - median 9 x 9|`` above ``0.1 / sensitivity`` and above
    ``6 / sensitivity`` times the local activity, components of 2 to ``max_spot_area`` px no
    longer than 4 times their thickness, grown by 1 px."""
    residual, activity = _spot_contrast(grey, 9)
    contrast = 0.1 / sensitivity
    candidate = (np.abs(residual) > contrast) & (np.abs(residual) > 6.0 / sensitivity * activity)
    labels, count = _components(candidate)
    stats = _shape_stats(labels, count)
    keep = (stats[:, 0] >= 2) & (stats[:, 0] <= max_spot_area) & (stats[:, 1] <= 4 * stats[:, 2])
    keep[0] = False
    mask = ndimage.binary_dilation(keep[labels], iterations=1)
    return mask, {"min_contrast": round(contrast, 6), "activity_factor": round(6 / sensitivity, 6)}


def detect_scratches(
    grey: Float, *, sensitivity: float, min_length: int
) -> tuple[Mask, dict[str, Any]]:
    """Thin straight lines: pixels whose ``|luma - median 7 x 7|`` exceeds ``0.06 /
    sensitivity`` and ``3.0 / sensitivity`` times the local activity; straight segments at
    least ``min_length`` px long among them (probabilistic Hough transform, gaps up to 6 px
    bridged); the mask is those candidate pixels within 1 px of a segment, grown by 1 px."""
    residual, activity = _spot_contrast(grey, 7)
    contrast = 0.1 / sensitivity
    candidate = (np.abs(residual) > contrast) & (np.abs(residual) > 3.0 / sensitivity * activity)
    # Thick blobs are texture or spots, not lines: keep what an opening with a 4 x 4 square
    # removes (lines up to 3 px thick).
    thin = candidate & ~ndimage.binary_opening(candidate, structure=np.ones((4, 4)))
    segments = cv2.HoughLinesP(
        thin.astype(np.uint8), rho=1, theta=np.pi / 360, threshold=max(10, min_length),
        minLineLength=min_length, maxLineGap=6,
    )  # fmt: skip
    drawn = np.zeros(grey.shape, np.uint8)
    for x0, y0, x1, y1 in [] if segments is None else np.reshape(segments, (-1, 4)):
        cv2.line(drawn, (int(x0), int(y0)), (int(x1), int(y1)), 1, 3)
    mask = ndimage.binary_dilation(candidate & drawn.astype(bool), iterations=1)
    return mask, {
        "min_contrast": round(contrast, 6),
        "activity_factor": round(3.0 / sensitivity, 6),
        "segments": 0 if segments is None else len(segments),
    }


def _coarse_median(values: Float, window: int) -> Float:
    """Median over a ``window`` px square, computed at reduced resolution (a 15 px window or
    less there, at most 1/4 scale) and enlarged bilinearly."""
    h, w = values.shape
    factor = max(4, window // 15)
    small = cv2.resize(values.astype(np.float32), (max(1, w // factor), max(1, h // factor)),
                       interpolation=cv2.INTER_AREA)  # fmt: skip
    med = ndimage.median_filter(small, size=max(3, (window // factor) | 1), mode="reflect")
    return np.asarray(cv2.resize(med, (w, h), interpolation=cv2.INTER_LINEAR), np.float64)


def detect_tears(
    grey: Float, rgb: Float | None, *, sensitivity: float, min_length: int
) -> tuple[Mask, dict[str, Any]]:
    """Bands of bare paper: near white (luma > 0.85), colourless (channel spread < 0.1), flat
    (5 x 5 standard deviation < 0.02 + 0.04 sensitivity) and brighter than the picture around
    (median over 41 px) by 0.12 / sensitivity; components at least ``min_length`` px long and
    at most 16 px thick, grown by 2 px."""
    local_mean = ndimage.uniform_filter(grey, 5)
    local_sd = np.sqrt(np.maximum(ndimage.uniform_filter(grey * grey, 5) - local_mean**2, 0.0))
    surround = _coarse_median(grey, 41)
    flat = local_sd < 0.04 * sensitivity + 0.02
    bright = (grey > 0.85) & (grey - surround > 0.12 / sensitivity)
    colourless = np.ones_like(flat)
    if rgb is not None:
        colourless = (rgb.max(axis=2) - rgb.min(axis=2)) < 0.1
    candidate = ndimage.binary_closing(bright & colourless & flat, iterations=2)
    labels, count = _components(candidate)
    stats = _shape_stats(labels, count)
    # A torn band wanders, so its thickness across the whole band is large; its mean width
    # (area / length) is what stays small.
    keep = (stats[:, 1] >= min_length) & (stats[:, 0] / np.maximum(stats[:, 1], 1) <= 16.0)
    keep[0] = False
    mask = ndimage.binary_dilation(keep[labels], iterations=2)
    return mask, {"surround_window_px": 41}


def detect_stains(
    grey: Float, rgb: Float | None, *, sensitivity: float, min_stain_area: int
) -> tuple[Mask, dict[str, Any]]:
    """Large smooth discoloured areas: the warmth R - B (or, in grey, the brightness),
    smoothed (sigma 2 px), exceeds its median over half the picture's smaller side by more
    than ``0.06 / sensitivity``, in components of at least ``min_stain_area`` px."""
    window = max(15, min(grey.shape) // 2)
    if rgb is not None:
        # A water or foxing stain tints yellow-brown: more red than blue, relative to the
        # picture around it.
        signal = ndimage.gaussian_filter(
            np.log(np.maximum(rgb[..., 0], 1 / 255)) - np.log(np.maximum(rgb[..., 2], 1 / 255)), 2.0
        )
        residual = signal - _coarse_median(signal, window)
    else:
        signal = ndimage.gaussian_filter(grey, 2.0)
        residual = np.abs(signal - _coarse_median(signal, window))
    contrast = (0.2 if rgb is not None else 0.06) / sensitivity
    candidate = ndimage.binary_opening(residual > contrast, iterations=2)
    labels, count = _components(candidate)
    stats = _shape_stats(labels, count)
    keep = stats[:, 0] >= min_stain_area
    keep[0] = False
    return keep[labels], {"min_contrast": round(contrast, 6), "surround_window_px": window}


def detect(
    image: Image,
    kinds: tuple[str, ...],
    *,
    sensitivity: float = 1.0,
    max_spot_area: int = 150,
    min_length: int = 40,
    min_stain_area: int = 400,
) -> tuple[dict[str, Mask], dict[str, Any]]:
    """Masks of the requested ``kinds`` (and what each detector measured)."""
    grey, rgb = _planes(image)
    masks: dict[str, Mask] = {}
    measured: dict[str, Any] = {}
    for kind in kinds:
        if kind == "dust":
            masks[kind], measured[kind] = detect_dust(
                grey, sensitivity=sensitivity, max_spot_area=max_spot_area
            )
        elif kind == "scratches":
            masks[kind], measured[kind] = detect_scratches(
                grey, sensitivity=sensitivity, min_length=min_length
            )
        elif kind == "tears":
            masks[kind], measured[kind] = detect_tears(
                grey, rgb, sensitivity=sensitivity, min_length=min_length
            )
        else:
            masks[kind], measured[kind] = detect_stains(
                grey, rgb, sensitivity=sensitivity, min_stain_area=min_stain_area
            )
    return masks, measured


def combined_mask(
    op: str,
    shape: tuple[int, ...],
    masks: dict[str, Mask],
    add: str | None,
    remove: str | None,
) -> Mask:
    """The union of ``masks``, plus the ``add`` regions, minus the ``remove`` regions (the
    examiner's edits, applied in that order)."""
    out = np.zeros(shape[:2], bool)
    for mask in masks.values():
        out |= mask
    if add is not None:
        out |= regions_mask(shape, parse_regions(op, "add", add))
    if remove is not None:
        out &= ~regions_mask(shape, parse_regions(op, "remove", remove))
    return out


# -- the parameters and the record of a detection ---------------------------------------------


def _region_validator(name: str) -> Any:
    return lambda op, value: validate_regions(op, value, name)


#: The detection parameters, shared with ``generative.fill_defects`` (which must find the same
#: mask on the same image).
DETECTION_PARAMS = (
    Param(
        "kinds",
        "str",
        "Defect kinds to look for.",
        text_format=KINDS_GRAMMAR,
        validator=validate_kinds,
    ),
    Param(
        "sensitivity",
        "float",
        "Higher finds fainter defects (and more false ones); 1 is the default, chosen on astronaut and coffee.",
        "",
        0.25,
        4.0,
    ),
    Param("max_spot_area", "int", "Dust: largest spot.", "px", 2, 10000),
    Param("min_length", "int", "Scratches and tears: shortest line.", "px", 10, 10000),
    Param("min_stain_area", "int", "Stains: smallest stain.", "px", 16, 10_000_000),
    Param(
        "add",
        "str",
        "Regions the examiner adds to the mask.",
        auto="none",
        text_format=REGION_GRAMMAR,
        validator=_region_validator("add"),
    ),
    Param(
        "remove",
        "str",
        "Regions the examiner removes from the mask (after adding).",
        auto="none",
        text_format=REGION_GRAMMAR,
        validator=_region_validator("remove"),
    ),
)


def analyse(image: Image, p: dict[str, Any], op: str) -> tuple[Mask, dict[str, Any]]:
    """The combined mask and the record of every mask, for parameters ``p``."""
    kinds = parse_kinds(op, p["kinds"])
    masks, measured = detect(
        image,
        kinds,
        sensitivity=p["sensitivity"],
        max_spot_area=p["max_spot_area"],
        min_length=p["min_length"],
        min_stain_area=p["min_stain_area"],
    )
    combined = combined_mask(op, image.shape, masks, p["add"], p["remove"])
    record = {
        "masks": {kind: mask_record(mask) for kind, mask in masks.items()},
        "measured": measured,
        "mask": mask_record(combined),
        "edits": {"add": p["add"], "remove": p["remove"]},
    }
    return combined, record
