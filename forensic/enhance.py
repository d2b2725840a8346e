"""Enhancement runs: apply a recipe to an exhibit, record every step, store the output.

A run is all-or-nothing. In order:

1. the recipe is validated and every step checked against the case's policy profile;
2. the evidence is decoded and its pixel hash compared with the one recorded at ingest;
3. every step is computed in memory (its output pixel hash, resolved parameters, duration,
   the pixel-shaping environment, ENFSI warnings), and the provenance map follows along;
4. the output and the map are encoded losslessly and decoded back to prove the round trip;
5. only then, under the journal lock: the files go into ``derived/`` (content-addressed,
   read-only) and one ``run.step`` entry per step plus a ``run`` entry are appended.

Anything that fails before step 5 leaves the case exactly as it was. `replay_run` re-runs the
recorded steps from the original evidence for ``verify --replay``.
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
from forensic.case import Case, exhibits
from forensic.classical.registry import Operation, registry
from forensic.environment import pixel_environment
from forensic.errors import CaseError, InputError, ParameterError, PolicyError
from forensic.fsutil import write_atomic
from forensic.hashing import CHANNEL_ORDERS, PIXEL_HASH_ALGORITHM, pixel_hash, sha256_hex
from forensic.journal import Entry
from forensic.keys import Signer
from forensic.media import decode_image
from forensic.policy import Profile
from forensic.recipe import Recipe, Step

Image = NDArray[Any]
RUN_FORMAT = "forensic-run/1"


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


@dataclass
class StepResult:
    step: Step
    params: dict[str, Any]
    effect: str
    details: dict[str, Any]
    input: dict[str, Any]
    output: dict[str, Any]
    duration_ms: float
    warnings: list[str]
    image: Image = field(repr=False)


def apply_step(image: Image, op: Operation, params: dict[str, Any], roi: Any) -> Any:
    """Run one operation on ``image`` (or on its region ``roi``); return the OpResult with
    ``image`` replaced by the whole output."""
    from dataclasses import replace

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


# -- ENFSI best-practice checks (warnings, recorded and reported) ------------------------------


def enfsi_warnings(
    step: Step, op: Operation, params: dict[str, Any], exhibit: dict[str, Any], earlier: list[Step]
) -> list[str]:
    warnings: list[str] = []
    facts = exhibit.get("facts", {})
    interlaced = facts.get("interlaced_frames", 0) or facts.get("field_order") not in (
        None,
        "progressive",
        "unknown",
    )
    value_steps = [s for s in earlier if s.lane == "classical"]
    if (
        interlaced
        and op.category != "deinterlace"
        and not any(registry()[s.op_name].category == "deinterlace" for s in value_steps)
    ):
        warnings.append(
            f"{step.label}: the footage is interlaced and has not been deinterlaced yet; "
            "ENFSI: deinterlace first, before any other enhancement"
        )
    if op.category in ("deblur", "sharpen"):
        if op.category == "deblur":
            warnings.append(
                f"{step.label}: near the image borders the result depends on the mirror "
                "extension used to deconvolve (about one PSF width); do not interpret detail "
                "there (ENFSI: watch border effects)"
            )
        if step.roi is not None:
            warnings.append(
                f"{step.label}: applied to a region; along the region's edges it used mirrored "
                "data, so detail there is less reliable (ENFSI: watch border effects)"
            )
    if op.category == "measure" and any(
        s.op_name == "resize" and (s.params.get("scale") or 0) > 1 for s in earlier
    ):
        warnings.append(
            f"{step.label}: measures on an image that an earlier step upsampled; "
            "interpolated pixels add no information (ENFSI)"
        )
    return warnings


# -- planning and running ----------------------------------------------------------------------


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


def check_policy(recipe: Recipe, profile: Profile) -> None:
    """Every step must be allowed by the case's profile; the first refusal names the rule."""
    for step in recipe.steps:
        profile.check_operation(step.op_name, step.lane, where=step.label)
    for step in recipe.steps:
        if step.lane == "generative":
            raise PolicyError(
                f"{step.label}: the generative lane is not available in this version of forensic",
                hint="remove the step; generative operations arrive with the generative lane",
            )


def load_evidence(case: Case, exhibit: dict[str, Any]) -> Image:
    label = f"exhibit {exhibit['exhibit']} ({exhibit['original']['name']})"
    if exhibit.get("media") != "image":
        raise InputError(
            f"{label} is a video; recipes run on still images in this version",
            hint="frame-range runs on video arrive with the CCTV video work",
        )
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
    pixels, _ = decode_image(data, where=label)
    if image_hash(pixels) != exhibit["pixel_hash"]["sha256"]:
        raise CaseError(f"{label}: decoding no longer gives the recorded pixel hash")
    return pixels


def compute(
    recipe: Recipe, image: Image, exhibit: dict[str, Any]
) -> tuple[list[StepResult], provenance.ProvenanceMap]:
    """Run the recipe's steps in memory. Raises (naming the step) on the first problem."""
    results: list[StepResult] = []
    pmap = provenance.fresh(image.shape)
    current = image
    for step in recipe.steps:
        op = step.operation()
        before = describe(current)
        started = time.perf_counter()
        try:
            result = apply_step(current, op, step.params, step.roi)
        except ParameterError as exc:
            raise InputError(f"{step.label}: {exc.message}", hint=exc.hint) from None
        elapsed = (time.perf_counter() - started) * 1000
        pmap = provenance.follow(
            pmap,
            op,
            result.params,
            effect=result.effect,
            roi=step.roi,
            out_shape=result.image.shape,
        )
        results.append(
            StepResult(
                step=step,
                params=result.params,
                effect=result.effect,
                details=result.details,
                input=before,
                output=describe(result.image),
                duration_ms=round(elapsed, 3),
                warnings=enfsi_warnings(
                    step, op, result.params, exhibit, list(recipe.steps[: step.number - 1])
                ),
                image=result.image,
            )
        )
        current = result.image
    return results, pmap


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


def _store(case: Case, data: bytes, suffix: str) -> dict[str, Any]:
    digest = sha256_hex(data)
    rel = f"derived/{digest}{suffix}"
    path = case.root / rel
    if not path.exists():
        write_atomic(path, data, mode=0o444)
    return {"file": rel, "sha256": digest, "size": len(data)}


def next_run_id(entries: list[Entry]) -> str:
    return f"R{sum(1 for e in entries if e.kind == 'run') + 1}"


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    exhibit: str
    recipe: str
    output: dict[str, Any]
    provenance: dict[str, Any]
    steps: list[dict[str, Any]]
    warnings: list[str]


def run_recipe(
    case: Case,
    exhibit_id: str,
    recipe: Recipe,
    *,
    signer: Signer,
    now: datetime,
    name: str | None = None,
    keep_intermediates: bool = False,
) -> RunSummary:
    """Validate, compute, store and journal one run (see the module docstring)."""
    exhibit = find_exhibit(case, exhibit_id)
    profile = case.profile()
    check_policy(recipe, profile)
    image = load_evidence(case, exhibit)
    results, pmap = compute(recipe, image, exhibit)
    final = results[-1].image
    out_bytes, out_suffix = encode_lossless(final)
    map_bytes, _ = encode_lossless(pmap)
    intermediates = [encode_lossless(r.image) for r in results[:-1]] if keep_intermediates else []
    environment = pixel_environment()
    warnings = [w for r in results for w in r.warnings]
    with case.writer(signer) as writer:
        run_id = next_run_id(writer.entries)
        output = {**_store(case, out_bytes, out_suffix), **describe(final)}
        pmap_record = {
            **_store(case, map_bytes, ".png"),
            "pixel_sha256": image_hash(pmap),
            "classes": list(provenance.CLASSES),
            "counts": provenance.counts(pmap),
        }
        kept = [_store(case, data, suffix) for data, suffix in intermediates]
        step_hashes = []
        step_records = []
        for i, r in enumerate(results):
            out_record: dict[str, Any] = dict(r.output)
            if i == len(results) - 1:
                out_record.update({k: output[k] for k in ("file", "sha256", "size")})
            elif keep_intermediates:
                out_record.update(kept[i])
            record: dict[str, Any] = {
                "run": run_id,
                "step": r.step.number,
                "op": r.step.op_name,
                "op_version": r.step.operation().version,
                "lane": r.step.lane,
                "effect": r.effect,
                "params": r.params,
                "roi": None if r.step.roi is None else list(r.step.roi),
                "details": r.details,
                "input": r.input,
                "output": out_record,
                "duration_ms": r.duration_ms,
                "warnings": r.warnings,
                "environment": environment,
            }
            entry = writer.append("run.step", record, now=now)
            step_hashes.append(entry.hash)
            step_records.append(record)
        writer.append(
            "run",
            {
                "format": RUN_FORMAT,
                "run": run_id,
                "name": name or recipe.name,
                "exhibit": exhibit["exhibit"],
                "exhibit_pixel_sha256": exhibit["pixel_hash"]["sha256"],
                "recipe": {"name": recipe.name, "sha256": recipe.sha256, "text": recipe.text},
                "policy": {
                    "sha256": case.entries()[0].payload["policy"]["sha256"],
                    "profile": profile.name,
                },
                "lanes": sorted({r.step.lane for r in results}),
                "steps": step_hashes,
                "output": output,
                "provenance": pmap_record,
                "warnings": warnings,
            },
            now=now,
        )
    return RunSummary(
        run_id=run_id,
        exhibit=exhibit["exhibit"],
        recipe=recipe.name,
        output=output,
        provenance=pmap_record,
        steps=[
            {k: rec[k] for k in ("step", "op", "effect", "params", "output", "duration_ms")}
            for rec in step_records
        ],
        warnings=warnings,
    )


# -- replay ------------------------------------------------------------------------------------


@dataclass
class StepVerdict:
    run: str
    step: int
    op: str
    verdict: str  # "bit-exact", "within tolerance", "not reproduced"
    max_abs_difference: int | None = None
    psnr_db: float | None = None
    differences: list[str] = field(default_factory=list)
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "step": self.step,
            "op": self.op,
            "verdict": self.verdict,
            "max_abs_difference": self.max_abs_difference,
            "psnr_db": self.psnr_db,
            "environment_differences": self.differences,
            "detail": self.detail,
        }


def _compare(a: Image, b: Image) -> tuple[int, float]:
    diff = np.abs(a.astype(np.int64) - b.astype(np.int64))
    top = float(np.iinfo(a.dtype).max)
    mse = float(np.mean(diff.astype(np.float64) ** 2))
    psnr = float("inf") if mse == 0 else 10 * np.log10(top * top / mse)
    return int(diff.max()), round(psnr, 2)


def replay_run(
    case: Case,
    run: dict[str, Any],
    steps: list[dict[str, Any]],
    *,
    max_abs_difference: int,
    min_psnr_db: float,
) -> list[StepVerdict]:
    """Re-run the recorded steps of ``run`` from the original evidence and judge each output.

    A step whose output hash equals the record is *bit-exact*. Otherwise its output is
    compared with the stored copy of the recorded output (the run's final output, or a kept
    intermediate; an intermediate without a copy is judged at the next stored output): it is
    *within tolerance* only when the environment differs from the recorded one and the
    difference is within the policy's bounds, else *not reproduced*. After a step within
    tolerance the replay continues from the recorded output, so a difference is reported
    where it arises and does not cascade.
    """
    from forensic.environment import differences

    exhibit = find_exhibit(case, run["exhibit"])
    current = load_evidence(case, exhibit)
    now_env = pixel_environment()
    verdicts: list[StepVerdict] = []
    pending: list[StepVerdict] = []
    ops = registry()
    for record in steps:
        verdict = StepVerdict(run=run["run"], step=record["step"], op=record["op"], verdict="")
        verdicts.append(verdict)
        if record["lane"] != "classical":
            verdict.verdict, verdict.detail = "not reproduced", "generative steps replay separately"
            continue
        op = ops.get(record["op"])
        if op is None or op.version != record["op_version"]:
            verdict.verdict = "not reproduced"
            verdict.detail = f"{record['op']} version {record['op_version']} is not available"
            break
        roi = None if record["roi"] is None else tuple(record["roi"])
        try:
            produced = apply_step(current, op, record["params"], roi).image
        except (ParameterError, InputError) as exc:
            verdict.verdict, verdict.detail = "not reproduced", f"failed: {exc}"
            break
        expected = record["output"]
        if image_hash(produced) == expected["pixel_sha256"]:
            verdict.verdict = "bit-exact"
            current = produced
            continue
        if (
            describe(produced)["width"] != expected["width"]
            or produced.shape[0] != expected["height"]
        ):
            verdict.verdict, verdict.detail = "not reproduced", "the output has another size"
            current = produced
            continue
        stored = _recorded_output(case, record)
        if stored is None:
            verdict.detail = "differs from the record; judged at the next stored output"
            pending.append(verdict)
            current = produced
            continue
        worst, psnr = _compare(produced, stored)
        diffs = differences(record["environment"], now_env)
        within = bool(diffs) and worst <= max_abs_difference and psnr >= min_psnr_db
        for v in [*pending, verdict]:
            v.max_abs_difference, v.psnr_db, v.differences = worst, psnr, diffs
            v.verdict = "within tolerance" if within else "not reproduced"
            if not within:
                v.detail = (
                    "same environment as recorded, so any difference is a failure"
                    if not diffs
                    else "the difference exceeds the policy's replay tolerance"
                )
            elif v is not verdict:
                v.detail = f"measured at step {verdict.step}, the next stored output"
        pending = []
        current = stored if within else produced
    for v in verdicts:
        if not v.verdict:
            v.verdict = "not reproduced"
            v.detail = v.detail or "not replayed: an earlier step failed"
    return verdicts


def _recorded_output(case: Case, record: dict[str, Any]) -> Image | None:
    """The stored copy of a step's output, when one exists (final output or kept
    intermediates), verified against its recorded hashes."""
    rel = record["output"].get("file")
    if rel is None:
        return None
    path = case.root / rel
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if sha256_hex(data) != record["output"]["sha256"]:
        return None
    pixels, _ = decode_image(data, where=rel)
    return pixels if image_hash(pixels) == record["output"]["pixel_sha256"] else None


def runs(entries: list[Entry]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Each run entry's payload with its step payloads, in journal order."""
    by_hash = {e.hash: e for e in entries}
    out = []
    for e in entries:
        if e.kind == "run":
            steps = [by_hash[h].payload for h in e.payload["steps"] if h in by_hash]
            out.append((e.payload, steps))
    return out
