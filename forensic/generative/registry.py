"""The generative lane's name and the model facts its steps record.

Its operations register with the framework (`forensic.ops`) under this lane, so that they never
appear among the classical ones; `forensic.generative.registry` (the package's function) lists
them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from forensic.hashing import sha256_file
from forensic.ops.framework import Operation

LANE = "generative"


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
