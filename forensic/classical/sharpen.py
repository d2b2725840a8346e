"""Sharpening: unsharp mask and Laplacian. Both act on luma for colour images, so that edges
gain contrast without coloured fringes."""

from __future__ import annotations

import cv2
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
    elsewhere (``M`` full scale; a table over ``|d|``, computed once in float64), added to
    ``Y`` for grey, to R, G and B for colour, with saturation. Version 1 computed the same in
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
    levels = np.arange(top + 1, dtype=np.float64)
    gain = np.minimum(np.rint(amount * levels), top)
    gain[levels < threshold * top] = 0
    table = gain.astype(image.dtype)
    # Each step writes over a plane it no longer needs: fresh 1080p temporaries cost more
    # than the arithmetic.
    change = cv2.absdiff(y, blurred)  # |d|
    # cv2.LUT takes 8-bit indices only; numpy's indexing does the same for 16-bit.
    change = cv2.LUT(change, table, dst=change) if image.dtype == np.uint8 else table[change]
    brighter = cv2.compare(y, blurred, cv2.CMP_GT)  # 255 where d > 0, else 0 (8-bit)
    if image.dtype == np.uint8:
        rise = cv2.bitwise_and(change, brighter, dst=brighter)
    else:
        rise = cv2.bitwise_and(change, change, mask=brighter)  # zero outside the mask
    fall = cv2.subtract(change, rise, dst=change)  # where d < 0 (d = 0 has no change)
    return join_alpha(add_luma_change(colour, rise, fall), alpha)


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
