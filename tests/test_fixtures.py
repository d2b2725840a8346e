"""The generated media are deterministic and their ground truth is what the docstring says."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
from skimage import data
from skimage.metrics import peak_signal_noise_ratio as psnr

from fixtures.generate import blur
from tests.conftest import generate_fresh


def _read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if img.ndim == 3 else img


def test_generation_is_deterministic(media: Path, tmp_path: Path) -> None:
    first = json.loads((media / "MANIFEST.json").read_text())
    assert generate_fresh(tmp_path) == first
    assert len(first["files"]) == 20


def test_clean_images_are_the_skimage_originals(media: Path) -> None:
    assert np.array_equal(_read(media / "camera_clean.png"), data.camera())
    assert np.array_equal(_read(media / "astronaut_clean.png"), data.astronaut())
    assert np.array_equal(_read(media / "camera16.png"), data.camera().astype(np.uint16) * 257)


def test_noise_level_matches_sigma_20(media: Path) -> None:
    clean, noisy = data.camera(), _read(media / "camera_noisy.png")
    residual = noisy.astype(float) - clean
    # Clipping at 0 and 255 trims the tails a little.
    assert 17.5 < residual.std() < 20.5
    assert 21.5 < psnr(clean, noisy) < 23.5


def test_blurs_are_reproducible_from_their_psf(media: Path) -> None:
    for name, psf in (
        ("camera_blur_gauss.png", "psf_gauss.npy"),
        ("camera_blur_motion.png", "psf_motion.npy"),
    ):
        kernel = np.load(media / psf)
        assert abs(kernel.sum() - 1) < 1e-12
        blurred = _read(media / name)
        assert np.array_equal(blurred, blur(data.camera(), kernel))
        assert psnr(data.camera(), blurred) < 30


def test_low_contrast_range(media: Path) -> None:
    low = _read(media / "astronaut_lowcontrast.png")
    assert low.min() >= 96
    assert low.max() <= 160


def test_clip_is_noisy_jittered_and_close_to_clean(media: Path) -> None:
    truth = np.load(media / "cctv_clean.npz")
    clean, shifts = truth["frames"], truth["shifts"]
    assert clean.shape == (32, 240, 320, 3)
    assert np.abs(shifts).max() <= 0.75
    assert np.abs(shifts).max() > 0.3
    assert not np.array_equal(clean[0], clean[1])  # the camera moves
    with av.open(str(media / "cctv.mp4")) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == 32
    scores = [psnr(c, d) for c, d in zip(clean, decoded, strict=True)]
    # Noise (sigma 6) and lossy H.264 both degrade, but the scene stays recognisable.
    assert min(scores) > 24
    assert max(scores) < 40
