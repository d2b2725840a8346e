"""Maps that show what a generative step invented, and how firmly.

For every generative output, three maps (stored as 16-bit greyscale PNGs, value = fraction of
full scale x 65535, and journaled with the step):

* **inferred content**: what differs from the classical baseline. For inpainting the baseline
  is "nothing known", so the map is the filled region itself (full scale inside, 0 outside).
* **uncertainty**: the per-pixel standard deviation of the step's output over several runs on
  inputs perturbed by a sub-pixel shift (undone on the output) and Gaussian noise at the
  image's estimated noise level (at least half a grey level), each with a recorded seed.
  Where the invention hinges on where exactly an edge fell, or on the noise, it is unstable.
  It is 0 outside the invented region.
* **data consistency**: the output pushed back through the degradation model and compared
  with the measured input. For inpainting the model is "the region is missing": outside the
  region the output must equal the input, so the map is ``|output - input|`` there (0 where
  the step kept what the camera recorded) and 0 inside.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from forensic.ops.framework import Operation
from forensic.ops.measure import estimate_noise_sigma
from forensic.ops.pixels import full_scale, split_alpha, to_float

Image = NDArray[Any]
#: Reruns for the uncertainty map when a step does not say (its ``uncertainty_runs``
#: parameter, recorded with the step). Each is one more inference: the maps multiply the
#: step's inference time by about (1 + runs).
UNCERTAINTY_RUNS = 8


def uncertainty_runs(params: dict[str, Any]) -> int:
    """How many reruns a step's uncertainty map takes (its parameter, or the default)."""
    return int(params.get("uncertainty_runs", UNCERTAINTY_RUNS))


class _Spread:
    """Per-pixel standard deviation (population) of the reruns, accumulated one rerun at a time
    (Welford's method), so memory stays two images whatever the number of reruns."""

    def __init__(self) -> None:
        self.count = 0
        self.mean: NDArray[np.float64] | None = None
        self.m2: NDArray[np.float64] | None = None

    def add(self, values: NDArray[np.float64]) -> None:
        self.count += 1
        if self.mean is None or self.m2 is None:
            self.mean, self.m2 = values.astype(np.float64), np.zeros(values.shape, np.float64)
            return
        delta = values - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (values - self.mean)

    def std(self) -> NDArray[np.float64]:
        assert self.m2 is not None
        return np.asarray(np.sqrt(self.m2 / self.count), np.float64)


def _cost(runs: int) -> str:
    return (
        f"{runs} reruns of the step on perturbed inputs: the maps take about {runs} times "
        f"the step's own computing time, so the step takes about {1 + runs} times as long as "
        "its output alone"
    )


def _grey(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """BT.601 luma of a colour image (grey images as they are)."""
    return values if values.ndim == 2 else np.asarray(values[..., :3] @ _BT601, np.float64)


_BT601 = np.array([0.299, 0.587, 0.114])


def _to16(fraction: NDArray[np.float64]) -> NDArray[np.uint16]:
    return np.rint(np.clip(fraction, 0.0, 1.0) * 65535).astype(np.uint16)


def _shift(values: NDArray[np.float64], dx: float, dy: float) -> NDArray[np.float64]:
    """Translate by a sub-pixel amount (bilinear, borders replicated)."""
    m = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])
    h, w = values.shape[:2]
    out = cv2.warpAffine(
        values.astype(np.float32), m, (w, h), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )  # fmt: skip
    return np.asarray(out, np.float64).reshape(values.shape)


def region_mask(shape: tuple[int, ...], params: dict[str, Any]) -> NDArray[np.bool_]:
    """The pixels an inpainting step filled: its rectangle, or its recorded defect mask."""
    if isinstance(params.get("mask"), str):
        from forensic.ops.defects import decode_mask

        return decode_mask("inpaint", "mask", params["mask"], shape)
    mask = np.zeros(shape[:2], bool)
    x, y, w, h = (int(params[k]) for k in ("x", "y", "width", "height"))
    mask[y : y + h, x : x + w] = True
    return mask


def inferred_maps(
    op: Operation, before: Image, after: Image, params: dict[str, Any], *, seed: int
) -> tuple[dict[str, NDArray[np.uint16]], dict[str, Any]]:
    """The three maps for one generative step on one image, and what produced them."""
    if before.shape[:2] != after.shape[:2]:  # an enlargement: super-resolution, any model
        return _super_resolution_maps(op, before, after, params, seed=seed)
    mask = region_mask(before.shape, params)
    content = _to16(mask.astype(np.float64))
    top = float(full_scale(before.dtype))
    sigma = max(estimate_noise_sigma(before), 0.5 / top)
    colour, _ = split_alpha(before)
    runs = _Spread()
    seeds = [seed + k for k in range(uncertainty_runs(params))]
    shifts = []
    for s in seeds:
        rng = np.random.default_rng(s)
        dx, dy = (float(v) for v in rng.uniform(-0.5, 0.5, size=2))
        shifts.append([round(dx, 6), round(dy, 6)])
        moved = _shift(to_float(colour), dx, dy)
        noisy = np.clip(moved + rng.normal(0.0, sigma, colour.shape), 0.0, 1.0)
        perturbed = np.rint(noisy * top).astype(before.dtype)
        if before.ndim == 3 and before.shape[2] == 4:
            perturbed = np.concatenate([perturbed, before[..., 3:]], axis=2)
        result = _grey(to_float(split_alpha(op.impl(perturbed, **params))[0]))
        runs.add(_shift(result, -dx, -dy))
    # Only the invented pixels are uncertain by the step's doing; outside the region the
    # spread would show the shift's own interpolation, so it is set to 0 there.
    spread = np.where(mask, runs.std(), 0.0)
    out_grey = _grey(to_float(split_alpha(after)[0]))
    in_grey = _grey(to_float(colour))
    consistency = np.where(mask, 0.0, np.abs(out_grey - in_grey))
    maps = {
        "inferred_content": content,
        "uncertainty": _to16(spread),
        "consistency": _to16(consistency),
    }
    meta = {
        "encoding": "16-bit grey PNG; value / 65535 = fraction of full scale",
        "baseline": "inpainting: the filled region or mask (nothing known there)",
        "uncertainty": {
            "runs": len(seeds),
            "cost": _cost(len(seeds)),
            "seeds": seeds,
            "perturbation": "sub-pixel shift (bilinear, dx and dy uniform in [-0.5, 0.5] px, "
            "undone on the output) and additive Gaussian noise, then rounding to the input's "
            "levels",
            "shifts_px": shifts,
            "noise_sigma": round(sigma, 6),
        },
        "consistency_model": "region missing: output must equal input outside it",
        "inferred_fraction": round(float(mask.mean()), 6),
        "summary": {
            "uncertainty_mean_in_region": round(float(spread[mask].mean()), 6)
            if mask.any()
            else 0.0,
            "consistency_max_outside": round(float(consistency.max()), 6),
        },
    }
    return maps, meta


def _super_resolution_maps(
    op: Operation, before: Image, after: Image, params: dict[str, Any], *, seed: int
) -> tuple[dict[str, NDArray[np.uint16]], dict[str, Any]]:
    """Super-resolution: baseline bicubic; degradation model area averaging by the scale."""
    scale = after.shape[0] // before.shape[0]
    top = float(full_scale(before.dtype))
    colour, _ = split_alpha(before)
    low = _grey(to_float(colour))
    high = _grey(to_float(split_alpha(after)[0]))
    h, w = low.shape
    bicubic = cv2.resize(
        low.astype(np.float32), (w * scale, h * scale), interpolation=cv2.INTER_CUBIC
    )
    content = np.abs(high - np.asarray(bicubic, np.float64))
    sigma = max(estimate_noise_sigma(before), 0.5 / top)
    seeds = [seed + k for k in range(uncertainty_runs(params))]
    runs, shifts = _Spread(), []
    for s in seeds:
        rng = np.random.default_rng(s)
        dx, dy = (float(v) for v in rng.uniform(-0.5, 0.5, size=2))
        shifts.append([round(dx, 6), round(dy, 6)])
        noisy = np.clip(
            _shift(to_float(colour), dx, dy) + rng.normal(0.0, sigma, colour.shape), 0, 1
        )
        perturbed = np.rint(noisy * top).astype(before.dtype)
        result = _grey(to_float(split_alpha(op.impl(perturbed, **params))[0]))
        # What the model adds over bicubic on this perturbed input: its invention alone, so
        # that the spread does not simply measure how the perturbation moves the picture.
        lo = _grey(to_float(split_alpha(perturbed)[0]))
        base = cv2.resize(
            lo.astype(np.float32), (w * scale, h * scale), interpolation=cv2.INTER_CUBIC
        )
        runs.add(_shift(result - np.asarray(base, np.float64), -dx * scale, -dy * scale))
    spread = runs.std()
    pushed = cv2.resize(high.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    residual = np.abs(np.asarray(pushed, np.float64) - low)
    consistency = np.repeat(np.repeat(residual, scale, axis=0), scale, axis=1)
    maps = {
        "inferred_content": _to16(content),
        "uncertainty": _to16(spread),
        "consistency": _to16(consistency),
    }
    meta = {
        "encoding": "16-bit grey PNG; value / 65535 = fraction of full scale (luma)",
        "baseline": "bicubic enlargement (OpenCV INTER_CUBIC); map = |output - bicubic|",
        "uncertainty": {
            "runs": len(seeds),
            "cost": _cost(len(seeds)),
            "seeds": seeds,
            "perturbation": "sub-pixel shift of the input (undone, times the scale, on the "
            "output) and additive Gaussian noise at the estimated noise level; the spread is "
            "that of the model's addition to bicubic (output - bicubic of the same input)",
            "shifts_px": shifts,
            "noise_sigma": round(sigma, 6),
        },
        "consistency_model": "area averaging by the scale (INTER_AREA), compared with the input; "
        "each input pixel's residual is shown on its scale x scale output block",
        "inferred_fraction": 1.0,
        "summary": {
            "content_mean": round(float(content.mean()), 6),
            "uncertainty_mean": round(float(spread.mean()), 6),
            "consistency_mean": round(float(residual.mean()), 6),
        },
    }
    return maps, meta
