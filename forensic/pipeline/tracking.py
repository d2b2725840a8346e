"""Boxes tracked over time: a redaction box given on the first frame of a range, followed by
OpenCV's MIL tracker (Babenko et al. 2011) through the decoded evidence frames.

Tracking is an estimate; it is therefore run once, before the run, and its result becomes
the step's per-frame keyframes: every tracked box is recorded in the ``run.step`` entry
(``keyframes``, and ``tracked`` saying how they were found), and a replay uses the recorded
boxes, never the tracker. A box the tracker loses stops the run with the frame named: the
examiner then gives keyframes by hand.

OpenCV's MIL tracker draws its samples from a random generator that lives as long as the
process and that no seed reaches (``cv2.setRNGSeed`` and a fresh thread do not reset it): the
same recipe tracked twice in one process (the workbench, a test session) gave different
boxes. Each tracking therefore runs in a fresh interpreter (``spawn``), where the generator
starts from its fixed initial state: the same frames give the same boxes wherever they are
tracked.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from forensic.case import Case
from forensic.errors import InputError
from forensic.media import iter_frames
from forensic.recipe import Recipe, Step
from forensic.records import ExhibitRecord

#: The tracker and its citation, as recorded.
TRACKER = "OpenCV TrackerMIL (Babenko, Yang & Belongie 2011, doi:10.1109/TPAMI.2010.226)"


def track_steps(case: Case, source: ExhibitRecord, recipe: Recipe) -> Recipe:
    """``recipe`` with each ``track`` step's box followed through its frame range and turned
    into one keyframe per frame (source-frame pixels, mapped later like any keyframe)."""
    if not any(s.track is not None for s in recipe.steps):
        return recipe
    if not source.is_video or source.source_run is not None:
        raise InputError(f"track is only for video exhibits, and {source.label} is not one")
    steps = [
        _tracked(case, source, step, recipe) if step.track is not None else step
        for step in recipe.steps
    ]
    return replace(recipe, steps=tuple(steps))


def _tracked(case: Case, source: ExhibitRecord, step: Step, recipe: Recipe) -> Step:
    if recipe.coords != "source":
        raise InputError(
            f'{step.label}: track follows the box on the evidence frames, so it needs coords = "source"'
        )
    if step.frames is None:
        raise InputError(f"{step.label}: track needs frames = [first, last]; the box is on first")
    first, last = step.frames
    count = int(source.facts["frame_count"])
    if last >= count:
        raise InputError(f"{step.label}: frames {[first, last]} is outside the video's {count}")
    x0, y0, w0, h0 = (int(step.params[k]) for k in ("x", "y", "width", "height"))
    box = (x0, y0, w0, h0)
    path = case.store.local_path(source.stored)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        keyframes, lost = pool.submit(
            track_box, path, list(range(first, last + 1)), source.label, box
        ).result()
    if lost is not None:
        raise InputError(
            f"{step.label}: the tracker lost the box at frame {lost}",
            hint="give the box's positions as keyframes = [[frame, x, y, width, height], ...]",
        )
    tracked = {"method": TRACKER, "opencv": cv2.__version__, "first_box": list(box)}
    return replace(step, keyframes=tuple(keyframes), tracked=tracked)


def track_box(
    path: Path, indices: list[int], where: str, box: tuple[int, int, int, int]
) -> tuple[list[tuple[int, int, int, int, int]], int | None]:
    """Follow ``box`` (on the first of ``indices``) through the decoded frames with a new MIL
    tracker: the boxes so far, and the frame where the tracker lost the box (or None). Run in
    a fresh process (see the module's docstring)."""
    tracker: Any = None
    keyframes: list[tuple[int, int, int, int, int]] = []
    for decoded in iter_frames(path, indices, where=where):
        bgr = _bgr8(decoded.image)
        if tracker is None:
            tracker = cv2.TrackerMIL.create()
            tracker.init(bgr, box)
            keyframes.append((decoded.index, *box))
            continue
        found, rect = tracker.update(bgr)
        if not found:
            return keyframes, decoded.index
        x, y, w, h = (int(v) for v in rect)
        keyframes.append((decoded.index, max(0, x), max(0, y), w, h))
    return keyframes, None


def _bgr8(image: Any) -> Any:
    rgb = image if image.dtype == np.uint8 else (image >> 8).astype(np.uint8)
    if rgb.ndim == 2:
        return cv2.cvtColor(rgb, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(np.ascontiguousarray(rgb[:, :, :3]), cv2.COLOR_RGB2BGR)
