"""Learned super-resolution as a generative operation (the built-in x2 and x4 models)."""

from __future__ import annotations

from forensic.classical._pixels import Image
from forensic.classical.registry import Param, Reference, operation
from forensic.errors import ParameterError
from forensic.generative.registry import _GENERATIVE, LANE

SHI_2016 = Reference(
    "Shi, W. et al. (2016). Real-time single image and video super-resolution using an "
    "efficient sub-pixel convolutional neural network. IEEE CVPR 2016, 1874-1883.",
    note="DOI not confirmed; the ESPCN architecture this model follows",
)


@operation(
    name="generative.super_resolution",
    version="1",
    category="super-resolution",
    swgit_class="advanced",
    summary="Learned super-resolution x2 or x4 (built-in residual ESPCN). INFERRED.",
    description="""Enlarges the image by 2 or 4 with a small convolutional network trained by
    this project on scikit-image's sample images: the network predicts the detail that bicubic
    interpolation misses and adds it to the bicubic enlargement of the luma (chroma is bicubic
    only). What it adds was learned from other images, not recorded by this camera: every
    output pixel is marked inferred, and the inferred-content map shows the difference from
    bicubic. The model's weights are identified by their SHA-256, which the policy must
    approve; its card gives training data and measured accuracy.""",
    references=(SHI_2016,),
    params=(Param("scale", "int", "Enlargement factor (2 or 4).", "factor", 2, 4),),
    effect="inferred",
    output_dtype="same dtype as input; width and height multiplied by scale",
    determinism="""CPU inference with one thread and torch's deterministic algorithms:
    bit-identical for the same input, weights, torch build and CPU architecture.""",
    lane=LANE,
    into=_GENERATIVE,
)
def super_resolution(image: Image, *, scale: int = 2) -> Image:
    """Learned super-resolution.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    scale : int
        2 or 4.

    Returns
    -------
    ndarray
        ``scale`` times larger in each direction, same dtype; every pixel inferred.

    Notes
    -----
    ``Y' = bicubic(Y) + PixelShuffle(f(Y))`` with ``f`` three convolutions (5x5, 3x3, 3x3;
    tanh); ``Cb, Cr`` bicubic; BT.601 conversion back to RGB.

    References
    ----------
    Shi et al. (2016), CVPR, ESPCN.
    """
    from forensic.generative.sr import SCALES, super_resolve

    if scale not in SCALES:
        raise ParameterError("generative.super_resolution", "scale", f"is {scale}; allowed: 2 or 4")
    return super_resolve(image, scale)
