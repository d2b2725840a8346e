"""The bare loops the pipeline is measured against: the same decoding and the same lossless
output format (FFV1 in Matroska, same options), the same per-frame work on the same number of
threads, but no hashes, journal, provenance or records."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

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
            for image in pool.map(work, decode(path, first, last)):
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
