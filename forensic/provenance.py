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

from typing import Any

import numpy as np
from numpy.typing import NDArray

from forensic.classical.registry import Operation

ORIGINAL, TRANSFORMED, RESAMPLED, INFERRED, REDACTED = range(5)
CLASSES = ("original", "transformed", "resampled", "inferred", "redacted")
ProvenanceMap = NDArray[np.uint8]


def fresh(shape: tuple[int, ...]) -> ProvenanceMap:
    """An all-*original* map for an image of ``shape``."""
    return np.zeros(shape[:2], np.uint8)


def _raise(pmap: ProvenanceMap, level: int, where: tuple[slice, slice] | None = None) -> None:
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
    """The map after ``op`` ran with the resolved ``params`` (and optional region)."""
    new = pmap.copy()
    if effect == "values":
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
        where = None
        if all(k in params for k in ("x", "y", "width", "height")):
            x, y, w, h = (int(params[k]) for k in ("x", "y", "width", "height"))
            where = (slice(y, y + h), slice(x, x + w))
        if new.shape != tuple(out_shape[:2]):  # a generative resampling (super-resolution)
            new = np.full(out_shape[:2], INFERRED, np.uint8)
        _raise(new, INFERRED, where)
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
    return moved


def counts(pmap: ProvenanceMap) -> dict[str, int]:
    """Pixels per class, for the journal and the report."""
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
    scale = max(0.4, min(2.0, w / 900))
    thickness = max(1, round(scale * 2))
    (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    while tw > w - 8 and scale > 0.3:
        scale *= 0.9
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    band_h = th + base + 12
    band = np.zeros((band_h, w, *image.shape[2:]), image.dtype)
    colour: tuple[float, ...] = (float(top),) * (1 if image.ndim == 2 else image.shape[2])
    cv2.putText(
        band, label, (max(4, (w - tw) // 2), 6 + th), cv2.FONT_HERSHEY_SIMPLEX, scale, colour,
        thickness, cv2.LINE_AA,
    )  # fmt: skip
    return np.concatenate([band, image], axis=0)
