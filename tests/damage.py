"""Synthetic damage for the photograph and film tests: dust, scratches, a tear, a stain, fading,
a halftone screen, vignetting, and a film clip with moving dust. Every function returns the
damaged image and the ground-truth mask of what it damaged; seeds are explicit."""

from __future__ import annotations

import itertools
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

Image = NDArray[Any]
Mask = NDArray[np.bool_]


def to8(values: NDArray[Any]) -> Image:
    return np.rint(np.clip(values, 0.0, 1.0) * 255).astype(np.uint8)


def add_dust(image: Image, count: int, seed: int) -> tuple[Image, Mask]:
    """Small dark or bright specks (radius 1 to 3 px, sometimes elongated)."""
    rng = np.random.default_rng(seed)
    out = image.astype(np.float64) / 255
    h, w = image.shape[:2]
    truth = np.zeros((h, w), bool)
    for _ in range(count):
        canvas = np.zeros((h, w), np.uint8)
        centre = (int(rng.integers(8, w - 8)), int(rng.integers(8, h - 8)))
        axes = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        cv2.ellipse(canvas, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        spot = canvas.astype(bool)
        level = rng.uniform(0.0, 0.12) if rng.random() < 0.6 else rng.uniform(0.9, 1.0)
        out[spot] = level
        truth |= spot
    return to8(out), truth


def add_scratches(image: Image, count: int, seed: int) -> tuple[Image, Mask]:
    """Thin straight lines (1 px, some 2 px), 80 to 220 px long, bright or dark."""
    rng = np.random.default_rng(seed)
    out = image.astype(np.float64) / 255
    h, w = image.shape[:2]
    truth = np.zeros((h, w), bool)
    for _ in range(count):
        canvas = np.zeros((h, w), np.uint8)
        length = rng.uniform(80, 220)
        angle = rng.uniform(0, np.pi)
        x0, y0 = rng.uniform(0.15 * w, 0.85 * w), rng.uniform(0.15 * h, 0.85 * h)
        x1, y1 = x0 + length * np.cos(angle), y0 + length * np.sin(angle)
        thickness = 1 if rng.random() < 0.7 else 2
        cv2.line(canvas, (int(x0), int(y0)), (int(x1), int(y1)), 1, thickness)
        line = canvas.astype(bool)
        level = rng.uniform(0.88, 1.0) if rng.random() < 0.5 else rng.uniform(0.0, 0.1)
        out[line] = level
        truth |= line
    return to8(out), truth


def add_tear(image: Image, seed: int) -> tuple[Image, Mask]:
    """A jagged band of bare paper (off-white) from one edge across the picture, 5 to 11 px
    wide."""
    rng = np.random.default_rng(seed)
    out = image.astype(np.float64) / 255
    h, w = image.shape[:2]
    canvas = np.zeros((h, w), np.uint8)
    x = rng.uniform(0.3 * w, 0.7 * w)
    points = []
    for y in np.linspace(0, 0.75 * h, 24):
        x += rng.normal(0, 4.0)
        points.append((x, y))
    for (xa, ya), (xb, yb) in itertools.pairwise(points):
        width = int(rng.integers(5, 12))
        cv2.line(canvas, (int(xa), int(ya)), (int(xb), int(yb)), 1, width)
    band = canvas.astype(bool)
    paper = np.array([0.96, 0.95, 0.92]) if out.ndim == 3 else 0.95
    out[band] = paper
    out = np.clip(out + 0.004 * rng.standard_normal(out.shape) * band[..., None]
                  if out.ndim == 3 else out, 0, 1)  # fmt: skip
    return to8(out), band


def add_stain(image: Image, seed: int) -> tuple[Image, Mask]:
    """A water stain: a large irregular blob tinted yellow-brown with soft edges."""
    rng = np.random.default_rng(seed)
    out = image.astype(np.float64) / 255
    h, w = image.shape[:2]
    noise = ndimage.gaussian_filter(rng.standard_normal((h, w)), 12)
    noise /= np.abs(noise).max()
    cy, cx = rng.uniform(0.3 * h, 0.7 * h), rng.uniform(0.3 * w, 0.7 * w)
    radius = rng.uniform(0.12, 0.18) * min(h, w)
    y, x = np.mgrid[0:h, 0:w]
    d = np.hypot(y - cy, x - cx) / radius + 0.35 * noise
    strength = np.clip((1.15 - d) / 0.3, 0, 1)
    tint = np.array([1.0, 0.86, 0.62])
    if out.ndim == 3:
        out = out * (1 - strength[..., None] * (1 - tint)) + 0.04 * strength[..., None]
    else:
        out = out * (1 - 0.2 * strength)
    return to8(out), strength > 0.5


def fade(image: Image) -> Image:
    """Dye fading: each channel keeps less of its range and gains a stain of its own (cyan
    dye lost most: red channel lifted)."""
    f = image.astype(np.float64) / 255
    return to8(np.array([0.14, 0.08, 0.05]) + f * np.array([0.70, 0.78, 0.62]))


def colour_cast(image: Image) -> Image:
    """A pure illuminant cast: one gain per channel."""
    return to8(image.astype(np.float64) / 255 * np.array([1.0, 0.82, 0.6]))


def screen(image: Image, period: float = 6.0, angle: float = 45.0) -> Image:
    """A scanned halftone screen: the picture modulated by a clustered-dot pattern (period
    ``period`` px at ``angle`` degrees, modulation 25 %)."""
    f = image.astype(np.float64) / 255
    h, w = f.shape[:2]
    th = np.deg2rad(angle)
    y, x = np.mgrid[0:h, 0:w]
    u = x * np.cos(th) + y * np.sin(th)
    v = -x * np.sin(th) + y * np.cos(th)
    dots = 0.25 * np.cos(2 * np.pi * u / period) * np.cos(2 * np.pi * v / period)
    return to8(f * (1 + (dots if f.ndim == 2 else dots[..., None])))


def binary_halftone(grey: Image, period: float = 6.0) -> Image:
    """A true halftone: the grey picture thresholded against a 45-degree clustered-dot screen,
    then scanned (Gaussian blur, sigma 1 px)."""
    g = grey.astype(np.float64) / 255
    h, w = g.shape
    y, x = np.mgrid[0:h, 0:w]
    u, v = (x + y) / np.sqrt(2), (y - x) / np.sqrt(2)
    threshold = 0.5 + 0.25 * (np.cos(2 * np.pi * u / period) + np.cos(2 * np.pi * v / period))
    return to8(ndimage.gaussian_filter((g > threshold).astype(np.float64), 1.0))


def vignette(image: Image, strength: float = 0.45) -> tuple[Image, NDArray[np.float64]]:
    """Radial falloff ``1 - strength r^2`` (r = 1 at the corners); returns the falloff too."""
    h, w = image.shape[:2]
    y = (np.arange(h) - (h - 1) / 2)[:, None]
    x = (np.arange(w) - (w - 1) / 2)[None, :]
    r2 = (y * y + x * x) / ((h - 1) ** 2 / 4 + (w - 1) ** 2 / 4)
    falloff = 1 - strength * r2
    f = image.astype(np.float64) / 255
    return to8(f * (falloff if f.ndim == 2 else falloff[..., None])), falloff


def procedural_scene(size: int, seed: int) -> Image:
    """A scene with no radial structure: smooth random colour fields plus random rectangles
    and discs (for the fitted vignetting model, which a centred subject would mislead)."""
    rng = np.random.default_rng(seed)
    base = np.stack(
        [ndimage.gaussian_filter(rng.standard_normal((size, size)), 25) for _ in range(3)], 2
    )
    base = 0.55 + 0.25 * base / np.abs(base).max()
    canvas = (base * 255).astype(np.uint8)
    for _ in range(40):
        colour = tuple(int(c) for c in rng.integers(40, 230, 3))
        x, y = (int(v) for v in rng.integers(0, size, 2))
        if rng.random() < 0.5:
            cv2.rectangle(
                canvas,
                (x, y),
                (x + int(rng.integers(5, 40)), y + int(rng.integers(5, 40))),
                colour,
                -1,
            )
        else:
            cv2.circle(canvas, (x, y), int(rng.integers(3, 20)), colour, -1)
    return np.asarray(cv2.GaussianBlur(canvas, (0, 0), 0.8))


def film_clip(
    image: Image, frames: int, seed: int, *, dust_per_frame: int = 25, pan: float = 1.5
) -> tuple[list[Image], list[Image], list[Mask]]:
    """A panning shot of ``image`` (``pan`` px per frame to the right and 0.5 px down, cut
    from the centre), each frame with its own dust. Returns (clean, dusty, dust masks)."""
    h, w = image.shape[:2]
    size_y, size_x = h - 64, w - 64
    clean, dusty, masks = [], [], []
    for t in range(frames):
        m = np.float32([[1, 0, -pan * t], [0, 1, -0.5 * t]])
        moved = cv2.warpAffine(
            image, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
        )
        frame = np.ascontiguousarray(moved[32 : 32 + size_y, 32 : 32 + size_x])
        damaged, truth = add_dust(frame, dust_per_frame, seed + t)
        clean.append(frame)
        dusty.append(damaged)
        masks.append(truth)
    return clean, dusty, masks


def precision_recall(predicted: Mask, truth: Mask, tolerance: int = 2) -> tuple[float, float]:
    """Pixel precision and recall, a pixel counting as right within ``tolerance`` px."""
    if tolerance:
        near_truth = ndimage.binary_dilation(truth, iterations=tolerance)
        near_pred = ndimage.binary_dilation(predicted, iterations=tolerance)
    else:
        near_truth, near_pred = truth, predicted
    precision = float((predicted & near_truth).sum() / max(predicted.sum(), 1))
    recall = float((truth & near_pred).sum() / max(truth.sum(), 1))
    return precision, recall
