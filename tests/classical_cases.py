"""Shared inputs for the classical-lane tests: sample images and minimal valid parameters."""

from __future__ import annotations

import hashlib
from typing import Any

import cv2
import numpy as np
from skimage import data

#: Parameters that have no default, per operation (a box, an angle, corner points).
REQUIRED: dict[str, dict[str, Any]] = {
    "crop": {"x": 10, "y": 8, "width": 50, "height": 40},
    "rotate": {"angle": 17.5},
    "perspective": {"corners": (20.0, 15.0, 140.0, 25.0, 130.0, 110.0, 12.0, 100.0)},
    "redact_fill": {"x": 10, "y": 8, "width": 50, "height": 40},
    "redact_pixelate": {"x": 10, "y": 8, "width": 50, "height": 40},
    "redact_blur": {"x": 10, "y": 8, "width": 50, "height": 40},
}
#: Extra parameters so that automatic estimators and optional paths are exercised too.
EXERCISE: dict[str, dict[str, Any]] = {
    "deconvolve_wiener": {"psf": "motion(length=7.5, angle=20)"},
    "deconvolve_richardson_lucy": {"psf": "defocus(radius=2)", "iterations": 5},
    "deconvolve_unsupervised_wiener": {"psf": "gaussian(sigma=1.2)"},
    "white_balance": {"method": "manual", "x": 40, "y": 30},
    "resize": {"scale": 0.75},
    "pixel_aspect": {"preset": "pal_4x3"},
    "lens_distortion": {"k1": -0.1, "k2": 0.01},
    "orient": {"transform": "rotate_90_cw"},
}


def sample_images() -> dict[str, np.ndarray[Any, Any]]:
    """uint8 and uint16, grey, RGB and RGBA: 120 x 160 crops of `astronaut`."""
    rgb8 = cv2.resize(data.astronaut(), (160, 120), interpolation=cv2.INTER_AREA)
    grey8 = cv2.cvtColor(rgb8, cv2.COLOR_RGB2GRAY)
    ramp = np.linspace(0, 255, 160, dtype=np.float64)[None, :].repeat(120, 0)
    alpha8 = np.rint(ramp).astype(np.uint8)
    rgba8 = np.dstack([rgb8, alpha8])

    # 16-bit with content in the low bits too, so that a silent 8-bit round trip shows.
    def to16(a: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        low = (np.arange(a.size) % 251 % 200).reshape(a.shape).astype(np.uint16)
        return np.asarray(a.astype(np.uint16) * 256 + low)  # at most 255 * 256 + 199

    return {
        "grey8": grey8,
        "rgb8": rgb8,
        "rgba8": rgba8,
        "grey16": to16(grey8),
        "rgb16": to16(rgb8),
        "rgba16": to16(rgba8),
    }


def params_for(name: str) -> dict[str, Any]:
    return {**REQUIRED.get(name, {}), **EXERCISE.get(name, {})}


def digest(array: np.ndarray[Any, Any]) -> str:
    h = hashlib.sha256()
    h.update(f"{array.dtype.str}{array.shape}".encode())
    h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()
