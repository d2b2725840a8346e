"""Still-image runs: a recipe applied to one image in memory, every step recorded.

In order (the plan was checked by `forensic.pipeline.steps.plan_run`):

1. the evidence is read through the case store and checked against its recorded file and
   pixel hashes, then decoded;
2. every step is computed in memory: output pixel hashes, resolved parameters, duration,
   ENFSI warnings; the provenance map follows along;
3. outputs and maps are encoded losslessly and decoded back to prove the round trip;
4. only then, under the journal lock: one ``run.step`` entry per step plus a ``run`` entry are
   signed in memory, the staged files are committed into ``derived/`` (content-addressed,
   read-only), and the entries are written to the journal in one atomic rewrite.

Anything that fails before step 4 leaves the case exactly as it was.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from forensic import provenance
from forensic.case import Case
from forensic.environment import pixel_environment
from forensic.errors import InputError, ParameterError
from forensic.hashing import describe_image, image_hash
from forensic.keys import Signer
from forensic.lanes import generative_maps
from forensic.media import decode_image
from forensic.pipeline.masks import store_still_masks
from forensic.pipeline.sources import Frame, load_frames
from forensic.pipeline.steps import (
    MAPS_SEED,
    CancelHook,
    InertTally,
    RunPlan,
    RunSummary,
    StepSummary,
    applies,
    apply_step,
    check_cancel,
    commit_run,
    enfsi_warnings,
    run_payload,
    step_entry,
)
from forensic.recipe import Recipe, Step
from forensic.records import RUN_FORMAT_STILL, RUN_STEP, ExhibitRecord, next_run_id
from forensic.store import Staging

Image = NDArray[Any]


@dataclass
class FrameStep:
    """One step applied to one frame."""

    frame: int | None
    params: dict[str, Any]
    effect: str
    details: dict[str, Any]
    input: dict[str, Any]
    output: dict[str, Any]
    image: Image = field(repr=False)
    maps: dict[str, Image] | None = field(default=None, repr=False)
    maps_meta: dict[str, Any] | None = None

    def record(self) -> dict[str, Any]:
        out = {
            "params": self.params,
            "effect": self.effect,
            "details": self.details,
            "input": self.input,
            "output": self.output,
        }
        return out if self.frame is None else {"frame": self.frame, **out}


@dataclass
class StepResult:
    step: Step
    frames: list[FrameStep]
    duration_ms: float
    warnings: list[str]


@dataclass
class FrameOutput:
    source: Frame
    image: Image
    pmap: provenance.ProvenanceMap


def compute(
    recipe: Recipe,
    frames: list[Frame],
    exhibit: ExhibitRecord,
    *,
    cancel: CancelHook | None = None,
) -> tuple[list[StepResult], list[FrameOutput]]:
    """Run the recipe on every frame in memory. Raises (naming the step) on a problem."""
    current = {id(f): f.image for f in frames}
    pmaps = {
        id(f): provenance.fresh(f.image.shape) if f.pmap is None else f.pmap.copy() for f in frames
    }
    results: list[StepResult] = []
    upsampled = False
    for step in recipe.steps:
        check_cancel(cancel)
        op = step.operation()
        started = time.perf_counter()
        done: list[FrameStep] = []
        for f in frames:
            if not applies(step, f.index):
                continue
            image = current[id(f)]
            if step.lane == "generative" and all(
                k in step.params for k in ("x", "y", "width", "height")
            ):
                x, y, w, h = (int(step.params[k]) for k in ("x", "y", "width", "height"))
                if (pmaps[id(f)][y : y + h, x : x + w] == provenance.REDACTED).any():
                    raise InputError(
                        f"{step.label}: its region overlaps redacted pixels; inpainting would "
                        "reconstruct what was redacted"
                    )
            try:
                result = apply_step(image, op, step.params, step.roi)
            except ParameterError as exc:
                where = step.label if f.index is None else f"{step.label}, frame {f.index}"
                raise InputError(f"{where}: {exc.detail}", hint=exc.hint) from None
            filled = provenance.filled_mask(op, result.params, image.shape)
            if filled is not None and (pmaps[id(f)][filled] == provenance.REDACTED).any():
                raise InputError(
                    f"{step.label}: its mask overlaps redacted pixels; inpainting would "
                    "reconstruct what was redacted"
                )
            pmaps[id(f)] = provenance.follow(
                pmaps[id(f)],
                op,
                result.params,
                effect=result.effect,
                roi=step.roi,
                out_shape=result.image.shape,
            )
            maps = meta = None
            if step.lane == "generative":
                seed = MAPS_SEED + 10_000_000 * step.number + 100 * (f.index or 0)
                maps, meta = generative_maps(op, image, result.image, result.params, seed=seed)
            done.append(
                FrameStep(
                    frame=f.index,
                    params=result.params,
                    effect=result.effect,
                    details=result.details,
                    input=describe_image(image),
                    output=describe_image(result.image),
                    image=result.image,
                    maps=maps,
                    maps_meta=meta,
                )
            )
            current[id(f)] = result.image
        tally = InertTally()
        for fs in done:
            tally.add(fs.record())
        results.append(
            StepResult(
                step=step,
                frames=done,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
                warnings=enfsi_warnings(
                    step, op, exhibit, list(recipe.steps[: step.number - 1]), upsampled=upsampled
                )
                + tally.warnings(step),
            )
        )
        upsampled = upsampled or any(
            fs.effect == "resampled"
            and fs.output["width"] * fs.output["height"] > fs.input["width"] * fs.input["height"]
            for fs in done
        )
    outputs = [FrameOutput(f, current[id(f)], pmaps[id(f)]) for f in frames]
    return results, outputs


def encode_lossless(image: Image) -> tuple[bytes, str]:
    """PNG for 8-bit, TIFF for 16-bit; decoded back and compared before it is trusted."""
    suffix = ".png" if image.dtype == np.uint8 else ".tif"
    bgr = image
    if image.ndim == 3:
        code = cv2.COLOR_RGB2BGR if image.shape[2] == 3 else cv2.COLOR_RGBA2BGRA
        bgr = cv2.cvtColor(image, code)
    ok, buffer = cv2.imencode(suffix, np.ascontiguousarray(bgr))
    if not ok:
        raise RuntimeError(f"internal error: cannot encode {suffix}")
    data = buffer.tobytes()
    back, _ = decode_image(data, where="encoded output")
    if back.dtype != image.dtype or back.shape != image.shape or not np.array_equal(back, image):
        raise RuntimeError("internal error: the lossless encoding did not round-trip")
    return data, suffix


@dataclass
class ComputedStill:
    """Steps 1 to 3 of a still run (read, compute, encode): everything but the record."""

    frame: Frame
    results: list[StepResult]
    output: FrameOutput
    encoded: tuple[bytes, str]
    pmap_encoded: tuple[bytes, str]
    presentation: tuple[bytes, str] | None
    kept: list[tuple[bytes, str]]


def compute_still(
    case: Case, plan: RunPlan, *, keep_intermediates: bool = False, cancel: CancelHook | None = None
) -> ComputedStill:
    """Read, compute and encode a still run (steps 1 to 3); nothing is stored or journaled."""
    profile = plan.profile
    (frame,) = load_frames(case, plan.source, None)
    results, (out,) = compute(plan.recipe, [frame], plan.source, cancel=cancel)
    check_cancel(cancel)
    presentation = (
        encode_lossless(provenance.labelled_copy(out.image, profile.generative.label))
        if profile.generative.visible_label and plan.tainted
        else None
    )
    kept = [encode_lossless(r.frames[0].image) for r in results[:-1]] if keep_intermediates else []
    return ComputedStill(
        frame,
        results,
        out,
        encode_lossless(out.image),
        encode_lossless(out.pmap),
        presentation,
        kept,
    )


def run_still(
    case: Case,
    plan: RunPlan,
    *,
    signer: Signer,
    now: datetime,
    name: str | None = None,
    keep_intermediates: bool = False,
    cancel: CancelHook | None = None,
    computed: ComputedStill | None = None,
) -> RunSummary:
    """Compute, store and journal one still-image run (see the module docstring). With
    ``computed`` (`compute_still`, done elsewhere: a batch worker), only store and journal."""
    exhibit, recipe, profile = plan.source, plan.recipe, plan.profile
    if computed is None:
        computed = compute_still(case, plan, keep_intermediates=keep_intermediates, cancel=cancel)
    frame, results, out = computed.frame, computed.results, computed.output
    encoded, pmap_encoded = computed.encoded, computed.pmap_encoded
    presentation, kept = computed.presentation, computed.kept
    label = profile.generative.label
    tainted = plan.tainted
    environment = pixel_environment()
    warnings = [*plan.warnings, *(w for r in results for w in r.warnings)]
    staging = case.store.stage()
    try:
        with case.writer(signer) as writer:
            run_id = next_run_id(writer.entries)
            output = {**staging.add(*encoded), **describe_image(out.image)}
            pmap_record = {
                **staging.add(*pmap_encoded),
                "pixel_sha256": image_hash(out.pmap),
                "classes": list(provenance.CLASSES),
                "counts": provenance.counts(out.pmap),
            }
            if presentation is not None:
                output["presentation"] = {**staging.add(*presentation), "label": label}
            step_hashes = []
            for i, r in enumerate(results):
                body = _frame_record(r, staging, output, last=i == len(results) - 1)
                if not body.get("output", {}).get("file") and keep_intermediates and i < len(kept):
                    body["output"] = {**body["output"], **staging.add(*kept[i])}
                record = step_entry(
                    run_id,
                    r.step,
                    body,
                    used=r.frames[0].params if r.frames else r.step.params,
                    inferred_fractions=[
                        fs.maps_meta["inferred_fraction"] for fs in r.frames if fs.maps_meta
                    ],
                    store=staging.add,
                    duration_ms=r.duration_ms,
                    warnings=r.warnings,
                    environment=environment,
                )
                step_hashes.append(writer.stage(RUN_STEP.name, record, now=now).hash)
            payload = run_payload(
                run_format=RUN_FORMAT_STILL,
                run_id=run_id,
                name=name,
                recipe=recipe,
                source=exhibit,
                policy_sha256=writer.entries[0].payload["policy"]["sha256"],
                profile=profile,
                tainted=tainted,
                step_hashes=step_hashes,
                warnings=warnings,
                body={
                    "output": output,
                    "provenance": pmap_record,
                    "input": describe_image(frame.image),
                },
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
                step=r.step.number,
                op=r.step.op_name,
                frames=len(r.frames),
                effect=r.frames[0].effect if r.frames else None,
                output=r.frames[-1].output if r.frames else None,
                duration_ms=r.duration_ms,
            )
            for r in results
        ],
    )


def _frame_record(
    r: StepResult, staging: Staging, output: dict[str, Any], *, last: bool
) -> dict[str, Any]:
    """A still step's image records (params, effect, details, input, output, maps); the last
    step's output names the stored output file."""
    fs = r.frames[0]
    rec = fs.record()
    # Defect masks become 1-bit PNG files in derived/, named and hashed in the record.
    rec["details"] = store_still_masks(rec.get("details"), staging.add)
    if fs.maps is not None:
        rec["maps"] = {
            **(fs.maps_meta or {}),
            "files": {
                name: {**staging.add(*encode_lossless(m)), "pixel_sha256": image_hash(m)}
                for name, m in fs.maps.items()
            },
        }
    if last:
        rec["output"] = {**rec["output"], **{k: output[k] for k in ("file", "sha256", "size")}}
    return rec
