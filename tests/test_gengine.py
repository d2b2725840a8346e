"""The generative lane's engine: device choice (recorded), tiled inference, and replay of a
generative step on another device (forensic.generative.engine)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

from forensic.case import Case, init_case
from forensic.errors import InputError, PolicyError
from forensic.generative import engine, sr
from forensic.generative.rrdbnet import RRDBNet
from forensic.ingest import ingest
from forensic.keys import Signer
from forensic.pipeline.replay import replay_run
from forensic.pipeline.run import run_recipe
from forensic.policy import default_policy_path, parse_policy
from forensic.recipe import parse_recipe
from forensic.records import read_runs
from tests.conftest import NOW

CUDA = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA GPU here (torch.cuda.is_available() is False)"
)
SR_RECIPE = b"""
[[steps]]
op = "generative.super_resolution"
scale = 2
uncertainty_runs = 2
"""


def _espcn_body(scale: int, device: engine.Device) -> engine.TileFn:
    return engine.torch_tiles(sr.load_model(scale).body, device)


def _image(seed: int, height: int, width: int, channels: int = 1) -> Any:
    return np.random.default_rng(seed).random((1, channels, height, width), dtype=np.float32)


# -- tiling ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("tile", [7, 16, 33, 64, 1000])
def test_built_in_model_gives_the_one_pass_result_bit_for_bit_whatever_the_tile_count(
    tile: int,
) -> None:
    """The overlap (8) covers the residual ESPCN's receptive field (radius 4), so every tile
    count gives exactly the one-pass output (oneDNN off on the CPU)."""
    device = sr.device_for("residual_espcn", engine.cpu_device())
    image = _image(1, 61, 83)
    with engine.deterministic(device):
        whole = sr.load_model(4).body(torch.from_numpy(image)).numpy()
        tiled = engine.run_tiled(_espcn_body(4, device), image, tile, sr.ESPCN_OVERLAP, 4)
    assert tiled.shape == whole.shape == (1, 1, 244, 332)
    assert np.array_equal(tiled, whole)


def test_an_overlap_short_of_the_receptive_field_shows_at_the_seams() -> None:
    """The identity above is not automatic: with 1 pixel of context the seams differ."""
    device = sr.device_for("residual_espcn", engine.cpu_device())
    image = _image(2, 40, 40)
    with engine.deterministic(device):
        fn = _espcn_body(2, device)
        whole = engine.run_tiled(fn, image, 1000, 0, 2)
        short = engine.run_tiled(fn, image, 16, 1, 2)
        enough = engine.run_tiled(fn, image, 16, sr.ESPCN_RADIUS, 2)
    assert np.abs(short - whole).max() > 1e-4
    assert np.array_equal(enough, whole)


def test_enlarge_luma_does_not_depend_on_the_tile_size(monkeypatch: pytest.MonkeyPatch) -> None:
    y = np.random.default_rng(3).random((45, 70))
    one_pass = sr.enlarge_luma(y, 2)
    monkeypatch.setattr(sr, "TILE", 16)
    assert np.array_equal(sr.enlarge_luma(y, 2), one_pass)


def test_rrdbnet_seams_are_measured_and_vanish_when_the_overlap_covers_its_field() -> None:
    """RRDBNet's receptive field is wide: a small one (1 block) still differs at the seams with
    2 pixels of context, and matches the one pass once the overlap covers the field."""
    torch.manual_seed(0)
    net = RRDBNet(channels=3, feat=8, blocks=1, grow=4, scale=2).eval()
    device = engine.cpu_device()  # oneDNN off: exact arithmetic per pixel
    image = _image(4, 36, 44, channels=3)
    with engine.deterministic(device):
        fn = engine.torch_tiles(net, device)
        whole = engine.run_tiled(fn, image, 1000, 0, 2)
        short = engine.run_tiled(fn, image, 12, 2, 2)
        covered = engine.run_tiled(fn, image, 12, 24, 2)
    assert np.abs(short - whole).max() > 1e-5
    assert np.array_equal(covered, whole)


def test_run_tiled_streams_tiles_into_one_output_and_reports_progress() -> None:
    """Any callable on NCHW arrays (an ONNX session too): the callable only ever sees a tile
    plus its overlap, and progress counts every tile."""
    seen: list[tuple[int, ...]] = []
    calls: list[tuple[int, int]] = []

    def nearest_x3(tile: Any) -> Any:
        seen.append(tile.shape)
        return np.repeat(np.repeat(tile, 3, axis=2), 3, axis=3)

    image = _image(5, 50, 70, channels=2)
    out = engine.run_tiled(nearest_x3, image, 20, 3, 3, lambda d, t: calls.append((d, t)))
    assert np.array_equal(out, np.repeat(np.repeat(image, 3, axis=2), 3, axis=3))
    assert max(s[2] for s in seen) <= 20 + 2 * 3
    assert max(s[3] for s in seen) <= 20 + 2 * 3
    assert calls == [(k, 12) for k in range(1, 13)]  # 3 rows x 4 columns of tiles


# torch deprecates its TorchScript exporter (the dynamo one needs onnxscript, not installed).
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_an_onnxruntime_session_runs_tiled_through_the_same_engine() -> None:
    """The tiler takes any NCHW callable: the built-in network exported to ONNX (legacy
    exporter, dynamic height and width) and run by onnxruntime gives, tiled, exactly its own
    one-pass output, and the torch output within 1e-6."""
    import io

    import onnxruntime

    body = sr.load_model(2).body
    buffer = io.BytesIO()
    axes = {"x": {2: "h", 3: "w"}, "y": {2: "H", 3: "W"}}
    torch.onnx.export(
        body, (torch.zeros(1, 1, 16, 16),), buffer, input_names=["x"], output_names=["y"],
        dynamic_axes=axes, dynamo=False,
    )  # fmt: skip
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        buffer.getvalue(), options, providers=["CPUExecutionProvider"]
    )

    def fn(tile: Any) -> Any:
        return session.run(None, {"x": tile})[0]

    image = _image(9, 50, 70)
    one_pass = engine.run_tiled(fn, image, 1000, 0, 2)
    assert np.array_equal(engine.run_tiled(fn, image, 16, sr.ESPCN_OVERLAP, 2), one_pass)
    device = sr.device_for("residual_espcn", engine.cpu_device())
    with engine.deterministic(device):
        in_torch = engine.run_tiled(engine.torch_tiles(body, device), image, 1000, 0, 2)
    assert np.abs(in_torch - one_pass).max() < 1e-6


def test_run_tiled_names_a_wrong_scale_and_bad_arguments() -> None:
    image = _image(6, 10, 10)
    with pytest.raises(InputError, match=r"expected .* for scale 4"):
        engine.run_tiled(lambda t: np.repeat(np.repeat(t, 2, 2), 2, 3), image, 8, 1, 4)
    with pytest.raises(InputError, match="tile 0"):
        engine.run_tiled(lambda t: t, image, 0, 1, 1)
    with pytest.raises(InputError, match="NCHW"):
        engine.run_tiled(lambda t: t, image[0], 8, 1, 1)


# -- devices --------------------------------------------------------------------------------------


def test_device_choice_fails_closed() -> None:
    assert engine.select_device("cpu", ("cpu",)).kind == "cpu"
    with pytest.raises(PolicyError, match=r"--device cuda is refused.*are cpu"):
        engine.select_device("cuda", ("cpu",))
    with pytest.raises(PolicyError, match="--device cpu is refused"):
        engine.select_device("cpu", ("cuda",))
    with pytest.raises(InputError, match="'gpu'; allowed: auto, cpu, cuda"):
        engine.select_device("gpu", ("cpu", "cuda"))
    if not torch.cuda.is_available():
        assert engine.select_device("auto", ("cpu", "cuda")).kind == "cpu"
        with pytest.raises(InputError, match="no CUDA GPU is available here"):
            engine.select_device("cuda", ("cpu", "cuda"))
        with pytest.raises(PolicyError, match="leave no device on this machine"):
            engine.select_device("auto", ("cuda",))


def test_a_cpu_device_records_its_determinism_settings() -> None:
    device = engine.cpu_device("auto")
    record = device.record()
    assert record["kind"] == "cpu"
    assert record["requested"] == "auto"
    assert record["torch"] == torch.__version__
    settings = record["determinism"]
    assert settings["deterministic_algorithms"] is True
    assert settings["tf32_matmul"] is False
    assert settings["tf32_cudnn"] is False
    assert settings["cudnn_benchmark"] is False
    assert settings["threads"] == 1
    assert "TF32 matmul off" in device.summary()
    assert device.with_onednn(True).record()["determinism"]["onednn"] is True


def test_deterministic_restores_the_settings_it_changed() -> None:
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    with engine.deterministic(engine.cpu_device()):
        assert torch.get_num_threads() == 1
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.backends.cudnn.benchmark
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == before


def test_policy_devices_key_is_checked_and_defaults_to_the_cpu() -> None:
    text = default_policy_path().read_text()
    policy = parse_policy(text.encode(), where="policy.toml")
    assert policy.profile("investigative").generative.devices == ("cpu", "cuda")
    assert policy.profile("evidence").generative.devices == ("cpu",)  # key absent
    bad = text.replace('devices = ["cpu", "cuda"]', 'devices = ["cpu", "gpu"]')
    with pytest.raises(PolicyError, match=r"generative.devices names 'gpu'"):
        parse_policy(bad.encode(), where="lab.toml")


# -- runs and replay ------------------------------------------------------------------------------


def _small_case(tmp_path: Path, signer: Signer, policy: str | None = None) -> Case:
    path = None
    if policy is not None:
        path = tmp_path / "lab.toml"
        path.write_text(policy)
    case = init_case(
        tmp_path / "case", case_id="G-1", title="engine", policy_path=path, signer=signer,
        now=NOW, profile="investigative",
    )  # fmt: skip
    rng = np.random.default_rng(7)
    picture = cv2.GaussianBlur(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8), (3, 3), 0)
    source = tmp_path / "small.png"
    cv2.imwrite(str(source), picture)
    ingest(case, [source], signer=signer, now=NOW)
    return case


def test_a_generative_step_records_its_device_tiling_and_uncertainty_runs(
    tmp_path: Path, signer: Signer
) -> None:
    case = _small_case(tmp_path, signer)
    recipe = parse_recipe(SR_RECIPE, where="sr.toml")
    run_recipe(case, "E1", recipe, signer=signer, now=NOW, device="cpu")
    (run,) = read_runs(case.entries())
    (step,) = run.steps
    model = step["model"]
    assert model["device"].startswith("cpu (")
    info = model["device_info"]
    assert info["kind"] == "cpu"
    assert info["requested"] == "cpu"
    assert info["determinism"]["deterministic_algorithms"] is True
    assert info["determinism"]["onednn"] is False  # the built-in model's tiles are exact
    assert model["tiling"] == {"tile": sr.TILE, "overlap": sr.ESPCN_OVERLAP, "blend": "crop-centre"}
    assert "TF32 matmul off" in model["determinism"]
    (applied,) = step.applied(case.store)
    assert applied["params"]["uncertainty_runs"] == 2
    uncertainty = applied["maps"]["uncertainty"]
    assert uncertainty["runs"] == 2
    assert len(uncertainty["seeds"]) == 2
    assert "3 times as long" in uncertainty["cost"]


def test_a_policy_without_cuda_refuses_the_gpu_before_any_pixel_is_read(
    tmp_path: Path, signer: Signer
) -> None:
    text = (
        default_policy_path().read_text().replace('devices = ["cpu", "cuda"]', 'devices = ["cpu"]')
    )
    case = _small_case(tmp_path, signer, text)
    recipe = parse_recipe(SR_RECIPE, where="sr.toml")
    with pytest.raises(PolicyError, match=r"--device cuda is refused.*generative devices are cpu"):
        run_recipe(case, "E1", recipe, signer=signer, now=NOW, device="cuda")
    assert read_runs(case.entries()) == []


H100 = {
    "kind": "cuda",
    "index": 0,
    "name": "NVIDIA H100 80GB HBM3",
    "driver": "550.54.15",
    "cuda": "12.4",
    "cudnn": "90100",
    "capability": "9.0",
    "memory_bytes": 85_000_000_000,
}


@dataclasses.dataclass(frozen=True)
class _RecordedAsCuda(engine.Device):
    """Runs on the CPU but describes itself as an H100: a step *recorded* on a GPU, so that
    its replay on this CPU-only machine is judged across devices."""

    def record(self) -> dict[str, Any]:
        return {**super().record(), **H100}

    @property
    def label(self) -> str:
        return f"cuda:0 ({H100['name']})"

    def with_onednn(self, on: bool) -> engine.Device:
        return self


def _record_on(case: Case, signer: Signer, device: engine.Device, nudge: bool) -> None:
    """Run the SR recipe with ``device`` recorded; ``nudge`` adds one grey level's worth to
    the network's output, as a GPU's different summation order can (measured on an H100:
    1.4e-8, which changed no 8-bit value; here it is made to change some)."""
    import forensic.pipeline.steps as steps

    original = sr.enlarge_luma

    def nudged(y: Any, scale: int, model: Any = None) -> Any:
        out = original(y, scale, model)
        return out + (1.0 / 255.0) * (np.arange(out.size).reshape(out.shape) % 97 == 0)

    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(steps, "select_device", lambda requested, allowed: device)
        if nudge:
            mp.setattr(sr, "enlarge_luma", nudged)
        run_recipe(case, "E1", parse_recipe(SR_RECIPE, where="sr.toml"), signer=signer, now=NOW)
    finally:
        mp.undo()


def test_a_step_recorded_on_a_gpu_replays_on_the_cpu_with_a_verdict_naming_both(
    tmp_path: Path, signer: Signer
) -> None:
    cpu = engine.cpu_device()
    cuda_like = _RecordedAsCuda(**{**cpu.__dict__, "determinism": dict(cpu.determinism)})
    case = _small_case(tmp_path, signer)
    _record_on(case, signer, cuda_like, nudge=False)
    (run,) = read_runs(case.entries())
    assert run.steps[0]["model"]["device_info"]["name"] == "NVIDIA H100 80GB HBM3"
    (verdict,) = replay_run(case, run, max_abs_difference=1, min_psnr_db=40.0)
    assert verdict.verdict == "bit-exact"
    assert verdict.devices == {"recorded": "cuda:0 (NVIDIA H100 80GB HBM3)", "replay": cpu.label}
    assert "recorded on cuda:0 (NVIDIA H100 80GB HBM3), replayed on cpu (" in verdict.detail
    assert verdict.as_dict()["devices"] == verdict.devices


def test_a_difference_is_within_tolerance_across_devices_and_a_failure_on_the_same_one(
    tmp_path: Path, signer: Signer
) -> None:
    cpu = engine.cpu_device()
    cuda_like = _RecordedAsCuda(**{**cpu.__dict__, "determinism": dict(cpu.determinism)})
    across = _small_case(tmp_path / "a", signer)
    _record_on(across, signer, cuda_like, nudge=True)
    (run,) = read_runs(across.entries())
    (verdict,) = replay_run(across, run, max_abs_difference=1, min_psnr_db=40.0)
    assert verdict.verdict == "within tolerance"
    assert verdict.max_abs_difference == 1  # measured against the stored output
    assert any(d.startswith("device.kind: recorded 'cuda', now 'cpu'") for d in verdict.differences)
    assert verdict.devices is not None
    assert verdict.devices["recorded"].startswith("cuda:0")
    (strict,) = replay_run(across, run, max_abs_difference=0, min_psnr_db=40.0)
    assert strict.verdict == "not reproduced"

    same = _small_case(tmp_path / "s", signer)
    _record_on(same, signer, sr.device_for("residual_espcn", cpu), nudge=True)
    (run,) = read_runs(same.entries())
    (verdict,) = replay_run(same, run, max_abs_difference=1, min_psnr_db=40.0)
    assert verdict.verdict == "not reproduced"
    assert verdict.devices == {"recorded": cpu.label, "replay": cpu.label}
    assert "same environment as recorded" in verdict.detail


def test_replay_on_a_device_this_machine_lacks_is_not_reproduced_not_a_crash(
    tmp_path: Path, signer: Signer
) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    case = _small_case(tmp_path, signer)
    run_recipe(case, "E1", parse_recipe(SR_RECIPE, where="sr.toml"), signer=signer, now=NOW)
    (run,) = read_runs(case.entries())
    (verdict,) = replay_run(case, run, max_abs_difference=1, min_psnr_db=40.0, device="cuda")
    assert verdict.verdict == "not reproduced"
    assert "no CUDA GPU is available here" in verdict.detail


# -- the real GPU ---------------------------------------------------------------------------------


@CUDA
def test_cuda_runs_are_bit_identical_and_agree_with_the_cpu() -> None:
    """On a GPU: two runs bit-identical; tiled equals one pass within float rounding; the
    GPU's output within 1e-5 of the CPU's (TF32 off)."""
    gpu = engine.select_device("cuda", ("cuda",))
    assert gpu.kind == "cuda"
    assert gpu.cuda is not None
    assert gpu.record()["determinism"]["cublas_workspace_config"] in engine.DETERMINISTIC_CUBLAS
    image = _image(8, 120, 160)
    with engine.deterministic(gpu):
        fn = _espcn_body(4, gpu)
        first = engine.run_tiled(fn, image, 1000, 0, 4)
        second = engine.run_tiled(fn, image, 1000, 0, 4)
        tiled = engine.run_tiled(fn, image, 48, sr.ESPCN_OVERLAP, 4)
    assert np.array_equal(first, second)
    assert np.abs(tiled - first).max() < 1e-5
    cpu = sr.device_for("residual_espcn", engine.cpu_device())
    with engine.deterministic(cpu):
        on_cpu = engine.run_tiled(_espcn_body(4, cpu), image, 1000, 0, 4)
    assert np.abs(on_cpu - first).max() < 1e-5


@CUDA
def test_a_run_on_cuda_records_the_card_and_replays(tmp_path: Path, signer: Signer) -> None:
    case = _small_case(tmp_path, signer)
    run_recipe(
        case, "E1", parse_recipe(SR_RECIPE, where="sr.toml"), signer=signer, now=NOW, device="cuda"
    )
    (run,) = read_runs(case.entries())
    info = run.steps[0]["model"]["device_info"]
    assert info["kind"] == "cuda"
    assert info["name"] == torch.cuda.get_device_name(0)
    (verdict,) = replay_run(case, run, max_abs_difference=1, min_psnr_db=40.0)
    assert verdict.verdict == "bit-exact"
    (on_cpu,) = replay_run(case, run, max_abs_difference=1, min_psnr_db=40.0, device="cpu")
    assert on_cpu.verdict in ("bit-exact", "within tolerance")
    assert on_cpu.devices is not None
    assert on_cpu.devices["replay"].startswith("cpu")


# -- the command line -----------------------------------------------------------------------------


def test_enhance_device_option_records_the_cpu_and_refuses_a_missing_gpu(
    tmp_path: Path, signer: Signer, run_cli: Any
) -> None:
    import json

    case = _small_case(tmp_path, signer)
    recipe = tmp_path / "sr.toml"
    recipe.write_bytes(SR_RECIPE)
    if not torch.cuda.is_available():
        code, out, err = run_cli("enhance", case.root, "E1", "--recipe", recipe, "--device", "cuda")
        assert code != 0
        assert "no CUDA GPU is available here" in err
        assert "Traceback" not in err
        assert read_runs(case.entries()) == []
    code, _, err = run_cli("enhance", case.root, "E1", "--recipe", recipe, "--device", "gpu")
    assert code == 2  # a usage error naming the choices
    assert "auto" in err
    code, out, _ = run_cli(
        "enhance", case.root, "E1", "--recipe", recipe, "--device", "cpu", "--json"
    )
    assert code == 0
    assert json.loads(out)["run"] == "R1"
    (run,) = read_runs(case.entries())
    assert run.steps[0]["model"]["device_info"]["requested"] == "cpu"
    code, out, _ = run_cli("verify", case.root, "--replay", "--replay-device", "cpu", "--json")
    assert code == 0
    (replayed,) = json.loads(out)["replay"]
    assert replayed["verdict"] == "bit-exact"
    assert replayed["devices"]["recorded"] == replayed["devices"]["replay"]
    assert replayed["devices"]["replay"].startswith("cpu (")
    if not torch.cuda.is_available():
        code, out, _ = run_cli("verify", case.root, "--replay", "--replay-device", "cuda", "--json")
        assert code == 1
        (replayed,) = json.loads(out)["replay"]
        assert replayed["verdict"] == "not reproduced"
        assert "no CUDA GPU is available here" in replayed["detail"]


def test_the_same_machine_is_no_device_difference_whatever_the_network() -> None:
    """oneDNN is chosen per network by the code (on for RRDBNet, off for the built-in model),
    so an RRDBNet step replayed on its own machine shows no device difference (else a changed
    output there would pass as within tolerance), while another device does."""
    from forensic.pipeline.replay import device_differences
    from forensic.records import StepRecord

    cpu = engine.cpu_device()
    used = sr.device_for("rrdbnet", cpu)
    step = StepRecord(
        "0" * 64,
        "examiner",
        {"lane": "generative", "model": {"device": used.label, "device_info": used.record()}},
    )
    devices, diffs = device_differences(step, cpu)
    assert diffs == []
    assert devices == {"recorded": cpu.label, "replay": cpu.label}
    other = dataclasses.replace(cpu, name="x86_64, Another CPU")
    assert device_differences(step, other)[1] == [
        f"device.name: recorded {cpu.name!r}, now 'x86_64, Another CPU'"
    ]
    old = StepRecord("0" * 64, "examiner", {"lane": "generative", "model": {"device": "cpu"}})
    assert device_differences(old, cpu) == ({"recorded": "cpu", "replay": cpu.label}, [])


def test_the_uncertainty_spread_is_accumulated_without_keeping_every_rerun() -> None:
    from forensic.generative.maps import _Spread

    reruns = np.random.default_rng(10).random((9, 30, 40))
    spread = _Spread()
    for values in reruns:
        spread.add(values)
    assert np.abs(spread.std() - np.std(reruns, axis=0)).max() < 1e-12


def test_the_run_progress_display_has_a_bar_for_frames_and_one_for_tiles() -> None:
    from forensic.cli import render

    with render.run_progress(False, "Enhancing") as quiet:
        assert quiet.frames is None
        assert quiet.tiles is None
    with render.run_progress(True, "Enhancing") as shown:
        assert shown.frames is not None
        assert shown.tiles is not None
        shown.tiles(1, 4)
        shown.tiles(4, 4)
        shown.frames(2, 10)
        bar = shown._bar
        assert [t.description for t in bar.tasks] == ["network tiles", "frames"]
        assert [(t.completed, t.total) for t in bar.tasks] == [(4, 4), (2, 10)]


#: SHA-256 of the outputs of versions 1 as the code of commit fd2cf57 (the last before
#: version 2) computed them, on a 180 x 160 crop of scikit-image's astronaut.
V1_OUTPUTS = {
    ("super_resolution", 2): "10fb56a32bbba85dc124e36df5cc8f2944055156bf889842891d0064c5903c63",
    ("super_resolution", 4): "a54bf2e0d4e5c4133a4f56478be29c9ea92ef6eef0cc1f8119326429b291e327",
    ("user_model", 2): "a39473519304a62cd795c1d26f3c4d3fc9a110dbeb3f6c8f68fed93e79c8dce6",
}


def test_versions_1_are_kept_and_replay_their_own_pixels(tmp_path: Path) -> None:
    """Version 2 tiles and turns oneDNN off for the built-in model; runs recorded with
    version 1 must still replay bit-exact, so version 1 is kept (superseded, never offered)."""
    import hashlib

    import skimage.data
    from safetensors.torch import save_file

    from forensic.generative import registry
    from forensic.lanes import lookup

    assert registry()["generative.super_resolution"].version == "2"
    assert registry()["generative.user_model"].version == "2"
    image = skimage.data.astronaut()[100:260, 150:330]
    v1 = lookup("generative.super_resolution", "1")
    assert v1 is not None
    for scale in (2, 4):
        out = v1.impl(image, scale=scale)
        digest = hashlib.sha256(out.tobytes()).hexdigest()
        assert digest == V1_OUTPUTS[("super_resolution", scale)]
    torch.manual_seed(0)
    net = RRDBNet(channels=3, feat=8, blocks=2, grow=4, scale=2).eval()
    weights = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(weights))
    user = lookup("generative.user_model", "1")
    assert user is not None
    out = user.impl(image, weights=str(weights), architecture="rrdbnet", scale=2)
    assert hashlib.sha256(out.tobytes()).hexdigest() == V1_OUTPUTS[("user_model", 2)]
