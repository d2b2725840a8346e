"""Replay: re-run a recorded run from the original evidence and judge every step.

One verdict scale for still and video runs: *bit-exact* (the output hashes equal the record),
*within tolerance* (the environment differs from the recorded one and the difference from the
stored output is within the policy's bounds) or *not reproduced*. A replay never depends on an
estimator: steps run with the parameters the journal recorded as used. `replay_run` is the one
entry point (``verify --replay``); it reads the run as a `RunRecord` through the case store.

Generative steps replay on a device chosen by `replay_device` (by default the recorded kind
when this machine has it, else the CPU). A different device (or driver, CUDA, cuDNN or torch
build) is an environment difference like a library version: its output may then be *within
tolerance*, and every generative step's verdict names the recorded and the replay device.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from forensic.case import Case
from forensic.environment import differences, pixel_environment
from forensic.errors import CaseError, ForensicError, InputError, ParameterError, PolicyError
from forensic.hashing import image_hash
from forensic.lanes import device_record, generative_facts, lookup, on_device, select_device
from forensic.pipeline.flicker import FlickerMeter
from forensic.pipeline.sources import find_source, load_frames, recorded_output
from forensic.pipeline.steps import apply_step, default_workers
from forensic.pipeline.stream import Item, execute
from forensic.recipe import Step
from forensic.records import RunRecord, StepRecord, load_artifact
from forensic.store import CaseStore
from forensic.videoio import read_video

Image = NDArray[Any]


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
    #: A generative step's devices: {"recorded": label, "replay": label}; None otherwise.
    devices: dict[str, str] | None = None

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
            "devices": self.devices,
        }


_RANK = {"bit-exact": 0, "within tolerance": 1, "not reproduced": 2}


def replay_device(steps: Sequence[StepRecord], requested: str = "auto") -> Any:
    """The device a run's generative steps replay on (None when it has none): ``auto`` is the
    recorded kind when this machine has it, else the CPU; ``cpu`` and ``cuda`` as asked (a
    replay records nothing, so the case's device policy does not limit it)."""
    generative = [s for s in steps if s["lane"] == "generative"]
    if not generative:
        return None
    if requested != "auto":
        return select_device(requested, ("cpu", "cuda"))
    kinds = {_recorded_device(s)[1].get("kind", "cpu") for s in generative}
    if "cuda" in kinds:
        # auto: CUDA when present, else the CPU (and the verdict says so); an ONNX step
        # then also runs on the CPU where onnxruntime has no CUDA provider.
        return select_device("auto", ("cpu", "cuda"))
    return select_device("cpu", ("cpu",))


def _recorded_device(step: StepRecord) -> tuple[str, dict[str, Any]]:
    """(label, description) of the device a generative step was recorded on. Records made
    before devices were described say only ``"cpu"``."""
    model = step.model or {}
    info = dict(model.get("device_info") or {"kind": str(model.get("device") or "cpu")})
    return str(model.get("device") or info["kind"]), info


def device_differences(step: StepRecord, device: Any) -> tuple[dict[str, str], list[str]]:
    """Both devices of a generative step's replay, and how they differ (environment
    differences, so that a different device may be within tolerance)."""
    recorded_label, recorded = _recorded_device(step)
    now_label, now = device_record(device, step.model or {})
    devices = {"recorded": recorded_label, "replay": now_label}
    # oneDNN is chosen per network by the code (recorded, the same for the same operation),
    # not by the machine; what was asked for (auto, cpu, cuda) changes no pixel.
    for record in (recorded, now):
        if isinstance(record.get("determinism"), dict):
            record["determinism"] = {
                k: v for k, v in record["determinism"].items() if k != "onednn"
            }
    # Nor does an ONNX step's note that auto fell back to the CPU (its kind says where).
    keys = [k for k in sorted(set(recorded) | set(now)) if k not in ("requested", "fallback")]
    if set(recorded) == {"kind"}:  # an old record: only the kind is known
        keys = ["kind"]
    diffs = [
        f"device.{k}: recorded {recorded.get(k)!r}, now {now.get(k)!r}"
        for k in keys
        if recorded.get(k) != now.get(k)
    ]
    return devices, diffs


def _device_detail(devices: dict[str, str] | None, detail: str) -> str:
    if devices is None:
        return detail
    where = f"recorded on {devices['recorded']}, replayed on {devices['replay']}"
    return f"{where}; {detail}" if detail else where


def compare_images(a: Image, b: Image) -> tuple[int, float]:
    diff = np.abs(a.astype(np.int64) - b.astype(np.int64))
    top = float(np.iinfo(a.dtype).max)
    mse = float(np.mean(diff.astype(np.float64) ** 2))
    psnr = float("inf") if mse == 0 else 10 * np.log10(top * top / mse)
    return int(diff.max()), round(psnr, 2)


def _replay_one(
    case: Case,
    step: StepRecord,
    rec: dict[str, Any],
    current: Image,
    now_env: dict[str, Any],
    max_abs_difference: int,
    min_psnr_db: float,
    device: Any = None,
) -> tuple[Judged | None, Image | None]:
    """Replay one step on one frame: (judgement, image to continue from). The judgement is
    None when the output differs and no stored copy exists here to measure it against."""
    op = lookup(step["op"], step["op_version"])
    params = rec["params"]
    copy = step.model.get("weights_copy")
    if copy is not None:
        params = {**params, "weights": str(case.store.local_path(copy["file"]))}
    if op is not None and step["lane"] == "generative" and "model" in step:
        try:
            weights = generative_facts(op, params).get("weights_sha256")
        except ForensicError as exc:  # e.g. an ONNX step on a device it cannot run on here
            return Judged("not reproduced", detail=f"failed: {exc.message}"), None
        if weights != step["model"].get("weights_sha256"):
            detail = (
                f"the model weights differ from those recorded (recorded "
                f"{step['model'].get('weights_sha256')}, now {weights})"
            )
            return Judged("not reproduced", detail=detail), None
    if op is None or op.version != step["op_version"]:
        detail = f"{step['op']} version {step['op_version']} is not available"
        return Judged("not reproduced", detail=detail), None
    roi = None if step["roi"] is None else tuple(step["roi"])
    try:
        produced = apply_step(current, op, params, roi).image
    except Exception as exc:  # a verifier reports a failing step; it never crashes
        return Judged("not reproduced", detail=f"failed: {type(exc).__name__}: {exc}"), None
    expected = rec["output"]
    if image_hash(produced) == expected["pixel_sha256"]:
        return Judged("bit-exact"), produced
    if produced.shape[1] != expected["width"] or produced.shape[0] != expected["height"]:
        return Judged("not reproduced", detail="the output has another size"), produced
    if "file" in expected:
        stored = recorded_output(case.store, expected)
        if stored is None:
            detail = f"the stored copy {expected['file']} is missing or altered"
            return Judged("not reproduced", detail=detail), produced
    else:
        return None, produced
    worst, psnr = compare_images(produced, stored)
    diffs = _step_differences(step, now_env, device)
    if diffs and worst <= max_abs_difference and psnr >= min_psnr_db:
        # Continue from the record, so that the difference does not cascade.
        return Judged("within tolerance", worst, psnr, "", diffs), stored
    detail = (
        "same environment as recorded, so any difference is a failure"
        if not diffs
        else "the difference exceeds the policy's replay tolerance"
    )
    return Judged("not reproduced", worst, psnr, detail, diffs), produced


def _step_differences(step: StepRecord, now_env: dict[str, Any], device: Any) -> list[str]:
    """The recorded environment's differences from now, and for a generative step its
    device's."""
    diffs = differences(step["environment"], now_env)
    if step["lane"] == "generative" and device is not None:
        diffs += device_differences(step, device)[1]
    return diffs


def _pending_verdict(later: Judged, diffs: list[str], at: int) -> Judged:
    """The verdict of a step whose output differed from the record but was not stored: it is
    never bit-exact. On the recorded environment any difference fails; elsewhere it is within
    tolerance when the next stored output (step ``at``) is bit-exact or within tolerance."""
    if not diffs:
        return Judged(
            "not reproduced",
            detail="its output differs from the record on the recorded environment",
        )
    if later.verdict in ("bit-exact", "within tolerance"):
        return Judged(
            "within tolerance",
            later.worst,
            later.psnr,
            f"its output differs from the record (not stored, so not measured); the next "
            f"stored output, step {at}, is {later.verdict}",
            diffs,
        )
    return replace(later, detail=f"its output differs; step {at} was not reproduced")


@dataclass
class Judged:
    verdict: str
    worst: int | None = None
    psnr: float | None = None
    detail: str = ""
    diffs: list[str] = field(default_factory=list)


def replay_run(
    case: Case,
    run: RunRecord,
    *,
    max_abs_difference: int,
    min_psnr_db: float,
    device: str = "auto",
) -> list[StepVerdict]:
    """Re-run the recorded steps of ``run`` from the original evidence; judge each step.

    Per frame, a step whose output hash equals the record is *bit-exact*. Otherwise its output
    is compared with the stored copy of the recorded output (the final output, or a kept
    intermediate; an intermediate without a copy is judged at the next stored output): it is
    *within tolerance* only when the environment differs from the recorded one and the
    difference is within the policy's bounds, else *not reproduced*. After a step within
    tolerance the replay continues from the recorded output, so a difference is reported where
    it arises and does not cascade. A step's verdict is the worst over its frames. Generative
    steps run on `replay_device` (``device``); their verdicts name both devices.
    """
    try:
        chosen = replay_device(run.steps, device)
    except (InputError, PolicyError) as exc:
        return [
            StepVerdict(run.run_id, s.number, s.op, "not reproduced", detail=str(exc), lane=s.lane)
            for s in run.steps
        ]
    context: AbstractContextManager[Any] = nullcontext() if chosen is None else on_device(chosen)
    with context:
        if run.is_video:
            verdicts = replay_video_run(
                case,
                run,
                max_abs_difference=max_abs_difference,
                min_psnr_db=min_psnr_db,
                device=chosen,
            )
        else:
            verdicts = _replay_still(case, run, max_abs_difference, min_psnr_db, chosen)
    if chosen is not None:
        for v, s in zip(verdicts, run.steps, strict=True):
            if s["lane"] == "generative":
                v.devices = device_differences(s, chosen)[0]
                v.detail = _device_detail(v.devices, v.detail)
    return verdicts


def _replay_still(
    case: Case, run: RunRecord, max_abs_difference: int, min_psnr_db: float, device: Any
) -> list[StepVerdict]:
    steps = run.steps
    exhibit = find_source(case, run.source_run or run.exhibit_id)
    start, chain, _ = run.still_chain()
    (source,) = load_frames(case, exhibit, None)
    now_env = pixel_environment()
    verdicts = {
        s.number: StepVerdict(run=run.run_id, step=s.number, op=s.op, lane=s.lane) for s in steps
    }

    def merge(number: int, judged: Judged) -> None:
        v = verdicts[number]
        v.frames += 1
        if _RANK.get(judged.verdict, 2) >= _RANK.get(v.verdict, -1):
            v.verdict = judged.verdict
            v.detail = judged.detail or v.detail
            if judged.worst is not None:
                v.max_abs_difference = max(v.max_abs_difference or 0, judged.worst)
                v.psnr_db = judged.psnr if v.psnr_db is None else min(v.psnr_db, judged.psnr or 0)
                v.differences = judged.diffs

    current = source.image
    if image_hash(current) != start["pixel_sha256"]:
        for step, _ in chain:
            merge(
                step.number,
                Judged("not reproduced", detail="the decoded input differs from the record"),
            )
        chain = []
    pending: list[tuple[int, list[str]]] = []  # (step, environment differences)
    stopped: str | None = None
    for step, rec in chain:
        if stopped is not None:
            merge(step.number, Judged("not reproduced", detail=stopped))
            continue
        verdict_now, produced = _replay_one(
            case, step, rec, current, now_env, max_abs_difference, min_psnr_db, device
        )
        if verdict_now is None:  # differs, and no stored copy here: judge at the next one
            assert produced is not None
            pending.append((step.number, _step_differences(step, now_env, device)))
            current = produced
            continue
        for number, diffs in pending:
            merge(number, _pending_verdict(verdict_now, diffs, step.number))
        pending = []
        merge(step.number, verdict_now)
        if produced is None:
            stopped = f"not replayed: step {step.number} could not run"
            continue
        current = produced
    for number, _ in pending:
        merge(
            number,
            Judged(
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


# -- video runs -----------------------------------------------------------------------------------


class _Compare:
    """Replays a video run and compares each result with the record as it streams."""

    def __init__(self, store: CaseStore, run: RunRecord, steps: Sequence[StepRecord]) -> None:
        self.store = store
        self.inputs = {
            r["frame"]: r for r in load_artifact(store, run["inputs"], what="input frame")
        }
        self.records = {s.number: s.applied(store) for s in steps}
        self.position = {n: 0 for n in self.records}
        self.outputs = load_artifact(store, run["frames"], what="output frame")
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

    def keeps_image(self, step: Step) -> bool:
        return False  # the hashes in the records are compared

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
            if self.store.file_sha256(self.video["file"]) != self.video["sha256"]:
                raise CaseError(f"{self.video['file']} no longer matches its recorded SHA-256")
            self.stored = read_video(self.store.local_path(self.video["file"]))
            for _ in range(k):
                next(self.stored, None)
        stored = next(self.stored, None)
        if stored is None or stored.shape != item.image.shape:
            self.worst, self.psnr = 10**9, 0.0
            return
        worst, psnr = compare_images(item.image, stored)
        self.worst = max(self.worst, int(worst))
        self.psnr = min(self.psnr, float(psnr))


def _judge_flicker_again(
    verdict: StepVerdict, step: StepRecord, meter: FlickerMeter | None, now_env: Any
) -> None:
    """A step whose frames replayed bit-exact must give its recorded flicker figure again: on
    the recorded environment a different figure is a failure; elsewhere it is noted."""
    recorded = step.get("temporal_consistency")
    if recorded is None or meter is None or verdict.verdict != "bit-exact":
        return
    again = meter.record()
    if again == recorded:
        return
    factor = "none" if again is None else f"{again['flicker_factor']}"
    text = (
        f"its frames replayed bit-exact, but its flicker factor measures {factor} again "
        f"(recorded {recorded['flicker_factor']})"
    )
    if differences(step["environment"], now_env):
        verdict.detail = text + "; the environment differs from the recorded one"
    else:
        verdict.verdict, verdict.detail = "not reproduced", text + " on the same environment"


def replay_video_run(
    case: Case,
    run: RunRecord,
    *,
    max_abs_difference: int,
    min_psnr_db: float,
    device: Any = None,
) -> list[StepVerdict]:
    """Re-run a video run from the original frames and judge each step.

    Every step's per-frame output hashes are compared with the record as the frames stream.
    Steps before the first that differs are *bit-exact*. From the first differing step on,
    the final outputs are measured against the stored output video: when the environment
    differs from the recorded one and every frame is within the policy's bounds, those steps
    are *within tolerance*; otherwise (or on the recorded environment) *not reproduced*.
    """
    steps = run.steps
    exhibit = find_source(case, run.exhibit_id)
    verdicts = [
        StepVerdict(run=run["run"], step=s["step"], op=s["op"], lane=s["lane"]) for s in steps
    ]
    recipe_steps: list[Step] = []
    failed: str | None = None
    for s in steps:
        op = lookup(s["op"], s["op_version"])
        if op is None or op.version != s["op_version"]:
            failed = f"{s['op']} version {s['op_version']} is not available"
            break
        if s["lane"] == "generative" and s.model:
            params = dict(s["params"])
            copy = s["model"].get("weights_copy")
            if copy is not None:
                params["weights"] = str(case.store.local_path(copy["file"]))
            try:
                weights = generative_facts(op, params).get("weights_sha256")
            except ForensicError as exc:  # e.g. an ONNX step on a device it cannot run on
                failed = f"failed: {exc.message}"
                break
            if weights != s["model"].get("weights_sha256"):
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
                op_version=s["op_version"],
            )
        )
    compare = _Compare(case.store, run, steps[: len(recipe_steps)])
    # A generative step's recorded flicker figure is measured again on the replayed frames.
    meters = {
        s.number: FlickerMeter()
        for s in recipe_steps
        if s.lane == "generative" and getattr(s.operation(), "temporal", "frame") == "frame"
    }
    if recipe_steps:
        indices = sorted(compare.inputs)
        copies = {
            s["step"]: str(case.store.local_path(s["model"]["weights_copy"]["file"]))
            for s in steps
            if "weights_copy" in s.model
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
                meters=meters,
            )
        except (InputError, CaseError, ParameterError) as exc:
            failed = f"failed: {exc}"
            recipe_steps = []
    now_env = pixel_environment()
    first_diff = next((s.number for s in recipe_steps if compare.differs.get(s.number)), None)
    out_ok = compare.output_differs == 0 and compare.out_position == len(compare.outputs)
    upstream: list[str] = []  # device differences of the generative steps so far
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
            _judge_flicker_again(v, s, meters.get(s["step"]), now_env)
            continue
        if s["lane"] == "generative" and device is not None:
            upstream = device_differences(s, device)[1]
        # Frames are judged on the final output, so a later step inherits a device difference.
        diffs = differences(s["environment"], now_env) + upstream
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
