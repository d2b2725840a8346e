"""Filling the defects of a damaged photograph: every filled pixel is inferred.

``generative.fill_defects`` fills the pixels of a defect mask (dust, scratches, tears,
stains) from their surroundings with OpenCV's Telea or Navier-Stokes inpainting, or with a
learned inpainting model the lab supplies as an ONNX file (``method = "learned"``, approved by
SHA-256 and manifest in the policy; `forensic.generative.learned`). The mask is
the one the classical analysis step ``detect_defects`` records for the same parameters on the
same image (`forensic.ops.defects.analyse`, shared by both lanes), or one handed over as
``mask`` (an encoded mask, e.g. copied from that step's record). The resolved mask is
recorded in the step's parameters, so a replay fills exactly the same pixels, and the
provenance map marks exactly those pixels inferred.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from forensic.errors import ParameterError
from forensic.generative.inpaint import BERTALMIO_2001, TELEA_2004
from forensic.generative.registry import LANE
from forensic.ops.defects import DETECTION_PARAMS, analyse, decode_mask, encode_mask, mask_record
from forensic.ops.framework import Param, operation
from forensic.ops.models import validate_manifest
from forensic.ops.pixels import Image, join_alpha, split_alpha

_OP = "generative.fill_defects"
_FLAGS = {"telea": cv2.INPAINT_TELEA, "navier_stokes": cv2.INPAINT_NS}
_METHODS = (*_FLAGS, "learned")


def _validate_mask(op: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ParameterError(op, "mask", f"is {value!r}; allowed: an encoded mask (HxW:base64)")
    decode_mask(op, "mask", value)
    return value


def _resolve(image: Image, p: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Find the mask (unless given) and record it in the parameters."""
    if p["mask"] is None:
        mask, record = analyse(image, p, _OP)
        return {**p, "mask": encode_mask(mask)}, {"mask": mask_record(mask), "detection": record}
    mask = decode_mask(_OP, "mask", p["mask"], image.shape)
    return p, {"mask": mask_record(mask), "detection": "mask given"}


def fill_mask(image: Image, mask: np.ndarray[Any, Any], radius: float, method: str) -> Image:
    """``image`` with the pixels of ``mask`` inpainted (OpenCV; 16-bit colour per channel)."""
    colour, alpha = split_alpha(image)
    hole = np.where(mask, 255, 0).astype(np.uint8)
    flag = _FLAGS[method]
    if not mask.any():
        return image.copy()
    if colour.ndim == 3 and colour.dtype != np.uint8:
        # OpenCV inpaints 16-bit images one channel at a time only.
        planes = [
            cv2.inpaint(np.ascontiguousarray(colour[..., c]), hole, radius, flag)
            for c in range(colour.shape[2])
        ]
        filled = np.stack(planes, axis=2)
    else:
        filled = cv2.inpaint(np.ascontiguousarray(colour), hole, radius, flag)
    out = np.asarray(filled, image.dtype)
    # Outside the mask the output is the input, bit for bit (what the camera recorded).
    out = np.where(mask if out.ndim == 2 else mask[..., None], out, colour)
    return join_alpha(np.asarray(out, image.dtype), alpha)


@operation(
    name=_OP,
    version="1",
    category="inpaint",
    swgit_class="advanced",
    summary="Fill the dust, scratches, tears and stains of a damaged print. INFERRED.",
    description="""Fills the pixels of a defect mask from their surroundings, by fast
    marching (Telea), by continuing the image's level lines (Navier-Stokes), or with an
    inpainting network the lab supplies as an ONNX file and the policy approves (learned),
    which invents texture learned from other images. The mask is
    found exactly as the analysis step detect_defects finds it with the same parameters
    (including the examiner's added and removed regions), or is given as an encoded mask;
    the mask actually filled is recorded with the step. Every filled pixel is invented from
    its neighbours: nothing there was recorded by the camera, and the provenance map marks
    exactly those pixels inferred. Pixels outside the mask are left as they were. Use it to
    make a print readable, never to identify anything in the filled areas.""",
    references=(TELEA_2004, BERTALMIO_2001),
    params=(
        *DETECTION_PARAMS,
        Param(
            "method",
            "choice",
            "Inpainting: telea (fast marching), navier_stokes, or learned (an approved ONNX "
            "inpainting model, given as weights).",
            choices=_METHODS,
        ),
        Param(
            "radius", "float", "Neighbourhood considered around each filled pixel.", "px", 1.0, 50.0
        ),
        Param(
            "mask",
            "str",
            "The mask to fill, encoded (as recorded by detect_defects: details.mask.encoded).",
            auto="detected with the detection parameters, as detect_defects does, and recorded",
            text_format="HxW:base64 (forensic.ops.defects.encode_mask)",
            validator=_validate_mask,
        ),
        Param(
            "weights",
            "str",
            "Method learned: path of the ONNX inpainting model (its SHA-256 approved).",
            auto="none: methods telea and navier_stokes use no model",
        ),
        Param(
            "manifest",
            "str",
            "Method learned: the model's declared manifest.",
            auto="the manifest of the policy entry approving the model's SHA-256, recorded",
            text_format="JSON object (forensic.ops.models.MANIFEST_KEYS)",
            validator=validate_manifest,
        ),
    ),
    effect="inferred",
    resolve=_resolve,
    determinism="""Deterministic (no randomness; OpenCV inpainting and the detectors of
    forensic.ops.defects; method learned: onnxruntime with one thread and deterministic
    compute on the run's device); bit-identical for the same input, model bytes, pinned
    library builds and device.""",
    lane=LANE,
)
def fill_defects(
    image: Image,
    *,
    kinds: str = "dust,scratches,tears,stains",
    sensitivity: float = 1.0,
    max_spot_area: int = 150,
    min_length: int = 40,
    min_stain_area: int = 400,
    add: str | None = None,
    remove: str | None = None,
    method: str = "telea",
    radius: float = 5.0,
    mask: str | None = None,
    weights: str | None = None,
    manifest: str | None = None,
) -> Image:
    """Inpaint a defect mask (Telea, Navier-Stokes, or an approved ONNX model).

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    kinds, sensitivity, max_spot_area, min_length, min_stain_area, add, remove
        The detection, as for ``detect_defects`` (used when ``mask`` is None).
    method : {'telea', 'navier_stokes', 'learned'}
        The inpainting algorithm.
    radius : float
        Radius of the neighbourhood used for each filled pixel.
    mask : str or None
        The encoded mask to fill; None: detect it.
    weights : str or None
        Method learned: the ONNX inpainting model (approved by SHA-256 in the policy).
    manifest : str or None
        Method learned: its declared manifest (JSON); a run takes it from the policy.

    Returns
    -------
    ndarray
        Same shape and dtype; only the mask's pixels differ, and they are invented.

    Notes
    -----
    Telea: pixels filled in order of their fast-marching distance from the known area, each
    a weighted average of known neighbours extrapolated along their gradient. Navier-Stokes:
    the image smoothness transported along isophotes into the hole. Both are OpenCV's
    ``cv2.inpaint``. Learned: the model of `forensic.generative.learned.inpaint_learned`
    on the mask's surroundings (32 px), only masked pixels replaced. The provenance map marks
    the mask inferred (``forensic.provenance``).

    References
    ----------
    Telea (2004), doi:10.1080/10867651.2004.10487596; Bertalmio, Bertozzi & Sapiro (2001),
    doi:10.1109/CVPR.2001.990497.
    """
    params = {
        "kinds": kinds,
        "sensitivity": sensitivity,
        "max_spot_area": max_spot_area,
        "min_length": min_length,
        "min_stain_area": min_stain_area,
        "add": add,
        "remove": remove,
        "mask": mask,
    }
    resolved, _ = _resolve(image, params)
    hole = decode_mask(_OP, "mask", resolved["mask"], image.shape)
    if method == "learned":
        from forensic.generative.learned import fill_learned

        if weights is None:
            raise ParameterError(
                _OP, "weights", "is missing: method learned needs an approved ONNX model"
            )
        return fill_learned(image, hole, weights, manifest)
    if weights is not None:
        raise ParameterError(_OP, "weights", f"is given, but method {method} uses no model")
    return fill_mask(image, hole, radius, method)
