"""Synthetic CCTV clips for the video benchmarks: a natural scene with sub-pixel camera jitter
and sensor noise, H.264 (as DVRs export), made with PyAV and an explicit seed."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np

from bench.images import scene


def make_clip(path: Path, *, frames: int, height: int, width: int, seed: int) -> Path:
    """``frames`` RGB frames of ``height`` x ``width`` at 25 fps, H.264 (yuv420p, QP 23)."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    grey = scene(height + 16, width + 16)
    base = cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
    # A colour cast so that the three channels differ (a grey clip would flatter RGB work).
    base = np.clip(base.astype(np.int16) + np.array([12, 0, -12], np.int16), 0, 255).astype(
        np.uint8
    )
    rng = np.random.default_rng([seed, frames, height])
    tmp = path.with_name(path.name + ".tmp.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"qp": "23", "preset": "veryfast"}
        for _ in range(frames):
            dx, dy = rng.uniform(-1.0, 1.0, 2)
            m = np.array([[1.0, 0.0, dx - 8], [0.0, 1.0, dy - 8]])
            img = cv2.warpAffine(base, m, (width, height), flags=cv2.INTER_LINEAR)
            noisy = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(noisy, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)
    return path
