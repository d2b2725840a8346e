"""Damaged photographs: faded dyes, printed halftone screens, uneven illumination.

Three corrections that use only the measured pixels, each recording what it estimated:

* `stretch_channels` undoes dye fading (each dye layer of a colour print fades at its own
  rate, which both lowers its contrast and tints the print) by an affine map per channel that
  puts all channels' black and white points on their common range (or, asked, on black and
  white); grey-world and white-patch balance are `white_balance`.
* `descreen` removes the regular dot pattern of a printed (halftone) photograph by notch
  filtering the screen's peaks in the Fourier spectrum, found automatically.
* `flat_field` divides out uneven illumination: a flat-field frame (a photograph of a uniform
  white card through the same optics) when the examiner has one, else a fitted radial
  vignetting model.

Measured on skimage.data images with synthetic damage (tests/test_photo_film.py, which
states the numbers; docs/spec.md §"Damaged photographs and film").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from forensic.classical import references as ref
from forensic.errors import ParameterError
from forensic.hashing import sha256_file
from forensic.ops.framework import Param, Reference, operation
from forensic.ops.pixels import (
    Float,
    Image,
    from_float,
    join_alpha,
    luma,
    map_values,
    split_alpha,
    to_float,
)

LIMARE_2011 = Reference(
    "Limare, N., Lisani, J.-L., Morel, J.-M., Petro, A. B. and Sbert, C. (2011). Simplest "
    "color balance. Image Processing On Line, 1, 297-315.",
    doi="10.5201/ipol.2011.llmps-scb",
)
ZHENG_2008 = Reference(
    "Zheng, Y., Yu, J., Kang, S. B., Lin, S. and Kambhamettu, C. (2008). Single-image "
    "vignetting correction using radial gradient symmetry. IEEE Conference on Computer "
    "Vision and Pattern Recognition (CVPR 2008).",
    note="DOI not confirmed; identified by title and conference",
)
GOLDMAN_2010 = Reference(
    "Goldman, D. B. (2010). Vignette and exposure calibration and compensation. IEEE "
    "Transactions on Pattern Analysis and Machine Intelligence, 32(12), 2276-2288.",
    doi="10.1109/TPAMI.2010.55",
)
ULICHNEY_1987 = Reference(
    "Ulichney, R. (1987). Digital Halftoning. MIT Press.",
    note="ISBN 978-0-262-21009-6; the spectra of clustered-dot screens (chapter 4)",
)


# -- dye fading -------------------------------------------------------------------------------


def channel_points(values: Float, low: float, high: float) -> tuple[Float, Float]:
    """Per-channel black and white points: the ``low`` and ``high`` percentiles."""
    flat = values.reshape(-1, 1 if values.ndim == 2 else values.shape[2])
    return np.percentile(flat, low, axis=0), np.percentile(flat, high, axis=0)


def _stretch_map(values: Float, p: dict[str, Any]) -> tuple[Float, Float, Float, Float]:
    """The estimated per-channel affine correction ``out_c = gain_c * in_c + offset_c``, with
    the black and white points it was estimated from (flat channels: gain 1, offset 0)."""
    black, white = channel_points(values, p["low_percentile"], p["high_percentile"])
    span = white - black
    ok = span >= 1e-6
    if p["target"] == "full":
        target_black, target_white = np.zeros_like(black), np.ones_like(white)
    else:
        # "common": the range that the channels span together (darkest black point to
        # brightest white point). The picture's true range is unknown, so it is not forced to
        # full scale (which overshoots on scenes that never reach black or white); only the
        # channels' different losses of range and lift, the tint, are undone.
        target_black = np.full_like(black, float(np.min(black)))
        target_white = np.full_like(white, float(np.max(white)))
    gain = np.where(ok, (target_white - target_black) / np.where(ok, span, 1.0), 1.0)
    offset = np.where(ok, target_black - gain * black, 0.0)
    return gain, offset, black, white


def _stretch_details(image: Image, p: dict[str, Any]) -> dict[str, Any]:
    values = to_float(split_alpha(image)[0])
    gain, offset, black, white = _stretch_map(values, p)

    def rounded(vector: Float) -> list[float]:
        return [round(float(v), 6) for v in vector]

    return {
        "black_points": rounded(black),
        "white_points": rounded(white),
        "gains": rounded(gain),
        "offsets": rounded(offset),
        "target_range": [
            round(float(np.min(gain * black + offset)), 6),
            round(float(np.max(gain * white + offset)), 6),
        ],
    }


@operation(
    name="stretch_channels",
    version="2",
    category="colour",
    swgit_class="basic",
    summary="Undo dye fading: map each channel's black and white points onto a common range.",
    description="""Faded colour prints lose each dye at its own rate, so every channel keeps a
    smaller and differently shifted range than it had: the print looks washed out and tinted.
    Each channel is mapped linearly (a gain and an offset, estimated from its low and high
    percentiles) so that all channels share one black and one white point. With target
    "common" (the default) that is the range the channels span together, so the tint and the
    channels' unequal loss of contrast are undone without forcing the picture to full range,
    which the picture may never have had; target "full" stretches every channel to black and
    white (the old behaviour, right only for scenes that truly reach black and white). The
    estimated black and white points, gains and offsets are recorded. Detail that a dye lost
    entirely cannot come back; the chosen percentiles are clipped.""",
    references=(LIMARE_2011, ref.GONZALEZ_WOODS),
    params=(
        Param(
            "low_percentile",
            "float",
            "Percentile of each channel taken as its black.",
            "%",
            0.0,
            49.0,
        ),
        Param(
            "high_percentile",
            "float",
            "Percentile of each channel taken as its white.",
            "%",
            51.0,
            100.0,
        ),
        Param(
            "target",
            "choice",
            "Range the channels are mapped onto: the range they span together (common) or "
            "black to white (full).",
            choices=("common", "full"),
        ),
    ),
    details_for=_stretch_details,
)
def stretch_channels(
    image: Image,
    *,
    low_percentile: float = 0.1,
    high_percentile: float = 99.9,
    target: str = "common",
) -> Image:
    """Per-channel affine correction of dye fading onto a common range.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16 (alpha is carried).
    low_percentile : float
        Percentile of each channel taken as its black point ``b_c``.
    high_percentile : float
        Percentile of each channel taken as its white point ``w_c``.
    target : {"common", "full"}
        Where the points go: ``[min_c b_c, max_c w_c]`` (common) or ``[0, 1]`` (full).

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``.

    Notes
    -----
    ``out_c = B + (in_c - b_c) (W - B) / (w_c - b_c)``; a channel with ``w_c - b_c < 1e-6``
    (flat) is left as it is. Dye fading is modelled as ``faded_c = a_c + g_c x_c`` (a loss of
    density range plus a stain). Without a reference the original range ``[B, W]`` is not
    knowable: "full" assumes black and white (Limare et al.'s simplest colour balance) and
    overshoots when the scene never reached them (measured: chelsea 24.4 -> 17.5 dB);
    "common" assumes only that the channels had the same range, so it never stretches the
    picture beyond the range it already spans, and removes the differential fading (measured
    gains over the faded input on every test and bench image; docs/spec.md, bench section 12).
    On a grey image "common" changes nothing.

    References
    ----------
    Limare et al. (2011), doi:10.5201/ipol.2011.llmps-scb; Gonzalez & Woods (2018).
    """
    params = {
        "low_percentile": low_percentile,
        "high_percentile": high_percentile,
        "target": target,
    }

    def correct(values: Float) -> Float:
        gain, offset, _, _ = _stretch_map(values, params)
        return np.asarray(values * gain + offset, np.float64)

    return map_values(image, correct)


# -- halftone screens -------------------------------------------------------------------------


def periodic_component(plane: Float) -> Float:
    """Moisan's periodic component of ``plane``: the image minus the smooth component that
    its border discontinuities imply; its spectrum has no cross of leakage along the axes."""
    h, w = plane.shape
    v = np.zeros_like(plane)
    v[0, :] += plane[-1, :] - plane[0, :]
    v[-1, :] += plane[0, :] - plane[-1, :]
    v[:, 0] += plane[:, -1] - plane[:, 0]
    v[:, -1] += plane[:, 0] - plane[:, -1]
    q = np.arange(h)[:, None]
    r = np.arange(w)[None, :]
    denominator = 2.0 * np.cos(2 * np.pi * q / h) + 2.0 * np.cos(2 * np.pi * r / w) - 4.0
    denominator[0, 0] = 1.0
    smooth = np.fft.fft2(v) / denominator
    smooth[0, 0] = 0.0
    return np.asarray(plane - np.real(np.fft.ifft2(smooth)), np.float64)


def find_screen_peaks(
    grey: Float, *, min_frequency: float, threshold: float, max_peaks: int
) -> list[dict[str, float]]:
    """The halftone screen's peaks in the spectrum of ``grey``: local maxima of the
    log-magnitude that stand ``threshold`` above its local median (natural log units), at
    least ``min_frequency`` cycles/px from zero; strongest first, one of each symmetric pair.
    """
    h, w = grey.shape
    spectrum = np.fft.fftshift(np.fft.fft2(periodic_component(grey)))
    log_mag = np.log1p(np.abs(spectrum))
    size = max(7, round(min(h, w) / 24) | 1)
    # The local level: a mean of the log-magnitude over the window (a median was 20 times
    # slower at 512 x 512 and found the same peaks on the test screens).
    background = ndimage.uniform_filter(log_mag, size=size, mode="wrap")
    excess = log_mag - background
    local_max = ndimage.maximum_filter(excess, size=5, mode="wrap") == excess
    fy = (np.arange(h) - h // 2)[:, None] / h
    fx = (np.arange(w) - w // 2)[None, :] / w
    radius = np.hypot(fy, fx) + 0.0 * excess
    # One of each conjugate pair: the upper half plane (and the right half of its axis).
    upper = (fy < 0) | ((fy == 0) & (fx > 0)) | np.zeros_like(excess, bool)
    candidates = local_max & (excess > threshold) & (radius >= min_frequency) & upper
    rows, cols = np.nonzero(candidates)
    order = np.argsort(-excess[rows, cols], kind="stable")[:max_peaks]
    return [
        {
            "fx": round(float(fx[0, cols[i]]), 6),
            "fy": round(float(fy[rows[i], 0]), 6),
            "excess": round(float(excess[rows[i], cols[i]]), 4),
        }
        for i in order
    ]


def notch_filter(shape: tuple[int, int], peaks: list[dict[str, float]], radius: float) -> Float:
    """Unshifted transfer function: 1 everywhere except Gaussian notches (sigma ``radius``
    cycles/px) at each peak and its mirror image."""
    h, w = shape
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    gain = np.ones(shape)
    for p in peaks:
        for sign in (1.0, -1.0):
            dy = (fy - sign * p["fy"] + 0.5) % 1.0 - 0.5
            dx = (fx - sign * p["fx"] + 0.5) % 1.0 - 0.5
            gain *= 1.0 - np.exp(-(dx * dx + dy * dy) / (2.0 * radius * radius))
    return gain


def _descreen_details(image: Image, p: dict[str, Any]) -> dict[str, Any]:
    peaks = _screen_peaks(image, p)
    return {"peaks": peaks, "peak_count": len(peaks)}


def _screen_peaks(image: Image, p: dict[str, Any]) -> list[dict[str, float]]:
    values = to_float(split_alpha(image)[0])
    grey = values if values.ndim == 2 else luma(values)
    return find_screen_peaks(
        grey,
        min_frequency=p["min_frequency"],
        threshold=p["threshold"],
        max_peaks=p["max_peaks"],
    )


@operation(
    name="descreen",
    version="1",
    category="denoise",
    swgit_class="advanced",
    summary="Remove a printed halftone screen by notch filtering its spectral peaks.",
    description="""A photograph printed in a newspaper or magazine is made of dots on a
    regular grid (the screen); scanned, the grid shows as a pattern and as moire. A regular
    grid is a few sharp peaks in the Fourier spectrum, well away from the low frequencies
    that carry the picture. The peaks are found automatically (local maxima that stand far
    above the spectrum's local level) and each is removed with a narrow Gaussian notch; the
    rest of the spectrum is left untouched, so the picture keeps its detail below the screen
    frequency. The peaks found (frequency and strength) are recorded. Spectral leakage from
    the image borders is removed first (periodic plus smooth decomposition) so that it is not
    mistaken for a screen.""",
    references=(ULICHNEY_1987, ref.GONZALEZ_WOODS, ref.MOISAN_2011),
    params=(
        Param(
            "min_frequency",
            "float",
            "Lowest frequency searched for screen peaks (below it lies the picture).",
            "cycles/px",
            0.02,
            0.5,
        ),
        Param(
            "threshold",
            "float",
            "How far a peak must stand above the spectrum's local median (natural log of the "
            "magnitude ratio).",
            "",
            0.5,
            20.0,
        ),
        Param("notch_radius", "float", "Width (sigma) of each notch.", "cycles/px", 0.001, 0.1),
        Param("max_peaks", "int", "At most this many peaks (pairs) are removed.", "", 1, 200),
    ),
    details_for=_descreen_details,
)
def descreen(
    image: Image,
    *,
    min_frequency: float = 0.06,
    threshold: float = 2.5,
    notch_radius: float = 0.02,
    max_peaks: int = 40,
) -> Image:
    """Notch-filter descreening of a halftone print.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16; the peaks are found on luma (BT.601) and the
        same notches are applied to every channel.
    min_frequency : float
        Peaks are searched at radial frequencies of at least this many cycles/px.
    threshold : float
        A peak's log-magnitude must exceed the local median (a window of about 1/24 of the
        spectrum) by this much (2.5: about 12 times the local magnitude).
    notch_radius : float
        Standard deviation of each Gaussian notch, in cycles/px.
    max_peaks : int
        At most this many (strongest) peaks are removed, each with its mirror image.

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``.

    Notes
    -----
    With ``P`` the periodic component of a plane (Moisan 2011) and ``S`` its smooth
    component, the output is ``S + F^-1[G . F[P]]`` where ``G`` is the product of notches
    ``1 - exp(-|f - f_k|^2 / 2 r^2)`` at each peak ``f_k`` and at ``-f_k``. A clustered-dot
    screen of period ``T`` concentrates its energy at ``1/T`` and its harmonics (Ulichney
    1987), which the detector finds as isolated maxima; picture content above
    ``min_frequency`` rarely forms such peaks, but a regular texture in the scene (a fence, a
    fabric) can, so check the recorded peaks.

    References
    ----------
    Ulichney (1987), ISBN 978-0-262-21009-6; Gonzalez & Woods (2018), notch filters;
    Moisan (2011), doi:10.1007/s10851-010-0227-1.
    """
    peaks = _screen_peaks(
        image,
        {"min_frequency": min_frequency, "threshold": threshold, "max_peaks": max_peaks},
    )

    def filtered(values: Float) -> Float:
        if not peaks:
            return values
        gain = notch_filter(values.shape[:2], peaks, notch_radius)

        def one(plane: Float) -> Float:
            periodic = periodic_component(plane)
            smooth = plane - periodic
            return np.asarray(smooth + np.real(np.fft.ifft2(np.fft.fft2(periodic) * gain)))

        if values.ndim == 2:
            return one(values)
        return np.stack([one(values[..., c]) for c in range(values.shape[2])], axis=2)

    return map_values(image, filtered)


# -- uneven illumination ----------------------------------------------------------------------

_FLAT_GRAMMAR = "path to an image file (PNG, TIFF, JPEG) of the same size"


def _radius_squared(shape: tuple[int, ...]) -> Float:
    """Squared distance from the image centre, 1 at the corners."""
    h, w = shape[:2]
    y = (np.arange(h) - (h - 1) / 2.0)[:, None]
    x = (np.arange(w) - (w - 1) / 2.0)[None, :]
    return np.asarray((y * y + x * x) / ((h - 1) ** 2 / 4.0 + (w - 1) ** 2 / 4.0 + 1e-12))


def fit_vignetting(grey: Float, rings: int = 48) -> tuple[Float, list[float]]:
    """Fitted radial falloff ``V(r) = exp(a r^2 + b r^4 + c r^6)`` (r = 1 at the corners).

    Radial gradient symmetry (Zheng et al. 2008): in a natural image the derivative of log
    intensity along the radius is as often positive as negative, at any distance from the
    centre; vignetting adds ``d log V / dr`` to every pixel of a ring. So the median radial
    derivative of log-luma over each of ``rings`` rings of equal area estimates
    ``d log V / dr`` there, and ``2 a r + 4 b r^3 + 6 c r^5`` is fitted to those medians by
    least squares, weighted by the number of pixels with a usable value.
    """
    h, w = grey.shape
    half_diagonal = float(np.hypot((h - 1) / 2.0, (w - 1) / 2.0)) or 1.0
    logs = np.log(np.maximum(ndimage.gaussian_filter(grey, 1.0), 1.0 / 1024))
    gy, gx = np.gradient(logs)
    y = (np.arange(h) - (h - 1) / 2.0)[:, None]
    x = (np.arange(w) - (w - 1) / 2.0)[None, :]
    distance = np.hypot(y, x)
    magnitude = np.hypot(gx, gy)
    radial = (gx * x + gy * y) / np.maximum(distance, 1e-9) * half_diagonal  # per unit r
    r = distance / half_diagonal
    r2 = r * r
    # Clipped or black pixels carry no gradient information.
    usable = (grey > 2.0 / 255) & (grey < 253.0 / 255)
    edges = np.sqrt(np.linspace(0.0, 1.0, rings + 1))
    centres, slopes, weights = [], [], []
    ring_index = np.minimum(np.searchsorted(edges, r, side="right") - 1, rings - 1)
    for k in range(1, rings):  # the innermost ring has no defined radial direction
        inside = (ring_index == k) & usable
        n = int(inside.sum())
        if n < 16:
            continue
        # Smooth areas only (the ring's least steep half): there the gradient is mostly
        # illumination; edges of objects are what make a scene radially asymmetric.
        steep = magnitude[inside]
        calm = radial[inside][steep <= np.percentile(steep, 50)]
        slopes.append(float(np.median(calm)))
        centres.append(float(np.mean(r[inside])))
        weights.append(np.sqrt(n))
    if len(centres) < 3:
        return np.ones_like(grey), [0.0, 0.0, 0.0]
    rc = np.asarray(centres)
    wt = np.asarray(weights)[:, None]
    design = np.stack([2 * rc, 4 * rc**3, 6 * rc**5], axis=1)
    coeffs, *_ = np.linalg.lstsq(design * wt, np.asarray(slopes) * wt[:, 0], rcond=None)
    falloff = np.exp(coeffs[0] * r2 + coeffs[1] * r2**2 + coeffs[2] * r2**3)
    # The model may not brighten the edges (vignetting only darkens) nor fall below 5 %.
    falloff = np.clip(falloff, 0.05, 1.0)
    return np.asarray(falloff, np.float64), [round(float(c), 6) for c in coeffs]


def _load_flat(op: str, path: str, shape: tuple[int, ...]) -> Float:
    from forensic.media import decode_image

    file = Path(path)
    if not file.is_file():
        raise ParameterError(
            op, "flat", f"is {path!r}, which is not a file", hint="give the flat-field frame's path"
        )
    flat, _ = decode_image(file.read_bytes(), where=path)
    if flat.shape[:2] != shape[:2]:
        raise ParameterError(
            op,
            "flat",
            f"is {flat.shape[1]} x {flat.shape[0]}; the image is {shape[1]} x {shape[0]}",
            hint="the flat-field frame must be taken with the same camera setting and size",
        )
    values = to_float(split_alpha(flat)[0])
    grey = values if values.ndim == 2 else luma(values)
    # The frame's own noise would be printed into every image it corrects: smooth it.
    grey = ndimage.gaussian_filter(grey, sigma=3.0, mode="nearest")
    if grey.max() <= 0:
        raise ParameterError(op, "flat", f"{path!r} is black", hint="use a frame of a white card")
    return np.asarray(np.clip(grey / grey.max(), 0.05, 1.0), np.float64)


def _check_fit_size(image: Image) -> None:
    if min(image.shape[:2]) < 16:
        raise ParameterError(
            "flat_field",
            "flat",
            f"is needed for an image of {image.shape[1]} x {image.shape[0]} pixels: a "
            "vignetting model is fitted only to images of at least 16 x 16",
            hint="give a flat-field frame, or leave this step out",
        )


def _flat_resolver(image: Image, p: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    if p["flat"] is None:
        _check_fit_size(image)
        values = to_float(split_alpha(image)[0])
        grey = values if values.ndim == 2 else luma(values)
        falloff, coeffs = fit_vignetting(grey)
        return p, {
            "model": "V(r) = exp(a r^2 + b r^4 + c r^6), r = 1 at the corners",
            "coefficients": coeffs,
            "corner_falloff": round(float(falloff[0, 0]), 6),
        }
    digest = sha256_file(Path(p["flat"]))[0] if Path(p["flat"]).is_file() else None
    if p["flat_sha256"] is not None and digest != p["flat_sha256"]:
        raise ParameterError(
            "flat_field",
            "flat_sha256",
            f"is {p['flat_sha256']}, but {p['flat']!r} has SHA-256 {digest}",
            hint="the flat-field frame changed since it was recorded; use the recorded file",
        )
    return {**p, "flat_sha256": digest}, {"model": "flat-field frame, smoothed (sigma 3 px)"}


@operation(
    name="flat_field",
    version="1",
    category="exposure",
    swgit_class="advanced",
    summary="Correct uneven illumination and vignetting: a flat-field frame or a fitted model.",
    description="""Copy stands, scanners and lenses light a picture unevenly, typically darker
    towards the corners (vignetting). Dividing by the illumination makes the picture's own
    brightness comparable across the frame. When the examiner has a flat-field frame (the same
    setup photographing a uniform white card) the image is divided by it, smoothed and
    normalised to its brightest value, and its SHA-256 is recorded; otherwise a radial
    falloff, brightest at the centre, is fitted to the image itself and its coefficients are
    recorded. The fitted model assumes the falloff is centred and radially symmetric.""",
    references=(ZHENG_2008, GOLDMAN_2010),
    resolve=_flat_resolver,
    params=(
        Param(
            "flat",
            "str",
            "Flat-field frame (a photograph of a uniform white card with the same setup).",
            auto="no frame: a radial vignetting model is fitted to the image and recorded",
            text_format=_FLAT_GRAMMAR,
        ),
        Param(
            "flat_sha256",
            "str",
            "SHA-256 of the flat-field frame, checked when given (a replay gives it).",
            auto="computed from the frame and recorded",
            text_format="64 hexadecimal digits",
        ),
    ),
)
def flat_field(image: Image, *, flat: str | None = None, flat_sha256: str | None = None) -> Image:
    """Flat-field or fitted vignetting correction.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16; every channel is divided by the same
        illumination (alpha is carried).
    flat : str or None
        Path of the flat-field frame; None fits a radial model to ``image``.
    flat_sha256 : str or None
        The frame's SHA-256; when given it must match the file (so a replay uses the very
        frame that was recorded).

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``.

    Notes
    -----
    ``out = in / V`` with ``V`` in (0.05, 1]: the flat frame's luma smoothed by a Gaussian
    (sigma 3 px) over its maximum, or the fitted ``V(r) = exp(a r^2 + b r^4 + c r^6)`` (r the
    distance from the centre, 1 at the corners; clipped to [0.05, 1]). The fit: the radial
    derivative of log-luma (Gaussian pre-smoothing, sigma 1 px) in each of 48 rings of equal
    area, over the ring's calmer half (gradient magnitude below its median) and unclipped
    pixels, has a median that estimates ``d log V / dr`` there (radial gradient symmetry of
    Zheng et al. 2008, much simplified: a median instead of their asymmetry measure);
    ``2 a r + 4 b r^3 + 6 c r^5`` is fitted to the medians by weighted least squares
    (Goldman 2010 for the polynomial model). A scene that is itself brighter in the middle
    biases the fit; a flat-field frame does not depend on the scene. Values pushed over full
    scale are clipped.

    References
    ----------
    Zheng, Yu, Kang, Lin & Kambhamettu (2008), CVPR; Goldman (2010),
    doi:10.1109/TPAMI.2010.55.
    """
    colour, alpha = split_alpha(image)
    values = to_float(colour)
    if flat is None:
        _check_fit_size(image)
        grey = values if values.ndim == 2 else luma(values)
        falloff = fit_vignetting(grey)[0]
    else:
        if flat_sha256 is not None:
            digest = sha256_file(Path(flat))[0] if Path(flat).is_file() else None
            if digest != flat_sha256:
                raise ParameterError(
                    "flat_field", "flat_sha256", f"does not match the file {flat!r} ({digest})"
                )
        falloff = _load_flat("flat_field", flat, image.shape)
    out = values / (falloff if values.ndim == 2 else falloff[..., None])
    return join_alpha(from_float(out, image.dtype), alpha)
