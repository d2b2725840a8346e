"""Earlier versions of classical operations, kept so that recorded runs still replay.

A run records each step's operation name *and version*; `verify --replay` re-runs the step
with that version (`forensic.lanes.lookup`). When an operation's pixels change, its version
goes up and the previous code moves here, registered with ``superseded=True``: never listed,
never offered to a new run, but found by a replay of a run that used it, which therefore still
replays bit-exact. Nothing here is changed once released.

* ``clahe`` 1: scikit-image's CLAHE on float64 BT.601 luma (with a min-max stretch);
  superseded by version 2 (OpenCV's integer CLAHE, 15-20 times faster).
* ``unsharp_mask`` 1: float64 luma, scipy Gaussian; superseded by version 2 (integer luma,
  OpenCV's fixed-point Gaussian, 20-30 times faster).
* ``deconvolve_wiener`` 2: automatic balance the larger of the estimated noise sigma and the
  blur term (`forensic.classical.deblur.default_balance`), motion(auto) refused below
  confidence 6.0; superseded by version 3 (balance from the image's signal and noise
  spectra). A given balance restores the same pixels in both.
* ``super_resolve_frames`` 1: shift-and-add onto the fine grid (nearest fine pixel), holes
  filled by normalised convolution, then Wiener (scikit-image) or Richardson-Lucy
  deconvolution of the pixel's box PSF; superseded by version 2 (inversion of the
  area-sampling model by conjugate gradients).
* ``stretch_channels`` 1: each channel stretched from its 0.5th/99.5th percentile to black
  and white; superseded by version 2 (default: onto the channels' common range, which does
  not overshoot on scenes without black or white; version 1's map is its ``target="full"``).
* ``deconvolve_wiener`` 3: automatic balance the larger of the balance minimising an error
  predicted from a power-law signal spectrum fitted to the mirror-extended image and the blur
  term; superseded by version 4 (signal spectrum from the windowed periodogram, the border
  mismatch's ringing in the predicted error, no blur term). A given balance restores the same
  pixels in all three versions.
* ``denoise_bm3d`` 1: a faster profile of BM3D (reference blocks every 4 px, search +-8 px,
  Walsh-Hadamard along the group, groups of at most 16 in both stages; its kernels stay in
  `forensic.classical.collaborative`, which `denoise_frames` 1 also uses); superseded by
  version 2 (the published search window, group sizes, bior1.5 and Haar transforms: 0.33 dB
  closer to the reference BM3D on the bench's five images, 0.50 dB on ten others).
* ``denoise_frames`` 1: the BM3D of ``denoise_bm3d`` 1 (`forensic.classical.collaborative`)
  on the motion-compensated mean; superseded by version 2 (``denoise_bm3d`` 2's kernels,
  otherwise the same code, `forensic.classical.videodenoise.denoise_frames_with`).
* ``denoise_gaussian`` 1: scipy's Gaussian on float64 planes, truncated at four sigma;
  superseded by version 2 (OpenCV's bit-exact fixed-point Gaussian on the integer values,
  within two levels of it), copied from commit 5db9986.

These two were copied from the code of commit 6c017c2 (the last before their replacement),
with the helpers they share with the current versions imported (the Wiener solver, the
registration and the pixel PSF, unchanged); tests/test_superseded_versions.py pins the SHA-256
of their outputs as that commit's own code computed them, so a change to a shared helper that
moves their pixels fails there.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import cv2
import numpy as np
from scipy import ndimage
from skimage import exposure as sk_exposure
from skimage import restoration

from forensic.classical import collaborative
from forensic.classical import references as ref
from forensic.classical.deblur import (
    FrequencyGrid,
    blur_scale,
    deconvolve_planes,
    default_balance,
    grey_for_estimation,
    pad_width,
    power_spectrum,
    resolve_psf,
    wiener_plane,  # the Wiener-Hunt solver of versions 2 and 3, unchanged in version 4
)
from forensic.classical.photo import LIMARE_2011, channel_points
from forensic.classical.psf import (
    PSF_GRAMMAR,
    PSFSpec,
    estimate_motion_blur,
    parse_psf,
    psf_from_rows,
    validate_psf,
)
from forensic.classical.temporal import check_first_frame, content_shift, grey_frame, pixel_psf
from forensic.classical.videodenoise import denoise_frames_with
from forensic.errors import ParameterError
from forensic.ops.framework import FrameResult, Param, operation
from forensic.ops.measure import estimate_noise_sigma
from forensic.ops.pixels import (
    Float,
    Image,
    from_float,
    map_planes,
    map_values,
    on_luma,
    per_plane,
    split_alpha,
    to_float,
)


@operation(
    name="clahe",
    version="1",
    superseded=True,
    category="exposure",
    swgit_class="basic",
    summary="Contrast-limited adaptive histogram equalisation (of luma for colour).",
    description="""Equalises the histogram in tiles and interpolates between the tiles'
    mappings bilinearly, clipping each tile histogram at clip_limit so that noise in flat
    areas is not amplified without bound. Brings out detail in both shadows and highlights of
    unevenly lit scenes. The luma range is first stretched to full scale (scikit-image's
    implementation, at 14-bit internal precision), so CLAHE includes a global min-max
    stretch; a flat image is returned unchanged. Colour images are processed on BT.601 luma
    only.""",
    references=(ref.ZUIDERVELD_1994, ref.PIZER_1987),
    params=(
        Param(
            "tile_size",
            "int",
            "Side of the contextual tiles.",
            "px",
            8,
            4096,
            auto="1/8 of the image height and width",
        ),
        Param(
            "clip_limit",
            "float",
            "Histogram clip limit (higher = more contrast; 1 = no limit, plain AHE).",
            "",
            0.0,
            1.0,
            exclusive_minimum=True,
        ),
        Param("bins", "int", "Histogram bins per tile.", "", 16, 65536),
    ),
)
def clahe_v1(
    image: Image, *, tile_size: int | None = None, clip_limit: float = 0.01, bins: int = 256
) -> Image:
    """CLAHE, version 1 (superseded; kept for replay).

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    tile_size : int or None
        Tile side in pixels; None uses 1/8 of each image dimension.
    clip_limit : float
        Normalised clip limit in [0, 1].
    bins : int
        Number of histogram bins.

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``.

    Notes
    -----
    The luma is stretched to [0, 1] (min-max), then per tile the histogram is clipped at
    ``clip_limit`` (excess redistributed evenly) and its CDF gives that tile's mapping; each
    pixel's value is the bilinear blend of the four nearest tiles' mappings.

    References
    ----------
    Zuiderveld (1994), doi:10.1016/B978-0-12-336156-1.50061-6; Pizer et al. (1987),
    doi:10.1016/S0734-189X(87)80186-X.
    """

    def equalise(y: Float) -> Float:
        if np.ptp(y) == 0:  # scikit-image would stretch a flat image to white
            return y
        out = sk_exposure.equalize_adapthist(
            np.clip(y, 0.0, 1.0), kernel_size=tile_size, clip_limit=clip_limit, nbins=bins
        )
        return np.asarray(out, np.float64)

    return map_values(image, lambda x: on_luma(x, equalise))


@operation(
    name="unsharp_mask",
    version="1",
    superseded=True,
    category="sharpen",
    swgit_class="basic",
    summary="Unsharp masking: add back the difference from a blurred copy.",
    description="""Blurs the image with a Gaussian of the given radius, takes the difference
    between the image and the blurred copy (the fine detail), and adds that detail back
    multiplied by amount, wherever it exceeds threshold (so that flat, noisy areas are left
    alone). Increases edge contrast; it creates no detail that was not there, and strong
    settings produce halos along edges. Colour images are sharpened on BT.601 luma.""",
    references=(ref.SCHREIBER_1970, ref.GONZALEZ_WOODS),
    params=(
        Param(
            "radius", "float", "Gaussian standard deviation of the blurred copy.", "px", 0.3, 20.0
        ),
        Param("amount", "float", "Gain applied to the detail.", "factor", 0.0, 10.0),
        Param(
            "threshold",
            "float",
            "Detail smaller than this is not amplified.",
            "fraction of full scale",
            0.0,
            1.0,
        ),
    ),
)
def unsharp_mask_v1(
    image: Image, *, radius: float = 1.0, amount: float = 1.0, threshold: float = 0.0
) -> Image:
    """Unsharp mask, version 1 (superseded; kept for replay).

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    radius : float
        Standard deviation of the Gaussian, in pixels.
    amount : float
        Gain on the detail signal.
    threshold : float
        Minimum absolute detail (fraction of full scale) that is amplified.

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``.

    Notes
    -----
    ``d = x - G_r * x``; ``y = x + amount . d . [|d| >= threshold]``; Gaussian borders
    reflected; applied to luma ``Y`` for colour (``Y' - Y`` added to R, G, B), in float64.

    References
    ----------
    Schreiber (1970), Pattern Recognition 2(2), 117-120.
    """

    def sharpen(y: Float) -> Float:
        detail = y - ndimage.gaussian_filter(y, radius, mode="reflect")
        return np.asarray(y + amount * detail * (np.abs(detail) >= threshold), np.float64)

    return map_values(image, lambda x: on_luma(x, sharpen))


# -- deconvolve_wiener 2 ----------------------------------------------------------------------

#: Version 2 refused motion(auto) below this confidence (version 3 lowered it to 3.9 and
#: added a least length); kept so that version 2 refuses what it refused.
_V2_MIN_MOTION_CONFIDENCE = 6.0


def _resolve_psf_v2(image: Image, psf: str | list[list[float]]) -> tuple[PSFSpec, dict[str, Any]]:
    """`forensic.classical.deblur.resolve_psf` as version 2 had it."""
    op = "deconvolve_wiener"
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
    if estimate.confidence < _V2_MIN_MOTION_CONFIDENCE:
        raise ParameterError(
            op,
            "psf",
            "motion(auto) found no clear linear motion blur in this image (confidence "
            f"{estimate.confidence:.1f} < {_V2_MIN_MOTION_CONFIDENCE}; best guess length "
            f"{estimate.length:.1f} px, angle {estimate.angle:.1f} degrees)",
            hint="the blur may not be uniform linear motion; give the PSF explicitly, "
            "e.g. motion(length=12, angle=0), gaussian(sigma=2) or defocus(radius=3)",
        )
    return estimate.spec(), {"motion_estimate": estimate.as_dict()}


def _resolve_wiener_v2(image: Image, p: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Resolve ``psf`` and ``balance`` as version 2 did; record estimates in the details."""
    spec, details = _resolve_psf_v2(image, p["psf"])
    p = {**p, "psf": spec.record()}
    if p["balance"] is None:
        sigma = round(estimate_noise_sigma(image), 6)
        p["balance"] = default_balance(spec.kernel(), sigma)
        details = {**details, "noise_sigma_estimated": sigma}
    return p, details


@operation(
    name="deconvolve_wiener",
    version="2",
    superseded=True,
    category="deblur",
    swgit_class="advanced",
    summary="Wiener-Hunt deconvolution with a known or estimated PSF.",
    description="""Inverts a known blur in the frequency domain, regularised so that noise is
    not amplified without limit: frequencies where the blur leaves little signal are restored
    less, according to the balance between fidelity to the data and smoothness (a Laplacian
    prior). The image is extended by mirror reflection before the transform and cropped after,
    so that edges do not ring. The PSF is given as a model (Gaussian, linear motion, defocus
    disc) or estimated from the image for linear motion; the balance defaults to the estimated
    noise level, raised for long motion and large defocus blurs. Restores detail that the
    blur attenuated; cannot recover frequencies the blur removed entirely.""",
    references=(ref.HUNT_1973, ref.ORIEUX_2010, ref.LIU_JIA_2008, *ref.MOTION_ESTIMATION),
    resolve=_resolve_wiener_v2,
    params=(
        Param(
            "psf",
            "psf",
            "Point-spread function of the blur: a model, motion(auto) to estimate it, or the "
            "kernel.",
            text_format=PSF_GRAMMAR,
            validator=validate_psf,
        ),
        Param(
            "balance",
            "float",
            "Regularisation weight (higher: smoother, less ringing).",
            "",
            0.0,
            10.0,
            exclusive_minimum=True,
            auto="the larger of the estimated noise sigma and min(0.5, 2.5e-6 (1 / f0)^4), f0 the "
            "lowest frequency (cycles/px) where the PSF passes less than 10 %",
        ),
    ),
)
def deconvolve_wiener_v2(
    image: Image,
    *,
    psf: str | list[list[float]] = "gaussian(sigma=1.5)",
    balance: float | None = None,
) -> Image:
    """Wiener-Hunt deconvolution, version 2 (superseded; kept for replay).

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16; colour channels are restored independently.
    psf : str or 2-D list of float
        PSF text (see `forensic.classical.psf.parse_psf`), ``motion(auto)`` to estimate it,
        or the kernel's rows (odd sides, normalised to sum 1).
    balance : float or None
        Regularisation weight lambda; None: `forensic.classical.deblur.default_balance`
        (noise level, raised for motion and defocus blurs whose spectral zeros would
        otherwise ring).

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

    References
    ----------
    Hunt (1973), IEEE Trans. Computers C-22(9); Orieux, Giovannelli & Rodet (2010);
    Liu & Jia (2008), doi:10.1109/ICIP.2008.4711802.
    """
    spec, _ = _resolve_psf_v2(image, psf)
    kernel = spec.kernel()
    lam = balance if balance is not None else default_balance(kernel, estimate_noise_sigma(image))
    return map_values(image, lambda x: per_plane(x, lambda p: wiener_plane(p, kernel, lam)))


# -- deconvolve_wiener 3 ----------------------------------------------------------------------
#
# Version 3's automatic balance, copied from forensic/classical/deblur.py at 5db9986 (the last
# commit with version 3 current); the solver, the PSF resolution (`resolve_psf`, motion(auto)
# at confidence 3.9) and the mirror extension are shared with version 4, unchanged.

#: Balances version 3's search tried: 10^-6 to 10 in steps of 0.1 decade.
_V3_BALANCES = 10.0 ** np.arange(-6.0, 1.05, 0.1)


def _blur_term_v3(kernel: Float) -> float:
    """The least balance for a PSF with near-zeros (see `default_balance`), 0 if none."""
    scale = blur_scale(kernel)
    return 0.0 if scale is None else min(0.5, 2.5e-6 * scale**4)


def _spectral_balance_v3(grey: Float, kernel: Float, noise_sigma: float) -> float:
    """The Wiener-Hunt balance that minimises the expected restoration error predicted from
    the image's own spectrum.

    On the mirror-extended image (as the solver sees it): the signal's power spectrum is
    estimated as ``(|Y|^2 / N - sigma^2) / |H|^2`` averaged over the frequencies where the
    PSF passes more than 25 % of the power, in radial bands (below 0.01 cycles/px, 15
    log-spaced bands up to 0.5, and the corners beyond); in bands the PSF all but removes, by
    a power law ``S(f) = c f^a`` fitted to the measured bands where the signal exceeds the
    noise (natural images: a about -2 to -4), capped by the least measured band below. A
    smooth image thus gets a small signal spectrum at high frequencies, and a large balance.
    For each candidate balance lambda, the restoration
    ``G = conj(H) / (|H|^2 + lambda |D|^2)`` then has expected error
    ``sum_f |G H - 1|^2 S(f) + |G|^2 sigma^2``; the minimiser is returned (a grid of 0.1
    decade from 1e-6 to 10). With fewer than two usable bands the power law defaults to
    ``a = -2`` through the mean power.
    """
    grid = FrequencyGrid(grey, pad_width(kernel))
    h2 = power_spectrum(grid.transfer(kernel)).astype(np.float64)
    sy = power_spectrum(grid.rfft(grid.values)).astype(np.float64) / grid.size
    d2 = grid.laplacian().astype(np.float64) ** 2
    fh, fw = grid.shape
    rho = np.sqrt(np.fft.fftfreq(fh)[:, None] ** 2 + (np.arange(fw // 2 + 1) / fw)[None, :] ** 2)
    weight = np.full(sy.shape[1], 2.0)  # Hermitian half spectrum: the other half counts too
    weight[0] = 1.0
    if fw % 2 == 0:
        weight[-1] = 1.0
    s2 = max(noise_sigma, 1e-4) ** 2
    passed = h2 > 0.25
    signal = (sy - s2) / np.maximum(h2, 1e-12)
    edges = np.concatenate([[0.0], np.geomspace(0.01, 0.5, 16), [np.inf]])
    band_of = np.digitize(rho, edges) - 1
    measured: dict[int, float] = {}
    for k in range(len(edges) - 1):
        band = passed & (band_of == k)
        if int(band.sum()) >= 8:
            measured[k] = max(float(signal[band].mean()), 1e-3 * s2)
    # Bands the PSF all but removes: a power law through the measured bands above 0.01
    # cycles/px where the signal clearly exceeds the noise.
    fit = [
        (math.log(math.sqrt(edges[k] * edges[k + 1])), math.log(v))
        for k, v in measured.items()
        if 0 < k < len(edges) - 2 and v > s2
    ]
    if len(fit) >= 2:
        slope, intercept = np.polyfit([x for x, _ in fit], [y for _, y in fit], 1)
    else:
        slope, intercept = -2.0, math.log(max(float(sy.mean()), 1e-12))
    model = np.exp(intercept) * np.maximum(rho, 0.5 / max(fh, fw)) ** slope
    # A natural image's spectrum falls with frequency: an unmeasured band holds no more than
    # the measured bands below it (a smooth image is not credited with detail it lacks).
    ceiling = math.inf
    for k in range(len(edges) - 1):
        in_band = band_of == k
        if k in measured:
            ceiling = min(ceiling, measured[k])
            model[in_band] = measured[k]
        else:
            model[in_band] = np.minimum(model[in_band], ceiling)
    # Every other row and column: the sums change by far less than the 0.1-decade grid step.
    h2, d2, model = h2[::2, ::2], d2[::2, ::2], model[::2, ::2]
    w = np.broadcast_to(weight[None, ::2], h2.shape)
    errors = []
    for lam in _V3_BALANCES:
        denominator = h2 + lam * d2
        gain = h2 / denominator
        errors.append(float((w * ((1 - gain) ** 2 * model + h2 / denominator**2 * s2)).sum()))
    return float(_V3_BALANCES[int(np.argmin(errors))])


def _auto_balance_v3(grey: Float, kernel: Float, noise_sigma: float) -> float:
    """The automatic Wiener-Hunt balance: the larger of `_spectral_balance_v3` and `_blur_term_v3`
    (the spectral estimate assumes the blur model exact; near the zeros of a motion or
    defocus PSF the mirror-extended image departs from it and rings, which the blur term,
    calibrated on 9 and 15 px motion, prevents)."""
    return round(
        max(_spectral_balance_v3(grey, kernel, noise_sigma), _blur_term_v3(kernel), 1e-4), 6
    )


def _resolve_wiener_v3(image: Image, p: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Resolve ``psf`` and ``balance`` as version 3 did; record estimates in the details."""
    spec, details = resolve_psf(image, p["psf"], "deconvolve_wiener")
    p = {**p, "psf": spec.record()}
    if p["balance"] is None:
        sigma = round(estimate_noise_sigma(image), 6)
        p["balance"] = _auto_balance_v3(grey_for_estimation(image), spec.kernel(), sigma)
        details = {**details, "noise_sigma_estimated": sigma}
    return p, details


@operation(
    name="deconvolve_wiener",
    version="3",
    superseded=True,
    category="deblur",
    swgit_class="advanced",
    summary="Wiener-Hunt deconvolution with a known or estimated PSF.",
    description="""Inverts a known blur in the frequency domain, regularised so that noise is
    not amplified without limit: frequencies where the blur leaves little signal are restored
    less, according to the balance between fidelity to the data and smoothness (a Laplacian
    prior). The image is extended by mirror reflection before the transform and cropped after,
    so that edges do not ring. The PSF is given as a model (Gaussian, linear motion, defocus
    disc) or estimated from the image for linear motion; the balance defaults to the estimated
    noise level, raised for long motion and large defocus blurs. Restores detail that the
    blur attenuated; cannot recover frequencies the blur removed entirely.""",
    references=(ref.HUNT_1973, ref.ORIEUX_2010, ref.LIU_JIA_2008, *ref.MOTION_ESTIMATION),
    resolve=_resolve_wiener_v3,
    params=(
        Param(
            "psf",
            "psf",
            "Point-spread function of the blur: a model, motion(auto) to estimate it, or the "
            "kernel.",
            text_format=PSF_GRAMMAR,
            validator=validate_psf,
        ),
        Param(
            "balance",
            "float",
            "Regularisation weight (higher: smoother, less ringing).",
            "",
            0.0,
            10.0,
            exclusive_minimum=True,
            auto="the larger of the balance minimising the restoration error predicted from "
            "the image's spectrum (power-law signal spectrum, estimated noise sigma) and "
            "min(0.5, 2.5e-6 (1 / f0)^4), f0 the lowest frequency (cycles/px) where the PSF "
            "passes less than 10 %",
        ),
    ),
)
def deconvolve_wiener_v3(
    image: Image,
    *,
    psf: str | list[list[float]] = "gaussian(sigma=1.5)",
    balance: float | None = None,
) -> Image:
    """Wiener-Hunt deconvolution, version 3 (superseded; kept for replay).

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16; colour channels are restored independently.
    psf : str or 2-D list of float
        PSF text (see `forensic.classical.psf.parse_psf`), ``motion(auto)`` to estimate it,
        or the kernel's rows (odd sides, normalised to sum 1).
    balance : float or None
        Regularisation weight lambda; None: `_auto_balance_v3` (the larger of the balance
        minimising the error predicted from a power-law signal spectrum and the blur term).

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

    References
    ----------
    Hunt (1973), IEEE Trans. Computers C-22(9); Orieux, Giovannelli & Rodet (2010);
    Liu & Jia (2008), doi:10.1109/ICIP.2008.4711802.
    """
    spec, _ = resolve_psf(image, psf, "deconvolve_wiener")
    kernel = spec.kernel()
    if balance is None:
        sigma = round(estimate_noise_sigma(image), 6)
        balance = _auto_balance_v3(grey_for_estimation(image), kernel, sigma)
    lam = balance
    return map_values(image, lambda x: per_plane(x, lambda p: wiener_plane(p, kernel, lam)))


# -- super_resolve_frames 1 -------------------------------------------------------------------


def _fill_holes(total: Float, count: Float) -> tuple[Float, float]:
    """Mean where samples landed; elsewhere a Gaussian-weighted mean of measured neighbours
    (normalised convolution), the Gaussian widened until every hole has neighbours."""
    measured = count > 0
    mean = np.where(measured[..., None], total / np.maximum(count, 1)[..., None], 0.0)
    holes = ~measured
    fraction = float(holes.mean())
    sigma = 1.0
    while holes.any():
        size = 2 * math.ceil(3 * sigma) + 1
        weight = cv2.GaussianBlur(measured.astype(np.float64), (size, size), sigma)
        planes = [
            cv2.GaussianBlur(np.ascontiguousarray(mean[..., c] * measured), (size, size), sigma)
            for c in range(mean.shape[2])
        ]
        reached = holes & (weight > 1e-6)
        for c, plane in enumerate(planes):
            mean[..., c] = np.where(reached, plane / np.maximum(weight, 1e-300), mean[..., c])
        holes &= ~reached
        sigma *= 2.0
    return mean, fraction


def _aligned_correlation(reference: Float, grey: Float, dx: float, dy: float) -> float:
    """Correlation coefficient of the reference frame and ``grey`` shifted back by (dx, dy)
    (bilinear, borders reflected), as version 1 measured it; 0 if either is flat."""
    h, w = reference.shape
    matrix = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    aligned = np.asarray(
        cv2.warpAffine(grey, matrix, (w, h), flags=flags, borderMode=cv2.BORDER_REFLECT),
        np.float32,
    )
    if float(np.ptp(reference)) == 0.0 or float(np.ptp(aligned)) == 0.0:
        return 0.0
    return float(cv2.computeECC(reference, aligned))


@operation(
    name="super_resolve_frames",
    version="1",
    superseded=True,
    category="temporal",
    swgit_class="advanced",
    temporal="reduce",
    summary="Multi-frame super-resolution: shift-and-add onto a finer grid, then deconvolve.",
    description="""Builds one image with scale times more pixels per side from a range of
    frames of the same, static scene that the camera saw at slightly different sub-pixel
    positions. Each frame is registered to the first to 1/100 pixel (phase correlation, whole
    frame, translation only); each of its pixels is then placed at the position it measured on
    the finer grid, and the values landing on each fine pixel are averaged (or, robustly, their
    median taken). Fine pixels that no frame measured are interpolated from measured
    neighbours (the fraction is recorded). What results is the scene blurred by the area of one
    camera pixel, which is then deconvolved (Wiener or Richardson-Lucy) with that known
    blur. Every output pixel comes from measured samples: this is classical super-resolution,
    not a learned model, and it gains detail only when the frames really are offset by
    fractions of a pixel; moving objects and frames of a moving scene must be excluded.""",
    references=(
        ref.FARSIU_2004,
        ref.GUIZAR_SICAIROS_2008,
        ref.HUNT_1973,
        ref.RICHARDSON_1972,
        ref.LUCY_1974,
    ),
    effect="resampled",
    params=(
        Param("scale", "int", "Magnification of each side.", "factor", 2, 4),
        Param(
            "method",
            "choice",
            "mean (L2 shift-and-add; constant memory) or median (robust to outliers; holds the "
            "whole range in memory).",
            choices=("mean", "median"),
        ),
        Param(
            "deconvolution",
            "choice",
            "Deblurring of the shift-and-add image: wiener, richardson_lucy or none.",
            choices=("wiener", "richardson_lucy", "none"),
        ),
        Param(
            "psf_sigma",
            "float",
            "Gaussian optical blur added to the pixel's box PSF.",
            "fine px",
            0.0,
            10.0,
        ),
        Param(
            "balance",
            "float",
            "Wiener regularisation weight.",
            "",
            0.0,
            10.0,
            exclusive_minimum=True,
            auto="default_balance of the PSF and the noise sigma of the first frame divided by "
            "the square root of the mean number of samples per fine pixel",
        ),
        Param("iterations", "int", "Richardson-Lucy iterations.", "", 1, 500),
        Param(
            "min_correlation",
            "float",
            "Least correlation coefficient between the reference and an aligned frame; a "
            "frame below it is refused with an error.",
            "",
            -1.0,
            1.0,
        ),
    ),
)
def super_resolve_frames_v1(
    frames: Iterable[Image],
    *,
    scale: int = 2,
    method: str = "mean",
    deconvolution: str = "wiener",
    psf_sigma: float = 0.0,
    balance: float | None = None,
    iterations: int = 10,
    min_correlation: float = 0.5,
) -> tuple[Image, dict[str, Any]]:
    """Multi-frame super-resolution by shift-and-add and deconvolution, version 1
    (superseded; kept for replay).

    Parameters
    ----------
    frames : iterable of ndarray
        Low-resolution frames of a static scene with sub-pixel camera motion (grey or colour,
        uint8 or uint16, all the same shape), consumed lazily.
    scale : int
        2, 3 or 4: output size is ``scale`` times the frame size.
    method : {'mean', 'median'}
        ``mean``: L2 shift-and-add, float64 accumulators on the fine grid (constant memory).
        ``median``: robust shift-and-add (Farsiu et al.'s L1 estimate), which holds every
        frame's samples (memory grows with the range).
    deconvolution : {'wiener', 'richardson_lucy', 'none'}
        How the shift-and-add image is deblurred by `forensic.classical.temporal.pixel_psf`.
    psf_sigma : float
        Gaussian (optics, focus) blur to add to the pixel box, in fine pixels; 0: box only.
    balance : float or None
        Wiener weight lambda; None: `forensic.classical.deblur.default_balance` of the PSF
        and the first frame's estimated noise sigma divided by sqrt(mean samples per pixel).
    iterations : int
        Richardson-Lucy iterations.
    min_correlation : float
        Least correlation coefficient between the first frame and another, once aligned; a
        frame below it raises `ParameterError` naming its position.

    Returns
    -------
    (ndarray, dict)
        The image (``scale`` times the size, the frames' dtype; alpha, if any, is the first
        frame's, repeated) and details ``frames``, ``shifts`` ([dx, dy] per frame, px of the
        frames), ``correlations``, ``samples_per_pixel`` (mean), ``filled_fraction`` (fine
        pixels no sample reached, interpolated), ``noise_sigma_estimated`` (first frame),
        ``psf_size`` and, for Wiener, ``balance``.

    Notes
    -----
    A pixel at (x, y) of frame k, displaced by ``d_k``, measured the scene at fine position
    ``P = scale ((x, y) - d_k) + (scale - 1) / 2`` (OpenCV's pixel-centre convention, as in
    `cv2.resize`); it is accumulated at the nearest fine pixel ``floor(P + 1/2)``, and the
    fine image is ``sum / count`` (mean) or the median of the samples (Farsiu et al. 2004,
    shift-and-add). This equals the sharp image convolved with the pixel's PSF ``h`` (box of
    ``scale`` fine pixels, optionally times a Gaussian); it is then deconvolved:
    Wiener-Hunt ``X = conj(H) Y / (|H|^2 + lambda |D|^2)`` or Richardson-Lucy, on the
    mirror-extended image (as in `forensic.classical.deblur`).

    References
    ----------
    Farsiu, Robinson, Elad & Milanfar (2004), doi:10.1109/TIP.2004.834669; Guizar-Sicairos
    et al. (2008), doi:10.1364/OL.33.000156; Hunt (1973); Richardson (1972),
    doi:10.1364/JOSA.62.000055; Lucy (1974), doi:10.1086/111605.
    """
    op = "super_resolve_frames"
    reference: Float | None = None
    total = count = np.zeros((1, 1))
    samples: list[tuple[int, int, Float]] = []
    shifts: list[list[float]] = []
    correlations: list[float] = []
    alpha: Image | None = None
    dtype: np.dtype[Any] = np.dtype(np.uint8)
    sigma = 0.0
    h = w = 0
    for position, frame in enumerate(frames):
        colour, frame_alpha = split_alpha(frame)
        values = to_float(colour)
        values = values if values.ndim == 3 else values[..., None]
        grey = grey_frame(frame)
        if reference is None:
            check_first_frame(op, frame)
            reference, alpha, dtype = grey, frame_alpha, frame.dtype
            h, w = frame.shape[:2]
            sigma = estimate_noise_sigma(frame)
            total = np.zeros((h * scale, w * scale, values.shape[2]))
            count = np.zeros((h * scale, w * scale))
            dx = dy = 0.0
            correlation = 1.0
        else:
            dx, dy = content_shift(reference, grey)
            correlation = _aligned_correlation(reference, grey, dx, dy)
            if not correlation >= min_correlation:
                raise ParameterError(
                    op,
                    "frames",
                    f"frame {position} (0 = first of the range) correlates only "
                    f"{correlation:.3f} with frame 0 once aligned (min_correlation "
                    f"{min_correlation:g})",
                    hint="the range must show one static scene: leave out cuts, frames of "
                    "another camera and frames where the view changes too much",
                )
        shifts.append([round(dx, 6), round(dy, 6)])
        correlations.append(round(correlation, 6))
        # Offsets of this frame's sample lattice on the fine grid: x -> scale x + ox.
        ox = math.floor((scale - 1) / 2 - scale * dx + 0.5)
        oy = math.floor((scale - 1) / 2 - scale * dy + 0.5)
        if method == "median":
            samples.append((ox, oy, values.astype(np.float32)))
        else:
            _accumulate(total, count, values, ox, oy, scale)
    measured = count
    if method == "median":
        total, measured, count = _median_samples(samples, (h * scale, w * scale), scale)
    n = len(shifts)
    fine, filled = _fill_holes(total, measured)
    kernel = pixel_psf(scale, psf_sigma)
    spp = float(count.mean())
    details: dict[str, Any] = {
        "frames": n,
        "shifts": shifts,
        "correlations": correlations,
        "samples_per_pixel": round(spp, 6),
        "filled_fraction": round(filled, 6),
        "noise_sigma_estimated": round(sigma, 6),
        "psf_size": int(kernel.shape[0]),
    }
    plane = fine if fine.shape[2] > 1 else fine[..., 0]
    if deconvolution == "wiener":
        lam = balance
        if lam is None:
            lam = default_balance(kernel, sigma / math.sqrt(max(spp, 1.0)))
        details["balance"] = lam
        plane = deconvolve_planes(
            plane, kernel, lambda p: restoration.wiener(p, kernel, lam, clip=False)
        )
    elif deconvolution == "richardson_lucy":
        plane = deconvolve_planes(
            np.clip(plane, 0.0, None),
            kernel,
            lambda p: restoration.richardson_lucy(p, kernel, num_iter=iterations, clip=False),
        )
    out = from_float(plane, dtype)
    if alpha is not None:
        big = np.repeat(np.repeat(alpha, scale, axis=0), scale, axis=1)
        out = np.concatenate([out, big[..., None]], axis=2)
    return out, details


def _accumulate(total: Float, count: Float, values: Float, ox: int, oy: int, scale: int) -> None:
    """Add a frame's samples at fine positions (scale x + ox, scale y + oy), where inside."""
    h, w = values.shape[:2]
    fh, fw = count.shape
    xs = _lattice(w, ox, scale, fw)
    ys = _lattice(h, oy, scale, fh)
    if xs is None or ys is None:
        return
    (x0, x1, fx0), (y0, y1, fy0) = xs, ys
    fine = (slice(fy0, fy0 + scale * (y1 - y0), scale), slice(fx0, fx0 + scale * (x1 - x0), scale))
    total[fine] += values[y0:y1, x0:x1]
    count[fine] += 1.0


def _lattice(n: int, offset: int, scale: int, fine: int) -> tuple[int, int, int] | None:
    """Source index range [i0, i1) whose fine positions ``scale i + offset`` lie in
    [0, fine), and the first fine position."""
    i0 = max(0, -(offset // scale) if offset < 0 else 0)
    while scale * i0 + offset < 0:
        i0 += 1
    i1 = n
    while i1 > i0 and scale * (i1 - 1) + offset >= fine:
        i1 -= 1
    if i1 <= i0:
        return None
    return i0, i1, scale * i0 + offset


def _median_samples(
    samples: list[tuple[int, int, Float]], shape: tuple[int, int], scale: int
) -> tuple[Float, Float, Float]:
    """Per fine pixel, the median of the samples that landed on it, as (total, weight,
    count): weight 1 where measured, so that `_fill_holes` applies unchanged, and count the
    number of samples."""
    channels = samples[0][2].shape[2]
    stack = np.full((len(samples), *shape, channels), np.nan, np.float32)
    hits = np.zeros((len(samples), *shape), np.float64)
    for k, (ox, oy, values) in enumerate(samples):
        one = np.zeros((*shape, channels))
        ones = np.zeros(shape)
        _accumulate(one, ones, values.astype(np.float64), ox, oy, scale)
        stack[k][ones > 0] = one[ones > 0]
        hits[k] = ones
    count = hits.sum(axis=0)
    with warnings.catch_warnings():
        # Fine pixels no frame reached are all-NaN; they are filled afterwards.
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nanmedian(stack, axis=0).astype(np.float64)
    measured = count > 0
    total = np.where(measured[..., None], median, 0.0)
    return total, measured.astype(np.float64), count


# -- stretch_channels 1 (copied from commit 8db635b) ---------------------------------------


def _stretch_details_v1(image: Image, p: dict[str, Any]) -> dict[str, Any]:
    values = to_float(split_alpha(image)[0])
    black, white = channel_points(values, p["low_percentile"], p["high_percentile"])
    return {
        "black_points": [round(float(v), 6) for v in black],
        "white_points": [round(float(v), 6) for v in white],
        "gains": [
            round(float(1.0 / max(w - b, 1e-6)), 6) for b, w in zip(black, white, strict=True)
        ],
    }


@operation(
    name="stretch_channels",
    version="1",
    superseded=True,
    category="colour",
    swgit_class="basic",
    summary="Undo dye fading: stretch each channel between its own black and white points.",
    description="""Faded colour prints lose each dye at its own rate, so every channel keeps a
    smaller and differently shifted range than it had: the print looks washed out and tinted.
    Each channel is mapped linearly so that its low percentile becomes black and its high
    percentile white (a per-channel affine map), which restores contrast and removes the cast
    together. The black and white points found for each channel are recorded. Detail that a
    dye lost entirely cannot come back; the chosen percentiles are clipped.""",
    references=(LIMARE_2011, ref.GONZALEZ_WOODS),
    params=(
        Param("low_percentile", "float", "Percentile of each channel made black.", "%", 0.0, 49.0),
        Param(
            "high_percentile", "float", "Percentile of each channel made white.", "%", 51.0, 100.0
        ),
    ),
    details_for=_stretch_details_v1,
)
def stretch_channels(
    image: Image, *, low_percentile: float = 0.5, high_percentile: float = 99.5
) -> Image:
    """Per-channel linear stretch ("simplest colour balance").

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16 (alpha is carried).
    low_percentile : float
        Percentile of each channel mapped to 0.
    high_percentile : float
        Percentile of each channel mapped to full scale.

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``.

    Notes
    -----
    ``out_c = (in_c - b_c) / (w_c - b_c)`` with ``b_c`` and ``w_c`` the channel's
    ``low_percentile`` and ``high_percentile``; a channel with ``w_c - b_c < 1e-6`` (flat) is
    left as it is. Dye fading is modelled as ``faded_c = a_c + g_c x_c`` (a loss of density
    range plus a stain), which this map inverts exactly when the percentiles of the faded
    channel are the faded images of the original's black and white.

    References
    ----------
    Limare et al. (2011), doi:10.5201/ipol.2011.llmps-scb; Gonzalez & Woods (2018).
    """

    def stretch(values: Float) -> Float:
        black, white = channel_points(values, low_percentile, high_percentile)
        span = white - black
        ok = span >= 1e-6
        out = (values - np.where(ok, black, 0.0)) / np.where(ok, span, 1.0)
        return np.asarray(out.reshape(values.shape), np.float64)

    return map_values(image, stretch)


def _resolve_bm3d_v1(image: Image, p: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    if p["sigma"] is not None:
        return p, {}
    sigma = round(estimate_noise_sigma(image), 6)
    return {**p, "sigma": sigma}, {"noise_sigma_estimated": sigma}


@operation(
    name="denoise_bm3d",
    version="1",
    superseded=True,
    category="denoise",
    swgit_class="advanced",
    summary="Collaborative filtering of grouped similar blocks (BM3D), in two stages.",
    description="""Finds, for blocks of 8 x 8 pixels across the image, the other blocks
    that look most alike nearby, stacks each such group into a 3-D array and denoises the
    group jointly: in a transform where the shared structure of the similar blocks is
    concentrated in few coefficients, small coefficients (mostly noise) are removed. Every
    block gets several estimates (it belongs to several groups), which are averaged. A first
    pass removes noise by thresholding; a second pass groups again on that first estimate and
    applies a Wiener filter guided by it. Colour images are filtered in an opponent colour
    space, grouped on brightness. Our implementation of the published algorithm (Dabov et
    al. 2007); by default the noise level is estimated from the image.""",
    references=(ref.DABOV_2007,),
    resolve=_resolve_bm3d_v1,
    params=(
        Param(
            "sigma",
            "float",
            "Noise standard deviation.",
            "fraction of full scale",
            0.0,
            1.0,
            auto="estimated from the image (estimate_noise_sigma)",
        ),
    ),
)
def denoise_bm3d_v1(image: Image, *, sigma: float | None = None) -> Image:
    """BM3D denoising, version 1 (superseded; kept for replay).

    Parameters
    ----------
    image : ndarray
        Grey or RGB(A) image, uint8 or uint16, at least 8 x 8 pixels.
    sigma : float or None
        Noise standard deviation (all channels); None: `estimate_noise_sigma`.

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``; alpha, if any, unchanged.

    Notes
    -----
    Two stages on 8 x 8 blocks, reference blocks every 4 px, up to 16 blocks per group found
    within +-8 px by the sum of squared differences (mean at most 2500 / 255^2 in stage 1,
    400 / 255^2 in stage 2, on the stage-1 estimate), group sizes powers of two. Transform:
    2-D DCT per block, Walsh-Hadamard across the group. Stage 1 zeroes coefficients below
    2.7 sigma and aggregates block estimates weighted by ``1 / N_nonzero`` times a Kaiser
    window (beta 2); stage 2 shrinks the noisy group's spectrum by ``B^2 / (B^2 + sigma^2)``
    (``B`` the stage-1 group's spectrum), weight ``1 / sum(shrink^2)``. Colour: orthonormal
    opponent transform (noise sigma kept per channel), grouping on its first channel.

    References
    ----------
    Dabov, Foi, Katkovnik & Egiazarian (2007), doi:10.1109/TIP.2007.901238.
    """
    if sigma is None:
        sigma = _resolve_bm3d_v1(image, {"sigma": None})[0]["sigma"]
    colour, _ = split_alpha(image)
    if min(colour.shape[:2]) < collaborative.BLOCK:
        raise ParameterError(
            "denoise_bm3d",
            "image",
            f"is {colour.shape[1]} x {colour.shape[0]} px; BM3D needs at least "
            f"{collaborative.BLOCK} x {collaborative.BLOCK}",
            hint="use denoise_nl_means or denoise_wavelet on very small images",
        )
    if sigma == 0:
        return image.copy()
    return map_values(image, lambda x: collaborative.bm3d_image(x, float(sigma)))


# -- denoise_gaussian 1 (copied from commit 5db9986) ---------------------------------------


@operation(
    name="denoise_gaussian",
    version="1",
    superseded=True,
    category="denoise",
    swgit_class="basic",
    summary="Gaussian smoothing.",
    description="""Convolves each channel with a sampled Gaussian of standard deviation sigma,
    truncated at four sigma, reflecting the image at its borders. Removes fine noise and fine
    detail alike; use it before measuring, not to make detail legible.""",
    references=(ref.MARR_HILDRETH_1980, ref.GONZALEZ_WOODS),
    params=(Param("sigma", "float", "Standard deviation of the kernel.", "px", 0.1, 50.0),),
)
def denoise_gaussian_v1(image: Image, *, sigma: float = 1.0) -> Image:
    """Gaussian low-pass filter, version 1 (superseded; kept for replay).

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    sigma : float
        Kernel standard deviation in pixels.

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``.

    Notes
    -----
    ``y = x * G_sigma`` with ``G_sigma(u, v) = exp(-(u^2 + v^2) / (2 sigma^2))`` normalised to
    sum 1, truncated at ``4 sigma``; borders reflected (``d c b a | a b c d``), float64.

    References
    ----------
    Marr & Hildreth (1980), doi:10.1098/rspb.1980.0020.
    """
    return map_planes(image, lambda p: ndimage.gaussian_filter(p, sigma, mode="reflect"))


# -- denoise_frames 1 (its code is version 2's, with denoise_bm3d 1's kernels) -------------


@operation(
    name="denoise_frames",
    version="1",
    superseded=True,
    category="temporal",
    swgit_class="advanced",
    temporal="map",
    summary="Video denoising from motion-compensated neighbouring frames, then BM3D.",
    description="""Denoises every frame of a range using the frames around it: each of up
    to radius frames before and after is aligned to the frame (translation to 1/100 pixel,
    by phase correlation), and its pixels are averaged with the frame's own wherever the
    surrounding patch matches (where something moved, the neighbour's pixel gets little or
    no weight, so motion is not smeared). The average, whose noise is lower than one
    frame's, is then denoised by BM3D at the noise level it has left. Every output value is
    computed from measured samples of the frame and its neighbours; nothing is invented.
    The noise level is estimated on the first frame of the range unless given.""",
    references=(ref.DABOV_2007, ref.BUADES_2005, ref.KUGLIN_HINES_1975),
    effect="values",
    params=(
        Param("radius", "int", "Neighbouring frames used on each side.", "frames", 0, 7),
        Param(
            "sigma",
            "float",
            "Noise standard deviation of one frame.",
            "fraction of full scale",
            0.0,
            1.0,
            auto="estimated on the first frame of the range (estimate_noise_sigma)",
        ),
    ),
)
def denoise_frames_v1(
    frames: Iterable[Image], *, radius: int = 2, sigma: float | None = None
) -> Iterator[FrameResult]:
    """Video denoising, version 1 (superseded; kept for replay): `denoise_frames` with the
    BM3D of `denoise_bm3d` 1 (`forensic.classical.collaborative`: reference blocks every
    4 px, search +-8 px, DCT and Walsh-Hadamard, single-threaded).

    Parameters
    ----------
    frames : iterable of ndarray
        The frame range (see `forensic.classical.videodenoise.denoise_frames`).
    radius : int
        Frames used on each side.
    sigma : float or None
        Noise standard deviation of one frame; None: estimated on the first.

    Returns
    -------
    iterator of (ndarray, dict)
        As version 2.

    Notes
    -----
    As version 2 (`forensic.classical.videodenoise.denoise_frames`) but for the BM3D applied
    to the weighted mean and, where neighbours did not match, to the frame alone.

    References
    ----------
    Dabov, Foi, Katkovnik & Egiazarian (2007), doi:10.1109/TIP.2007.901238; Buades, Coll &
    Morel (2005), doi:10.1109/CVPR.2005.38; Kuglin & Hines (1975).
    """
    return denoise_frames_with(collaborative.bm3d_image, frames, radius=radius, sigma=sigma)
