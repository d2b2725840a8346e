"""What shapes the pixels besides the code: library versions and builds, threads, CPU features.

Recorded with every enhancement step, so that `verify --replay` can say *why* a replay on
another machine differs by a grey level. Measured on our build machine with identical input
bytes: turning AVX-512 or Intel IPP off changed OpenCV's bilateral filter, warpAffine and
non-integer cubic resize, and scikit-image's Wiener, Richardson-Lucy and wavelet results in
the last float bits or by one grey level; NLM, Gaussian, median and CLAHE did not.
"""

from __future__ import annotations

import functools
import os
import platform
from typing import Any

from forensic.versions import library_versions

#: Environment variables that change numeric libraries' threading or code paths.
_ENV_KEYS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENCV_FOR_THREADS_NUM",
    "OPENCV_IPP",
    "OPENCV_CPU_DISABLE",
    "NPY_DISABLE_CPU_FEATURES",
)


@functools.cache
def _static() -> dict[str, Any]:
    import cv2
    from numpy._core._multiarray_umath import (  # type: ignore[import-not-found]
        __cpu_dispatch__,
        __cpu_features__,
    )

    build = cv2.getBuildInformation()

    def build_line(label: str) -> str | None:
        for line in build.splitlines():
            if line.strip().startswith(label):
                return " ".join(line.split(":", 1)[1].split())
        return None

    return {
        "machine": platform.machine(),
        "libraries": library_versions(),
        "opencv": {
            "cpu_features": cv2.getCPUFeaturesLine(),
            "baseline": build_line("Baseline"),
            "dispatched": build_line("Dispatched code generation"),
            "parallel_framework": build_line("Parallel framework"),
            "ipp_version": cv2.ipp.getIppVersion(),
        },
        "numpy": {
            "cpu_features": sorted(k for k, on in __cpu_features__.items() if on),
            "cpu_dispatch": sorted(__cpu_dispatch__),
        },
    }


def pixel_environment() -> dict[str, Any]:
    """The current settings (threads and IPP can change at run time, so they are read now)."""
    import cv2

    env = dict(_static())
    env["opencv"] = {
        **env["opencv"],
        "ipp_enabled": bool(cv2.ipp.useIPP()),
        "optimized": bool(cv2.useOptimized()),
        "threads": int(cv2.getNumThreads()),
    }
    env["cpu_count"] = os.cpu_count()
    env["variables"] = {k: os.environ[k] for k in _ENV_KEYS if k in os.environ}
    return env


def differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Human-readable differences between two environments (empty when they match)."""
    out: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                walk(a.get(key), b.get(key), f"{path}.{key}" if path else key)
        elif a != b:
            out.append(f"{path}: recorded {a!r}, now {b!r}")

    walk(recorded, current, "")
    return out
