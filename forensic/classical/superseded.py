"""Earlier versions of classical operations, kept so that recorded runs still replay.

A run records each step's operation name *and version*; `verify --replay` re-runs the step
with that version (`forensic.lanes.lookup`). When an operation's pixels change, its version
goes up and the previous code moves here, registered with ``superseded=True``: never listed,
never offered to a new run, but found by a replay of a run that used it, which therefore still
replays bit-exact. Nothing here is changed once released.

* ``clahe`` 1: scikit-image's CLAHE on float64 BT.601 luma (with a min-max stretch);
  superseded by version 2 (OpenCV's integer CLAHE, 15-20 times faster).
* ``unsharp_mask`` 1: float64 luma, scipy Gaussian; superseded by version 2 (integer luma,
  OpenCV's fixed-point Gaussian, 20-30 times faster).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage import exposure as sk_exposure

from forensic.classical import references as ref
from forensic.ops.framework import Param, operation
from forensic.ops.pixels import Float, Image, map_values, on_luma


@operation(
    name="clahe",
    version="1",
    superseded=True,
    category="exposure",
    swgit_class="basic",
    summary="Contrast-limited adaptive histogram equalisation (of luma for colour).",
    description="""Equalises the histogram in tiles and interpolates between the tiles'
    mappings bilinearly, clipping each tile histogram at clip_limit so that noise in flat
    areas is not amplified without bound. Brings out detail in both shadows and highlights of
    unevenly lit scenes. The luma range is first stretched to full scale (scikit-image's
    implementation, at 14-bit internal precision), so CLAHE includes a global min-max
    stretch; a flat image is returned unchanged. Colour images are processed on BT.601 luma
    only.""",
    references=(ref.ZUIDERVELD_1994, ref.PIZER_1987),
    params=(
        Param(
            "tile_size",
            "int",
            "Side of the contextual tiles.",
            "px",
            8,
            4096,
            auto="1/8 of the image height and width",
        ),
        Param(
            "clip_limit",
            "float",
            "Histogram clip limit (higher = more contrast; 1 = no limit, plain AHE).",
            "",
            0.0,
            1.0,
            exclusive_minimum=True,
        ),
        Param("bins", "int", "Histogram bins per tile.", "", 16, 65536),
    ),
)
def clahe_v1(
    image: Image, *, tile_size: int | None = None, clip_limit: float = 0.01, bins: int = 256
) -> Image:
    """CLAHE, version 1 (superseded; kept for replay).

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    tile_size : int or None
        Tile side in pixels; None uses 1/8 of each image dimension.
    clip_limit : float
        Normalised clip limit in [0, 1].
    bins : int
        Number of histogram bins.

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``.

    Notes
    -----
    The luma is stretched to [0, 1] (min-max), then per tile the histogram is clipped at
    ``clip_limit`` (excess redistributed evenly) and its CDF gives that tile's mapping; each
    pixel's value is the bilinear blend of the four nearest tiles' mappings.

    References
    ----------
    Zuiderveld (1994), doi:10.1016/B978-0-12-336156-1.50061-6; Pizer et al. (1987),
    doi:10.1016/S0734-189X(87)80186-X.
    """

    def equalise(y: Float) -> Float:
        if np.ptp(y) == 0:  # scikit-image would stretch a flat image to white
            return y
        out = sk_exposure.equalize_adapthist(
            np.clip(y, 0.0, 1.0), kernel_size=tile_size, clip_limit=clip_limit, nbins=bins
        )
        return np.asarray(out, np.float64)

    return map_values(image, lambda x: on_luma(x, equalise))


@operation(
    name="unsharp_mask",
    version="1",
    superseded=True,
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
def unsharp_mask_v1(
    image: Image, *, radius: float = 1.0, amount: float = 1.0, threshold: float = 0.0
) -> Image:
    """Unsharp mask, version 1 (superseded; kept for replay).

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
    reflected; applied to luma ``Y`` for colour (``Y' - Y`` added to R, G, B), in float64.

    References
    ----------
    Schreiber (1970), Pattern Recognition 2(2), 117-120.
    """

    def sharpen(y: Float) -> Float:
        detail = y - ndimage.gaussian_filter(y, radius, mode="reflect")
        return np.asarray(y + amount * detail * (np.abs(detail) >= threshold), np.float64)

    return map_values(image, lambda x: on_luma(x, sharpen))
