"""Measurements on pixels that both lanes use (they change no pixel).

The classical lane's automatic parameters and the generative lane's uncertainty maps follow the
same noise estimate, so it lives below both (`forensic.classical` re-exports it).
"""

from __future__ import annotations

import math
import warnings

from skimage import restoration

from forensic.ops.framework import check_image
from forensic.ops.pixels import Image, split_alpha, to_float


def estimate_noise_sigma(image: Image) -> float:
    """Standard deviation of additive white Gaussian noise, as a fraction of full scale.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16 (alpha is ignored).

    Returns
    -------
    float
        The estimate; for colour, the mean of the per-channel estimates.

    Notes
    -----
    Robust median estimator on the finest diagonal (HH) wavelet sub-band (Daubechies-2,
    scikit-image's ``estimate_sigma``): ``sigma = median(|HH|) / 0.6745``. Image structure
    barely reaches the HH band, so the estimate follows the noise; strong texture or JPEG
    blocking biases it (up or down). A flat image (no non-zero coefficient) gives 0.

    References
    ----------
    Donoho & Johnstone (1994), doi:10.1093/biomet/81.3.425.
    """
    check_image("estimate_noise_sigma", image)
    values = to_float(split_alpha(image)[0])
    axis = -1 if values.ndim == 3 else None
    with warnings.catch_warnings():
        # scikit-image drops zero coefficients first, so a flat image leaves an empty set and
        # numpy warns about its median; that case is answered below.
        warnings.simplefilter("ignore", RuntimeWarning)
        sigma = float(restoration.estimate_sigma(values, average_sigmas=True, channel_axis=axis))
    return sigma if math.isfinite(sigma) else 0.0
