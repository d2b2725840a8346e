"""Old film: dust and dirt removed from neighbouring frames, which recorded what it hides.

Dust, dirt and sparkle on film sit on one frame only; the scene behind them was recorded by
the frames before and after. `repair_film_dust` aligns the neighbouring frames to each frame
by dense optical flow, finds the pixels that differ from all of them in the same direction
(Kokaram's spike detection index), and replaces only those pixels by the median of the
aligned neighbours. Replaced pixels are measured samples of other frames moved by an
estimated motion, so provenance calls them *resampled* (docs/spec.md: "Damaged photographs
and film"), never inferred; a pixel no neighbour saw clearly is not replaced.
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

import cv2
import numpy as np

from forensic.classical import references as ref
from forensic.classical.defects import KOKARAM_1998
from forensic.errors import ParameterError
from forensic.ops.framework import FrameResult, Param, Reference, operation
from forensic.ops.pixels import Float, Image, from_float, join_alpha, split_alpha, to_float

KOKARAM_1995 = Reference(
    "Kokaram, A. C., Morris, R. D., Fitzgerald, W. J. and Rayner, P. J. W. (1995). Detection "
    "of missing data in image sequences. IEEE Transactions on Image Processing, 4(11), "
    "1496-1508.",
    note="DOI not confirmed; identified by journal, volume, issue and pages",
)
FARNEBACK_2003 = Reference(
    "Farneback, G. (2003). Two-frame motion estimation based on polynomial expansion. In "
    "Image Analysis (SCIA 2003), LNCS 2749, 363-370. Springer.",
    doi="10.1007/3-540-45103-X_50",
)


def _grey8(frame: Image) -> np.ndarray[Any, Any]:
    values = to_float(split_alpha(frame)[0])
    grey = values if values.ndim == 2 else values @ np.array([0.299, 0.587, 0.114])
    return np.rint(np.clip(grey, 0, 1) * 255).astype(np.uint8)


def _grey32(frame: Image) -> np.ndarray[Any, Any]:
    values = to_float(split_alpha(frame)[0])
    grey = values if values.ndim == 2 else values @ np.array([0.299, 0.587, 0.114])
    return np.ascontiguousarray(grey, np.float32)


def global_motion(
    reference: np.ndarray[Any, Any], grey: np.ndarray[Any, Any], motion: str
) -> np.ndarray[Any, Any]:
    """The 2 x 3 matrix mapping ``reference`` pixels to ``grey`` pixels: phase correlation
    (translation), refined by ECC for "affine" (200 iterations, 5 x 5 pre-smoothing), as
    `register_frames` measures motion. `ParameterError` naming ``frames`` if ECC fails."""
    (dx, dy), _ = cv2.phaseCorrelate(reference, grey)
    matrix = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]], np.float32)
    if motion == "translation":
        return matrix
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 200, 1e-6)
    try:
        _cc, found = cv2.findTransformECC(
            reference, grey, matrix, cv2.MOTION_AFFINE, criteria, np.ones(grey.shape, np.uint8), 5
        )
    except cv2.error as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "no convergence"
        raise ParameterError(
            "repair_film_dust",
            "frames",
            f"neighbouring frames could not be aligned with affine motion (ECC: {reason})",
            hint='try motion = "translation" or "flow", or leave out cuts from the range',
        ) from None
    return np.asarray(found, np.float32)


def _aligned(target: Image, neighbour: Image, motion: str) -> Float:
    """``neighbour`` aligned onto ``target`` as float [0, 1]; pixels the motion sends outside
    the neighbour are NaN (not seen). ``motion``: "translation" or "affine" (one global
    motion, phase correlation then ECC, as `register_frames`; bicubic), or "flow" (dense
    Farneback flow on 8-bit luma; bilinear)."""
    values = to_float(split_alpha(neighbour)[0]).astype(np.float32)
    h, w = values.shape[:2]
    if motion != "flow":
        matrix = global_motion(_grey32(target), _grey32(neighbour), motion)
        flags = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
        warped = cv2.warpAffine(values, matrix, (w, h), flags=flags,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=np.nan)  # fmt: skip
        return np.asarray(warped, np.float64).reshape(values.shape)
    flow = cv2.calcOpticalFlowFarneback(
        _grey8(target), _grey8(neighbour), np.zeros((h, w, 2), np.float32), pyr_scale=0.5,
        levels=4, winsize=21, iterations=3, poly_n=7, poly_sigma=1.5,
        flags=cv2.OPTFLOW_FARNEBACK_GAUSSIAN,
    )  # fmt: skip
    map_x = (np.arange(w, dtype=np.float32)[None, :] + flow[..., 0]).astype(np.float32)
    map_y = (np.arange(h, dtype=np.float32)[:, None] + flow[..., 1]).astype(np.float32)
    warped = cv2.remap(values, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    outside = (map_x < 0) | (map_x > w - 1) | (map_y < 0) | (map_y > h - 1)
    out = np.asarray(warped, np.float64).reshape(values.shape)
    out[outside] = np.nan
    return out


def _repair(
    frame: Image, neighbours: list[Image], motion: str, threshold: float, grow: int
) -> tuple[Image, dict[str, Any]]:
    colour, alpha = split_alpha(frame)
    values = to_float(colour)
    if not neighbours:
        return frame.copy(), {"replaced_pixels": 0, "neighbours": 0}
    aligned = np.stack([_aligned(frame, n, motion) for n in neighbours])
    grey_of = (lambda a: a) if values.ndim == 2 else (lambda a: a @ np.array([0.299, 0.587, 0.114]))
    here = grey_of(values)
    diffs = np.stack([here - grey_of(a) for a in aligned])  # NaN where a neighbour saw nothing
    seen = ~np.isnan(diffs)
    # Spike detection index (Kokaram et al. 1995, SDIp): a defect differs from every
    # motion-compensated neighbour, and in the same direction.
    with np.errstate(invalid="ignore"):
        brighter = np.all(np.where(seen, diffs > threshold, True), axis=0)
        darker = np.all(np.where(seen, diffs < -threshold, True), axis=0)
    defect = (brighter | darker) & (seen.sum(axis=0) >= min(2, len(neighbours)))
    if grow:
        kernel = np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)
        grown = cv2.dilate(defect.astype(np.uint8), kernel).astype(bool)
        defect = grown & (seen.sum(axis=0) >= 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN where no neighbour saw
        median = np.nanmedian(aligned, axis=0)
    usable = defect & ~np.isnan(median if median.ndim == 2 else median[..., 0])
    out = values.copy()
    out[usable] = median[usable]
    return join_alpha(from_float(out, frame.dtype), alpha), {
        "replaced_pixels": int(usable.sum()),
        "replaced_fraction": round(float(usable.mean()), 6),
        "neighbours": len(neighbours),
    }


@operation(
    name="repair_film_dust",
    version="1",
    category="temporal",
    swgit_class="advanced",
    temporal="map",
    summary="Remove dust and dirt on film from motion-compensated neighbouring frames.",
    description="""Dust, dirt and sparkle on a film frame hide the scene in that frame only;
    the frames before and after recorded it. For every frame, the neighbouring frames within
    the radius are aligned to it by dense optical flow (Farneback), and a pixel is taken as a
    defect when it is brighter than every aligned neighbour, or darker than every one, by
    more than the threshold (the spike detection index); the defects are grown by a pixel or
    two to cover their soft edges. Only those pixels are replaced, by the median of the
    aligned neighbours: measured samples of the same scene point in other frames, moved by
    the estimated motion (provenance: resampled, not inferred). Everything else is left
    untouched. The number of replaced pixels of each frame is recorded. Fast motion that the
    flow cannot follow, and objects that appear in one frame only, can be taken for dirt:
    check the recorded counts and the output.""",
    references=(KOKARAM_1995, KOKARAM_1998, FARNEBACK_2003, ref.EVANGELIDIS_2008, ref.OPENCV),
    effect="resampled",
    params=(
        Param(
            "motion",
            "choice",
            "How neighbours are aligned: one global translation or affine motion (camera pan, "
            "film weave), or dense optical flow (things moving in the scene).",
            choices=("translation", "affine", "flow"),
        ),
        Param("radius", "int", "Neighbouring frames used on each side.", "frames", 1, 4),
        Param(
            "threshold",
            "float",
            "How much darker or brighter than every neighbour a defect is.",
            "fraction of full scale",
            0.01,
            1.0,
        ),
        Param("grow", "int", "Defects are grown by this many pixels.", "px", 0, 5),
    ),
)
def repair_film_dust(
    frames: Iterable[Image],
    *,
    motion: str = "affine",
    radius: int = 2,
    threshold: float = 0.08,
    grow: int = 1,
) -> Iterator[FrameResult]:
    """Temporal median repair of dust and dirt over motion-compensated frames.

    Parameters
    ----------
    frames : iterable of ndarray
        The frame range (grey or colour, uint8 or uint16, all one shape), consumed lazily;
        at most ``2 radius + 1`` frames are held.
    motion : {'translation', 'affine', 'flow'}
        How each neighbour is aligned to the frame: one global motion measured by phase
        correlation (translation), refined by ECC (affine: pans, zooms and film weave); or
        dense Farneback optical flow (flow: things moving in the scene).
    radius : int
        Frames used on each side (fewer at the ends of the range).
    threshold : float
        A pixel is a defect when its luma differs from every aligned neighbour's by more
        than this, all in the same direction.
    grow : int
        Defects are dilated by a square of this half-size (among pixels some neighbour saw).

    Returns
    -------
    iterator of (ndarray, dict)
        Per input frame, in order: the repaired frame (same shape and dtype) and details
        ``frame`` (position in the range), ``replaced_pixels``, ``replaced_fraction`` and
        ``neighbours`` (frames used).

    Notes
    -----
    Neighbour ``n`` is aligned to frame ``t`` by a global motion ``M`` (phase correlation,
    then ECC affine, 200 iterations, 5 x 5 pre-smoothing; ``a_n(p) = I_n(M p)``, bicubic) or
    by Farneback's polynomial-expansion flow on 8-bit luma (OpenCV; 4 levels, window 21,
    Gaussian weighting; ``a_n(p) = I_n(p + f(p))``, bilinear). With ``d_n = L_t - L(a_n)``,
    ``p`` is a defect when ``d_n > threshold`` for every ``n`` or ``d_n < -threshold`` for
    every ``n`` (SDIp, Kokaram et al. 1995), at least two neighbours (one at a one-frame
    range) having seen it; the defect is dilated by ``grow`` px and replaced by ``median_n
    a_n(p)`` per channel (Kokaram 1998, ch. 6-7).

    References
    ----------
    Kokaram et al. (1995), IEEE Trans. Image Processing 4(11), 1496-1508; Kokaram (1998),
    Springer; Farneback (2003), doi:10.1007/3-540-45103-X_50;
    Evangelidis & Psarakis (2008), doi:10.1109/TPAMI.2008.113.
    """
    window: deque[Image] = deque()
    centre = 0  # position (in the range) of the next frame to emit
    position = 0  # position of the next frame to read
    source = iter(frames)
    exhausted = False
    while True:
        while not exhausted and position <= centre + radius:
            try:
                window.append(next(source))
                position += 1
            except StopIteration:
                exhausted = True
        first = position - len(window)  # range position of window[0]
        if centre >= position:
            return
        index = centre - first
        neighbours = [window[i] for i in range(len(window)) if i != index]
        repaired, details = _repair(window[index], neighbours, motion, threshold, grow)
        yield repaired, {"frame": centre, **details}
        centre += 1
        while window and position - len(window) < centre - radius:
            window.popleft()
