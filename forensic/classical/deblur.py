"""Deconvolution: Wiener-Hunt, Richardson-Lucy and unsupervised Wiener, with a given or
estimated point-spread function.

Borders. The FFT-based solvers assume the image repeats periodically, and scikit-image's
Richardson-Lucy assumes zeros outside it; both are false for a photograph, and the mismatch
rings inwards from every edge (a plain Richardson-Lucy call *lost* 2 to 5 dB on our test
images for this reason). Every solver here therefore runs on the image extended by mirror
reflection (``max(32, 2 x PSF size)`` pixels each side, the edge sample repeated, numpy's
"symmetric"; a few more at the bottom and right, up to a size the FFT handles fast) and the
extension is cropped off afterwards. An extra cosine taper of the extension changed nothing
measurable (< 0.01 dB) and is not used.

Noise. Deconvolution amplifies noise; Wiener regularises (``balance``, by default the one
minimising the error predicted from the image's signal and noise spectra, the PSF and the
borders' ringing, see `auto_balance`), Richardson-Lucy stops early (30 iterations by
default, calibrated on camera, astronaut and coffee with a 9 x 9 Gaussian PSF (sigma 2) and
noise sigma 0.005 to 0.02, where it gains about 2 dB, and with linear motion of 9 and 15 px;
tests/test_classical_quality.py checks both gains. The automatic balance's few constants
(the bands, the measured-band rules) were chosen on scikit-image images and blurs that
neither the benchmark nor the tests use (see `auto_balance`).
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sp_fft

from forensic.classical import references as ref
from forensic.classical.denoise import estimate_noise_sigma
from forensic.classical.psf import (
    PSF_GRAMMAR,
    PSFSpec,
    estimate_motion_blur,
    parse_psf,
    psf_from_rows,
    validate_psf,
)
from forensic.errors import ParameterError
from forensic.ops.framework import Param, operation
from forensic.ops.pixels import Float, Image, map_values, per_plane, split_alpha, to_float

_PSF_PARAM = Param(
    "psf",
    "psf",
    "Point-spread function of the blur: a model, motion(auto) to estimate it, or the kernel.",
    text_format=PSF_GRAMMAR,
    validator=validate_psf,
)


#: motion(auto) is refused below this confidence (robust z-score of the cepstral dips) or
#: when the estimated length is below MIN_MOTION_LENGTH. Calibrated (issue 22) on 16
#: synthetic motion blurs of 8 to 30 px at random angles on the benchmark's images (noise
#: 0.005): 14 scored 4.0 to 51.6, the two on `cell` (smooth, almost no texture: truly
#: ambiguous) 3.2 and 3.5; 16 images without motion blur (the same, sharp or Gaussian-
#: blurred) scored 2.65 to 3.38, camera, astronaut, coffee and white noise 2.8 to 3.4, text
#: 4.01 at a 4.1 px length, and horse (a binary silhouette) 4.49. The former threshold 6.0
#: refused 4 of the 14 clear blurs. Periodic structure (a checkerboard, 223; moon, 10.5)
#: looks like motion to the cepstrum and is accepted: the recorded estimate says what was
#: assumed.
MIN_MOTION_CONFIDENCE = 3.9
#: Dips closer to the origin than this are the image's own correlation, not a blur.
MIN_MOTION_LENGTH = 5.0


def grey_for_estimation(image: Image) -> Float:
    """Float [0, 1] greyscale (mean of R, G, B) used by the estimators."""
    values = to_float(split_alpha(image)[0])
    return values if values.ndim == 2 else np.asarray(values.mean(axis=2), np.float64)


def resolve_psf(
    image: Image, psf: str | list[list[float]] | Float, op: str
) -> tuple[PSFSpec, dict[str, Any]]:
    """Parse ``psf`` (text or kernel rows); for ``motion(auto)`` estimate the blur."""
    spec = parse_psf(psf, op=op) if isinstance(psf, str) else psf_from_rows(psf, op=op)
    if not spec.auto:
        return spec, {}
    grey = grey_for_estimation(image)
    if min(grey.shape) < 64:  # the third cepstral dip of even a 10 px blur must fit
        raise ParameterError(
            op,
            "psf",
            "motion(auto) needs an image of at least 64 x 64 pixels",
            hint="give the blur explicitly, e.g. motion(length=12, angle=0)",
        )
    estimate = estimate_motion_blur(grey)
    if estimate.confidence < MIN_MOTION_CONFIDENCE or estimate.length < MIN_MOTION_LENGTH:
        raise ParameterError(
            op,
            "psf",
            "motion(auto) found no clear linear motion blur in this image (confidence "
            f"{estimate.confidence:.1f}, needs {MIN_MOTION_CONFIDENCE} and a length of at "
            f"least {MIN_MOTION_LENGTH:g} px; best guess length "
            f"{estimate.length:.1f} px, angle {estimate.angle:.1f} degrees)",
            hint="the blur may not be uniform linear motion; give the PSF explicitly, "
            "e.g. motion(length=12, angle=0), gaussian(sigma=2) or defocus(radius=3)",
        )
    return estimate.spec(), {"motion_estimate": estimate.as_dict()}


def blur_scale(kernel: Float) -> float | None:
    """``1 / f0``, with ``f0`` the lowest spatial frequency (cycles/px, any direction) at which
    the PSF's transfer function falls below 0.1 of its peak; None if it never does.

    For linear motion of length L this is about 1.1 L (sinc reaches 0.1 at 0.9 / L), for a
    defocus disc of radius R about 1.8 R, for a Gaussian of sigma s about 2.9 s.
    """
    n = max(256, 2 ** int(np.ceil(np.log2(2 * max(kernel.shape)))))
    padded = np.zeros((n, n))
    padded[: kernel.shape[0], : kernel.shape[1]] = kernel
    gain = np.abs(np.fft.fft2(padded))
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n), indexing="ij"))
    low = f[gain < 0.1 * gain.max()]
    return None if low.size == 0 else float(1.0 / low.min())


def default_balance(kernel: Float, noise_sigma: float) -> float:
    """The Wiener-Hunt balance used when none is given.

    Two things limit a Wiener restoration: noise, and frequencies the blur removed. Noise asks
    for a balance near the noise level sigma (optimal within 0.2 dB for a Gaussian PSF, sigma
    0.005 to 0.02). Where the PSF's transfer function falls to (almost) zero, from ``f0``
    cycles/px on (`blur_scale` gives ``1 / f0``), the Laplacian regulariser must take over, and
    ``|D(f0)|^2`` falls as ``f0^4``, so the balance must grow as ``(1 / f0)^4``. Calibrated on
    camera and astronaut: the best balance was 0.02-0.03 for 9 px motion and 0.1-0.2 for
    15 px (``1 / f0`` = 10 and 16.7), i.e. ``2.5e-6 (1 / f0)^4``. Beyond that the rule is not
    calibrated and over-smooths (on scikit-image's clock_motion, 36 px, it gives 6.4 and a
    featureless result), so the blur term is capped at 0.5. The larger of the two terms
    applies. The same rule serves models and kernels given as numbers.
    """
    scale = blur_scale(kernel)
    blur_term = 0.0 if scale is None else min(0.5, 2.5e-6 * scale**4)
    return round(max(noise_sigma, blur_term, 1e-4), 6)


#: The automatic balance's search (log10 of lambda): 10^-5 to 10 in steps of 0.5 decade,
#: then in steps of 0.1 decade within half a decade of the best.
_COARSE_LOG_BALANCES = np.arange(-5.0, 1.01, 0.5)
_FINE_LOG_STEP = 0.1
#: Radial frequency bands of the signal-spectrum estimate (cycles/px): below 0.01, 15
#: log-spaced bands up to 0.5, and the corners beyond.
_BANDS = np.concatenate([[0.0], np.geomspace(0.01, 0.5, 16), [np.inf]])
#: A band is measured where its blurred signal power is at least this fraction of the noise's.
_MEASURED_SNR = 0.5
#: Above this frequency (cycles/px) a band whose estimate exceeds this many times the one
#: below it ends the measured run (a natural image's spectrum falls; a rise there is noise
#: the sigma estimate missed, e.g. where clipping at black lowered the measured noise).
_RISE_FROM, _MAX_RISE = 0.06, 2.0
#: The power law beyond the measured bands: fitted to the last (up to) 4 of them, and falling
#: at least as f^-1; with one measured band, f^-3 through it.
_TAIL_BANDS, _MAX_TAIL_SLOPE, _DEFAULT_TAIL_SLOPE = 4, -1.0, -3.0


def _radial_frequency(shape: tuple[int, int]) -> Float:
    """``|f|`` (cycles/px) on the real-FFT half plane of ``shape``."""
    fh, fw = shape
    fy = np.fft.fftfreq(fh)[:, None]
    fx = (np.arange(fw // 2 + 1) / fw)[None, :]
    return np.asarray(np.sqrt(fy * fy + fx * fx))


def signal_band_powers(grey: Float, kernel: Float, noise_sigma: float) -> dict[int, float]:
    """The sharp image's power spectrum, per radial band of `_BANDS`, where the blurred image
    measures it.

    From the Hann-windowed periodogram ``P = |F[w (y - mean y)]|^2 / sum w^2`` of the plane
    itself (the window removes the border discontinuity that a periodogram of the bare or
    mirror-extended plane would add as broadband power), band ``b`` gets the ratio estimate
    ``S_b = sum_b (P - sigma^2) / sum_b |H|^2``. Bands count from 0.01 cycles/px upwards and
    stop at the first that is not measured: one whose signal ``sum_b (P - sigma^2)`` is less
    than half the noise ``n_b sigma^2``, or, above 0.06 cycles/px, whose estimate exceeds
    twice the band below it. Returns {band index: S_b}."""
    h, w = grey.shape
    kh, kw = kernel.shape
    shape = (max(h, kh), max(w, kw))
    window = np.outer(np.hanning(h), np.hanning(w))
    windowed = np.zeros(shape)
    windowed[:h, :w] = (grey - grey.mean()) * window
    power = np.abs(np.fft.rfft2(windowed)) ** 2 / float((window * window).sum())
    h2 = np.abs(np.fft.rfft2(kernel, s=shape)) ** 2  # |H|^2 does not depend on the centre
    band_of = np.digitize(_radial_frequency(shape), _BANDS) - 1
    s2 = noise_sigma * noise_sigma
    measured: dict[int, float] = {}
    for band in range(1, len(_BANDS) - 1):
        in_band = band_of == band
        count = int(in_band.sum())
        if count < 8:
            continue  # too few frequencies to estimate from (a tiny image)
        signal = float((power[in_band] - s2).sum())
        gain = float(h2[in_band].sum())
        if gain <= 0.0 or signal < _MEASURED_SNR * s2 * count:
            break
        value = signal / gain
        previous = measured[max(measured)] if measured else math.inf
        if _BANDS[band] >= _RISE_FROM and value > _MAX_RISE * previous:
            break
        measured[band] = value
    return measured


def signal_spectrum(shape: tuple[int, int], measured: dict[int, float]) -> Float:
    """The signal power spectrum `signal_band_powers` measured, on the real-FFT half plane of
    ``shape``: each measured band's value in it, the first one's below 0.01 cycles/px, and
    beyond the last a power law ``S_last (f / f_last)^a`` (``f`` a band's geometric centre,
    0.6 for the corners), ``a`` the least-squares slope of log S over log f of the last four
    measured bands, at most -1 (with one band, -3). Zero everywhere when no band is
    measured (the image shows no signal above the noise)."""
    rho = _radial_frequency(shape)
    if not measured:
        return np.zeros_like(rho)
    band_of = np.digitize(rho, _BANDS) - 1
    bands = sorted(measured)

    def centre(band: int) -> float:
        return 0.6 if band == len(_BANDS) - 2 else math.sqrt(_BANDS[band] * _BANDS[band + 1])

    tail = bands[-_TAIL_BANDS:]
    slope = _DEFAULT_TAIL_SLOPE
    if len(tail) >= 2:
        fitted = np.polyfit(
            [math.log(centre(b)) for b in tail], [math.log(measured[b]) for b in tail], 1
        )[0]
        slope = min(float(fitted), _MAX_TAIL_SLOPE)
    last = bands[-1]
    spectrum = measured[last] * (np.maximum(rho, 1e-3) / centre(last)) ** slope
    spectrum[band_of == 0] = measured[bands[0]]
    for band in bands:
        spectrum[band_of == band] = measured[band]
    return np.asarray(spectrum)


def boundary_mismatch(grey: Float, kernel: Float) -> _C64:
    """The spectrum ``E`` of where the solver's model departs from the data at the borders,
    estimated with the observation itself in place of the sharp image.

    The solver assumes the mirror-extended observation to be the circular blur of a
    mirror-extended sharp image. It is not: the blur of a mirrored image is the mirrored
    blur only for a PSF symmetric about that axis (not oblique motion), and the wrap-around
    seam of the extension is sharp in the data but blurred in the model. The difference
    ``e = ext(k * y) - k (*) ext(y)`` (``*``: convolution with mirrored borders, ``(*)``:
    circular, ``ext`` the solver's extension) has that structure; its Wiener restoration is
    the ringing the mismatch adds, strongest near the zeros of a motion or defocus PSF."""
    blur_grid = FrequencyGrid(grey, max(kernel.shape))  # wider than the PSF's radius: exact borders
    blurred = _circular_blur(blur_grid, blur_grid.values, kernel)[blur_grid.crop]
    data = FrequencyGrid(blurred.astype(np.float64), pad_width(kernel))
    model = FrequencyGrid(grey, pad_width(kernel))
    return data.rfft(data.values - _circular_blur(model, model.values, kernel))


def _circular_blur(grid: FrequencyGrid, values: _F32, kernel: Float) -> _F32:
    spectrum = grid.rfft(values)
    spectrum *= grid.transfer(kernel)
    out = grid.irfft(spectrum)
    out *= np.float32(1.0 / grid.size)
    return out


def auto_balance(grey: Float, kernel: Float, noise_sigma: float) -> float:
    """The Wiener-Hunt balance that minimises the restoration error predicted from the
    image (version 4's automatic balance; the formula is in `deconvolve_wiener`'s Notes)."""
    s2 = max(noise_sigma, 1e-4) ** 2
    grid = FrequencyGrid(grey, pad_width(kernel))
    h = grid.transfer(kernel)
    h2 = power_spectrum(h).astype(np.float64)
    d2 = grid.laplacian().astype(np.float64) ** 2
    signal = signal_spectrum(grid.shape, signal_band_powers(grey, kernel, s2**0.5))
    mismatch = boundary_mismatch(grey, kernel)
    fw = grid.shape[1]
    weight = np.full(h2.shape[1], 2.0)  # Hermitian half spectrum: the other half counts too
    weight[0] = 1.0
    if fw % 2 == 0:
        weight[-1] = 1.0
    # The statistical term on every other row and column (a quarter of the sum's terms,
    # scaled back): it changes by far less than the search's 0.1-decade step.
    every_other = (slice(None, None, 2), slice(None, None, 2))
    h2_s, d2_s, signal_s = h2[every_other], d2[every_other], signal[every_other]
    weight_s = np.broadcast_to(weight[None, ::2], h2_s.shape)
    scale = float(grey.size) / grid.size * (h2.size / h2_s.size)
    restored_mismatch = mismatch * np.conj(h)  # E conj(H), over the denominator below
    d2_32 = d2.astype(np.float32)
    h2_32 = h2.astype(np.float32)
    risks: dict[float, float] = {}

    def risk(log_balance: float) -> float:
        lam = math.pow(10.0, log_balance)
        reg = lam * d2_s
        denominator = h2_s + reg
        statistical = float(
            (weight_s * ((reg * reg * signal_s + h2_s * s2) / (denominator * denominator))).sum()
        )
        inverse = d2_32 * np.float32(lam)
        inverse += h2_32
        np.reciprocal(inverse, out=inverse)
        inverse *= np.float32(1.0 / grid.size)
        ringing = grid.irfft(restored_mismatch * inverse)[grid.crop]
        squared = float(np.square(ringing, dtype=np.float64).sum())
        return float(scale * statistical + squared)

    def cached_risk(log_balance: float) -> float:
        if log_balance not in risks:
            risks[log_balance] = risk(log_balance)
        return risks[log_balance]

    coarse = [float(x) for x in _COARSE_LOG_BALANCES]
    best = min(coarse, key=cached_risk)
    fine = [round(best + _FINE_LOG_STEP * k, 6) for k in range(-4, 5)]
    fine = [x for x in fine if coarse[0] <= x <= coarse[-1]]
    best = min(fine, key=cached_risk)
    return round(math.pow(10.0, best), 6)


def pad_width(psf: Float) -> int:
    return int(max(32, 2 * max(psf.shape)))


def deconvolve_planes(values: Float, psf: Float, solve: Any) -> Float:
    """Apply ``solve`` to each plane extended by `pad_width` px each side (numpy
    "symmetric"), and crop the extension off. Used by temporal.py's super-resolution, with
    scikit-image's solvers; the operations here use the faster solvers below."""
    n = pad_width(psf)

    def one(plane: Float) -> Float:
        padded = np.pad(plane, n, mode="symmetric")
        return np.asarray(solve(padded), np.float64)[n:-n, n:-n]

    return per_plane(values, one)


# -- the solvers ---------------------------------------------------------------------------
#
# Our own float32 real-FFT code rather than scikit-image's restoration.wiener /
# richardson_lucy / unsupervised_wiener, for speed at equal quality. Measured at 1080p grey
# with a 15 x 15 Gaussian PSF (bench section 2, 2 cores), scikit-image on the float64
# mirror-extended plane took 3.1x (Wiener), 6.6x (Richardson-Lucy, 30 iterations) and 1.65x
# (unsupervised Wiener) the time of a plain float32 scipy.fft implementation with the same
# PSNR; on float32 input still 1.5-1.8x, 2.8-3.4x and 1.0-1.05x (its Richardson-Lucy runs
# two scipy.signal FFT convolutions per iteration, transforming the PSF again each time).
# Here: real FFTs at scipy.fft.next_fast_len sizes, transfer functions computed once per
# call, float32 arithmetic, in-place updates; the same bench then put ours at 0.8x (RL) and
# 0.85x (unsupervised) the plain code's time. Float32 rounding is far below the 8- or 16-bit
# quantisation of the result: with a Gaussian PSF the PSNR is unchanged to 0.01 dB (camera,
# astronaut, coffee); with motion blur it rose 0.01 to 0.09 dB, from the larger extension
# at the bottom and right, which alone accounts for the difference. The mathematics is
# scikit-image's, as each operation's Notes state.


def _fft_workers() -> int:
    """Threads for scipy.fft: the cores this process may use, at most ``OMP_NUM_THREADS``
    where that is set (so that a process pinned to one thread computes with one)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    cap = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, min(cores, int(cap))) if cap.isdigit() else max(1, cores)


#: Threads for scipy.fft, None: `_fft_workers`. pocketfft hands whole 1-D transforms to its
#: threads, each computed exactly as by one thread, so the result does not depend on the
#: number: 1, 2 and 3 threads gave bit-identical float32 results (1080p grey and a colour
#: crop, all three solvers), and tests/test_classical_ops.py compares a one-thread process
#: (``OMP_NUM_THREADS=1``) with the test's own on every operation.
FFT_WORKERS: int | None = None

_F32 = NDArray[np.float32]
_C64 = NDArray[np.complex64]


class FrequencyGrid:
    """A plane mirror-extended by ``pad`` px each side (numpy "symmetric") and further at the
    bottom and right up to sizes scipy.fft transforms fast, in float32; ``crop`` cuts the
    original back out. Real FFTs over it.

    The inverse transform is not normalised: the ``1 / size`` factor is folded into the
    transfer functions by the callers (`transfer`'s ``scale``), one multiplication fewer. It
    runs as two 1-D passes (a complex FFT down the columns in place, then the real inverse
    along the rows), which took 3.8 ms against 7.4 ms for scipy.fft.irfft2 at 1152 x 2000 on
    2 threads (scipy 1.17); the forward transform gains nothing that way and uses rfft2.
    """

    def __init__(self, plane: Float, pad: int) -> None:
        h, w = plane.shape
        fh = sp_fft.next_fast_len(h + 2 * pad, real=True)
        fw = sp_fft.next_fast_len(w + 2 * pad, real=True)
        self.values: _F32 = np.pad(
            np.asarray(plane, np.float32), ((pad, fh - h - pad), (pad, fw - w - pad)), "symmetric"
        )
        self.shape = (fh, fw)
        self.size = fh * fw
        self.crop = (slice(pad, pad + h), slice(pad, pad + w))
        self.workers = FFT_WORKERS or _fft_workers()

    def rfft(self, values: _F32) -> _C64:
        return np.asarray(sp_fft.rfft2(values, workers=self.workers))

    def irfft(self, spectrum: _C64) -> _F32:
        """``size`` times the inverse of `rfft`; ``spectrum`` is overwritten."""
        columns = sp_fft.ifft(
            spectrum, axis=0, norm="forward", overwrite_x=True, workers=self.workers
        )
        rows = sp_fft.irfft(
            columns, n=self.shape[1], axis=1, norm="forward", overwrite_x=True, workers=self.workers
        )
        return np.asarray(rows)

    def transfer(self, kernel: Float) -> _C64:
        """Real-FFT transfer function of ``kernel`` with its centre at the origin, as
        scikit-image's ``uft.ir2tf`` (the kernel rolled by minus half its size). Only the
        kernel's rows are transformed along the rows; the rest of that pass is zeros."""
        kh, kw = kernel.shape
        fh, fw = self.shape
        rows = np.arange(-(kh // 2), kh - kh // 2) % fh
        cols = np.arange(-(kw // 2), kw - kw // 2) % fw
        strip = np.zeros((kh, fw), np.float32)
        strip[:, cols] = kernel
        half = np.zeros((fh, fw // 2 + 1), np.complex64)
        half[rows] = sp_fft.rfft(strip, axis=1, workers=self.workers)
        return np.asarray(sp_fft.fft(half, axis=0, overwrite_x=True, workers=self.workers))

    def laplacian(self) -> _F32:
        """``D``, the real-FFT transfer function of the discrete Laplacian
        ``[[0, -1, 0], [-1, 4, -1], [0, -1, 0]]`` (scikit-image's ``uft.laplacian``; real and
        >= 0), in closed form: ``D(u, v) = 4 - 2 cos(2 pi u / H) - 2 cos(2 pi v / W)``."""
        fh, fw = self.shape
        a = 2.0 - 2.0 * np.cos(2.0 * np.pi * np.arange(fh) / fh)
        b = 2.0 - 2.0 * np.cos(2.0 * np.pi * np.arange(fw // 2 + 1) / fw)
        return np.asarray(a.astype(np.float32)[:, None] + b.astype(np.float32)[None, :])


def power_spectrum(spectrum: _C64) -> _F32:
    """``|x|^2`` in float32."""
    out = spectrum.real * spectrum.real
    out += spectrum.imag * spectrum.imag
    return np.asarray(out)


def wiener_plane(plane: Float, kernel: Float, balance: float) -> _F32:
    """``conj(H) Y / (|H|^2 + balance |D|^2)`` on the mirror-extended plane."""
    grid = FrequencyGrid(plane, pad_width(kernel))
    h = grid.transfer(kernel)
    d = grid.laplacian()
    denominator = power_spectrum(h)
    d *= d
    d *= np.float32(balance)
    denominator += d
    denominator *= np.float32(grid.size)  # the inverse transform's 1 / size
    filt = np.empty_like(h)
    np.divide(h.real, denominator, out=filt.real)
    np.divide(h.imag, denominator, out=filt.imag)
    np.negative(filt.imag, out=filt.imag)  # conj(H)
    spectrum = grid.rfft(grid.values)
    spectrum *= filt
    return grid.irfft(spectrum)[grid.crop]


#: scikit-image's richardson_lucy adds this to the blurred estimate before dividing by it.
_RL_EPSILON = np.float32(1e-12)


def _richardson_lucy(plane: Float, kernel: Float, iterations: int) -> _F32:
    """scikit-image's richardson_lucy (``filter_epsilon`` None, so no filtering; no clip)
    with circular convolutions on the mirror-extended plane.

    ``u_{k+1} = u_k . (K^T * (y / (K * u_k + 1e-12)))``, ``u_0 = 0.5``. The first blurred
    estimate ``K * u_0`` is ``0.5 sum(K)`` everywhere (circular convolution of a constant)
    and is not transformed.
    """
    grid = FrequencyGrid(plane, pad_width(kernel))
    h = grid.transfer(kernel)
    observed = grid.values
    estimate = np.full(grid.shape, 0.5, np.float32)
    ratio = observed / (np.float32(0.5) * h[0, 0].real + _RL_EPSILON)  # H(0, 0) = sum(K)
    inverse_size = np.float32(1.0 / grid.size)
    h *= inverse_size
    h_flipped = np.conj(h)  # the transfer function of the PSF rotated by 180 degrees
    for k in range(iterations):
        if k:
            spectrum = grid.rfft(estimate)
            spectrum *= h
            ratio = grid.irfft(spectrum)
            ratio += _RL_EPSILON
            np.divide(observed, ratio, out=ratio)
        spectrum = grid.rfft(ratio)
        spectrum *= h_flipped
        estimate *= grid.irfft(spectrum)
    return estimate[grid.crop]


def _quad_norm(spectrum: _C64) -> float:
    """``sum(x^2)`` of the real image whose orthonormal half spectrum this is (scikit-image's
    ``uft.image_quad_norm``: columns 1.. stand for two)."""
    power = power_spectrum(spectrum)
    return float(2.0 * power.sum(dtype=np.float64) - power[:, 0].sum(dtype=np.float64))


def _unsupervised_wiener(plane: Float, kernel: Float, rng: np.random.Generator) -> _F32:
    """Orieux et al.'s Gibbs sampler as scikit-image's unsupervised_wiener runs it (its
    defaults: at most 200 iterations, at least 30, 15 of burn-in, stop when the posterior
    mean changes by less than 1e-4), in float32 on the mirror-extended plane, with
    orthonormal real FFTs. Normal deviates are drawn in float32."""
    grid = FrequencyGrid(plane, pad_width(kernel))
    size = grid.size
    h = grid.transfer(kernel)
    h_conj = np.conj(h)
    reg = grid.laplacian()
    reg2 = reg * reg
    h2 = power_spectrum(h)
    scale = np.float32(1.0 / np.sqrt(size))  # scipy.fft's "ortho" normalisation
    data = grid.rfft(grid.values)
    data *= scale
    threshold, max_iterations, min_iterations, burnin = 1e-4, 200, 30, 15
    gn, gx = 1.0, 1.0
    total = np.zeros_like(data)
    previous = np.zeros_like(data)
    deviates = np.empty((2, *data.shape), np.float32)
    delta = np.nan
    iteration = 0
    for iteration in range(max_iterations):
        precision = np.float32(gn) * h2
        precision += np.float32(gx) * reg2
        rng.standard_normal(out=deviates, dtype=np.float32)
        spread = np.sqrt(np.float32(0.5) / precision)
        sample = h_conj * (np.float32(gn) / precision)
        sample *= data
        sample.real += spread * deviates[0]
        sample.imag += spread * deviates[1]
        residual = sample * h
        np.subtract(data, residual, out=residual)
        gn = float(rng.gamma(size / 2, 2 / _quad_norm(residual)))
        gx = float(rng.gamma((size - 1) / 2, 2 / _quad_norm(sample * reg)))
        if iteration > burnin:
            total = previous + sample
        if iteration > burnin + 1:
            k = iteration - burnin
            change = np.abs(total / np.float32(k) - previous / np.float32(k - 1))
            delta = float(change.sum(dtype=np.float64) / np.abs(total).sum(dtype=np.float64) / k)
        previous = total
        if iteration > min_iterations and delta < threshold:
            break
    # The posterior mean, back through the orthonormal inverse: size x scale = sqrt(size).
    mean = total * np.float32(scale / (iteration - burnin))
    return grid.irfft(mean)[grid.crop]


def _psf_resolver(op: str, *, with_balance: bool = False) -> Any:
    """Resolve ``psf`` (and ``balance``); record estimates in the details."""

    def resolve(image: Image, p: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        spec, details = resolve_psf(image, p["psf"], op)
        p = {**p, "psf": spec.record()}
        # The noise is estimated only when a value depends on it (an automatic balance):
        # about 40 ms at 1080p that a given balance, or a replay, does not need.
        if with_balance and p["balance"] is None:
            sigma = round(estimate_noise_sigma(image), 6)
            p["balance"] = auto_balance(grey_for_estimation(image), spec.kernel(), sigma)
            details = {**details, "noise_sigma_estimated": sigma}
        return p, details

    return resolve


@operation(
    name="deconvolve_wiener",
    version="4",
    category="deblur",
    swgit_class="advanced",
    summary="Wiener-Hunt deconvolution with a known or estimated PSF.",
    description="""Inverts a known blur in the frequency domain, regularised so that noise is
    not amplified without limit: frequencies where the blur leaves little signal are restored
    less, according to the balance between fidelity to the data and smoothness (a Laplacian
    prior). The image is extended by mirror reflection before the transform and cropped after,
    so that edges do not ring. The PSF is given as a model (Gaussian, linear motion, defocus
    disc) or estimated from the image for linear motion. By default the balance is the one
    that minimises the restoration error predicted from the image itself: its signal
    spectrum (measured where the blur leaves it above the noise, extrapolated beyond), the
    estimated noise level, and the ringing that the mirror-extended borders add. Restores
    detail that the blur attenuated; cannot recover frequencies the blur removed entirely.""",
    references=(
        ref.HUNT_1973,
        ref.ORIEUX_2010,
        ref.LIU_JIA_2008,
        ref.WELCH_1967,
        ref.FIELD_1987,
        *ref.MOTION_ESTIMATION,
    ),
    resolve=_psf_resolver("deconvolve_wiener", with_balance=True),
    params=(
        _PSF_PARAM,
        Param(
            "balance",
            "float",
            "Regularisation weight (higher: smoother, less ringing).",
            "",
            0.0,
            10.0,
            exclusive_minimum=True,
            auto="the balance (10^-5 to 10, to 0.1 decade) minimising the restoration error "
            "predicted from the image: signal spectrum from its windowed periodogram (power "
            "law beyond the measured bands), estimated noise sigma, and the ringing of the "
            "mirror-extended borders",
        ),
    ),
)
def deconvolve_wiener(
    image: Image,
    *,
    psf: str | list[list[float]] = "gaussian(sigma=1.5)",
    balance: float | None = None,
) -> Image:
    """Wiener-Hunt deconvolution.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16; colour channels are restored independently.
    psf : str or 2-D list of float
        PSF text (see `forensic.classical.psf.parse_psf`), ``motion(auto)`` to estimate it,
        or the kernel's rows (odd sides, normalised to sum 1).
    balance : float or None
        Regularisation weight lambda; None: `auto_balance` of the grey image (mean of R, G,
        B), the PSF and the estimated noise sigma (see Notes).

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``.

    Notes
    -----
    ``X = conj(H) Y / (|H|^2 + lambda |D|^2)`` with ``H`` the PSF's transfer function and
    ``D`` that of the discrete Laplacian, on the mirror-extended image (extension
    ``max(32, 2 x PSF size)`` px, a few more at the bottom and right up to a fast FFT size,
    cropped afterwards).

    The automatic balance minimises over lambda (10^-5 to 10: steps of 0.5 decade, then of
    0.1 decade within half a decade of the best) the predicted squared error in the image

    ``R(lambda) = (n / N) sum_f [(lambda D^2)^2 S + |H|^2 sigma^2] / (|H|^2 + lambda D^2)^2
    + || crop F^-1[conj(H) E / (|H|^2 + lambda D^2)] ||^2``

    over the extended grid's frequencies ``f`` (``N`` of them; ``n`` pixels in the image),
    ``sigma`` the estimated noise level (at least 1e-4). The first term is the expected
    error of the Wiener-Hunt filter on a signal of power spectrum ``S`` in white noise:
    ``S`` is measured from the Hann-windowed periodogram of the grey image (Welch 1967) in
    radial bands, ``S_b = sum_b (P - sigma^2) / sum_b |H|^2``, from 0.01 cycles/px up to the
    first band whose blurred signal is below half the noise (or, above 0.06 cycles/px, more
    than twice the band below: noise the estimate missed), and continued beyond by the power
    law natural images follow (Field 1987) fitted to the last four measured bands (slope at
    most -1). The second is the ringing the solver adds where its model (circular blur of a
    mirror-extended sharp image) departs from the data: ``E`` is the spectrum of
    ``ext(k * y) - k (*) ext(y)``, that departure with the observation ``y`` in place of the
    sharp image (`boundary_mismatch`), and its restoration is measured inside the image.
    A Stein unbiased risk estimate (Pesquet et al. 2009, doi:10.1109/TSP.2009.2026077) was
    tried instead of ``S``: where ``|H|`` is small it divides the noise by it and chose the
    least balance everywhere.

    References
    ----------
    Hunt (1973), IEEE Trans. Computers C-22(9); Orieux, Giovannelli & Rodet (2010);
    Liu & Jia (2008), doi:10.1109/ICIP.2008.4711802; Welch (1967),
    doi:10.1109/TAU.1967.1161901; Field (1987), doi:10.1364/JOSAA.4.002379.
    """
    spec, _ = resolve_psf(image, psf, "deconvolve_wiener")
    kernel = spec.kernel()
    if balance is None:
        sigma = round(estimate_noise_sigma(image), 6)
        balance = auto_balance(grey_for_estimation(image), kernel, sigma)
    lam = balance
    return map_values(image, lambda x: per_plane(x, lambda p: wiener_plane(p, kernel, lam)))


@operation(
    name="deconvolve_richardson_lucy",
    version="2",
    category="deblur",
    swgit_class="advanced",
    summary="Richardson-Lucy iterative deconvolution, stopped early.",
    description="""Iteratively refines an estimate of the sharp image so that, blurred by the
    PSF, it matches the observation, multiplying the estimate at each step by the
    back-projected ratio of observed to predicted values (the maximum-likelihood solution for
    Poisson noise). Keeps values non-negative and flux constant. Iterating to convergence
    amplifies noise, so it stops after a fixed number of iterations (early stopping is the
    regularisation); the image is mirror-extended first so that edges do not ring.""",
    references=(ref.RICHARDSON_1972, ref.LUCY_1974, ref.LIU_JIA_2008, *ref.MOTION_ESTIMATION),
    resolve=_psf_resolver("deconvolve_richardson_lucy"),
    params=(
        _PSF_PARAM,
        Param("iterations", "int", "Number of iterations (early stopping).", "", 1, 500),
    ),
)
def deconvolve_richardson_lucy(
    image: Image, *, psf: str | list[list[float]] = "gaussian(sigma=1.5)", iterations: int = 30
) -> Image:
    """Richardson-Lucy deconvolution with mirror-extended borders.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    psf : str or 2-D list of float
        PSF text, ``motion(auto)`` to estimate a linear motion blur, or the kernel's rows.
    iterations : int
        Iterations; more sharpens more and amplifies noise more.

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``.

    Notes
    -----
    ``u_{k+1} = u_k . (K^T * (y / (K * u_k)))`` with ``*`` convolution and ``K^T`` the
    flipped PSF, starting from a uniform 0.5 image (scikit-image), on the mirror-extended
    image.

    References
    ----------
    Richardson (1972), doi:10.1364/JOSA.62.000055; Lucy (1974), doi:10.1086/111605.
    """
    spec, _ = resolve_psf(image, psf, "deconvolve_richardson_lucy")
    kernel = spec.kernel()
    return map_values(
        image, lambda x: per_plane(x, lambda p: _richardson_lucy(p, kernel, iterations))
    )


@operation(
    name="deconvolve_unsupervised_wiener",
    version="2",
    category="deblur",
    swgit_class="advanced",
    summary="Wiener-Hunt deconvolution that estimates its own regularisation (Gibbs sampler).",
    description="""Like Wiener-Hunt deconvolution, but the noise and image-prior levels (and
    hence the balance) are not given: they are estimated jointly with the image as the
    posterior mean of a Bayesian model, by a Markov-chain Monte Carlo (Gibbs) sampler. The
    sampler is random; a fixed seed makes the result reproducible and the seed is recorded.
    The image is mirror-extended before and cropped after.""",
    references=(ref.ORIEUX_2010, ref.LIU_JIA_2008, *ref.MOTION_ESTIMATION),
    determinism="""Uses a pseudo-random Gibbs sampler seeded by the 'seed' parameter
    (numpy PCG64): bit-identical for the same seed, input, pinned library versions and CPU
    architecture; a different seed gives a slightly different image.""",
    resolve=_psf_resolver("deconvolve_unsupervised_wiener"),
    params=(
        _PSF_PARAM,
        Param("seed", "int", "Seed of the sampler's random generator.", "", 0, 2**32 - 1),
    ),
)
def deconvolve_unsupervised_wiener(
    image: Image, *, psf: str | list[list[float]] = "gaussian(sigma=1.5)", seed: int = 0
) -> Image:
    """Unsupervised Wiener-Hunt deconvolution.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    psf : str or 2-D list of float
        PSF text, ``motion(auto)`` to estimate a linear motion blur, or the kernel's rows.
    seed : int
        Seed for ``numpy.random.default_rng``; each channel uses its own generator seeded
        with ``seed``, so the channels do not depend on their order.

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``.

    Notes
    -----
    Posterior mean of ``x`` under ``y = h * x + n``, ``n ~ N(0, 1/gamma_n)``, prior
    ``p(x) ~ exp(-gamma_x |d * x|^2 / 2)`` (Laplacian ``d``), with Jeffreys priors on
    ``gamma_n`` and ``gamma_x``, sampled by Gibbs until the mean stabilises.

    References
    ----------
    Orieux, Giovannelli & Rodet (2010), JOSA A 27(7), 1593-1607.
    """
    spec, _ = resolve_psf(image, psf, "deconvolve_unsupervised_wiener")
    kernel = spec.kernel()

    return map_values(
        image,
        lambda x: per_plane(
            x, lambda p: _unsupervised_wiener(p, kernel, np.random.default_rng(seed))
        ),
    )
