"""Temporal consistency of a generative step on video: the flicker factor.

A generative step runs on each frame of a video on its own, so what it invents may differ from
one frame to the next although the scene barely changed: flicker. This module measures it as
the *warping error* between consecutive outputs (Lai et al. 2018), divided by the same figure
for the step's inputs on the same grid. It is measurement, not generation: it uses OpenCV's
optical flow and numpy only and never loads the generative lane or torch.

For frames ``t-1, t`` of one step (inputs ``I``, outputs ``O``, both on the output grid: the
inputs are enlarged bicubically to the output's size when the step resamples):

1. backward flow ``f`` from ``g(I_t)`` to ``g(I_{t-1})`` and forward flow ``b`` from
   ``g(I_{t-1})`` to ``g(I_t)``, with ``g`` the 8-bit luma (BT.601), by OpenCV's DIS optical
   flow (Kroeger et al. 2016, preset *medium*); the flow is computed on the inputs, so that what
   the step invented cannot steer its own measure;
2. the validity mask ``M(p) = 1`` where ``p + f(p)`` lies inside the frame and the flows agree
   forwards and backwards (Sundaram et al. 2010; Ruder et al. 2016):
   ``|f(p) + b(p + f(p))|^2 <= 0.01 (|f(p)|^2 + |b(p + f(p))|^2) + 0.5``;
3. ``W(X)(p) = X(p + f(p))`` (bilinear, `cv2.remap`), and the pair's warping error
   ``E(X) = sum_p M(p) * mean_c (X_t(p, c) - W(X_{t-1})(p, c))^2 / sum_p M(p)``, with samples
   scaled to [0, 1] by their dtype's full scale;
4. over the ``N - 1`` pairs of a step's ``N`` frames, ``E_out = mean_t E(O)``,
   ``E_in = mean_t E(I)``, and the **flicker factor** ``(E_out + eps) / (E_in + eps)`` with
   ``eps = 1e-8``, so that two still, identical inputs with identical outputs give 1.

A factor near 1 means the outputs change from frame to frame as much as the inputs do; above 1,
the step adds change the scene does not have. docs/spec.md (3.2) gives the record's fields.

Notes
-----
The flow is estimated on the inputs, not the outputs, as Lai et al. do with their reference
flow: a flickering output would otherwise bend the flow to explain its own flicker. The same
flow and mask serve both figures, so the ratio compares like with like. DIS is run on a zero
initial flow; its result does not depend on OpenCV's thread count (tested with 1 and 2).

References
----------
Lai, W.-S., Huang, J.-B., Wang, O., Shechtman, E., Yumer, E. and Yang, M.-H. (2018). Learning
blind video temporal consistency. ECCV 2018, LNCS 11219, 179-195.
DOI 10.1007/978-3-030-01267-0_11.

Ruder, M., Dosovitskiy, A. and Brox, T. (2016). Artistic style transfer for videos. GCPR 2016,
LNCS 9796, 26-36 (DOI not confirmed here): the forward-backward occlusion test as used.

Sundaram, N., Brox, T. and Keutzer, K. (2010). Dense point trajectories by GPU-accelerated large
displacement optical flow. ECCV 2010, LNCS 6311, 438-451 (DOI not confirmed here).

Kroeger, T., Timofte, R., Dai, D. and Van Gool, L. (2016). Fast optical flow using dense inverse
search. ECCV 2016, LNCS 9908, 471-488 (DOI not confirmed here): OpenCV's DIS flow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from forensic.errors import PolicyError

Image = Any
#: Added to both warping errors so that identical still frames give a factor of 1, not 0/0.
EPSILON = 1e-8
#: The forward-backward test of Sundaram et al. (2010), as Ruder et al. (2016) use it.
FB_RELATIVE = 0.01
FB_ABSOLUTE = 0.5
METHOD = (
    "warping error of consecutive outputs over that of the inputs on the output grid "
    "(Lai et al. 2018); OpenCV DIS optical flow (preset medium) on the inputs' 8-bit luma, "
    "forward-backward validity mask (Sundaram et al. 2010)"
)

Flow = NDArray[np.float32]


def _colour(image: Image) -> NDArray[np.float64]:
    """The image's colour samples scaled to [0, 1], as H x W x C (alpha dropped)."""
    arr = np.asarray(image)
    full = float(np.iinfo(arr.dtype).max) if arr.dtype.kind in "ui" else 1.0
    if arr.ndim == 2:
        arr = arr[..., None]
    elif arr.shape[2] in (2, 4):
        arr = arr[..., :-1]
    return arr.astype(np.float64) / full


def _luma8(colour: NDArray[np.float64]) -> NDArray[np.uint8]:
    if colour.shape[2] >= 3:
        luma = 0.299 * colour[..., 0] + 0.587 * colour[..., 1] + 0.114 * colour[..., 2]
    else:
        luma = colour[..., 0]
    return np.asarray(np.clip(np.rint(luma * 255.0), 0, 255), np.uint8)


def _to_grid(colour: NDArray[np.float64], shape: tuple[int, int]) -> NDArray[np.float64]:
    if colour.shape[:2] == shape:
        return colour
    planes = [
        cv2.resize(colour[..., c], (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
        for c in range(colour.shape[2])
    ]
    return np.clip(np.stack(planes, axis=2), 0.0, 1.0)


def _flow(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> Flow:
    """Flow ``f`` with ``a(p) ~ b(p + f(p))``."""
    dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flow = np.zeros((*a.shape, 2), np.float32)
    return np.asarray(dis.calc(a, b, flow), np.float32)


def _sample(x: NDArray[Any], mapx: Flow, mapy: Flow) -> NDArray[Any]:
    out = cv2.remap(
        np.ascontiguousarray(x), mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return np.asarray(out).reshape(x.shape[:2] + x.shape[2:])


def _sq(v: Flow) -> NDArray[np.float64]:
    return np.asarray(v[..., 0], np.float64) ** 2 + np.asarray(v[..., 1], np.float64) ** 2


def pair_errors(
    prev_in: NDArray[np.float64],
    cur_in: NDArray[np.float64],
    prev_out: NDArray[np.float64],
    cur_out: NDArray[np.float64],
) -> tuple[float, float, float]:
    """Warping errors ``(E(O), E(I), valid share)`` of one pair of frames already on the
    output grid and scaled to [0, 1] (module docstring, steps 1-3)."""
    g_prev, g_cur = _luma8(prev_in), _luma8(cur_in)
    back = _flow(g_cur, g_prev)
    fwd = _flow(g_prev, g_cur)
    h, w = g_cur.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    mapx, mapy = xs + back[..., 0], ys + back[..., 1]
    fwd_at = _sample(fwd, mapx, mapy)
    round_trip = back + fwd_at
    consistent = _sq(round_trip) <= FB_RELATIVE * (_sq(back) + _sq(fwd_at)) + FB_ABSOLUTE
    inside = (mapx >= 0) & (mapx <= w - 1) & (mapy >= 0) & (mapy <= h - 1)
    mask = consistent & inside
    valid = int(mask.sum())
    if valid == 0:
        return 0.0, 0.0, 0.0

    def error(prev: NDArray[np.float64], cur: NDArray[np.float64]) -> float:
        warped = _sample(prev.astype(np.float32), mapx, mapy).astype(np.float64)
        diff = ((cur - warped) ** 2).mean(axis=2)
        return float(diff[mask].sum() / valid)

    return error(prev_out, cur_out), error(prev_in, cur_in), valid / float(h * w)


@dataclass
class FlickerMeter:
    """Accumulates the warping errors of one step's consecutive frames as they stream (it
    holds one previous input and output)."""

    pairs_out: list[float] = field(default_factory=list)
    pairs_in: list[float] = field(default_factory=list)
    valid: list[float] = field(default_factory=list)
    frames: int = 0
    _prev: tuple[int, NDArray[np.float64], NDArray[np.float64]] | None = None

    def add(self, index: int, before: Image, after: Image) -> None:
        """Frame ``index``'s step input ``before`` and output ``after``. Only consecutive
        frame indices form a pair."""
        out = _colour(after)
        cur_in = _to_grid(_colour(before), out.shape[:2])
        if cur_in.shape[2] != out.shape[2]:  # grey input, colour output (or back): compare luma
            cur_in = np.repeat(cur_in.mean(axis=2, keepdims=True), out.shape[2], axis=2)
        prev = self._prev
        if prev is not None and prev[0] == index - 1 and prev[1].shape == cur_in.shape:
            e_out, e_in, share = pair_errors(prev[1], cur_in, prev[2], out)
            self.pairs_out.append(e_out)
            self.pairs_in.append(e_in)
            self.valid.append(share)
        self._prev = (index, cur_in, out)
        self.frames += 1

    def record(self) -> dict[str, Any] | None:
        """The step record's ``temporal_consistency`` (docs/spec.md), or None with fewer than
        two consecutive frames."""
        if not self.pairs_out:
            return None
        e_out = float(np.mean(self.pairs_out))
        e_in = float(np.mean(self.pairs_in))
        return {
            "method": METHOD,
            "pairs": len(self.pairs_out),
            "warping_error_output": round(e_out, 10),
            "warping_error_input": round(e_in, 10),
            "flicker_factor": round((e_out + EPSILON) / (e_in + EPSILON), 6),
            "max_pair_ratio": round(
                max(
                    (o + EPSILON) / (i + EPSILON)
                    for o, i in zip(self.pairs_out, self.pairs_in, strict=True)
                ),
                6,
            ),
            "valid_fraction": round(float(np.mean(self.valid)), 6),
            "epsilon": EPSILON,
        }


def judge_flicker(
    figure: dict[str, Any] | None,
    *,
    max_flicker: float | None,
    action: str,
    where: str,
) -> list[str]:
    """Apply the policy bound ``[profiles.P.generative] max_flicker``: the warnings to record
    (action ``warn``), or `PolicyError` (action ``refuse``, so nothing is recorded)."""
    if figure is None or max_flicker is None:
        return []
    factor = float(figure["flicker_factor"])
    if factor <= max_flicker:
        return []
    text = (
        f"{where}: flicker factor {factor:.3f} is above the policy's max_flicker "
        f"{max_flicker:g} (consecutive outputs disagree {factor:.2f} times as much as the "
        "inputs do, by the warping error)"
    )
    if action == "refuse":
        raise PolicyError(
            text + "; the run is refused and nothing was recorded",
            hint="run the step on fewer, steadier frames, use a still frame, or a profile "
            "whose policy allows more flicker",
        )
    return [text]
