"""Versions of the tool and of every library that shapes pixels, hashes or signatures.

Recorded in each journal entry, so a reviewer can tell whether a replay runs the same code.
Read from package metadata (no heavy imports), plus the FFmpeg libraries PyAV is built on.
"""

from __future__ import annotations

import functools
import platform
from importlib import metadata

from forensic import __version__

PIXEL_LIBRARIES = (
    "numpy",
    "opencv-python-headless",
    "scikit-image",
    "scipy",
    "pywavelets",
    "av",
    "pillow",
    "cryptography",
    "rfc8785",
)


@functools.cache
def library_versions() -> dict[str, str]:
    import av  # FFmpeg's own versions decide how video decodes

    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name in PIXEL_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    for lib, (major, minor, micro) in sorted(av.library_versions.items()):
        versions[f"ffmpeg.{lib}"] = f"{major}.{minor}.{micro}"
    return versions


def tool_version() -> dict[str, str]:
    return {"name": "forensic", "version": __version__}
