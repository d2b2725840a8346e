"""Superseded versions of deconvolve_wiener (2) and super_resolve_frames (1) compute, through
the registry, exactly what the code that first shipped them computed; a still run recorded
with deconvolve_wiener 2 and a video run recorded with super_resolve_frames 1 replay
bit-exact.

How the pinned values were obtained (once, 2026-11-28): a throwaway ``git worktree add
--detach /tmp/old 6c017c2`` (the last commit with deconvolve_wiener 2 and super_resolve_frames
1 as the current versions), then, with ``PYTHONPATH=/tmp/old`` and the project's virtualenv,
``forensic.lanes.lookup(name)`` of that commit applied (``Operation.run`` /
``Operation.reduce``) to the inputs that `_still_image` and `_sr_frames` below make (the same
functions, copied verbatim into the script), printing `forensic.hashing.image_hash` of each
output and the resolved parameters. They are that commit's results, not this code's: the
test fails if the kept copy in `forensic.classical.superseded` stops reproducing them.
denoise_bm3d 1's values were obtained the same way from commit 5db9986 (its worktree's own
checkout, before version 2 was written), and denoise_frames 1's from a85293d (main, before
version 2).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from forensic.case import Case
from forensic.classical import registry
from forensic.errors import ParameterError
from forensic.hashing import image_hash
from forensic.ingest import ingest
from forensic.journal import read_entries
from forensic.keys import Signer
from forensic.lanes import lookup
from forensic.ops import framework
from forensic.pipeline.run import run_recipe
from forensic.recipe import parse_recipe
from forensic.verify import verify_case
from tests.conftest import NOW

Image = np.ndarray[Any, Any]


def _still_image(dtype: Any, colour: bool) -> Image:
    """A smooth random scene, Gaussian-blurred (sigma 1.5) and lightly noisy: 64 x 80."""
    rng = np.random.default_rng(2211)
    scene = cv2.GaussianBlur(rng.random((64, 80, 3)), (0, 0), 2.0)
    scene = (scene - scene.min()) / np.ptp(scene)
    blurred = cv2.GaussianBlur(scene, (0, 0), 1.5) + rng.normal(0.0, 0.01, scene.shape)
    values = blurred if colour else blurred.mean(axis=2)
    top = np.iinfo(dtype).max
    return np.asarray(np.clip(np.rint(values * top), 0, top), dtype)


def _sr_frames(dtype: Any, colour: bool) -> list[Image]:
    """Eight 40 x 48 frames of one scene at sub-pixel offsets (half-pixel steps), each the
    2 x 2 area average (cv2.INTER_AREA) of an integer crop of a finer scene, lightly noisy."""
    rng = np.random.default_rng(2212)
    fine = cv2.GaussianBlur(rng.random((96, 112, 3)), (0, 0), 1.2)
    fine = (fine - fine.min()) / np.ptp(fine)
    top = np.iinfo(dtype).max
    frames = []
    for sx, sy in [(0, 0), (1, 0), (0, 1), (1, 1), (2, 1), (1, 2), (3, 3), (2, 0)]:
        crop = fine[4 + sy : 4 + sy + 80, 4 + sx : 4 + sx + 96]
        low = cv2.resize(crop, (48, 40), interpolation=cv2.INTER_AREA)
        low = low + rng.normal(0.0, 0.004, low.shape)
        values = low if colour else low.mean(axis=2)
        frames.append(np.asarray(np.clip(np.rint(values * top), 0, top), dtype))
    return frames


#: Inputs as the old commit saw them (their pixel hashes, from the same run).
STILL_INPUT = {
    (np.uint8, True): "6983dcb5ff2a83379e6fbe099dd1e5cc47f1e3b59382af1e62b8f1a71eafac4d",
    (np.uint16, False): "f15c118af6ffaa019cce3ed48040164c8191b0b26c9b27a9542e25120a1aca07",
}

WienerCase = tuple[Any, bool, dict[str, Any], dict[str, Any], str]

#: deconvolve_wiener 2 at 6c017c2: (dtype, colour, params given, params resolved, output hash).
WIENER_V2: list[WienerCase] = [
    (
        np.uint8,
        True,
        {},
        {"psf": "gaussian(sigma=1.5)", "balance": 0.009924},
        "6872018e8c3e1592c3feacb57973bba1a88e85aa43d8f8e810525ec77d5b126d",
    ),
    (
        np.uint16,
        False,
        {"psf": "motion(length=9, angle=30)"},
        {"psf": "motion(length=9, angle=30)", "balance": 0.024208},
        "05121a104ceed6c62e396c1d6d0c3b3c45dd1d6a16248ceb9c9dced19b34dab8",
    ),
    (
        np.uint8,
        True,
        {"psf": "defocus(radius=2)", "balance": 0.02},
        {"psf": "defocus(radius=2)", "balance": 0.02},
        "f369a9ccc1e05802818ffaca58df1be69e4056f8014855517642e42703979f26",
    ),
]

#: deconvolve_wiener 3 at 5db9986 (the last commit with version 3 current), obtained the same
#: way: (dtype, colour, params given, params resolved, output hash).
WIENER_V3: list[WienerCase] = [
    (
        np.uint8,
        True,
        {},
        {"psf": "gaussian(sigma=1.5)", "balance": 0.001585},
        "9e78688bfdcbd189bfc39e5d033429119510ec4be94e592e386a9d16af1a3c74",
    ),
    (
        np.uint16,
        False,
        {"psf": "motion(length=9, angle=30)"},
        {"psf": "motion(length=9, angle=30)", "balance": 0.024208},
        "05121a104ceed6c62e396c1d6d0c3b3c45dd1d6a16248ceb9c9dced19b34dab8",
    ),
    (
        np.uint8,
        False,
        {"psf": "defocus(radius=2)"},
        {"psf": "defocus(radius=2)", "balance": 0.002512},
        "c05f526a1a96ac88f61b10ac5196770c9403a336abdb774857e702a32572fed5",
    ),
]

#: super_resolve_frames 1 at 6c017c2: (dtype, colour, params given, selected details, output).
SR_V1 = [
    (
        np.uint8,
        True,
        {},
        {"samples_per_pixel": 1.947266, "filled_fraction": 0.261458, "balance": 0.033048},
        "551c4f55f35aa8dd34518d005dafb819d9b4774186319ff6e5fc498d3dc5ba7f",
    ),
    (
        np.uint16,
        False,
        {"method": "median", "deconvolution": "richardson_lucy", "iterations": 5},
        {"samples_per_pixel": 1.947266, "filled_fraction": 0.261458, "psf_size": 3},
        "0e8287891e1b93a0087f0142793fdf1a0f9b4de98d513e0494b80fb10de6dc96",
    ),
    (
        np.uint8,
        False,
        {"scale": 3, "deconvolution": "none", "psf_sigma": 0.5},
        {"samples_per_pixel": 0.865451, "filled_fraction": 0.561111, "psf_size": 7},
        "bd2b207fcf12cb0e65fc3d3681e6c15abaac0640481225615b7cdb958d72dfa2",
    ),
]


def test_superseded_versions_are_found_by_version_only() -> None:
    for name, old_version, current_version in (
        ("deconvolve_wiener", "2", "4"),
        ("deconvolve_wiener", "3", "4"),
        ("super_resolve_frames", "1", "2"),
        ("denoise_bm3d", "1", "2"),
        ("denoise_gaussian", "1", "2"),
        ("denoise_frames", "1", "2"),
    ):
        current = lookup(name)
        old = lookup(name, old_version)
        assert current is not None
        assert old is not None
        assert (current.version, old.version) == (current_version, old_version)
        assert old.impl is not current.impl
        assert lookup(name, current_version) is current
        # Listed and offered to a new run: the current version only.
        assert registry(include_temporal=True)[name] is current


@pytest.mark.parametrize(("dtype", "colour", "given", "resolved", "expected"), WIENER_V2)
def test_deconvolve_wiener_2_reproduces_the_old_commit(
    dtype: Any, colour: bool, given: dict[str, Any], resolved: dict[str, Any], expected: str
) -> None:
    image = _still_image(dtype, colour)
    assert image_hash(image) == STILL_INPUT[(dtype, colour)]
    old = lookup("deconvolve_wiener", "2")
    assert old is not None
    result = old.run(image, given)
    assert result.params == resolved
    assert image_hash(result.image) == expected
    # All versions apply the same solver to a given balance: what versions 3 and 4 changed
    # is only the automatic balance.
    current = lookup("deconvolve_wiener")
    assert current is not None
    assert image_hash(current.run(image, resolved).image) == expected


@pytest.mark.parametrize(("dtype", "colour", "given", "resolved", "expected"), WIENER_V3)
def test_deconvolve_wiener_3_reproduces_the_old_commit(
    dtype: Any, colour: bool, given: dict[str, Any], resolved: dict[str, Any], expected: str
) -> None:
    image = _still_image(dtype, colour)
    old = lookup("deconvolve_wiener", "3")
    assert old is not None
    result = old.run(image, given)
    assert result.params == resolved
    assert image_hash(result.image) == expected
    current = lookup("deconvolve_wiener")
    assert current is not None
    assert image_hash(current.run(image, resolved).image) == expected


def test_deconvolve_wiener_4_chooses_other_balances_so_versions_2_and_3_are_needed() -> None:
    """Version 4's automatic balance differs from version 2's (noise level) and version 3's
    (power-law spectrum, blur term) on these inputs: a replay of an older record must not
    take version 4's."""
    current = lookup("deconvolve_wiener")
    assert current is not None
    for dtype, colour, given, resolved, expected in (WIENER_V2[0], WIENER_V3[0], WIENER_V3[1]):
        now = current.run(_still_image(dtype, colour), given)
        assert now.params["balance"] != resolved["balance"]
        assert image_hash(now.image) != expected


@pytest.mark.parametrize(("dtype", "colour", "given", "details", "expected"), SR_V1)
def test_super_resolve_frames_1_reproduces_the_old_commit(
    dtype: Any, colour: bool, given: dict[str, Any], details: dict[str, Any], expected: str
) -> None:
    old = lookup("super_resolve_frames", "1")
    assert old is not None
    frames = _sr_frames(dtype, colour)
    result = old.reduce(iter(frames), given)
    assert image_hash(result.image) == expected
    assert {k: result.details[k] for k in details} == details
    assert result.details["frames"] == len(frames)
    current = lookup("super_resolve_frames")
    assert current is not None
    assert "deconvolution" not in [p.name for p in current.params]
    now = current.reduce(iter(frames), {"scale": given.get("scale", 2)})
    assert image_hash(now.image) != expected


def test_super_resolve_frames_1_refuses_a_frame_of_another_scene() -> None:
    old = lookup("super_resolve_frames", "1")
    assert old is not None
    frames = _sr_frames(np.uint8, True)
    frames[3] = np.ascontiguousarray(frames[3][::-1, ::-1])
    with pytest.raises(ParameterError, match=r"frame 3 \(0 = first of the range\) correlates only"):
        old.reduce(iter(frames), {})


def test_a_still_run_recorded_with_deconvolve_wiener_2_replays_bit_exact(
    case: Case, signer: Signer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = _still_image(np.uint8, True)
    path = tmp_path / "still.png"
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    ingest(case, [path], signer=signer, now=NOW)
    recipe = parse_recipe(b'[[steps]]\nop = "deconvolve_wiener"\n', where="test.toml")
    # The run a forensic with deconvolve_wiener 2 made: the step asks for version 2.
    recipe = dataclasses.replace(
        recipe, steps=tuple(dataclasses.replace(s, op_version="2") for s in recipe.steps)
    )
    summary = run_recipe(case, "E1", recipe, signer=signer, now=NOW)
    (step,) = [e.payload for e in read_entries(case.root) if e.kind == "run.step"]
    assert step["op_version"] == "2"
    assert step["params"] == WIENER_V2[0][3]
    # The output is the one the old commit's code computed from these pixels.
    assert step["output"]["pixel_sha256"] == summary.output["pixel_sha256"] == WIENER_V2[0][4]

    verdict = verify_case(case.root, replay=True)
    assert verdict.ok, verdict.failure
    assert [r["verdict"] for r in verdict.replay or []] == ["bit-exact"]

    # Without the kept version (as on main before it was kept), the step cannot be replayed.
    monkeypatch.delitem(framework._EARLIER[framework.LANE], "deconvolve_wiener@2")
    verdict = verify_case(case.root, replay=True)
    assert not verdict.ok
    (judged,) = verdict.replay or []
    assert judged["verdict"] == "not reproduced"
    assert "version 2 is not available" in json.dumps(judged)


def test_a_video_run_recorded_with_super_resolve_frames_1_replays_bit_exact(
    case: Case, signer: Signer, media: Path
) -> None:
    ingest(case, [media / "cctv.mp4"], signer=signer, now=NOW)
    text = (
        b'[[steps]]\nop = "crop"\nx = 40\ny = 40\nwidth = 64\nheight = 48\nframes = [0, 7]\n'
        b'[[steps]]\nop = "super_resolve_frames"\nscale = 2\nframes = [0, 7]\n'
    )
    recipe = parse_recipe(text, where="test.toml")
    steps = tuple(
        dataclasses.replace(s, op_version="1") if s.op_name == "super_resolve_frames" else s
        for s in recipe.steps
    )
    run_recipe(case, "E1", dataclasses.replace(recipe, steps=steps), signer=signer, now=NOW)
    recorded = [e.payload for e in read_entries(case.root) if e.kind == "run.step"]
    assert [(s["op"], s["op_version"]) for s in recorded] == [
        ("crop", "1"),
        ("super_resolve_frames", "1"),
    ]
    assert recorded[1]["params"]["deconvolution"] == "wiener"  # version 1's schema
    assert recorded[1]["params"]["balance"] > 0  # resolved, recorded
    verdict = verify_case(case.root, replay=True)
    assert verdict.ok, verdict.failure
    assert {r["verdict"] for r in verdict.replay or []} == {"bit-exact"}


#: stretch_channels 1 at 8db635b (computed there with `lookup("stretch_channels")`, the
#: then-current version 1): (dtype, colour, params given, output hash).
STRETCH_V1 = [
    (np.uint8, True, {}, "d56dc0af6d94fdbc5210a210f59ebc84876af92d8e9103aae33bd24cbfb012ca"),
    (
        np.uint16,
        False,
        {"low_percentile": 2.0, "high_percentile": 97.0},
        "c23d91040f7e1e801f54aabde7f46fca4a9a5ea6a37b5a6d668f253975d3269e",
    ),
]


@pytest.mark.parametrize(("dtype", "colour", "given", "expected"), STRETCH_V1)
def test_stretch_channels_1_reproduces_the_old_commit(
    dtype: Any, colour: bool, given: dict[str, Any], expected: str
) -> None:
    image = _still_image(dtype, colour)
    old = lookup("stretch_channels", "1")
    current = lookup("stretch_channels")
    assert old is not None
    assert current is not None
    assert (old.version, current.version) == ("1", "2")
    assert registry(include_temporal=True)["stretch_channels"] is current
    assert image_hash(old.run(image, given).image) == expected
    # Version 1's map is version 2's target "full" at the same percentiles; the default moved.
    full = current.run(image, {**old.run(image, given).params, "target": "full"})
    assert image_hash(full.image) == expected
    if colour:
        assert image_hash(current.run(image, given).image) != expected


def test_a_still_run_recorded_with_stretch_channels_1_replays_bit_exact(
    case: Case, signer: Signer, tmp_path: Path
) -> None:
    image = _still_image(np.uint8, True)
    path = tmp_path / "still.png"
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    ingest(case, [path], signer=signer, now=NOW)
    recipe = parse_recipe(b'[[steps]]\nop = "stretch_channels"\n', where="test.toml")
    recipe = dataclasses.replace(
        recipe, steps=tuple(dataclasses.replace(s, op_version="1") for s in recipe.steps)
    )
    summary = run_recipe(case, "E1", recipe, signer=signer, now=NOW)
    (step,) = [e.payload for e in read_entries(case.root) if e.kind == "run.step"]
    assert step["op_version"] == "1"
    assert step["params"] == {"low_percentile": 0.5, "high_percentile": 99.5}  # version 1's
    assert summary.output["pixel_sha256"] == STRETCH_V1[0][3]
    verdict = verify_case(case.root, replay=True)
    assert verdict.ok, verdict.failure
    assert [r["verdict"] for r in verdict.replay or []] == ["bit-exact"]


#: denoise_bm3d 1 at 5db9986 (the last commit with it current; its kernels,
#: forensic.classical.collaborative, unchanged since): (dtype, colour, params given, params
#: resolved, output hash), on `_still_image`.
BM3D_V1 = [
    (
        np.uint8,
        True,
        {},
        {"sigma": 0.009924},
        "80fb5fca135e928682006f193110a213d2bf918e91cafe3ff072d5ae3f9dd9f4",
    ),
    (
        np.uint8,
        True,
        {"sigma": 0.05},
        {"sigma": 0.05},
        "d79aa99c7ab4248d93392a123826caa158ab7287f8578590eefb481f38239a2a",
    ),
    (
        np.uint16,
        False,
        {},
        {"sigma": 0.005588},
        "e19badc090038606716a89556799ae00637e30efb4f9525546f5b66d37288106",
    ),
    (
        np.uint16,
        False,
        {"sigma": 0.05},
        {"sigma": 0.05},
        "addee3b7621168530565ac5bbc80c40bc758890b03b68d842bcd604b7a420432",
    ),
]


@pytest.mark.parametrize(("dtype", "colour", "given", "resolved", "expected"), BM3D_V1)
def test_denoise_bm3d_1_reproduces_the_old_commit(
    dtype: Any, colour: bool, given: dict[str, Any], resolved: dict[str, Any], expected: str
) -> None:
    image = _still_image(dtype, colour)
    assert image_hash(image) == STILL_INPUT[(dtype, colour)]
    old = lookup("denoise_bm3d", "1")
    assert old is not None
    result = old.run(image, given)
    assert result.params == resolved
    assert image_hash(result.image) == expected
    current = lookup("denoise_bm3d")
    assert current is not None
    assert current.run(image, given).params == resolved, "the same noise estimate"
    assert image_hash(current.run(image, resolved).image) != expected


#: denoise_gaussian 1 at 5db9986 (computed there with `lookup("denoise_gaussian")`, the
#: then-current version 1): (dtype, colour, params given, output hash).
GAUSSIAN_V1 = [
    (np.uint8, True, {}, "fb0fca9dc3303e38c5e66e12bc8fb1d80edfab7fd8ca5478803d6fc4b8ed20d7"),
    (
        np.uint16,
        False,
        {"sigma": 2.5},
        "d707bbe28be6246ebc2fcd22bd72360628762cbd9f9d5b466e97603ab65c7176",
    ),
    (
        np.uint8,
        True,
        {"sigma": 0.6},
        "b9fb2b8c726de84a625809af0a710e8dc30f643325725cb51a3875dfe9b94d0b",
    ),
]


@pytest.mark.parametrize(("dtype", "colour", "given", "expected"), GAUSSIAN_V1)
def test_denoise_gaussian_1_reproduces_the_old_commit(
    dtype: Any, colour: bool, given: dict[str, Any], expected: str
) -> None:
    image = _still_image(dtype, colour)
    old = lookup("denoise_gaussian", "1")
    current = lookup("denoise_gaussian")
    assert old is not None
    assert current is not None
    assert image_hash(old.run(image, given).image) == expected
    # Version 2 (integer path) gives other bits: version 1 is needed for replay.
    assert image_hash(current.run(image, given).image) != expected


def test_a_still_run_recorded_with_denoise_gaussian_1_replays_bit_exact(
    case: Case, signer: Signer, tmp_path: Path
) -> None:
    image = _still_image(np.uint8, True)
    path = tmp_path / "still.png"
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    ingest(case, [path], signer=signer, now=NOW)
    recipe = parse_recipe(b'[[steps]]\nop = "denoise_gaussian"\n', where="test.toml")
    recipe = dataclasses.replace(
        recipe, steps=tuple(dataclasses.replace(s, op_version="1") for s in recipe.steps)
    )
    summary = run_recipe(case, "E1", recipe, signer=signer, now=NOW)
    (step,) = [e.payload for e in read_entries(case.root) if e.kind == "run.step"]
    assert step["op_version"] == "1"
    assert summary.output["pixel_sha256"] == GAUSSIAN_V1[0][3]
    verdict = verify_case(case.root, replay=True)
    assert verdict.ok, verdict.failure
    assert [r["verdict"] for r in verdict.replay or []] == ["bit-exact"]


#: denoise_frames 1 at a85293d (the last commit with it current, computed there with
#: `lookup("denoise_frames")`): (dtype, colour, params given, estimated sigma, first two
#: frames' sigma_left, SHA-256 over the comma-joined `image_hash` of the eight outputs), on
#: `_sr_frames`.
FRAMES_V1 = [
    (
        np.uint8,
        False,
        {"radius": 1},
        0.029246,
        [0.02068, 0.016885],
        "8af3c1676d2b12fcf1fd800a699c33d0f2e45fbe9e690a37a6008c19aab3e99e",
    ),
    (
        np.uint16,
        True,
        {"radius": 2, "sigma": 0.03},
        0.03,
        [0.017324, 0.015025],
        "7b3597259ebdff2fa6c052b1848406ead9caae2c44c74689d40f14b1f2e8f145",
    ),
]


@pytest.mark.parametrize(("dtype", "colour", "given", "sigma", "left", "expected"), FRAMES_V1)
def test_denoise_frames_1_reproduces_the_old_commit(
    dtype: Any, colour: bool, given: dict[str, Any], sigma: float, left: list[float], expected: str
) -> None:
    import hashlib

    def joined(results: list[Any]) -> str:
        hashes = ",".join(image_hash(frame) for frame, _ in results)
        return hashlib.sha256(hashes.encode()).hexdigest()

    frames = _sr_frames(dtype, colour)
    old = lookup("denoise_frames", "1")
    assert old is not None
    results = list(old.stream(iter(frames), given)[1])
    assert len(results) == len(frames)
    assert results[0][1]["sigma"] == sigma
    assert [d["sigma_left"] for _, d in results[:2]] == left
    assert joined(results) == expected
    current = lookup("denoise_frames")
    assert current is not None
    now = list(current.stream(iter(frames), given)[1])
    assert [d["sigma_left"] for _, d in now[:2]] == left, "the same averaging"
    assert joined(now) != expected, "version 2's BM3D"
