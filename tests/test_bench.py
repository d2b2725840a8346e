"""The benchmark harness (bench/): statistics, rows, rendering, JSON, placeholders, and one tiny
row end to end. No timing is asserted: timings belong to `make bench`, not to the tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import bench
from bench import harness, images, plain
from bench.__main__ import main
from bench.harness import MET, Context, Row, Timing
from bench.sections import operations
from forensic.classical import get


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    return Context(quick=True, scratch=tmp_path, log=lambda message: None)


def test_timing_statistics() -> None:
    t = Timing.of([0.3, 0.1, 0.2, 0.5, 0.4], warmup=1)
    assert (t.median, t.min, t.max, t.n, t.warmup) == (0.3, 0.1, 0.5, 5, 1)
    assert t.text() == "300.0 ms (100.0-500.0 ms, n=5)"
    assert Timing.of([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], warmup=1).median == 3.5
    assert harness.ratio(Timing.of([2.0] * 5, 1), Timing.of([1.0] * 5, 1)) == 2.0
    with pytest.raises(ValueError, match="no timings"):
        Timing.of([], warmup=1)


def test_side_by_side_warms_up_then_interleaves() -> None:
    calls: list[str] = []
    times = harness.side_by_side(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=5, warmup=1
    )
    assert calls == ["a", "b"] * 6  # one warm-up round, then five timed rounds, in turn
    assert set(times) == {"a", "b"}
    assert all(t.n == 5 and t.warmup == 1 and t.min <= t.median <= t.max for t in times.values())
    with pytest.raises(ValueError, match="at least 5"):
        harness.measure(lambda: None, repeats=4)
    with pytest.raises(ValueError, match="warm-up"):
        harness.measure(lambda: None, warmup=0)


def test_rounds_collects_each_label() -> None:
    n = iter(range(100))
    t = harness.rounds(lambda: {"x": float(next(n)), "y": 1.0}, repeats=5)
    assert t["x"].n == 5
    assert t["x"].median == 3.0  # round 0 was the warm-up; 1..5 were timed
    assert t["y"].median == 1.0


def test_row_status_is_checked() -> None:
    with pytest.raises(ValueError, match="unknown status"):
        Row("2", "x", "1 s", "≤ 1 s", "fine")


def _document(rows: list[Row]) -> dict[str, Any]:
    machine = harness.machine({"cuda": False})
    return harness.results_document(
        started="2026-01-01T00:00:00Z",
        mode="quick",
        elapsed_s=1.0,
        machine_info=machine,
        sections=[(bench.find_section("2"), rows)],
    )


def test_render_and_json(tmp_path: Path) -> None:
    rows = [
        Row(
            "2",
            "op | with a pipe",
            "1.05x",
            "≤ 1.1x",
            MET,
            "a note",
            {
                "table": {"columns": ["impl", "t"], "rows": [["ours", "1 s"]]},
                "value": np.float64(1.5),
                "array": np.arange(3),
            },
        ),
        harness.pending("2", "later", "issue 7 pipeline"),
    ]
    doc = _document(rows)
    text = harness.render(doc)
    assert "| row | figure | target | status |" in text
    assert "| op \\| with a pipe | 1.05x | ≤ 1.1x | met |" in text
    assert "| later | pending: issue 7 pipeline | - | pending |" in text
    assert "* op | with a pipe: a note" in text
    assert "| ours | 1 s |" in text
    assert "no GPU" in text
    path = tmp_path / "out" / "results.json"
    harness.write_json(path, doc)
    back = json.loads(path.read_text())
    assert back["format"] == "forensic-bench/1"
    assert back["machine"]["gpu"] == "no GPU"
    assert back["machine"]["cores"] >= 1
    assert "cv2.getNumThreads" in back["machine"]["threads"]
    assert back["machine"]["versions"]["numpy"] == np.__version__
    row = back["sections"][0]["rows"][0]
    assert row["details"]["value"] == 1.5
    assert row["details"]["array"] == [0, 1, 2]


def test_sections_are_found_by_number_or_name() -> None:
    assert [s.number for s in bench.SECTIONS] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    assert 12 in [s.number for s in bench.SECTIONS]
    assert bench.find_section("12") is bench.find_section("defects")
    assert 10 in [s.number for s in bench.SECTIONS]
    assert bench.find_section("4") is bench.find_section("verify")
    assert bench.find_section("7") is bench.find_section("workbench")
    assert bench.find_section("8") is bench.find_section("speed")
    assert bench.find_section("9") is bench.find_section("keys")
    assert bench.find_section("10") is bench.find_section("batch")
    with pytest.raises(KeyError, match="no section"):
        bench.find_section("99")


def test_bare_loop_and_clips(tmp_path: Path) -> None:
    from bench.bare import process
    from bench.clips import make_clip
    from forensic.media import analyse_video
    from forensic.videoio import read_video

    clip = make_clip(tmp_path / "c.mp4", frames=3, height=48, width=64, seed=1)
    facts = analyse_video(clip, where="clip").facts
    assert (facts["frame_count"], facts["width"], facts["height"]) == (3, 64, 48)
    out = tmp_path / "o.mkv"
    assert process(clip, out, lambda image: 255 - image, first=1, last=2, threads=2) == 2
    frames = list(read_video(out))
    assert len(frames) == 2
    assert frames[0].shape == (48, 64, 3)


def test_memprobe_reads_its_own_peak() -> None:
    from bench import memprobe

    assert memprobe._status_kib("VmRSS") > 0


def test_scene_and_metrics() -> None:
    s = images.scene(54, 96)
    assert s.shape == (54, 96)
    assert s.dtype == np.uint8
    assert s.std() > 10  # real image content, not a flat fill
    rng = np.random.default_rng(0)
    noisy = images.add_noise(s, 25 / 255, rng)
    assert 19.0 < images.psnr(s, noisy) < 23.0
    assert images.psnr(s, noisy, border=4) > 0
    assert 0 < images.ssim(s, noisy) < 1
    assert not set(images.UNUSED_BY_TESTS) & {"camera", "astronaut", "coffee", "moon"}


def test_plain_implementations_match_ours() -> None:
    """The speed references compute what our operations compute (equal quality)."""
    truth = images.scene(96, 128)
    rng = np.random.default_rng(1)
    kernel = images.psf_gaussian(2.0, 9)
    blurred = images.add_noise(images.blur(truth, kernel), 0.01, rng)
    res = get("deconvolve_wiener").run(blurred, {"psf": kernel.tolist()})
    ref = plain.wiener(images.to_float(blurred), kernel, res.params["balance"], 32)
    assert abs(images.psnr(truth, images.to_uint8(ref)) - images.psnr(truth, res.image)) < 0.01
    noisy = images.add_noise(truth, 25 / 255, rng)
    tv = get("denoise_tv").run(noisy)
    p = tv.params
    ref = plain.tv_chambolle(images.to_float(noisy), p["weight"], p["eps"], p["max_iterations"])
    assert abs(images.psnr(truth, images.to_uint8(ref)) - images.psnr(truth, tv.image)) < 0.01


def test_phase_correlation_finds_the_shift() -> None:
    s = images.scene(128, 128)
    dx, dy = plain.phase_correlation(s, images.shifted(s, 1.0, -2.0))
    assert abs(dx - 1.0) < 0.3
    assert abs(dy + 2.0) < 0.3


def test_one_row_end_to_end(ctx: Context) -> None:
    truth = images.scene(64, 96)
    noisy = images.add_noise(truth, 25 / 255, np.random.default_rng(2))
    row = operations.wavelet(ctx, truth, noisy)
    assert row.section == "2"
    assert row.status in ("met", "not met")
    assert row.target.startswith("≤ 1.1x")
    table = row.details["table"]
    assert [r[0] for r in table["rows"]][:1] == ["ours"]
    assert all(float(r[2]) > images.psnr(truth, noisy) for r in table["rows"])


def test_temporal_rows_run_or_wait_for_the_pipeline(ctx: Context) -> None:
    clean = images.scene(96, 128)
    rows = [*operations.registration(ctx, clean), operations.averaging(ctx, clean)]
    assert len(rows) == 3
    for r in rows:
        assert r.status in ("pending", "met", "not met")
        if r.status != "pending":  # the temporal operations have landed: both PSNRs stated
            assert len(r.details["psnr_db"]) >= 2


def test_main_writes_json_and_markdown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bench.__main__.detect_gpu", lambda: {"cuda": False})
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    code = main(
        [
            "--quick",
            "--only",
            "audit",
            "--json",
            str(out_json),
            "--markdown",
            str(out_md),
        ]
    )
    assert code == 0
    doc = json.loads(out_json.read_text())
    assert doc["mode"] == "quick"
    assert [s["number"] for s in doc["sections"]] == [1]
    (row,) = doc["sections"][0]["rows"]
    assert row["status"] in ("met", "not met")
    assert "bare loop" in out_md.read_text()


def test_gpu_code_runs_on_the_cpu_device() -> None:
    """The CUDA path is exercised here on torch's CPU device (this machine has no GPU)."""
    pytest.importorskip("torch")
    from bench.gpu import Torch

    truth = images.scene(64, 64)
    kernel = images.psf_gaussian(2.0, 9)
    blurred = images.blur(truth, kernel)
    t = Torch("cpu")
    ref = images.to_uint8(plain.wiener(images.to_float(blurred), kernel, 0.01, 32))
    assert np.abs(t.wiener(blurred, kernel, 0.01, 32).astype(int) - ref).max() <= 1
    ref = images.to_uint8(plain.richardson_lucy(images.to_float(blurred), kernel, 5, 32))
    assert np.abs(t.richardson_lucy(blurred, kernel, 5, 32).astype(int) - ref).max() <= 1


def test_defects_section_rows_measure_against_a_baseline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The section's mechanics on procedural scenes (its own images are kept out of tests)."""
    from bench.sections import defects
    from tests import damage

    monkeypatch.setattr(defects, "_rgb", lambda name, size: damage.procedural_scene(size, 3))
    row = defects.halftone(96)
    assert row.section == "12"
    per = row.details["per_image"]
    assert set(per) == set(defects.IMAGES)
    for figures in per.values():
        assert figures["ours_db"] > figures["damaged_db"]
    assert "best Gaussian blur" in row.figure
