"""Enhancement runs: recipes, signed per-step records, provenance maps, policy, replay."""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import forensic.classical as fc
from forensic import provenance
from forensic.case import Case, init_case
from forensic.errors import InputError, PolicyError
from forensic.hashing import image_hash
from forensic.ingest import ingest
from forensic.journal import JOURNAL_FILE, canonical, read_entries
from forensic.keys import Signer
from forensic.media import decode_image
from forensic.pipeline.run import run_recipe
from forensic.recipe import RecipeError, bundled_recipes, load_recipe, parse_recipe
from forensic.records import read_runs
from forensic.verify import verify_case
from tests.conftest import NOW

RECIPE = b"""
[recipe]
name = "three-steps"
description = "denoise, lift, crop"

[[steps]]
op = "denoise_nl_means"

[[steps]]
op = "levels"
gamma = 1.4

[[steps]]
op = "crop"
x = 100
y = 60
width = 300
height = 200
"""


@pytest.fixture
def image_case(case: Case, signer: Signer, media: Path) -> Case:
    ingest(
        case,
        [media / "camera_noisy.png", media / "astronaut16.png", media / "camera_blur_motion.png"],
        signer=signer,
        now=NOW,
    )
    return case


def _run(case: Case, signer: Signer, text: bytes, exhibit: str = "E1", **kw: Any) -> Any:
    return run_recipe(
        case, exhibit, parse_recipe(text, where="test.toml"), signer=signer, now=NOW, **kw
    )


def _snapshot(case: Case) -> dict[str, bytes]:
    return {
        str(p.relative_to(case.root)): p.read_bytes()
        for p in sorted(case.root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def _decode(path: Path) -> np.ndarray[Any, Any]:
    return decode_image(path.read_bytes(), where=str(path))[0]


# -- a multi-step run ----------------------------------------------------------------------------


def test_run_records_one_signed_entry_per_step_and_replays_bit_exact(
    image_case: Case, signer: Signer
) -> None:
    summary = _run(image_case, signer, RECIPE)
    entries = read_entries(image_case.root)
    steps = [e for e in entries if e.kind == "run.step"]
    run = [e for e in entries if e.kind == "run"]
    assert [e.payload["step"] for e in steps] == [1, 2, 3]
    assert len(run) == 1
    assert run[0].payload["steps"] == [e.hash for e in steps]
    assert all(e.envelope.keyid == signer.fingerprint for e in [*steps, *run])

    first = steps[0].payload
    assert first["op"] == "denoise_nl_means"
    assert first["op_version"] == "1"
    assert first["lane"] == "classical"
    assert first["params"]["sigma"] > 0  # resolved, not "auto"
    assert first["params"]["patch_size"] == 5  # defaults included
    assert first["environment"]["opencv"]["ipp_enabled"] in (True, False)
    assert "numpy" in first["environment"]["libraries"]
    assert first["duration_ms"] >= 0

    # The stored output is what a fresh computation gives.
    evidence = _decode(image_case.root / entries[1].payload["stored"])
    fresh = fc.denoise_nl_means(evidence)
    fresh = fc.levels(fresh, gamma=1.4)
    fresh = fc.crop(fresh, x=100, y=60, width=300, height=200)
    stored = _decode(image_case.root / summary.output["file"])
    assert np.array_equal(stored, fresh)
    assert (
        image_hash(fresh)
        == summary.output["pixel_sha256"]
        == steps[-1].payload["output"]["pixel_sha256"]
    )
    assert os.stat(image_case.root / summary.output["file"]).st_mode & 0o222 == 0

    verdict = verify_case(image_case.root, replay=True)
    assert verdict.ok, verdict.failure
    assert [r["verdict"] for r in verdict.replay or []] == ["bit-exact"] * 3


def test_sixteen_bit_output_is_stored_as_16_bit_tiff(image_case: Case, signer: Signer) -> None:
    summary = _run(image_case, signer, b'[[steps]]\nop = "unsharp_mask"\n', exhibit="E2")
    assert summary.output["file"].endswith(".tif")
    out = _decode(image_case.root / summary.output["file"])
    assert out.dtype == np.uint16
    assert image_hash(out) == summary.output["pixel_sha256"]


def test_intermediates_are_kept_on_request(image_case: Case, signer: Signer) -> None:
    _run(image_case, signer, RECIPE, keep_intermediates=True)
    (_rec,) = read_runs(read_entries(image_case.root))
    steps = _rec.steps
    for step in steps:
        stored = _decode(image_case.root / step["output"]["file"])
        assert image_hash(stored) == step["output"]["pixel_sha256"]


# -- tampering -----------------------------------------------------------------------------------


def test_one_byte_changed_in_a_stored_output_fails_verify(image_case: Case, signer: Signer) -> None:
    summary = _run(image_case, signer, RECIPE)
    path = image_case.root / summary.output["file"]
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[-20] ^= 0x01
    path.write_bytes(bytes(data))
    verdict = verify_case(image_case.root)
    assert not verdict.ok
    assert "run R1" in (verdict.failure or "")
    assert "output file" in (verdict.failure or "")


def test_one_parameter_changed_in_a_journaled_step_fails_naming_the_step(
    image_case: Case, signer: Signer
) -> None:
    import base64

    _run(image_case, signer, RECIPE)
    journal = image_case.root / JOURNAL_FILE
    lines = journal.read_bytes().splitlines()
    for i, line in enumerate(lines):
        envelope = json.loads(line)
        body = json.loads(base64.b64decode(envelope["payload"]))
        if body.get("kind") == "run.step" and body["payload"]["step"] == 2:
            body["payload"]["params"]["gamma"] = 1.5
            # Canonical form, as a careful forger would write it: only the signature can tell.
            envelope["payload"] = base64.b64encode(canonical(body)).decode()
            lines[i] = canonical(envelope)
            break
    else:
        pytest.fail("no step 2 entry found")
    os.chmod(journal, 0o644)
    journal.write_bytes(b"".join(line + b"\n" for line in lines))
    verdict = verify_case(image_case.root, replay=True)
    assert not verdict.ok
    assert "run R1 step 2" in (verdict.failure or ""), verdict.failure
    assert "levels" in (verdict.failure or "")


def test_replay_detects_a_changed_recorded_result(image_case: Case, signer: Signer) -> None:
    """If the recorded output hash were wrong (re-signed by an enrolled examiner), replay
    reports that step as not reproduced."""
    from dataclasses import replace as replace_record

    from forensic.pipeline.replay import replay_run

    _run(image_case, signer, RECIPE)
    (run,) = read_runs(read_entries(image_case.root))
    steps = list(run.steps)
    steps[1] = replace_record(
        steps[1], payload={**steps[1].payload, "params": {**steps[1]["params"], "gamma": 1.5}}
    )
    run = replace_record(run, steps=tuple(steps))
    verdicts = replay_run(image_case, run, max_abs_difference=1, min_psnr_db=50)
    assert [v.verdict for v in verdicts][:2] == ["bit-exact", "not reproduced"]


# -- provenance maps ------------------------------------------------------------------------------


def _map(case: Case, summary: Any) -> np.ndarray[Any, Any]:
    pmap = _decode(case.root / summary.provenance["file"])
    assert image_hash(pmap) == summary.provenance["pixel_sha256"]
    return pmap


def test_levels_only_is_all_transformed(image_case: Case, signer: Signer) -> None:
    summary = _run(image_case, signer, b'[[steps]]\nop = "levels"\ngamma = 1.2\n')
    pmap = _map(image_case, summary)
    assert np.all(pmap == provenance.TRANSFORMED)
    assert summary.provenance["counts"]["transformed"] == pmap.size


def test_crop_then_quarter_turn_moves_the_map_exactly(image_case: Case, signer: Signer) -> None:
    text = b"""
[[steps]]
op = "levels"
gamma = 1.2
roi = [50, 40, 30, 20]

[[steps]]
op = "crop"
x = 40
y = 30
width = 100
height = 60

[[steps]]
op = "rotate"
angle = 90
"""
    summary = _run(image_case, signer, text)
    pmap = _map(image_case, summary)
    expected = np.zeros((512, 512), np.uint8)
    expected[40:60, 50:80] = provenance.TRANSFORMED
    expected = np.rot90(expected[30:90, 40:140])
    assert pmap.shape == (100, 60)
    assert np.array_equal(pmap, expected)


def test_redaction_marks_exactly_its_region(image_case: Case, signer: Signer) -> None:
    text = b'[[steps]]\nop = "redact_pixelate"\nx = 10\ny = 20\nwidth = 64\nheight = 32\n'
    pmap = _map(image_case, _run(image_case, signer, text))
    expected = np.zeros((512, 512), np.uint8)
    expected[20:52, 10:74] = provenance.REDACTED
    assert np.array_equal(pmap, expected)


def test_resampling_marks_everything_resampled_but_keeps_redaction(
    image_case: Case, signer: Signer
) -> None:
    text = b"""
[[steps]]
op = "redact_fill"
x = 0
y = 0
width = 256
height = 512

[[steps]]
op = "resize"
scale = 0.5
"""
    pmap = _map(image_case, _run(image_case, signer, text))
    assert pmap.shape == (256, 256)
    assert np.all(pmap[:, :128] == provenance.REDACTED)
    # Resampling mixes neighbours: a thin band past the edge counts as redacted too (the map
    # errs towards marking, never away from it).
    assert np.all(pmap[:, 128 + 8 :] == provenance.RESAMPLED)
    assert np.all(pmap[:, 128:136] >= provenance.RESAMPLED)


# -- policy ----------------------------------------------------------------------------------------


def _policy(tmp_path: Path, evidence_extra: str = "") -> Path:
    from forensic.policy import default_policy_path

    text = default_policy_path().read_text()
    text = text.replace(
        "deny_operations = []                         # operations refused even though",
        f"deny_operations = [{evidence_extra}]  # operations refused even though",
        1,
    )
    path = tmp_path / "lab.toml"
    path.write_text(text)
    return path


def test_evidence_profile_refuses_a_generative_step_before_writing(
    image_case: Case, signer: Signer
) -> None:
    before = _snapshot(image_case)
    text = b'[[steps]]\nop = "denoise_median"\n\n[[steps]]\nop = "generative.inpaint"\nmask = "x"\n'
    with pytest.raises(PolicyError) as err:
        _run(image_case, signer, text)
    assert "step 2 (generative.inpaint)" in str(err.value)
    assert "profile 'evidence'" in str(err.value)
    assert "profiles.evidence.lanes" in str(err.value)
    assert _snapshot(image_case) == before


def test_an_operation_off_the_allow_list_is_refused_before_writing(
    tmp_path: Path, signer: Signer, media: Path
) -> None:
    case = init_case(
        tmp_path / "c",
        case_id="P-1",
        title="policy",
        policy_path=_policy(tmp_path, '"unsharp_mask"'),
        signer=signer,
        now=NOW,
    )
    ingest(case, [media / "camera_noisy.png"], signer=signer, now=NOW)
    before = _snapshot(case)
    with pytest.raises(PolicyError, match=r"step 2 \(unsharp_mask\).*deny_operations"):
        _run(case, signer, b'[[steps]]\nop = "invert"\n[[steps]]\nop = "unsharp_mask"\n')
    assert _snapshot(case) == before


def test_an_empty_allow_list_allows_nothing(tmp_path: Path, signer: Signer, media: Path) -> None:
    from forensic.policy import default_policy_path

    text = default_policy_path().read_text().replace('lanes = ["classical"]', "lanes = []", 1)
    path = tmp_path / "empty.toml"
    path.write_text(text)
    case = init_case(
        tmp_path / "c", case_id="P-2", title="t", policy_path=path, signer=signer, now=NOW
    )
    ingest(case, [media / "camera_noisy.png"], signer=signer, now=NOW)
    with pytest.raises(PolicyError, match=r"not in profiles\.evidence\.lanes"):
        _run(case, signer, b'[[steps]]\nop = "invert"\n')


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (("[replay]", "[replay]\nsurprise = 1"), "replay.surprise"),
        (("[case]", "[cases]"), "unknown table [cases]"),
        (('lanes = ["classical"]', 'lanes = ["clasical"]'), "'clasical'"),
        (("allow_operations = []", 'allow_operations = ["denoise_magic"]'), "'denoise_magic'"),
        (("approved_models = []", 'approved_models = ["abc"]'), "SHA-256"),
        (('hash_algorithms = ["sha256"]', 'hash_algorithms = ["md5"]'), "'md5'"),
        (('default_profile = "evidence"', 'default_profile = "court"'), "'court'"),
        (("schema = 2", "schema = 1"), "policy.schema is 1"),
    ],
)
def test_policy_check_names_the_problem(
    tmp_path: Path, run_cli: Any, change: tuple[str, str], fragment: str
) -> None:
    from forensic.policy import default_policy_path

    text = default_policy_path().read_text().replace(*change, 1)
    path = tmp_path / "p.toml"
    path.write_text(text)
    code, _out, err = run_cli("policy", "check", path)
    assert code == 2
    assert fragment in err
    assert "Traceback" not in err


def test_policy_check_accepts_the_default(run_cli: Any) -> None:
    from forensic.policy import default_policy_path

    code, out, _ = run_cli("policy", "check", default_policy_path())
    assert code == 0
    assert "profile evidence (default): lanes classical" in out


def test_case_init_journals_the_profile_and_required_fields(tmp_path: Path, signer: Signer) -> None:
    from forensic.policy import default_policy_path

    text = (
        default_policy_path()
        .read_text()
        .replace(
            'required_fields = ["case_id", "title"]',
            'required_fields = ["case_id", "title", "agency"]',
        )
    )
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(PolicyError, match="agency"):
        init_case(
            tmp_path / "a", case_id="F-1", title="t", policy_path=path, signer=signer, now=NOW
        )
    assert not (tmp_path / "a").exists()
    case = init_case(
        tmp_path / "b",
        case_id="F-2",
        title="t",
        policy_path=path,
        signer=signer,
        now=NOW,
        profile="investigative",
        fields={"agency": "Met"},
    )
    opened = read_entries(case.root)[0].payload
    assert opened["policy"]["profile"] == "investigative"
    assert opened["fields"] == {"agency": "Met"}
    with pytest.raises(PolicyError, match="no profile 'court'"):
        init_case(
            tmp_path / "c",
            case_id="F-3",
            title="t",
            policy_path=path,
            signer=signer,
            now=NOW,
            profile="court",
            fields={"agency": "x"},
        )


# -- recipe validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (
            b'[[steps]]\nop = "denoise_median"\n[[steps]]\nop = "levels"\ngama = 2\n',
            ("step 2 (levels)", "'gama'"),
        ),
        (b'[[steps]]\nop = "levels"\ngamma = 50\n', ("step 1 (levels)", "'gamma'", "[0.1, 10]")),
        (b'[[steps]]\nop = "median"\n', ("step 1 (median)", "no such operation", "denoise_median")),
        (b'[[steps]]\nop = "crop"\nx = 1\n', ("step 1 (crop)", "'y' is required")),
        (
            b'[[steps]]\nop = "crop"\nx = 0\ny = 0\nwidth = 9\nheight = 9\nroi = [0, 0, 5, 5]\n',
            ("step 1 (crop)", "roi"),
        ),
        (b'[[steps]]\nop = "invert"\nroi = [0, 0, -5, 5]\n', ("step 1 (invert)", "roi")),
        (b'[[steps]]\nop = "invert"\nframes = [5, 2]\n', ("step 1 (invert)", "frames")),
        (b'[recipe]\nname = "x"\n', ("no steps",)),
        (b'[[steps]]\nop = "invert"\n[extra]\na = 1\n', ("unknown top-level key 'extra'",)),
        (b"[[steps]\n", ("not valid TOML",)),
    ],
)
def test_bad_recipes_name_the_step_and_parameter(text: bytes, fragments: tuple[str, ...]) -> None:
    with pytest.raises(RecipeError) as err:
        parse_recipe(text, where="bad.toml")
    for fragment in fragments:
        assert fragment in str(err.value)


def test_a_step_failing_on_the_image_leaves_the_case_unchanged(
    image_case: Case, signer: Signer
) -> None:
    before = _snapshot(image_case)
    text = b'[[steps]]\nop = "levels"\n[[steps]]\nop = "crop"\nx = 500\ny = 0\nwidth = 100\nheight = 10\n'
    with pytest.raises(InputError) as err:
        _run(image_case, signer, text)
    assert "step 2 (crop)" in str(err.value)
    assert "'width'" in str(err.value)
    assert _snapshot(image_case) == before


def test_a_step_failing_mid_run_leaves_the_case_unchanged(image_case: Case, signer: Signer) -> None:
    """Checked only once the image has shrunk: the crop after the resize."""
    before = _snapshot(image_case)
    text = (  # coords = "input": the crop's x is in the resized image's pixels
        b'[recipe]\ncoords = "input"\n[[steps]]\nop = "resize"\nscale = 0.5\n'
        b'[[steps]]\nop = "crop"\nx = 300\ny = 0\nwidth = 10\nheight = 10\n'
    )
    with pytest.raises(InputError, match=r"step 2 \(crop\): parameter 'x'"):
        _run(image_case, signer, text)
    assert _snapshot(image_case) == before


def test_unknown_exhibit_and_video_exhibit_are_clean_errors(
    case: Case, signer: Signer, media: Path
) -> None:
    ingest(case, [media / "cctv.mp4"], signer=signer, now=NOW)
    with pytest.raises(InputError, match="no exhibit 'E9'"):
        _run(case, signer, RECIPE, exhibit="E9")
    with pytest.raises(InputError, match="is a video"):
        _run(case, signer, RECIPE, exhibit="E1")


@pytest.mark.parametrize("name", sorted(bundled_recipes()))
def test_shipped_recipes_run_on_the_fixtures(
    name: str, case: Case, signer: Signer, media: Path
) -> None:
    fixture = {"motion-blur": "camera_blur_motion.png", "number-plate": "astronaut_clean.png",
               "dark-noisy": "camera_noisy.png", "parked-vehicle": "cctv.mp4",
               "multi-frame-sr": "cctv.mp4", "damaged-print": "astronaut_clean.png",
               "scratched-film": "cctv.mp4"}[name]  # fmt: skip
    ingest(case, [media / fixture], signer=signer, now=NOW)
    summary = run_recipe(case, "E1", load_recipe(name), signer=signer, now=NOW)
    assert summary.recipe == name
    assert verify_case(case.root, replay=True).ok


# -- ENFSI warnings -----------------------------------------------------------------------------------


def test_deconvolution_and_region_sharpening_warn_about_borders(
    image_case: Case, signer: Signer
) -> None:
    text = b"""
[[steps]]
op = "deconvolve_wiener"
psf = "gaussian(sigma=1.5)"

[[steps]]
op = "unsharp_mask"
roi = [10, 10, 100, 100]
"""
    summary = _run(image_case, signer, text)
    assert any("step 1" in w and "border" in w for w in summary.warnings)
    assert any("step 2" in w and "region" in w for w in summary.warnings)


def test_cli_enhance_and_case_show(image_case: Case, run_cli: Any, tmp_path: Path) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_bytes(RECIPE)
    code, out, err = run_cli(
        "enhance", image_case.root, "E1", "--recipe", recipe, "--name", "plate"
    )
    assert code == 0, err
    assert "R1: recipe 'three-steps' on E1" in out
    code, out, _ = run_cli("case", "show", image_case.root, "--json")
    shown = json.loads(out)
    assert shown["runs"][0]["run"] == "R1"
    assert shown["runs"][0]["name"] == "plate"
    assert shown["runs"][0]["steps"] == ["denoise_nl_means", "levels", "crop"]
    code, out, _ = run_cli("verify", image_case.root, "--replay")
    assert code == 0
    assert "run R1 step 3 crop: bit-exact" in out
    code, _, err = run_cli("enhance", image_case.root, "E1", "--recipe", "no-such-recipe")
    assert code == 2
    assert "recipe not found" in err


# -- video: frame ranges -------------------------------------------------------------------------

VIDEO_RECIPE = b"""
[[steps]]
op = "denoise_gaussian"
sigma = 1.0
frames = [2, 4]

[[steps]]
op = "levels"
gamma = 1.3
frames = [3, 5]
"""


@pytest.fixture
def video_case(case: Case, signer: Signer, media: Path) -> Case:
    ingest(case, [media / "cctv.mp4"], signer=signer, now=NOW)
    return case


def test_video_run_applies_each_step_to_its_frames(video_case: Case, signer: Signer) -> None:
    from forensic.media import decode_frames
    from forensic.records import load_artifact
    from forensic.videoio import read_video

    summary = _run(video_case, signer, VIDEO_RECIPE)
    assert summary.output["frames"] == 4
    entries = read_entries(video_case.root)
    (run,) = read_runs(entries)
    steps = run.steps
    root = video_case.root
    store = video_case.store
    outputs = load_artifact(store, run["frames"], what="outputs")
    assert [f["frame"] for f in outputs] == [2, 3, 4, 5]
    assert [r["frame"] for r in load_artifact(store, steps[0]["applied"], what="s1")] == [2, 3, 4]
    assert [r["frame"] for r in load_artifact(store, steps[1]["applied"], what="s2")] == [3, 4, 5]
    assert run["conversion"]["interpolation"] == "BILINEAR"
    exhibit = entries[1].payload
    for f in load_artifact(store, run["inputs"], what="inputs"):
        assert f["source_sha256"] == exhibit["frames"][f["frame"]]["sha256"]
    # Frame 5 only had levels, frame 2 only the Gaussian: recompute both by hand.
    decoded = decode_frames(root / exhibit["stored"], {2, 5}, where="test")
    expect = {
        2: fc.denoise_gaussian(decoded[2][0], sigma=1.0),
        5: fc.levels(decoded[5][0], gamma=1.3),
    }
    stored = list(read_video(root / run["output"]["video"]["file"]))
    assert len(stored) == 4
    for f, pixels in zip(outputs, stored, strict=True):
        if f["frame"] in expect:
            assert np.array_equal(pixels, expect[f["frame"]])
    verdict = verify_case(root, replay=True)
    assert verdict.ok, verdict.failure
    assert [(r["step"], r["verdict"], r["frames"]) for r in verdict.replay or []] == [
        (1, "bit-exact", 3),
        (2, "bit-exact", 3),
    ]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            b'[[steps]]\nop = "invert"\nframes = [30, 40]\n',
            "step 1 (invert): frames [30, 40] is outside",
        ),
        (b'[[steps]]\nop = "invert"\n', "give at least one step a frame range"),
    ],
)
def test_video_frame_range_errors_name_the_step(
    video_case: Case, signer: Signer, text: bytes, fragment: str
) -> None:
    before = _snapshot(video_case)
    with pytest.raises(InputError, match=re.escape(fragment)):
        _run(video_case, signer, text)
    assert _snapshot(video_case) == before


def test_frames_on_a_still_image_is_an_error(image_case: Case, signer: Signer) -> None:
    with pytest.raises(InputError, match="frames is only for video"):
        _run(image_case, signer, b'[[steps]]\nop = "invert"\nframes = [0, 1]\n')


# -- replay tolerance ---------------------------------------------------------------------------------


def _replay_with(case: Case, monkeypatch: pytest.MonkeyPatch, *, other_machine: bool) -> list[Any]:
    """Replay as if one output pixel came out one grey level higher, on this machine or on
    one whose CPU features differ from those recorded."""
    import forensic.pipeline.replay as enhance

    real_apply = enhance.apply_step

    def off_by_one(*args: Any, **kwargs: Any) -> Any:
        result = real_apply(*args, **kwargs)
        image = result.image.copy()
        image[0, 0] = min(int(image[0, 0]) + 1, 255) if image[0, 0] < 255 else 254
        return replace(result, image=image)

    monkeypatch.setattr(enhance, "apply_step", off_by_one)
    if other_machine:
        real_env = enhance.pixel_environment

        def elsewhere() -> dict[str, Any]:
            env = real_env()
            return {
                **env,
                "machine": "elsewhere",
                "opencv": {**env["opencv"], "ipp_enabled": False},
            }

        monkeypatch.setattr(enhance, "pixel_environment", elsewhere)
    (run,) = read_runs(read_entries(case.root))
    return enhance.replay_run(case, run, max_abs_difference=1, min_psnr_db=50.0)


def test_a_one_level_difference_elsewhere_is_within_tolerance(
    image_case: Case, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(image_case, signer, b'[[steps]]\nop = "levels"\ngamma = 1.2\n')
    (verdict,) = _replay_with(image_case, monkeypatch, other_machine=True)
    assert verdict.verdict == "within tolerance"
    assert verdict.max_abs_difference == 1
    assert verdict.psnr_db is not None
    assert verdict.psnr_db > 50
    assert any("ipp_enabled" in d for d in verdict.differences)


def test_a_difference_on_the_recorded_environment_is_not_reproduced(
    image_case: Case, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(image_case, signer, b'[[steps]]\nop = "levels"\ngamma = 1.2\n')
    (verdict,) = _replay_with(image_case, monkeypatch, other_machine=False)
    assert verdict.verdict == "not reproduced"
    assert "same environment" in verdict.detail


def _interlaced_clip(path: Path) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"x264-params": "interlaced=1:tff=1", "qp": "20"}
        for i in range(4):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 40, np.uint8), "rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_interlaced_footage_not_deinterlaced_first_warns(
    case: Case, signer: Signer, tmp_path: Path
) -> None:
    ingest(case, [_interlaced_clip(tmp_path / "il.mp4")], signer=signer, now=NOW)
    warned = _run(case, signer, b'[[steps]]\nop = "levels"\nframes = [0, 1]\n')
    assert any("interlaced" in w and "deinterlace first" in w for w in warned.warnings)
    clean = _run(
        case,
        signer,
        b'[[steps]]\nop = "deinterlace_blend"\nframes = [0, 1]\n[[steps]]\nop = "levels"\n',
    )
    assert not any("interlaced" in w for w in clean.warnings)


def test_the_readme_example_recipe_is_valid() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    recipe = parse_recipe(block.encode(), where="README.md")
    assert [s.op_name for s in recipe.steps][:2] == ["deinterlace_double", "pixel_aspect"]
    assert recipe.steps[0].frames == (212, 212)


def test_cli_recipes_policy_check_and_case_init_profile(
    run_cli: Any, tmp_path: Path, media: Path
) -> None:
    code, out, _ = run_cli("recipes", "--json")
    assert code == 0
    assert {r["name"] for r in json.loads(out)} == set(bundled_recipes())
    case_dir = tmp_path / "c"
    code, out, err = run_cli(
        "case", "init", case_dir, "--case-id", "P-9", "--title", "t",
        "--profile", "investigative", "--field", "agency=Met", "--json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["policy"]["profile"] == "investigative"
    code, _, err = run_cli(
        "case", "init", tmp_path / "d", "--case-id", "P-8", "--title", "t", "--field", "agency"
    )
    assert code == 2
    assert "NAME=VALUE" in err
    code, _, err = run_cli(
        "case", "init", tmp_path / "e", "--case-id", "P-7", "--title", "t", "--profile", "court"
    )
    assert code == 2
    assert "no profile 'court'" in err
    assert not (tmp_path / "e").exists()


# -- review follow-ups: integrity of everything a run writes --------------------------------------


def test_an_altered_kept_intermediate_fails_verify(image_case: Case, signer: Signer) -> None:
    _run(image_case, signer, RECIPE, keep_intermediates=True)
    (_rec,) = read_runs(read_entries(image_case.root))
    steps = _rec.steps
    path = image_case.root / steps[0]["output"]["file"]
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    failure = verify_case(image_case.root).failure or ""
    assert "step 1 output file" in failure
    path.unlink()
    assert "missing" in (verify_case(image_case.root).failure or "")


def test_a_refused_signer_writes_nothing(image_case: Case, other_signer: Signer) -> None:
    from forensic.errors import CaseError

    before = _snapshot(image_case)
    with pytest.raises(CaseError, match="not enrolled"):
        _run(image_case, other_signer, RECIPE)
    assert _snapshot(image_case) == before


def test_step_entries_without_their_run_fail_verify(image_case: Case, signer: Signer) -> None:
    with image_case.writer(signer) as writer:
        writer.append("run.step", {"run": "R1", "step": 1, "op": "invert"}, now=NOW)
    failure = verify_case(image_case.root).failure or ""
    assert "belongs to no run" in failure
    summary = _run(image_case, signer, RECIPE)
    assert summary.run_id == "R2"  # never reuses the interrupted run's ID


def test_a_step_that_differed_is_never_called_bit_exact(
    image_case: Case, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """levels with black = 0.999 turns everything black, hiding a change in step 1."""
    import forensic.pipeline.replay as enhance

    _run(
        image_case,
        signer,
        b'[[steps]]\nop = "denoise_gaussian"\n[[steps]]\nop = "levels"\nblack = 0.999\n',
    )
    real_apply = enhance.apply_step

    def changed_gaussian(image: Any, op: Any, params: Any, roi: Any) -> Any:
        result = real_apply(image, op, params, roi)
        if op.name == "denoise_gaussian":
            return replace(
                result, image=np.clip(result.image.astype(int) + 3, 0, 255).astype(np.uint8)
            )
        return result

    monkeypatch.setattr(enhance, "apply_step", changed_gaussian)
    (run,) = read_runs(read_entries(image_case.root))
    first, second = enhance.replay_run(image_case, run, max_abs_difference=1, min_psnr_db=50)
    assert second.verdict == "bit-exact"
    assert first.verdict == "not reproduced"  # same environment: any difference fails


def test_rotation_fill_does_not_leak_into_the_provenance_map(
    image_case: Case, signer: Signer
) -> None:
    summary = _run(image_case, signer, b'[[steps]]\nop = "rotate"\nangle = 30\nfill = 1.0\n')
    pmap = _map(image_case, summary)
    assert set(np.unique(pmap)) == {provenance.RESAMPLED}
    assert sum(summary.provenance["counts"].values()) == pmap.size


def test_recipe_name_comes_from_an_untidy_file_name(tmp_path: Path) -> None:
    path = tmp_path / "my plate (v2).toml"
    path.write_bytes(b'[[steps]]\nop = "invert"\n')
    assert load_recipe(path).name == "my-plate-v2"


def test_an_allow_list_allows_only_what_it_names(
    tmp_path: Path, signer: Signer, media: Path
) -> None:
    from forensic.policy import default_policy_path

    text = (
        default_policy_path()
        .read_text()
        .replace(
            'lanes = ["classical"]                        # "classical" and/or "generative"\nallow_operations = []',
            'lanes = []\nallow_operations = ["invert"]',
            1,
        )
    )
    path = tmp_path / "only-invert.toml"
    path.write_text(text)
    case = init_case(
        tmp_path / "c", case_id="P-3", title="t", policy_path=path, signer=signer, now=NOW
    )
    ingest(case, [media / "camera_noisy.png"], signer=signer, now=NOW)
    before = _snapshot(case)
    with pytest.raises(PolicyError, match=r"step 2 \(levels\).*allow_operations"):
        _run(case, signer, b'[[steps]]\nop = "invert"\n[[steps]]\nop = "levels"\n')
    assert _snapshot(case) == before
    assert _run(case, signer, b'[[steps]]\nop = "invert"\n').run_id == "R1"


def test_policy_refuses_a_non_finite_psnr(tmp_path: Path) -> None:
    from forensic.policy import default_policy_path, load_policy

    path = tmp_path / "p.toml"
    path.write_text(
        default_policy_path().read_text().replace("min_psnr_db = 50.0", "min_psnr_db = nan")
    )
    with pytest.raises(PolicyError, match="replay"):
        load_policy(path)


def test_case_show_lists_video_run_frames(video_case: Case, signer: Signer, run_cli: Any) -> None:
    _run(video_case, signer, VIDEO_RECIPE)
    code, out, _ = run_cli("case", "show", video_case.root)
    assert code == 0
    for frame in (2, 3, 4, 5):
        assert f"frame {frame}  derived/" in out
