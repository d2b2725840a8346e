"""Pixel plumbing shared by the operations of both lanes: scaling, rounding, alpha and luma.

Operations compute in float64 on a [0, 1] scale (full scale of the input dtype) and return the
input dtype. Rounding is numpy's half-to-even after clipping, the same everywhere, so that an
operation's output depends only on its maths, not on which helper it used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

Image = NDArray[Any]
Float = NDArray[np.float64]

#: ITU-R BT.601 luma weights (R, G, B). BT.601 because CIF/4CIF DVR footage is BT.601.
LUMA_601 = np.array([0.299, 0.587, 0.114])
#: ITU-R BT.709 luma weights (R, G, B), for HD sources.
LUMA_709 = np.array([0.2126, 0.7152, 0.0722])


def full_scale(dtype: np.dtype[Any]) -> int:
    return int(np.iinfo(dtype).max)


def to_float(image: Image) -> Float:
    """A new float64 array on [0, 1]; never a view of ``image``."""
    values = image.astype(np.float64)
    values /= full_scale(image.dtype)  # in place: a 1080p RGB frame is 47 MiB in float64
    return values


#: float64 values per band in `from_float` (1 MiB).
_BAND_VALUES = 1 << 17


def from_float(values: NDArray[Any], dtype: np.dtype[Any]) -> Image:
    """Clip to [0, 1], scale to ``dtype``'s full scale and round half-to-even."""
    top = full_scale(dtype)
    floats = np.asarray(values, np.float64)
    # min and max propagate NaN and show an infinity: no boolean temporary the frame's size.
    if floats.size and not (np.isfinite(floats.min()) and np.isfinite(floats.max())):
        # Casting NaN to an integer gives 0 silently; an operation must never do that.
        raise ValueError("internal error: an operation produced non-finite values")
    if floats.ndim == 0 or floats.size == 0:
        return np.rint(np.clip(floats, 0.0, 1.0) * top).astype(dtype)
    # Clipped, scaled and rounded a band of rows at a time in one small buffer: the same
    # values as whole-array temporaries, without a second float64 copy of the frame (47 MiB
    # for 1080p RGB, per worker thread).
    out = np.empty(floats.shape, dtype)
    rows = max(1, _BAND_VALUES // max(1, floats[0].size))
    band = np.empty((min(rows, len(floats)), *floats.shape[1:]), np.float64)
    for start in range(0, len(floats), rows):
        part = band[: len(floats[start : start + rows])]
        np.clip(floats[start : start + rows], 0.0, 1.0, out=part)
        part *= top
        np.rint(part, out=part)
        out[start : start + rows] = part
    return out


def split_alpha(image: Image) -> tuple[Image, Image | None]:
    """(colour or grey part, alpha plane or None). Alpha is never enhanced, only carried."""
    if image.ndim == 3 and image.shape[2] == 4:
        return image[..., :3], image[..., 3]
    return image, None


def join_alpha(colour: Image, alpha: Image | None) -> Image:
    if alpha is None:
        return colour
    return np.concatenate([colour, alpha[..., None].astype(colour.dtype)], axis=2)


def map_values(image: Image, fn: Callable[[Float], NDArray[Any]]) -> Image:
    """Apply ``fn`` to the [0, 1] float colour part (H x W or H x W x 3); keep alpha; round back."""
    colour, alpha = split_alpha(image)
    out = from_float(fn(to_float(colour)), image.dtype)
    return join_alpha(out, alpha)


def map_planes(image: Image, fn: Callable[[Float], NDArray[Any]]) -> Image:
    """``map_values(image, lambda x: per_plane(x, fn))`` one plane at a time: the same values
    (each plane converted, filtered and rounded as there), with the float64 copies of one
    plane in memory instead of the whole frame's (a 1080p RGB frame is 47 MiB in float64)."""
    colour, alpha = split_alpha(image)
    if colour.ndim == 2:
        return join_alpha(from_float(fn(to_float(colour)), image.dtype), alpha)
    out = np.empty(colour.shape, image.dtype)
    for c in range(colour.shape[2]):
        out[..., c] = from_float(np.asarray(fn(to_float(colour[..., c])), np.float64), image.dtype)
    return join_alpha(out, alpha)


def per_plane(values: Float, fn: Callable[[Float], NDArray[Any]]) -> Float:
    """Apply a 2-D function to each plane of a grey or colour float image."""
    if values.ndim == 2:
        return np.asarray(fn(values), np.float64)
    # Each plane written into one output as it is made (not stacked from three copies).
    first = np.asarray(fn(values[..., 0]), np.float64)
    out = np.empty((*first.shape, values.shape[2]), np.float64)
    out[..., 0] = first
    del first
    for c in range(1, values.shape[2]):
        out[..., c] = fn(values[..., c])
    return out


def luma(rgb: Float, weights: NDArray[np.float64] = LUMA_601) -> Float:
    return np.asarray(rgb @ weights, np.float64)


def on_luma(values: Float, fn: Callable[[Float], NDArray[Any]]) -> Float:
    """Apply a tone function to luma only, keeping the colour-difference signals.

    For grey input this is ``fn(values)``. For RGB the BT.601 luma Y is mapped to Y' and
    ``Y' - Y`` is added to every channel, so Cb and Cr (B - Y, R - Y) are unchanged: contrast
    changes without a colour cast, which per-channel equalisation would introduce.
    """
    if values.ndim == 2:
        return np.asarray(fn(values), np.float64)
    y = luma(values)
    return values + (np.asarray(fn(y), np.float64) - y)[..., None]


def check_box(op: str, image: Image, x: int, y: int, width: int, height: int) -> None:
    """Refuse a rectangle that does not lie inside ``image``, naming the parameter at fault."""
    from forensic.errors import ParameterError

    h, w = image.shape[:2]
    if x >= w:
        raise ParameterError(
            op, "x", f"is {x}, outside the image (width {w}); allowed: 0 to {w - 1}"
        )
    if y >= h:
        raise ParameterError(
            op, "y", f"is {y}, outside the image (height {h}); allowed: 0 to {h - 1}"
        )
    if x + width > w:
        raise ParameterError(
            op, "width", f"is {width}; x + width = {x + width} exceeds the image width {w}"
        )
    if y + height > h:
        raise ParameterError(
            op, "height", f"is {height}; y + height = {y + height} exceeds the image height {h}"
        )


# -- integer luma path -------------------------------------------------------------------------
# The OpenCV calls below were measured to give the same bits with 1 and 2 threads, with
# cv2.setUseOptimized on and off, with IPP on and off and with the AVX2/SSE4 dispatch disabled
# (tests/test_integer_ops.py checks the thread counts and the switches on every run). They
# are integer arithmetic throughout; OpenCV calls with float internals (addWeighted, warps,
# cubic resize, bilateral) are not used here, as they were not.

#: OpenCV's fixed-point BT.601 luma weights (R, G, B) over 2**14: ``cv2.COLOR_RGB2GRAY``.
LUMA_601_FIXED = (4899, 9617, 1868)


def integer_luma(colour: Image) -> Image:
    """BT.601 luma of an RGB (H, W, 3) image in its own dtype, or a grey image itself:
    ``Y = (4899 R + 9617 G + 1868 B + 2**13) >> 14`` (OpenCV's fixed-point RGB2GRAY)."""
    import cv2

    if colour.ndim == 2:
        return colour
    return cv2.cvtColor(np.ascontiguousarray(colour), cv2.COLOR_RGB2GRAY)


def add_luma_change(colour: Image, rise: Image, fall: Image) -> Image:
    """``clip(colour + rise - fall)`` with ``rise`` and ``fall`` (H, W) planes of ``colour``'s
    dtype of which at most one is non-zero at each pixel: the luma change ``rise - fall``
    added to every channel, which keeps the colour differences (B - Y, R - Y) wherever the
    result is not clipped. Saturating integer arithmetic, so exact. ``rise`` and ``fall`` may
    be overwritten (the temporaries are reused: at 1080p each new one costs more than the
    arithmetic)."""
    import cv2

    colour = np.ascontiguousarray(colour)
    if colour.ndim == 2:
        out = cv2.add(colour, rise)
        return cv2.subtract(out, fall, dst=out)
    spread = cv2.cvtColor(rise, cv2.COLOR_GRAY2RGB)
    out = cv2.add(colour, spread)
    cv2.cvtColor(fall, cv2.COLOR_GRAY2RGB, dst=spread)
    return cv2.subtract(out, spread, dst=out)


def apply_luma(image: Image, old: Image, new: Image) -> Image:
    """``image`` with its luma ``old`` (`integer_luma`) replaced by ``new``: for grey the new
    plane; for colour the change ``new - old`` added to R, G and B, clipped. Alpha is kept.
    ``old`` and ``new`` may be overwritten."""
    import cv2

    colour, alpha = split_alpha(image)
    if colour.ndim == 2:
        return join_alpha(new, alpha)
    fall = cv2.subtract(old, new)
    rise = cv2.subtract(new, old, dst=new)
    return join_alpha(add_luma_change(colour, rise, fall), alpha)
