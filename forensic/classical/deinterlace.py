"""Deinterlacing of single interlaced frames: field separation, line doubling, blending.

An interlaced frame holds two fields, the even rows (top field, rows 0, 2, 4...) and the odd
rows (bottom field), captured 1/50 s (PAL) or 1/60 s (NTSC) apart. Anything that moved
between them shows "combing". ENFSI's best-practice manual asks for deinterlacing *first*,
before any other enhancement, because filters that mix neighbouring rows mix two instants.
"""

from __future__ import annotations

import numpy as np

from forensic.classical import references as ref
from forensic.errors import ParameterError
from forensic.ops.framework import Param, operation
from forensic.ops.pixels import Image, from_float, to_float

_FIELD = Param(
    "field",
    "choice",
    "Which field: top (rows 0, 2, 4...) or bottom (rows 1, 3, 5...).",
    choices=("top", "bottom"),
)


def _offset(field: str) -> int:
    return 0 if field == "top" else 1


def _need_rows(op: str, image: Image) -> None:
    if image.shape[0] < 2:
        raise ParameterError(op, "image", f"has {image.shape[0]} row; a frame needs two fields")


@operation(
    name="field_extract",
    version="1",
    category="deinterlace",
    swgit_class="basic",
    summary="Keep one field (every other row): half height, one instant.",
    description="""Keeps only the rows of one field, giving a picture of half the height that
    shows a single instant, without combing. No value is changed; pixels are now twice as
    tall as they are wide, which pixel_aspect (ratio 0.5) or deinterlace_double corrects.""",
    references=(ref.DE_HAAN_1998,),
    effect="geometry",
    output_dtype="same as input; values copied exactly; half the rows (rounded up for top)",
    params=(_FIELD,),
)
def field_extract(image: Image, *, field: str = "top") -> Image:
    """Extract one field.

    Parameters
    ----------
    image : ndarray
        Interlaced frame, grey or colour, uint8 or uint16, at least 2 rows.
    field : {'top', 'bottom'}
        Even rows (top) or odd rows (bottom).

    Returns
    -------
    ndarray
        ``image[f::2]``, ``f`` = 0 or 1, as a new array.

    Notes
    -----
    Output row ``v`` is input row ``2 v + f``.

    References
    ----------
    de Haan & Bellers (1998), Proc. IEEE 86(9), 1839-1857.
    """
    _need_rows("field_extract", image)
    return image[_offset(field) :: 2].copy()


@operation(
    name="deinterlace_double",
    version="1",
    category="deinterlace",
    swgit_class="basic",
    summary="Line doubling (bob): one field at full height.",
    description="""Keeps the rows of one field unchanged and fills the rows of the other field
    from them, either by repeating the nearest field row or by averaging the field rows above
    and below (linear). The result has the full frame height and shows a single instant;
    vertical resolution is that of one field. The filled rows are marked resampled.""",
    references=(ref.DE_HAAN_1998,),
    effect="resampled",
    params=(
        _FIELD,
        Param(
            "method",
            "choice",
            "How the missing rows are filled.",
            choices=("linear", "repeat"),
        ),
    ),
)
def deinterlace_double(image: Image, *, field: str = "top", method: str = "linear") -> Image:
    """Line doubling from one field.

    Parameters
    ----------
    image : ndarray
        Interlaced frame, grey or colour, uint8 or uint16, at least 2 rows.
    field : {'top', 'bottom'}
        The field kept.
    method : {'linear', 'repeat'}
        Fill each other row with the mean of the field rows above and below (at the image
        edge: the one neighbour), or with the field row above (below, for the first row).

    Returns
    -------
    ndarray
        Same shape and dtype; the kept field's rows are exact copies.

    Notes
    -----
    With ``f`` = 0 (top) or 1 (bottom), linear: ``y(2k + 1 - f) = (x(2k - f) + x(2k + 2 - f))
    / 2`` rounded half-to-even; rows ``2k + f`` are copied.

    References
    ----------
    de Haan & Bellers (1998), Proc. IEEE 86(9), 1839-1857.
    """
    _need_rows("deinterlace_double", image)
    f = _offset(field)
    h = image.shape[0]
    out = image.copy()
    kept = np.arange(f, h, 2)
    for row in range(1 - f, h, 2):
        above = row - 1 if row - 1 >= 0 else None
        below = row + 1 if row + 1 < h else None
        if method == "repeat" or above is None or below is None:
            source = above if above is not None else below
            if source is None:  # cannot happen: h >= 2 and kept rows exist
                source = int(kept[0])
            out[row] = image[source]
        else:
            mean = (to_float(image[above]) + to_float(image[below])) / 2
            out[row] = from_float(mean, image.dtype)
    return out


@operation(
    name="deinterlace_blend",
    version="1",
    category="deinterlace",
    swgit_class="basic",
    summary="Blend the two fields (vertical 1-2-1 filter).",
    description="""Replaces each row by a weighted mean of itself (1/2) and the rows above and
    below (1/4 each), which belong to the other field. Combing disappears and full height is
    kept, but moving objects appear twice, semi-transparent (ghosting): the two instants are
    mixed, not resolved. Static scenes lose a little vertical sharpness.""",
    references=(ref.DE_HAAN_1998,),
)
def deinterlace_blend(image: Image) -> Image:
    """Field blending by a vertical [1, 2, 1] / 4 filter.

    Parameters
    ----------
    image : ndarray
        Interlaced frame, grey or colour, uint8 or uint16, at least 2 rows.

    Returns
    -------
    ndarray
        Same shape and dtype.

    Notes
    -----
    ``y(i) = (x(i - 1) + 2 x(i) + x(i + 1)) / 4``, edge rows reflected (``x(-1) = x(1)``).

    References
    ----------
    de Haan & Bellers (1998), Proc. IEEE 86(9), 1839-1857.
    """
    _need_rows("deinterlace_blend", image)
    x = to_float(image)
    up = np.concatenate([x[1:2], x[:-1]], axis=0)
    down = np.concatenate([x[1:], x[-2:-1]], axis=0)
    out = from_float((up + 2 * x + down) / 4, image.dtype)
    if image.ndim == 3 and image.shape[2] == 4:
        out[..., 3] = image[..., 3]
    return out
