"""The classical (evidence) lane: deterministic, documented, referenced operations.

Nothing here may import `forensic.generative` or torch (an import-linter contract and a test
enforce it): an output of this package never depends on a learned model.

Use the functions directly (``denoise_nl_means(img, h=0.05)``) or through the registry
(``get("denoise_nl_means").run(img, {"h": 0.05})``, which also returns the parameters actually
used and any estimates). Both validate their arguments the same way.
"""

from __future__ import annotations

from forensic.classical.deblur import (
    deconvolve_richardson_lucy,
    deconvolve_unsupervised_wiener,
    deconvolve_wiener,
)
from forensic.classical.deinterlace import deinterlace_blend, deinterlace_double, field_extract
from forensic.classical.denoise import (
    denoise_bilateral,
    denoise_gaussian,
    denoise_median,
    denoise_nl_means,
    denoise_tv,
    denoise_wavelet,
    estimate_noise_sigma,
)
from forensic.classical.exposure import (
    brightness_contrast,
    channel_extract,
    channel_mix,
    clahe,
    equalize_histogram,
    invert,
    levels,
    white_balance,
)
from forensic.classical.geometry import (
    crop,
    flip,
    lens_distortion,
    perspective,
    pixel_aspect,
    resize,
    rotate,
)
from forensic.classical.psf import estimate_motion_blur, psf_defocus, psf_gaussian, psf_motion
from forensic.classical.redact import redact_blur, redact_fill, redact_pixelate
from forensic.classical.registry import get, registry
from forensic.classical.sharpen import sharpen_laplacian, unsharp_mask
from forensic.classical.temporal import (
    average_frames,
    register_frames,
    stabilise,
    super_resolve_frames,
)
from forensic.ops.framework import Operation, OpResult, Param, Reference

__all__ = [
    "OpResult",
    "Operation",
    "Param",
    "Reference",
    "average_frames",
    "brightness_contrast",
    "channel_extract",
    "channel_mix",
    "clahe",
    "crop",
    "deconvolve_richardson_lucy",
    "deconvolve_unsupervised_wiener",
    "deconvolve_wiener",
    "deinterlace_blend",
    "deinterlace_double",
    "denoise_bilateral",
    "denoise_gaussian",
    "denoise_median",
    "denoise_nl_means",
    "denoise_tv",
    "denoise_wavelet",
    "equalize_histogram",
    "estimate_motion_blur",
    "estimate_noise_sigma",
    "field_extract",
    "flip",
    "get",
    "invert",
    "lens_distortion",
    "levels",
    "perspective",
    "pixel_aspect",
    "psf_defocus",
    "psf_gaussian",
    "psf_motion",
    "redact_blur",
    "redact_fill",
    "redact_pixelate",
    "register_frames",
    "registry",
    "resize",
    "rotate",
    "sharpen_laplacian",
    "stabilise",
    "super_resolve_frames",
    "unsharp_mask",
    "white_balance",
]

# Damaged photographs and film (issue 21): registered on import.
from forensic.classical.defects import detect_defects
from forensic.classical.film import repair_film_dust
from forensic.classical.photo import descreen, flat_field, stretch_channels

__all__ += ["descreen", "detect_defects", "flat_field", "repair_film_dust", "stretch_channels"]
