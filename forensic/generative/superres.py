"""Learned super-resolution as a generative operation (the built-in x2 and x4 models)."""

from __future__ import annotations

from forensic.errors import ParameterError
from forensic.generative.registry import LANE
from forensic.ops.framework import Param, Reference, operation
from forensic.ops.pixels import Image

WANG_2018 = Reference(
    "Wang, X. et al. (2018). ESRGAN: Enhanced super-resolution generative adversarial "
    "networks. ECCV 2018 Workshops, LNCS 11133, 63-79.",
    note="DOI not confirmed; RRDBNet, the architecture of user-supplied ESRGAN weights",
)
SHI_2016 = Reference(
    "Shi, W. et al. (2016). Real-time single image and video super-resolution using an "
    "efficient sub-pixel convolutional neural network. IEEE CVPR 2016, 1874-1883.",
    note="DOI not confirmed; the ESPCN architecture this model follows",
)


UNCERTAINTY_RUNS = Param(
    "uncertainty_runs",
    "int",
    "Reruns of the model on perturbed inputs for the uncertainty map. It does not change the "
    "output; each run costs one more inference, so the step takes about (1 + runs) times as "
    "long as the enlargement alone.",
    "runs",
    2,
    64,
)


@operation(
    name="generative.super_resolution",
    version="2",
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
    params=(
        Param("scale", "int", "Enlargement factor (2 or 4).", "factor", 2, 4),
        UNCERTAINTY_RUNS,
    ),
    effect="inferred",
    output_dtype="same dtype as input; width and height multiplied by scale",
    determinism="""torch's deterministic algorithms on the chosen device (the CPU with one
    thread, or a CUDA GPU with TF32 and cuDNN autotuning off), tile by tile: bit-identical for
    the same input, weights, torch build and device; the device is recorded.""",
    lane=LANE,
)
def super_resolution(image: Image, *, scale: int = 2, uncertainty_runs: int = 8) -> Image:
    """Learned super-resolution.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    scale : int
        2 or 4.
    uncertainty_runs : int
        Reruns for the uncertainty map (`forensic.generative.maps`); the output does not
        depend on it.

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
    from forensic.generative.sr import SCALES, check_size, super_resolve

    del uncertainty_runs  # read by the uncertainty map (forensic.generative.maps), not here
    if scale not in SCALES:
        raise ParameterError("generative.super_resolution", "scale", f"is {scale}; allowed: 2 or 4")
    check_size("generative.super_resolution", image, scale)
    return super_resolve(image, scale)


@operation(
    name="generative.user_model",
    version="2",
    category="super-resolution",
    swgit_class="advanced",
    summary="Super-resolution with weights the examiner provides (approved by hash). INFERRED.",
    description="""Runs a super-resolution network whose weights the examiner supplies as a
    file: safetensors, or a PyTorch checkpoint holding only a state dictionary, read with
    weights-only unpickling so that the file cannot run code. The architecture is named: the
    residual ESPCN of the built-in models, or RRDBNet, the generator of ESRGAN and
    Real-ESRGAN (its size is read from the weights). The file's
    SHA-256 must be in the policy's approved models; the file is copied into the case so that
    the step can be replayed, and every output pixel is marked inferred.""",
    references=(SHI_2016, WANG_2018),
    params=(
        Param("weights", "str", "Path of the weights file (.safetensors, .pt, .pth)."),
        Param(
            "architecture",
            "choice",
            "The network the weights belong to.",
            choices=("residual_espcn", "rrdbnet"),
        ),
        Param("scale", "int", "Enlargement factor the weights were trained for.", "factor", 2, 4),
        UNCERTAINTY_RUNS,
    ),
    effect="inferred",
    output_dtype="same dtype as input; width and height multiplied by scale",
    determinism="""torch's deterministic algorithms on the chosen device (the CPU with one
    thread, or a CUDA GPU with TF32 and cuDNN autotuning off), tile by tile: bit-identical for
    the same input, weights, torch build and device; the device is recorded.""",
    lane=LANE,
)
def user_model(
    image: Image,
    *,
    weights: str,
    architecture: str = "residual_espcn",
    scale: int = 2,
    uncertainty_runs: int = 8,
) -> Image:
    """Super-resolution with user-supplied weights.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    weights : str
        Path of the weights file; its SHA-256 must be approved by the case's policy.
    architecture : {'residual_espcn', 'rrdbnet'}
        The architecture of the weights.
    scale : int
        2 or 4, as the weights were trained.
    uncertainty_runs : int
        Reruns for the uncertainty map; the output does not depend on it.

    Returns
    -------
    ndarray
        ``scale`` times larger, same dtype; every pixel inferred.

    Notes
    -----
    As `super_resolution`, with the given weights instead of the built-in ones.

    References
    ----------
    Shi et al. (2016), CVPR, ESPCN.
    """
    from forensic.generative.sr import (
        SCALES,
        check_size,
        load_user_model,
        rgb_resolve,
        super_resolve,
    )

    del uncertainty_runs  # read by the uncertainty map (forensic.generative.maps), not here
    if scale not in SCALES:
        raise ParameterError("generative.user_model", "scale", f"is {scale}; allowed: 2 or 4")
    check_size("generative.user_model", image, scale)
    model = load_user_model(weights, scale, architecture)
    if architecture == "rrdbnet":
        return rgb_resolve(image, model, scale)
    return super_resolve(image, scale, model=model)


# -- versions 1, kept for replay -----------------------------------------------------------------
# Version 1 ran every network in one pass on the CPU with oneDNN at torch's default (on).
# Version 2 runs tile by tile on the chosen device, with oneDNN off for the residual ESPCN (so
# tiles equal one pass bit for bit): measured on 256 x 256 crops of scikit-image's camera,
# astronaut and coffee, 0 to 13 of up to 3.1 million 8-bit values differ by 1 from version 1.
# A run recorded with version 1 replays with this code, bit-exact.


@operation(
    name="generative.super_resolution",
    version="1",
    superseded=True,
    category="super-resolution",
    swgit_class="advanced",
    summary="Learned super-resolution x2 or x4 (built-in residual ESPCN). INFERRED.",
    description="""Version 1: as version 2, run in one pass on the CPU (oneDNN on).""",
    references=(SHI_2016,),
    params=(Param("scale", "int", "Enlargement factor (2 or 4).", "factor", 2, 4),),
    effect="inferred",
    output_dtype="same dtype as input; width and height multiplied by scale",
    determinism="""CPU inference with one thread and torch's deterministic algorithms:
    bit-identical for the same input, weights, torch build and CPU architecture.""",
    lane=LANE,
)
def super_resolution_v1(image: Image, *, scale: int = 2) -> Image:
    """Learned super-resolution, version 1 (one pass on the CPU).

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
    As version 2.

    References
    ----------
    Shi et al. (2016), CVPR, ESPCN.
    """
    from forensic.generative.sr import SCALES, check_size, enlarge_luma_v1, super_resolve

    if scale not in SCALES:
        raise ParameterError("generative.super_resolution", "scale", f"is {scale}; allowed: 2 or 4")
    check_size("generative.super_resolution", image, scale)
    return super_resolve(image, scale, enlarge=enlarge_luma_v1)


@operation(
    name="generative.user_model",
    version="1",
    superseded=True,
    category="super-resolution",
    swgit_class="advanced",
    summary="Super-resolution with weights the examiner provides (approved by hash). INFERRED.",
    description="""Version 1: as version 2, run in one pass on the CPU (oneDNN on).""",
    references=(SHI_2016, WANG_2018),
    params=(
        Param("weights", "str", "Path of the weights file (.safetensors, .pt, .pth)."),
        Param(
            "architecture",
            "choice",
            "The network the weights belong to.",
            choices=("residual_espcn", "rrdbnet"),
        ),
        Param("scale", "int", "Enlargement factor the weights were trained for.", "factor", 2, 4),
    ),
    effect="inferred",
    output_dtype="same dtype as input; width and height multiplied by scale",
    determinism="""CPU inference with one thread and torch's deterministic algorithms:
    bit-identical for the same input, weights, torch build and CPU architecture.""",
    lane=LANE,
)
def user_model_v1(
    image: Image, *, weights: str, architecture: str = "residual_espcn", scale: int = 2
) -> Image:
    """Super-resolution with user-supplied weights, version 1 (one pass on the CPU).

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    weights : str
        Path of the weights file; its SHA-256 must be approved by the case's policy.
    architecture : {'residual_espcn', 'rrdbnet'}
        The architecture of the weights.
    scale : int
        2 or 4, as the weights were trained.

    Returns
    -------
    ndarray
        ``scale`` times larger, same dtype; every pixel inferred.

    Notes
    -----
    As version 2.

    References
    ----------
    Shi et al. (2016), CVPR, ESPCN.
    """
    from forensic.generative.sr import (
        SCALES,
        check_size,
        enlarge_luma_v1,
        load_user_model,
        rgb_resolve_v1,
        super_resolve,
    )

    if scale not in SCALES:
        raise ParameterError("generative.user_model", "scale", f"is {scale}; allowed: 2 or 4")
    check_size("generative.user_model", image, scale)
    model = load_user_model(weights, scale, architecture)
    if architecture == "rrdbnet":
        return rgb_resolve_v1(image, model, scale)
    return super_resolve(image, scale, model=model, enlarge=enlarge_luma_v1)
