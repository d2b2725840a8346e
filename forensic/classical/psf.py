"""Point-spread-function models, their text form, and blind estimation of linear motion blur.

A PSF is given to the deconvolution operations as a short text that the journal records
verbatim, e.g. ``gaussian(sigma=2)``, ``motion(length=15, angle=30)``, ``defocus(radius=4)``
or ``motion(auto)`` (length and angle estimated from the image by `estimate_motion_blur`).

Angles are in degrees, anticlockwise from the image's +x axis (rightwards) with +y upwards on
screen, i.e. a row index that *decreases*. A motion PSF is symmetric, so angle and angle+180
are the same blur; estimates are reported in [0, 180).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from forensic.errors import ParameterError

Float = NDArray[np.float64]

_MODELS = {
    "gaussian": {"sigma": (0.1, 25.0), "size": (3, 151)},
    "motion": {"length": (1.0, 100.0), "angle": (-360.0, 360.0)},
    "defocus": {"radius": (0.5, 50.0)},
}
_REQUIRED = {"gaussian": ("sigma",), "motion": ("length", "angle"), "defocus": ("radius",)}
PSF_GRAMMAR = (
    "gaussian(sigma=S[, size=N]) | motion(length=L, angle=A) | motion(auto) | defocus(radius=R); "
    "sigma in [0.1, 25] px, size odd in [3, 151] px, length in [1, 100] px, angle in degrees "
    "anticlockwise from +x, radius in [0.5, 50] px; or the kernel itself as rows of numbers "
    "(odd height and width up to 151, non-negative, normalised to sum 1)"
)
MAX_KERNEL = 151


@dataclass(frozen=True)
class PSFSpec:
    """A parsed PSF. ``auto`` is true for ``motion(auto)``; model ``kernel`` carries the
    numbers of a measured or saved PSF in ``array`` (rows of floats)."""

    model: str
    values: tuple[tuple[str, float], ...] = ()
    auto: bool = False
    array: tuple[tuple[float, ...], ...] = ()

    def record(self) -> str | list[list[float]]:
        """The value the journal records: the canonical text, or the kernel's rows."""
        return [list(row) for row in self.array] if self.model == "kernel" else str(self)

    def get(self, name: str) -> float | None:
        return dict(self.values).get(name)

    def __str__(self) -> str:
        if self.model == "kernel":
            return f"kernel({len(self.array[0])} x {len(self.array)})"
        if self.auto:
            return f"{self.model}(auto)"
        inner = ", ".join(f"{k}={_fmt(v)}" for k, v in self.values)
        return f"{self.model}({inner})"

    def kernel(self) -> Float:
        if self.auto:
            raise ValueError("an automatic PSF must be estimated before use")
        if self.model == "kernel":
            k = np.asarray(self.array, np.float64)
            return np.asarray(k / k.sum(), np.float64)
        v = dict(self.values)
        if self.model == "gaussian":
            return psf_gaussian(v["sigma"], size=None if "size" not in v else int(v["size"]))
        if self.model == "motion":
            return psf_motion(v["length"], v["angle"])
        return psf_defocus(v["radius"])


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.4g}"


_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_SPEC = re.compile(r"^\s*([a-z]+)\s*\((.*)\)\s*$")


def parse_psf(text: str, *, op: str = "psf", parameter: str = "psf") -> PSFSpec:
    """Parse a PSF text; raise `ParameterError` naming ``parameter`` when it is malformed."""

    def bad(why: str) -> ParameterError:
        return ParameterError(op, parameter, f"{why} in {text!r}", hint=f"allowed: {PSF_GRAMMAR}")

    m = _SPEC.match(text)
    if m is None or m.group(1) not in _MODELS:
        raise bad("is not a PSF model")
    model, body = m.group(1), m.group(2).strip()
    if body == "auto":
        if model != "motion":
            raise bad("'auto' is only available for motion")
        return PSFSpec(model, auto=True)
    values: dict[str, float] = {}
    for item in filter(None, (s.strip() for s in body.split(","))):
        key, sep, raw = (s.strip() for s in item.partition("="))
        if not sep or key not in _MODELS[model]:
            raise bad(f"unknown or malformed value {item!r} for {model}")
        if key in values:
            raise bad(f"{key} is given twice")
        if not _NUMBER.match(raw):
            raise bad(f"{key} is not a number ({raw!r})")
        number = float(raw)
        lo, hi = _MODELS[model][key]
        if not (math.isfinite(number) and lo <= number <= hi):
            raise bad(f"{key}={raw} is outside [{_fmt(lo)}, {_fmt(hi)}]")
        if key == "size" and (not number.is_integer() or int(number) % 2 == 0):
            raise bad(f"size={raw} must be an odd integer")
        values[key] = number
    missing = [k for k in _REQUIRED[model] if k not in values]
    if missing:
        raise bad(f"{model} needs {', '.join(missing)}")
    return PSFSpec(model, tuple((k, values[k]) for k in _MODELS[model] if k in values))


def psf_from_rows(rows: Any, *, op: str = "psf", parameter: str = "psf") -> PSFSpec:
    """Check a kernel given as numbers (rows of a 2-D list or array) and wrap it.

    A measured PSF (from a point light in the scene) or one saved by another tool. It must be
    2-D with odd sides so that its centre is a pixel, finite, non-negative, not all zero.
    """

    def bad(why: str) -> ParameterError:
        return ParameterError(op, parameter, why, hint=f"allowed: {PSF_GRAMMAR}")

    try:
        k = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError):
        raise bad("is not a PSF text nor a rectangular table of numbers") from None
    if k.ndim != 2:
        raise bad(f"has {k.ndim} dimension(s); a kernel is a 2-D table of numbers")
    h, w = k.shape
    if h % 2 == 0 or w % 2 == 0 or max(h, w) > MAX_KERNEL:
        raise bad(f"is {w} x {h}; a kernel needs odd width and height, at most {MAX_KERNEL}")
    if not np.all(np.isfinite(k)) or np.any(k < 0) or k.sum() <= 0:
        raise bad("must hold finite, non-negative numbers that are not all zero")
    return PSFSpec("kernel", array=tuple(tuple(float(v) for v in row) for row in k))


def validate_psf(op: str, value: Any) -> str | list[list[float]]:
    """Registry validator for a ``psf`` parameter: canonical text, or the kernel's rows."""
    if isinstance(value, str):
        return parse_psf(value, op=op).record()
    return psf_from_rows(value, op=op).record()


def psf_gaussian(sigma: float, *, size: int | None = None) -> Float:
    """Sampled isotropic Gaussian PSF, normalised to sum 1.

    ``size`` (odd) defaults to ``2 ceil(3 sigma) + 1``. Models atmospheric turbulence and the
    combined blur of many small causes (lens, sensor, compression).
    """
    if size is None:
        size = 2 * math.ceil(3 * sigma) + 1
    ax = np.arange(size) - (size - 1) / 2
    g = np.exp(-(ax**2) / (2 * sigma**2))
    k = np.outer(g, g)
    return np.asarray(k / k.sum(), np.float64)


def psf_motion(length: float, angle: float) -> Float:
    """Uniform linear motion of ``length`` px at ``angle`` degrees.

    The continuous segment from ``-length/2`` to ``+length/2`` through the kernel centre is
    integrated over each pixel's square: the segment is cut into 32 pieces per pixel and each
    piece is credited to the pixel containing its midpoint. At 0 degrees and odd integer
    ``length`` this is exactly ``length`` pixels of weight ``1 / length``; its spectrum has
    zeros every ``1 / length`` cycles per pixel along the motion direction.
    """
    half = length / 2
    size = 2 * math.ceil(half + 1) + 1
    c = (size - 1) / 2
    n = max(1, math.ceil(length * 32))
    t = -half + (np.arange(n) + 0.5) * (length / n)
    theta = math.radians(angle)
    xs = np.rint(c + t * math.cos(theta)).astype(int)
    ys = np.rint(c - t * math.sin(theta)).astype(int)
    k = np.zeros((size, size), np.float64)
    np.add.at(k, (ys, xs), 1.0)
    return np.asarray(k / k.sum(), np.float64)


def psf_defocus(radius: float) -> Float:
    """Uniform disc ("pillbox") of ``radius`` px, the geometric-optics model of defocus.

    Edge pixels get their covered area, estimated by 16 x 16 supersampling.
    """
    r = math.ceil(radius)
    size = 2 * r + 3
    c = (size - 1) / 2
    sub = (np.arange(16) + 0.5) / 16 - 0.5
    ax = np.arange(size) - c
    fine = (ax[:, None] + sub[None, :]).ravel()
    inside = (fine[:, None] ** 2 + fine[None, :] ** 2) <= radius**2
    k = inside.reshape(size, 16, size, 16).mean(axis=(1, 3))
    return np.asarray(k / k.sum(), np.float64)


# -- Blind estimation of linear motion blur ------------------------------------------------


def periodic_component(image: Float) -> Float:
    """The periodic part of Moisan's periodic-plus-smooth decomposition.

    The DFT treats an image as periodic; the jump between opposite borders adds a bright cross
    to its spectrum which would swamp the faint pattern of a blur. Subtracting the smooth
    component (the solution of a Poisson equation driven by the border jumps) removes the
    cross without windowing, which would itself blur the spectrum.
    """
    u = np.asarray(image, np.float64)
    h, w = u.shape
    v = np.zeros_like(u)
    v[0, :] += u[-1, :] - u[0, :]
    v[-1, :] += u[0, :] - u[-1, :]
    v[:, 0] += u[:, -1] - u[:, 0]
    v[:, -1] += u[:, 0] - u[:, -1]
    q = np.arange(h)[:, None]
    r = np.arange(w)[None, :]
    den = 2 * np.cos(2 * np.pi * q / h) + 2 * np.cos(2 * np.pi * r / w) - 4
    den[0, 0] = 1.0
    s_hat = np.fft.fft2(v) / den
    s_hat[0, 0] = 0.0
    return np.asarray(u - np.real(np.fft.ifft2(s_hat)), np.float64)


@dataclass(frozen=True)
class MotionEstimate:
    length: float
    angle: float
    confidence: float

    def spec(self) -> PSFSpec:
        return PSFSpec(
            "motion", (("length", round(self.length, 2)), ("angle", round(self.angle, 1)))
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "length_px": round(self.length, 3),
            "angle_deg": round(self.angle, 2),
            "confidence": round(self.confidence, 3),
        }


def cepstrum(grey: Float) -> Float:
    """Real cepstrum ``IDFT(log |DFT(p)|^2)`` of the periodic component ``p``, centred."""
    p = periodic_component(grey)
    spectrum = np.abs(np.fft.fft2(p - p.mean())) ** 2
    floor = 1e-8 * float(spectrum.max() or 1.0)
    c = np.real(np.fft.ifft2(np.log(spectrum + floor)))
    return np.asarray(np.fft.fftshift(c), np.float64)


def estimate_motion_blur(
    grey: Float, *, max_length: float = 60.0, min_length: float = 3.0
) -> MotionEstimate:
    """Estimate the length and angle of a uniform linear motion blur from the image alone.

    Parameters
    ----------
    grey : ndarray
        2-D float image.
    max_length, min_length : float
        The lengths searched, in pixels; the longest is also limited to a sixth of the
        smaller image side (the third dip must fit in the cepstrum).

    Returns
    -------
    MotionEstimate
        Length (px), angle (degrees in [0, 180)) and a confidence: how far the cepstral dip
        stands below the typical cepstrum at that radius, in robust standard deviations.

    Notes
    -----
    A uniform blur of length ``L`` multiplies the spectrum by a sinc whose zeros repeat every
    ``1 / L`` cycles per pixel along the motion direction. In the cepstrum (the inverse DFT of
    the log power spectrum) that periodic ripple becomes a pair of strong negative peaks at
    distance ``L`` from the origin, in the direction of motion (Cannon 1976). The cepstrum
    is sampled along rays (0.25 degree steps, bilinear interpolation, 0.1 px radial steps);
    the point where the mean of the dips at ``r``, ``2r`` and ``3r`` is deepest fixes both
    parameters, refined by a parabola through its neighbours.
    The spectrum is taken of the periodic component (Moisan 2011) to keep border jumps out.
    Works best on images with texture in the motion direction and weak noise.
    """
    h, w = grey.shape
    step = 0.1
    # All three dips (L, 2L, 3L) must lie inside the cepstrum, so L <= reach / 3.
    reach = min(h / 2 - 2, w / 2 - 2, 3 * max_length)
    longest = min(max_length, reach / 3)
    if longest < min_length:
        raise ValueError(f"image {w} x {h} too small to estimate a motion blur")
    c = cepstrum(grey)
    cy, cx = h // 2, w // 2
    radii = np.arange(0.0, reach + 1e-9, step)
    angles = np.arange(0.0, 180.0, 0.25)
    th = np.deg2rad(angles)[:, None]
    ys = cy - radii[None, :] * np.sin(th)
    xs = cx + radii[None, :] * np.cos(th)
    samples = ndimage.map_coordinates(c, [ys.ravel(), xs.ravel()], order=1).reshape(ys.shape)
    # Compare each sample with the typical cepstrum at its radius, so that the fall-off of
    # the cepstrum towards larger radii does not favour the shortest lengths.
    median = np.median(samples, axis=0)
    spread = np.median(np.abs(samples - median), axis=0) * 1.4826 + 1e-12
    z = (samples - median) / spread
    # A box blur also dips at 2L and 3L. Scoring L by the mean of its first three dips keeps a
    # harmonic from winning and narrows the angle (a lateral error is divided by m at mL).
    first = np.flatnonzero((radii >= min_length) & (radii <= longest + 1e-9))
    score = (z[:, first] + z[:, 2 * first] + z[:, 3 * first]) / 3
    i, j = np.unravel_index(int(np.argmin(score)), score.shape)
    angle = float(angles[i]) + _parabola(score[:, j], int(i), wrap=True) * 0.25
    length = float(radii[first[j]]) + _parabola(score[i, :], int(j), wrap=False) * step
    return MotionEstimate(length=length, angle=angle % 180.0, confidence=float(-score[i, j]))


def _parabola(values: Float, k: int, *, wrap: bool) -> float:
    """Sub-sample offset of the extremum at ``k`` from a parabola through three samples."""
    n = len(values)
    if not wrap and (k == 0 or k == n - 1):
        return 0.0
    a, b, c = values[(k - 1) % n], values[k], values[(k + 1) % n]
    den = a - 2 * b + c
    return 0.0 if den == 0 else float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))
