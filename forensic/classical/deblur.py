"""Deconvolution: Wiener-Hunt, Richardson-Lucy and unsupervised Wiener, with a given or
estimated point-spread function.

Borders. The FFT-based solvers assume the image repeats periodically, and scikit-image's
Richardson-Lucy assumes zeros outside it; both are false for a photograph, and the mismatch
rings inwards from every edge (a plain Richardson-Lucy call *lost* 2 to 5 dB on our test
images for this reason). Every solver here therefore runs on the image extended by mirror
reflection (``max(32, 2 x PSF size)`` pixels each side, the edge sample repeated, numpy's "symmetric") and the
extension is cropped off afterwards. An extra cosine taper of the extension changed nothing
measurable (< 0.01 dB) and is not used.

Noise. Deconvolution amplifies noise; Wiener regularises (``balance``, by default from the
estimated noise level and the PSF, see `default_balance`), Richardson-Lucy stops early (30
iterations by default). Both defaults were calibrated on camera, astronaut and coffee with a
9 x 9 Gaussian PSF (sigma 2) and noise sigma 0.005 to 0.02, where they gain about 2 dB, and
with linear motion of 9 and 15 px (tests/test_classical_quality.py checks the gains).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from skimage import restoration

from forensic.classical import references as ref
from forensic.classical._pixels import Float, Image, map_values, per_plane, split_alpha, to_float
from forensic.classical.denoise import estimate_noise_sigma
from forensic.classical.psf import (
    PSF_GRAMMAR,
    PSFSpec,
    estimate_motion_blur,
    parse_psf,
    psf_from_rows,
    validate_psf,
)
from forensic.classical.registry import Param, operation
from forensic.errors import ParameterError

_PSF_PARAM = Param(
    "psf",
    "psf",
    "Point-spread function of the blur: a model, motion(auto) to estimate it, or the kernel.",
    text_format=PSF_GRAMMAR,
    validator=validate_psf,
)


#: motion(auto) is refused below this confidence (robust z-score of the cepstral dips).
#: Measured: images without motion blur (camera, astronaut, coffee, chelsea, text, coins,
#: sharp or Gaussian-blurred) and white noise scored 2.4 to 5.4; synthetic motion blurs of
#: 8 to 25 px scored 7.6 or more, and scikit-image's clock_motion.png 7.0.
MIN_MOTION_CONFIDENCE = 6.0


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
    if estimate.confidence < MIN_MOTION_CONFIDENCE:
        raise ParameterError(
            op,
            "psf",
            "motion(auto) found no clear linear motion blur in this image (confidence "
            f"{estimate.confidence:.1f} < {MIN_MOTION_CONFIDENCE}; best guess length "
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


def _pad_width(psf: Float) -> int:
    return int(max(32, 2 * max(psf.shape)))


def _deconvolve(values: Float, psf: Float, solve: Any) -> Float:
    n = _pad_width(psf)

    def one(plane: Float) -> Float:
        padded = np.pad(plane, n, mode="symmetric")
        return np.asarray(solve(padded), np.float64)[n:-n, n:-n]

    return per_plane(values, one)


def _psf_resolver(op: str, *, with_balance: bool = False) -> Any:
    """Resolve ``psf`` (and ``balance``); record estimates in the details."""

    def resolve(image: Image, p: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        spec, details = resolve_psf(image, p["psf"], op)
        sigma = round(estimate_noise_sigma(image), 6)
        p = {**p, "psf": spec.record()}
        if with_balance and p["balance"] is None:
            p["balance"] = default_balance(spec.kernel(), sigma)
        return p, {**details, "noise_sigma_estimated": sigma}

    return resolve


@operation(
    name="deconvolve_wiener",
    version="1",
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
            auto="the larger of the estimated noise sigma and min(0.5, 2.5e-6 (1 / f0)^4), f0 the "
            "lowest frequency (cycles/px) where the PSF passes less than 10 %",
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
        Regularisation weight lambda; None: `default_balance` (noise level, raised for motion
        and defocus blurs whose spectral zeros would otherwise ring).

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``.

    Notes
    -----
    ``X = conj(H) Y / (|H|^2 + lambda |D|^2)`` with ``H`` the PSF's transfer function and
    ``D`` that of the discrete Laplacian, on the mirror-extended image (extension
    ``max(32, 2 x PSF size)`` px, cropped afterwards).

    References
    ----------
    Hunt (1973), IEEE Trans. Computers C-22(9); Orieux, Giovannelli & Rodet (2010);
    Liu & Jia (2008), doi:10.1109/ICIP.2008.4711802.
    """
    spec, _ = resolve_psf(image, psf, "deconvolve_wiener")
    kernel = spec.kernel()
    lam = balance if balance is not None else default_balance(kernel, estimate_noise_sigma(image))
    return map_values(
        image,
        lambda x: _deconvolve(x, kernel, lambda p: restoration.wiener(p, kernel, lam, clip=False)),
    )


@operation(
    name="deconvolve_richardson_lucy",
    version="1",
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
        image,
        lambda x: _deconvolve(
            x,
            kernel,
            lambda p: restoration.richardson_lucy(p, kernel, num_iter=iterations, clip=False),
        ),
    )


@operation(
    name="deconvolve_unsupervised_wiener",
    version="1",
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

    def solve(p: Float) -> Float:
        out, _chains = restoration.unsupervised_wiener(
            p, kernel, clip=False, rng=np.random.default_rng(seed)
        )
        return np.asarray(out, np.float64)

    return map_values(image, lambda x: _deconvolve(x, kernel, solve))
