"""Examiners' ONNX models as generative operations: super-resolution, face restoration and
learned inpainting.

Each takes the path of an ONNX file (``weights``) whose SHA-256 the case's policy approves
together with a declared manifest (`forensic.ops.models`); a run takes the manifest from that
policy entry and records it as the step's ``manifest`` parameter, so a replay feeds the model
exactly as the run did. The file is read once, hashed, and the session built from those bytes
(`forensic.generative.onnxrun`).

Face restoration and inpainting touch only the pixels the examiner marks (a region, or a mask
such as the one ``detect_defects`` records): the resolved mask is recorded, every one of its
pixels is marked inferred in the provenance map, and every pixel outside it is the input's,
bit for bit.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from forensic.errors import ParameterError
from forensic.generative.registry import LANE
from forensic.generative.superres import WANG_2018
from forensic.ops.defects import (
    REGION_GRAMMAR,
    decode_mask,
    encode_mask,
    mask_record,
    parse_regions,
    regions_mask,
    validate_regions,
)
from forensic.ops.framework import Param, Reference, operation
from forensic.ops.models import Manifest, validate_manifest
from forensic.ops.pixels import Image, from_float, join_alpha, split_alpha, to_float

Mask = NDArray[np.bool_]

WANG_2021 = Reference(
    "Wang, X., Li, Y., Zhang, H. and Shan, Y. (2021). Towards real-world blind face "
    "restoration with generative facial prior. IEEE/CVF CVPR 2021, 9168-9178.",
    doi="10.1109/CVPR46437.2021.00905",
)
SUVOROV_2022 = Reference(
    "Suvorov, R. et al. (2022). Resolution-robust large mask inpainting with Fourier "
    "convolutions. IEEE/CVF WACV 2022, 2149-2159.",
    doi="10.1109/WACV51458.2022.00323",
)
RONNEBERGER_2015 = Reference(
    "Ronneberger, O., Fischer, P. and Brox, T. (2015). U-Net: convolutional networks for "
    "biomedical image segmentation. MICCAI 2015, LNCS 9351, 234-241.",
    doi="10.1007/978-3-319-24574-4_28",
)

_WEIGHTS = Param("weights", "str", "Path of the ONNX model file (its SHA-256 must be approved).")
_MANIFEST = Param(
    "manifest",
    "str",
    "The model's declared manifest (task, channels, value ranges, scale, size, mask).",
    auto="the manifest of the policy entry approving the file's SHA-256, recorded",
    text_format="JSON object (forensic.ops.models.MANIFEST_KEYS)",
    validator=validate_manifest,
)
_MASK_AUTO = Param(
    "mask",
    "str",
    "The pixels to replace, encoded (as detect_defects records them: details.mask.encoded).",
    auto="the pixels of region, recorded",
    text_format="HxW:base64 (forensic.ops.defects.encode_mask)",
    validator=lambda op, value: _valid_mask(op, value),
)
_DETERMINISM = """onnxruntime with one thread, sequential execution, deterministic compute and
basic graph optimisation only, on the run's device (the CPU provider, or CUDA's with cuDNN's
default convolution algorithm and TF32 off): bit-identical for the same input, model bytes,
onnxruntime build and device."""


def _valid_mask(op: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ParameterError(op, "mask", f"is {value!r}; allowed: an encoded mask (HxW:base64)")
    decode_mask(op, "mask", value)
    return value


def model(op: str, weights: str, manifest: str | None, task: str) -> tuple[Any, Manifest]:
    """The runner of an approved ONNX file (read once per process) and its manifest, on the
    active device (`forensic.generative.onnxrun.placement`)."""
    from forensic.generative.onnxrun import manifest_from_param, placement, runner
    from forensic.generative.sr import pinned_weights

    declared = manifest_from_param(op, manifest)
    if declared.task != task:
        raise ParameterError(
            op,
            "manifest",
            f"declares task {declared.task!r}; this operation runs {task!r} models",
            hint="use the operation for that task, or approve the file with the right --task",
        )
    data, _ = pinned_weights(weights, op=op)
    return runner(op, data, declared, placement().kind), declared


def _planes(op: str, values: NDArray[np.float64], manifest: Manifest) -> NDArray[np.float32]:
    """H x W (x 3) floats -> 1 x C x H x W in the model's channel count (grey is repeated for
    an RGB model; a colour image is refused by a grey model)."""
    grey = values.ndim == 2
    if manifest.channels == "grey":
        if not grey:
            raise ParameterError(
                op, "image", "is colour; the model is declared for grey images (channels = grey)"
            )
        return values.astype(np.float32)[None, None]
    planes = np.repeat(values[..., None], 3, axis=2) if grey else values
    return np.ascontiguousarray(planes.transpose(2, 0, 1)[None], np.float32)


def _image(batch: NDArray[np.float32], grey: bool) -> NDArray[np.float64]:
    out = np.asarray(batch[0], np.float64).transpose(1, 2, 0)
    return out.mean(axis=2) if grey else out


def _resize(values: NDArray[Any], width: int, height: int) -> NDArray[np.float64]:
    shrink = width < values.shape[1] or height < values.shape[0]
    how = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    out = cv2.resize(values.astype(np.float32), (width, height), interpolation=how)
    return np.asarray(out, np.float64).reshape(height, width, *values.shape[2:])


def super_resolve_onnx(image: Image, run: Any, manifest: Manifest, op: str) -> Image:
    """Enlarge the whole image by the model's scale (alpha: nearest neighbour)."""
    colour, alpha = split_alpha(image)
    values = to_float(colour)
    out = _image(run(_planes(op, values, manifest)), values.ndim == 2)
    enlarged = from_float(out, image.dtype)
    if alpha is not None:
        h, w = alpha.shape
        s = manifest.scale
        big = cv2.resize(alpha, (w * s, h * s), interpolation=cv2.INTER_NEAREST_EXACT)
        return join_alpha(enlarged, big)
    return enlarged


def replace_masked(
    image: Image, mask: Mask, run: Any, manifest: Manifest, op: str, context: int
) -> Image:
    """``image`` with the pixels of ``mask`` replaced by the model's output on the window
    around them (the mask's bounding box grown by ``context`` pixels; resized to the model's
    fixed input size when it has one). Outside the mask the output is the input."""
    if not mask.any():
        raise ParameterError(op, "mask", "marks no pixel of the image")
    colour, alpha = split_alpha(image)
    rows, cols = np.nonzero(mask)
    h, w = mask.shape
    y0, y1 = max(0, int(rows.min()) - context), min(h, int(rows.max()) + 1 + context)
    x0, x1 = max(0, int(cols.min()) - context), min(w, int(cols.max()) + 1 + context)
    window = to_float(colour[y0:y1, x0:x1])
    hole = mask[y0:y1, x0:x1]
    grey = window.ndim == 2
    side = manifest.input_size
    fed = window if not side else _resize(window, side, side)
    batch = _planes(op, fed, manifest)
    if manifest.task == "inpainting":
        fed_hole = hole.astype(np.float32)
        if side:
            # Area-resampled, any touched pixel counts as hole: a thin scratch stays a hole.
            fed_hole = (_resize(fed_hole, side, side) > 0).astype(np.float32)
        batch = np.concatenate([batch, fed_hole[None, None]], axis=1)
    out = _image(run(batch), grey)
    if side:
        out = _resize(out, x1 - x0, y1 - y0)
    filled = from_float(out, image.dtype)
    result = colour.copy()
    region = result[y0:y1, x0:x1]
    region[hole] = filled[hole]
    return join_alpha(result, alpha)


def _region_mask(op: str, image: Image, region: str | None, mask: str | None) -> Mask:
    if mask is not None:
        return decode_mask(op, "mask", mask, image.shape)
    if region is None:
        raise ParameterError(
            op, "region", "is missing: give a region or a mask", hint=REGION_GRAMMAR
        )
    found = regions_mask(image.shape, parse_regions(op, "region", region))
    if not found.any():
        raise ParameterError(op, "region", f"{region!r} covers no pixel of the image")
    return found


def _resolver(op: str) -> Any:
    def resolve(image: Image, p: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The region becomes the recorded mask: what is replaced, and marked inferred."""
        found = _region_mask(op, image, p.get("region"), p["mask"])
        given = "mask given" if p["mask"] is not None else "from region"
        return {**p, "mask": encode_mask(found)}, {"mask": mask_record(found), "source": given}

    return resolve


@operation(
    name="generative.onnx_super_resolution",
    version="1",
    category="super-resolution",
    swgit_class="advanced",
    summary="Super-resolution with an approved ONNX model the lab supplies. INFERRED.",
    description="""Enlarges the image with a super-resolution network supplied as an ONNX
    file (for example an ESRGAN or Real-ESRGAN export). The file's SHA-256 must be approved by
    the case's policy together with its declared manifest (channel order, value ranges,
    scale); the file is read once, hashed, run from those very bytes and copied into the case.
    What the network adds was learned from other images, not recorded by this camera: every
    output pixel is marked inferred, and the inferred-content map shows the difference from
    bicubic.""",
    references=(WANG_2018,),
    params=(_WEIGHTS, _MANIFEST),
    effect="inferred",
    output_dtype="same dtype as input; width and height multiplied by the manifest's scale",
    determinism=_DETERMINISM,
    lane=LANE,
)
def onnx_super_resolution(image: Image, *, weights: str, manifest: str | None = None) -> Image:
    """Super-resolution with an approved ONNX model.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    weights : str
        Path of the ONNX file; its SHA-256 must be approved by the case's policy.
    manifest : str or None
        The declared manifest (JSON); a run takes it from the policy.

    Returns
    -------
    ndarray
        ``scale`` times larger, same dtype; every pixel inferred.

    Notes
    -----
    The image, as floats on [0, 1], is mapped to the declared input range and channel order,
    padded (reflected) to the declared multiple, run through onnxruntime, cropped, mapped
    back from the output range and rounded to the input's dtype.

    References
    ----------
    Wang et al. (2018), ESRGAN, ECCV Workshops (the architecture of common exports).
    """
    from forensic.generative.sr import check_size

    op = "generative.onnx_super_resolution"
    run, declared = model(op, weights, manifest, "super-resolution")
    check_size(op, image, declared.scale)
    return super_resolve_onnx(image, run, declared, op)


@operation(
    name="generative.face_restoration",
    version="1",
    category="face-restoration",
    swgit_class="advanced",
    summary="Restore a face the examiner marks with an approved ONNX model. INFERRED.",
    description="""Runs a face-restoration network (for example a GFPGAN or CodeFormer ONNX
    export) on the region the examiner marks, a rectangle or polygon framing one face: the
    region's bounding box is resized to the model's input size, restored, resized back, and
    only the region's pixels are replaced. A restored face is the model's guess of a face
    consistent with the blurred one, drawn from faces it was trained on: it must never be
    used to identify anyone. Every replaced pixel is marked inferred; the rest of the image is
    left as it was. The file's SHA-256 and manifest must be approved by the case's policy.""",
    references=(WANG_2021,),
    params=(
        _WEIGHTS,
        Param(
            "region",
            "str",
            "The face to restore: rect(x, y, width, height) or polygon(...), in pixels.",
            text_format=REGION_GRAMMAR,
            validator=lambda op, value: validate_regions(op, value, "region"),
        ),
        _MANIFEST,
        _MASK_AUTO,
    ),
    effect="inferred",
    resolve=_resolver("generative.face_restoration"),
    determinism=_DETERMINISM,
    lane=LANE,
)
def face_restoration(
    image: Image,
    *,
    weights: str,
    region: str,
    manifest: str | None = None,
    mask: str | None = None,
) -> Image:
    """Face restoration inside a marked region.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    weights : str
        Path of the ONNX file; its SHA-256 must be approved by the case's policy.
    region : str
        The face: ``rect(x, y, w, h)`` or ``polygon(x1, y1, ...)``.
    manifest : str or None
        The declared manifest (JSON); a run takes it from the policy.
    mask : str or None
        The pixels replaced (the region's, when None), recorded.

    Returns
    -------
    ndarray
        Same shape and dtype; only the region's pixels differ, and they are invented.

    Notes
    -----
    The bounding box of the region is resized (area when shrinking, bicubic when enlarging)
    to the declared square input size, run, resized back, and pasted inside the region only.
    The region should frame the face as the model's training crops did (eyes in the upper
    half); no landmark alignment is done.

    References
    ----------
    Wang et al. (2021), doi:10.1109/CVPR46437.2021.00905.
    """
    op = "generative.face_restoration"
    run, declared = model(op, weights, manifest, "face-restoration")
    found = _region_mask(op, image, region, mask)
    return replace_masked(image, found, run, declared, op, context=0)


@operation(
    name="generative.inpaint_learned",
    version="1",
    category="inpaint",
    swgit_class="advanced",
    summary="Fill a marked region or mask with an approved ONNX inpainting model. INFERRED.",
    description="""Fills the pixels of a region or mask (for example the defect mask that
    detect_defects records) with an inpainting network supplied as an ONNX file (for example
    a LaMa export). The network sees the surroundings within `context` pixels of the mask, with
    the masked pixels blanked, and invents what might have been there from images it was
    trained on. Every filled pixel is marked inferred; the rest of the image is left as it was.
    The file's SHA-256 and manifest must be approved by the case's policy.""",
    references=(SUVOROV_2022, RONNEBERGER_2015),
    params=(
        _WEIGHTS,
        Param(
            "region",
            "str",
            "The region to fill: rect(x, y, width, height) or polygon(...), in pixels.",
            auto="none: the mask is given",
            text_format=REGION_GRAMMAR,
            validator=lambda op, value: validate_regions(op, value, "region"),
        ),
        Param("context", "int", "Surroundings the model sees around the mask.", "px", 0, 4096),
        _MANIFEST,
        _MASK_AUTO,
    ),
    effect="inferred",
    resolve=_resolver("generative.inpaint_learned"),
    determinism=_DETERMINISM,
    lane=LANE,
)
def inpaint_learned(
    image: Image,
    *,
    weights: str,
    region: str | None = None,
    context: int = 32,
    manifest: str | None = None,
    mask: str | None = None,
) -> Image:
    """Learned inpainting of a region or mask.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    weights : str
        Path of the ONNX file; its SHA-256 must be approved by the case's policy.
    region : str or None
        The region to fill (used when ``mask`` is None).
    context : int
        Pixels around the mask's bounding box that the model sees.
    manifest : str or None
        The declared manifest (JSON); a run takes it from the policy.
    mask : str or None
        The encoded mask to fill (the region's, when None), recorded.

    Returns
    -------
    ndarray
        Same shape and dtype; only the mask's pixels differ, and they are invented.

    Notes
    -----
    The window (the mask's bounding box grown by ``context``) is given to the model with the
    masked pixels set to black and the mask as a second input in the declared convention;
    when the model has a fixed input size the window is resized to it (and the mask with it,
    any touched pixel a hole) and the output resized back. Only masked pixels are replaced.

    References
    ----------
    Suvorov et al. (2022), doi:10.1109/WACV51458.2022.00323; Ronneberger et al. (2015),
    doi:10.1007/978-3-319-24574-4_28.
    """
    op = "generative.inpaint_learned"
    run, declared = model(op, weights, manifest, "inpainting")
    found = _region_mask(op, image, region, mask)
    return replace_masked(image, found, run, declared, op, context=context)


def fill_learned(image: Image, mask: Mask, weights: str, manifest: str | None) -> Image:
    """``generative.fill_defects`` with ``method = "learned"``."""
    op = "generative.fill_defects"
    if not mask.any():
        return image.copy()
    run, declared = model(op, weights, manifest, "inpainting")
    return replace_masked(image, mask, run, declared, op, context=32)
