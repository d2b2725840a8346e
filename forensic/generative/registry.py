"""The generative lane's name and the model facts its steps record.

Its operations register with the framework (`forensic.ops`) under this lane, so that they never
appear among the classical ones; `forensic.generative.registry` (the package's function) lists
them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from forensic.hashing import sha256_file
from forensic.ops.framework import Operation

LANE = "generative"
#: Operations that run an examiner's ONNX file (and ``fill_defects`` with method learned).
ONNX_OPERATIONS = (
    "generative.onnx_super_resolution",
    "generative.face_restoration",
    "generative.inpaint_learned",
)


def model_facts(op: Operation, params: dict[str, Any], device: Any = None) -> dict[str, Any]:
    """What produced a generative step's pixels, for its journal entry: the model, and for a
    torch network the device it ran on (``device``, a `forensic.generative.engine.Device`;
    default the active one), its determinism settings and the tiling."""
    import cv2

    if op.name == "generative.super_resolution":
        import torch

        from forensic.errors import ParameterError
        from forensic.generative.sr import MODELS, SCALES, weights_path, weights_sha256

        scale = int(params.get("scale", 2))
        if scale not in SCALES:
            raise ParameterError(op.name, "scale", f"is {scale}; allowed: 2 or 4")
        return {
            "name": f"forensic built-in super-resolution x{scale}",
            "architecture": "residual ESPCN on luma (forensic/generative/sr.py)",
            "weights_file": weights_path(scale).name,
            "weights_sha256": weights_sha256(scale),
            "model_card_sha256": sha256_file(MODELS / "MODEL_CARD.md")[0],
            "framework": f"torch {torch.__version__}",
            **_execution("residual_espcn", device),
        }
    if op.name == "generative.user_model":
        import torch

        from forensic.generative.sr import pinned_weights

        path = Path(str(params["weights"]))
        digest = pinned_weights(str(path))[1] if path.is_file() else None
        return {
            "name": f"user-supplied {params['architecture']} x{params['scale']}",
            "architecture": str(params["architecture"]),
            "weights_file": path.name,
            "weights_sha256": digest,
            "model_card_sha256": None,
            "framework": f"torch {torch.__version__}",
            **_execution(str(params["architecture"]), device),
        }
    if runs_onnx(op, params):
        return onnx_facts(op, params, device)
    facts: dict[str, Any] = {
        "name": op.name,
        "architecture": op.summary,
        "weights_sha256": None,
        "model_card_sha256": None,
        "framework": f"OpenCV {cv2.__version__}",
        "device": "cpu",
        "determinism": f"deterministic algorithm; OpenCV threads {cv2.getNumThreads()}",
    }
    return facts


def runs_onnx(op: Operation, params: dict[str, Any]) -> bool:
    """Whether the step runs an examiner's ONNX file."""
    return op.name in ONNX_OPERATIONS or (
        op.name == "generative.fill_defects" and params.get("method") == "learned"
    )


def check_device(op: Operation, params: dict[str, Any], device: Any) -> None:
    """Refuse, before any pixel is read, a step that cannot run on the run's ``device``: an
    ONNX step asked to run on CUDA where onnxruntime has no CUDA provider (`InputError`)."""
    if runs_onnx(op, params):
        from forensic.generative.onnxrun import placement

        placement(device)


def device_record(device: Any, model: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The label and description (``device_info``) of the device a step whose recorded model
    facts are ``model`` runs on now, on ``device``: what a replay compares with the record."""
    if model.get("format") == "onnx":
        from forensic.generative.onnxrun import device_facts

        facts = device_facts(device)
        return str(facts["device"]), dict(facts["device_info"])
    return str(device.label), dict(device.record())


def onnx_facts(op: Operation, params: dict[str, Any], device: Any = None) -> dict[str, Any]:
    """An ONNX step's model: the file's hash (read once), where it runs on ``device`` (default
    the active one; `forensic.generative.onnxrun.device_facts`), and once the step carries its
    manifest (from the policy), the manifest, the graph's inputs and outputs and the session.
    The graph is parsed only then: a file is hashed and approved before onnxruntime reads it."""
    import onnxruntime  # type: ignore[import-untyped]

    from forensic.errors import ParameterError
    from forensic.generative.onnxrun import (
        SESSION_SETTINGS,
        describe,
        device_facts,
        manifest_from_param,
        open_session,
        placement,
    )
    from forensic.generative.sr import pinned_weights

    if not params.get("weights"):
        raise ParameterError(op.name, "weights", "is missing: method learned runs an ONNX model")
    path = Path(str(params["weights"]))
    data, digest = pinned_weights(str(path), op=op.name) if path.is_file() else (b"", None)
    facts: dict[str, Any] = {
        "name": f"user-supplied ONNX model ({path.name})",
        "architecture": "ONNX graph supplied by the lab",
        "format": "onnx",
        "weights_file": path.name,
        "weights_sha256": digest,
        "model_card_sha256": None,
        "manifest": None,
        "framework": f"onnxruntime {onnxruntime.__version__}",
        **device_facts(device),
        "session": SESSION_SETTINGS,
    }
    if params.get("manifest") is not None and digest is not None:
        manifest = manifest_from_param(op.name, params["manifest"])
        facts["manifest"] = manifest.as_dict()
        if manifest.name:
            facts["name"] = manifest.name
        facts["architecture"] = f"ONNX graph supplied by the lab ({manifest.task})"
        kind = placement(device, strict=False).kind
        facts["graph"] = describe(open_session(op.name, data, kind))
    return facts


def _execution(architecture: str, device: Any) -> dict[str, Any]:
    """The device fields of a torch network's model facts (docs/spec.md, ``model``)."""
    from forensic.generative.sr import device_for, tiling_for

    used = device_for(architecture, device)
    tiling = tiling_for(architecture)
    return {
        "device": used.label,
        "device_info": used.record(),
        "determinism": used.summary(),
        "tiling": {"tile": tiling.tile, "overlap": tiling.overlap, "blend": tiling.blend},
    }
