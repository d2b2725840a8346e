"""Exposure and colour: tone curves, histogram methods, white balance, channels.

All of these are point or local *value* operations: no pixel moves. Levels are given as
fractions of full scale (0 = black, 1 = white) so that one recipe means the same on 8- and
16-bit evidence.
"""

from __future__ import annotations

import cv2
import numpy as np

from forensic.classical import references as ref
from forensic.errors import ParameterError
from forensic.ops.framework import Param, operation
from forensic.ops.pixels import (
    LUMA_601,
    LUMA_709,
    Float,
    Image,
    apply_luma,
    from_float,
    full_scale,
    integer_luma,
    join_alpha,
    map_values,
    on_luma,
    split_alpha,
    to_float,
)

_FRACTION = "fraction of full scale"


@operation(
    name="levels",
    version="1",
    category="exposure",
    swgit_class="basic",
    summary="Black point, white point and gamma (a levels adjustment).",
    description="""Maps the input range [black, white] linearly onto [0, 1], clipping values
    outside it, raises the result to the power 1/gamma (gamma above 1 lightens mid-tones,
    below 1 darkens them), then maps [0, 1] onto the output range [out_black, out_white].
    Applied to each colour channel identically; an alpha channel is carried unchanged.""",
    references=(ref.GONZALEZ_WOODS, ref.POYNTON),
    params=(
        Param("black", "float", "Input value that becomes the output black.", _FRACTION, 0.0, 1.0),
        Param("white", "float", "Input value that becomes the output white.", _FRACTION, 0.0, 1.0),
        Param("gamma", "float", "Mid-tone exponent (1/gamma is applied).", "", 0.1, 10.0),
        Param("out_black", "float", "Output value for input black.", _FRACTION, 0.0, 1.0),
        Param("out_white", "float", "Output value for input white.", _FRACTION, 0.0, 1.0),
    ),
)
def levels(
    image: Image,
    *,
    black: float = 0.0,
    white: float = 1.0,
    gamma: float = 1.0,
    out_black: float = 0.0,
    out_white: float = 1.0,
) -> Image:
    """Levels adjustment: black and white points, then gamma, then output range.

    Parameters
    ----------
    image : ndarray
        Grey (H, W) or colour (H, W, 3|4) image, uint8 or uint16.
    black, white : float
        Input black and white points as fractions of full scale; ``black < white``.
    gamma : float
        Mid-tone exponent; the normalised value ``t`` becomes ``t ** (1 / gamma)``.
    out_black, out_white : float
        Output range as fractions of full scale.

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``.

    Notes
    -----
    ``y = out_black + (out_white - out_black) * clip((x - black) / (white - black), 0, 1)
    ** (1 / gamma)``, computed in float64 on [0, 1] and rounded half-to-even.

    References
    ----------
    Gonzalez & Woods (2018), ch. 3; Poynton (2012), doi:10.1016/C2010-0-68445-9.
    """
    if black >= white:
        raise ParameterError(
            "levels", "black", f"is {black:g}, which must be below white ({white:g})"
        )

    def curve(x: Float) -> Float:
        t = np.clip((x - black) / (white - black), 0.0, 1.0) ** (1.0 / gamma)
        return out_black + (out_white - out_black) * t

    return map_values(image, curve)


@operation(
    name="brightness_contrast",
    version="1",
    category="exposure",
    swgit_class="basic",
    summary="Linear brightness offset and contrast gain about mid-grey.",
    description="""Multiplies the distance of each value from mid-grey (0.5 of full scale) by
    the contrast factor and adds the brightness offset; results outside the range are clipped.
    A contrast of 1 and brightness of 0 leave the image unchanged.""",
    references=(ref.GONZALEZ_WOODS,),
    params=(
        Param("brightness", "float", "Offset added.", "fraction of full scale", -1.0, 1.0),
        Param("contrast", "float", "Gain about mid-grey.", "factor", 0.0, 10.0),
    ),
)
def brightness_contrast(image: Image, *, brightness: float = 0.0, contrast: float = 1.0) -> Image:
    """Linear contrast about mid-grey plus a brightness offset.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    brightness : float
        Offset in fractions of full scale, in [-1, 1].
    contrast : float
        Gain about 0.5, in [0, 10].

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``.

    Notes
    -----
    ``y = clip((x - 0.5) * contrast + 0.5 + brightness, 0, 1)`` on the [0, 1] scale.

    References
    ----------
    Gonzalez & Woods (2018), section 3.2.
    """
    return map_values(image, lambda x: (x - 0.5) * contrast + 0.5 + brightness)


def _equalise(y: Float, levels: int) -> Float:
    # Classic CDF mapping on the image's own quantisation (Gonzalez & Woods eq. 3-15),
    # written out because skimage's equalize_hist returns bin centres of a float histogram.
    q = np.rint(np.clip(y, 0.0, 1.0) * (levels - 1)).astype(np.int64)
    hist = np.bincount(q.ravel(), minlength=levels)
    cdf = np.cumsum(hist)
    cdf_min = cdf[np.flatnonzero(hist)[0]]
    total = cdf[-1]
    if total == cdf_min:  # a flat image has nothing to spread
        return np.asarray(y, np.float64)
    mapping = np.clip((cdf - cdf_min) / (total - cdf_min), 0.0, 1.0)
    return np.asarray(mapping[q], np.float64)


@operation(
    name="equalize_histogram",
    version="1",
    category="exposure",
    swgit_class="basic",
    summary="Global histogram equalisation (of luma for colour images).",
    description="""Replaces each value by its rank in the image's cumulative histogram, so that
    the output histogram is as flat as the quantisation allows. Colour images are equalised on
    BT.601 luma only and the same change is added to R, G and B, which keeps the
    colour-difference signals and so avoids the colour casts of per-channel equalisation.""",
    references=(ref.HUMMEL_1977, ref.GONZALEZ_WOODS),
)
def equalize_histogram(image: Image) -> Image:
    """Global histogram equalisation.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``.

    Notes
    -----
    With ``q`` the value quantised to the dtype's levels and ``cdf`` the cumulative histogram,
    ``y = (cdf[q] - cdf_min) / (N - cdf_min)``, ``N`` the number of pixels. Colour: applied to
    ``Y = 0.299 R + 0.587 G + 0.114 B`` and ``Y' - Y`` added to each channel.

    References
    ----------
    Hummel (1977), doi:10.1016/S0146-664X(77)80011-7.
    """
    levels_count = full_scale(image.dtype) + 1
    return map_values(image, lambda x: on_luma(x, lambda y: _equalise(y, levels_count)))


@operation(
    name="clahe",
    version="2",
    category="exposure",
    swgit_class="basic",
    summary="Contrast-limited adaptive histogram equalisation (of luma for colour).",
    description="""Equalises the histogram in tiles and interpolates between the tiles'
    mappings bilinearly, clipping each tile histogram at clip_limit so that noise in flat
    areas is not amplified without bound. Brings out detail in both shadows and highlights of
    unevenly lit scenes. OpenCV's implementation on the integer luma (one histogram bin per
    level: 256 for 8-bit, 65536 for 16-bit), so the result is exact integer arithmetic and
    the same on every thread count and CPU; a flat image is returned unchanged. Colour images
    are processed on BT.601 luma only. Version 1 (scikit-image on float luma, with a min-max
    stretch) is kept for the replay of runs that used it.""",
    references=(ref.ZUIDERVELD_1994, ref.PIZER_1987, ref.OPENCV),
    params=(
        Param(
            "tile_size",
            "int",
            "Side of the contextual tiles (the image is divided into a grid of such tiles).",
            "px",
            8,
            4096,
            auto="an 8 x 8 grid of tiles (1/8 of the image height and width)",
        ),
        Param(
            "clip_limit",
            "float",
            "Histogram clip limit, as a fraction of a tile's pixels in one 1/256 of the range "
            "(higher = more contrast).",
            "",
            0.0,
            1.0,
            exclusive_minimum=True,
        ),
    ),
)
def clahe(image: Image, *, tile_size: int | None = None, clip_limit: float = 0.01) -> Image:
    """Contrast-limited adaptive histogram equalisation (CLAHE) on the integer luma.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    tile_size : int or None
        Tile side in pixels: the grid has ``ceil(W / tile_size) x ceil(H / tile_size)``
        tiles; None gives an 8 x 8 grid.
    clip_limit : float
        Normalised clip limit in (0, 1].

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``.

    Notes
    -----
    Luma ``Y = (4899 R + 9617 G + 1868 B + 2^13) >> 14`` (BT.601 in fixed point; a grey image
    is its own luma). Per tile, the histogram of ``Y`` (one bin per level, ``L`` levels) is
    clipped at ``max(1, floor(256 . clip_limit . A / L))`` counts, ``A`` the tile's pixels
    (that is, ``clip_limit . A`` per 1/256 of the range, as version 1's default 256 bins),
    the excess redistributed evenly, and its CDF scaled to the range is that tile's mapping;
    each pixel's ``Y'`` is the bilinear blend of the four nearest tiles' mappings (OpenCV
    ``createCLAHE(256 . clip_limit, grid).apply``; the image is padded by reflection to a
    multiple of the grid). Colour: ``Y' - Y`` is added to R, G and B with saturation.
    Version 1 is `forensic.classical.superseded.clahe_v1`.

    References
    ----------
    Zuiderveld (1994), doi:10.1016/B978-0-12-336156-1.50061-6; Pizer et al. (1987),
    doi:10.1016/S0734-189X(87)80186-X.
    """
    colour, _ = split_alpha(image)
    y = integer_luma(colour)
    low, high, _, _ = cv2.minMaxLoc(y)
    if low == high:  # nothing to equalise; OpenCV would move a flat image's level
        return image.copy()
    h, w = y.shape
    grid = (8, 8) if tile_size is None else (-(-w // tile_size), -(-h // tile_size))
    equaliser = cv2.createCLAHE(clipLimit=256.0 * clip_limit, tileGridSize=grid)
    return apply_luma(image, y, equaliser.apply(y))


def _white_balance_gains(
    image: Image, method: str, percentile: float, x: int | None, y: int | None, radius: int
) -> Float:
    rgb = to_float(split_alpha(image)[0])
    if method == "grey_world":
        reference = rgb.reshape(-1, 3).mean(axis=0)
    elif method == "white_patch":
        reference = np.percentile(rgb.reshape(-1, 3), percentile, axis=0)
    else:
        h, w = rgb.shape[:2]
        for name, value, limit in (("x", x, w), ("y", y, h)):
            if value is None or not 0 <= value < limit:
                raise ParameterError(
                    "white_balance",
                    name,
                    f"is {value!r}; method 'manual' needs a pixel coordinate in [0, {limit - 1}]",
                    hint="give x and y of a point known to be neutral grey or white",
                )
        assert x is not None
        assert y is not None
        patch = rgb[max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1]
        reference = patch.reshape(-1, 3).mean(axis=0)
    if np.any(reference <= 0):
        raise ParameterError(
            "white_balance",
            "method",
            f"'{method}' found a reference with a zero channel {np.round(reference, 4).tolist()}",
            hint="choose another method or a reference point that is not black in any channel",
        )
    if method == "white_patch":
        return np.asarray(1.0 / reference, np.float64)
    # Grey world and manual keep the reference's brightness and only remove its cast.
    return np.asarray(reference.mean() / reference, np.float64)


@operation(
    name="white_balance",
    version="1",
    category="exposure",
    swgit_class="basic",
    summary="Remove a colour cast: grey world, white patch, or a manual neutral point.",
    description="""Multiplies R, G and B by one gain each (a von Kries diagonal model). Grey
    world assumes the scene averages to grey and scales each channel mean to the mean of the
    three; white patch assumes the brightest surfaces are white and scales each channel's
    given percentile to full scale; manual takes the mean colour around a pixel the examiner
    knows to be neutral and scales it to grey of the same brightness. The gains are recorded.""",
    references=(ref.BUCHSBAUM_1980, ref.LAND_MCCANN_1971),
    colour_only=True,
    params=(
        Param(
            "method",
            "choice",
            "Which assumption fixes the gains.",
            choices=("grey_world", "white_patch", "manual"),
        ),
        Param("percentile", "float", "White patch: percentile taken as white.", "%", 50.0, 100.0),
        Param(
            "x",
            "int",
            "Manual: column of the neutral point.",
            "px",
            0,
            None,
            auto="not used unless method is 'manual'",
        ),
        Param(
            "y",
            "int",
            "Manual: row of the neutral point.",
            "px",
            0,
            None,
            auto="not used unless method is 'manual'",
        ),
        Param("radius", "int", "Manual: half-size of the averaged square.", "px", 0, 100),
    ),
    details_for=lambda image, p: {
        "gains_rgb": [
            round(float(g), 6)
            for g in _white_balance_gains(
                image, p["method"], p["percentile"], p["x"], p["y"], p["radius"]
            )
        ]
    },
)
def white_balance(
    image: Image,
    *,
    method: str = "grey_world",
    percentile: float = 99.0,
    x: int | None = None,
    y: int | None = None,
    radius: int = 2,
) -> Image:
    """White balance by per-channel gains.

    Parameters
    ----------
    image : ndarray
        Colour image (H, W, 3|4), uint8 or uint16.
    method : {'grey_world', 'white_patch', 'manual'}
        How the gains are found.
    percentile : float
        For ``white_patch``: the per-channel percentile mapped to full scale.
    x, y : int or None
        For ``manual``: the neutral reference pixel (column, row).
    radius : int
        For ``manual``: the reference is the mean of the (2 radius + 1)^2 square.

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``.

    Notes
    -----
    ``out_c = clip(g_c * in_c)``. Grey world: ``g_c = mean(m) / m_c`` with ``m_c`` the channel
    means. White patch: ``g_c = 1 / p_c``, ``p_c`` the channel percentile. Manual:
    ``g_c = mean(r) / r_c`` with ``r`` the reference colour.

    References
    ----------
    Buchsbaum (1980), doi:10.1016/0016-0032(80)90058-7; Land & McCann (1971),
    doi:10.1364/JOSA.61.000001.
    """
    gains = _white_balance_gains(image, method, percentile, x, y, radius)
    return map_values(image, lambda rgb: rgb * gains)


_CHANNELS = {"red": 0, "green": 1, "blue": 2}


@operation(
    name="channel_extract",
    version="1",
    category="colour",
    swgit_class="basic",
    summary="One colour channel, or luma, as a greyscale image.",
    description="""Returns a single channel of a colour image as greyscale: red, green or blue
    unchanged, or luma computed with the BT.601 (standard definition, CIF/4CIF DVRs) or BT.709
    (HD) weights. A single channel often shows detail (a number plate under coloured light)
    that the others hide.""",
    references=(ref.BT601, ref.BT709, ref.GONZALEZ_WOODS),
    colour_only=True,
    output_dtype="greyscale (H, W), same dtype as input",
    params=(
        Param(
            "channel",
            "choice",
            "Which channel.",
            choices=("red", "green", "blue", "luma601", "luma709"),
        ),
    ),
)
def channel_extract(image: Image, *, channel: str = "luma601") -> Image:
    """Extract one channel (or luma) of a colour image as greyscale.

    Parameters
    ----------
    image : ndarray
        Colour image (H, W, 3|4), uint8 or uint16.
    channel : {'red', 'green', 'blue', 'luma601', 'luma709'}
        The channel to return.

    Returns
    -------
    ndarray
        Greyscale (H, W) of the input dtype. R, G and B are copied exactly.

    Notes
    -----
    BT.601 luma: ``Y = 0.299 R + 0.587 G + 0.114 B``; BT.709: ``0.2126 R + 0.7152 G +
    0.0722 B``, on non-linear (gamma-encoded) values, rounded half-to-even.

    References
    ----------
    ITU-R BT.601-7; ITU-R BT.709-6.
    """
    if channel in _CHANNELS:
        return image[..., _CHANNELS[channel]].copy()
    weights = LUMA_601 if channel == "luma601" else LUMA_709
    return from_float(to_float(image[..., :3]) @ weights, image.dtype)


@operation(
    name="channel_mix",
    version="1",
    category="colour",
    swgit_class="basic",
    summary="Mix R, G and B through a 3 x 3 matrix.",
    description="""Each output channel is a weighted sum of the input R, G and B, with the
    weights given row by row in a 3 x 3 matrix (the identity leaves the image unchanged).
    Used to separate a feature from a coloured background or to undo a known channel
    crosstalk. Results are clipped to the valid range.""",
    references=(ref.GONZALEZ_WOODS,),
    colour_only=True,
    params=(
        Param(
            "matrix",
            "floats",
            "Row-major 3 x 3 weights: output R, G, B rows over input R, G, B.",
            "",
            -4.0,
            4.0,
            length=9,
        ),
    ),
)
def channel_mix(
    image: Image,
    *,
    matrix: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
) -> Image:
    """Linear channel mixing.

    Parameters
    ----------
    image : ndarray
        Colour image (H, W, 3|4), uint8 or uint16.
    matrix : sequence of 9 floats
        Row-major matrix ``M``; ``out_i = sum_j M[i, j] in_j``.

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``.

    Notes
    -----
    ``out = clip(in @ M.T)`` per pixel, on the [0, 1] scale.

    References
    ----------
    Gonzalez & Woods (2018), ch. 6.
    """
    m = np.asarray(matrix, np.float64).reshape(3, 3)
    return map_values(image, lambda rgb: rgb @ m.T)


@operation(
    name="invert",
    version="1",
    category="exposure",
    swgit_class="basic",
    summary="Photographic negative.",
    description="""Replaces each value v by full scale minus v (255 - v for 8-bit). Exact and
    its own inverse. Useful for negatives and for reading dark marks on bright ground.""",
    references=(ref.GONZALEZ_WOODS,),
)
def invert(image: Image) -> Image:
    """Invert values: ``full_scale - v`` per colour channel; alpha is kept.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.

    Returns
    -------
    ndarray
        Same shape and dtype; exact (integer arithmetic), and ``invert(invert(x)) == x``.

    Notes
    -----
    ``y = 2^b - 1 - x`` for a b-bit image.

    References
    ----------
    Gonzalez & Woods (2018), section 3.2.
    """
    colour, alpha = split_alpha(image)
    return join_alpha(np.subtract(full_scale(image.dtype), colour, dtype=image.dtype), alpha)
