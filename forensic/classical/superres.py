"""Multi-frame super-resolution as an inverse problem: the area-sampling model and its solver.

Used by `forensic.classical.temporal.super_resolve_frames`; kept apart because it is the
mathematics of one method (the forward model, its adjoint, conjugate gradients, robust
reweighting), not frame-range plumbing.

Imaging model (area sampling). The output ``X`` has ``s`` times the frame's pixels per side
(``s`` the scale) and is piecewise constant: fine pixel ``j`` covers ``[j, j + 1)`` in fine
units (pixel *edges* at integers). A frame's pixel ``x`` measured the mean of the scene over
its own area, ``s`` fine pixels wide; in frame 0 (the reference) that is ``[s x, s x + s)``,
so the output grid is the reference's grid subdivided: output pixel ``J`` is centred at
reference coordinate ``(J + 1/2) / s - 1/2`` (pixel centres at integers), the convention of
``cv2.resize`` and of OpenCV's area downsampling (``INTER_AREA`` maps ``s x s`` blocks of a
fine image onto one pixel exactly). A frame whose content is displaced by ``d`` (reference
pixels; ``frame(x) = reference(x - d)``) measured ``[s (x - d), s (x - d) + s)``.

Sampling a piecewise-constant image over a window of ``s`` pixels that starts at a fractional
position ``q = n + f`` is exactly linear interpolation, at ``q``, of the ``s``-tap box mean
``Z[n] = mean(X[n .. n + s - 1])``: ``(1 - f) Z[n] + f Z[n + 1]`` weighs ``X[n]`` by
``(1 - f) / s``, ``X[n + 1 .. n + s - 1]`` by ``1 / s`` and ``X[n + s]`` by ``f / s``, the
overlap of each fine pixel with the window. In 2-D the same holds per axis. So frame ``k`` is
``y_k = W_k B X + noise``, with ``B`` the box mean (optionally after a Gaussian optical blur)
and ``W_k`` bilinear sampling of ``Z = B X`` on the lattice ``q = s (x - d_k)``: every sample
keeps its own sub-pixel position; nothing is snapped to the nearest fine pixel.

Estimate. ``X`` minimises ``(1 / N) sum_k rho(W_k B X - y_k) + lambda |grad X|^2``
(Tikhonov gradient penalty). With ``rho`` quadratic (method ``mean``) the normal equations
``(1/N) B^T (sum_k W_k^T W_k) B X + lambda G X = (1/N) B^T sum_k W_k^T y_k`` are symmetric
positive definite and solved by conjugate gradients (Hestenes & Stiefel 1952); a frame is
only its displacement once its samples are added to ``sum_k W_k^T y_k``: memory stays one
fine image, whatever the number of frames. With ``rho = |.|`` (method ``median``, Farsiu et
al.'s robust L1 data term) the L1 problem is solved by iteratively reweighted least squares
(weights ``1 / max(|residual|, delta)``), which needs every frame's samples (memory grows
with the range). An edge-preserving bilateral total-variation prior (Farsiu et al.) was tried
in place of the quadratic one (IRLS, 4 reweightings) and lost 0.3 to 5 dB on astronaut and
coffee at both noise levels tried, so the quadratic prior stays.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from forensic.ops.pixels import Float

#: Reweightings of the robust (L1) data term.
L1_REWEIGHTINGS = 3
#: Smallest residual the L1 weights divide by (fraction of full scale): caps each weight.
L1_DELTA = 2.0 / 255.0


@dataclass(frozen=True)
class _Lattice:
    """Where one frame's samples fall on the box-mean grid ``Z``, per axis: first index of
    the bilinear pair ``base``, fraction ``frac``, the frame's rows/columns ``[i0, i1)`` that
    fall inside ``Z``."""

    base_y: int
    frac_y: float
    i0_y: int
    i1_y: int
    base_x: int
    frac_x: float
    i0_x: int
    i1_x: int


def _axis(n: int, shift: float, scale: int, z_len: int) -> tuple[int, float, int, int]:
    """Lattice ``q_i = scale (i - shift)`` for i in [0, n): first in-range sample, its
    bilinear base and fraction. A sample is used when both of its taps lie in [0, z_len)."""
    q0 = -scale * shift
    n0 = math.floor(q0)
    frac = q0 - n0
    i0 = 0 if n0 >= 0 else -(n0 // scale)  # smallest i with n0 + scale i >= 0
    i1 = n
    while i1 > i0 and n0 + scale * (i1 - 1) + 1 > z_len - 1:
        i1 -= 1
    return n0 + scale * i0, frac, i0, max(i0, i1)


class AreaSamplingModel:
    """The forward model ``y_k = W_k B X`` of a set of frames on one fine grid.

    ``shape``: a frame's (height, width, channels); ``scale``: magnification; ``psf_sigma``:
    Gaussian optical blur (fine px) applied before the pixel's box (0: box only).
    """

    def __init__(self, shape: tuple[int, int, int], scale: int, psf_sigma: float) -> None:
        h, w, c = shape
        self.scale = scale
        self.psf_sigma = psf_sigma
        self.low = (h, w)
        self.fine_shape = (scale * h, scale * w, c)
        self.z_shape = (scale * h - scale + 1, scale * w - scale + 1, c)
        self.lattices: list[_Lattice] = []
        self.rhs = np.zeros(self.z_shape)

    def lattice(self, dx: float, dy: float) -> _Lattice:
        by, fy, y0, y1 = _axis(self.low[0], dy, self.scale, self.z_shape[0])
        bx, fx, x0, x1 = _axis(self.low[1], dx, self.scale, self.z_shape[1])
        return _Lattice(by, fy, y0, y1, bx, fx, x0, x1)

    def add(self, values: Float, dx: float, dy: float) -> _Lattice:
        """Add a frame (float, H x W x C) displaced by (dx, dy) reference px."""
        lat = self.lattice(dx, dy)
        self.lattices.append(lat)
        self.adjoint_sample(lat, values[lat.i0_y : lat.i1_y, lat.i0_x : lat.i1_x], self.rhs)
        return lat

    def _taps(self, lat: _Lattice) -> list[tuple[tuple[slice, slice], float]]:
        s = self.scale
        ny, nx = lat.i1_y - lat.i0_y, lat.i1_x - lat.i0_x
        out = []
        for a, wy in ((0, 1.0 - lat.frac_y), (1, lat.frac_y)):
            for b, wx in ((0, 1.0 - lat.frac_x), (1, lat.frac_x)):
                where = (
                    slice(lat.base_y + a, lat.base_y + a + s * ny, s),
                    slice(lat.base_x + b, lat.base_x + b + s * nx, s),
                )
                out.append((where, wy * wx))
        return out

    def sample(self, lat: _Lattice, z: Float) -> Float:
        """``W_k z``: bilinear samples of the box-mean grid at the frame's positions."""
        taps = self._taps(lat)
        out = taps[0][1] * z[taps[0][0]]
        for where, weight in taps[1:]:
            out += weight * z[where]
        return np.asarray(out, np.float64)

    def adjoint_sample(self, lat: _Lattice, values: Float, out: Float) -> None:
        """``out += W_k^T values``: each sample spread onto its four taps, bilinearly."""
        if values.size == 0:
            return
        for where, weight in self._taps(lat):
            out[where] += weight * values

    def blur(self, x: Float) -> Float:
        """``B x``: optional Gaussian, then the mean of each ``s x s`` window."""
        if self.psf_sigma > 0:
            x = ndimage.gaussian_filter(x, (self.psf_sigma, self.psf_sigma, 0), mode="constant")
        s, (zh, zw, _) = self.scale, self.z_shape
        z = np.zeros(self.z_shape)
        for a in range(s):
            for b in range(s):
                z += x[a : a + zh, b : b + zw]
        return z / (s * s)

    def adjoint_blur(self, z: Float) -> Float:
        """``B^T z`` (the zero-padded Gaussian is its own adjoint)."""
        s, (zh, zw, _) = self.scale, self.z_shape
        x = np.zeros(self.fine_shape)
        for a in range(s):
            for b in range(s):
                x[a : a + zh, b : b + zw] += z
        x /= s * s
        if self.psf_sigma > 0:
            x = ndimage.gaussian_filter(x, (self.psf_sigma, self.psf_sigma, 0), mode="constant")
        return x

    def coverage(self) -> float:
        """Fraction of the ``s x s`` fine positions within a low-resolution pixel that some
        frame's sample centre lies within half a fine pixel of (1.0: every phase seen)."""
        s = self.scale
        phases = {
            (round(lat.base_y + lat.frac_y) % s, round(lat.base_x + lat.frac_x) % s)
            for lat in self.lattices
        }
        return len(phases) / (s * s)


def _gradient_penalty(x: Float, weight: float) -> Float:
    """``weight D^T D x``: forward differences, no penalty across the border."""
    gx = np.diff(x, axis=1)
    gy = np.diff(x, axis=0)
    out = np.zeros_like(x)
    out[:, :-1] -= gx
    out[:, 1:] += gx
    out[:-1] -= gy
    out[1:] += gy
    return weight * out


def conjugate_gradients(
    apply: Callable[[Float], Float], rhs: Float, start: Float, iterations: int
) -> Float:
    """``iterations`` steps of conjugate gradients on ``apply(x) = rhs`` (symmetric positive
    definite), from ``start`` (Hestenes & Stiefel 1952); stops early only on an exact solve."""
    x = start.copy()
    r = rhs - apply(x)
    p = r.copy()
    rr = float(np.vdot(r, r))
    for _ in range(iterations):
        if rr == 0.0:
            break
        ap = apply(p)
        alpha = rr / float(np.vdot(p, ap))
        x += alpha * p
        r -= alpha * ap
        rr_next = float(np.vdot(r, r))
        p = r + (rr_next / rr) * p
        rr = rr_next
    return x


def solve_l2(model: AreaSamplingModel, weight: float, iterations: int) -> Float:
    """The least-squares estimate of ``X`` (see the module's docstring)."""
    n = max(len(model.lattices), 1)

    def normal(x: Float) -> Float:
        z = model.blur(x)
        acc = np.zeros(model.z_shape)
        for lat in model.lattices:
            model.adjoint_sample(lat, model.sample(lat, z), acc)
        return model.adjoint_blur(acc) / n + _gradient_penalty(x, weight)

    rhs = model.adjoint_blur(model.rhs) / n
    return conjugate_gradients(normal, rhs, np.zeros(model.fine_shape), iterations)


def solve_l1(
    model: AreaSamplingModel, frames: list[Float], weight: float, iterations: int
) -> Float:
    """The robust (L1 data term) estimate by iteratively reweighted least squares, started
    from the least-squares one; ``frames[k]`` holds the samples of ``model.lattices[k]``."""
    n = max(len(model.lattices), 1)
    x = solve_l2(model, weight, iterations)
    for _ in range(L1_REWEIGHTINGS):
        z = model.blur(x)
        weights = [
            1.0 / np.maximum(np.abs(model.sample(lat, z) - y), L1_DELTA)
            for lat, y in zip(model.lattices, frames, strict=True)
        ]
        # Mean weight 1: the balance against the prior stays that of the L2 estimate.
        mean = sum(float(c.sum()) for c in weights) / max(sum(c.size for c in weights), 1)
        weights = [c / mean for c in weights]

        def normal(v: Float, weights: list[Float] = weights) -> Float:
            zv = model.blur(v)
            acc = np.zeros(model.z_shape)
            for lat, c in zip(model.lattices, weights, strict=True):
                model.adjoint_sample(lat, c * model.sample(lat, zv), acc)
            return model.adjoint_blur(acc) / n + _gradient_penalty(v, weight)

        rhs_z = np.zeros(model.z_shape)
        for lat, c, y in zip(model.lattices, weights, frames, strict=True):
            model.adjoint_sample(lat, c * y, rhs_z)
        # Warm-started from the previous estimate: a third of the iterations suffices.
        x = conjugate_gradients(normal, model.adjoint_blur(rhs_z) / n, x, max(1, iterations // 3))
    return x


def default_weight(noise_sigma: float, frames: int) -> float:
    """The regularisation weight when none is given: ``3e-3 + 160 sigma^2 / N``.

    Calibrated on astronaut and coffee (grey, 16 frames, x2): the best weight was 3e-3 on
    clean frames (the box's transfer function has zeros that the data cannot fix) and 5e-3 to
    1e-2 at sigma 5/255; the noise term grows with the noise variance of the frames' mean.
    """
    return round(3e-3 + 160.0 * noise_sigma**2 / max(frames, 1), 6)
