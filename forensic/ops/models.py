"""The declared manifest of an examiner's model file: what the model does and how it is fed.

A model file (ONNX) says nothing reliable about its own conventions: whether it wants RGB or
BGR, values in [0, 1] or [-1, 1], where a hole is 1 or 0 in its mask. A lab declares them once
when it approves the file (``forensic model approve FILE --task ...`` prints the policy entry),
and the policy holds the declaration next to the file's SHA-256, so that the approval covers
how the model is used as well as which bytes run. Each step records the manifest with the hash.

This module is plain data and validation: the policy (which may not import the generative
lane) and the lane (which runs the model) both read it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from forensic.errors import ForensicError

TASKS = ("super-resolution", "face-restoration", "inpainting")
LAYOUTS = ("NCHW",)
CHANNEL_ORDERS = ("RGB", "BGR", "grey")
MASK_CONVENTIONS = ("hole=1", "hole=0")
#: Keys of a manifest and what each takes, for messages and the model card.
MANIFEST_KEYS = {
    "task": f"one of {', '.join(TASKS)}",
    "layout": "NCHW (batch, channels, height, width), the only layout supported",
    "channels": f"channel order of the image input and output: {', '.join(CHANNEL_ORDERS)}",
    "input_range": "[low, high]: the values the model reads for black and full scale",
    "output_range": "[low, high]: the values it writes for black and full scale",
    "scale": "output size / input size (1 for face restoration and inpainting)",
    "input_size": "fixed square input side in pixels (e.g. 512), or 0 for any size",
    "pad_multiple": "height and width are padded (reflected) to a multiple of this (1: none)",
    "mask": "inpainting only: the second input's convention, hole=1 or hole=0",
    "name": "free text naming the model (e.g. 'LaMa, Carve ONNX export')",
}


@dataclass(frozen=True)
class Manifest:
    task: str
    channels: str
    input_range: tuple[float, float]
    output_range: tuple[float, float]
    scale: int
    input_size: int
    pad_multiple: int
    mask: str | None
    name: str
    layout: str = "NCHW"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["input_range"] = list(self.input_range)
        data["output_range"] = list(self.output_range)
        return dict(sorted(data.items()))

    def canonical(self) -> str:
        """The manifest as one canonical JSON text (sorted keys, no spaces): what a step
        records as its ``manifest`` parameter, equal for equal manifests."""
        return json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))

    def toml(self) -> str:
        """The manifest as a TOML inline table, for a policy entry."""
        parts = []
        for key, value in self.as_dict().items():
            if value is None:
                continue
            if isinstance(value, str):
                parts.append(f"{key} = {json.dumps(value)}")
            elif isinstance(value, list):
                parts.append(f"{key} = [{', '.join(repr(float(v)) for v in value)}]")
            else:
                parts.append(f"{key} = {value}")
        return "{ " + ", ".join(parts) + " }"


def _range(value: Any, key: str, fail: Callable[[str], ForensicError]) -> tuple[float, float]:
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        or not all(math.isfinite(float(v)) for v in value)
        or float(value[0]) == float(value[1])
    ):
        raise fail(f"{key} must be [low, high], two different finite numbers, not {value!r}")
    return float(value[0]), float(value[1])


def _int(value: Any, key: str, low: int, high: int, fail: Callable[[str], ForensicError]) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise fail(f"{key} must be a whole number from {low} to {high}, not {value!r}")
    return value


def parse_manifest(data: Any, fail: Callable[[str], ForensicError]) -> Manifest:
    """A `Manifest` from a mapping (a policy's inline table, a step's recorded JSON). Every
    problem is ``fail(message)``: unknown or missing keys, wrong values, a mask convention
    on a task without a mask (or none for inpainting)."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            raise fail("is not a JSON object") from None
    if not isinstance(data, Mapping):
        raise fail(f"must be a table of {', '.join(MANIFEST_KEYS)}")
    unknown = sorted(set(data) - set(MANIFEST_KEYS))
    if unknown:
        raise fail(f"has unknown keys {', '.join(unknown)}; allowed: {', '.join(MANIFEST_KEYS)}")
    missing = [k for k in ("task", "channels", "input_range", "output_range") if k not in data]
    if missing:
        raise fail(f"lacks {', '.join(missing)}")
    task = data["task"]
    if task not in TASKS:
        raise fail(f"task is {task!r}; allowed: {', '.join(TASKS)}")
    layout = data.get("layout", "NCHW")
    if layout not in LAYOUTS:
        raise fail(f"layout is {layout!r}; supported: {', '.join(LAYOUTS)}")
    channels = data["channels"]
    if channels not in CHANNEL_ORDERS:
        raise fail(f"channels is {channels!r}; allowed: {', '.join(CHANNEL_ORDERS)}")
    scale = _int(data.get("scale", 1), "scale", 1, 8, fail)
    if task != "super-resolution" and scale != 1:
        raise fail(f"scale is {scale}; only super-resolution changes the size ({task}: 1)")
    mask = data.get("mask")
    if task == "inpainting" and mask not in MASK_CONVENTIONS:
        raise fail(f"mask is {mask!r}; an inpainting model needs {' or '.join(MASK_CONVENTIONS)}")
    if task != "inpainting" and mask is not None:
        raise fail(f"mask is given, but a {task} model takes no mask")
    name = data.get("name", "")
    if not isinstance(name, str) or len(name) > 200:
        raise fail("name must be a text of at most 200 characters")
    return Manifest(
        task=task,
        layout=layout,
        channels=channels,
        input_range=_range(data["input_range"], "input_range", fail),
        output_range=_range(data["output_range"], "output_range", fail),
        scale=scale,
        input_size=_int(data.get("input_size", 0), "input_size", 0, 8192, fail),
        pad_multiple=_int(data.get("pad_multiple", 1), "pad_multiple", 1, 1024, fail),
        mask=mask,
        name=name,
    )


def validate_manifest(op: str, value: Any) -> str:
    """Registry validator for a step's ``manifest`` parameter: its canonical JSON text."""
    from forensic.errors import ParameterError

    def fail(message: str) -> ParameterError:
        return ParameterError(op, "manifest", message)

    return parse_manifest(value, fail).canonical()
