"""The value operations on OpenCV's integer paths (CLAHE 2, unsharp mask 2): the same bits on
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

from forensic.classical import clahe, registry, unsharp_mask
from forensic.lanes import lookup
from forensic.recipe import Step
from tests.classical_cases import digest, sample_images

ROOT = Path(__file__).resolve().parent.parent
CASES: list[tuple[str, dict[str, Any]]] = [
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
    for name in ("clahe", "unsharp_mask"):
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
