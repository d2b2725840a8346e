"""Sharpening: unsharp mask and Laplacian. Both act on luma for colour images, so that edges
gain contrast without coloured fringes."""

from __future__ import annotations

import cv2
import numba as nb
import numpy as np
from scipy import ndimage

from forensic.classical import references as ref
from forensic.ops.framework import Param, operation
from forensic.ops.pixels import (
    Image,
    add_luma_change,
    full_scale,
    integer_luma,
    join_alpha,
    map_values,
    on_luma,
    split_alpha,
)


@operation(
    name="unsharp_mask",
    version="2",
    category="sharpen",
    swgit_class="basic",
    summary="Unsharp masking: add back the difference from a blurred copy.",
    description="""Blurs the image with a Gaussian of the given radius, takes the difference
    between the image and the blurred copy (the fine detail), and adds that detail back
    multiplied by amount, wherever it exceeds threshold (so that flat, noisy areas are left
    alone). Increases edge contrast; it creates no detail that was not there, and strong
    settings produce halos along edges. Colour images are sharpened on BT.601 luma. Integer
    arithmetic throughout (OpenCV's fixed-point Gaussian), so the result is the same on every
    thread count and CPU; version 1 (float64) is kept for the replay of runs that used it.""",
    references=(ref.SCHREIBER_1970, ref.GONZALEZ_WOODS, ref.OPENCV),
    params=(
        Param(
            "radius", "float", "Gaussian standard deviation of the blurred copy.", "px", 0.3, 20.0
        ),
        Param("amount", "float", "Gain applied to the detail.", "factor", 0.0, 10.0),
        Param(
            "threshold",
            "float",
            "Detail smaller than this is not amplified.",
            "fraction of full scale",
            0.0,
            1.0,
        ),
    ),
)
def unsharp_mask(
    image: Image, *, radius: float = 1.0, amount: float = 1.0, threshold: float = 0.0
) -> Image:
    """Unsharp mask on the integer luma.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    radius : float
        Standard deviation of the Gaussian, in pixels.
    amount : float
        Gain on the detail signal.
    threshold : float
        Minimum absolute detail (fraction of full scale) that is amplified.

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``.

    Notes
    -----
    Luma ``Y = (4899 R + 9617 G + 1868 B + 2^13) >> 14`` (BT.601 in fixed point; a grey image
    is its own luma). ``B = G_r * Y``: OpenCV's bit-exact fixed-point Gaussian, truncated as
    OpenCV truncates it (``round(6 r + 1) | 1`` taps for 8-bit, ``round(8 r + 1) | 1`` for
    16-bit), borders reflected (``dcba|abcd``), rounded to the dtype. Detail ``d = Y - B``; the change is
    ``c = sign(d) . min(M, rint(amount . |d|))`` where ``|d| >= threshold . M`` and 0
    elsewhere (``M`` full scale; float64, rounded half to even), added to ``Y`` for grey, to
    R, G and B for colour, with saturation (one compiled pass over the pixels). Version 1 computed the same in
    float64 on [0, 1] with one rounding at the end; this one rounds ``Y``, ``B`` and ``c``,
    so values differ from it by at most ``1.5 amount + 1`` levels (tested).

    References
    ----------
    Schreiber (1970), Pattern Recognition 2(2), 117-120.
    """
    colour, alpha = split_alpha(image)
    y = integer_luma(colour)
    top = full_scale(image.dtype)
    # Kernel size left to OpenCV (3 sigma for 8-bit, 4 for 16-bit), as its own call does.
    blurred = cv2.GaussianBlur(y, (0, 0), radius, borderType=cv2.BORDER_REFLECT)
    # The table's test `levels < threshold . top`, as the first level that is amplified.
    lowest = float(np.count_nonzero(np.arange(top + 1, dtype=np.float64) < threshold * top))
    args = (y.reshape(-1), blurred.reshape(-1), float(amount), lowest, float(top))
    if colour.ndim == 2:
        out = np.empty(y.shape, y.dtype)
        _sharpen_grey(*args, out.reshape(-1))
        return join_alpha(out, alpha)
    rise, fall = np.empty(y.shape, y.dtype), np.empty(y.shape, y.dtype)
    _luma_changes(*args, rise.reshape(-1), fall.reshape(-1))
    return join_alpha(add_luma_change(colour, rise, fall), alpha)


# One pass each instead of eight OpenCV calls (absdiff, cv2.LUT over |d|, compare, masks, a
# saturating add and subtract): at 1080p the table alone cost half the blur, and each fresh
# temporary its page faults. numba without fastmath: the float64 product ``amount . |d|`` and
# its rounding (half to even) are those of a table over ``|d|`` built with numpy, so the
# bits are those of the calls they replace (tested against a copy of them). nogil: a video
# run's other threads (decoding, the other frames, encoding) go on while a frame's pass runs.


@nb.njit(cache=True, nogil=True)
def _sharpen_grey(y, blurred, amount, lowest, top, out):  # type: ignore[no-untyped-def]
    """``out = clip(y + sign(d) . min(top, rint(amount . |d|)))``, ``d = y - blurred``, no
    change where ``|d| < lowest``; flat arrays."""
    for n in range(y.size):
        a = np.float64(y[n])
        d = a - np.float64(blurred[n])
        size = abs(d)
        change = min(np.rint(amount * size), top) if size >= lowest else 0.0
        change = change if d > 0 else -change
        out[n] = min(max(a + change, 0.0), top)


@nb.njit(cache=True, nogil=True)
def _luma_changes(y, blurred, amount, lowest, top, rise, fall):  # type: ignore[no-untyped-def]
    """The change of `_sharpen_grey` as two planes, ``rise`` where ``d > 0`` and ``fall``
    where ``d < 0`` (for `add_luma_change`: OpenCV adds them to R, G and B faster than a
    compiled loop over interleaved channels)."""
    for n in range(y.size):
        d = np.float64(y[n]) - np.float64(blurred[n])
        size = abs(d)
        change = min(np.rint(amount * size), top) if size >= lowest else 0.0
        rise[n] = change if d > 0 else 0.0
        fall[n] = change if d < 0 else 0.0


@operation(
    name="sharpen_laplacian",
    version="1",
    category="sharpen",
    swgit_class="basic",
    summary="Subtract a multiple of the discrete Laplacian.",
    description="""Subtracts amount times the 4-neighbour discrete Laplacian (the difference
    the sum of a pixel's four neighbours minus four times the pixel) from each value, which
    steepens edges. Very local and noise-sensitive; unsharp masking is usually preferable on
    noisy footage. Colour images are sharpened on BT.601 luma.""",
    references=(ref.GONZALEZ_WOODS, ref.MARR_HILDRETH_1980),
    params=(Param("amount", "float", "Weight of the Laplacian.", "factor", 0.0, 5.0),),
)
def sharpen_laplacian(image: Image, *, amount: float = 0.5) -> Image:
    """Laplacian sharpening.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    amount : float
        Weight ``c`` of the Laplacian.

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``.

    Notes
    -----
    ``y = x - c . lap(x)``, ``lap(x)(i, j) = x(i+1, j) + x(i-1, j) + x(i, j+1) + x(i, j-1) -
    4 x(i, j)``, borders reflected; luma only for colour.

    References
    ----------
    Gonzalez & Woods (2018), section 3.6.
    """
    return map_values(
        image, lambda x: on_luma(x, lambda y: y - amount * ndimage.laplace(y, mode="reflect"))
    )
