"""Redaction for disclosure copies: fill, pixelate or blur a rectangle.

Redaction is not enhancement. It has its own SWGIT class and provenance effect so that the
journal and the report can never present it as an improvement of the evidence. Only a solid
fill destroys the information; blurring and pixelation leave enough of it that text and faces
can sometimes be recovered (Hill et al. 2016), so their descriptions say so.
"""

from __future__ import annotations

from collections.abc import Callable

from scipy import ndimage

from forensic.classical import references as ref
from forensic.errors import ParameterError
from forensic.ops.framework import Param, box_params, operation
from forensic.ops.pixels import (
    Float,
    Image,
    check_box,
    from_float,
    full_scale,
    per_plane,
    split_alpha,
    to_float,
)


def _replace_region(
    image: Image, x: int, y: int, width: int, height: int, fn: Callable[[Float], Float]
) -> Image:
    """A copy of ``image`` whose rectangle's colour planes are replaced by ``fn`` of them."""
    out = image.copy()
    colour, _ = split_alpha(image)
    replaced = from_float(fn(to_float(colour[y : y + height, x : x + width])), image.dtype)
    if image.ndim == 2:
        out[y : y + height, x : x + width] = replaced
    else:
        out[y : y + height, x : x + width, :3] = replaced
    return out


def _more_than_one_pixel(op: str, width: int, height: int) -> None:
    if width * height < 2:
        raise ParameterError(
            op,
            "width",
            "and height are 1: a single pixel cannot be blurred or pixelated",
            hint="use redact_fill for a single pixel",
        )


_BOX = box_params()
_WEAK = """Blurred and pixelated regions can sometimes be read again (by recognition against
candidates or deconvolution); use redact_fill where the content must not be recoverable."""


@operation(
    name="redact_fill",
    version="1",
    category="redaction",
    swgit_class="redaction",
    summary="Cover a rectangle with a solid value (irreversible).",
    description="""Overwrites every pixel of the rectangle with one value (black by default),
    in all colour channels; an alpha channel is left as it was. Nothing of the original
    content survives in the region. For disclosure copies only: the report lists it as
    redaction, never as enhancement.""",
    references=(ref.HILL_2016,),
    effect="redaction",
    params=(*_BOX, Param("value", "float", "Fill value.", "fraction of full scale", 0.0, 1.0)),
)
def redact_fill(
    image: Image, *, x: int, y: int, width: int, height: int, value: float = 0.0
) -> Image:
    """Solid-fill redaction.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    x, y, width, height : int
        The rectangle (top-left pixel and size); it must lie inside the image.
    value : float
        Fill value as a fraction of full scale.

    Returns
    -------
    ndarray
        Same shape and dtype; only the rectangle differs.

    Notes
    -----
    ``y(p) = round(value . (2^b - 1))`` for ``p`` in the rectangle, ``x(p)`` elsewhere.

    References
    ----------
    Hill et al. (2016), doi:10.1515/popets-2016-0047.
    """
    check_box("redact_fill", image, x, y, width, height)
    out = image.copy()
    fill = round(value * full_scale(image.dtype))
    if image.ndim == 2:
        out[y : y + height, x : x + width] = fill
    else:
        out[y : y + height, x : x + width, :3] = fill
    return out


@operation(
    name="redact_pixelate",
    version="1",
    category="redaction",
    swgit_class="redaction",
    summary="Pixelate a rectangle (mosaic of block means).",
    description=f"""Replaces the rectangle by a mosaic: it is cut into block x block squares
    (aligned to its top-left corner; edge blocks may be smaller) and every pixel of a square
    takes the square's mean. {_WEAK} For disclosure copies only.""",
    references=(ref.HILL_2016,),
    effect="redaction",
    params=(*_BOX, Param("block", "int", "Mosaic block side.", "px", 2, 512)),
)
def redact_pixelate(
    image: Image, *, x: int, y: int, width: int, height: int, block: int = 16
) -> Image:
    """Mosaic redaction.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    x, y, width, height : int
        The rectangle; it must lie inside the image.
    block : int
        Side of the mosaic squares in pixels.

    Returns
    -------
    ndarray
        Same shape and dtype; only the rectangle differs.

    Notes
    -----
    Each block ``B`` becomes ``mean_{p in B} x(p)`` per channel, rounded half-to-even.

    References
    ----------
    Hill et al. (2016), doi:10.1515/popets-2016-0047.
    """
    check_box("redact_pixelate", image, x, y, width, height)
    _more_than_one_pixel("redact_pixelate", width, height)

    def mosaic(region: Float) -> Float:
        for by in range(0, height, block):
            for bx in range(0, width, block):
                cell = region[by : by + block, bx : bx + block]
                cell[...] = cell.mean(axis=(0, 1))
        return region

    return _replace_region(image, x, y, width, height, mosaic)


@operation(
    name="redact_blur",
    version="1",
    category="redaction",
    swgit_class="redaction",
    summary="Blur a rectangle strongly (Gaussian).",
    description=f"""Blurs the rectangle with a Gaussian of standard deviation sigma, computed
    from the rectangle's own pixels only (mirrored at its edges) so that nothing outside it is
    changed. {_WEAK} For disclosure copies only.""",
    references=(ref.HILL_2016,),
    effect="redaction",
    params=(*_BOX, Param("sigma", "float", "Gaussian standard deviation.", "px", 2.0, 200.0)),
)
def redact_blur(
    image: Image, *, x: int, y: int, width: int, height: int, sigma: float = 12.0
) -> Image:
    """Gaussian-blur redaction.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    x, y, width, height : int
        The rectangle; it must lie inside the image.
    sigma : float
        Standard deviation in pixels.

    Returns
    -------
    ndarray
        Same shape and dtype; only the rectangle differs.

    Notes
    -----
    ``y = G_sigma * x`` inside the rectangle, borders of the rectangle reflected, truncated
    at ``4 sigma`` (or the rectangle size).

    References
    ----------
    Hill et al. (2016), doi:10.1515/popets-2016-0047.
    """
    check_box("redact_blur", image, x, y, width, height)
    _more_than_one_pixel("redact_blur", width, height)
    truncate = max(0.5, min(4.0, (max(width, height) - 1) / sigma))
    return _replace_region(
        image,
        x,
        y,
        width,
        height,
        lambda region: per_plane(
            region,
            lambda p: ndimage.gaussian_filter(p, sigma, mode="reflect", truncate=truncate),
        ),
    )
