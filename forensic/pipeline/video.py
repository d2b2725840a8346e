"""Video runs: a recipe streamed over a frame range, at constant memory.

A video run differs from a still-image run (`forensic.pipeline.still`) in three ways:

* **Streaming.** Frames are decoded one at a time and pass through the steps as a chain of
  generators (`forensic.pipeline.stream`); per-frame steps run on a small thread pool while
  the next frames decode. Nothing holds more than a few frames, except an operation whose
  method needs its whole range (a median).
* **Temporal steps.** A step's operation may be *per frame*, a *map* over its frame range
  (registration, stabilisation) or a *reduce* (frame averaging, multi-frame super-resolution:
  one output labelled with the range's first frame index). Frames outside a step's range pass
  through it.
* **Granularity.** One signed ``run.step`` entry per step, never per frame. The per-frame
  records go into a hashed JSON artifact in ``derived/``, and the entry carries its SHA-256
  plus the RFC 9162 Merkle root of the step's output-frame pixel hashes, so one frame can be
  proved on its own.

Outputs, provenance maps, labelled presentation copies, kept intermediates and generative maps
are each one lossless FFV1/Matroska file (`forensic.pipeline.sinks`), written while the frames
stream into staged files of the case store, which are committed only once every entry is
signed (a failure removes them).
"""

from __future__ import annotations

import ctypes
import functools
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from fractions import Fraction
from typing import Any

from forensic import provenance
from forensic.case import Case
from forensic.environment import pixel_environment
from forensic.errors import InputError
from forensic.hashing import MerkleTree, describe_image, image_hash
from forensic.keys import Signer
from forensic.media import conversion_record
from forensic.pipeline.flicker import FlickerMeter, judge_flicker
from forensic.pipeline.masks import MaskVideos
from forensic.pipeline.sinks import JsonArraySink, VideoSink
from forensic.pipeline.sources import check_evidence_file
from forensic.pipeline.steps import (
    CancelHook,
    InertTally,
    ProgressHook,
    RunPlan,
    RunSummary,
    StepSummary,
    check_cancel,
    commit_run,
    default_workers,
    enfsi_warnings,
    run_payload,
    step_entry,
)
from forensic.pipeline.stream import Item, Recorder, Timer, execute
from forensic.recipe import Step
from forensic.records import RUN_FORMAT_VIDEO, RUN_STEP, ExhibitRecord, next_run_id
from forensic.store import Staging

Image = Any


#: Allocations from this size up are mapped from the kernel and returned to it when freed.
MMAP_THRESHOLD = 1 << 20
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


@functools.cache
def fixed_mmap_threshold() -> bool:
    """Fix glibc's mmap threshold at `MMAP_THRESHOLD` for this process (once); False where the
    C library has no ``mallopt`` (not glibc). Why: by default glibc raises the threshold to
    the size of each large block freed (up to 32 MiB), after which frame-sized arrays come
    from the heaps of the threads that allocate them; the per-frame workers, the decoder and
    the encoders each fragment their own, and the resident set grew with the clip's length
    (+28 to +49 MiB from 10 to 100 1080p frames; +8 MiB with the threshold fixed at 1 MiB, and
    a lower peak). The pixels are the same either way."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):  # pragma: no cover - not glibc
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))


class _StepSinks:
    def __init__(self, staging: Staging, keep: bool, rate: Fraction | int) -> None:
        self.records = JsonArraySink(staging)
        self.hashes = MerkleTree()  # of the step's output frames' pixel hashes
        self.keep = VideoSink(staging, rate=rate, what="kept intermediate") if keep else None
        self.maps: dict[str, VideoSink] = {}
        self.masks = MaskVideos(staging, rate=rate, what="defect")
        self.fractions: list[float] = []
        self.first_params: dict[str, Any] | None = None
        self.effects: set[str] = set()
        self.details: dict[str, Any] | None = None
        self.last_output: dict[str, Any] | None = None
        self.inert = InertTally()
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
        self.input_hashes = MerkleTree()  # of the decoded source frames' hashes
        self.outputs = JsonArraySink(staging)
        self.video = VideoSink(staging, rate=rate, what="output video")
        # Not repeat_uniform: reusing a uniform map's packet saves ~14 ms a 1080p frame, but a
        # run's peak memory then grew with clip length (+22 MiB from 10 to 100 frames,
        # against +0.9 MiB encoding each map); flat memory matters more for long clips.
        self.maps = VideoSink(staging, rate=rate, what="provenance map video")
        #: The description of the last uniform map, by (shape, value): the maps of a run of
        #: value operations are all one class, so each frame's would hash the same bytes.
        self._uniform_map: tuple[tuple[tuple[int, ...], int], dict[str, Any]] | None = None
        self.label = label
        self.presentation = (
            VideoSink(staging, rate=rate, what="labelled presentation video") if label else None
        )
        last = {s.number for s in steps[-1:]}
        self.sinks = {
            s.number: _StepSinks(staging, keep and s.number not in last, rate) for s in steps
        }
        self.counts = {name: 0 for name in provenance.CLASSES}
        #: Output records waiting for their frame's hash from the encoding thread, in order.
        self.waiting: deque[tuple[int, dict[str, Any]]] = deque()

    def keeps_image(self, step: Step) -> bool:
        return self.sinks[step.number].keep is not None

    def input(self, record: dict[str, Any]) -> None:
        self.inputs.add(record)
        self.input_hashes.add(bytes.fromhex(record["source_sha256"]))

    def step(
        self, step: Step, record: dict[str, Any], image: Image, maps: dict[str, Image] | None
    ) -> None:
        sinks = self.sinks[step.number]
        if record.get("details"):
            # Defect masks go into the step's FFV1 mask videos, not the per-frame records.
            record = {**record, "details": sinks.masks.store(record["details"])}
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
        sinks.inert.add(record)
        sinks.last_output = record["output"]
        sinks.hashes.add(bytes.fromhex(record["output"]["pixel_sha256"]))

    def _describe_map(self, pmap: provenance.ProvenanceMap) -> dict[str, Any]:
        value = provenance.uniform_class(pmap)
        if value is None:
            return describe_image(pmap)
        key = (tuple(pmap.shape), value)
        if self._uniform_map is None or self._uniform_map[0] != key:
            self._uniform_map = (key, describe_image(pmap))
        return self._uniform_map[1]

    def output(self, item: Item) -> None:
        k = self.video.add(item.image, item.desc["pixel_sha256"])
        map_desc = self._describe_map(item.pmap)
        self.maps.add(item.pmap, map_desc["pixel_sha256"])
        counts = provenance.counts(item.pmap)
        for name, n in counts.items():
            self.counts[name] += n
        record: dict[str, Any] = {
            "frame": item.index,
            "output": {**item.desc, "stored": k},
            "provenance": {"stored": k, "pixel_sha256": map_desc["pixel_sha256"], "counts": counts},
        }
        if self.presentation is not None and self.label is not None:
            copy = provenance.labelled_copy(item.image, self.label)
            copy_hash = image_hash(copy)
            self.presentation.add(copy, copy_hash)
            record["presentation"] = {"stored": k, "pixel_sha256": copy_hash}
        self.waiting.append((k, record))
        self.flush(wait=False)

    def flush(self, *, wait: bool) -> None:
        """Write the output records whose frame hash is known (with ``wait``: all of them),
        in order. The keys of a canonical record are sorted, so adding the hash last gives
        the bytes of a record made whole."""
        while self.waiting:
            k, record = self.waiting[0]
            if not wait and self.video.encoded <= k:
                return
            record["output"]["frame_sha256"] = self.video.frame_hash(k)
            self.outputs.add(record)
            self.waiting.popleft()


def run_video(
    case: Case,
    plan: RunPlan,
    *,
    signer: Signer,
    now: datetime,
    name: str | None = None,
    keep_intermediates: bool = False,
    workers: int | None = None,
    progress: ProgressHook | None = None,
    cancel: CancelHook | None = None,
    computed: Callable[[Recorder], list[Timer]] | None = None,
) -> RunSummary:
    """Compute, store and journal one video run (see the module docstring). ``computed``
    replaces the stream: it feeds the recorder what `execute` would, in the same order (a
    batch replaying parts computed by workers, who checked the evidence), and returns the
    per-step timers."""
    exhibit, recipe, profile, tainted = plan.source, plan.recipe, plan.profile, plan.tainted
    assert plan.indices is not None
    steps = list(recipe.steps)
    rate = _rate(exhibit)
    if computed is None:
        check_evidence_file(case, exhibit)
    fixed_mmap_threshold()
    staging = case.store.stage()
    label = profile.generative.label if (profile.generative.visible_label and tainted) else None
    try:
        recorder = RunRecorder(staging, steps, rate=rate, keep=keep_intermediates, label=label)
        meters = {
            s.number: FlickerMeter()
            for s in steps
            if s.lane == "generative" and getattr(s.operation(), "temporal", "frame") == "frame"
        }
        started = time.perf_counter()
        if computed is None:
            timers = execute(
                case,
                exhibit,
                steps,
                plan.indices,
                recorder,
                params_for=lambda step, frame: step.params_at(frame),
                workers=workers or default_workers(),
                progress=progress,
                cancel=cancel,
                meters=meters,
            )
        else:
            if meters:
                # The flicker figure is measured across consecutive frames as they stream;
                # parts computed elsewhere do not carry it (the batch refuses such runs).
                raise InputError(
                    "a video run with a generative per-frame step cannot be recorded from "
                    "parts computed elsewhere (its flicker figure spans the whole clip)",
                    hint="run it with forensic enhance",
                )
            timers = computed(recorder)
        elapsed = time.perf_counter() - started
        if recorder.video.count == 0:
            raise InputError("the recipe produced no output frame")
        recorder.flush(wait=True)
        inputs_file = recorder.inputs.close()
        outputs_file = recorder.outputs.close()
        video_file = recorder.video.close()
        maps_file = recorder.maps.close()
        presentation_file = recorder.presentation.close() if recorder.presentation else None
        bodies = {}
        for step in steps:
            sinks = recorder.sinks[step.number]
            op = step.operation()
            body: dict[str, Any] = {
                "temporal": getattr(op, "temporal", "frame"),
                "seconds": None if step.seconds is None else list(step.seconds),
                "params": sinks.first_params if sinks.first_params is not None else step.params,
                "effect": sorted(sinks.effects),
                "applied": {
                    **sinks.records.close(),
                    "count": sinks.records.count,
                    "merkle_root": sinks.hashes.root(),
                },
            }
            if sinks.keep is not None:
                body["kept"] = sinks.keep.close()
            if sinks.maps:
                body["maps"] = {n: s.close() for n, s in sinks.maps.items()}
            if sinks.masks.sinks:
                body["masks"] = sinks.masks.close()
            meter = meters.get(step.number)
            figure = None if meter is None else meter.record()
            if figure is not None:
                body["temporal_consistency"] = figure
            bodies[step.number] = body
        environment = pixel_environment()
        warnings: list[str] = list(plan.warnings)
        upsampled = False
        step_warnings = {}
        for step in steps:
            op = step.operation()
            step_warnings[step.number] = enfsi_warnings(
                step, op, exhibit, steps[: step.number - 1], upsampled=upsampled
            ) + recorder.sinks[step.number].inert.warnings(step)
            # Above the policy's bound: a warning recorded with the step, or a refusal
            # raised here, before anything is signed (the staged files are discarded).
            step_warnings[step.number] += judge_flicker(
                bodies[step.number].get("temporal_consistency"),
                max_flicker=profile.generative.max_flicker,
                action=profile.generative.flicker_action,
                where=step.label,
            )
            warnings.extend(step_warnings[step.number])
            upsampled = upsampled or op.effect == "resampled"
        check_cancel(cancel)
        with case.writer(signer) as writer:
            run_id = next_run_id(writer.entries)
            step_hashes = []
            for step, timer in zip(steps, timers, strict=True):
                sinks = recorder.sinks[step.number]
                record = step_entry(
                    run_id,
                    step,
                    bodies[step.number],
                    used=sinks.first_params or step.params,
                    inferred_fractions=sinks.fractions,
                    store=staging.add,
                    duration_ms=round(timer.seconds * 1000, 3),
                    warnings=step_warnings[step.number],
                    environment=environment,
                )
                step_hashes.append(writer.stage(RUN_STEP.name, record, now=now).hash)
            body = {
                "conversion": conversion_record(dict(exhibit.facts)),
                "inputs": {
                    **inputs_file,
                    "count": recorder.inputs.count,
                    "merkle_root": recorder.input_hashes.root(),
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
                body["presentation"] = {**presentation_file, "label": label}
            payload = run_payload(
                run_format=RUN_FORMAT_VIDEO,
                run_id=run_id,
                name=name,
                recipe=recipe,
                source=exhibit,
                policy_sha256=writer.entries[0].payload["policy"]["sha256"],
                profile=profile,
                tainted=tainted,
                step_hashes=step_hashes,
                warnings=warnings,
                body=body,
            )
            commit_run(writer, staging, payload, now=now)
    except BaseException:
        staging.discard()
        raise
    return RunSummary.of(
        payload,
        recipe,
        [
            StepSummary(
                step=s.number,
                op=s.op_name,
                frames=recorder.sinks[s.number].records.count,
                effect=", ".join(sorted(recorder.sinks[s.number].effects)),
                output=recorder.sinks[s.number].last_output,
                duration_ms=round(t.seconds * 1000, 3),
            )
            for s, t in zip(steps, timers, strict=True)
        ],
    )


def _rate(exhibit: ExhibitRecord) -> Fraction | int:
    text = exhibit.facts.get("average_rate")
    try:
        rate = Fraction(str(text)) if text else Fraction(25)
    except (ValueError, ZeroDivisionError):
        rate = Fraction(25)
    return rate if rate > 0 else Fraction(25)
