"""The value operations on OpenCV's integer paths (CLAHE 2, unsharp mask 2, Gaussian denoise
2): the same bits on
any thread count, with OpenCV's optimised code, IPP and CPU dispatch on or off; their
superseded float versions still found for replay; and what the integer path keeps (colour
differences) and changes (at most one level against the float version)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from skimage import data

from forensic.classical import clahe, denoise_gaussian, registry, unsharp_mask
from forensic.lanes import lookup
from forensic.recipe import Step
from tests.classical_cases import digest, sample_images

ROOT = Path(__file__).resolve().parent.parent
CASES: list[tuple[str, dict[str, Any]]] = [
    ("denoise_gaussian", {}),
    ("denoise_gaussian", {"sigma": 2.7}),
    ("clahe", {}),
    ("clahe", {"tile_size": 24, "clip_limit": 0.03}),
    ("unsharp_mask", {"radius": 1.2, "amount": 0.7}),
    ("unsharp_mask", {"radius": 3.3, "amount": 2.0, "threshold": 0.02}),
]


def _outputs() -> dict[str, str]:
    ops = registry()
    return {
        f"{name} {params} {kind}": digest(ops[name](image, **params))
        for name, params in CASES
        for kind, image in sample_images().items()
    }


@pytest.fixture
def opencv_settings() -> Iterator[None]:
    threads, optimised, ipp = cv2.getNumThreads(), cv2.useOptimized(), cv2.ipp.useIPP()
    yield
    cv2.setNumThreads(threads)
    cv2.setUseOptimized(optimised)
    cv2.ipp.setUseIPP(ipp)


@pytest.mark.usefixtures("opencv_settings")
def test_same_bits_on_any_thread_count_and_with_optimisations_off() -> None:
    cv2.setNumThreads(4)
    reference = _outputs()
    for threads, optimised, ipp in [(1, True, True), (2, True, False), (1, False, False)]:
        cv2.setNumThreads(threads)
        cv2.setUseOptimized(optimised)
        cv2.ipp.setUseIPP(ipp)
        assert _outputs() == reference, (threads, optimised, ipp)


def test_same_bits_with_the_simd_dispatch_disabled() -> None:
    """OpenCV picks AVX2/SSE4 kernels at run time; with them disabled (a CPU without them)
    the integer paths give the same bytes."""
    script = (
        "import json; from tests.test_integer_ops import _outputs; print(json.dumps(_outputs()))"
    )
    env = {**os.environ, "OPENCV_CPU_DISABLE": "AVX512_SKX,AVX2,FMA3,AVX,SSE4_2,SSE4_1"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == _outputs()


def test_superseded_versions_are_found_for_replay_only() -> None:
    for name in ("clahe", "unsharp_mask", "denoise_gaussian"):
        current = lookup(name)
        assert current is not None
        assert current.version == "2"
        old = lookup(name, "1")
        assert old is not None
        assert old.version == "1"
        assert old.impl is not current.impl
        assert lookup(name, "2") is current
        assert lookup(name, "9") is None
        assert registry()[name] is current  # a new run, `ops list`: only the current one
        assert Step(1, name, "classical", {}, op_version="1").operation() is old
        assert Step(1, name, "classical", {}).operation() is current
    # Version 1 keeps its own schema (clahe had a `bins` parameter).
    old_clahe = lookup("clahe", "1")
    assert old_clahe is not None
    assert "bins" in [p.name for p in old_clahe.params]


def test_unsharp_mask_2_is_close_to_version_1() -> None:
    """Version 2 rounds the luma and the blur (the detail is then off by up to 1.5 levels,
    times ``amount``) and the change (0.5): at most ``1.5 amount + 1`` levels from the float
    version, and within 45 dB PSNR of it (measured: 55 and 51 dB)."""
    image = data.astronaut()
    old = lookup("unsharp_mask", "1")
    assert old is not None
    for amount in (0.7, 1.5):
        params = {"radius": 1.5, "amount": amount}
        diff = np.abs(old(image, **params).astype(np.int32) - unsharp_mask(image, **params))
        assert diff.max() <= 1.5 * amount + 1, params
        psnr = 10 * np.log10(255.0**2 / np.mean(diff.astype(np.float64) ** 2))
        assert psnr > 45, (params, psnr)


def test_luma_operations_keep_the_colour_differences() -> None:
    """R - G and B - G are unchanged wherever no channel clipped: only luma changed."""
    image = data.astronaut()
    for out in (clahe(image), unsharp_mask(image, radius=1.5, amount=1.0)):
        assert not np.array_equal(out, image)
        top = out.max(axis=2)
        bottom = out.min(axis=2)
        inside = (top < 255) & (bottom > 0)
        assert inside.mean() > 0.5
        for a, b in ((0, 1), (2, 1)):
            before = image[..., a].astype(np.int32) - image[..., b]
            after = out[..., a].astype(np.int32) - out[..., b]
            assert np.array_equal(before[inside], after[inside])


def test_clahe_of_a_flat_image_is_the_image() -> None:
    for image in (np.full((40, 50), 77, np.uint8), np.full((30, 20, 3), 4000, np.uint16)):
        assert np.array_equal(clahe(image), image)


def test_unsharp_mask_threshold_leaves_small_detail_alone() -> None:
    rng = np.random.default_rng(3)
    flat = np.clip(128 + rng.normal(0, 1.0, (64, 64)), 0, 255).astype(np.uint8)
    assert np.array_equal(unsharp_mask(flat, amount=3.0, threshold=0.05), flat)
    assert not np.array_equal(unsharp_mask(flat, amount=3.0), flat)


def _unsharp_mask_by_opencv_calls(
    image: Any, radius: float, amount: float, threshold: float
) -> Any:
    """Unsharp mask 2 as first written (a table over |d| and OpenCV's saturating calls), the
    reference for the compiled pass that replaced them for speed: the bits must not change."""
    from forensic.ops.pixels import (
        add_luma_change,
        full_scale,
        integer_luma,
        join_alpha,
        split_alpha,
    )

    colour, alpha = split_alpha(image)
    y = integer_luma(colour)
    top = full_scale(image.dtype)
    blurred = cv2.GaussianBlur(y, (0, 0), radius, borderType=cv2.BORDER_REFLECT)
    levels = np.arange(top + 1, dtype=np.float64)
    gain = np.minimum(np.rint(amount * levels), top)
    gain[levels < threshold * top] = 0
    table = gain.astype(image.dtype)
    change = table[cv2.absdiff(y, blurred)]
    rise = np.where(y > blurred, change, 0).astype(image.dtype)
    fall = np.where(y < blurred, change, 0).astype(image.dtype)
    return join_alpha(add_luma_change(colour, rise, fall), alpha)


def test_unsharp_mask_gives_the_bits_of_its_opencv_calls() -> None:
    """Amounts with exact ties (0.5, 2.5: half to even), a threshold, 8 and 16 bits, grey,
    RGB, RGBA and a non-contiguous view."""
    rng = np.random.default_rng(11)
    rgb = data.astronaut()[::2, ::2]
    images = {
        "grey": data.camera()[100:300, 50:330],
        "rgb": rgb,
        "rgba": np.dstack([rgb, rng.integers(0, 256, rgb.shape[:2], dtype=np.uint8)]),
        "view": data.astronaut()[::3, 1::2, :],
        "noise": rng.integers(0, 256, (61, 83), dtype=np.uint8),
        "grey16": (
            data.camera()[:200, :240].astype(np.uint16) * 257 + rng.integers(0, 257, (200, 240))
        ).astype(np.uint16),
        "rgb16": rgb.astype(np.uint16) * 257,
    }
    for params in (
        {"radius": 1.2, "amount": 0.7, "threshold": 0.0},
        {"radius": 0.6, "amount": 0.5, "threshold": 0.0},
        {"radius": 2.5, "amount": 2.5, "threshold": 0.01},
        {"radius": 3.3, "amount": 10.0, "threshold": 0.3},
        {"radius": 1.0, "amount": 0.0, "threshold": 0.0},
    ):
        for kind, image in images.items():
            ours = unsharp_mask(image, **params)
            assert ours.dtype == image.dtype
            assert ours.shape == image.shape
            assert np.array_equal(ours, _unsharp_mask_by_opencv_calls(image, **params)), (
                kind,
                params,
            )


def _fixed_point_taps(sigma: float, dtype: Any) -> Any:
    """The integer taps of `denoise_gaussian`'s Notes: OpenCV's float64 kernel (its own
    `getGaussianKernel`, same size rule) scaled by ``2^s`` with error diffusion from the outer
    taps (half to even), the centre taking what is left."""
    eight = np.dtype(dtype) == np.uint8
    n = round(sigma * (6 if eight else 8) + 1) | 1
    one = 1 << (8 if eight else 16)
    kernel = cv2.getGaussianKernel(n, sigma, cv2.CV_64F).ravel()
    taps = np.zeros(n, np.int64)
    err = 0.0
    for i in range(n // 2):
        adjusted = kernel[i] * one + err
        taps[i] = taps[n - 1 - i] = int(np.rint(adjusted))
        err = adjusted - taps[i]
    taps[n // 2] = one - 2 * int(taps[: n // 2].sum())
    return taps


def _gaussian_by_the_formula(image: Any, sigma: float) -> Any:
    """``floor((sum_ij k_i k_j x + 2^(2s-1)) / 2^(2s))`` in exact integers, borders reflected
    (``dcba|abcd``), per channel: the Notes of `denoise_gaussian` written out in numpy."""
    taps = _fixed_point_taps(sigma, image.dtype)
    r = taps.size // 2
    shift = 16 if image.dtype == np.uint8 else 32
    planes = image[..., None] if image.ndim == 2 else image
    out = np.empty(planes.shape, image.dtype)
    for c in range(planes.shape[2]):
        x = np.pad(planes[..., c].astype(object), r, mode="symmetric")
        rows: Any = sum(int(t) * x[:, i : i + image.shape[1]] for i, t in enumerate(taps))
        both: Any = sum(int(t) * rows[i : i + image.shape[0], :] for i, t in enumerate(taps))
        out[..., c] = ((both + (1 << (shift - 1))) >> shift).astype(image.dtype)
    return out.reshape(image.shape)


def test_denoise_gaussian_is_the_integer_formula_of_its_notes() -> None:
    """Exact integers in Python (no overflow, no float) against OpenCV's fixed-point path,
    8 and 16 bits, kernel sizes 3 to 21, an image smaller than the kernel."""
    rng = np.random.default_rng(22)
    images: dict[str, Any] = {
        "grey8": rng.integers(0, 256, (23, 31), dtype=np.uint8),
        "rgb8": rng.integers(0, 256, (17, 19, 3), dtype=np.uint8),
        "tiny8": rng.integers(0, 256, (4, 6), dtype=np.uint8),
        "grey16": rng.integers(0, 65536, (21, 26), dtype=np.uint16),
        "rgb16": rng.integers(0, 65536, (13, 15, 3), dtype=np.uint16),
    }
    for sigma in (0.3, 0.8, 1.0, 1.7, 2.5):
        for kind, image in images.items():
            ours = denoise_gaussian(image, sigma=sigma)
            assert np.array_equal(ours, _gaussian_by_the_formula(image, sigma)), (kind, sigma)


def test_denoise_gaussian_2_is_within_two_levels_of_version_1() -> None:
    """The quantised taps move values by at most two levels from the float64 version (at 8
    and at 16 bits), by under 0.3 levels on average; alpha is carried unchanged."""
    old = lookup("denoise_gaussian", "1")
    assert old is not None
    rng = np.random.default_rng(4)
    noise = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    for kind, image in {**sample_images(), "noise": noise}.items():
        for sigma in (0.5, 1.0, 3.0):
            new = denoise_gaussian(image, sigma=sigma)
            diff = np.abs(new.astype(np.int64) - old(image, sigma=sigma))
            assert diff.max() <= 2, (kind, sigma, diff.max())
            assert diff.mean() < 0.3, (kind, sigma, diff.mean())
            if image.ndim == 3 and image.shape[2] == 4:
                assert np.array_equal(new[..., 3], image[..., 3])
