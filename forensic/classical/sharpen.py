"""Sharpening: unsharp mask and Laplacian. Both act on luma for colour images, so that edges
gain contrast without coloured fringes."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from forensic.classical import references as ref
from forensic.ops.framework import Param, operation
from forensic.ops.pixels import Float, Image, map_values, on_luma


@operation(
    name="unsharp_mask",
    version="1",
    category="sharpen",
    swgit_class="basic",
    summary="Unsharp masking: add back the difference from a blurred copy.",
    description="""Blurs the image with a Gaussian of the given radius, takes the difference
    between the image and the blurred copy (the fine detail), and adds that detail back
    multiplied by amount, wherever it exceeds threshold (so that flat, noisy areas are left
    alone). Increases edge contrast; it creates no detail that was not there, and strong
    settings produce halos along edges. Colour images are sharpened on BT.601 luma.""",
    references=(ref.SCHREIBER_1970, ref.GONZALEZ_WOODS),
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
    """Unsharp mask.

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
    ``d = x - G_r * x``; ``y = x + amount . d . [|d| >= threshold]``; Gaussian borders
    reflected; applied to luma ``Y`` for colour (``Y' - Y`` added to R, G, B).

    References
    ----------
    Schreiber (1970), Pattern Recognition 2(2), 117-120.
    """

    def sharpen(y: Float) -> Float:
        detail = y - ndimage.gaussian_filter(y, radius, mode="reflect")
        return np.asarray(y + amount * detail * (np.abs(detail) >= threshold), np.float64)

    return map_values(image, lambda x: on_luma(x, sharpen))


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
