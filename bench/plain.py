"""Plain implementations written for the benchmark: what a careful engineer would write with
numpy, scipy.fft and pywt alone, in float32, to see how fast an operation can be.

They follow the same mathematics, the same mirror extension of the borders and the same
parameters as the classical lane's operations, so that their outputs can be compared with ours
at equal quality. They are reference points for speed, never used by forensic itself.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import numpy.typing as npt
import pywt
from scipy import fft

F32 = npt.NDArray[np.float32]
WORKERS = os.cpu_count() or 1


def mirror_pad(plane: npt.NDArray[Any], n: int) -> tuple[F32, tuple[slice, slice]]:
    """Extend ``plane`` by ``n`` px each side by mirror reflection (numpy "symmetric"), and
    further at the bottom and right up to sizes the FFT handles fast; return it and the
    slices that crop the original back out."""
    h, w = plane.shape
    fh, fw = fft.next_fast_len(h + 2 * n, real=True), fft.next_fast_len(w + 2 * n, real=True)
    padded = np.pad(
        np.asarray(plane, np.float32), ((n, fh - h - n), (n, fw - w - n)), mode="symmetric"
    )
    return padded, (slice(n, n + h), slice(n, n + w))


def transfer(kernel: npt.NDArray[Any], shape: tuple[int, int]) -> npt.NDArray[np.complex64]:
    """Real-FFT transfer function of ``kernel`` centred at the origin (scikit-image's ir2tf)."""
    padded = np.zeros(shape, np.float32)
    kh, kw = kernel.shape
    padded[:kh, :kw] = kernel
    padded = np.roll(padded, (-(kh // 2), -(kw // 2)), axis=(0, 1))
    return np.asarray(fft.rfft2(padded, workers=WORKERS), np.complex64)


def laplacian(shape: tuple[int, int]) -> npt.NDArray[np.complex64]:
    kernel = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], np.float32)
    return transfer(kernel, shape)


def wiener(plane: npt.NDArray[Any], kernel: npt.NDArray[Any], balance: float, pad: int) -> F32:
    """Wiener-Hunt with a Laplacian prior: ``conj(H) Y / (|H|^2 + balance |D|^2)``."""
    padded, crop = mirror_pad(plane, pad)
    shape = (padded.shape[0], padded.shape[1])
    h = transfer(kernel, shape)
    d2 = np.abs(laplacian(shape).real) ** 2
    filt = np.conj(h) / (np.abs(h) ** 2 + np.float32(balance) * d2)
    spectrum = fft.rfft2(padded, workers=WORKERS)
    out = fft.irfft2(spectrum * filt, s=shape, workers=WORKERS)
    return np.asarray(out[crop], np.float32)


def richardson_lucy(
    plane: npt.NDArray[Any], kernel: npt.NDArray[Any], iterations: int, pad: int
) -> F32:
    """Richardson-Lucy from a uniform 0.5 start, with the PSF's transfer function computed
    once and circular convolutions on the mirror-extended image."""
    padded, crop = mirror_pad(plane, pad)
    shape = (padded.shape[0], padded.shape[1])
    h = transfer(kernel, shape)
    hc = np.conj(h)
    estimate = np.full(shape, 0.5, np.float32)
    eps = np.float32(1e-12)
    for _ in range(iterations):
        conv = fft.irfft2(fft.rfft2(estimate, workers=WORKERS) * h, s=shape, workers=WORKERS)
        ratio = padded / (conv + eps)
        estimate *= fft.irfft2(fft.rfft2(ratio, workers=WORKERS) * hc, s=shape, workers=WORKERS)
    return np.asarray(estimate[crop], np.float32)


def unsupervised_wiener(
    plane: npt.NDArray[Any],
    kernel: npt.NDArray[Any],
    pad: int,
    rng: np.random.Generator,
    *,
    threshold: float = 1e-4,
    max_iterations: int = 200,
    min_iterations: int = 30,
    burnin: int = 15,
) -> F32:
    """Orieux et al.'s Gibbs sampler (scikit-image's algorithm and stopping rule), float32,
    orthonormal real FFTs."""
    padded, crop = mirror_pad(plane, pad)
    shape = (padded.shape[0], padded.shape[1])
    h = transfer(kernel, shape)
    reg = laplacian(shape).real
    atf2 = (np.abs(h) ** 2).astype(np.float32)
    areg2 = (reg**2).astype(np.float32)
    y = fft.rfft2(padded, norm="ortho", workers=WORKERS).astype(np.complex64)
    size = padded.size
    gn, gx = 1.0, 1.0
    total = np.zeros_like(y)
    previous = np.zeros_like(y)
    delta = np.inf
    iteration = 0

    def quad_norm(spectrum: npt.NDArray[np.complex64]) -> float:
        # The energy of the real image from its half spectrum (columns 1.. count twice).
        a2 = np.abs(spectrum) ** 2
        return float(2 * a2.sum(dtype=np.float64) - a2[:, 0].sum(dtype=np.float64))

    for iteration in range(max_iterations):
        precision = np.float32(gn) * atf2 + np.float32(gx) * areg2
        noise = rng.standard_normal(y.shape, dtype=np.float32) + 1j * rng.standard_normal(
            y.shape, dtype=np.float32
        )
        sample = (np.float32(gn) * np.conj(h) / precision) * y + np.sqrt(
            np.float32(0.5) / precision
        ) * noise.astype(np.complex64)
        gn = float(rng.gamma(size / 2, 2 / quad_norm(y - sample * h)))
        gx = float(rng.gamma((size - 1) / 2, 2 / quad_norm(sample * reg)))
        if iteration > burnin:
            total = previous + sample
        if iteration > burnin + 1:
            k = iteration - burnin
            current, before = total / k, previous / (k - 1)
            delta = float(np.abs(current - before).sum() / np.abs(total).sum() / k)
        previous = total
        if iteration > min_iterations and delta < threshold:
            break
    mean = total / (iteration - burnin)
    out = fft.irfft2(mean, s=shape, norm="ortho", workers=WORKERS)
    return np.asarray(out[crop], np.float32)


def tv_chambolle(image: npt.NDArray[Any], weight: float, eps: float, max_iterations: int) -> F32:
    """Chambolle's projection algorithm (scikit-image's iteration and stopping rule), 2-D,
    float32, in place; the energies are summed in float64."""
    x = np.asarray(image, np.float32)
    h, w = x.shape
    py = np.zeros_like(x)
    px = np.zeros_like(x)
    gy = np.zeros_like(x)
    gx = np.zeros_like(x)
    d = np.zeros_like(x)
    out = x
    tau = np.float32(0.25)
    scale = np.float32(0.25 / weight)
    e_init = e_prev = 0.0
    for i in range(max_iterations):
        if i > 0:
            np.negative(py, out=d)
            d -= px
            d[1:, :] += py[:-1, :]
            d[:, 1:] += px[:, :-1]
            out = x + d
        energy = float(np.dot(d.ravel(), d.ravel()))
        np.subtract(out[1:, :], out[:-1, :], out=gy[:-1, :])
        np.subtract(out[:, 1:], out[:, :-1], out=gx[:, :-1])
        norm = np.sqrt(gy * gy + gx * gx)
        energy += weight * float(norm.sum(dtype=np.float64))
        norm *= scale
        norm += 1
        py -= tau * gy
        py /= norm
        px -= tau * gx
        px /= norm
        energy /= float(h * w)
        if i == 0:
            e_init = e_prev = energy
        elif abs(e_prev - energy) < eps * e_init:
            break
        else:
            e_prev = energy
    return np.asarray(out, np.float32)


def wavelet_bayes_shrink(image: npt.NDArray[Any], sigma: float, wavelet: str, levels: int) -> F32:
    """BayesShrink soft thresholding per detail sub-band (scikit-image's rule), float32."""
    x = np.asarray(image, np.float32)
    coeffs = pywt.wavedec2(x, wavelet, level=levels)
    var = float(sigma) ** 2
    out: list[Any] = [coeffs[0]]
    for bands in coeffs[1:]:
        shrunk = []
        for band in bands:
            signal = math.sqrt(max(float(np.mean(band * band, dtype=np.float64)) - var, 0.0))
            threshold = float(np.max(np.abs(band))) if signal == 0 else var / signal
            shrunk.append(pywt.threshold(band, threshold, mode="soft"))
        out.append(tuple(shrunk))
    rec = pywt.waverec2(out, wavelet)
    return np.asarray(rec[: x.shape[0], : x.shape[1]], np.float32)


def phase_correlation(reference: npt.NDArray[Any], moving: npt.NDArray[Any]) -> tuple[float, float]:
    """(dx, dy) by which ``moving`` is displaced from ``reference`` (OpenCV's convention):
    Hann window, normalised cross-power spectrum, integer peak, then the centroid of the 3 x 3
    neighbourhood of the peak for the sub-pixel part."""
    h, w = reference.shape
    window = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    a = fft.rfft2(np.asarray(reference, np.float32) * window, workers=WORKERS)
    b = fft.rfft2(np.asarray(moving, np.float32) * window, workers=WORKERS)
    cross = b * np.conj(a)
    cross /= np.abs(cross) + np.float32(1e-12)
    surface = fft.irfft2(cross, s=(h, w), workers=WORKERS)
    py, px = np.unravel_index(int(np.argmax(surface)), surface.shape)
    ys, xs = (np.arange(py - 1, py + 2) % h), (np.arange(px - 1, px + 2) % w)
    block = np.clip(surface[np.ix_(ys, xs)], 0.0, None)
    total = float(block.sum())
    offsets = np.array([-1.0, 0.0, 1.0])
    dy = py + float(block.sum(axis=1) @ offsets) / total
    dx = px + float(block.sum(axis=0) @ offsets) / total
    dy = dy - h if dy > h / 2 else dy
    dx = dx - w if dx > w / 2 else dx
    return float(dx), float(dy)


def average(frames: list[npt.NDArray[Any]]) -> npt.NDArray[Any]:
    """Mean of uint8 frames by an exact integer sum, rounded half to even."""
    total = np.zeros(frames[0].shape, np.uint32)
    for f in frames:
        total += f
    mean = total.astype(np.float64) / len(frames)
    return np.asarray(np.rint(mean), np.uint8)
