"""Video runs: a recipe streamed over a frame range, at constant memory.

A video run differs from a still-image run (`forensic.enhance`) in three ways:

* **Streaming.** Frames are decoded one at a time (`forensic.media.iter_frames`) and pass
  through the steps as a chain of generators; per-frame steps run on a small thread pool
  (ordered, with a bounded window) while the next frames decode, so both cores work and the
  results do not depend on the scheduling. Nothing holds more than a few frames, except an
  operation whose method needs its whole range (a median).
* **Temporal steps.** A step's operation may be *per frame* (every registry operation), a
  *map* over its frame range (registration, stabilisation: one output per input) or a
  *reduce* (frame averaging, multi-frame super-resolution: one output from the range, labelled
  with the range's first frame index). Frames outside a step's range pass through it.
* **Granularity.** One signed ``run.step`` entry per step, never per frame. The per-frame
  records (parameters used, estimates, input and output pixel hashes) go into a hashed JSON
  artifact in ``derived/``, and the entry carries its SHA-256 plus the RFC 9162 Merkle root of
  the step's output-frame pixel hashes, so one frame can be proved on its own.

Outputs, provenance maps, labelled presentation copies, kept intermediates and generative maps
are each one lossless FFV1/Matroska file, written while the frames stream, decoded back and
compared before anything is journaled; the files are moved to their content-addressed names
only once every entry is signed (a failure removes them).
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from forensic import provenance
from forensic.case import Case
from forensic.environment import differences, pixel_environment
from forensic.errors import CaseError, InputError, ParameterError
from forensic.fsutil import fsync_dir
from forensic.hashing import merkle_root, sha256_file
from forensic.journal import canonical
from forensic.keys import Signer
from forensic.lanes import generative_facts, generative_maps, lookup
from forensic.media import conversion_record, iter_frames
from forensic.ops.framework import Operation
from forensic.recipe import Recipe, Step

if TYPE_CHECKING:
    from forensic.enhance import RunSummary

Image = Any
RUN_FORMAT_VIDEO = "forensic-run/2"
#: Frames in flight per worker in the per-frame thread pool (bounds memory, keeps order).
WINDOW_PER_WORKER = 4


def default_workers() -> int:
    """Threads for per-frame steps: the cores this process may use, at most 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


# -- files written while streaming ---------------------------------------------------------------


class _Staged:
    """A file being written into ``derived/`` under a temporary name; renamed to its
    content-addressed name by `Staging.finalise`, removed by `Staging.discard`."""

    def __init__(self, folder: Path, suffix: str, *, create: bool = True) -> None:
        if create:
            fd, name = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
            os.close(fd)
            self.path = Path(name)
        else:  # the writer creates it (and refuses an existing file)
            self.path = folder / f".tmp-{uuid.uuid4().hex}{suffix}"
        self.suffix = suffix
        self.record: dict[str, Any] | None = None


class Staging:
    def __init__(self, case: Case) -> None:
        self.folder = case.root / "derived"
        self.folder.mkdir(exist_ok=True)
        self.files: list[_Staged] = []
        self.aborts: list[Callable[[], None]] = []

    def new(self, suffix: str, *, create: bool = True) -> _Staged:
        staged = _Staged(self.folder, suffix, create=create)
        self.files.append(staged)
        return staged

    def finalise(self) -> None:
        for staged in self.files:
            assert staged.record is not None
            target = self.folder.parent / staged.record["file"]
            if target.exists():
                staged.path.unlink()
                continue
            os.chmod(staged.path, 0o444)
            os.replace(staged.path, target)
        fsync_dir(self.folder)

    def discard(self) -> None:
        for abort in self.aborts:
            abort()
        for staged in self.files:
            staged.path.unlink(missing_ok=True)


class JsonArraySink:
    """A canonical (RFC 8785) JSON array written element by element: the bytes equal
    ``canonical(list_of_elements)`` without ever holding the list."""

    def __init__(self, staging: Staging) -> None:
        self.staged = staging.new(".json")
        self.fh = self.staged.path.open("wb")
        staging.aborts.append(self.fh.close)
        self.digest = hashlib.sha256()
        self.count = 0
        self._put(b"[")

    def _put(self, data: bytes) -> None:
        self.fh.write(data)
        self.digest.update(data)

    def add(self, element: dict[str, Any]) -> None:
        if self.count:
            self._put(b",")
        self._put(canonical(element))
        self.count += 1

    def close(self) -> dict[str, Any]:
        self._put(b"]")
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        sha = self.digest.hexdigest()
        record = {
            "file": f"derived/{sha}.json",
            "sha256": sha,
            "size": self.staged.path.stat().st_size,
        }
        self.staged.record = record
        return record


class VideoSink:
    """Frames into one lossless FFV1/Matroska file; remembers each frame's pixel hash."""

    def __init__(self, staging: Staging, *, rate: Fraction | int, what: str) -> None:
        from forensic.videoio import FFV1Writer

        self.staged = staging.new(".mkv", create=False)
        self.what = what
        self.writer = FFV1Writer(self.staged.path, rate=rate)
        staging.aborts.append(self.writer.abort)
        self.pixel_hashes: list[str] = []
        self.frame_hashes: list[str] = []

    def add(self, image: Image, pixel_sha256: str) -> int:
        try:
            self.frame_hashes.append(self.writer.write(image))
        except InputError as exc:
            raise InputError(
                f"the {self.what}: {exc.message}",
                hint="every frame of a run's output must have the same size and type: apply "
                "size-changing steps (crop, resize...) to every frame of the run",
            ) from None
        self.pixel_hashes.append(pixel_sha256)
        return len(self.pixel_hashes) - 1

    def close(self) -> dict[str, Any]:
        # FFV1 is lossless by design and each slice carries a CRC; what could go wrong is our
        # pixel-format mapping, which the writer checks on every frame (the frame handed to the
        # encoder converts back to the exact array). Decoding the files again is the job of
        # `verify --pixels` (check 8), so a run does not pay for a second decode.
        self.writer.close()
        count = len(self.pixel_hashes)
        sha, size = self.writer.sha256, self.writer.size
        assert sha is not None
        assert size is not None
        record = {
            "file": f"derived/{sha}.mkv",
            "sha256": sha,
            "size": size,
            "container": "matroska",
            "codec": "ffv1",
            "pix_fmt": self.writer.pix_fmt,
            "frames": count,
            "merkle_root": merkle_root([bytes.fromhex(h) for h in self.pixel_hashes]),
            # What ingesting this file would record per frame (forensic-frames/1).
            "frame_hashes_root": merkle_root([bytes.fromhex(h) for h in self.frame_hashes]),
        }
        self.staged.record = record
        return record


def image_hash(image: Image) -> str:
    from forensic.enhance import image_hash as _hash

    return _hash(image)


def describe(image: Image) -> dict[str, Any]:
    from forensic.enhance import describe as _describe

    return _describe(image)


# -- the stream ----------------------------------------------------------------------------------


@dataclass
class Item:
    """A frame on its way through the steps."""

    index: int  # the source frame it stands for (a reduction: its range's first frame)
    image: Image = field(repr=False)
    pmap: provenance.ProvenanceMap = field(repr=False)
    desc: dict[str, Any]  # describe(image), computed once


class Recorder(Protocol):
    def input(self, record: dict[str, Any]) -> None: ...
    def step(
        self, step: Step, record: dict[str, Any], image: Image, maps: dict[str, Image] | None
    ) -> None: ...
    def output(self, item: Item) -> None: ...


ParamsFor = Callable[[Step, int], dict[str, Any]]


def _in_range(step: Step, index: int) -> bool:
    return step.frames is None or step.frames[0] <= index <= step.frames[1]


class _Peek:
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
class _Timer:
    seconds: float = 0.0


def _where(step: Step, index: int) -> str:
    return f"{step.label}, frame {index}"


def _apply_frame_step(
    step: Step, op: Operation, item: Item, params: dict[str, Any]
) -> tuple[Item, dict[str, Any], dict[str, Image] | None]:
    from forensic.enhance import MAPS_SEED, apply_step

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
    desc = describe(result.image)
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
    timer: _Timer,
) -> Iterator[Item]:
    peek = _Peek(upstream)
    while (head := peek.peek()) is not None:
        if not _in_range(step, head.index):
            yield peek.pop()
            continue
        pending: deque[Item] = deque()
        pulled = _Timer()
        images = _take_range(peek, step, pulled, pending.append)
        started = time.perf_counter()
        try:
            bound, outputs = op.stream(images, params)
            for image, details in outputs:
                src = pending.popleft()
                pmap = _temporal_pmap(step, src.pmap, op.effect, image.shape)
                desc = describe(image)
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
    timer: _Timer,
) -> Iterator[Item]:
    peek = _Peek(upstream)
    while (head := peek.peek()) is not None:
        if not _in_range(step, head.index):
            yield peek.pop()
            continue
        inputs: list[dict[str, Any]] = []
        combined: list[provenance.ProvenanceMap] = []
        first = head.index
        pulled = _Timer()
        images = _take_range(
            peek, step, pulled, functools.partial(_combine, inputs=inputs, combined=combined)
        )
        started = time.perf_counter()
        try:
            result = op.reduce(images, params)
        except ParameterError as exc:
            raise InputError(f"{step.label}: {exc.detail}", hint=exc.hint) from None
        pmap = _temporal_pmap(step, combined[0], result.effect, result.image.shape)
        desc = describe(result.image)
        record = {
            "frame": first,
            "inputs": inputs,
            "params": result.params,
            "effect": result.effect,
            "details": result.details,
            "input": {"frames": len(inputs), "merkle_root": _root(inputs)},
            "output": desc,
        }
        emit(step, record, result.image, None)
        timer.seconds += time.perf_counter() - started - pulled.seconds
        yield Item(first, result.image, pmap, desc)


def _take_range(
    peek: _Peek, step: Step, pulled: _Timer, taken: Callable[[Item], None]
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


def _root(inputs: list[dict[str, Any]]) -> str:
    return merkle_root([bytes.fromhex(i["pixel_sha256"]) for i in inputs])


def _frame_segment(
    steps: list[Step],
    ops: list[Operation],
    params_for: ParamsFor,
    upstream: Iterable[Item],
    emit: Callable[[Step, dict[str, Any], Image, dict[str, Image] | None], None],
    timers: list[_Timer],
    workers: int,
) -> Iterator[Item]:
    """Consecutive per-frame steps, applied to each frame on a thread pool (frames are
    independent, so the order of completion cannot change a result; outputs keep the order)."""

    def work(item: Item) -> tuple[Item, list[tuple[Step, dict[str, Any], Image, Any]]]:
        done = []
        for step, op, timer in zip(steps, ops, timers, strict=True):
            if not _in_range(step, item.index):
                continue
            started = time.perf_counter()
            item, record, maps = _apply_frame_step(step, op, item, params_for(step, item.index))
            timer.seconds += time.perf_counter() - started
            done.append((step, record, item.image, maps))
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
    exhibit: dict[str, Any],
    steps: list[Step],
    indices: list[int],
    recorder: Recorder,
    *,
    params_for: ParamsFor,
    workers: int,
    progress: Callable[[int, int], None] | None = None,
) -> list[_Timer]:
    """Stream the exhibit's frames ``indices`` through ``steps``; returns per-step timers."""
    from forensic.enhance import _label

    label = _label(exhibit)
    path = case.root / str(exhibit["stored"])
    recorded = exhibit["frames"]
    total = len(indices)

    def source() -> Iterator[Item]:
        for n, decoded in enumerate(iter_frames(path, indices, where=label), start=1):
            if decoded.source_sha256 != recorded[decoded.index]["sha256"]:
                raise CaseError(
                    f"{label}: frame {decoded.index} no longer decodes to its recorded hash",
                    hint="run `forensic verify --pixels` on the case; nothing runs on altered "
                    "evidence",
                )
            desc = describe(decoded.image)
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
            yield Item(decoded.index, decoded.image, provenance.fresh(decoded.image.shape), desc)
            if progress is not None:
                progress(n, total)

    timers = [_Timer() for _ in steps]
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
            )
            i = j
            continue
        stage = _map_stage if kind == "map" else _reduce_stage
        stream = stage(steps[i], op, params_for(steps[i], -1), stream, recorder.step, timers[i])
        i += 1
    for item in stream:
        recorder.output(item)
    return timers


# -- recording a run -----------------------------------------------------------------------------


class _StepSinks:
    def __init__(self, staging: Staging, keep: bool, rate: Fraction | int) -> None:
        self.records = JsonArraySink(staging)
        self.hashes: list[bytes] = []
        self.keep = VideoSink(staging, rate=rate, what="kept intermediate") if keep else None
        self.maps: dict[str, VideoSink] = {}
        self.fractions: list[float] = []
        self.first_params: dict[str, Any] | None = None
        self.effects: set[str] = set()
        self.details: dict[str, Any] | None = None
        self.last_output: dict[str, Any] | None = None
        self.rate = rate
        self.staging = staging


class RunRecorder:
    """Writes everything a run produces into staged files while the frames stream."""

    def __init__(
        self,
        staging: Staging,
        steps: list[Step],
        *,
        rate: Fraction | int,
        keep: bool,
        label: str | None,
    ) -> None:
        self.staging = staging
        self.rate = rate
        self.inputs = JsonArraySink(staging)
        self.input_hashes: list[bytes] = []
        self.outputs = JsonArraySink(staging)
        self.video = VideoSink(staging, rate=rate, what="output video")
        self.maps = VideoSink(staging, rate=rate, what="provenance map video")
        self.label = label
        self.presentation = (
            VideoSink(staging, rate=rate, what="labelled presentation video") if label else None
        )
        last = {s.number for s in steps[-1:]}
        self.sinks = {
            s.number: _StepSinks(staging, keep and s.number not in last, rate) for s in steps
        }
        self.counts = {name: 0 for name in provenance.CLASSES}

    def input(self, record: dict[str, Any]) -> None:
        self.inputs.add(record)
        self.input_hashes.append(bytes.fromhex(record["source_sha256"]))

    def step(
        self, step: Step, record: dict[str, Any], image: Image, maps: dict[str, Image] | None
    ) -> None:
        sinks = self.sinks[step.number]
        if sinks.first_params is None:
            sinks.first_params = record["params"]
            sinks.details = record.get("details")
        sinks.effects.add(record["effect"])
        if sinks.keep is not None:
            record = {
                **record,
                "output": {
                    **record["output"],
                    "stored": sinks.keep.add(image, record["output"]["pixel_sha256"]),
                },
            }
        if maps is not None:
            files = {}
            for name, pixels in maps.items():
                sink = sinks.maps.get(name)
                if sink is None:
                    sink = sinks.maps[name] = VideoSink(
                        self.staging, rate=self.rate, what=f"{step.op_name} {name} map video"
                    )
                files[name] = {
                    "stored": sink.add(pixels, image_hash(pixels)),
                    "pixel_sha256": image_hash(pixels),
                }
            record = {**record, "maps": {**(record.get("maps") or {}), "frames": files}}
            sinks.fractions.append(float((record.get("maps") or {}).get("inferred_fraction", 0.0)))
        sinks.records.add(record)
        sinks.last_output = record["output"]
        sinks.hashes.append(bytes.fromhex(record["output"]["pixel_sha256"]))

    def output(self, item: Item) -> None:
        from forensic.enhance import describe as describe_map

        k = self.video.add(item.image, item.desc["pixel_sha256"])
        map_desc = describe_map(item.pmap)
        self.maps.add(item.pmap, map_desc["pixel_sha256"])
        counts = provenance.counts(item.pmap)
        for name, n in counts.items():
            self.counts[name] += n
        record: dict[str, Any] = {
            "frame": item.index,
            "output": {**item.desc, "stored": k, "frame_sha256": self.video.frame_hashes[k]},
            "provenance": {"stored": k, "pixel_sha256": map_desc["pixel_sha256"], "counts": counts},
        }
        if self.presentation is not None and self.label is not None:
            copy = provenance.labelled_copy(item.image, self.label)
            copy_hash = image_hash(copy)
            self.presentation.add(copy, copy_hash)
            record["presentation"] = {"stored": k, "pixel_sha256": copy_hash}
        self.outputs.add(record)


def run_video(
    case: Case,
    exhibit: dict[str, Any],
    recipe: Recipe,
    indices: list[int],
    *,
    signer: Signer,
    now: datetime,
    name: str | None,
    keep_intermediates: bool,
    tainted: bool,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RunSummary:
    """Compute, store and journal one video run (called by `forensic.enhance.run_recipe`)."""
    from forensic.enhance import (
        RunSummary,
        _label,
        enfsi_warnings,
        model_record,
        next_run_id,
        step_header,
    )

    profile = case.profile()
    steps = list(recipe.steps)
    rate = _rate(exhibit)
    try:
        digest, _ = sha256_file(case.root / str(exhibit["stored"]))
    except OSError as exc:
        raise CaseError(f"{_label(exhibit)}: cannot read {exhibit['stored']}: {exc}") from None
    if digest != exhibit["sha256"]:
        raise CaseError(
            f"{_label(exhibit)}: the stored evidence no longer matches its recorded SHA-256",
            hint="run `forensic verify` on the case; nothing runs on altered evidence",
        )
    staging = Staging(case)
    label = profile.generative.label if (profile.generative.visible_label and tainted) else None
    try:
        recorder = RunRecorder(staging, steps, rate=rate, keep=keep_intermediates, label=label)
        started = time.perf_counter()
        timers = execute(
            case,
            exhibit,
            steps,
            indices,
            recorder,
            params_for=lambda step, _frame: step.params,
            workers=workers or default_workers(),
            progress=progress,
        )
        elapsed = time.perf_counter() - started
        if recorder.video.pixel_hashes == []:
            raise InputError("the recipe produced no output frame")
        inputs_file = recorder.inputs.close()
        outputs_file = recorder.outputs.close()
        video_file = recorder.video.close()
        maps_file = recorder.maps.close()
        presentation_file = recorder.presentation.close() if recorder.presentation else None
        step_files = {}
        for number, sinks in recorder.sinks.items():
            step_files[number] = {
                "applied": {
                    **sinks.records.close(),
                    "count": sinks.records.count,
                    "merkle_root": merkle_root(sinks.hashes),
                },
                "kept": sinks.keep.close() if sinks.keep is not None else None,
                "maps": {n: s.close() for n, s in sinks.maps.items()},
            }
        environment = pixel_environment()
        warnings: list[str] = []
        upsampled = False
        step_warnings = {}
        for step in steps:
            op = step.operation()
            step_warnings[step.number] = enfsi_warnings(
                step, op, exhibit, steps[: step.number - 1], upsampled=upsampled
            )
            warnings.extend(step_warnings[step.number])
            upsampled = upsampled or op.effect == "resampled"
        with case.writer(signer) as writer:
            run_id = next_run_id(writer.entries)
            step_hashes = []
            for step, timer in zip(steps, timers, strict=True):
                op = step.operation()
                sinks = recorder.sinks[step.number]
                files = step_files[step.number]
                record: dict[str, Any] = {
                    **step_header(run_id, step),
                    "temporal": getattr(op, "temporal", "frame"),
                    "seconds": None if step.seconds is None else list(step.seconds),
                    "params": sinks.first_params if sinks.first_params is not None else step.params,
                    "effect": sorted(sinks.effects),
                    "applied": files["applied"],
                }
                if files["kept"] is not None:
                    record["kept"] = files["kept"]
                if files["maps"]:
                    record["maps"] = files["maps"]
                if step.lane == "generative":
                    used = sinks.first_params or step.params
                    record["model"] = model_record(
                        op, used, functools.partial(_stage_bytes, staging)
                    )
                    record["inferred_fraction"] = max(sinks.fractions, default=0.0)
                record.update(
                    {
                        "duration_ms": round(timer.seconds * 1000, 3),
                        "warnings": step_warnings[step.number],
                        "environment": environment,
                    }
                )
                step_hashes.append(writer.stage("run.step", record, now=now).hash)
            payload: dict[str, Any] = {
                "format": RUN_FORMAT_VIDEO,
                "run": run_id,
                "name": name or recipe.name,
                "exhibit": exhibit["exhibit"],
                "media": "video",
                "source": None,
                "recipe": {"name": recipe.name, "sha256": recipe.sha256, "text": recipe.text},
                "policy": {
                    "sha256": writer.entries[0].payload["policy"]["sha256"],
                    "profile": profile.name,
                },
                "lanes": sorted({s.lane for s in steps}),
                "tainted": tainted,
                "steps": step_hashes,
                "warnings": warnings,
                "conversion": conversion_record(exhibit.get("facts", {})),
                "inputs": {
                    **inputs_file,
                    "count": recorder.inputs.count,
                    "merkle_root": merkle_root(recorder.input_hashes),
                },
                "frames": {**outputs_file, "count": recorder.outputs.count},
                "output": {
                    "frames": video_file["frames"],
                    "merkle_root": video_file["merkle_root"],
                    "rate": f"{Fraction(rate).numerator}/{Fraction(rate).denominator}",
                    "video": video_file,
                },
                "provenance": {
                    "frames": maps_file["frames"],
                    "classes": list(provenance.CLASSES),
                    "counts": recorder.counts,
                    "video": maps_file,
                },
                "wall_time_ms": round(elapsed * 1000, 3),
            }
            if presentation_file is not None:
                payload["presentation"] = {**presentation_file, "label": label}
            writer.stage("run", payload, now=now)
            staging.finalise()
            writer.commit(now=now)
    except BaseException:
        staging.discard()
        raise
    return RunSummary(
        run_id=run_id,
        exhibit=exhibit["exhibit"],
        recipe=recipe.name,
        output=payload["output"],
        provenance=payload["provenance"],
        steps=[
            {
                "step": s.number,
                "op": s.op_name,
                "frames": recorder.sinks[s.number].records.count,
                "effect": ", ".join(sorted(recorder.sinks[s.number].effects)),
                "output": recorder.sinks[s.number].last_output,
                "duration_ms": round(t.seconds * 1000, 3),
            }
            for s, t in zip(steps, timers, strict=True)
        ],
        warnings=warnings,
    )


def _stage_bytes(staging: Staging, data: bytes, suffix: str) -> dict[str, Any]:
    staged = staging.new(suffix)
    staged.path.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    staged.record = {"file": f"derived/{sha}{suffix}", "sha256": sha, "size": len(data)}
    return staged.record


def _rate(exhibit: dict[str, Any]) -> Fraction | int:
    text = exhibit.get("facts", {}).get("average_rate")
    try:
        rate = Fraction(str(text)) if text else Fraction(25)
    except (ValueError, ZeroDivisionError):
        rate = Fraction(25)
    return rate if rate > 0 else Fraction(25)


# -- reading video runs back ---------------------------------------------------------------------


def load_artifact(case_root: Path, record: dict[str, Any], *, what: str) -> list[dict[str, Any]]:
    """A per-frame JSON artifact, checked against its recorded SHA-256 and canonical form."""
    import json

    rel = str(record["file"])
    try:
        data = (case_root / rel).read_bytes()
    except OSError:
        raise CaseError(f"the {what} list {rel} is missing") from None
    if hashlib.sha256(data).hexdigest() != record["sha256"]:
        raise CaseError(f"the {what} list {rel} no longer matches its recorded SHA-256")
    items = json.loads(data)
    if not isinstance(items, list) or canonical(items) != data:
        raise CaseError(f"the {what} list {rel} is not a canonical JSON array")
    return items


def read_stored_frame(case_root: Path, video: dict[str, Any], index: int) -> Image:
    """Frame ``index`` of a stored run video, checked against the file's recorded hash."""
    from forensic.videoio import read_video

    path = case_root / str(video["file"])
    digest, _ = sha256_file(path)
    if digest != video["sha256"]:
        raise CaseError(f"{video['file']} no longer matches its recorded SHA-256")
    for k, pixels in enumerate(read_video(path)):
        if k == index:
            return pixels
    raise CaseError(f"{video['file']} has no frame {index}")


def check_chain(case_root: Path, run: dict[str, Any], steps: list[dict[str, Any]]) -> None:
    """Frame by frame, every step's input is the previous step's output (reductions: their
    inputs' hashes), the run's outputs are the last ones, and every Merkle root and count
    recorded in an entry matches its artifact. Raises CaseError naming the step and frame."""
    label = f"run {run['run']}"
    inputs = load_artifact(case_root, run["inputs"], what=f"{label} input frame")
    roots = [bytes.fromhex(i["source_sha256"]) for i in inputs]
    if len(inputs) != run["inputs"]["count"] or merkle_root(roots) != run["inputs"]["merkle_root"]:
        raise CaseError(f"{label}: its input frame list does not match its count or Merkle root")
    current: dict[int, str] = {i["frame"]: i["converted"]["pixel_sha256"] for i in inputs}
    for step in steps:
        where = f"{label} step {step['step']} ({step['op']})"
        applied = load_artifact(case_root, step["applied"], what=f"{where} frame")
        hashes = [bytes.fromhex(r["output"]["pixel_sha256"]) for r in applied]
        if (
            len(applied) != step["applied"]["count"]
            or merkle_root(hashes) != step["applied"]["merkle_root"]
        ):
            raise CaseError(f"{where}: its frame list does not match its count or Merkle root")
        for rec in applied:
            if "inputs" in rec:
                for source in rec["inputs"]:
                    if current.pop(source["frame"], None) != source["pixel_sha256"]:
                        raise CaseError(
                            f"{where}, frame {source['frame']}: its input is not the previous "
                            "step's output"
                        )
                if _root(rec["inputs"]) != rec["input"]["merkle_root"]:
                    raise CaseError(f"{where}, frame {rec['frame']}: its inputs' root is wrong")
            elif current.get(rec["frame"]) != rec["input"]["pixel_sha256"]:
                raise CaseError(
                    f"{where}, frame {rec['frame']}: its input is not the previous step's output"
                )
            current[rec["frame"]] = rec["output"]["pixel_sha256"]
    outputs = load_artifact(case_root, run["frames"], what=f"{label} output frame")
    produced = [(o["frame"], o["output"]["pixel_sha256"]) for o in outputs]
    if produced != sorted(current.items()):
        raise CaseError(f"{label}: its outputs are not the last steps' outputs")
    leaves = [bytes.fromhex(h) for _, h in produced]
    if (
        merkle_root(leaves) != run["output"]["merkle_root"]
        or len(outputs) != run["frames"]["count"]
    ):
        raise CaseError(f"{label}: its output frame list does not match its Merkle root")
    if run["output"]["video"]["merkle_root"] != run["output"]["merkle_root"]:
        raise CaseError(f"{label}: its output video's frames are not its outputs")


def file_records(
    run: dict[str, Any], steps: list[dict[str, Any]]
) -> list[tuple[str, dict[str, Any]]]:
    """Every file a video run refers to, with what it is."""
    out: list[tuple[str, dict[str, Any]]] = [
        ("input frame list", run["inputs"]),
        ("output frame list", run["frames"]),
        ("output video", run["output"]["video"]),
        ("provenance map video", run["provenance"]["video"]),
    ]
    if "presentation" in run:
        out.append(("labelled presentation video", run["presentation"]))
    for step in steps:
        where = f"step {step['step']}"
        out.append((f"{where} frame list", step["applied"]))
        if "kept" in step:
            out.append((f"{where} kept output video", step["kept"]))
        for name, rec in (step.get("maps") or {}).items():
            out.append((f"{where} {name} map video", rec))
        if "weights_copy" in step.get("model", {}):
            out.append((f"{where} model weights", step["model"]["weights_copy"]))
    return out


# -- replay --------------------------------------------------------------------------------------


class _Compare:
    """Replays a video run and compares each result with the record as it streams."""

    def __init__(self, case_root: Path, run: dict[str, Any], steps: list[dict[str, Any]]) -> None:
        self.case_root = case_root
        self.inputs = {
            r["frame"]: r for r in load_artifact(case_root, run["inputs"], what="input frame")
        }
        self.records = {
            s["step"]: load_artifact(case_root, s["applied"], what=f"step {s['step']} frame")
            for s in steps
        }
        self.position = {n: 0 for n in self.records}
        self.outputs = load_artifact(case_root, run["frames"], what="output frame")
        self.out_position = 0
        self.input_differs = False
        self.differs: dict[int, int] = {n: 0 for n in self.records}
        self.worst = 0
        self.psnr = float("inf")
        self.output_differs = 0
        self.stored: Iterator[Image] | None = None
        self.video = run["output"]["video"]
        self._params: dict[int, dict[int, dict[str, Any]]] = {}

    def params_for(self, step: Step, frame: int) -> dict[str, Any]:
        """The recorded resolved parameters: a replay never depends on an estimator."""
        records = self.records[step.number]
        if frame < 0 or not records:
            return dict(records[0]["params"]) if records else dict(step.params)
        table = self._params.get(step.number)
        if table is None:
            table = self._params[step.number] = {r["frame"]: r["params"] for r in records}
        return dict(table.get(frame, step.params))

    def input(self, record: dict[str, Any]) -> None:
        rec = self.inputs.get(record["frame"])
        if rec is None or rec["converted"]["pixel_sha256"] != record["converted"]["pixel_sha256"]:
            self.input_differs = True

    def step(self, step: Step, record: dict[str, Any], image: Image, maps: Any) -> None:
        pos = self.position[step.number]
        records = self.records[step.number]
        self.position[step.number] = pos + 1
        if (
            pos >= len(records)
            or records[pos]["output"]["pixel_sha256"] != record["output"]["pixel_sha256"]
        ):
            self.differs[step.number] += 1

    def output(self, item: Item) -> None:
        from forensic.enhance import _compare
        from forensic.videoio import read_video

        k = self.out_position
        self.out_position += 1
        if k >= len(self.outputs):
            self.output_differs += 1
            return
        if self.outputs[k]["output"]["pixel_sha256"] == item.desc["pixel_sha256"]:
            if self.stored is not None:
                next(self.stored, None)
            return
        self.output_differs += 1
        if self.stored is None:
            digest, _ = sha256_file(self.case_root / self.video["file"])
            if digest != self.video["sha256"]:
                raise CaseError(f"{self.video['file']} no longer matches its recorded SHA-256")
            self.stored = read_video(self.case_root / self.video["file"])
            for _ in range(k):
                next(self.stored, None)
        stored = next(self.stored, None)
        if stored is None or stored.shape != item.image.shape:
            self.worst, self.psnr = 10**9, 0.0
            return
        worst, psnr = _compare(item.image, stored)
        self.worst = max(self.worst, int(worst))
        self.psnr = min(self.psnr, float(psnr))


def replay_video_run(
    case: Case,
    run: dict[str, Any],
    steps: list[dict[str, Any]],
    *,
    max_abs_difference: int,
    min_psnr_db: float,
) -> list[Any]:
    """Re-run a video run from the original frames and judge each step.

    Every step's per-frame output hashes are compared with the record as the frames stream.
    Steps before the first that differs are *bit-exact*. From the first differing step on,
    the final outputs are measured against the stored output video: when the environment
    differs from the recorded one and every frame is within the policy's bounds, those steps
    are *within tolerance*; otherwise (or on the recorded environment) *not reproduced*.
    """
    from forensic.enhance import StepVerdict, find_source

    exhibit = find_source(case, run["exhibit"])
    verdicts = [
        StepVerdict(run=run["run"], step=s["step"], op=s["op"], lane=s["lane"]) for s in steps
    ]
    recipe_steps: list[Step] = []
    failed: str | None = None
    for s in steps:
        op = lookup(s["op"])
        if op is None or op.version != s["op_version"]:
            failed = f"{s['op']} version {s['op_version']} is not available"
            break
        if s["lane"] == "generative" and "model" in s:
            params = dict(s["params"])
            copy = s["model"].get("weights_copy")
            if copy is not None:
                params["weights"] = str(case.root / copy["file"])
            if generative_facts(op, params).get("weights_sha256") != s["model"].get(
                "weights_sha256"
            ):
                failed = "the model weights differ from those recorded"
                break
        recipe_steps.append(
            Step(
                s["step"],
                s["op"],
                s["lane"],
                dict(s["params"]),
                None if s["roi"] is None else (s["roi"][0], s["roi"][1], s["roi"][2], s["roi"][3]),
                None if s["frames"] is None else (s["frames"][0], s["frames"][1]),
            )
        )
    compare = _Compare(case.root, run, steps[: len(recipe_steps)])
    if recipe_steps:
        indices = sorted(compare.inputs)
        copies = {
            s["step"]: str(case.root / s["model"]["weights_copy"]["file"])
            for s in steps
            if "weights_copy" in s.get("model", {})
        }

        def params_for(step: Step, frame: int) -> dict[str, Any]:
            params = compare.params_for(step, frame)
            if step.number in copies:
                params["weights"] = copies[step.number]
            return params

        try:
            execute(
                case,
                exhibit,
                recipe_steps,
                indices,
                compare,
                params_for=params_for,
                workers=default_workers(),
            )
        except (InputError, CaseError, ParameterError) as exc:
            failed = f"failed: {exc}"
            recipe_steps = []
    now_env = pixel_environment()
    first_diff = next((s.number for s in recipe_steps if compare.differs.get(s.number)), None)
    out_ok = compare.output_differs == 0 and compare.out_position == len(compare.outputs)
    for v, s in zip(verdicts, steps, strict=True):
        v.frames = int(s["applied"]["count"])
        if compare.input_differs:
            v.verdict, v.detail = "not reproduced", "the decoded input differs from the record"
            continue
        if s["step"] > len(recipe_steps):
            v.verdict = "not reproduced"
            v.detail = (
                failed
                if s["step"] == len(recipe_steps) + 1 and failed
                else ("not replayed: an earlier step could not run")
            )
            continue
        if first_diff is None or s["step"] < first_diff:
            v.verdict = "bit-exact" if (first_diff is not None or out_ok) else "not reproduced"
            continue
        diffs = differences(s["environment"], now_env)
        v.differences = diffs
        if compare.worst or compare.psnr != float("inf"):
            v.max_abs_difference = compare.worst
            v.psnr_db = None if compare.psnr == float("inf") else compare.psnr
        if (
            diffs
            and compare.out_position == len(compare.outputs)
            and compare.worst <= max_abs_difference
            and compare.psnr >= min_psnr_db
        ):
            v.verdict = "within tolerance"
            v.detail = (
                f"differs from the record from step {first_diff} on; the final outputs are within "
                "the policy's tolerance of the stored output video"
            )
        else:
            v.verdict = "not reproduced"
            v.detail = (
                "same environment as recorded, so any difference is a failure"
                if not diffs
                else f"differs from the record from step {first_diff} on, beyond the policy's "
                "replay tolerance"
            )
    return verdicts
