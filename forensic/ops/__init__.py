"""The operation framework, below both lanes.

`framework` declares what an operation is (`Operation`, `Param`, `Reference`, the
`operation` decorator, validation of images and parameters, per-lane tables); `pixels` holds
the pixel plumbing every operation shares (scaling, rounding, alpha, luma). The classical lane
and the quarantined generative lane both register with it; neither imports the other.
"""

from __future__ import annotations

from forensic.ops.framework import (
    EFFECTS,
    Effect,
    FrameResult,
    Operation,
    OpResult,
    Param,
    Reference,
    box_params,
    check_image,
    operation,
    registered,
)

__all__ = [
    "EFFECTS",
    "Effect",
    "FrameResult",
    "OpResult",
    "Operation",
    "Param",
    "Reference",
    "box_params",
    "check_image",
    "operation",
    "registered",
]
