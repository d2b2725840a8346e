"""The generative lane: quarantine, policy gating, inferred provenance, maps, taint."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from forensic import provenance
from forensic.case import Case, init_case
from forensic.errors import PolicyError
from forensic.hashing import image_hash
from forensic.ingest import ingest
from forensic.journal import read_entries
from forensic.keys import Signer
from forensic.media import decode_image
from forensic.pipeline.run import run_recipe
from forensic.policy import default_policy_path
from forensic.recipe import parse_recipe
from forensic.records import read_runs
from forensic.verify import verify_case
from tests.conftest import NOW

ROOT = Path(__file__).resolve().parents[1]
INPAINT = b"""
[[steps]]
op = "generative.inpaint_telea"
x = 200
y = 430
width = 40
height = 40
"""


def _run(case: Case, signer: Signer, text: bytes, source: str = "E1") -> Any:
    recipe = parse_recipe(text, where="test.toml")
    return run_recipe(case, source, recipe, signer=signer, now=NOW)


def _decode(path: Path) -> Any:
    return decode_image(path.read_bytes(), where=str(path))[0]


@pytest.fixture
def investigative(tmp_path: Path, signer: Signer, media: Path) -> Case:
    case = init_case(
        tmp_path / "inv",
        case_id="INV-1",
        title="investigative",
        policy_path=None,
        signer=signer,
        now=NOW,
        profile="investigative",
    )
    ingest(case, [media / "camera_clean.png"], signer=signer, now=NOW)
    return case


# -- quarantine ----------------------------------------------------------------------------------


def test_import_contracts_hold_on_the_real_tree() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_import_contract_catches_a_planted_violation(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "forensic", tmp_path / "forensic")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "forensic" / "classical" / "planted.py").write_text(
        "from forensic.generative import registry  # a classical module reaching across\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode != 0
    assert "forensic.classical.planted -> forensic.generative" in done.stdout


def test_a_classical_run_and_its_replay_load_neither_torch_nor_the_generative_lane(
    tmp_path: Path, media: Path, key_dir: Path
) -> None:
    code = f"""
import sys
from pathlib import Path
from forensic.case import init_case
from forensic.pipeline.run import run_recipe
from forensic.ingest import ingest
from forensic.keys import unlock
from forensic.recipe import load_recipe
from forensic.verify import verify_case
from tests.conftest import NOW, PASSPHRASE
signer = unlock(Path({str(key_dir)!r}), PASSPHRASE)
case = init_case(Path({str(tmp_path / "c")!r}), case_id="Q", title="q", policy_path=None,
                 signer=signer, now=NOW)
ingest(case, [Path({str(media / "camera_noisy.png")!r})], signer=signer, now=NOW)
run_recipe(case, "E1", load_recipe("dark-noisy"), signer=signer, now=NOW)
assert verify_case(case.root, replay=True).ok
bad = [m for m in sys.modules if m == "torch" or m.startswith(("torch.", "forensic.generative"))]
assert not bad, bad
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# -- policy gating and provenance -----------------------------------------------------------------


def test_evidence_profile_refuses_inpainting(case: Case, signer: Signer, media: Path) -> None:
    ingest(case, [media / "camera_clean.png"], signer=signer, now=NOW)
    with pytest.raises(PolicyError, match="profile 'evidence'"):
        _run(case, signer, INPAINT)


def test_inpainting_marks_exactly_its_region_inferred(investigative: Case, signer: Signer) -> None:
    summary = _run(investigative, signer, INPAINT + b'[[steps]]\nop = "levels"\ngamma = 1.1\n')
    pmap = _decode(investigative.root / summary.provenance["file"])
    expected = np.full((512, 512), provenance.TRANSFORMED, np.uint8)
    expected[430:470, 200:240] = provenance.INFERRED
    assert np.array_equal(pmap, expected)
    verdict = verify_case(investigative.root, replay=True)
    assert verdict.ok, verdict.failure
    assert [(r["lane"], r["verdict"]) for r in verdict.replay or []] == [
        ("generative", "bit-exact"),
        ("classical", "bit-exact"),
    ]


def test_generative_steps_record_their_maps(investigative: Case, signer: Signer) -> None:
    _run(investigative, signer, INPAINT)
    (_rec,) = read_runs(read_entries(investigative.root))
    steps = _rec.steps
    maps = steps[0]["maps"]
    assert maps["inferred_fraction"] == pytest.approx(40 * 40 / 512**2, abs=1e-6)
    assert len(maps["uncertainty"]["seeds"]) == maps["uncertainty"]["runs"] == 8
    for name in ("inferred_content", "uncertainty", "consistency"):
        record = maps["files"][name]
        image = _decode(investigative.root / record["file"])
        assert image.dtype == np.uint16
        assert image_hash(image) == record["pixel_sha256"]
    content = _decode(investigative.root / maps["files"]["inferred_content"]["file"])
    assert np.count_nonzero(content) == 40 * 40
    consistency = _decode(investigative.root / maps["files"]["consistency"]["file"])
    assert consistency.max() == 0  # Telea keeps every known pixel


def test_uncertainty_is_higher_on_texture_than_on_flat_sky(
    investigative: Case, signer: Signer
) -> None:
    """camera: flat sky at the top, textured coat and grass below. Measured mean uncertainty
    (fraction of full scale): sky 0.0017, grass 0.0035, coat 0.0143."""
    from forensic.generative import get
    from forensic.generative.maps import inferred_maps

    image = _decode(investigative.root / read_entries(investigative.root)[1].payload["stored"])
    op = get("generative.inpaint_telea")

    def mean_uncertainty(x: int, y: int) -> float:
        params = {"x": x, "y": y, "width": 40, "height": 40, "radius": 5.0}
        _, meta = inferred_maps(op, image, op(image, **params), params, seed=7)
        return float(meta["summary"]["uncertainty_mean_in_region"])

    sky, coat = mean_uncertainty(60, 30), mean_uncertainty(250, 250)
    assert coat > 3 * sky


def test_an_altered_map_fails_verify(investigative: Case, signer: Signer) -> None:
    _run(investigative, signer, INPAINT)
    (_rec,) = read_runs(read_entries(investigative.root))
    steps = _rec.steps
    path = investigative.root / steps[0]["maps"]["files"]["uncertainty"]["file"]
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert "uncertainty map" in (verify_case(investigative.root).failure or "")


# -- taint -------------------------------------------------------------------------------------------


def test_a_tainted_output_is_refused_as_input_where_generative_is_not_allowed(
    tmp_path: Path, signer: Signer, media: Path
) -> None:
    """A lab allows inpainting by name in a classical-only profile (say, for disclosure
    copies; the `evidence` profile itself may not allow it); its output may still never feed a
    run where the generative lane is not allowed."""
    text = default_policy_path().read_text() + (
        "\n[profiles.disclosure]\n"
        'description = "Disclosure copies"\n'
        'lanes = ["classical"]\n'
        'allow_operations = ["generative.inpaint_telea"]\n'
        "deny_operations = []\n"
        "[profiles.disclosure.generative]\n"
        "approved_models = []\n"
        "require_cosign = true\n"
        "visible_label = true\n"
        'label = "INFERRED - NOT EVIDENCE"\n'
    )
    policy = tmp_path / "p.toml"
    policy.write_text(text)
    case = init_case(
        tmp_path / "c",
        case_id="T-1",
        title="t",
        policy_path=policy,
        signer=signer,
        now=NOW,
        profile="disclosure",
    )
    ingest(case, [media / "camera_clean.png"], signer=signer, now=NOW)
    _run(case, signer, INPAINT)
    with pytest.raises(PolicyError, match=r"run R1 is tainted.*1600 pixels still marked inferred"):
        _run(case, signer, b'[[steps]]\nop = "levels"\n', source="R1")
    clean = _run(case, signer, b'[[steps]]\nop = "levels"\n')  # from the exhibit: fine
    _run(case, signer, b'[[steps]]\nop = "invert"\n', source=clean.run_id)  # untainted: fine


def test_a_run_on_a_tainted_output_stays_tainted(investigative: Case, signer: Signer) -> None:
    _run(investigative, signer, INPAINT)
    summary = _run(investigative, signer, b'[[steps]]\nop = "invert"\n', source="R1")
    assert summary.provenance["counts"]["inferred"] == 1600
    assert verify_case(investigative.root, replay=True).ok


def test_inferred_output_gets_a_labelled_presentation_copy_and_model_facts(
    investigative: Case, signer: Signer
) -> None:
    summary = _run(investigative, signer, INPAINT)
    copy_record = summary.output["presentation"]
    assert copy_record["label"] == "INFERRED - NOT FOR IDENTIFICATION"
    copy = _decode(investigative.root / copy_record["file"])
    output = _decode(investigative.root / summary.output["file"])
    band = copy.shape[0] - output.shape[0]
    assert band > 10
    assert np.array_equal(copy[band:], output)  # the picture itself is untouched
    assert copy[:band].max() > 200  # white text on the black band
    (_rec,) = read_runs(read_entries(investigative.root))
    steps = _rec.steps
    assert steps[0]["model"]["name"] == "generative.inpaint_telea"
    assert steps[0]["inferred_fraction"] == pytest.approx(1600 / 512**2, abs=1e-6)
    plain = _run(investigative, signer, b'[[steps]]\nop = "levels"\n')
    assert "presentation" not in plain.output  # nothing inferred, no label


# -- learned super-resolution --------------------------------------------------------------------

SR = b'[[steps]]\nop = "generative.super_resolution"\nscale = 2\n'


def test_evidence_refuses_super_resolution_and_investigative_marks_everything_inferred(
    case: Case, investigative: Case, signer: Signer, media: Path
) -> None:
    ingest(case, [media / "camera_clean.png"], signer=signer, now=NOW)
    with pytest.raises(PolicyError, match="profile 'evidence'"):
        _run(case, signer, SR)
    summary = _run(investigative, signer, SR)
    pmap = _decode(investigative.root / summary.provenance["file"])
    assert pmap.shape == (1024, 1024)
    assert np.all(pmap == provenance.INFERRED)
    (_rec,) = read_runs(read_entries(investigative.root))
    steps = _rec.steps
    model = steps[0]["model"]
    assert model["weights_sha256"] == _weights_sha(2)
    assert model["framework"].startswith("torch ")
    verdict = verify_case(investigative.root, replay=True)
    assert verdict.ok, verdict.failure
    assert [r["verdict"] for r in verdict.replay or []] == ["bit-exact"]


def _weights_sha(scale: int) -> str:
    from forensic.generative.sr import weights_sha256

    return weights_sha256(scale)


def test_unapproved_weights_are_refused_naming_the_hash(
    tmp_path: Path, signer: Signer, media: Path
) -> None:
    text = default_policy_path().read_text()
    for scale in (2, 4):  # the investigative profile approves both built-in models; drop them
        text = text.replace(f'  "{_weights_sha(scale)}",\n', "")
    policy = tmp_path / "p.toml"
    policy.write_text(text)
    case = init_case(
        tmp_path / "c", case_id="W-1", title="t", policy_path=policy, signer=signer, now=NOW,
        profile="investigative",
    )  # fmt: skip
    ingest(case, [media / "camera_clean.png"], signer=signer, now=NOW)
    with pytest.raises(PolicyError, match=_weights_sha(2)):
        _run(case, signer, SR)


def test_changed_weights_are_caught_by_replay(
    investigative: Case, signer: Signer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import forensic.generative.sr as sr

    _run(investigative, signer, SR)
    changed = tmp_path / "sr_x2.safetensors"
    data = bytearray(sr.weights_path(2).read_bytes())
    data[-3] ^= 0x01  # the last bytes are float weights
    changed.write_bytes(bytes(data))
    monkeypatch.setattr(sr, "weights_path", lambda scale: changed)
    sr.load_model.cache_clear()
    try:
        verdict = verify_case(investigative.root, replay=True)
    finally:
        sr.load_model.cache_clear()
    assert not verdict.ok
    assert "model weights differ" in (verdict.failure or "")


@pytest.mark.parametrize(("scale", "margin"), [(2, 0.2), (4, 0.08)])
def test_the_built_in_model_beats_bicubic_on_held_out_images(scale: int, margin: float) -> None:
    """The margins stated in models/MODEL_CARD.md (smallest measured gains 0.21 and 0.09 dB)."""
    from forensic.generative.sr import MODELS
    from forensic.generative.train_sr import HELD_OUT, TRAIN, evaluate

    assert not set(HELD_OUT) & set(TRAIN)
    rows = evaluate(scale)
    gains = [r["model_psnr"] - r["bicubic_psnr"] for r in rows]
    assert min(gains) >= margin, gains
    assert all(r["model_ssim"] > r["bicubic_ssim"] for r in rows)
    assert (
        f"Smallest PSNR gain over bicubic: {min(gains):.2f} dB"
        in (MODELS / "MODEL_CARD.md").read_text()
    )


def test_super_resolution_maps(investigative: Case, signer: Signer) -> None:
    """Uncertainty is higher on grass than on the flat sky; the output, averaged back down,
    agrees with the input almost everywhere (measured mean residual 0.07 grey levels)."""
    from forensic.generative import get
    from forensic.generative.maps import inferred_maps

    image = _decode(investigative.root / read_entries(investigative.root)[1].payload["stored"])
    op = get("generative.super_resolution")
    maps, meta = inferred_maps(op, image, op(image, scale=2), {"scale": 2}, seed=3)
    uncertainty = maps["uncertainty"].astype(np.float64) / 65535
    sky, grass = uncertainty[60:140, 120:280].mean(), uncertainty[860:940, 400:480].mean()
    assert grass > 2 * sky
    assert meta["summary"]["consistency_mean"] < 1 / 255
    assert meta["inferred_fraction"] == 1.0


# -- co-signatures ------------------------------------------------------------------------------


def test_a_second_examiner_cosigns_a_generative_step(
    investigative: Case, signer: Signer, other_signer: Signer
) -> None:
    from forensic.case import enrol_examiner
    from forensic.cosign import cosign, missing_cosignatures
    from forensic.errors import CaseError, InputError
    from forensic.keys import public_pem

    _run(investigative, signer, INPAINT + b'[[steps]]\nop = "levels"\n')
    assert missing_cosignatures(read_entries(investigative.root)) == [
        {"run": "R1", "step": 1, "op": "generative.inpaint_telea"}
    ]
    with pytest.raises(InputError, match="another"):
        cosign(investigative, "R1.1", signer=signer, now=NOW)
    with pytest.raises(CaseError, match="not enrolled"):
        cosign(investigative, "R1.1", signer=other_signer, now=NOW)
    enrol_examiner(
        investigative, public_pem(other_signer.public_key), name="Other", signer=signer, now=NOW
    )
    with pytest.raises(InputError, match="classical"):
        cosign(investigative, "R1.2", signer=other_signer, now=NOW)
    with pytest.raises(InputError, match=r"no step R1\.9"):
        cosign(investigative, "R1.9", signer=other_signer, now=NOW)
    entry = cosign(investigative, "r1.1", signer=other_signer, now=NOW)
    assert entry.payload["entry"] == next(
        e.hash for e in read_entries(investigative.root) if e.kind == "run.step"
    )
    assert missing_cosignatures(read_entries(investigative.root)) == []
    assert verify_case(investigative.root).ok


# -- user-supplied weights -------------------------------------------------------------------------


def _user_policy(tmp_path: Path, approved: str) -> Path:
    text = (
        default_policy_path()
        .read_text()
        .replace("approved_models = [\n", f'approved_models = [\n  "{approved}",\n', 1)
    )
    path = tmp_path / "lab.toml"
    path.write_text(text)
    return path


def test_user_weights_approved_by_hash_run_and_replay_from_the_case_copy(
    tmp_path: Path, signer: Signer, media: Path
) -> None:
    import hashlib

    import torch

    from forensic.generative.sr import load_model

    weights = tmp_path / "examiner-model.pt"
    torch.save(load_model(2).state_dict(), weights)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    case = init_case(
        tmp_path / "c", case_id="U-1", title="t", policy_path=_user_policy(tmp_path, digest),
        signer=signer, now=NOW, profile="investigative",
    )  # fmt: skip
    ingest(case, [media / "camera_clean.png"], signer=signer, now=NOW)
    recipe = f'[[steps]]\nop = "generative.user_model"\nweights = "{weights}"\nscale = 2\n'.encode()
    summary = _run(case, signer, recipe)
    (_rec,) = read_runs(read_entries(case.root))
    steps = _rec.steps
    assert steps[0]["model"]["weights_sha256"] == digest
    copy = case.root / steps[0]["model"]["weights_copy"]["file"]
    assert copy.read_bytes() == weights.read_bytes()
    weights.unlink()  # months later, the examiner's file is gone: the case copy replays
    verdict = verify_case(case.root, replay=True)
    assert verdict.ok, verdict.failure
    built_in = _run(case, signer, SR.replace(b"scale = 2", b"scale = 2"))
    assert built_in.output["pixel_sha256"] == summary.output["pixel_sha256"]  # same weights


def test_user_weights_not_approved_or_not_weights_are_refused(
    tmp_path: Path, signer: Signer, media: Path
) -> None:
    import pickle

    weights = tmp_path / "w.pth"
    weights.write_bytes(pickle.dumps({"body.0.weight": "not a tensor", "run": print}))
    case = init_case(
        tmp_path / "c", case_id="U-2", title="t", policy_path=None, signer=signer, now=NOW,
        profile="investigative",
    )  # fmt: skip
    ingest(case, [media / "camera_clean.png"], signer=signer, now=NOW)
    recipe = f'[[steps]]\nop = "generative.user_model"\nweights = "{weights}"\n'.encode()
    import hashlib

    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    with pytest.raises(PolicyError, match=digest):
        _run(case, signer, recipe)
    approved = init_case(
        tmp_path / "d", case_id="U-3", title="t", policy_path=_user_policy(tmp_path, digest),
        signer=signer, now=NOW, profile="investigative",
    )  # fmt: skip
    ingest(approved, [media / "camera_clean.png"], signer=signer, now=NOW)
    from forensic.errors import InputError

    with pytest.raises(InputError, match="cannot be loaded"):  # weights-only unpickling refuses
        _run(approved, signer, recipe)
    missing = b'[[steps]]\nop = "generative.user_model"\nweights = "/no/such/file.pt"\n'
    with pytest.raises(InputError, match=r"parameter 'weights'"):
        _run(approved, signer, missing)


def test_esrgan_style_rrdbnet_weights_load_with_their_shape_read_from_the_file(
    tmp_path: Path, signer: Signer, media: Path
) -> None:
    """A small RRDBNet (the architecture of Real-ESRGAN weights), saved as Real-ESRGAN saves
    its releases (nested under params_ema), runs through generative.user_model."""
    import hashlib

    import torch
    from safetensors.torch import save_file

    from forensic.generative.rrdbnet import RRDBNet, from_state_dict

    torch.manual_seed(0)
    net = RRDBNet(channels=3, feat=8, blocks=2, grow=4, scale=2)
    nested = tmp_path / "tiny-esrgan.pth"
    torch.save({"params_ema": net.state_dict()}, nested)
    rebuilt = from_state_dict(torch.load(nested, weights_only=True))
    assert rebuilt.scale == 2
    assert len(rebuilt.body) == 2
    flat = tmp_path / "tiny-esrgan.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(flat))
    digest = hashlib.sha256(flat.read_bytes()).hexdigest()
    case = init_case(
        tmp_path / "c", case_id="E-1", title="t", policy_path=_user_policy(tmp_path, digest),
        signer=signer, now=NOW, profile="investigative",
    )  # fmt: skip
    ingest(case, [media / "astronaut_clean.png"], signer=signer, now=NOW)
    recipe = (
        f'[[steps]]\nop = "generative.user_model"\nweights = "{flat}"\n'
        'architecture = "rrdbnet"\nscale = 2\n'
    ).encode()
    summary = _run(case, signer, recipe)
    assert (summary.output["width"], summary.output["height"]) == (1024, 1024)
    assert verify_case(case.root, replay=True).ok
    wrong = recipe.replace(b"scale = 2", b"scale = 4")
    from forensic.errors import InputError

    with pytest.raises(InputError, match="weights are for x2"):
        _run(case, signer, wrong)


# -- review follow-ups --------------------------------------------------------------------------


def test_weights_are_read_once_so_a_swapped_file_cannot_run_unapproved(
    tmp_path: Path, signer: Signer, media: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    import torch

    import forensic.pipeline.still as enhance
    from forensic.generative.sr import load_model

    weights = tmp_path / "approved.pt"
    torch.save(load_model(2).state_dict(), weights)
    approved = hashlib.sha256(weights.read_bytes()).hexdigest()
    case = init_case(
        tmp_path / "c", case_id="S-1", title="t", policy_path=_user_policy(tmp_path, approved),
        signer=signer, now=NOW, profile="investigative",
    )  # fmt: skip
    ingest(case, [media / "camera_clean.png"], signer=signer, now=NOW)
    real_load = enhance.load_frames

    def swap_then_load(*args: Any, **kwargs: Any) -> Any:
        torch.save(load_model(4).state_dict(), weights)  # after the approval check
        return real_load(*args, **kwargs)

    monkeypatch.setattr(enhance, "load_frames", swap_then_load)
    recipe = f'[[steps]]\nop = "generative.user_model"\nweights = "{weights}"\nscale = 2\n'.encode()
    summary = _run(case, signer, recipe)
    built_in = _run(case, signer, SR)
    assert summary.output["pixel_sha256"] == built_in.output["pixel_sha256"]  # approved bytes ran
    (_rec, _) = read_runs(read_entries(case.root))
    steps = _rec.steps
    assert steps[0]["model"]["weights_sha256"] == approved
    assert steps[0]["model"]["weights_copy"]["sha256"] == approved


def test_roi_on_a_generative_step_is_refused() -> None:
    from forensic.recipe import RecipeError

    with pytest.raises(RecipeError, match="roi is not allowed on a generative step"):
        parse_recipe(INPAINT + b"roi = [0, 0, 300, 300]\n", where="r.toml")


def test_shrinking_cannot_launder_inferred_pixels(investigative: Case, signer: Signer) -> None:
    one_pixel = (
        b'[[steps]]\nop = "generative.inpaint_telea"\nx = 101\ny = 101\nwidth = 1\nheight = 1\n'
        b'[[steps]]\nop = "resize"\nscale = 0.25\n'
    )
    summary = _run(investigative, signer, one_pixel)
    assert summary.provenance["counts"]["inferred"] >= 1
    assert "presentation" in summary.output
    (run,) = read_runs(read_entries(investigative.root))
    assert run["tainted"] is True


def test_inpainting_over_a_redaction_is_refused(investigative: Case, signer: Signer) -> None:
    from forensic.errors import InputError

    text = (
        b'[[steps]]\nop = "redact_fill"\nx = 100\ny = 100\nwidth = 50\nheight = 50\n'
        + INPAINT.replace(b"x = 200\ny = 430", b"x = 120\ny = 120")
    )
    with pytest.raises(InputError, match="reconstruct what was redacted"):
        _run(investigative, signer, text)


def test_bad_scale_and_oversized_images_are_clean_errors(
    investigative: Case, signer: Signer
) -> None:
    from forensic.errors import InputError, ParameterError
    from forensic.generative import get

    with pytest.raises(
        InputError, match=r"step 1 \(generative.super_resolution\): parameter 'scale'"
    ):
        _run(investigative, signer, SR.replace(b"scale = 2", b"scale = 3"))
    with pytest.raises(ParameterError, match="crop"):
        get("generative.super_resolution")(np.zeros((2100, 2100), np.uint8), scale=2)


def test_policy_refuses_an_unknown_generative_name() -> None:
    from forensic.policy import parse_policy

    text = (
        default_policy_path()
        .read_text()
        .replace("deny_operations = []", 'deny_operations = ["generative.superresolution"]', 1)
    )
    with pytest.raises(PolicyError, match="not a generative operation"):
        parse_policy(text.encode(), where="p.toml")


def test_a_cosign_by_the_steps_own_examiner_fails_verify(
    investigative: Case, signer: Signer
) -> None:
    _run(investigative, signer, INPAINT)
    step = next(e for e in read_entries(investigative.root) if e.kind == "run.step")
    with investigative.writer(signer) as writer:  # forged around the cosign command
        writer.append("cosign", {"entry": step.hash, "run": "R1", "step": 1, "op": "x"}, now=NOW)
    assert "step's own examiner" in (verify_case(investigative.root).failure or "")


def test_only_the_lanes_module_imports_the_generative_lane_dynamically() -> None:
    users = [
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "forensic").rglob("*.py")
        if "import_module(" in p.read_text() and "generative" not in p.parts
    ]
    assert users == ["forensic/lanes.py"]


def test_super_resolution_output_averages_back_to_its_input(investigative: Case) -> None:
    from forensic.generative import get
    from forensic.generative.maps import inferred_maps

    image = _decode(investigative.root / read_entries(investigative.root)[1].payload["stored"])
    op = get("generative.super_resolution")
    maps, _ = inferred_maps(op, image, op(image, scale=2), {"scale": 2}, seed=3)
    consistency = maps["consistency"].astype(np.float64) / 65535
    assert np.percentile(consistency, 99) < 2 / 255
    assert np.median(consistency) < 0.5 / 255
