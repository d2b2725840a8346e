"""Per-pixel provenance maps: for every output pixel, what happened to it.

Classes, from least to most removed from the original; a pixel keeps the most removed class
it ever had (a resampled pixel that is then denoised is still *resampled*):

====  ===========  ============================================================
code  class        meaning
====  ===========  ============================================================
0     original     value and position as in the evidence
1     transformed  value changed by a deterministic filter, position unchanged
2     resampled    position changed by interpolation (or filled in from neighbours)
3     inferred     invented by a generative step
4     redacted     deliberately destroyed for a disclosure copy
====  ===========  ============================================================

The map follows the geometry: a crop crops it, a quarter turn turns it, a resize resamples it
(nearest neighbour, so classes are never blended) and marks every pixel at least *resampled*.
"""

from __future__ import annotations

import functools
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from forensic.ops.defects import decode_mask
from forensic.ops.framework import Operation

ORIGINAL, TRANSFORMED, RESAMPLED, INFERRED, REDACTED = range(5)
CLASSES = ("original", "transformed", "resampled", "inferred", "redacted")
ProvenanceMap = NDArray[np.uint8]


def fresh(shape: tuple[int, ...]) -> ProvenanceMap:
    """An all-*original* map for an image of ``shape``."""
    return np.zeros(shape[:2], np.uint8)


def _raise(pmap: ProvenanceMap, level: int, where: Any = None) -> None:
    """Raise ``pmap`` to at least ``level`` everywhere, in a (row, column) slice pair, or
    where a boolean mask is true."""
    if isinstance(where, np.ndarray):  # a boolean mask: indexing it copies, so assign back
        pmap[where] = np.maximum(pmap[where], level)
        return
    region = pmap if where is None else pmap[where]
    np.maximum(region, level, out=region)


def follow(
    pmap: ProvenanceMap,
    op: Operation,
    params: dict[str, Any],
    *,
    effect: str,
    roi: tuple[int, int, int, int] | None,
    out_shape: tuple[int, ...],
) -> ProvenanceMap:
    """The map after ``op`` ran with the resolved ``params`` (and optional region): a new
    array, or for a value operation on a uniform map a shared read-only one (`uniform_map`;
    maps are never changed in place)."""
    if effect == "values" and roi is None:
        # The common per-frame case. Classes stay within the input's and 1, so the check
        # below needs no pass over the map; a uniform map stays uniform, and a shared one
        # spares each frame a fresh array (its page faults cost more than the arithmetic).
        if pmap.shape != tuple(out_shape[:2]):
            raise RuntimeError(
                f"internal error: provenance map {pmap.shape} does not follow {op.name} "
                f"output {out_shape[:2]}"
            )
        only = uniform_class(pmap)
        if only is not None:
            return uniform_map(pmap.shape, max(only, TRANSFORMED))
        return np.maximum(pmap, TRANSFORMED)
    new = pmap.copy()
    if effect == "analysis":  # a measurement (defect masks): no pixel changed
        pass
    elif effect == "values":
        where = None
        if roi is not None:
            x, y, w, h = roi
            where = (slice(y, y + h), slice(x, x + w))
        _raise(new, TRANSFORMED, where)
    elif effect == "redaction":
        x, y, w, h = (int(params[k]) for k in ("x", "y", "width", "height"))
        new[y : y + h, x : x + w] = REDACTED
    elif effect == "geometry":
        # Exact rearrangements (crop, flip, quarter turns, field extraction) do to the map
        # exactly what they do to the pixels: run the operation itself on the map.
        new = np.asarray(op.impl(pmap, **params), np.uint8)
    elif effect == "resampled":
        new = _resampled(pmap, op, params)
    elif effect == "inferred":
        filled: Any = None
        if isinstance(params.get("mask"), str):  # a filled defect mask (generative.fill_defects)
            filled = decode_mask(op.name, "mask", params["mask"], new.shape)
        elif all(k in params for k in ("x", "y", "width", "height")):
            x, y, w, h = (int(params[k]) for k in ("x", "y", "width", "height"))
            filled = (slice(y, y + h), slice(x, x + w))
        if new.shape != tuple(out_shape[:2]):  # a generative enlargement (super-resolution)
            fy, fx = out_shape[0] // new.shape[0], out_shape[1] // new.shape[1]
            new = np.repeat(np.repeat(new, fy, axis=0), fx, axis=1)  # keeps redaction marks
        _raise(new, INFERRED, filled)
    else:  # pragma: no cover - effects are a closed set
        raise ValueError(f"unknown effect {effect!r}")
    if new.shape != tuple(out_shape[:2]) or int(new.max(initial=0)) >= len(CLASSES):
        raise RuntimeError(
            f"internal error: provenance map {new.shape} does not follow {op.name} "
            f"output {out_shape[:2]}"
        )
    return new


def _resampled(pmap: ProvenanceMap, op: Operation, params: dict[str, Any]) -> ProvenanceMap:
    if op.name == "deinterlace_double":
        # Kept field rows stay what they were; the other field's rows are filled in.
        new = np.asarray(op.impl(pmap, field=params["field"], method="repeat"), np.uint8)
        filled = 1 if params["field"] == "top" else 0
        _raise(new, RESAMPLED, (slice(filled, None, 2), slice(None)))
        return new
    if "interpolation" not in params:
        raise RuntimeError(f"internal error: no provenance rule for {op.name}")
    # Nearest neighbour so that classes are never blended; uncovered pixels (a rotation's
    # corners) start as 0 and become "resampled" below, whatever fill the pixels got.
    overrides: dict[str, Any] = {"interpolation": "nearest"}
    if "fill" in params:
        overrides["fill"] = 0.0
    moved = np.asarray(op.impl(pmap, **{**params, **overrides}), np.uint8)
    _raise(moved, RESAMPLED)
    # Nearest neighbour can skip a pixel that interpolation still mixes into the output (a
    # shrink by 4 samples one pixel in 16). Inferred and redacted pixels must never vanish
    # so: their masks are grown by the kernel's reach plus the shrink factor first, then
    # moved the same way. This marks a few neighbours too many, never one too few.
    h_in, w_in = pmap.shape
    h_out, w_out = moved.shape
    reach = 4 + int(np.ceil(max(h_in / h_out, w_in / w_out)))
    kernel = np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)
    for level in (INFERRED, REDACTED):
        mask = (pmap >= level).astype(np.uint8)
        if not mask.any():
            continue
        grown = cv2.dilate(mask, kernel)
        spread = np.asarray(op.impl(grown, **{**params, **overrides}), np.uint8) > 0
        moved[spread & (moved < level)] = level
    return moved


@functools.lru_cache(maxsize=4)
def uniform_map(shape: tuple[int, ...], value: int) -> ProvenanceMap:
    """A read-only map of class ``value`` everywhere, shared by every caller asking for it."""
    pmap = np.full(shape, value, np.uint8)
    pmap.flags.writeable = False
    return pmap


def uniform_class(pmap: ProvenanceMap) -> int | None:
    """The class of every pixel when the map has one class everywhere, else None."""
    if not pmap.size:
        return None
    low, high = cv2.minMaxLoc(pmap)[:2]  # one pass, without the GIL (numpy's min, max: two)
    return int(low) if low == high else None


def counts(pmap: ProvenanceMap) -> dict[str, int]:
    """Pixels per class, for the journal and the report."""
    only = uniform_class(pmap)
    if only is not None:
        # The common case (one class everywhere): no histogram needed.
        return {name: int(pmap.size) if i == only else 0 for i, name in enumerate(CLASSES)}
    tally = np.bincount(pmap.ravel(), minlength=len(CLASSES))
    return {name: int(tally[i]) for i, name in enumerate(CLASSES)}


def labelled_copy(image: NDArray[Any], label: str) -> NDArray[Any]:
    """A presentation copy: ``image`` under a black band that carries ``label`` in white.

    The band is added above the picture (no pixel of the output is covered), so the copy is
    the output plus a label that cannot be cropped away without visibly cutting the frame.
    """
    import cv2

    w = image.shape[1]
    top = np.iinfo(image.dtype).max
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = max(0.3, min(2.0, w / 900))
    thickness = max(1, round(scale * 2))
    # Words go on as many lines as the width needs: a narrow crop still shows all of it.
    lines: list[str] = []
    for word in label.split():
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and cv2.getTextSize(candidate, font, scale, thickness)[0][0] <= w - 8:
            lines[-1] = candidate
        else:
            lines.append(word)
    (_, th), base = cv2.getTextSize("Ag", font, scale, thickness)
    line_h = th + base + 6
    band = np.zeros((line_h * len(lines) + 8, w, *image.shape[2:]), image.dtype)
    if image.ndim == 3 and image.shape[2] == 4:
        band[..., 3] = top  # an opaque band, whatever the picture's alpha
    colour: tuple[float, ...] = (float(top),) * (1 if image.ndim == 2 else image.shape[2])
    for i, text in enumerate(lines):
        tw = cv2.getTextSize(text, font, scale, thickness)[0][0]
        origin = (max(2, (w - tw) // 2), 4 + th + i * line_h)
        cv2.putText(band, text, origin, font, scale, colour, thickness, cv2.LINE_AA)
    return np.concatenate([band, image], axis=0)


def filled_mask(op: Operation, params: dict[str, Any], shape: tuple[int, ...]) -> Any:
    """The boolean mask a generative fill recorded in its resolved ``params`` (``mask``), or
    None when the step has no such mask (a rectangle, or no region at all)."""
    if not isinstance(params.get("mask"), str):
        return None
    return decode_mask(op.name, "mask", params["mask"], shape)
