"""Test images with ground truth, built from images that scikit-image's wheel ships.

The tests use camera, astronaut, coffee, moon and clock_motion; the benchmark uses others
(`UNUSED_BY_TESTS`), so that an operation's defaults, calibrated on the test images, are
measured on images they were not tuned on. Nothing is downloaded.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

# The fixtures' blur and PSFs: the benchmark degrades images exactly as the test media are.
from fixtures.generate import blur, psf_gaussian, psf_motion

__all__ = ["blur", "psf_gaussian", "psf_motion"]

Image = npt.NDArray[Any]

#: skimage.data images shipped in the wheel and used by no test or fixture.
UNUSED_BY_TESTS = ("brick", "chelsea", "coins", "rocket", "grass", "gravel", "cell", "retina")

#: The sources of the 1080p scene, in a 2 x 4 grid of 540 x 480 cells.
SCENE_TILES = ("rocket", "chelsea", "coins", "cell", "brick", "retina", "gravel", "grass")


def grey8(image: Image) -> Image:
    """BT.709 luma of an RGB image (as in the tests), or the grey image itself."""
    if image.ndim == 2:
        return np.asarray(image, np.uint8)
    rgb = image[..., :3].astype(np.float64)
    return np.asarray(np.rint(rgb @ np.array([0.2125, 0.7154, 0.0721])), np.uint8)


def skimage_grey(name: str) -> Image:
    loader = getattr(data, name)
    return grey8(np.asarray(loader()))


def _cell(image: Image, height: int, width: int) -> Image:
    """The centre ``height x width`` of ``image``, mirror-extended where it is smaller."""
    h, w = image.shape
    pad_y, pad_x = max(0, height - h), max(0, width - w)
    if pad_y or pad_x:
        image = np.pad(
            image, ((pad_y // 2, pad_y - pad_y // 2), (pad_x // 2, pad_x - pad_x // 2)), "symmetric"
        )
        h, w = image.shape
    y, x = (h - height) // 2, (w - width) // 2
    return np.ascontiguousarray(image[y : y + height, x : x + width])


def scene(height: int = 1080, width: int = 1920) -> Image:
    """A grey uint8 scene of native-resolution natural images (no upscaling, so the detail
    and noise statistics are a camera's), tiled 2 x 4."""
    rows, cols = 2, 4
    ch, cw = -(-height // rows), -(-width // cols)
    tiles = [_cell(skimage_grey(name), ch, cw) for name in SCENE_TILES]
    grid = np.vstack([np.hstack(tiles[r * cols : (r + 1) * cols]) for r in range(rows)])
    return np.ascontiguousarray(grid[:height, :width])


def add_noise(image: Image, sigma: float, rng: np.random.Generator) -> Image:
    """Additive white Gaussian noise of ``sigma`` (fraction of full scale), rounded, clipped."""
    top = float(np.iinfo(image.dtype).max)
    noisy = image.astype(np.float64) + rng.normal(0.0, sigma * top, image.shape)
    return np.asarray(np.clip(np.rint(noisy), 0, top).astype(image.dtype))


def shifted(image: Image, dx: float, dy: float) -> Image:
    """``image`` moved by (dx, dy) px, bilinear, reflected borders (as the fixture clip)."""
    m = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])
    h, w = image.shape[:2]
    return np.asarray(
        cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    )


def to_float(image: Image) -> npt.NDArray[np.float64]:
    return np.asarray(image, np.float64) / float(np.iinfo(image.dtype).max)


def to_uint8(values: Image) -> Image:
    """[0, 1] floats to uint8, rounded half to even and clipped (the classical lane's rule)."""
    return np.asarray(np.clip(np.rint(np.asarray(values) * 255.0), 0, 255).astype(np.uint8))


def psnr(truth: Image, test: Image, *, border: int = 0) -> float:
    """PSNR in dB of two uint8 images, optionally ignoring ``border`` px on each side."""
    if border:
        truth, test = truth[border:-border, border:-border], test[border:-border, border:-border]
    return float(peak_signal_noise_ratio(truth, test, data_range=255))


def ssim(truth: Image, test: Image) -> float:
    return float(structural_similarity(truth, test, data_range=255))
