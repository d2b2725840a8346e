"""The stream a video run's frames flow through: decoding, per-frame, map and reduce steps.

`execute` chains generators: a decode source (`forensic.media.iter_frames`), then, for each run
of consecutive per-frame steps, a segment applied on an ordered, bounded thread pool (frames
are independent, so scheduling cannot change a result), and for each temporal step a *map*
stage (N frames in, N out) or a *reduce* stage (N frames in, one out). A `Recorder` sees every
input, step result and output as it passes: the run's writer (`forensic.pipeline.video`) and the
replay's comparison (`forensic.pipeline.replay`) are the two recorders.
"""

from __future__ import annotations

import functools
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from forensic import provenance
from forensic.case import Case
from forensic.errors import CaseError, InputError, ParameterError
from forensic.hashing import describe_image, merkle_root
from forensic.lanes import generative_maps
from forensic.media import iter_frames
from forensic.ops.framework import Operation
from forensic.pipeline.flicker import FlickerMeter
from forensic.pipeline.steps import (
    MAPS_SEED,
    CancelHook,
    ProgressHook,
    apply_step,
    check_cancel,
)
from forensic.recipe import Step
from forensic.records import ExhibitRecord

Image = Any
#: Frames in flight per worker in the per-frame thread pool (bounds memory, keeps order). Two
#: keep every worker busy while the oldest frame is collected; each more holds a frame's input
#: and outputs in memory for nothing.
WINDOW_PER_WORKER = 2


@dataclass
class Item:
    """A frame on its way through the steps."""

    index: int  # the source frame it stands for (a reduction: its range's first frame)
    image: Image = field(repr=False)
    pmap: provenance.ProvenanceMap = field(repr=False)
    desc: dict[str, Any]  # describe_image(image), computed once


class Recorder(Protocol):
    def input(self, record: dict[str, Any]) -> None: ...
    def step(
        self, step: Step, record: dict[str, Any], image: Image, maps: dict[str, Image] | None
    ) -> None: ...
    def output(self, item: Item) -> None: ...
    def keeps_image(self, step: Step) -> bool:
        """Whether `step` needs the output images of ``step`` (else it is given ``None``):
        finished frames waiting for their turn then hold no intermediate images."""
        ...


ParamsFor = Callable[[Step, int], dict[str, Any]]


def _in_range(step: Step, index: int) -> bool:
    return step.frames is None or step.frames[0] <= index <= step.frames[1]


class Peek:
    def __init__(self, items: Iterable[Item]) -> None:
        self.it = iter(items)
        self.head: Item | None = None
        self.done = False

    def peek(self) -> Item | None:
        if self.head is None and not self.done:
            self.head = next(self.it, None)
            self.done = self.head is None
        return self.head

    def pop(self) -> Item:
        item = self.peek()
        assert item is not None
        self.head = None
        return item


@dataclass
class Timer:
    seconds: float = 0.0


def _where(step: Step, index: int) -> str:
    return f"{step.label}, frame {index}"


def _apply_frame_step(
    step: Step, op: Operation, item: Item, params: dict[str, Any]
) -> tuple[Item, dict[str, Any], dict[str, Image] | None]:
    if step.lane == "generative" and all(k in params for k in ("x", "y", "width", "height")):
        x, y, w, h = (int(params[k]) for k in ("x", "y", "width", "height"))
        if (item.pmap[y : y + h, x : x + w] == provenance.REDACTED).any():
            raise InputError(
                f"{_where(step, item.index)}: its region overlaps redacted pixels; inpainting "
                "would reconstruct what was redacted"
            )
    try:
        result = apply_step(item.image, op, params, step.roi)
    except ParameterError as exc:
        raise InputError(f"{_where(step, item.index)}: {exc.detail}", hint=exc.hint) from None
    filled = provenance.filled_mask(op, result.params, item.image.shape)
    if filled is not None and (item.pmap[filled] == provenance.REDACTED).any():
        raise InputError(
            f"{_where(step, item.index)}: its mask overlaps redacted pixels; inpainting "
            "would reconstruct what was redacted"
        )
    pmap = provenance.follow(
        item.pmap,
        op,
        result.params,
        effect=result.effect,
        roi=step.roi,
        out_shape=result.image.shape,
    )
    maps = None
    record: dict[str, Any] = {
        "frame": item.index,
        "params": result.params,
        "effect": result.effect,
        "details": result.details,
        "input": item.desc,
    }
    if step.lane == "generative":
        seed = MAPS_SEED + 10_000_000 * step.number + 100 * item.index
        maps, meta = generative_maps(op, item.image, result.image, result.params, seed=seed)
        record["maps"] = meta
    desc = describe_image(result.image)
    record["output"] = desc
    return Item(item.index, result.image, pmap, desc), record, maps


def _temporal_pmap(step: Step, src: provenance.ProvenanceMap, effect: str, shape: Any) -> Any:
    """Provenance through a temporal step. Registration, stabilisation and super-resolution move
    pixels by estimated, fractional amounts: every output pixel is *resampled*. Inferred or
    redacted pixels cannot be followed through such an estimate, so they are refused."""
    if effect == "values":
        out = src.copy()
        np.maximum(out, provenance.TRANSFORMED, out=out)
        return out
    if int(src.max(initial=0)) >= provenance.INFERRED:
        raise InputError(
            f"{step.label}: frames reaching it carry inferred or redacted pixels, which a "
            "registration or resampling cannot follow",
            hint="run temporal steps before generative steps and before redaction",
        )
    return np.full(shape[:2], provenance.RESAMPLED, np.uint8)


def _map_stage(
    step: Step,
    op: Operation,
    params: dict[str, Any],
    upstream: Iterable[Item],
    emit: Callable[[Step, dict[str, Any], Image, dict[str, Image] | None], None],
    timer: Timer,
) -> Iterator[Item]:
    peek = Peek(upstream)
    while (head := peek.peek()) is not None:
        if not _in_range(step, head.index):
            yield peek.pop()
            continue
        pending: deque[Item] = deque()
        pulled = Timer()
        images = _take_range(peek, step, pulled, pending.append)
        started = time.perf_counter()
        try:
            bound, outputs = op.stream(images, params)
            for image, details in outputs:
                src = pending.popleft()
                pmap = _temporal_pmap(step, src.pmap, op.effect, image.shape)
                desc = describe_image(image)
                record = {
                    "frame": src.index,
                    "params": bound,
                    "effect": op.effect,
                    "details": details,
                    "input": src.desc,
                    "output": desc,
                }
                emit(step, record, image, None)
                timer.seconds += time.perf_counter() - started - pulled.seconds
                pulled.seconds = 0.0
                yield Item(src.index, image, pmap, desc)
                started = time.perf_counter()
        except ParameterError as exc:
            raise InputError(f"{step.label}: {exc.detail}", hint=exc.hint) from None


def _reduce_stage(
    step: Step,
    op: Operation,
    params: dict[str, Any],
    upstream: Iterable[Item],
    emit: Callable[[Step, dict[str, Any], Image, dict[str, Image] | None], None],
    timer: Timer,
) -> Iterator[Item]:
    peek = Peek(upstream)
    while (head := peek.peek()) is not None:
        if not _in_range(step, head.index):
            yield peek.pop()
            continue
        inputs: list[dict[str, Any]] = []
        combined: list[provenance.ProvenanceMap] = []
        first = head.index
        pulled = Timer()
        images = _take_range(
            peek, step, pulled, functools.partial(_combine, inputs=inputs, combined=combined)
        )
        started = time.perf_counter()
        try:
            result = op.reduce(images, params)
        except ParameterError as exc:
            raise InputError(f"{step.label}: {exc.detail}", hint=exc.hint) from None
        pmap = _temporal_pmap(step, combined[0], result.effect, result.image.shape)
        desc = describe_image(result.image)
        record = {
            "frame": first,
            "inputs": inputs,
            "params": result.params,
            "effect": result.effect,
            "details": result.details,
            "input": {"frames": len(inputs), "merkle_root": inputs_root(inputs)},
            "output": desc,
        }
        emit(step, record, result.image, None)
        timer.seconds += time.perf_counter() - started - pulled.seconds
        yield Item(first, result.image, pmap, desc)


def _take_range(
    peek: Peek, step: Step, pulled: Timer, taken: Callable[[Item], None]
) -> Iterator[Image]:
    """The images of the consecutive frames in ``step``'s range, pulled lazily; ``taken`` sees
    each item as it goes; time spent waiting for upstream is added to ``pulled``."""
    while True:
        started = time.perf_counter()
        nxt = peek.peek()
        pulled.seconds += time.perf_counter() - started
        if nxt is None or not _in_range(step, nxt.index):
            return
        item = peek.pop()
        taken(item)
        yield item.image


def _combine(
    item: Item, inputs: list[dict[str, Any]], combined: list[provenance.ProvenanceMap]
) -> None:
    """A reduction's bookkeeping as frames pass: input hashes, and the provenance maps combined
    (highest class per pixel) in one running array, so memory stays constant."""
    inputs.append({"frame": item.index, "pixel_sha256": item.desc["pixel_sha256"]})
    if combined:
        if combined[0].shape == item.pmap.shape:
            np.maximum(combined[0], item.pmap, out=combined[0])
    else:
        combined.append(item.pmap.copy())


def inputs_root(inputs: list[dict[str, Any]]) -> str:
    return merkle_root([bytes.fromhex(i["pixel_sha256"]) for i in inputs])


def _frame_segment(
    steps: list[Step],
    ops: list[Operation],
    params_for: ParamsFor,
    upstream: Iterable[Item],
    emit: Callable[[Step, dict[str, Any], Image, dict[str, Image] | None], None],
    timers: list[Timer],
    workers: int,
    keeps_image: Callable[[Step], bool],
    meters: dict[int, FlickerMeter] | None = None,
) -> Iterator[Item]:
    """Consecutive per-frame steps, applied to each frame on a thread pool (frames are
    independent, so the order of completion cannot change a result; outputs keep the order).
    A step's output image is handed to ``emit`` only where ``keeps_image`` asks for it. A
    segment with a generative step runs in frame order, so ``meters`` (by step number) see
    its consecutive inputs and outputs."""

    def work(item: Item) -> tuple[Item, list[tuple[Step, dict[str, Any], Image, Any]]]:
        done = []
        for step, op, timer in zip(steps, ops, timers, strict=True):
            if not _in_range(step, item.index):
                continue
            started = time.perf_counter()
            before = item
            item, record, maps = _apply_frame_step(step, op, item, params_for(step, item.index))
            timer.seconds += time.perf_counter() - started
            meter = None if meters is None else meters.get(step.number)
            if meter is not None:
                meter.add(item.index, before.image, item.image)
            done.append((step, record, item.image if keeps_image(step) else None, maps))
        return item, done

    if workers <= 1 or any(s.lane == "generative" for s in steps):
        for item in upstream:
            out, done = work(item)
            for args in done:
                emit(*args)
            yield out
        return
    window: deque[Any] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="forensic-frame") as pool:
        try:
            for item in upstream:
                window.append(pool.submit(work, item))
                if len(window) >= WINDOW_PER_WORKER * workers:
                    out, done = window.popleft().result()
                    for args in done:
                        emit(*args)
                    yield out
            while window:
                out, done = window.popleft().result()
                for args in done:
                    emit(*args)
                yield out
        finally:
            for future in window:
                future.cancel()


def execute(
    case: Case,
    exhibit: ExhibitRecord,
    steps: list[Step],
    indices: list[int],
    recorder: Recorder,
    *,
    params_for: ParamsFor,
    workers: int,
    progress: ProgressHook | None = None,
    cancel: CancelHook | None = None,
    meters: dict[int, FlickerMeter] | None = None,
) -> list[Timer]:
    """Stream the exhibit's frames ``indices`` through ``steps``; returns per-step timers.
    ``cancel`` is asked before each frame is decoded; ``meters`` (by step number, generative
    per-frame steps only) measure temporal consistency as the frames pass."""
    label = exhibit.label
    path = case.store.local_path(exhibit.stored)
    recorded = exhibit.frames
    total = len(indices)

    def source() -> Iterator[Item]:
        for n, decoded in enumerate(iter_frames(path, indices, where=label), start=1):
            check_cancel(cancel)
            if decoded.source_sha256 != recorded[decoded.index]["sha256"]:
                raise CaseError(
                    f"{label}: frame {decoded.index} no longer decodes to its recorded hash",
                    hint="run `forensic verify --pixels` on the case; nothing runs on altered "
                    "evidence",
                )
            desc = describe_image(decoded.image)
            recorder.input(
                {
                    "frame": decoded.index,
                    "pts": decoded.pts,
                    "time_s": decoded.time_s,
                    "picture_type": decoded.picture_type,
                    "source_sha256": decoded.source_sha256,
                    "source_format": decoded.source_format,
                    "converted": desc,
                }
            )
            # One shared read-only all-original map for every frame (maps are never changed
            # in place): no fresh array per frame.
            pmap = provenance.uniform_map(decoded.image.shape[:2], provenance.ORIGINAL)
            yield Item(decoded.index, decoded.image, pmap, desc)
            if progress is not None:
                progress(n, total)

    timers = [Timer() for _ in steps]
    stream: Iterable[Item] = source()
    i = 0
    while i < len(steps):
        op = steps[i].operation()
        kind = getattr(op, "temporal", "frame")
        if kind == "frame":
            j = i
            while j < len(steps) and getattr(steps[j].operation(), "temporal", "frame") == "frame":
                j += 1
            stream = _frame_segment(
                list(steps[i:j]),
                [s.operation() for s in steps[i:j]],
                params_for,
                stream,
                recorder.step,
                timers[i:j],
                workers,
                recorder.keeps_image,
                meters,
            )
            i = j
            continue
        stage = _map_stage if kind == "map" else _reduce_stage
        stream = stage(steps[i], op, params_for(steps[i], -1), stream, recorder.step, timers[i])
        i += 1
    for item in stream:
        recorder.output(item)
    return timers
