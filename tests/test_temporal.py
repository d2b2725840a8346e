"""Temporal operations: registration, averaging, stabilisation, multi-frame super-resolution.

Sequences come from fixtures/temporal.py (known sub-pixel shifts, warps and camera paths, fixed
seeds) built on images scikit-image's wheel ships. PSNR is measured on a central crop (a
16 px border left out) because registered frames are filled at the edges they no longer cover
and that fill is not an estimate of anything.
"""

from __future__ import annotations

import inspect
import itertools
import json
import os
import re
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from skimage import data
from skimage.registration import phase_cross_correlation

from fixtures import temporal as ft
from forensic.classical import (
    average_frames,
    get,
    register_frames,
    registry,
    stabilise,
    super_resolve_frames,
)
from forensic.classical.temporal import pixel_psf
from forensic.errors import ParameterError
from forensic.ops.framework import Operation
from tests.classical_cases import digest
from tests.test_classical_registry import check_metadata

TEMPORAL = {n: op for n, op in registry(include_temporal=True).items() if op.temporal != "frame"}
BORDER = 16
TRUTH = data.camera()[128:384, 128:384]  # 256 x 256 grey uint8
RAMP = TRUTH[:32, :32].copy()


def _stream(name: str, frames: Any, params: dict[str, Any] | None = None) -> list[Any]:
    return list(get(name).stream(frames, params or {})[1])


def _apply(name: str, frames: Any, params: dict[str, Any] | None = None) -> Any:
    """Output image(s) of a temporal operation: a list of frames for map, one image for reduce."""
    op = get(name)
    if op.temporal == "map":
        return [f for f, _ in _stream(name, frames, params)]
    return op.reduce(frames, params or {}).image


class Counting:
    """A frame source that records how many frames have been pulled."""

    def __init__(self, frames: list[Any]) -> None:
        self.frames = frames
        self.pulled = 0

    def __iter__(self) -> Iterator[Any]:
        for frame in self.frames:
            self.pulled += 1
            yield frame


# -- the registry's temporal contract ----------------------------------------------------


def test_temporal_operations_are_registered_apart_from_single_image_ones() -> None:
    assert set(TEMPORAL) == {
        "register_frames", "stabilise", "average_frames", "super_resolve_frames",
        "repair_film_dust",
    }  # fmt: skip
    assert not set(TEMPORAL) & set(registry()), "registry() lists single-image operations only"
    assert {n: op.temporal for n, op in TEMPORAL.items()} == {
        "register_frames": "map", "stabilise": "map",
        "average_frames": "reduce", "super_resolve_frames": "reduce",
        "repair_film_dust": "map",
    }  # fmt: skip
    assert all(op.temporal == "frame" for op in registry().values())
    assert get("register_frames").as_dict()["temporal"] == "map"
    assert get("crop").as_dict()["temporal"] == "frame"
    json.dumps({n: op.as_dict() for n, op in TEMPORAL.items()}, allow_nan=False)


@pytest.mark.parametrize("name", sorted(TEMPORAL))
def test_metadata_docstring_and_signature(name: str) -> None:
    op = TEMPORAL[name]
    check_metadata(op)
    assert op.category == "temporal"
    assert op.swgit_class == "advanced"
    doc = op.docstring
    for section in ("Parameters\n----------", "Returns\n-------", "Notes\n-----",
                    "References\n----------"):  # fmt: skip
        assert section in doc
    for p in op.params:
        assert re.search(rf"^{p.name}\b|, {p.name}\b", doc, re.M), f"{p.name} undocumented"
    params = list(inspect.signature(op.impl).parameters.values())
    assert params[0].name == "frames"
    assert all(p.kind is p.KEYWORD_ONLY for p in params[1:])
    assert [p.name for p in params[1:]] == [p.name for p in op.params]


def test_the_decorator_refuses_a_temporal_operation_without_frames_first() -> None:
    from forensic.ops.framework import operation

    with pytest.raises(TypeError, match="first argument must be 'frames'"):

        @operation(
            name="bad_temporal", version="1", category="temporal", swgit_class="advanced",
            summary="x.", description="x", references=(), temporal="reduce", into={},
        )  # fmt: skip
        def bad(image: Any) -> Any:
            return image


def test_each_kind_is_applied_its_own_way() -> None:
    frames = [TRUTH, TRUTH]
    with pytest.raises(ParameterError, match="is a temporal operation: it runs over a video "
                       "frame range") as err:  # fmt: skip
        get("average_frames").run(TRUTH)
    assert err.value.parameter == "image"
    with pytest.raises(ParameterError, match="reduce"):
        get("average_frames").stream(frames, {})
    with pytest.raises(ParameterError, match="stream"):
        get("register_frames").reduce(frames, {})
    with pytest.raises(ParameterError, match="one image at a time") as err:
        get("invert").reduce(frames, {})
    assert err.value.parameter == "frames"
    with pytest.raises(ParameterError, match="one image at a time"):
        get("invert").stream(frames, {})


def test_the_functions_apply_the_operations_directly() -> None:
    frames, _ = ft.jittered_frames(TRUTH[:64, :64], 3, noise_sigma=0.0, seed=1)
    image, details = average_frames(frames, method="median")
    assert image.shape == (64, 64)
    assert details == {"frames": 3, "method": "median"}
    out = list(register_frames(iter(frames)))
    assert len(out) == 3
    assert out[0][1]["matrix"] == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    with pytest.raises(ParameterError, match="'method'"):
        average_frames(frames, method="mode")


@pytest.mark.parametrize("name", sorted(TEMPORAL))
@pytest.mark.parametrize("kind", ["grey16", "rgb8", "rgba16"])
def test_dtype_shape_kept_input_untouched_details_json(name: str, kind: str) -> None:
    base = cv2.resize(data.astronaut(), (96, 72), interpolation=cv2.INTER_AREA)
    if kind == "grey16":
        base = cv2.cvtColor(base, cv2.COLOR_RGB2GRAY)
    frames, _ = ft.jittered_frames(base, 4, max_shift=1.0, noise_sigma=2 / 255, seed=2)
    if kind == "rgba16":
        frames = [np.dstack([f, np.full(f.shape[:2], 200, np.uint8)]) for f in frames]
    if kind.endswith("16"):
        frames = [(f.astype(np.uint16) * 257 + 11) for f in frames]
    before = [digest(f) for f in frames]
    op = get(name)
    if op.temporal == "map":
        bound, it = op.stream(frames, {})
        results = list(it)
        outs, details = [r[0] for r in results], [r[1] for r in results]
        assert [d["frame"] for d in details] == [0, 1, 2, 3]
    else:
        result = op.reduce(frames, {})
        bound, outs, details = result.params, [result.image], [result.details]
    assert [digest(f) for f in frames] == before, "an input frame was modified"
    scale = bound.get("scale", 1) if name == "super_resolve_frames" else 1
    for out in outs:
        assert out.dtype == frames[0].dtype
        assert out.shape == (frames[0].shape[0] * scale, frames[0].shape[1] * scale,
                             *frames[0].shape[2:])  # fmt: skip
        assert not any(np.shares_memory(out, f) for f in frames)
        if kind == "rgba16":
            assert np.all(out[BORDER // 4 : -BORDER // 4, BORDER // 4 : -BORDER // 4, 3]
                          == frames[0][0, 0, 3])  # fmt: skip
    json.dumps({"params": bound, "details": details}, allow_nan=False)


# -- registration ---------------------------------------------------------------------------


def test_translation_recovers_known_subpixel_shifts() -> None:
    shifts = np.array([[0, 0], [0.25, -0.5], [1.37, 0.81], [-2.62, 1.13], [0.5, 0.5],
                       [-0.13, -3.71], [4.2, -2.9], [0.05, 0.95]])  # fmt: skip
    frames = list(ft.iter_jittered(TRUTH, shifts, noise_sigma=2 / 255, seed=3))
    details = [d for _, d in _stream("register_frames", frames)]
    found = np.array([d["shift"] for d in details])
    error = np.abs(found - shifts).max()
    assert error < 0.1, error  # measured: 0.0075 px
    assert all(d["correlation"] > 0.95 for d in details)


def test_translation_under_heavy_noise() -> None:
    frames, shifts = ft.jittered_frames(TRUTH, 8, max_shift=3.0, noise_sigma=20 / 255, seed=3)
    found = np.array([d["shift"] for _, d in _stream("register_frames", frames)])
    assert np.abs(found - shifts).max() < 0.1  # measured: 0.061 px


def _corner_error(found: list[list[float]], true: Any, box: tuple[int, int, int, int]) -> float:
    x, y, w, h = box
    corners = np.array([[x, y, 1], [x + w, y, 1], [x + w, y + h, 1], [x, y + h, 1]], float).T
    a, b = np.asarray(found) @ corners, np.asarray(true) @ corners
    return float(np.abs(a[:2] / a[2] - b[:2] / b[2]).max())


def test_ecc_affine_recovers_a_known_affine() -> None:
    angle, zoom = np.radians(1.5), 1.02
    true = np.array([[zoom * np.cos(angle), -zoom * np.sin(angle), 2.3],
                     [zoom * np.sin(angle), zoom * np.cos(angle), -1.4], [0, 0, 1]])  # fmt: skip
    frames = [TRUTH, ft.warped(TRUTH, true[:2], noise_sigma=2 / 255, seed=4)]
    box = (48, 48, 160, 160)
    params = {"motion": "affine", "region_x": 48, "region_y": 48,
              "region_width": 160, "region_height": 160}  # fmt: skip
    (_, first), (aligned, d) = _stream("register_frames", frames, params)
    assert first["correlation"] == 1.0
    assert _corner_error(d["matrix"], true, box) < 0.1  # measured: 0.007 px
    assert d["correlation"] > 0.97
    crop = (slice(64, 192), slice(64, 192))
    assert ft.psnr(aligned[crop], TRUTH[crop]) > 30


def test_homography_registers_a_planar_target() -> None:
    """A number plate seen from a moving camera: a planar patch under a known homography,
    registered on the patch's region only."""
    true = np.array([[1.03, 0.04, -3.1], [-0.02, 0.98, 2.2], [6e-5, -4e-5, 1.0]])
    frames = [TRUTH, ft.warped(TRUTH, true, noise_sigma=2 / 255, seed=5)]
    box = (60, 80, 140, 90)
    params = {"motion": "homography", "region_x": 60, "region_y": 80,
              "region_width": 140, "region_height": 90}  # fmt: skip
    _, (_, d) = _stream("register_frames", frames, params)
    assert _corner_error(d["matrix"], true, box) < 0.1  # measured: 0.05 px
    assert d["region"] == [60, 80, 140, 90]


def test_a_frame_that_cannot_be_registered_is_named() -> None:
    other = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY), (256, 256))
    frames = [TRUTH, ft.warped(TRUTH, np.array([[1, 0, 1.5], [0, 1, -0.5]])), other]
    for motion in ("translation", "affine", "homography"):
        source = Counting(frames)
        _, it = get("register_frames").stream(source, {"motion": motion})
        assert next(it)[1]["frame"] == 0
        assert next(it)[1]["frame"] == 1
        with pytest.raises(ParameterError, match=r"frame 2 \(0 = first of the range\)") as err:
            next(it)
        assert err.value.parameter == "frames"
        assert "region" in str(err.value.hint)
    with pytest.raises(ParameterError, match="frame 2"):
        _apply("super_resolve_frames", [TRUTH[:64, :64], TRUTH[:64, :64], other[:64, :64]])
    with pytest.raises(ParameterError, match=r"correlates only .* with frame 1"):
        _apply("stabilise", frames, {"radius": 1})


# -- averaging --------------------------------------------------------------------------------


def test_registered_average_of_16_noisy_frames_gains_9_db() -> None:
    frames, _ = ft.jittered_frames(TRUTH, 16, max_shift=1.5, noise_sigma=20 / 255, seed=5)
    registered = (f for f, _ in get("register_frames").stream(frames, {})[1])
    average = get("average_frames").reduce(registered, {"method": "mean"})
    assert average.details == {"frames": 16, "method": "mean"}
    one = ft.psnr(frames[0], TRUTH, border=BORDER)
    gain = ft.psnr(average.image, TRUTH, border=BORDER) - one
    assert gain >= 9.0, gain  # measured: 11.6 dB (one frame: 22.5 dB)
    # Without registration the jitter blurs: registration is what makes the gain.
    unregistered = ft.psnr(_apply("average_frames", frames), TRUTH, border=BORDER) - one
    assert unregistered < gain - 3.0


def test_median_rejects_an_outlier_frame_that_the_mean_does_not() -> None:
    rng = np.random.default_rng(6)
    clean = TRUTH[:96, :96]
    frames = [ft.to_uint8(ft.as_float(clean) + rng.normal(0, 4 / 255, clean.shape))
              for _ in range(7)]  # fmt: skip
    salt = frames[3].copy()
    salt[rng.random(clean.shape) < 0.3] = 255
    frames[3] = salt
    mean = _apply("average_frames", frames, {"method": "mean"})
    median = _apply("average_frames", frames, {"method": "median"})
    assert ft.psnr(median, clean) > ft.psnr(mean, clean) + 6.0
    assert np.abs(median.astype(int) - clean).max() < 40


def test_mean_is_exact_and_rounds_half_to_even() -> None:
    a = np.array([[0, 1, 2, 3]], np.uint8)
    b = np.array([[1, 2, 3, 4]], np.uint8)
    assert _apply("average_frames", [a, b]).tolist() == [[0, 2, 2, 4]]
    big = [np.full((2, 2), v, np.uint16) for v in (65535, 65534, 65535)]
    assert _apply("average_frames", big).tolist() == [[65535, 65535], [65535, 65535]]


def test_mean_memory_does_not_grow_with_the_number_of_frames() -> None:
    def peak(n: int) -> int:
        frames = (np.full((128, 128, 3), k % 256, np.uint8) for k in range(n))
        tracemalloc.start()
        get("average_frames").reduce(frames, {})
        size = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return size

    assert peak(64) < 1.3 * peak(8)


# -- stabilisation ----------------------------------------------------------------------------


def _positions(frames: list[Any]) -> Any:
    """Content position of each frame relative to the first, chained from consecutive
    phase correlations on the central part (independent of the operation's own estimates)."""
    steps = [np.zeros(2)]
    for a, b in itertools.pairwise(frames):
        crop = (slice(40, -40), slice(40, -40))
        shift, _, _ = phase_cross_correlation(a[crop].astype(float), b[crop].astype(float),
                                              upsample_factor=20)  # fmt: skip
        steps.append(-shift[::-1])
    return np.cumsum(steps, axis=0)


def _jitter(positions: Any) -> float:
    """RMS distance of the positions from the straight line that fits them best (the pan)."""
    t = np.arange(len(positions))
    fit = np.polynomial.polynomial.polyfit(t, positions, 1)
    line = np.polynomial.polynomial.polyval(t, fit).T
    return float(np.sqrt(np.mean((positions - line) ** 2)))


def test_stabilise_removes_shake_and_keeps_the_pan() -> None:
    scene = data.camera()
    path = ft.shaky_path(40, pan=(0.6, 0.25), jitter=2.0, seed=8)
    frames = list(ft.iter_shaky(scene, path, size=(192, 256), seed=9))
    results = _stream("stabilise", frames, {"radius": 8})
    before, after = _jitter(_positions(frames)), _jitter(_positions([f for f, _ in results]))
    assert before > 1.5
    assert after < 0.35 * before, (before, after)  # measured: 2.1 px -> 0.44 px
    trajectory = np.array([d["trajectory"][:2] for _, d in results])
    assert np.abs(trajectory - path).max() < 0.2, "the measured path is the camera's"
    smoothed = np.array([d["smoothed"][:2] for _, d in results])
    assert np.abs(smoothed[-1] - path[-1]).max() < 5, "the pan is kept"


def test_stabilise_euclidean_measures_rotation() -> None:
    centre = (127.5, 127.5)
    frames = [cv2.warpAffine(TRUTH, cv2.getRotationMatrix2D(centre, a, 1.0), (256, 256),
                             flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
              for a in (0.0, 1.0, -0.5, 0.8, 0.0)]  # fmt: skip
    details = [d for _, d in _stream("stabilise", frames, {"motion": "euclidean", "radius": 2})]
    angles = [d["trajectory"][2] for d in details]
    # The content turned anticlockwise on screen by a: the camera turned by a the other way,
    # which is +a in image (y-down) axes.
    assert np.allclose(angles, [0.0, 1.0, -0.5, 0.8, 0.0], atol=0.05), angles


@pytest.mark.parametrize("radius", [1, 3])
def test_map_operations_pull_frames_lazily(radius: int) -> None:
    frames, _ = ft.jittered_frames(TRUTH[:64, :64], 10, max_shift=1.0, noise_sigma=0, seed=1)
    source = Counting(frames)
    _, it = get("stabilise").stream(source, {"radius": radius})
    assert source.pulled == 0
    for k, (_, details) in enumerate(it):
        assert details["frame"] == k
        assert source.pulled <= k + 1 + radius
    source = Counting(frames)
    for k, _ in enumerate(get("register_frames").stream(source, {})[1]):
        assert source.pulled == k + 1


# -- super-resolution -------------------------------------------------------------------------


def test_multiframe_super_resolution_beats_bicubic_by_1_5_db() -> None:
    low, shifts = ft.low_resolution_frames(TRUTH, 16, scale=2, noise_sigma=2 / 255, seed=7)
    bicubic = cv2.resize(low[0], None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    result = get("super_resolve_frames").reduce(low, {"scale": 2})
    assert result.image.shape == TRUTH.shape
    gain = ft.psnr(result.image, TRUTH, border=BORDER) - ft.psnr(bicubic, TRUTH, border=BORDER)
    assert gain >= 1.5, gain  # measured: 3.0 dB
    d = result.details
    assert np.abs(np.array(d["shifts"]) - shifts).max() < 0.1
    assert d["frames"] == 16
    assert 0 <= d["filled_fraction"] < 0.01
    assert result.params["balance"] == d["balance"], "the automatic balance is recorded"
    for variant in ({"deconvolution": "richardson_lucy"}, {"method": "median"}):
        image = _apply("super_resolve_frames", low, variant)
        assert ft.psnr(image, TRUTH, border=BORDER) > ft.psnr(bicubic, TRUTH, border=BORDER) + 1


def test_super_resolution_fills_unmeasured_positions_from_measured_ones() -> None:
    low, _ = ft.low_resolution_frames(TRUTH[:128, :128], 3, scale=4, noise_sigma=0, seed=2)
    result = get("super_resolve_frames").reduce(low, {"scale": 4, "deconvolution": "none"})
    assert result.details["filled_fraction"] > 0.5  # 3 frames cannot reach 16 phases
    assert result.image.shape == (128, 128)
    # Every fine pixel holds a value near the truth, filled ones included (no zeros, no NaN).
    assert ft.psnr(result.image, TRUTH[:128, :128], border=BORDER) > 20


def test_pixel_psf_is_a_centred_box() -> None:
    assert np.allclose(pixel_psf(3, 0.0), np.full((3, 3), 1 / 9))
    two = pixel_psf(2, 0.0)
    assert two.shape == (3, 3)
    assert np.allclose(two[1], [0.125, 0.25, 0.125])
    blurred = pixel_psf(2, 1.0)
    assert blurred.shape[0] > 3
    assert abs(blurred.sum() - 1) < 1e-12
    assert np.allclose(blurred, blurred[::-1, ::-1])


# -- errors and determinism -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params", "param"),
    [
        ("register_frames", {"motion": "spin"}, "motion"),
        ("register_frames", {"min_correlation": 2}, "min_correlation"),
        ("register_frames", {"region_x": 300}, "region_x"),
        ("register_frames", {"region_y": 20, "region_height": 250}, "region_height"),
        ("register_frames", {"region_width": 8}, "region_width"),
        ("register_frames", {"sigmaa": 1}, "sigmaa"),
        ("stabilise", {"radius": 0}, "radius"),
        ("stabilise", {"motion": "affine"}, "motion"),
        ("stabilise", {"smoothing": "kalman"}, "smoothing"),
        ("average_frames", {"method": "mode"}, "method"),
        ("super_resolve_frames", {"scale": 5}, "scale"),
        ("super_resolve_frames", {"scale": 2.5}, "scale"),
        ("super_resolve_frames", {"balance": 0}, "balance"),
        ("super_resolve_frames", {"deconvolution": "magic"}, "deconvolution"),
    ],
)
def test_errors_name_the_parameter(name: str, params: dict[str, Any], param: str) -> None:
    with pytest.raises(ParameterError) as err:
        _apply(name, [TRUTH, TRUTH], params)
    assert err.value.parameter == param
    assert f"'{param}'" in str(err.value)
    assert name in str(err.value)


@pytest.mark.parametrize("name", sorted(TEMPORAL))
@pytest.mark.parametrize(
    ("frames", "fragment"),
    [
        ([], "is empty"),
        ([RAMP, RAMP.astype(np.float32)], "frame 1 has dtype"),
        ([RAMP, RAMP[:, :31]], "frame 1 is (32, 31)"),
        ([RAMP, RAMP.astype(np.uint16)], "frame 1 is (32, 32) uint16"),
        ([np.zeros((32, 32, 2), np.uint8)], "frame 0 has shape"),
        (np.zeros((4, 32, 32), np.uint8), "must be an iterable of images"),
        (None, "must be an iterable of images"),
    ],
)
def test_bad_frames_are_named_with_their_position(name: str, frames: Any, fragment: str) -> None:
    with pytest.raises(ParameterError, match=re.escape(fragment)) as err:
        _apply(name, frames)
    assert err.value.parameter == "frames"


def _everything() -> dict[str, str]:
    frames, _ = ft.jittered_frames(TRUTH[:96, :96], 6, max_shift=1.5, noise_sigma=8 / 255, seed=4)
    low, _ = ft.low_resolution_frames(TRUTH[:128, :128], 6, scale=2, seed=4)
    runs = {
        "translation": _apply("register_frames", frames),
        "affine": _apply("register_frames", frames, {"motion": "affine"}),
        "homography": _apply("register_frames", frames, {"motion": "homography"}),
        "stabilise": _apply("stabilise", frames, {"motion": "euclidean", "radius": 2}),
        "mean": [_apply("average_frames", frames)],
        "median": [_apply("average_frames", frames, {"method": "median"})],
        "sr": [_apply("super_resolve_frames", low)],
        "sr_rl": [_apply("super_resolve_frames", low, {"deconvolution": "richardson_lucy"})],
    }
    return {k: "".join(digest(f) for f in v) for k, v in runs.items()}


def test_same_output_twice_and_whatever_the_thread_count() -> None:
    first = _everything()
    assert _everything() == first
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        single = _everything()
    finally:
        cv2.setNumThreads(threads)
    assert single == first


def test_operation_objects_are_the_registered_ones() -> None:
    for fn in (register_frames, stabilise, average_frames, super_resolve_frames):
        op = fn.operation  # type: ignore[attr-defined]
        assert isinstance(op, Operation)
        assert get(op.name) is op


@pytest.mark.parametrize("name", ["register_frames", "stabilise", "super_resolve_frames"])
def test_featureless_or_tiny_frames_are_refused_clearly(name: str) -> None:
    flat = [np.full((40, 40), 100, np.uint8)] * 3
    with pytest.raises(ParameterError, match=r"uniform in .*no detail") as err:
        _apply(name, flat)
    assert err.value.parameter == "frames"
    tiny = [np.arange(64, dtype=np.uint8).reshape(8, 8)] * 2
    with pytest.raises(ParameterError, match="16") as err:
        _apply(name, tiny)
    assert err.value.parameter == ("region_width" if name == "register_frames" else "frames")


def test_flat_frames_average_to_themselves() -> None:
    flat = np.full((24, 32, 3), (10, 60000, 900), np.uint16)
    for method in ("mean", "median"):
        assert np.array_equal(_apply("average_frames", [flat] * 5, {"method": method}), flat)


def test_phase_correlation_does_not_depend_on_blas_or_fft_threads(tmp_path: Path) -> None:
    """The upsampled DFT is a matrix product (BLAS) and the FFTs may use two workers: the
    estimates and the registered frames must be the same on one thread."""
    import subprocess
    import sys

    code = (
        "import hashlib, numpy as np\n"
        "import forensic.classical.temporal as t\n"
        "from fixtures.temporal import jittered_frames\n"
        "from skimage import data\n"
        "import sys\n"
        "t.FFT_WORKERS = int(sys.argv[1])\n"
        "frames, _ = jittered_frames(data.camera()[:200, :240], 4, max_shift=1.5, "
        "noise_sigma=5 / 255, seed=3)\n"
        "out = list(t.register_frames(frames))\n"
        "h = hashlib.sha256()\n"
        "for image, details in out:\n"
        "    h.update(image.tobytes()); h.update(repr(details['shift']).encode())\n"
        "print(h.hexdigest())\n"
    )
    root = Path(__file__).resolve().parents[1]
    digests = set()
    for threads, workers in (("1", "1"), ("2", "2")):
        env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads}
        done = subprocess.run(
            [sys.executable, "-c", code, workers],
            capture_output=True, text=True, env=env, cwd=root, check=True,
        )  # fmt: skip
        digests.add(done.stdout.strip())
    assert len(digests) == 1
