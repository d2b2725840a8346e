"""The generative lane's own operation registry (same metadata as the classical one)."""

from __future__ import annotations

from typing import Any

from forensic.classical.registry import Operation
from forensic.errors import InputError

LANE = "generative"
PREFIX = "generative."
_GENERATIVE: dict[str, Operation] = {}


def model_facts(op: Operation) -> dict[str, Any]:
    """What produced a generative step's pixels, for its journal entry."""
    import cv2

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


def registry() -> dict[str, Operation]:
    import forensic.generative.inpaint  # noqa: F401  (registers the operations)

    return dict(sorted(_GENERATIVE.items()))


def get(name: str) -> Operation:
    ops = registry()
    if name not in ops:
        raise InputError(
            f"no generative operation named {name!r}",
            hint=f"generative operations: {', '.join(ops)}",
        )
    return ops[name]
