"""Examiners' ONNX models in the generative lane: torch and onnxruntime agree on the models
exported here, runs are bit-identical, a file is approved by SHA-256 with a declared manifest,
and face restoration and learned inpainting touch (and mark inferred) exactly the pixels the
examiner marked."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

from forensic import provenance
from forensic.case import Case, init_case
from forensic.errors import InputError, ParameterError, PolicyError
from forensic.generative import get
from forensic.generative.onnxrun import forget_sessions, runner
from forensic.generative.rrdbnet import RRDBNet
from forensic.generative.sr import load_model, rgb_resolve
from forensic.generative.unet import tiny_unet, to_onnx
from forensic.ingest import ingest
from forensic.journal import read_entries
from forensic.keys import Signer
from forensic.media import decode_image
from forensic.ops import defects
from forensic.ops.models import Manifest, parse_manifest
from forensic.pipeline.masks import load_mask
from forensic.pipeline.run import run_recipe
from forensic.policy import default_policy_path, parse_policy
from forensic.recipe import parse_recipe
from forensic.records import read_runs
from forensic.report.runs import manifest_text
from forensic.verify import verify_case
from tests import damage
from tests.conftest import NOW

#: Largest |ONNX - torch| accepted on float outputs in [0, 1] (fp32 both). Measured on this
#: CPU (x86_64, onnxruntime 1.31.1, torch 2.13.0): built-in network 2.4e-7, RRDBNet 8.9e-8,
#: U-Net 6.0e-8; the bound leaves headroom for other CPUs' vector widths and stays far below
#: half an 8-bit level (2e-3).
TOLERANCE = 2e-5
UNET_MANIFEST = {
    "task": "inpainting",
    "channels": "RGB",
    "input_range": [0, 1],
    "output_range": [0, 1],
    "pad_multiple": 4,
    "mask": "hole=1",
    "name": "test U-Net (random weights)",
}


def _manifest(data: dict[str, Any]) -> Manifest:
    return parse_manifest(data, ValueError)


class _LumaSR(torch.nn.Module):
    """The built-in x2 network with its bicubic baseline inside the graph (torch's bicubic,
    not OpenCV's), so that it is one image in, one image out."""

    def __init__(self) -> None:
        super().__init__()
        self.net = load_model(2)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        base = torch.nn.functional.interpolate(y, scale_factor=2, mode="bicubic")
        out: torch.Tensor = self.net(y, base)
        return out


@pytest.fixture(scope="module")
def unet_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("onnx") / "unet.onnx"
    example = (torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32))
    path.write_bytes(to_onnx(tiny_unet(7), example, ["image", "mask"]))
    return path


def _worst(a: Any, b: Any) -> float:
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


# -- ONNX against torch ----------------------------------------------------------------------


def test_the_built_in_network_exported_to_onnx_gives_torchs_output() -> None:
    module = _LumaSR().eval()
    data = to_onnx(module, (torch.rand(1, 1, 16, 16),), ["luma"])
    manifest = {"task": "super-resolution", "channels": "grey", "scale": 2}
    run = runner("t", data, _manifest({**manifest, "input_range": [0, 1], "output_range": [0, 1]}))
    y = np.random.default_rng(1).random((1, 1, 40, 56)).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(y)).numpy()
    got = run(y)
    assert got.shape == (1, 1, 80, 112)
    assert _worst(got, expected) < TOLERANCE


def test_an_rrdbnet_exported_to_onnx_gives_the_torch_paths_output(tmp_path: Path) -> None:
    torch.manual_seed(3)
    net = RRDBNet(channels=3, feat=8, blocks=2, grow=4, scale=4).eval()
    data = to_onnx(net, (torch.rand(1, 3, 16, 16),), ["image"])
    manifest = _manifest(
        {"task": "super-resolution", "channels": "RGB", "input_range": [0, 1],
         "output_range": [0, 1], "scale": 4}
    )  # fmt: skip
    batch = np.random.default_rng(2).random((1, 3, 24, 20)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(batch)).numpy()
    assert _worst(runner("t", data, manifest)(batch), expected) < TOLERANCE
    # Through the operation, against the torch path the lane already has (rgb_resolve):
    # equal 8-bit images, except where the float lands within the tolerance of a rounding edge.
    image = (np.random.default_rng(4).random((24, 20, 3)) * 255).astype(np.uint8)
    path = tmp_path / "rrdb.onnx"
    path.write_bytes(data)
    onnx_out = get("generative.onnx_super_resolution")(
        image, weights=str(path), manifest=manifest.canonical()
    )
    torch_out = rgb_resolve(image, net, 4)
    assert onnx_out.shape == torch_out.shape == (96, 80, 3)
    assert _worst(onnx_out, torch_out) <= 1
    assert np.mean(onnx_out != torch_out) < 0.001


def test_the_unet_exported_to_onnx_gives_torchs_output(unet_file: Path) -> None:
    net = tiny_unet(7)
    rng = np.random.default_rng(5)
    image = rng.random((1, 3, 36, 44)).astype(np.float32)
    hole = np.zeros((1, 1, 36, 44), np.float32)
    hole[..., 10:20, 12:30] = 1
    with torch.no_grad():
        expected = net(torch.from_numpy(image), torch.from_numpy(hole)).numpy()
    got = runner("t", unet_file.read_bytes(), _manifest(UNET_MANIFEST))(
        np.concatenate([image, hole], axis=1)
    )
    assert _worst(got, expected) < TOLERANCE


def test_two_sessions_give_bit_identical_outputs(unet_file: Path) -> None:
    """The session settings (one thread, sequential, deterministic compute) make a rerun,
    with a freshly built session, bit-identical."""
    data = unet_file.read_bytes()
    batch = np.random.default_rng(6).random((1, 4, 48, 48)).astype(np.float32)
    batch[:, 3] = batch[:, 3] > 0.8
    first = runner("t", data, _manifest(UNET_MANIFEST))(batch)
    forget_sessions()
    second = runner("t", data, _manifest(UNET_MANIFEST))(batch)
    assert first.tobytes() == second.tobytes()


def test_the_graph_must_fit_the_manifest(unet_file: Path) -> None:
    data = unet_file.read_bytes()
    as_sr = {**UNET_MANIFEST, "task": "super-resolution", "mask": None, "scale": 2}
    with pytest.raises(ParameterError, match="has 2 inputs; a super-resolution model takes 1"):
        runner("t", data, _manifest({k: v for k, v in as_sr.items() if v is not None}))
    with pytest.raises(ParameterError, match="not an ONNX model"):
        runner("t", b"not a model", _manifest(UNET_MANIFEST))


# -- manifests and the policy ----------------------------------------------------------------


def _policy_text(entries: str = "", approved: str = "") -> str:
    text = default_policy_path().read_text()
    if approved:
        text = text.replace("approved_models = [\n", f'approved_models = [\n  "{approved}",\n', 1)
    return text + entries


def _entry(digest: str, manifest: dict[str, Any], profile: str = "investigative") -> str:
    return (
        f"\n[[profiles.{profile}.generative.models]]\n"
        f'sha256 = "{digest}"\nmanifest = {_manifest(manifest).toml()}\n'
    )


def test_a_policy_entry_approves_a_hash_with_its_manifest() -> None:
    digest = "ab" * 32
    policy = parse_policy(_policy_text(_entry(digest, UNET_MANIFEST)).encode(), where="p.toml")
    rules = policy.profiles["investigative"].generative
    assert digest in rules.approved_models
    assert rules.manifest(digest) == _manifest(UNET_MANIFEST)
    assert policy.profiles["evidence"].generative.manifest(digest) is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"task": "colourise"}, r"manifest task is 'colourise'"),
        ({"mask": None}, r"manifest mask is None; an inpainting model needs hole=1 or hole=0"),
        ({"input_range": [1, 1]}, r"manifest input_range must be \[low, high\]"),
        ({"scale": 2}, r"manifest scale is 2; only super-resolution changes the size"),
        ({"colours": "RGB"}, r"manifest has unknown keys colours"),
    ],
)
def test_a_bad_manifest_in_the_policy_is_refused_naming_the_key(
    change: dict[str, Any], message: str
) -> None:
    manifest = {k: v for k, v in {**UNET_MANIFEST, **change}.items() if v is not None}
    inline = "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in manifest.items()) + " }"
    entry = (
        "\n[[profiles.investigative.generative.models]]\n"
        f'sha256 = "{"cd" * 32}"\nmanifest = {inline}\n'
    )
    with pytest.raises(PolicyError, match=r"profiles\.investigative\.generative\.models\[1\]"):
        parse_policy(_policy_text(entry).encode(), where="p.toml")
    with pytest.raises(PolicyError, match=message):
        parse_policy(_policy_text(entry).encode(), where="p.toml")


# -- runs in a case --------------------------------------------------------------------------


def _case(tmp_path: Path, signer: Signer, policy: str, image: Any, name: str = "c") -> Case:
    policy_path = tmp_path / f"{name}-policy.toml"
    policy_path.write_text(policy)
    case = init_case(
        tmp_path / name, case_id=name.upper(), title="t", policy_path=policy_path,
        signer=signer, now=NOW, profile="investigative",
    )  # fmt: skip
    picture = tmp_path / f"{name}.png"
    picture.write_bytes(cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes())
    ingest(case, [picture], signer=signer, now=NOW)
    return case


def _run(case: Case, signer: Signer, text: str) -> Any:
    return run_recipe(
        case, "E1", parse_recipe(text.encode(), where="r.toml"), signer=signer, now=NOW
    )


def _stored(case: Case, record: Any) -> Any:
    return decode_image((case.root / record["file"]).read_bytes(), where="stored")[0]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


SCENE = damage.procedural_scene(96, 11)


def test_learned_inpainting_marks_exactly_the_region_and_replays(
    tmp_path: Path, signer: Signer, unet_file: Path
) -> None:
    digest = _sha(unet_file)
    case = _case(tmp_path, signer, _policy_text(_entry(digest, UNET_MANIFEST)), SCENE)
    region = "polygon(20, 20, 60, 24, 40, 70)"
    summary = _run(
        case, signer,
        f'[[steps]]\nop = "generative.inpaint_learned"\nweights = "{unet_file}"\n'
        f'region = "{region}"\n',
    )  # fmt: skip
    (run,) = read_runs(read_entries(case.root))
    (step,) = run.steps
    assert step["model"]["weights_sha256"] == digest
    assert step["model"]["manifest"] == _manifest(UNET_MANIFEST).as_dict()
    assert step["model"]["format"] == "onnx"
    assert step["model"]["graph"]["inputs"][1]["name"] == "mask"
    assert step["model"]["session"]["intra_op_num_threads"] == 1
    assert json.loads(step["params"]["manifest"]) == _manifest(UNET_MANIFEST).as_dict()
    assert manifest_text(step["model"]["manifest"]).endswith("input size any; mask hole=1")
    mask = defects.regions_mask(SCENE.shape, defects.parse_regions("t", "region", region))
    assert defects.decode_mask("t", "mask", step["params"]["mask"]).tolist() == mask.tolist()
    pmap = _stored(case, summary.provenance)
    assert np.array_equal(pmap == provenance.INFERRED, mask)
    assert np.all(pmap[~mask] == provenance.ORIGINAL)
    output = _stored(case, summary.output)
    assert np.array_equal(output[~mask], SCENE[~mask])
    assert not np.array_equal(output[mask], SCENE[mask])
    assert step["maps"]["inferred_fraction"] == pytest.approx(mask.mean(), abs=1e-6)
    assert run["tainted"] is True
    unet_copy = case.root / step["model"]["weights_copy"]["file"]
    assert unet_copy.read_bytes() == unet_file.read_bytes()
    verdict = verify_case(case.root, replay=True)
    assert verdict.ok, verdict.failure


def test_fill_defects_learned_fills_the_detected_mask(
    tmp_path: Path, signer: Signer, unet_file: Path
) -> None:
    digest = _sha(unet_file)
    damaged, _ = damage.add_dust(SCENE, 12, 3)
    case = _case(tmp_path, signer, _policy_text(_entry(digest, UNET_MANIFEST)), damaged)
    kinds = 'kinds = "dust"\nadd = "rect(70, 70, 6, 5)"\n'
    summary = _run(
        case, signer,
        f'[[steps]]\nop = "detect_defects"\n{kinds}'
        f'[[steps]]\nop = "generative.fill_defects"\n{kinds}method = "learned"\n'
        f'weights = "{unet_file}"\n',
    )  # fmt: skip
    (run,) = read_runs(read_entries(case.root))
    detect, fill = run.steps
    assert fill["model"]["manifest"]["task"] == "inpainting"
    mask = defects.decode_mask("t", "mask", fill["params"]["mask"])
    # What the analysis step showed (a mask file in derived/) is what was filled.
    shown = load_mask(case.store, detect["details"]["mask"], name="mask", what="shown")
    assert np.array_equal(shown, mask)
    assert mask.sum() > 30
    pmap = _stored(case, summary.provenance)
    assert np.array_equal(pmap == provenance.INFERRED, mask)
    output = _stored(case, summary.output)
    assert np.array_equal(output[~mask], damaged[~mask])
    assert verify_case(case.root, replay=True).ok


def test_face_restoration_with_a_fixed_size_model_replaces_only_the_region(
    tmp_path: Path, signer: Signer
) -> None:
    torch.manual_seed(9)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Tanh(), torch.nn.Conv2d(8, 3, 3, padding=1)
    ).eval()
    path = tmp_path / "face.onnx"
    path.write_bytes(to_onnx(net, (torch.rand(1, 3, 32, 32),), ["image"], dynamic=False))
    manifest = {
        "task": "face-restoration", "channels": "BGR", "input_range": [-1, 1],
        "output_range": [-1, 1], "input_size": 32, "name": "fixed-size test model",
    }  # fmt: skip
    case = _case(tmp_path, signer, _policy_text(_entry(_sha(path), manifest)), SCENE)
    region = "rect(30, 10, 41, 50)"
    summary = _run(
        case, signer,
        f'[[steps]]\nop = "generative.face_restoration"\nweights = "{path}"\nregion = "{region}"\n',
    )  # fmt: skip
    mask = np.zeros(SCENE.shape[:2], bool)
    mask[10:60, 30:71] = True
    pmap = _stored(case, summary.provenance)
    assert np.array_equal(pmap == provenance.INFERRED, mask)
    output = _stored(case, summary.output)
    assert np.array_equal(output[~mask], SCENE[~mask])
    assert not np.array_equal(output[mask], SCENE[mask])
    (run,) = read_runs(read_entries(case.root))
    assert run.steps[0]["model"]["name"] == "fixed-size test model"
    assert verify_case(case.root, replay=True).ok


def test_an_unapproved_or_tampered_model_is_refused(
    tmp_path: Path, signer: Signer, unet_file: Path
) -> None:
    digest = _sha(unet_file)
    case = _case(tmp_path, signer, _policy_text(_entry(digest, UNET_MANIFEST)), SCENE)
    tampered = tmp_path / "tampered.onnx"
    data = bytearray(unet_file.read_bytes())
    data[-10] ^= 1  # one byte of a weight
    tampered.write_bytes(bytes(data))
    recipe = '[[steps]]\nop = "generative.inpaint_learned"\nweights = "{}"\nregion = "rect(5, 5, 9, 9)"\n'
    with pytest.raises(PolicyError, match=f"{_sha(tampered)} are not approved"):
        _run(case, signer, recipe.format(tampered))
    # Approved by hash alone (the approved_models list), with no declared manifest.
    bare = _case(tmp_path, signer, _policy_text(approved=digest), SCENE, name="bare")
    with pytest.raises(PolicyError, match="without a declared manifest") as caught:
        _run(bare, signer, recipe.format(unet_file))
    assert "forensic model approve" in str(caught.value.hint)
    # A manifest in the recipe that differs from the policy's.
    other = json.dumps({**UNET_MANIFEST, "mask": "hole=0"})
    with pytest.raises(PolicyError, match="manifest differs"):
        _run(case, signer, recipe.format(unet_file) + f"manifest = {json.dumps(other)}\n")


def test_the_file_is_read_once_so_a_swapped_file_cannot_run(
    tmp_path: Path, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import forensic.pipeline.still as still

    path = tmp_path / "swap.onnx"
    example = (torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32))
    approved = to_onnx(tiny_unet(21), example, ["image", "mask"])
    path.write_bytes(approved)
    case = _case(
        tmp_path, signer, _policy_text(_entry(hashlib.sha256(approved).hexdigest(), UNET_MANIFEST)),
        SCENE,
    )  # fmt: skip
    real_load = still.load_frames

    def swap_then_load(*args: Any, **kwargs: Any) -> Any:
        path.write_bytes(to_onnx(tiny_unet(22), example, ["image", "mask"]))  # after approval
        return real_load(*args, **kwargs)

    monkeypatch.setattr(still, "load_frames", swap_then_load)
    region = "rect(10, 10, 30, 20)"
    summary = _run(
        case, signer,
        f'[[steps]]\nop = "generative.inpaint_learned"\nweights = "{path}"\nregion = "{region}"\n',
    )  # fmt: skip
    expected_file = tmp_path / "expected.onnx"
    expected_file.write_bytes(approved)
    expected = get("generative.inpaint_learned")(
        SCENE, weights=str(expected_file), region=region,
        manifest=_manifest(UNET_MANIFEST).canonical(),
    )  # fmt: skip
    assert np.array_equal(_stored(case, summary.output), expected)


def test_bad_inputs_name_the_parameter(unet_file: Path) -> None:
    op = get("generative.inpaint_learned")
    manifest = _manifest(UNET_MANIFEST).canonical()
    with pytest.raises(ParameterError, match="parameter 'manifest' is missing"):
        op(SCENE, weights=str(unet_file), region="rect(1, 1, 4, 4)")
    with pytest.raises(
        ParameterError, match="parameter 'region' 'rect\\(500, 500, 4, 4\\)' covers no"
    ):
        op(SCENE, weights=str(unet_file), region="rect(500, 500, 4, 4)", manifest=manifest)
    with pytest.raises(ParameterError, match="declares task 'inpainting'; this operation runs"):
        get("generative.face_restoration")(
            SCENE, weights=str(unet_file), region="rect(1, 1, 4, 4)", manifest=manifest
        )
    with pytest.raises(ParameterError, match="parameter 'weights' is missing"):
        get("generative.fill_defects")(
            SCENE, kinds="dust", method="learned", mask=defects.encode_mask(SCENE[..., 0] > 200)
        )
    with pytest.raises(ParameterError, match="parameter 'weights' is given, but method telea"):
        get("generative.fill_defects")(SCENE, kinds="dust", weights=str(unet_file))


def test_model_approve_prints_an_entry_the_policy_accepts(
    unet_file: Path, run_cli: Any, tmp_path: Path
) -> None:
    code, out, err = run_cli(
        "model", "approve", str(unet_file), "--task", "inpainting", "--mask", "hole=1",
        "--pad-multiple", "4", "--name", "test U-Net (random weights)", "--json",
    )  # fmt: skip
    assert code == 0, out + err
    approval = json.loads(out)
    assert approval["sha256"] == _sha(unet_file)
    assert approval["graph"]["trial"]["output"] == [1, 3, 64, 64]
    policy = parse_policy((_policy_text() + "\n" + approval["policy_entry"]).encode(), where="p")
    declared = policy.profiles["investigative"].generative.manifest(approval["sha256"])
    assert declared == _manifest(UNET_MANIFEST)
    lab = tmp_path / "lab.toml"
    lab.write_text(_policy_text() + "\n" + approval["policy_entry"])
    code, out, err = run_cli("policy", "check", str(lab))
    assert code == 0, err
    assert f"approved model {approval['sha256']} (inpainting, test U-Net" in out
    code, out, err = run_cli(
        "model", "approve", str(unet_file), "--task", "super-resolution", "--scale", "2"
    )
    assert code == 2
    assert "has 2 inputs; a super-resolution model takes 1" in out + err


def test_the_cuda_provider_runs_when_present_and_is_refused_clearly_otherwise(
    unet_file: Path,
) -> None:
    import onnxruntime

    data = unet_file.read_bytes()
    batch = np.random.default_rng(8).random((1, 4, 32, 32)).astype(np.float32)
    batch[:, 3] = batch[:, 3] > 0.7
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(ParameterError, match="no CUDA execution provider"):
            runner("t", data, _manifest(UNET_MANIFEST), device="cuda")
        pytest.skip("this onnxruntime build has no CUDA execution provider (onnxruntime-gpu)")
    on_gpu = runner("t", data, _manifest(UNET_MANIFEST), device="cuda")(batch)
    on_cpu = runner("t", data, _manifest(UNET_MANIFEST))(batch)
    assert _worst(on_gpu, on_cpu) < TOLERANCE


def test_source_coordinates_after_an_onnx_enlargement_are_refused() -> None:
    from forensic.pipeline.coords import forward_map

    grid = forward_map("generative.onnx_super_resolution", {"weights": "m.onnx"}, 64, 48)
    assert grid.lost is not None
    assert "enlargement" in grid.lost


def test_a_run_reads_the_model_file_exactly_once(
    tmp_path: Path, signer: Signer, unet_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Approval, session, the uncertainty map's reruns and the copy into the case all use
    the bytes of one read."""
    fresh = tmp_path / "once.onnx"
    fresh.write_bytes(unet_file.read_bytes())
    case = _case(tmp_path, signer, _policy_text(_entry(_sha(fresh), UNET_MANIFEST)), SCENE)
    reads: list[Path] = []
    real_read = Path.read_bytes

    def counting_read(self: Path) -> bytes:
        if self.name == fresh.name:
            reads.append(self)
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", counting_read)
    _run(
        case, signer,
        f'[[steps]]\nop = "generative.inpaint_learned"\nweights = "{fresh}"\n'
        'region = "rect(8, 8, 20, 12)"\n',
    )  # fmt: skip
    assert reads == [fresh]


def test_onnx_super_resolution_in_a_case_has_the_lanes_maps_and_replays(
    tmp_path: Path, signer: Signer
) -> None:
    torch.manual_seed(12)
    net = RRDBNet(channels=3, feat=8, blocks=1, grow=4, scale=2).eval()
    path = tmp_path / "sr.onnx"
    path.write_bytes(to_onnx(net, (torch.rand(1, 3, 16, 16),), ["image"]))
    manifest = {
        "task": "super-resolution", "channels": "RGB", "input_range": [0, 1],
        "output_range": [0, 1], "scale": 2, "name": "tiny RRDBNet x2 (random weights)",
    }  # fmt: skip
    small = SCENE[:40, :56]
    case = _case(tmp_path, signer, _policy_text(_entry(_sha(path), manifest)), small)
    summary = _run(
        case, signer, f'[[steps]]\nop = "generative.onnx_super_resolution"\nweights = "{path}"\n'
    )
    assert (summary.output["width"], summary.output["height"]) == (112, 80)
    pmap = _stored(case, summary.provenance)
    assert np.all(pmap == provenance.INFERRED)
    (run,) = read_runs(read_entries(case.root))
    (step,) = run.steps
    assert step["model"]["manifest"]["scale"] == 2
    assert "bicubic" in step["maps"]["baseline"]
    assert step["inferred_fraction"] == 1.0
    verdict = verify_case(case.root, replay=True)
    assert verdict.ok, verdict.failure


def test_restoring_over_a_redaction_is_refused(
    tmp_path: Path, signer: Signer, unet_file: Path
) -> None:
    case = _case(tmp_path, signer, _policy_text(_entry(_sha(unet_file), UNET_MANIFEST)), SCENE)
    text = (
        '[[steps]]\nop = "redact_fill"\nx = 20\ny = 20\nwidth = 30\nheight = 30\n'
        f'[[steps]]\nop = "generative.inpaint_learned"\nweights = "{unet_file}"\n'
        'region = "polygon(10, 10, 30, 12, 25, 30)"\n'
    )
    with pytest.raises(InputError, match="mask overlaps redacted pixels"):
        _run(case, signer, text)


def test_learned_inpainting_on_video_frames_marks_the_region_on_every_frame(
    tmp_path: Path, signer: Signer, media: Path, unet_file: Path
) -> None:
    policy_path = tmp_path / "video-policy.toml"
    policy_path.write_text(_policy_text(_entry(_sha(unet_file), UNET_MANIFEST)))
    case = init_case(
        tmp_path / "v", case_id="V-1", title="t", policy_path=policy_path, signer=signer,
        now=NOW, profile="investigative",
    )  # fmt: skip
    ingest(case, [media / "cctv.mp4"], signer=signer, now=NOW)
    text = (
        '[recipe]\ncoords = "input"\n'
        '[[steps]]\nop = "crop"\nx = 100\ny = 80\nwidth = 64\nheight = 48\nframes = [0, 2]\n'
        f'[[steps]]\nop = "generative.inpaint_learned"\nweights = "{unet_file}"\n'
        'region = "polygon(10, 5, 40, 8, 20, 30)"\n'
    )
    summary = _run(case, signer, text)
    mask = defects.regions_mask(
        (48, 64), defects.parse_regions("t", "r", "polygon(10, 5, 40, 8, 20, 30)")
    )
    assert summary.provenance["counts"]["inferred"] == 3 * int(mask.sum())
    (run,) = read_runs(read_entries(case.root))
    assert run.steps[1]["model"]["manifest"]["task"] == "inpainting"
    verdict = verify_case(case.root, replay=True)
    assert verdict.ok, verdict.failure


def test_model_approve_refuses_a_malformed_profile_name(unet_file: Path, run_cli: Any) -> None:
    code, out, err = run_cli(
        "model", "approve", str(unet_file), "--task", "inpainting", "--mask", "hole=1",
        "--profile", "x]\nevil",
    )  # fmt: skip
    assert code == 2
    assert "--profile" in out + err


@pytest.mark.parametrize("kind", ["uint16 colour", "grey", "colour with alpha"])
def test_other_image_kinds_change_only_the_mask(unet_file: Path, kind: str) -> None:
    image: Any = SCENE
    if kind == "uint16 colour":
        image = SCENE.astype(np.uint16) * 257
    elif kind == "grey":
        image = SCENE[..., 1].copy()
    else:
        image = np.dstack([SCENE, np.full(SCENE.shape[:2], 200, np.uint8)])
    region = "rect(30, 30, 25, 14)"
    out = get("generative.inpaint_learned")(
        image, weights=str(unet_file), region=region,
        manifest=_manifest(UNET_MANIFEST).canonical(),
    )  # fmt: skip
    mask = np.zeros(image.shape[:2], bool)
    mask[30:44, 30:55] = True
    assert out.dtype == image.dtype
    assert out.shape == image.shape
    assert np.array_equal(out[~mask], image[~mask])
    changed = out != image if out.ndim == 2 else (out[..., :3] != image[..., :3]).any(axis=2)
    assert changed[mask].mean() > 0.5
    if kind == "colour with alpha":
        assert np.array_equal(out[..., 3], image[..., 3])
