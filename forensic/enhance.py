"""Enhancement runs: apply a recipe to an exhibit, record every step, store the output.

A run is all-or-nothing. In order:

1. the recipe is validated and every step checked against the case's policy profile;
2. the evidence is read and checked against its recorded hashes (file, pixels; per frame for
   video) and decoded; video frames are converted to RGB in a recorded, repeatable way;
3. every step is computed in memory, frame by frame (a still image is one frame): output
   pixel hashes, resolved parameters, duration, ENFSI warnings; provenance maps follow along;
4. outputs and maps are encoded losslessly and decoded back to prove the round trip;
5. only then, under the journal lock: one ``run.step`` entry per step plus a ``run`` entry are
   signed in memory, the files go into ``derived/`` (content-addressed, read-only), and the
   entries are written to the journal in one atomic rewrite.

Anything that fails before step 5 leaves the case exactly as it was. `replay_run` re-runs the
recorded steps from the original evidence for ``verify --replay``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from forensic import provenance
from forensic.case import Case, exhibits
from forensic.environment import differences, pixel_environment
from forensic.errors import CaseError, InputError, ParameterError, PolicyError
from forensic.fsutil import write_atomic
from forensic.hashing import (
    CHANNEL_ORDERS,
    PIXEL_HASH_ALGORITHM,
    merkle_root,
    pixel_hash,
    sha256_hex,
)
from forensic.journal import Entry
from forensic.keys import Signer
from forensic.lanes import (
    generative_facts,
    generative_maps,
    generative_names,
    lookup,
    pinned_weights,
)
from forensic.media import FRAME_CONVERSION, decode_frames, decode_image, index_at_time
from forensic.ops.framework import Operation, OpResult
from forensic.ops.pixels import check_box
from forensic.policy import Profile
from forensic.recipe import Recipe, Step, resolve_times

Image = NDArray[Any]
RUN_FORMAT = "forensic-run/1"
#: Base of the recorded seeds for generative steps' uncertainty maps.
MAPS_SEED = 20261124


def image_hash(image: Image) -> str:
    channels = 1 if image.ndim == 2 else image.shape[2]
    return pixel_hash(image, channel_order=CHANNEL_ORDERS[channels])


def describe(image: Image) -> dict[str, Any]:
    channels = 1 if image.ndim == 2 else image.shape[2]
    return {
        "pixel_hash_algorithm": PIXEL_HASH_ALGORITHM,
        "pixel_sha256": image_hash(image),
        "width": int(image.shape[1]),
        "height": int(image.shape[0]),
        "channels": CHANNEL_ORDERS[channels],
        "dtype": str(image.dtype),
    }


def apply_step(image: Image, op: Operation, params: dict[str, Any], roi: Any) -> OpResult:
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


# -- ENFSI best-practice checks (warnings, recorded and reported) ------------------------------


def enfsi_warnings(
    step: Step, op: Operation, exhibit: dict[str, Any], earlier: list[Step], *, upsampled: bool
) -> list[str]:
    """ENFSI best-practice warnings for one step. ``upsampled``: an earlier step enlarged the
    image by interpolation (resize, pixel aspect, perspective...)."""
    warnings: list[str] = []
    facts = exhibit.get("facts", {})
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


# -- reading the evidence ------------------------------------------------------------------------


@dataclass
class Frame:
    """A frame the steps start from: a still image (index None) or one video frame."""

    index: int | None
    image: Image
    pts: int | None = None
    source_sha256: str | None = None  # the decoded frame's own hash (video)
    source_format: str | None = None
    pmap: provenance.ProvenanceMap | None = None  # where a run's output is the input


RUN_REF = re.compile(r"^[Rr](\d+)$")


def find_source(case: Case, ref: str) -> dict[str, Any]:
    """An exhibit (``E1``) or a still-image run's output (``R1``) as a run's input.

    A run's output is described like an exhibit, plus ``source_run`` and ``inferred`` (how
    many of its pixels are inferred: a *tainted* source, which only a profile that allows
    the generative lane may use).
    """
    if not RUN_REF.match(ref):
        return find_exhibit(case, ref)
    wanted = ref.upper()
    for run, _ in runs(case.entries()):
        if run["run"] == wanted:
            if run.get("media") == "video":
                raise InputError(
                    f"run {wanted} is a video run; only a still image's run output can be the "
                    "input of another run in this version"
                )
            exhibit = find_exhibit(case, run["exhibit"])
            return {
                "exhibit": exhibit["exhibit"],
                "source_run": wanted,
                "media": "image",
                "original": {"name": f"output of run {wanted}"},
                "stored": run["output"]["file"],
                "sha256": run["output"]["sha256"],
                "pixel_hash": {"sha256": run["output"]["pixel_sha256"]},
                "provenance": run["provenance"],
                "inferred": int(run["provenance"]["counts"].get("inferred", 0)),
                # Taint is a property of the run, not of surviving pixel counts: a shrink or a
                # redaction over inferred pixels must not launder it.
                "tainted": bool(run.get("tainted"))
                or "generative" in run.get("lanes", [])
                or int(run["provenance"]["counts"].get("inferred", 0)) > 0,
                "facts": {
                    **exhibit.get("facts", {}),
                    **{"width": run["output"]["width"], "height": run["output"]["height"]},
                },
            }
    known = ", ".join(r["run"] for r, _ in runs(case.entries())) or "none yet"
    raise InputError(f"case {case.case_id} has no run {ref!r} (runs: {known})")


def check_taint(source: dict[str, Any], profile: Profile) -> None:
    """Inferred pixels never go back in as evidence: a tainted source needs a profile that
    allows the generative lane (and the new output stays tainted)."""
    if source.get("tainted") and "generative" not in profile.lanes:
        raise PolicyError(
            f"the output of run {source['source_run']} is tainted: it was made with generative "
            f"steps ({source['inferred']} pixels still marked inferred); profile "
            f"{profile.name!r} refuses tainted input (generative is not in "
            f"profiles.{profile.name}.lanes)",
            hint="start from the exhibit itself; inferred content is never evidence",
        )


def find_exhibit(case: Case, exhibit_id: str) -> dict[str, Any]:
    items = exhibits(case.entries())
    for item in items:
        if item["exhibit"] == exhibit_id.upper():
            return item
    known = ", ".join(i["exhibit"] for i in items) or "none yet"
    raise InputError(
        f"case {case.case_id} has no exhibit {exhibit_id!r} (exhibits: {known})",
        hint="`forensic case show CASE` lists them",
    )


def _label(exhibit: dict[str, Any]) -> str:
    return f"exhibit {exhibit['exhibit']} ({exhibit['original']['name']})"


def wanted_frames(recipe: Recipe, exhibit: dict[str, Any]) -> list[int] | None:
    """Frame indices a recipe works on (None for a still image); checks every range."""
    if exhibit.get("media") != "video":
        for step in recipe.steps:
            if step.lane == "classical" and step.operation().temporal != "frame":
                raise InputError(
                    f"{step.label}: works over a range of video frames, and {_label(exhibit)} "
                    "is a still image"
                )
            if step.frames is not None or step.seconds is not None:
                raise InputError(
                    f"{step.label}: {'frames' if step.frames is not None else 'seconds'} is "
                    f"only for video, and {_label(exhibit)} is an image"
                )
        return None
    count = int(exhibit["facts"]["frame_count"])
    ranges = [s.frames for s in recipe.steps if s.frames is not None]
    if not ranges:
        raise InputError(
            f"{_label(exhibit)} is a video of {count} frames: give at least one step a frame "
            "range, frames = [first, last]",
            hint=f"frames are numbered from 0 to {count - 1} in display order, as counted at ingest",
        )
    for step in recipe.steps:
        if step.frames is not None and step.frames[1] >= count:
            raise InputError(
                f"{step.label}: frames {list(step.frames)} is outside the video's {count} "
                f"frames (0 to {count - 1})"
            )
    return sorted({i for first, last in ranges for i in range(first, last + 1)})


def _load_map(case: Case, record: dict[str, Any], label: str) -> provenance.ProvenanceMap:
    rel = str(record["file"])
    data = (case.root / rel).read_bytes()
    if sha256_hex(data) != record["sha256"]:
        raise CaseError(f"{label}: its provenance map {rel} no longer matches its recorded hash")
    pmap, _ = decode_image(data, where=rel)
    return np.asarray(pmap, np.uint8)


def check_boxes(recipe: Recipe, exhibit: dict[str, Any]) -> None:
    """Before any pixel is read: regions and boxes of the steps that run while the image still
    has the exhibit's size must lie inside it (later ones are checked as the steps run)."""
    width, height = int(exhibit["facts"]["width"]), int(exhibit["facts"]["height"])
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
        if all(k in step.params for k in ("x", "y", "width", "height")):
            p = step.params
            shape_only = np.broadcast_to(np.zeros((), np.uint8), (height, width))
            try:
                check_box(op.name, shape_only, p["x"], p["y"], p["width"], p["height"])
            except ParameterError as exc:
                raise InputError(f"{step.label}: {exc.detail}", hint=exc.hint) from None
        if op.effect not in ("values", "redaction"):
            return  # the size may change from here on


def load_frames(case: Case, exhibit: dict[str, Any], indices: list[int] | None) -> list[Frame]:
    """Read the evidence, check it against the record, decode the frames wanted."""
    label = _label(exhibit)
    path = case.root / str(exhibit["stored"])
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CaseError(f"{label}: cannot read {path}: {exc.strerror}") from None
    if sha256_hex(data) != exhibit["sha256"]:
        raise CaseError(
            f"{label}: the stored evidence no longer matches its recorded SHA-256",
            hint="run `forensic verify` on the case; nothing runs on altered evidence",
        )
    if indices is None:
        pixels, _ = decode_image(data, where=label)
        if image_hash(pixels) != exhibit["pixel_hash"]["sha256"]:
            raise CaseError(f"{label}: decoding no longer gives the recorded pixel hash")
        pmap = None
        if "source_run" in exhibit:
            pmap = _load_map(case, exhibit["provenance"], label)
        return [Frame(None, pixels, pmap=pmap)]
    decoded = decode_frames(path, set(indices), where=label)
    frames = []
    for index in indices:
        pixels, sha, pts, fmt = decoded[index]
        if sha != exhibit["frames"][index]["sha256"]:
            raise CaseError(f"{label}: frame {index} no longer decodes to its recorded hash")
        frames.append(Frame(index, pixels, pts, sha, fmt))
    return frames


# -- computing -------------------------------------------------------------------------------


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


def check_policy(recipe: Recipe, profile: Profile) -> None:
    """Every step must be allowed by the case's profile; the first refusal names the rule."""
    for step in recipe.steps:
        profile.check_operation(step.op_name, step.lane, where=step.label)
    # Allowed: now the generative steps' operations and parameters can be checked.
    for step in recipe.steps:
        if step.lane == "generative":
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
                    hint="a lab approves a model by adding its weights' SHA-256 to the policy",
                )


def compute(
    recipe: Recipe, frames: list[Frame], exhibit: dict[str, Any]
) -> tuple[list[StepResult], list[FrameOutput]]:
    """Run the recipe on every frame in memory. Raises (naming the step) on a problem."""
    current = {id(f): f.image for f in frames}
    pmaps = {
        id(f): provenance.fresh(f.image.shape) if f.pmap is None else f.pmap.copy() for f in frames
    }
    results: list[StepResult] = []
    upsampled = False
    for step in recipe.steps:
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
                    input=describe(image),
                    output=describe(result.image),
                    image=result.image,
                    maps=maps,
                    maps_meta=meta,
                )
            )
            current[id(f)] = result.image
        results.append(
            StepResult(
                step=step,
                frames=done,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
                warnings=enfsi_warnings(
                    step, op, exhibit, list(recipe.steps[: step.number - 1]), upsampled=upsampled
                ),
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
    }


def model_record(
    op: Operation, used: dict[str, Any], store: Callable[[bytes, str], dict[str, Any]]
) -> dict[str, Any]:
    """A generative step's model facts; an examiner's weights file is stored in the case (by
    ``store(data, suffix)``), so that the step replays when the original file is long gone:
    the very bytes that were approved and run."""
    model = generative_facts(op, used)
    if "weights" in used:
        data, _ = pinned_weights(str(used["weights"]))
        model["weights_copy"] = store(data, Path(str(used["weights"])).suffix or ".bin")
    return model


class _Files:
    """Derived files of a run, named by content; written only once every entry is signed."""

    def __init__(self) -> None:
        self.pending: dict[str, bytes] = {}

    def add(self, data: bytes, suffix: str) -> dict[str, Any]:
        digest = sha256_hex(data)
        rel = f"derived/{digest}{suffix}"
        self.pending[rel] = data
        return {"file": rel, "sha256": digest, "size": len(data)}

    def write(self, case: Case) -> None:
        for rel, data in self.pending.items():
            path = case.root / rel
            if not path.exists():
                write_atomic(path, data, mode=0o444)


def next_run_id(entries: list[Entry]) -> str:
    """One more than the highest run number in the journal (run or run.step entries)."""
    numbers = [0]
    for e in entries:
        if e.kind in ("run", "run.step"):
            run = str(e.payload.get("run", ""))
            if run[1:].isdigit():
                numbers.append(int(run[1:]))
    return f"R{max(numbers) + 1}"


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    exhibit: str
    recipe: str
    output: dict[str, Any]
    provenance: dict[str, Any]
    steps: list[dict[str, Any]]
    warnings: list[str]


def _frame_files(
    files: _Files, out: FrameOutput, encoded: tuple[bytes, str], pmap_encoded: tuple[bytes, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    output = {**files.add(*encoded), **describe(out.image)}
    pmap = {
        **files.add(*pmap_encoded),
        "pixel_sha256": image_hash(out.pmap),
        "classes": list(provenance.CLASSES),
        "counts": provenance.counts(out.pmap),
    }
    return output, pmap


def run_recipe(
    case: Case,
    exhibit_id: str,
    recipe: Recipe,
    *,
    signer: Signer,
    now: datetime,
    name: str | None = None,
    keep_intermediates: bool = False,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RunSummary:
    """Validate, compute, store and journal one run (see the module docstring)."""
    exhibit = find_source(case, exhibit_id)
    profile = case.profile()
    check_taint(exhibit, profile)
    check_policy(recipe, profile)
    if exhibit.get("media") == "video":
        base = str(exhibit.get("facts", {}).get("time_base") or "1/25")
        recipe = resolve_times(
            recipe, lambda t: index_at_time(exhibit.get("frames") or [], t, base)
        )
    indices = wanted_frames(recipe, exhibit)
    check_boxes(recipe, exhibit)
    if indices is not None:
        from forensic.videorun import run_video

        return run_video(
            case,
            exhibit,
            recipe,
            indices,
            signer=signer,
            now=now,
            name=name,
            keep_intermediates=keep_intermediates,
            tainted=bool(exhibit.get("tainted"))
            or any(s.lane == "generative" for s in recipe.steps),
            workers=workers,
            progress=progress,
        )
    frames = load_frames(case, exhibit, indices)
    results, outputs = compute(recipe, frames, exhibit)
    encoded = [(encode_lossless(o.image), encode_lossless(o.pmap)) for o in outputs]
    label = profile.generative.label
    tainted = bool(exhibit.get("tainted")) or any(s.lane == "generative" for s in recipe.steps)
    presentation = [
        encode_lossless(provenance.labelled_copy(o.image, label))
        if profile.generative.visible_label and tainted
        else None
        for o in outputs
    ]
    kept: list[list[tuple[bytes, str]]] = (
        [[encode_lossless(fs.image) for fs in r.frames] for r in results[:-1]]
        if keep_intermediates
        else []
    )
    environment = pixel_environment()
    warnings = [w for r in results for w in r.warnings]
    video = indices is not None
    files = _Files()
    with case.writer(signer) as writer:
        run_id = next_run_id(writer.entries)
        stored = [_frame_files(files, o, *e) for o, e in zip(outputs, encoded, strict=True)]
        for (out_record, _), copy in zip(stored, presentation, strict=True):
            if copy is not None:
                out_record["presentation"] = {**files.add(*copy), "label": label}
        final = {id(o.source): s for o, s in zip(outputs, stored, strict=True)}
        last_step_for = {}
        for r in results:
            for fs in r.frames:
                last_step_for[fs.frame] = (r.step.number, fs)
        step_hashes = []
        for i, r in enumerate(results):
            frame_records = []
            for j, fs in enumerate(r.frames):
                rec = fs.record()
                if fs.maps is not None:
                    rec["maps"] = {
                        **(fs.maps_meta or {}),
                        "files": {
                            name: {**files.add(*encode_lossless(m)), "pixel_sha256": image_hash(m)}
                            for name, m in fs.maps.items()
                        },
                    }
                if last_step_for.get(fs.frame, (None,))[0] == r.step.number:
                    source = next(o.source for o in outputs if o.source.index == fs.frame)
                    file_info = final[id(source)][0]
                    rec["output"] = {
                        **rec["output"],
                        **{k: file_info[k] for k in ("file", "sha256", "size")},
                    }
                elif keep_intermediates:
                    rec["output"] = {**rec["output"], **files.add(*kept[i][j])}
                frame_records.append(rec)
            record = step_header(run_id, r.step)
            if r.step.lane == "generative":
                used = r.frames[0].params if r.frames else r.step.params
                record["model"] = model_record(r.step.operation(), used, files.add)
                fractions = [fs.maps_meta["inferred_fraction"] for fs in r.frames if fs.maps_meta]
                record["inferred_fraction"] = max(fractions, default=0.0)
            if video:
                record["applied"] = frame_records
            else:
                record.update(frame_records[0])
            record.update(
                {
                    "duration_ms": r.duration_ms,
                    "warnings": r.warnings,
                    "environment": environment,
                }
            )
            step_hashes.append(writer.stage("run.step", record, now=now).hash)
        payload: dict[str, Any] = {
            "format": RUN_FORMAT,
            "run": run_id,
            "name": name or recipe.name,
            "exhibit": exhibit["exhibit"],
            "media": exhibit.get("media"),
            "source": (
                {"run": exhibit["source_run"], "pixel_sha256": exhibit["pixel_hash"]["sha256"]}
                if "source_run" in exhibit
                else None
            ),
            "recipe": {"name": recipe.name, "sha256": recipe.sha256, "text": recipe.text},
            "policy": {
                "sha256": writer.entries[0].payload["policy"]["sha256"],
                "profile": profile.name,
            },
            "lanes": sorted({r.step.lane for r in results}),
            "tainted": tainted,
            "steps": step_hashes,
            "warnings": warnings,
        }
        if video:
            payload["conversion"] = FRAME_CONVERSION
            payload["frames"] = [
                {
                    "frame": o.source.index,
                    "pts": o.source.pts,
                    "source_sha256": o.source.source_sha256,
                    "source_format": o.source.source_format,
                    "converted": describe(o.source.image),
                    "output": s[0],
                    "provenance": s[1],
                }
                for o, s in zip(outputs, stored, strict=True)
            ]
            leaves = [bytes.fromhex(s[0]["pixel_sha256"]) for s in stored]
            payload["output"] = {"frames": len(stored), "merkle_root": merkle_root(leaves)}
            payload["provenance"] = {"frames": len(stored)}
        else:
            payload["output"], payload["provenance"] = stored[0]
            payload["input"] = describe(frames[0].image)
        writer.stage("run", payload, now=now)
        # Every entry is signed; now the files, then the journal in one atomic write. A crash
        # in between leaves only unreferenced content-addressed files, which verify reports.
        files.write(case)
        writer.commit(now=now)
    return RunSummary(
        run_id=run_id,
        exhibit=exhibit["exhibit"],
        recipe=recipe.name,
        output=payload["output"],
        provenance=payload["provenance"],
        steps=[
            {
                "step": r.step.number,
                "op": r.step.op_name,
                "frames": len(r.frames),
                "effect": r.frames[0].effect if r.frames else None,
                "output": r.frames[-1].output if r.frames else None,
                "duration_ms": r.duration_ms,
            }
            for r in results
        ],
        warnings=warnings,
    )


# -- reading runs back ---------------------------------------------------------------------------


def runs(entries: list[Entry]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Each run entry's payload with its step payloads, in journal order."""
    by_hash = {e.hash: e for e in entries}
    out = []
    for e in entries:
        if e.kind == "run":
            steps = [by_hash[h].payload for h in e.payload["steps"] if h in by_hash]
            out.append((e.payload, steps))
    return out


def applied(step: dict[str, Any], root: Path | None = None) -> list[dict[str, Any]]:
    """A step record's per-frame records (one, frame None, for a still image). A video run's
    records are in a hashed artifact (`forensic.videorun`), read from the case at ``root``;
    without ``root`` they are not read and the list is empty."""
    if isinstance(step.get("applied"), dict):
        if root is None:
            return []
        from forensic.videorun import load_artifact

        return load_artifact(root, step["applied"], what=f"step {step['step']} frame")
    if "applied" in step:
        return list(step["applied"])
    return [
        {
            "frame": None,
            **{
                k: step[k]
                for k in ("params", "effect", "details", "input", "output", "maps")
                if k in step
            },
        }
    ]


def frame_chains(
    run: dict[str, Any], steps: list[dict[str, Any]]
) -> dict[
    int | None, tuple[dict[str, Any], list[tuple[dict[str, Any], dict[str, Any]]], dict[str, Any]]
]:
    """Per frame: (its starting image description, [(step, frame record)...], its output)."""
    if run.get("media") == "video":
        starts = {f["frame"]: (f["converted"], f["output"]) for f in run["frames"]}
    else:
        starts = {None: (run["input"], run["output"])}
    chains: dict[Any, Any] = {k: (v[0], [], v[1]) for k, v in starts.items()}
    for step in steps:
        for rec in applied(step):
            if rec["frame"] in chains:
                chains[rec["frame"]][1].append((step, rec))
    return chains


# -- replay ------------------------------------------------------------------------------------


@dataclass
class StepVerdict:
    run: str
    step: int
    op: str
    verdict: str = ""  # "bit-exact", "within tolerance", "not reproduced"
    max_abs_difference: int | None = None
    psnr_db: float | None = None
    differences: list[str] = field(default_factory=list)
    detail: str = ""
    frames: int = 0
    lane: str = "classical"

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "step": self.step,
            "op": self.op,
            "lane": self.lane,
            "verdict": self.verdict,
            "frames": self.frames,
            "max_abs_difference": self.max_abs_difference,
            "psnr_db": self.psnr_db,
            "environment_differences": self.differences,
            "detail": self.detail,
        }


_RANK = {"bit-exact": 0, "within tolerance": 1, "not reproduced": 2}


def _compare(a: Image, b: Image) -> tuple[int, float]:
    diff = np.abs(a.astype(np.int64) - b.astype(np.int64))
    top = float(np.iinfo(a.dtype).max)
    mse = float(np.mean(diff.astype(np.float64) ** 2))
    psnr = float("inf") if mse == 0 else 10 * np.log10(top * top / mse)
    return int(diff.max()), round(psnr, 2)


def _recorded_output(case: Case, output: dict[str, Any]) -> Image | None:
    """The stored copy of a recorded output, when one exists, verified against its hashes."""
    rel = output.get("file")
    if rel is None:
        return None
    try:
        data = (case.root / rel).read_bytes()
    except OSError:
        return None
    if sha256_hex(data) != output.get("sha256"):
        return None
    pixels, _ = decode_image(data, where=rel)
    return pixels if image_hash(pixels) == output["pixel_sha256"] else None


def _replay_one(
    case: Case,
    step: dict[str, Any],
    rec: dict[str, Any],
    current: Image,
    now_env: dict[str, Any],
    max_abs_difference: int,
    min_psnr_db: float,
) -> tuple[_Judged | None, Image | None]:
    """Replay one step on one frame: (judgement, image to continue from). The judgement is
    None when the output differs and no stored copy exists here to measure it against."""
    op = lookup(step["op"])
    params = rec["params"]
    copy = step.get("model", {}).get("weights_copy")
    if copy is not None:
        params = {**params, "weights": str(case.root / copy["file"])}
    if op is not None and step["lane"] == "generative" and "model" in step:
        weights = generative_facts(op, params).get("weights_sha256")
        if weights != step["model"].get("weights_sha256"):
            detail = (
                f"the model weights differ from those recorded (recorded "
                f"{step['model'].get('weights_sha256')}, now {weights})"
            )
            return _Judged("not reproduced", detail=detail), None
    if op is None or op.version != step["op_version"]:
        detail = f"{step['op']} version {step['op_version']} is not available"
        return _Judged("not reproduced", detail=detail), None
    roi = None if step["roi"] is None else tuple(step["roi"])
    try:
        produced = apply_step(current, op, params, roi).image
    except Exception as exc:  # a verifier reports a failing step; it never crashes
        return _Judged("not reproduced", detail=f"failed: {type(exc).__name__}: {exc}"), None
    expected = rec["output"]
    if image_hash(produced) == expected["pixel_sha256"]:
        return _Judged("bit-exact"), produced
    if produced.shape[1] != expected["width"] or produced.shape[0] != expected["height"]:
        return _Judged("not reproduced", detail="the output has another size"), produced
    if "file" in expected:
        stored = _recorded_output(case, expected)
        if stored is None:
            detail = f"the stored copy {expected['file']} is missing or altered"
            return _Judged("not reproduced", detail=detail), produced
    else:
        return None, produced
    worst, psnr = _compare(produced, stored)
    diffs = differences(step["environment"], now_env)
    if diffs and worst <= max_abs_difference and psnr >= min_psnr_db:
        # Continue from the record, so that the difference does not cascade.
        return _Judged("within tolerance", worst, psnr, "", diffs), stored
    detail = (
        "same environment as recorded, so any difference is a failure"
        if not diffs
        else "the difference exceeds the policy's replay tolerance"
    )
    return _Judged("not reproduced", worst, psnr, detail, diffs), produced


def _pending_verdict(later: _Judged, diffs: list[str], at: int) -> _Judged:
    """The verdict of a step whose output differed from the record but was not stored: it is
    never bit-exact. On the recorded environment any difference fails; elsewhere it is within
    tolerance when the next stored output (step ``at``) is bit-exact or within tolerance."""
    if not diffs:
        return _Judged(
            "not reproduced",
            detail="its output differs from the record on the recorded environment",
        )
    if later.verdict in ("bit-exact", "within tolerance"):
        return _Judged(
            "within tolerance",
            later.worst,
            later.psnr,
            f"its output differs from the record (not stored, so not measured); the next "
            f"stored output, step {at}, is {later.verdict}",
            diffs,
        )
    return replace(later, detail=f"its output differs; step {at} was not reproduced")


@dataclass
class _Judged:
    verdict: str
    worst: int | None = None
    psnr: float | None = None
    detail: str = ""
    diffs: list[str] = field(default_factory=list)


def replay_run(
    case: Case,
    run: dict[str, Any],
    steps: list[dict[str, Any]],
    *,
    max_abs_difference: int,
    min_psnr_db: float,
) -> list[StepVerdict]:
    """Re-run the recorded steps of ``run`` from the original evidence; judge each step.

    Per frame, a step whose output hash equals the record is *bit-exact*. Otherwise its output
    is compared with the stored copy of the recorded output (the final output, or a kept
    intermediate; an intermediate without a copy is judged at the next stored output): it is
    *within tolerance* only when the environment differs from the recorded one and the
    difference is within the policy's bounds, else *not reproduced*. After a step within
    tolerance the replay continues from the recorded output, so a difference is reported where
    it arises and does not cascade. A step's verdict is the worst over its frames.
    """
    if run.get("format") == "forensic-run/2":
        from forensic.videorun import replay_video_run

        return replay_video_run(
            case,
            run,
            steps,
            max_abs_difference=max_abs_difference,
            min_psnr_db=min_psnr_db,
        )
    exhibit = find_source(case, (run.get("source") or {}).get("run") or run["exhibit"])
    chains = frame_chains(run, steps)
    indices = None if None in chains else sorted(i for i in chains if i is not None)
    sources = {f.index: f for f in load_frames(case, exhibit, indices)}
    now_env = pixel_environment()
    verdicts = {
        s["step"]: StepVerdict(run=run["run"], step=s["step"], op=s["op"], lane=s["lane"])
        for s in steps
    }

    def merge(number: int, judged: _Judged) -> None:
        v = verdicts[number]
        v.frames += 1
        if _RANK.get(judged.verdict, 2) >= _RANK.get(v.verdict, -1):
            v.verdict = judged.verdict
            v.detail = judged.detail or v.detail
            if judged.worst is not None:
                v.max_abs_difference = max(v.max_abs_difference or 0, judged.worst)
                v.psnr_db = judged.psnr if v.psnr_db is None else min(v.psnr_db, judged.psnr or 0)
                v.differences = judged.diffs

    for frame, (start, chain, _) in chains.items():
        current = sources[frame].image
        if image_hash(current) != start["pixel_sha256"]:
            for step, _ in chain:
                merge(
                    step["step"],
                    _Judged("not reproduced", detail="the decoded input differs from the record"),
                )
            continue
        pending: list[tuple[int, list[str]]] = []  # (step, environment differences)
        stopped: str | None = None
        for step, rec in chain:
            if stopped is not None:
                merge(step["step"], _Judged("not reproduced", detail=stopped))
                continue
            verdict_now, produced = _replay_one(
                case, step, rec, current, now_env, max_abs_difference, min_psnr_db
            )
            if verdict_now is None:  # differs, and no stored copy here: judge at the next one
                assert produced is not None
                pending.append((step["step"], differences(step["environment"], now_env)))
                current = produced
                continue
            for number, diffs in pending:
                merge(number, _pending_verdict(verdict_now, diffs, step["step"]))
            pending = []
            merge(step["step"], verdict_now)
            if produced is None:
                stopped = f"not replayed: step {step['step']} could not run"
                continue
            current = produced
        for number, _ in pending:
            merge(
                number,
                _Judged(
                    "not reproduced",
                    detail="differs from the record; no stored output to measure against",
                ),
            )
    out = []
    for v in verdicts.values():
        if not v.verdict:
            v.verdict, v.detail = (
                "not reproduced",
                v.detail or "not replayed: an earlier step failed",
            )
        out.append(v)
    return out
