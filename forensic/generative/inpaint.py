"""Inpainting: fill a masked region from its surroundings (OpenCV's Telea and Navier-Stokes).

Classical algorithms, but every pixel they write into the region is invented: it is the
lane, not the method, that says so. The effect is ``inferred`` and the provenance map marks
exactly the region.
"""

from __future__ import annotations

import cv2
import numpy as np

from forensic.generative.registry import LANE
from forensic.ops.framework import Param, Reference, box_params, operation
from forensic.ops.pixels import Image, check_box, join_alpha, split_alpha

TELEA_2004 = Reference(
    "Telea, A. (2004). An image inpainting technique based on the fast marching method. "
    "Journal of Graphics Tools, 9(1), 23-34.",
    doi="10.1080/10867651.2004.10487596",
)
BERTALMIO_2001 = Reference(
    "Bertalmio, M., Bertozzi, A. L. and Sapiro, G. (2001). Navier-Stokes, fluid dynamics, "
    "and image and video inpainting. IEEE CVPR 2001, vol. 1.",
    doi="10.1109/CVPR.2001.990497",
)
_BOX = (
    *box_params("the region to fill"),
    Param("radius", "float", "Neighbourhood considered around each filled pixel.", "px", 1.0, 50.0),
)
_DETERMINISM = """Deterministic (OpenCV, no randomness); bit-identical for the same input,
pinned OpenCV build and CPU architecture."""


def _inpaint(
    image: Image, x: int, y: int, width: int, height: int, radius: float, flag: int
) -> Image:
    mask = np.zeros(image.shape[:2], np.uint8)
    mask[y : y + height, x : x + width] = 255
    colour, alpha = split_alpha(image)
    if colour.ndim == 3 and colour.dtype != np.uint8:
        # OpenCV inpaints 16-bit images one channel at a time only.
        planes = [
            cv2.inpaint(np.ascontiguousarray(colour[..., c]), mask, radius, flag) for c in range(3)
        ]
        filled = np.stack(planes, axis=2)
    else:
        filled = cv2.inpaint(np.ascontiguousarray(colour), mask, radius, flag)
    return join_alpha(np.asarray(filled, image.dtype), alpha)


@operation(
    name="generative.inpaint_telea",
    version="1",
    category="inpaint",
    swgit_class="advanced",
    summary="Fill a rectangle from its surroundings (fast marching, Telea). INFERRED.",
    description="""Fills the rectangle inwards from its boundary: each pixel, in order of its
    distance from the known area (fast marching), takes a weighted average of known pixels
    nearby, weighted by distance, direction of the level lines and proximity to the boundary.
    Every filled pixel is invented from its surroundings; nothing in the region comes from the
    camera. The output is marked inferred in that region and must never be used to identify
    anything there.""",
    references=(TELEA_2004,),
    params=_BOX,
    effect="inferred",
    determinism=_DETERMINISM,
    lane=LANE,
)
def inpaint_telea(
    image: Image, *, x: int, y: int, width: int, height: int, radius: float = 5.0
) -> Image:
    """Telea inpainting of a rectangle.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    x, y, width, height : int
        The rectangle to fill; it must lie inside the image.
    radius : float
        Radius of the neighbourhood used for each pixel.

    Returns
    -------
    ndarray
        Same shape and dtype; only the rectangle differs, and it is invented.

    Notes
    -----
    Pixels are filled in increasing order of their fast-marching distance ``T`` from the
    boundary; ``I(p) = sum_q w(p, q) [I(q) + grad I(q) . (p - q)] / sum_q w(p, q)`` over known
    ``q`` within ``radius``, ``w`` = direction x distance x level-set terms.

    References
    ----------
    Telea (2004), doi:10.1080/10867651.2004.10487596.
    """
    check_box("generative.inpaint_telea", image, x, y, width, height)
    return _inpaint(image, x, y, width, height, radius, cv2.INPAINT_TELEA)


@operation(
    name="generative.inpaint_ns",
    version="1",
    category="inpaint",
    swgit_class="advanced",
    summary="Fill a rectangle by propagating its surroundings (Navier-Stokes). INFERRED.",
    description="""Fills the rectangle by continuing the image's level lines (isophotes) from
    the boundary into the region, solving a transport equation analogous to the
    Navier-Stokes equations of incompressible flow, with the image intensity as the stream
    function. Edges that meet the region's border are continued smoothly; texture is not.
    Every filled pixel is invented; the output is marked inferred in that region.""",
    references=(BERTALMIO_2001,),
    params=_BOX,
    effect="inferred",
    determinism=_DETERMINISM,
    lane=LANE,
)
def inpaint_ns(
    image: Image, *, x: int, y: int, width: int, height: int, radius: float = 5.0
) -> Image:
    """Navier-Stokes inpainting of a rectangle.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    x, y, width, height : int
        The rectangle to fill; it must lie inside the image.
    radius : float
        Radius of the neighbourhood used for each pixel.

    Returns
    -------
    ndarray
        Same shape and dtype; only the rectangle differs, and it is invented.

    Notes
    -----
    The smoothness ``L = lap I`` is transported along the isophote direction
    ``grad-perp I``: ``dI/dt = grad-perp I . grad L`` (with anisotropic diffusion), solved
    until steady state inside the region.

    References
    ----------
    Bertalmio, Bertozzi & Sapiro (2001), doi:10.1109/CVPR.2001.990497.
    """
    check_box("generative.inpaint_ns", image, x, y, width, height)
    return _inpaint(image, x, y, width, height, radius, cv2.INPAINT_NS)
