"""Streamed video runs: temporal steps, per-step granularity, lossless export, replay."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from forensic.case import Case
from forensic.errors import InputError
from forensic.export import export_run
from forensic.hashing import image_hash, inclusion_proof, verify_inclusion
from forensic.ingest import ingest
from forensic.journal import read_entries
from forensic.keys import Signer
from forensic.media import analyse_video, decode_frames
from forensic.pipeline.run import run_recipe
from forensic.recipe import parse_recipe
from forensic.records import load_artifact, read_runs
from forensic.verify import verify_case
from forensic.videoio import read_video
from tests.conftest import NOW

AVERAGE = b"""
[recipe]
name = "parked-car"

[[steps]]
op = "register_frames"
motion = "translation"
frames = [0, 15]

[[steps]]
op = "average_frames"
method = "mean"
frames = [0, 15]

[[steps]]
op = "unsharp_mask"
"""


@pytest.fixture
def video_case(case: Case, signer: Signer, media: Path) -> Case:
    ingest(case, [media / "cctv.mp4"], signer=signer, now=NOW)
    return case


def _run(case: Case, signer: Signer, text: bytes, **kw: Any) -> Any:
    return run_recipe(
        case, "E1", parse_recipe(text, where="test.toml"), signer=signer, now=NOW, **kw
    )


def _snapshot(case: Case) -> dict[str, bytes]:
    return {
        str(p.relative_to(case.root)): p.read_bytes()
        for p in sorted(case.root.rglob("*"))
        if p.is_file() and ".lock" not in p.name
    }


def _psnr(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / mse)


def test_registered_average_is_one_entry_per_step_and_beats_one_frame(
    video_case: Case, signer: Signer, media: Path
) -> None:
    summary = _run(video_case, signer, AVERAGE, keep_intermediates=True)
    entries = read_entries(video_case.root)
    kinds = [e.kind for e in entries]
    # One entry per step and one for the run, whatever the number of frames.
    assert kinds.count("run.step") == 3
    assert kinds.count("run") == 1
    (_run_payload,) = read_runs(entries)
    steps = _run_payload.steps
    assert summary.output["frames"] == 1
    assert [s["temporal"] for s in steps] == ["map", "reduce", "frame"]
    registered = load_artifact(video_case.store, steps[0]["applied"], what="register")
    assert [r["frame"] for r in registered] == list(range(16))
    (reduced,) = load_artifact(video_case.store, steps[1]["applied"], what="average")
    assert [i["frame"] for i in reduced["inputs"]] == list(range(16))
    assert [i["pixel_sha256"] for i in reduced["inputs"]] == [
        r["output"]["pixel_sha256"] for r in registered
    ]
    # The average itself (kept on request) is closer to the clean scene than one frame.
    assert steps[1]["kept"]["frames"] == 1
    (averaged,) = list(read_video(video_case.root / steps[1]["kept"]["file"]))
    assert (reduced["output"]["stored"], reduced["output"]["pixel_sha256"]) == (
        0,
        image_hash(averaged),
    )
    clean = np.load(media / "cctv_clean.npz")["frames"]
    one = decode_frames(video_case.root / entries[1].payload["stored"], {0}, where="t")[0][0]
    crop = (slice(16, -16), slice(16, -16))
    single = _psnr(one[crop], clean[0][crop])
    assert _psnr(averaged[crop], clean[0][crop]) > single + 2
    verdict = verify_case(video_case.root, replay=True)
    assert verdict.ok, verdict.failure
    assert [r["verdict"] for r in verdict.replay or []] == ["bit-exact"] * 3


def test_a_single_frame_is_proved_against_the_signed_root(video_case: Case, signer: Signer) -> None:
    _run(video_case, signer, b'[[steps]]\nop = "levels"\ngamma = 1.2\nframes = [0, 9]\n')
    (run,) = read_runs(read_entries(video_case.root))
    steps = run.steps
    records = load_artifact(video_case.store, steps[0]["applied"], what="levels")
    leaves = [bytes.fromhex(r["output"]["pixel_sha256"]) for r in records]
    root = steps[0]["applied"]["merkle_root"]
    proof = inclusion_proof(leaves, 7)
    assert verify_inclusion(leaves[7], 7, len(leaves), proof, root)
    assert not verify_inclusion(leaves[6], 7, len(leaves), proof, root)
    assert run["output"]["merkle_root"] == root


def test_threads_do_not_change_results(case: Case, signer: Signer, media: Path) -> None:
    ingest(case, [media / "cctv.mp4"], signer=signer, now=NOW)
    text = b'[[steps]]\nop = "denoise_bilateral"\nframes = [0, 11]\n[[steps]]\nop = "clahe"\n'
    one = _run(case, signer, text, workers=1)
    two = _run(case, signer, text, workers=3, again=True)  # the same run on purpose
    assert one.output["merkle_root"] == two.output["merkle_root"]
    assert one.output["video"]["sha256"] == two.output["video"]["sha256"]


def test_lossless_export_reingests_with_the_journaled_frame_hashes(
    video_case: Case, signer: Signer, tmp_path: Path
) -> None:
    _run(video_case, signer, b'[[steps]]\nop = "clahe"\nframes = [3, 12]\n')
    (run,) = read_runs(read_entries(video_case.root))
    outputs = load_artifact(video_case.store, run["frames"], what="outputs")
    exported = export_run(
        video_case,
        "R1",
        fmt="ffv1",
        out=tmp_path / "out.mkv",
        burn_in=False,
        signer=signer,
        now=NOW,
    )
    again = analyse_video(tmp_path / "out.mkv", where="export")
    assert [f["sha256"] for f in again.frames] == [o["output"]["frame_sha256"] for o in outputs]
    assert again.pixel_hash["sha256"] == exported["frame_hashes_root"]
    frames = list(read_video(tmp_path / "out.mkv"))
    assert [image_hash(f) for f in frames] == [o["output"]["pixel_sha256"] for o in outputs]
    entry = read_entries(video_case.root)[-1]
    assert entry.kind == "export"
    assert entry.payload["lossless"] is True
    assert entry.payload["evidence_copy"] is True
    # PNG frames: one file per frame, each listed with its hashes.
    export_run(
        video_case, "R1", fmt="png", out=tmp_path / "png", burn_in=False, signer=signer, now=NOW
    )
    listing = json.loads((tmp_path / "png" / "frames.json").read_text())
    assert [x["pixel_sha256"] for x in listing] == [o["output"]["pixel_sha256"] for o in outputs]
    assert sorted(os.listdir(tmp_path / "png"))[0] == "frame_000003.png"
    # H.264 with burn-in: journaled as a lossy presentation copy.
    lossy = export_run(
        video_case,
        "R1",
        fmt="h264",
        out=tmp_path / "show.mp4",
        burn_in=True,
        signer=signer,
        now=NOW,
    )
    assert lossy["lossless"] is False
    assert lossy["evidence_copy"] is False
    assert "lossy" in lossy["note"]
    with pytest.raises(InputError, match="already exists"):
        export_run(
            video_case,
            "R1",
            fmt="ffv1",
            out=tmp_path / "out.mkv",
            burn_in=False,
            signer=signer,
            now=NOW,
        )
    assert verify_case(video_case.root).ok


def test_mixed_sizes_fail_cleanly_and_leave_the_case_unchanged(
    video_case: Case, signer: Signer
) -> None:
    before = _snapshot(video_case)
    text = (
        b'[[steps]]\nop = "levels"\nframes = [0, 5]\n'
        b'[[steps]]\nop = "crop"\nx = 0\ny = 0\nwidth = 100\nheight = 80\nframes = [0, 2]\n'
    )
    with pytest.raises(InputError, match="same size"):
        _run(video_case, signer, text)
    assert _snapshot(video_case) == before
    assert not [p for p in (video_case.root / "derived").iterdir() if p.name.startswith(".tmp")]


def test_an_altered_frame_list_fails_verify_naming_it(video_case: Case, signer: Signer) -> None:
    _run(video_case, signer, b'[[steps]]\nop = "invert"\nframes = [0, 3]\n')
    (_rec,) = read_runs(read_entries(video_case.root))
    steps = _rec.steps
    path = video_case.root / steps[0]["applied"]["file"]
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[10] ^= 1
    path.write_bytes(bytes(data))
    verdict = verify_case(video_case.root)
    assert not verdict.ok
    assert "step 1" in (verdict.failure or "")


def test_temporal_steps_refuse_roi() -> None:
    from forensic.recipe import RecipeError

    with pytest.raises(RecipeError, match="roi is not for a temporal operation"):
        parse_recipe(
            b'[[steps]]\nop = "average_frames"\nroi = [0, 0, 8, 8]\nframes = [0, 3]\n',
            where="t.toml",
        )


def test_super_resolution_and_stabilisation_run_through_the_pipeline(
    video_case: Case, signer: Signer
) -> None:
    steps = (
        b'[[steps]]\nop = "stabilise"\nframes = [0, 11]\n'
        b'[[steps]]\nop = "crop"\nx = 40\ny = 40\nwidth = 120\nheight = 90\n'
        b'[[steps]]\nop = "super_resolve_frames"\nscale = 2\n'
    )
    # Each frame moves by its own correction: a crop measured on the exhibit (coords =
    # "source", the default) cannot be placed on the stabilised frames, and is refused.
    with pytest.raises(InputError, match=r"step 2 \(crop\).*stabilisation moves each frame"):
        _run(video_case, signer, steps)
    assert read_runs(read_entries(video_case.root)) == []
    # Measured on the stabilised frames: used as given.
    summary = _run(video_case, signer, b'[recipe]\ncoords = "input"\n' + steps)
    (run,) = read_runs(read_entries(video_case.root))
    (out,) = list(read_video(video_case.root / run["output"]["video"]["file"]))
    assert out.shape[:2] == (180, 240)
    assert summary.provenance["counts"]["resampled"] == 180 * 240
    assert summary.provenance["counts"]["inferred"] == 0
    assert run["lanes"] == ["classical"]
    assert not run["tainted"]
    verdict = verify_case(video_case.root, replay=True)
    assert verdict.ok, verdict.failure
    assert {r["verdict"] for r in verdict.replay or []} == {"bit-exact"}


@pytest.mark.parametrize("clip", ["interlaced_combed.mkv", "interlaced_flagged.mp4"])
def test_filtering_interlaced_fixtures_before_deinterlacing_warns(
    clip: str, case: Case, signer: Signer, media: Path
) -> None:
    ingest(case, [media / clip], signer=signer, now=NOW)
    exhibit = read_entries(case.root)[-1].payload
    assert exhibit["facts"]["interlaced_frames"] > 0
    warned = _run(case, signer, b'[[steps]]\nop = "denoise_median"\nframes = [0, 3]\n')
    assert any("interlaced" in w and "deinterlace first" in w for w in warned.warnings)
    (_rec,) = read_runs(read_entries(case.root))
    steps = _rec.steps
    assert any("deinterlace first" in w for w in steps[0]["warnings"])
    clean = _run(
        case,
        signer,
        b'[[steps]]\nop = "deinterlace_blend"\nframes = [0, 3]\n[[steps]]\nop = "denoise_median"\n',
    )
    assert not any("interlaced" in w for w in clean.warnings)


def test_progressive_fixture_gets_no_interlace_warning(
    case: Case, signer: Signer, media: Path
) -> None:
    ingest(case, [media / "progressive_moving.mp4"], signer=signer, now=NOW)
    quiet = _run(case, signer, b'[[steps]]\nop = "denoise_median"\nframes = [0, 3]\n')
    assert not any("interlaced" in w for w in quiet.warnings)


def test_limited_range_clip_runs_with_its_conversion_recorded(
    case: Case, signer: Signer, media: Path
) -> None:
    ingest(case, [media / "limited.mkv"], signer=signer, now=NOW)
    _run(case, signer, b'[[steps]]\nop = "invert"\nframes = [0, 0]\n')
    (run,) = read_runs(read_entries(case.root))
    text = json.dumps(run["conversion"])
    assert "limited" in text


def test_a_time_range_selects_the_frames_displayed_then(video_case: Case, signer: Signer) -> None:
    # cctv.mp4 runs at 25 fps: 0.2 s is frame 5, 0.35 s falls within frame 8 (0.32-0.36 s).
    _run(video_case, signer, b'[[steps]]\nop = "invert"\nseconds = [0.2, 0.35]\n')
    (run,) = read_runs(read_entries(video_case.root))
    steps = run.steps
    assert steps[0]["frames"] == [5, 8]
    assert steps[0]["seconds"] == [0.2, 0.35]
    outputs = load_artifact(video_case.store, run["frames"], what="outputs")
    assert [o["frame"] for o in outputs] == [5, 6, 7, 8]
    with pytest.raises(InputError, match=r"step 1 \(invert\): seconds: time 9\.0 s is outside"):
        _run(video_case, signer, b'[[steps]]\nop = "invert"\nseconds = [0.0, 9.0]\n')
    with pytest.raises(InputError, match="frames or seconds, not both"):
        _run(
            video_case, signer, b'[[steps]]\nop = "invert"\nseconds = [0.0, 1.0]\nframes = [0, 1]\n'
        )


def test_the_readme_video_recipe_is_valid() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("## CCTV video", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    recipe = parse_recipe(block.encode(), where="README.md")
    assert [s.op_name for s in recipe.steps] == ["register_frames", "average_frames"]


def _replay_video_with(
    case: Case, monkeypatch: pytest.MonkeyPatch, *, other_machine: bool
) -> list[Any]:
    """Replay as if one pixel of each frame came out one level higher, here or elsewhere."""
    from dataclasses import replace

    import forensic.pipeline.replay as videorun
    import forensic.pipeline.stream as enhance

    real_apply = enhance.apply_step

    def off_by_one(*args: Any, **kwargs: Any) -> Any:
        result = real_apply(*args, **kwargs)
        image = result.image.copy()
        image[0, 0, 0] = 254 if image[0, 0, 0] == 255 else image[0, 0, 0] + 1
        return replace(result, image=image)

    monkeypatch.setattr(enhance, "apply_step", off_by_one)
    if other_machine:
        real_env = videorun.pixel_environment
        monkeypatch.setattr(
            videorun, "pixel_environment", lambda: {**real_env(), "machine": "elsewhere"}
        )
    (run,) = read_runs(read_entries(case.root))
    return videorun.replay_run(case, run, max_abs_difference=1, min_psnr_db=50.0)


def test_video_replay_tolerance(
    video_case: Case, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(
        video_case,
        signer,
        b'[[steps]]\nop = "register_frames"\nframes = [0, 3]\n'
        b'[[steps]]\nop = "levels"\ngamma = 1.2\n',
    )
    with monkeypatch.context() as patch:
        verdicts = _replay_video_with(video_case, patch, other_machine=True)
    assert [v.verdict for v in verdicts] == ["bit-exact", "within tolerance"]
    assert verdicts[1].max_abs_difference == 1
    assert isinstance(verdicts[1].psnr_db, float)
    assert verdicts[1].psnr_db > 50
    assert "elsewhere" in " ".join(verdicts[1].differences)
    with monkeypatch.context() as patch:
        verdicts = _replay_video_with(video_case, patch, other_machine=False)
    assert [v.verdict for v in verdicts] == ["bit-exact", "not reproduced"]
    assert "same environment" in verdicts[1].detail


def test_verify_pixels_decodes_the_stored_videos(video_case: Case, signer: Signer) -> None:
    _run(video_case, signer, b'[[steps]]\nop = "clahe"\nframes = [0, 4]\n')
    verdict = verify_case(video_case.root, pixels=True)
    assert verdict.ok, verdict.failure
    assert "2 stored video(s) decoded" in verdict.checks[8].detail


def test_a_generative_step_on_video_frames_is_mapped_labelled_and_verified(
    tmp_path: Path, signer: Signer, media: Path
) -> None:
    from forensic.case import init_case

    case = init_case(
        tmp_path / "inv",
        case_id="INV-V",
        title="investigative video",
        policy_path=None,
        signer=signer,
        now=NOW,
        profile="investigative",
    )
    ingest(case, [media / "cctv.mp4"], signer=signer, now=NOW)
    text = (  # coords = "input": the inpainting box is in the crop's pixels
        b'[recipe]\ncoords = "input"\n'
        b'[[steps]]\nop = "crop"\nx = 100\ny = 80\nwidth = 64\nheight = 48\nframes = [0, 1]\n'
        b'[[steps]]\nop = "generative.inpaint_telea"\nx = 20\ny = 10\nwidth = 12\nheight = 12\n'
    )
    summary = run_recipe(case, "E1", parse_recipe(text, where="t.toml"), signer=signer, now=NOW)
    (run,) = read_runs(read_entries(case.root))
    steps = run.steps
    assert run["tainted"] is True
    assert summary.provenance["counts"]["inferred"] == 2 * 12 * 12
    assert set(steps[1]["maps"]) == {"inferred_content", "uncertainty", "consistency"}
    records = load_artifact(case.store, steps[1]["applied"], what="inpaint")
    assert [r["frame"] for r in records] == [0, 1]
    for name, video in steps[1]["maps"].items():
        frames = list(read_video(case.root / video["file"]))
        assert [image_hash(f) for f in frames] == [
            r["maps"]["frames"][name]["pixel_sha256"] for r in records
        ]
    # The labelled presentation copy: the label band above each output frame.
    copies = list(read_video(case.root / run["presentation"]["file"]))
    assert len(copies) == 2
    assert copies[0].shape[0] > 48
    assert verify_case(case.root, pixels=True).ok


def test_video_runs_fix_the_mmap_threshold() -> None:
    """Frame-sized blocks are mapped and returned to the kernel when freed (glibc), so that
    the resident set stays flat in the clip's length; elsewhere the call reports False."""
    import ctypes
    import platform

    from forensic.pipeline.video import fixed_mmap_threshold

    assert fixed_mmap_threshold() is fixed_mmap_threshold()  # once per process
    glibc = platform.libc_ver()[0] == "glibc" and hasattr(ctypes.CDLL(None), "mallopt")
    assert fixed_mmap_threshold() is glibc
