"""ONNX steps on the run's device: the same ``--device`` and policy gate as the torch
networks, the provider(s) and session settings recorded, refusals before any pixel is read,
and replay on another device judged with a verdict naming both."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime  # type: ignore[import-untyped]
import pytest
import torch

from forensic.case import Case
from forensic.errors import InputError, PolicyError
from forensic.generative import engine, onnxrun
from forensic.generative.unet import tiny_unet, to_onnx
from forensic.keys import Signer
from forensic.pipeline.replay import replay_run
from forensic.pipeline.run import run_recipe
from forensic.recipe import parse_recipe
from forensic.records import read_runs
from forensic.verify import verify_case
from tests.conftest import NOW
from tests.test_generative_onnx import SCENE, UNET_MANIFEST, _case, _entry, _policy_text

CUDA_PROVIDER = pytest.mark.skipif(
    not torch.cuda.is_available()
    or "CUDAExecutionProvider" not in onnxruntime.get_available_providers(),
    reason="no CUDA GPU here, or this onnxruntime build has no CUDA execution provider "
    "(torch.cuda.is_available() and the onnxruntime-gpu wheel are both needed)",
)
REGION = "rect(20, 24, 30, 18)"


@pytest.fixture(scope="module")
def unet_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("onnxdev") / "unet.onnx"
    example = (torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32))
    path.write_bytes(to_onnx(tiny_unet(7), example, ["image", "mask"]))
    return path


def _recipe(weights: Path) -> str:
    return (
        f'[[steps]]\nop = "generative.inpaint_learned"\nweights = "{weights}"\n'
        f'region = "{REGION}"\n'
    )


def _onnx_case(tmp_path: Path, signer: Signer, unet: Path, policy: str | None = None) -> Case:
    tmp_path.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(unet.read_bytes()).hexdigest()
    text = _policy_text(_entry(digest, UNET_MANIFEST)) if policy is None else policy
    return _case(tmp_path, signer, text, SCENE)


def _run(case: Case, signer: Signer, unet: Path, device: str = "auto") -> Any:
    recipe = parse_recipe(_recipe(unet).encode(), where="r.toml")
    return run_recipe(case, "E1", recipe, signer=signer, now=NOW, device=device)


def _fake_gpu(requested: str) -> engine.Device:
    """A CUDA device as `select_device` would return it, on a machine that has none (the
    refusal and the fallback are decided before anything runs on it)."""
    cpu = engine.cpu_device()
    return dataclasses.replace(
        cpu, kind="cuda", index=0, name="NVIDIA H100 80GB HBM3", requested=requested
    )


# -- the CPU path, end to end ---------------------------------------------------------------------


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_an_onnx_step_records_its_device_providers_and_settings_and_replays(
    tmp_path: Path, signer: Signer, unet_file: Path, device: str
) -> None:
    if device == "auto" and torch.cuda.is_available():
        pytest.skip("auto picks the GPU on this machine (see the CUDA test)")
    case = _onnx_case(tmp_path, signer, unet_file)
    _run(case, signer, unet_file, device)
    (run,) = read_runs(case.entries())
    (step,) = run.steps
    model = step["model"]
    cpu = engine.cpu_device()
    assert model["device"] == cpu.label  # the torch steps' label, e.g. "cpu (x86_64, ...)"
    info = model["device_info"]
    assert info["kind"] == "cpu"
    assert info["requested"] == device
    assert info["name"] == cpu.name
    assert info["providers"] == ["CPUExecutionProvider"]
    assert info["onnxruntime"] == f"onnxruntime {onnxruntime.__version__}"
    assert info["cuda"] is None
    assert info["cudnn"] is None
    assert "fallback" not in info
    assert info["determinism"] == {
        "intra_op_num_threads": 1,
        "inter_op_num_threads": 1,
        "execution_mode": "sequential",
        "graph_optimization_level": "basic",
        "use_deterministic_compute": True,
        "provider_fallback": False,
    }
    assert "deterministic compute" in model["determinism"]
    assert "CUDA provider" not in model["determinism"]
    # What onnxruntime itself reports of the session it built.
    assert model["graph"]["providers"] == ["CPUExecutionProvider"]
    assert set(model["graph"]["provider_options"]) == {"CPUExecutionProvider"}

    (verdict,) = replay_run(case, run, max_abs_difference=0, min_psnr_db=99.0)
    assert verdict.verdict == "bit-exact"
    assert verdict.devices == {"recorded": cpu.label, "replay": cpu.label}
    assert f"recorded on {cpu.label}, replayed on {cpu.label}" in verdict.detail
    outcome = verify_case(case.root, replay=True, replay_device="cpu")
    assert outcome.ok, outcome.failure


# -- refusals --------------------------------------------------------------------------------------


def test_a_policy_without_cuda_refuses_an_onnx_step_on_the_gpu(
    tmp_path: Path, signer: Signer, unet_file: Path
) -> None:
    digest = hashlib.sha256(unet_file.read_bytes()).hexdigest()
    policy = _policy_text(_entry(digest, UNET_MANIFEST)).replace(
        'devices = ["cpu", "cuda"]', 'devices = ["cpu"]'
    )
    case = _onnx_case(tmp_path, signer, unet_file, policy)
    with pytest.raises(PolicyError, match=r"--device cuda is refused.*generative devices are cpu"):
        _run(case, signer, unet_file, "cuda")
    assert read_runs(case.entries()) == []


def test_cuda_without_onnxruntimes_cuda_provider_is_refused_before_any_pixel_is_read(
    tmp_path: Path, signer: Signer, unet_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import forensic.pipeline.steps as steps

    monkeypatch.setattr(onnxrun, "cuda_provider_available", lambda: False)
    monkeypatch.setattr(steps, "select_device", lambda requested, allowed: _fake_gpu("cuda"))
    case = _onnx_case(tmp_path, signer, unet_file)
    with pytest.raises(InputError) as caught:
        _run(case, signer, unet_file, "cuda")
    message = str(caught.value)
    assert message.startswith("step 1 (generative.inpaint_learned): --device cuda: ")
    assert "has no CUDA execution provider" in message
    assert "ONNX models cannot run on the GPU here" in message
    assert f"onnxruntime-gpu=={onnxruntime.__version__}" in message  # the hint
    assert read_runs(case.entries()) == []


def test_placement_refuses_only_an_explicit_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnxrun, "cuda_provider_available", lambda: False)
    explicit, auto = _fake_gpu("cuda"), _fake_gpu("auto")
    with pytest.raises(InputError, match="no CUDA execution provider"):
        onnxrun.placement(explicit)
    assert onnxrun.placement(explicit, strict=False) is explicit  # a record, never a run
    assert onnxrun.placement(auto).kind == "cpu"
    assert onnxrun.placement(engine.cpu_device()).kind == "cpu"
    monkeypatch.setattr(onnxrun, "cuda_provider_available", lambda: True)
    assert onnxrun.placement(explicit) is explicit
    facts = onnxrun.device_facts(explicit)
    assert facts["device"] == "cuda:0 (NVIDIA H100 80GB HBM3)"
    assert facts["device_info"]["providers"] == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert facts["device_info"]["determinism"]["use_tf32"] == 0
    assert facts["device_info"]["determinism"]["cudnn_conv_algo_search"] == "DEFAULT"
    assert "TF32 off" in facts["determinism"]


def test_auto_on_a_gpu_without_the_cuda_provider_runs_onnx_on_the_cpu_and_says_so(
    tmp_path: Path, signer: Signer, unet_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import forensic.pipeline.steps as steps

    monkeypatch.setattr(onnxrun, "cuda_provider_available", lambda: False)
    monkeypatch.setattr(steps, "select_device", lambda requested, allowed: _fake_gpu("auto"))
    case = _onnx_case(tmp_path, signer, unet_file)
    _run(case, signer, unet_file, "auto")
    (run,) = read_runs(case.entries())
    info = run.steps[0]["model"]["device_info"]
    assert info["kind"] == "cpu"
    assert info["requested"] == "auto"
    assert info["providers"] == ["CPUExecutionProvider"]
    assert info["fallback"].startswith("cuda:0 (NVIDIA H100 80GB HBM3) was chosen by auto")
    monkeypatch.undo()
    (verdict,) = replay_run(case, run, max_abs_difference=0, min_psnr_db=99.0)
    assert verdict.verdict == "bit-exact"
    assert verdict.devices is not None
    assert verdict.devices["recorded"] == verdict.devices["replay"] == engine.cpu_device().label


# -- replay on another device ---------------------------------------------------------------------

H100_FACTS = {
    "kind": "cuda",
    "index": 0,
    "name": "NVIDIA H100 80GB HBM3",
    "driver": "550.54.15",
    "capability": "9.0",
    "memory_bytes": 85_000_000_000,
    "cuda": "12.8",
    "providers": ["CUDAExecutionProvider", "CPUExecutionProvider"],
}


def _record_as_gpu(case: Case, signer: Signer, unet: Path, nudge: bool) -> None:
    """Run on this CPU but record the step as made on an H100 (its device facts); ``nudge``
    changes a few output values by one grey level, as a GPU's other summation order can."""
    real_facts, real_runner = onnxrun.device_facts, onnxrun.runner

    def gpu_facts(device: Any = None) -> dict[str, Any]:
        facts = real_facts(device)
        info = {**facts["device_info"], **H100_FACTS}
        return {**facts, "device": "cuda:0 (NVIDIA H100 80GB HBM3)", "device_info": info}

    def nudged(*args: Any, **kwargs: Any) -> Any:
        run = real_runner(*args, **kwargs)

        def changed(batch: Any) -> Any:
            out = run(batch)
            return out + (1.0 / 255.0) * (np.arange(out.size).reshape(out.shape) % 7 == 0)

        return changed

    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(onnxrun, "device_facts", gpu_facts)
        if nudge:
            mp.setattr(onnxrun, "runner", nudged)
        _run(case, signer, unet, "cpu")
    finally:
        mp.undo()


def test_an_onnx_step_recorded_on_a_gpu_replays_on_the_cpu_naming_both(
    tmp_path: Path, signer: Signer, unet_file: Path
) -> None:
    case = _onnx_case(tmp_path, signer, unet_file)
    _record_as_gpu(case, signer, unet_file, nudge=False)
    (run,) = read_runs(case.entries())
    assert run.steps[0]["model"]["device_info"]["kind"] == "cuda"
    (verdict,) = replay_run(case, run, max_abs_difference=1, min_psnr_db=30.0)
    cpu = engine.cpu_device().label
    assert verdict.verdict == "bit-exact"
    assert verdict.devices == {"recorded": "cuda:0 (NVIDIA H100 80GB HBM3)", "replay": cpu}
    assert f"recorded on cuda:0 (NVIDIA H100 80GB HBM3), replayed on {cpu}" in verdict.detail


def test_an_onnx_difference_is_within_tolerance_across_devices_and_fails_on_the_same_one(
    tmp_path: Path, signer: Signer, unet_file: Path
) -> None:
    across = _onnx_case(tmp_path / "a", signer, unet_file)
    _record_as_gpu(across, signer, unet_file, nudge=True)
    (run,) = read_runs(across.entries())
    (verdict,) = replay_run(across, run, max_abs_difference=1, min_psnr_db=30.0)
    assert verdict.verdict == "within tolerance"
    assert verdict.max_abs_difference == 1  # measured against the stored output
    assert "device.kind: recorded 'cuda', now 'cpu'" in verdict.differences
    assert any(d.startswith("device.providers: recorded [") for d in verdict.differences)
    assert verdict.devices is not None
    assert verdict.devices["recorded"] == "cuda:0 (NVIDIA H100 80GB HBM3)"
    (strict,) = replay_run(across, run, max_abs_difference=0, min_psnr_db=30.0)
    assert strict.verdict == "not reproduced"

    same = _onnx_case(tmp_path / "s", signer, unet_file)
    mp = pytest.MonkeyPatch()
    real_runner = onnxrun.runner

    def nudged(*args: Any, **kwargs: Any) -> Any:
        run = real_runner(*args, **kwargs)
        return lambda batch: run(batch) + np.float32(1.0 / 255.0)

    try:
        mp.setattr(onnxrun, "runner", nudged)
        _run(same, signer, unet_file, "cpu")
    finally:
        mp.undo()
    (run,) = read_runs(same.entries())
    (verdict,) = replay_run(same, run, max_abs_difference=1, min_psnr_db=30.0)
    assert verdict.verdict == "not reproduced"
    assert "same environment as recorded" in verdict.detail
    cpu = engine.cpu_device().label
    assert verdict.devices == {"recorded": cpu, "replay": cpu}


# -- the real GPU ---------------------------------------------------------------------------------


@CUDA_PROVIDER
def test_an_onnx_step_runs_on_the_cuda_provider_and_replays_on_both_devices(
    tmp_path: Path, signer: Signer, unet_file: Path
) -> None:
    case = _onnx_case(tmp_path, signer, unet_file)
    _run(case, signer, unet_file, "cuda")
    (run,) = read_runs(case.entries())
    model = run.steps[0]["model"]
    info = model["device_info"]
    assert info["kind"] == "cuda"
    assert info["providers"] == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert model["graph"]["providers"][0] == "CUDAExecutionProvider"
    assert model["graph"]["provider_options"]["CUDAExecutionProvider"]["use_tf32"] == "0"
    (on_gpu,) = replay_run(case, run, max_abs_difference=1, min_psnr_db=40.0, device="cuda")
    assert on_gpu.verdict == "bit-exact"
    (on_cpu,) = replay_run(case, run, max_abs_difference=1, min_psnr_db=40.0, device="cpu")
    assert on_cpu.verdict in ("bit-exact", "within tolerance")
    assert on_cpu.devices is not None
    assert on_cpu.devices["recorded"].startswith("cuda:0 (")
    assert on_cpu.devices["replay"] == engine.cpu_device().label


# -- the report -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_report_names_the_onnx_steps_device_runtime_and_providers(
    tmp_path: Path, signer: Signer, other_signer: Signer, unet_file: Path
) -> None:
    import subprocess

    from forensic.case import enrol_examiner
    from forensic.cosign import cosign
    from forensic.keys import create_key, public_pem, unlock
    from forensic.pki import bind, init_pki
    from forensic.report import issue_report
    from tests.conftest import PASSPHRASE
    from tests.test_report import tool

    pdftotext = tool("pdftotext")
    folder = tmp_path / "keys"
    create_key(folder, name="Report Examiner", passphrase=PASSPHRASE, now=NOW)
    examiner = unlock(folder, PASSPHRASE)
    report_signer = init_pki(folder, examiner, passphrase=PASSPHRASE, lab="Test Lab", now=NOW)
    case = _onnx_case(tmp_path, examiner, unet_file)
    _run(case, examiner, unet_file, "cpu")
    bind(case, examiner, report_signer, now=NOW)
    enrol_examiner(
        case, public_pem(other_signer.public_key), name=other_signer.name, signer=examiner, now=NOW
    )
    cosign(case, "R1.1", signer=other_signer, now=NOW)
    out = tmp_path / "report.pdf"
    issue_report(case, out=out, signer=examiner, report_signer=report_signer, now=NOW)
    text = subprocess.run(
        [pdftotext, "-raw", str(out), "-"], capture_output=True, check=True, text=True
    ).stdout
    flat = " ".join(text.split())
    assert f"runtime onnxruntime {onnxruntime.__version__}" in flat
    assert "providers CPUExecutionProvider" in flat
    assert "asked for cpu" in flat


def test_device_options_on_a_gpu_whose_onnxruntime_lacks_the_cuda_provider(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine, "cuda_available", lambda: True)
    monkeypatch.setattr(onnxrun, "cuda_provider_available", lambda: False)
    options = {o["name"]: o for o in onnxrun.device_options(("cpu", "cuda"))}
    assert options["cuda"]["available"] is True
    assert options["auto"]["uses"] == "cuda"
    assert "ONNX models run on the CPU under auto and are refused under cuda" in str(
        options["cuda"]["note"]
    )
    assert options["cpu"]["note"] is None
    monkeypatch.setattr(onnxrun, "cuda_provider_available", lambda: True)
    assert all(o["note"] is None for o in onnxrun.device_options(("cpu", "cuda")))
    gpu_only = {o["name"]: o for o in onnxrun.device_options(("cuda",))}
    assert gpu_only["cpu"]["available"] is False
    assert gpu_only["cpu"]["reason"] == "the case's policy allows generative steps on: cuda"
    assert gpu_only["auto"]["uses"] == "cuda"


def test_replay_on_cuda_without_the_cuda_provider_is_not_reproduced_not_a_crash(
    tmp_path: Path, signer: Signer, unet_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import forensic.pipeline.replay as replay

    case = _onnx_case(tmp_path, signer, unet_file)
    _run(case, signer, unet_file, "cpu")
    (run,) = read_runs(case.entries())
    monkeypatch.setattr(onnxrun, "cuda_provider_available", lambda: False)
    monkeypatch.setattr(replay, "select_device", lambda requested, allowed: _fake_gpu("cuda"))
    (verdict,) = replay_run(case, run, max_abs_difference=1, min_psnr_db=30.0, device="cuda")
    assert verdict.verdict == "not reproduced"
    assert "no CUDA execution provider" in verdict.detail
    assert verdict.devices == {
        "recorded": engine.cpu_device().label,
        "replay": "cuda:0 (NVIDIA H100 80GB HBM3)",
    }
