"""The bare loops the pipeline is measured against: the same decoding and the same lossless
output format (FFV1 in Matroska, same options), the same per-frame work on the same number of
threads, but no hashes, journal, provenance or records.

The work runs on a thread pool with a bounded window of frames in flight (two per thread), as
a careful hand-written loop would: ``Executor.map`` would submit the whole clip at once and
hold every decoded frame, so that its memory would grow with the clip's length."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2

from forensic.media import convert_frame
from forensic.videoio import CODEC_THREADS, CONTAINER_OPTIONS, FFV1_FORMATS, FFV1_OPTIONS, _to_frame

Image = Any


def decode(path: Path, first: int, last: int) -> Iterator[Image]:
    """Frames ``first``..``last`` (decoder output order) converted to RGB as forensic does."""
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(container.streams.video[0])):
            if index > last:
                return
            if index >= first:
                yield convert_frame(frame)


def ordered(
    pool: ThreadPoolExecutor, work: Callable[[Image], Image], items: Iterable[Image], window: int
) -> Iterator[Image]:
    """``work`` over ``items`` on ``pool``, in order, at most ``window`` items in flight."""
    pending: deque[Future[Image]] = deque()
    for item in items:
        pending.append(pool.submit(work, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def process(
    path: Path,
    out: Path,
    work: Callable[[Image], Image],
    *,
    first: int,
    last: int,
    threads: int,
    rate: int = 25,
) -> int:
    """Decode, ``work`` on each frame (ordered, ``threads`` at a time), write FFV1."""
    frames = 0
    with av.open(str(out), "w", format="matroska", options=CONTAINER_OPTIONS) as container:
        stream: Any = None
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for image in ordered(pool, work, decode(path, first, last), 2 * threads):
                if stream is None:
                    channels = 1 if image.ndim == 2 else image.shape[2]
                    stream = container.add_stream("ffv1", rate=Fraction(rate))
                    stream.width, stream.height = image.shape[1], image.shape[0]
                    stream.pix_fmt = FFV1_FORMATS[(channels, image.dtype.name)]
                    stream.codec_context.thread_count = CODEC_THREADS
                    stream.codec_context.thread_type = "SLICE"
                    stream.codec_context.gop_size = 1
                    stream.options = dict(FFV1_OPTIONS)
                frame = _to_frame(image, stream.pix_fmt)
                frame.pts = frames
                frame.time_base = Fraction(1, rate)
                for packet in stream.encode(frame):
                    container.mux(packet)
                frames += 1
        if stream is not None:
            for packet in stream.encode():
                container.mux(packet)
    return frames


def opencv_recipe(image: Image) -> Image:
    """The CCTV recipe of sections 3 and 7 with OpenCV's own calls: Gaussian blur, CLAHE on
    luma (Lab L), unsharp mask (Gaussian plus addWeighted)."""
    blurred = cv2.GaussianBlur(image, (0, 0), 1.0)
    lab = cv2.cvtColor(blurred, cv2.COLOR_RGB2LAB)
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    lab[..., 0] = clahe.apply(lab[..., 0])
    rgb = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
    soft = cv2.GaussianBlur(rgb, (0, 0), 1.2)
    return cv2.addWeighted(rgb, 1.7, soft, -0.7, 0)
