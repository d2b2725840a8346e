"""Step code shared by still and video runs: the plan, applying a step, and what is recorded.

* `plan_run` checks a recipe against its source and the case's policy before any pixel is
  read, and returns **every** problem it finds (a `RunPlan`); `RunPlan.raise_first` is what a
  run does with them. The checks, in order: taint, policy (each step), generative operations
  and their weights, time ranges, frame ranges, regions and boxes.
* `apply_step` runs one operation on one image (or a region of it); `enfsi_warnings` are the
  recorded best-practice warnings.
* `step_entry`, `run_payload` and `RunSummary` are the one definition of a ``run.step``
  payload's common fields, a ``run`` payload's common fields and what a run returns.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from forensic.case import Case
from forensic.errors import ForensicError, InputError, ParameterError, PolicyError
from forensic.journal import JournalWriter
from forensic.lanes import (
    check_device,
    generative_facts,
    generative_names,
    lookup,
    pinned_weights,
    select_device,
)
from forensic.media import index_at_time
from forensic.ops.framework import Operation, OpResult
from forensic.ops.models import validate_manifest
from forensic.ops.pixels import check_box
from forensic.pipeline.coords import to_source_coords
from forensic.pipeline.sources import check_taint, find_source
from forensic.policy import Profile
from forensic.recipe import Recipe, Step, resolve_times
from forensic.records import RUN, ExhibitRecord
from forensic.store import Staging

Image = NDArray[Any]
#: Base of the recorded seeds for generative steps' uncertainty maps.
MAPS_SEED = 20261124


class Cancelled(ForensicError):
    """The person (or the interface) cancelled a run: nothing was recorded."""

    exit_code = 130


#: Called now and then while a run computes; returning True cancels it (nothing is recorded).
CancelHook = Callable[[], bool]
#: Progress of a run: (frames done, frames in all).
ProgressHook = Callable[[int, int], None]


def check_cancel(cancel: CancelHook | None) -> None:
    if cancel is not None and cancel():
        raise Cancelled("the run was cancelled; nothing was recorded")


def default_workers() -> int:
    """Threads for per-frame steps: the cores this process may use, at most 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


# -- the plan ------------------------------------------------------------------------------------


@dataclass
class RunPlan:
    """A recipe checked against its source: what would run, and every problem found."""

    source: ExhibitRecord
    recipe: Recipe  # with time ranges resolved to frame ranges
    profile: Profile
    indices: list[int] | None  # video frames the run reads; None for a still image
    problems: list[ForensicError] = field(default_factory=list)
    #: Warnings about the run as a whole (an upright exhibit shown sideways...), recorded
    #: first among the run's warnings.
    warnings: list[str] = field(default_factory=list)
    #: Where the generative steps run (`forensic.lanes.select_device`); None without any.
    device: Any = None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def tainted(self) -> bool:
        return self.source.tainted or any(s.lane == "generative" for s in self.recipe.steps)

    def raise_first(self) -> None:
        if self.problems:
            raise self.problems[0]


def plan_run(case: Case, source_ref: str, recipe: Recipe, *, device: str = "auto") -> RunPlan:
    """Check ``recipe`` against ``source_ref`` (``E1`` or ``R2``) and the case's policy.

    Raises only when the source or the policy cannot be read at all; every problem with the
    recipe itself is collected in `RunPlan.problems`, first problem first (the one a run
    reports). Reads no pixel. ``device`` (``auto``, ``cpu``, ``cuda``) is where generative
    steps run, within the devices the profile allows; it is not used by classical steps.
    """
    source = find_source(case, source_ref)
    profile = case.profile()
    plan = RunPlan(source, recipe, profile, None)
    _collect(plan, check_taint, source, profile)
    for step in recipe.steps:
        _collect(plan, profile.check_operation, step.op_name, step.lane, where=step.label)
    if plan.problems:  # a refused step: nothing about generative operations is loaded
        return plan
    for step in recipe.steps:
        if step.lane == "generative":
            _collect(plan, check_generative, step, profile)
    if any(step.lane == "generative" for step in recipe.steps):
        try:
            plan.device = select_device(device, profile.generative.devices)
        except ForensicError as exc:
            plan.problems.append(exc)
        if not plan.problems:  # each step valid: can it run on that device?
            for step in recipe.steps:
                if step.lane == "generative":
                    _collect(plan, _check_step_device, step, plan.device)
    if not plan.problems:
        _collect(plan, _attach_manifests, plan, profile)
    recipe = plan.recipe
    if source.is_video:
        base = str(source.facts.get("time_base") or "1/25")
        frames = [dict(f) for f in source.frames]
        try:
            plan.recipe = resolve_times(recipe, lambda t: index_at_time(frames, t, base))
            if recipe.run_all:
                last = int(source.facts["frame_count"]) - 1
                plan.recipe = replace(plan.recipe, run_frames=(0, last))
            if recipe.run_seconds is not None:
                start, end = recipe.run_seconds
                plan.recipe = replace(
                    plan.recipe,
                    run_frames=(
                        index_at_time(frames, start, base),
                        index_at_time(frames, end, base),
                    ),
                )
        except ForensicError as exc:
            plan.problems.append(exc)
            return plan
    try:
        plan.indices = wanted_frames(plan.recipe, source)
    except ForensicError as exc:
        plan.problems.append(exc)
    try:
        plan.recipe = resolve_from_source(plan.recipe, source)
        width, height = int(source.facts["width"]), int(source.facts["height"])
        plan.recipe, mapped = to_source_coords(plan.recipe, width, height)
        plan.warnings.extend(mapped)
    except ForensicError as exc:
        plan.problems.append(exc)
        return plan
    plan.warnings.extend(orientation_warnings(plan.recipe, source))
    _collect(plan, check_boxes, plan.recipe, source)
    return plan


def resolve_from_source(recipe: Recipe, source: ExhibitRecord) -> Recipe:
    """The recipe with what depends on the exhibit resolved, each changed step keeping the
    values it was given (`Step.given`): orient ``auto`` becomes the recorded orientation."""
    steps = []
    for step in recipe.steps:
        if step.op_name == "orient" and step.params.get("transform", "auto") == "auto":
            fact = source.facts.get("orientation") or {}
            transform = fact.get("transform", "none") if fact else "none"
            if transform is None:
                raise InputError(
                    f"{step.label}: transform 'auto' cannot be resolved: {source.label}'s "
                    f"recorded orientation ({fact.get('source')}) is not one of the eight "
                    "lossless orientations",
                    hint="look at the frames and give the transform, e.g. "
                    "transform = 'rotate_90_cw'",
                )
            step = replace(
                step, params={**step.params, "transform": transform}, given=dict(step.params)
            )
        steps.append(step)
    return replace(recipe, steps=tuple(steps))


def orientation_warnings(recipe: Recipe, source: ExhibitRecord) -> list[str]:
    """An exhibit recorded as displayed rotated or mirrored, and a recipe that does not orient
    it: say so (it is never rotated silently)."""
    fact = source.facts.get("orientation") or {}
    if not fact or fact.get("transform") == "none":
        return []
    if any(s.op_name == "orient" for s in recipe.steps):
        return []
    how = str(fact.get("transform") or "by a transform forensic does not apply automatically")
    return [
        f"{source.label} is recorded as displayed {how.replace('_', ' ')} ({fact.get('source')}), "
        "and the recipe has no orient step: the output is in stored orientation, as the pixels "
        'were hashed; add a step op = "orient" (transform = "auto") to make it upright'
    ]


def _collect(plan: RunPlan, check: Callable[..., None], *args: Any, **kwargs: Any) -> None:
    try:
        check(*args, **kwargs)
    except ForensicError as exc:
        plan.problems.append(exc)


def check_generative(step: Step, profile: Profile) -> None:
    """A generative step's operation exists, its parameters are valid and its model weights
    are approved by the profile."""
    op = lookup(step.op_name)
    if op is None:
        raise InputError(
            f"{step.label}: no such generative operation",
            hint=f"generative operations: {', '.join(generative_names())}",
        )
    try:
        params = op.check_params(step.params)
    except ParameterError as exc:
        raise InputError(f"{step.label}: {exc.detail}", hint=exc.hint) from None
    try:
        facts = generative_facts(op, params)
    except ParameterError as exc:
        raise InputError(f"{step.label}: {exc.detail}", hint=exc.hint) from None
    weights = facts.get("weights_sha256")
    if facts.get("weights_file") and weights is None:
        raise InputError(
            f"{step.label}: parameter 'weights': {params.get('weights')!r} is not a file"
        )
    if weights is not None and weights not in profile.generative.approved_models:
        raise PolicyError(
            f"{step.label}: model weights {weights} are not approved by policy "
            f"{profile.policy_name!r}, profile {profile.name!r} "
            f"(profiles.{profile.name}.generative.approved_models)",
            hint="a lab approves a model by adding its weights' SHA-256 to the policy "
            "(for an ONNX file, `forensic model approve FILE --task ...` prints the entry)",
        )


def _check_step_device(step: Step, device: Any) -> None:
    """A generative step can run on the run's device (an ONNX step on CUDA needs
    onnxruntime's CUDA provider)."""
    op = lookup(step.op_name)
    if op is None:
        return
    try:
        check_device(op, op.check_params(step.params), device)
    except ForensicError as exc:
        raise InputError(f"{step.label}: {exc.message}", hint=exc.hint) from None


def _attach_manifests(plan: RunPlan, profile: Profile) -> None:
    plan.recipe = with_manifests(plan.recipe, profile)


def with_manifests(recipe: Recipe, profile: Profile) -> Recipe:
    """The recipe with each step that runs an examiner's model file carrying the manifest
    its policy entry declares (its ``manifest`` parameter, recorded with the step, so that a
    replay feeds the model as the run did). A manifest given in the recipe must be the
    policy's; a file approved by hash alone, with no declared manifest, is refused."""
    steps = []
    for step in recipe.steps:
        op = lookup(step.op_name) if step.lane == "generative" else None
        if op is None or "manifest" not in {p.name for p in op.params}:
            steps.append(step)
            continue
        digest = generative_facts(op, op.check_params(step.params)).get("weights_sha256")
        if digest is None:  # no model file (fill_defects with a classical method)
            steps.append(step)
            continue
        declared = profile.generative.manifest(digest)
        if declared is None:
            raise PolicyError(
                f"{step.label}: model {digest} is approved by policy {profile.policy_name!r}, "
                f"profile {profile.name!r}, without a declared manifest (task, channels, "
                "value ranges), so it cannot be fed correctly",
                hint="`forensic model approve FILE --task ...` prints an entry "
                f"[[profiles.{profile.name}.generative.models]] with the file's manifest",
            )
        given = step.params.get("manifest")
        if given is not None and validate_manifest(op.name, given) != declared.canonical():
            raise PolicyError(
                f"{step.label}: its manifest differs from the one policy "
                f"{profile.policy_name!r} declares for model {digest}",
                hint="leave 'manifest' out of the recipe: a run takes it from the policy",
            )
        params = {**step.params, "manifest": declared.canonical()}
        given_params = step.given if step.given is not None else dict(step.params)
        steps.append(replace(step, params=params, given=given_params))
    return replace(recipe, steps=tuple(steps))


def wanted_frames(recipe: Recipe, exhibit: ExhibitRecord) -> list[int] | None:
    """Frame indices a recipe works on (None for a still image); checks every range."""
    if not exhibit.is_video:
        if recipe.run_frames is not None or recipe.run_seconds is not None or recipe.run_all:
            raise InputError(
                f"--frames and --seconds are only for video, and {exhibit.label} is an image"
            )
        for step in recipe.steps:
            if step.lane == "classical" and step.operation().temporal != "frame":
                raise InputError(
                    f"{step.label}: works over a range of video frames, and {exhibit.label} "
                    "is a still image"
                )
            if step.keyframes is not None:
                raise InputError(
                    f"{step.label}: keyframes are only for video, and {exhibit.label} is an "
                    "image; give x, y, width, height"
                )
            if step.frames is not None or step.seconds is not None:
                raise InputError(
                    f"{step.label}: {'frames' if step.frames is not None else 'seconds'} is "
                    f"only for video, and {exhibit.label} is an image"
                )
        return None
    count = int(exhibit.facts["frame_count"])
    ranges = [s.frames for s in recipe.steps if s.frames is not None]
    if recipe.run_frames is not None:
        first, last = recipe.run_frames
        if last >= count:
            raise InputError(
                f"the run's frames {first}:{last} reach outside {exhibit.label}'s {count} "
                f"frames (0 to {count - 1})"
            )
        for step in recipe.steps:
            if step.frames is not None and not (first <= step.frames[0] <= step.frames[1] <= last):
                raise InputError(
                    f"{step.label}: its frames {list(step.frames)} are not inside the run's "
                    f"frames {first}:{last}",
                    hint="the run reads only the frames given with --frames or --seconds",
                )
        return list(range(first, last + 1))
    if not ranges:
        raise InputError(
            f"{exhibit.label} is a video of {count} frames: give at least one step a frame "
            "range, frames = [first, last], or give the run one: --frames A:B or --seconds S:E",
            hint=f"frames are numbered from 0 to {count - 1} in display order, as counted at ingest",
        )
    for step in recipe.steps:
        if step.frames is not None and step.frames[1] >= count:
            raise InputError(
                f"{step.label}: frames {list(step.frames)} is outside the video's {count} "
                f"frames (0 to {count - 1})"
            )
    return sorted({i for first, last in ranges for i in range(first, last + 1)})


def check_boxes(recipe: Recipe, exhibit: ExhibitRecord) -> None:
    """Before any pixel is read: regions and boxes of the steps that run while the image still
    has the exhibit's size must lie inside it (later ones are checked as the steps run)."""
    width, height = int(exhibit.facts["width"]), int(exhibit.facts["height"])
    for step in recipe.steps:
        if step.lane != "classical":
            return
        op = step.operation()
        if step.roi is not None:
            x, y, w, h = step.roi
            if x + w > width or y + h > height:
                raise InputError(
                    f"{step.label}: roi [{x}, {y}, {w}, {h}] reaches outside the "
                    f"{width} x {height} image"
                )
        boxes = [step.params] + [step.box_at(k[0]) for k in step.keyframes or ()]
        for p in boxes:
            if not all(k in p for k in ("x", "y", "width", "height")):
                continue
            shape_only = np.broadcast_to(np.zeros((), np.uint8), (height, width))
            try:
                check_box(op.name, shape_only, p["x"], p["y"], p["width"], p["height"])
            except ParameterError as exc:
                raise InputError(f"{step.label}: {exc.detail}", hint=exc.hint) from None
        if op.effect not in ("values", "redaction"):
            return  # the size may change from here on


# -- applying a step -----------------------------------------------------------------------------


def apply_step(image: Image, op: Operation, params: Mapping[str, Any], roi: Any) -> OpResult:
    """Run one operation on ``image`` (or on its region ``roi``); the result's image is the
    whole output."""
    if roi is None:
        return op.run(image, params)
    x, y, w, h = roi
    if x + w > image.shape[1] or y + h > image.shape[0]:
        raise ParameterError(
            op.name,
            "roi",
            f"[{x}, {y}, {w}, {h}] reaches outside the {image.shape[1]} x {image.shape[0]} image",
        )
    result = op.run(image[y : y + h, x : x + w], params)
    if result.image.shape != (h, w, *image.shape[2:]):
        raise ParameterError(op.name, "roi", "cannot be used: the operation changes the shape")
    whole = image.copy()
    whole[y : y + h, x : x + w] = result.image
    return replace(result, image=whole)


def applies(step: Step, frame: int | None) -> bool:
    return frame is None or step.frames is None or step.frames[0] <= frame <= step.frames[1]


def enfsi_warnings(
    step: Step, op: Operation, exhibit: ExhibitRecord, earlier: list[Step], *, upsampled: bool
) -> list[str]:
    """ENFSI best-practice warnings for one step. ``upsampled``: an earlier step enlarged the
    image by interpolation (resize, pixel aspect, perspective...)."""
    warnings: list[str] = []
    facts = exhibit.facts
    deinterlaced = any(
        s.lane == "classical" and s.operation().category == "deinterlace" for s in earlier
    )
    if facts.get("interlaced_frames", 0) and op.category != "deinterlace" and not deinterlaced:
        warnings.append(
            f"{step.label}: the footage is interlaced ({facts['interlaced_frames']} interlaced "
            "frames) and has not been deinterlaced yet; ENFSI: deinterlace first"
        )
    if op.category == "deblur":
        warnings.append(
            f"{step.label}: near the image borders the result depends on the mirror extension "
            "used to deconvolve (about one PSF width); do not interpret detail there (ENFSI: "
            "watch border effects)"
        )
    if op.category in ("deblur", "sharpen") and step.roi is not None:
        warnings.append(
            f"{step.label}: applied to a region; along the region's edges it used mirrored data, "
            "so detail there is less reliable (ENFSI: watch border effects)"
        )
    if op.category == "measure" and upsampled:
        warnings.append(
            f"{step.label}: measures on an image that an earlier step upsampled; interpolated "
            "pixels add no information (ENFSI)"
        )
    return warnings


class InertTally:
    """Counts, over the frames a step ran on, those it left pixel-identical and those where an
    automatic estimate made it do nothing (a noise level estimated as 0): an inert step must be
    visible in the record, not listed as if it had enhanced anything (issue 16). Frames of an
    analysis step (effect ``analysis``: it measures, its output is its input) are not inert."""

    def __init__(self) -> None:
        self.frames = 0
        self.identical = 0
        self.zero_estimates: dict[str, int] = {}
        self.example: Mapping[str, Any] | None = None

    def add(self, record: Mapping[str, Any]) -> None:
        self.frames += 1
        before, after = record.get("input") or {}, record.get("output") or {}
        # An analysis step (defect masks) never changes a pixel by design: an output equal to
        # its input is what it must give, not a sign that it did nothing.
        analysis = record.get("effect") == "analysis"
        if (
            not analysis
            and before.get("pixel_sha256") is not None
            and before.get("pixel_sha256") == after.get("pixel_sha256")
        ):
            self.identical += 1
        for key, value in (record.get("details") or {}).items():
            if key in ZERO_ESTIMATES and value == 0:
                self.zero_estimates[key] = self.zero_estimates.get(key, 0) + 1
                self.example = record.get("params") or {}

    def warnings(self, step: Step) -> list[str]:
        out: list[str] = []
        of = "" if self.frames <= 1 else f" on {self.identical} of {self.frames} frames"
        if self.identical and self.identical == self.frames:
            out.append(
                f"{step.label}: inert: its output equals its input (pixel-identical){of}; "
                "it changed nothing"
            )
        elif self.identical:
            out.append(f"{step.label}: inert{of}: its output equals its input there")
        for key, count in self.zero_estimates.items():
            where = "" if self.frames <= 1 else f" on {count} of {self.frames} frames"
            used = ", ".join(f"{k} = {v}" for k, v in sorted((self.example or {}).items()))
            out.append(
                f"{step.label}: {ZERO_ESTIMATES[key]} was estimated as 0{where}, so the "
                f"parameters it set ({used}) make the step do nothing measurable; give the "
                "value by hand if the step is wanted"
            )
        return out


#: Automatic estimates (recorded in a step's details) whose value 0 makes a step inert.
ZERO_ESTIMATES = {"noise_sigma_estimated": "the noise level (sigma)"}


# -- what is recorded ----------------------------------------------------------------------------


def step_header(run_id: str, step: Step) -> dict[str, Any]:
    """The fields every ``run.step`` entry starts with, still image or video."""
    op = step.operation()
    return {
        "run": run_id,
        "step": step.number,
        "op": step.op_name,
        "op_version": op.version,
        "lane": step.lane,
        # The report is built from the journal alone, so the method is recorded here.
        "algorithm": {
            "summary": op.summary,
            "references": [ref.as_dict() for ref in op.references],
        },
        "roi": None if step.roi is None else list(step.roi),
        "frames": None if step.frames is None else list(step.frames),
        **({"given": step.given} if step.given is not None else {}),
        **({"keyframes": [list(k) for k in step.keyframes]} if step.keyframes else {}),
        **({"tracked": step.tracked} if step.tracked is not None else {}),
    }


def model_record(
    op: Operation, used: Mapping[str, Any], store: Callable[[bytes, str], dict[str, Any]]
) -> dict[str, Any]:
    """A generative step's model facts; an examiner's weights file is stored in the case (by
    ``store(data, suffix)``), so that the step replays when the original file is long gone:
    the very bytes that were approved and run."""
    model = generative_facts(op, dict(used))
    if used.get("weights") is not None:
        data, _ = pinned_weights(str(used["weights"]))
        model["weights_copy"] = store(data, Path(str(used["weights"])).suffix or ".bin")
    return model


def step_entry(
    run_id: str,
    step: Step,
    body: Mapping[str, Any],
    *,
    used: Mapping[str, Any],
    inferred_fractions: list[float],
    store: Callable[[bytes, str], dict[str, Any]],
    duration_ms: float,
    warnings: list[str],
    environment: Mapping[str, Any],
) -> dict[str, Any]:
    """A ``run.step`` payload: the header, the media-specific ``body`` (still: the image
    records; video: the artifact references), a generative step's model facts, and the
    duration, warnings and environment."""
    record: dict[str, Any] = {**step_header(run_id, step), **body}
    if step.lane == "generative":
        record["model"] = model_record(step.operation(), used, store)
        record["inferred_fraction"] = max(inferred_fractions, default=0.0)
    record.update(
        {"duration_ms": duration_ms, "warnings": warnings, "environment": dict(environment)}
    )
    return record


def run_payload(
    *,
    run_format: str,
    run_id: str,
    name: str | None,
    recipe: Recipe,
    source: ExhibitRecord,
    policy_sha256: str,
    profile: Profile,
    tainted: bool,
    step_hashes: list[str],
    warnings: list[str],
    body: Mapping[str, Any],
) -> dict[str, Any]:
    """A ``run`` payload: the fields common to still and video runs, then the media-specific
    ``body`` (docs/spec.md §3.1, §3.2)."""
    return {
        "format": run_format,
        "run": run_id,
        "name": name or recipe.name,
        "exhibit": source.exhibit_id,
        "media": source.media,
        "source": (
            {"run": source.source_run, "pixel_sha256": source.pixel_sha256}
            if source.source_run is not None
            else None
        ),
        "recipe": {"name": recipe.name, "sha256": recipe.sha256, "text": recipe.text},
        "coords": recipe.coords,
        **({"range": recipe.range_record} if recipe.range_record is not None else {}),
        "policy": {"sha256": policy_sha256, "profile": profile.name},
        "lanes": sorted({s.lane for s in recipe.steps}),
        "tainted": tainted,
        "steps": step_hashes,
        "warnings": warnings,
        **body,
    }


def commit_run(
    writer: JournalWriter, staging: Staging, payload: Mapping[str, Any], *, now: datetime
) -> None:
    """Sign the ``run`` entry, then commit the staged files, then the journal in one atomic
    write. A crash in between leaves only unreferenced content-addressed files, which verify
    reports; never a recorded file that is missing."""
    writer.stage(RUN.name, payload, now=now)
    staging.commit()
    writer.commit(now=now)


@dataclass(frozen=True)
class StepSummary:
    """One step of a finished run, as interfaces show it."""

    step: int
    op: str
    frames: int
    effect: str | None
    output: Mapping[str, Any] | None
    duration_ms: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "op": self.op,
            "frames": self.frames,
            "effect": self.effect,
            "output": self.output,
            "duration_ms": self.duration_ms,
        }


@dataclass(frozen=True)
class RunSummary:
    """What a run returns: its ID, output and provenance records, steps and warnings."""

    run_id: str
    exhibit: str
    recipe: str
    output: Mapping[str, Any]
    provenance: Mapping[str, Any]
    steps: list[StepSummary]
    warnings: list[str]

    @classmethod
    def of(cls, payload: Mapping[str, Any], recipe: Recipe, steps: list[StepSummary]) -> RunSummary:
        """The summary of the run whose ``run`` payload is ``payload``."""
        return cls(
            run_id=str(payload["run"]),
            exhibit=str(payload["exhibit"]),
            recipe=recipe.name,
            output=payload["output"],
            provenance=payload["provenance"],
            steps=steps,
            warnings=list(payload["warnings"]),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": self.run_id,
            "exhibit": self.exhibit,
            "recipe": self.recipe,
            "output": self.output,
            "provenance": self.provenance,
            "steps": [s.as_dict() for s in self.steps],
            "warnings": self.warnings,
        }
