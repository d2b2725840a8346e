"""Section 6 (continued): the restoration claims of issue 22, each against its simplest
baseline, on images and sequences no test or default was tuned on (`UNUSED_BY_TESTS`).

* Multi-frame super-resolution x2: 16 frames made by OpenCV alone (a scene cropped at integer
  offsets at 4x the frames' resolution, reduced by ``cv2.resize`` INTER_AREA; the truth is the
  same scene reduced 2x), clean and with noise 5/255; against bicubic of one frame and bicubic
  of the registered average (register_frames + average_frames, both with defaults).
"""

from __future__ import annotations

import time
from typing import Any

import cv2
import numpy as np

from bench.harness import Context, Row, verdict
from bench.images import Image, psnr, skimage_grey
from fixtures.temporal import area_sampled_frames
from forensic.classical import get

SECTION = "6"
SR_IMAGES = ("chelsea", "coins", "rocket", "brick")
SR_GAIN_DB = 1.5


def _bicubic2(image: Image) -> Image:
    return np.asarray(cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC))


def _registered_average(frames: list[Image]) -> Image:
    aligned = [f for f, _ in get("register_frames").stream(frames, {})[1]]
    return get("average_frames").reduce(aligned, {}).image


def super_resolution(ctx: Context) -> list[Row]:
    rows = []
    size = 136 if ctx.quick else 264  # scene side: frames of 32 or 64 px
    names = SR_IMAGES[:2] if ctx.quick else SR_IMAGES
    for noise in (0.0, 5 / 255):
        per: dict[str, dict[str, Any]] = {}
        for k, name in enumerate(names):
            image = skimage_grey(name)
            y, x = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
            truth, frames, _ = area_sampled_frames(
                image[y : y + size, x : x + size], 16, noise_sigma=noise, seed=ctx.seed + k
            )
            start = time.perf_counter()
            result = get("super_resolve_frames").reduce(frames, {"scale": 2})
            seconds = time.perf_counter() - start
            per[name] = {
                "ours": psnr(truth, result.image, border=8),
                "bicubic of the registered average": psnr(
                    truth, _bicubic2(_registered_average(frames)), border=8
                ),
                "bicubic of frame 0": psnr(truth, _bicubic2(frames[0]), border=8),
                "coverage": result.details["coverage"],
                "seconds": seconds,
            }

        def mean(key: str, per: dict[str, dict[str, Any]] = per) -> float:
            return float(np.mean([r[key] for r in per.values()]))

        ours, avg, one = (
            mean("ours"),
            mean("bicubic of the registered average"),
            mean("bicubic of frame 0"),
        )
        need = SR_GAIN_DB if noise == 0 else 0.0
        rows.append(
            Row(
                SECTION,
                f"super_resolve_frames x2, 16 area-sampled frames, noise {round(noise * 255)}/255",
                f"ours {ours:.2f} dB, bicubic of the registered average {avg:.2f} dB "
                f"({ours - avg:+.2f} dB), bicubic of frame 0 {one:.2f} dB ({ours - one:+.2f} dB); "
                f"mean of {len(per)}, {mean('seconds'):.2f} s each",
                f"≥ {need:g} dB above bicubic of the registered average and of frame 0"
                if need
                else "above bicubic of the registered average and of frame 0",
                verdict(ours - avg > need and ours - one > need),
                "Frames: OpenCV INTER_AREA of integer crops at 4x (not our model); 8 px border "
                "ignored.",
                {
                    "per_image": per,
                    "table": {
                        "columns": ["image", "ours dB", "bicubic avg dB", "bicubic one dB"],
                        "rows": [
                            [
                                n,
                                f"{r['ours']:.2f}",
                                f"{r['bicubic of the registered average']:.2f}",
                                f"{r['bicubic of frame 0']:.2f}",
                            ]
                            for n, r in per.items()
                        ],
                    },
                },
            )
        )
    return rows


def run(ctx: Context) -> list[Row]:
    return super_resolution(ctx)
