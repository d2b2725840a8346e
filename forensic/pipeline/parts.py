"""A run computed in parts, elsewhere, and recorded here exactly as a one-process run records it.

The batch runner (`forensic.batch`) spreads runs over worker processes. Workers compute; only
the process holding the signing key stores and journals. This module is the pipeline's side:

* `split_frames` cuts a video run's frames into parts at *safe points*: anywhere between two
  frames for per-frame steps, never inside the frame range of a temporal step (a map or a
  reduce carries state across its whole range: registration's reference, a stabiliser's
  trajectory, a reduction's accumulators), so every part computes exactly what one stream
  computes for those frames;
* `compute_video_part` runs the ordinary stream (`forensic.pipeline.stream.execute`) over one
  part with a recorder that keeps, in order, everything the run's recorder would have been
  given (frame records, step records, output frames);
* `replay_parts` hands those events, part after part, to the run's own recorder
  (`forensic.pipeline.video.RunRecorder`) in the main process, through `run_video`'s
  ``computed`` hook. Each output file (JSON arrays, FFV1 videos) receives the same elements
  in the same order as in a one-process run and is written by the same code, so its bytes,
  per-frame records and Merkle roots are identical. FFV1 is encoded here, in the main
  process, on purpose: one encoder over the whole run is what makes the file byte-identical
  by construction (joining separately encoded parts would depend on the muxer's handling of
  foreign packets, which nothing here controls);
* a still run is `forensic.pipeline.still.compute_still` on a worker and `run_still` with
  ``computed`` here.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from forensic.case import Case
from forensic.pipeline.sources import check_evidence_file
from forensic.pipeline.steps import RunPlan
from forensic.pipeline.stream import Item, Recorder, Timer, execute
from forensic.recipe import Step

Image = Any
#: Frames per part by default: enough to amortise a task's overhead (and the decoding from
#: the start that a part of a long video pays), few enough to spread a clip over workers.
DEFAULT_PART_FRAMES = 64


def _temporal_ranges(plan: RunPlan) -> list[tuple[int, int] | None]:
    """The frame range of every temporal step (None: the whole run)."""
    return [
        s.frames
        for s in plan.recipe.steps
        if getattr(s.operation(), "temporal", "frame") != "frame"
    ]


def split_frames(plan: RunPlan, frames_per_part: int = DEFAULT_PART_FRAMES) -> list[list[int]]:
    """A video run's frames (``plan.indices``) cut into parts of about ``frames_per_part``
    at safe points (see the module docstring); one part when there is no safe point."""
    indices = list(plan.indices or [])
    if not indices:
        return []
    size = max(1, int(frames_per_part))
    ranges = _temporal_ranges(plan)

    def safe(before: int, after: int) -> bool:
        return not any(
            r is None or (r[0] <= before <= r[1] and r[0] <= after <= r[1]) for r in ranges
        )

    parts: list[list[int]] = [[indices[0]]]
    for before, after in itertools.pairwise(indices):
        if len(parts[-1]) >= size and safe(before, after):
            parts.append([])
        parts[-1].append(after)
    return parts


@dataclass
class VideoPart:
    """What one part of a video run gave, in the order the stream gave it."""

    indices: list[int]
    #: ("input", record) | ("step", step number, record, image or None, maps) | ("output", Item)
    events: list[tuple[Any, ...]] = field(repr=False)
    seconds: list[float]  # per step, as `Timer`


class _Collector:
    """A `Recorder` that keeps the events (step images only where the run keeps them)."""

    def __init__(self, keep_images: bool) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.keep_images = keep_images

    def keeps_image(self, step: Step) -> bool:
        return self.keep_images

    def input(self, record: dict[str, Any]) -> None:
        self.events.append(("input", record))

    def step(
        self, step: Step, record: dict[str, Any], image: Image, maps: dict[str, Image] | None
    ) -> None:
        self.events.append(("step", step.number, record, image if self.keep_images else None, maps))

    def output(self, item: Item) -> None:
        self.events.append(("output", item))


def compute_video_part(
    case: Case,
    plan: RunPlan,
    indices: list[int],
    *,
    check_file: bool = False,
    keep_intermediates: bool = False,
) -> VideoPart:
    """Stream ``indices`` (one part of ``plan``) through the recipe, recording nothing: every
    frame is checked against its ingest hash as it is decoded; with ``check_file`` the whole
    stored file's SHA-256 too (one part per run does it, as `run_video` does once)."""
    if check_file:
        check_evidence_file(case, plan.source)
    collector = _Collector(keep_intermediates)
    timers = execute(
        case,
        plan.source,
        list(plan.recipe.steps),
        indices,
        collector,
        params_for=lambda step, frame: step.params_at(frame),
        workers=1,  # one worker process per core already
    )
    return VideoPart(indices, collector.events, [t.seconds for t in timers])


def replay_parts(plan: RunPlan, parts: Iterable[VideoPart]) -> Callable[[Recorder], list[Timer]]:
    """`run_video`'s ``computed`` hook: the parts' events, in part order, into the run's
    recorder; per-step timers summed over the parts. ``parts`` is consumed lazily, so a
    caller may yield each part as it arrives (memory: one part at a time here)."""
    steps = {s.number: s for s in plan.recipe.steps}

    def feed(recorder: Recorder) -> list[Timer]:
        timers = [Timer() for _ in steps]
        for part in parts:
            for event in part.events:
                if event[0] == "input":
                    recorder.input(event[1])
                elif event[0] == "step":
                    _, number, record, image, maps = event
                    recorder.step(steps[number], record, image, maps)
                else:
                    recorder.output(event[1])
            for timer, seconds in zip(timers, part.seconds, strict=True):
                timer.seconds += seconds
        return timers

    return feed
