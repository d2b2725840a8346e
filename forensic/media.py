"""Decode evidence and describe it: canonical pixel hash, per-frame hashes, media facts.

Images decode with OpenCV (``IMREAD_UNCHANGED``: native bit depth, alpha kept, EXIF orientation
not applied, so the hash is of the pixels as stored). Video decodes with PyAV (FFmpeg); each frame
is hashed in its native pixel format, planes in order without line padding, which is what
``ffmpeg -i F -f framehash -hash sha256 -`` hashes.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
import cv2
import numpy as np
import numpy.typing as npt

from forensic.errors import InputError
from forensic.hashing import CHANNEL_ORDERS, PIXEL_HASH_ALGORITHM, merkle_root, pixel_hash

cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

IMAGE_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "png", ".png"),
    (b"\xff\xd8\xff", "jpeg", ".jpg"),
    (b"II*\x00", "tiff", ".tif"),
    (b"MM\x00*", "tiff", ".tif"),
    (b"BM", "bmp", ".bmp"),
)

# Pixel formats whose framehash layout is "each plane's visible rows, sample bytes only".
# Bit-packed, palette and padded formats (rgb565, monob, pal8, rgb0, bayer...) are not listed:
# their byte layout is not the sum of their components, and a wrong frame hash is worse than none.
FRAME_HASH_FORMATS = frozenset(
    [
        "yuv420p",
        "yuvj420p",
        "yuv422p",
        "yuvj422p",
        "yuv444p",
        "yuvj444p",
        "yuv440p",
        "yuvj440p",
        "yuv411p",
        "yuv410p",
        "yuva420p",
        "yuva422p",
        "yuva444p",
        "gray",
        "gray10le",
        "gray12le",
        "gray16le",
        "yuv420p10le",
        "yuv422p10le",
        "yuv444p10le",
        "yuv420p12le",
        "yuv422p12le",
        "yuv444p12le",
        "yuv420p16le",
        "nv12",
        "nv21",
        "nv16",
        "p010le",
        "yuyv422",
        "uyvy422",
        "rgb24",
        "bgr24",
        "rgba",
        "bgra",
        "argb",
        "abgr",
        "rgb48le",
        "bgr48le",
        "rgba64le",
        "gbrp",
        "gbrp10le",
        "gbrp12le",
        "gbrap",
    ]
)

# Codecs whose standard defines decoding bit-exactly, so any conforming decoder gives the same
# frame hashes. Others (MPEG-4 Part 2, MPEG-2, MJPEG, ...) only bound the IDCT error: FFmpeg 5.1
# and FFmpeg 8 decode the same MPEG-4 B-frames differently. Their hashes hold for the recorded
# decoder version only.
BIT_EXACT_CODECS = frozenset(
    [
        "h264",
        "hevc",
        "vp8",
        "vp9",
        "av1",
        "ffv1",
        "rawvideo",
        "png",
        "huffyuv",
        "ffvhuff",
        "utvideo",
        "qtrle",
        "magicyuv",
    ]
)

PICTURE_TYPES = {0: "?", 1: "I", 2: "P", 3: "B", 4: "S", 5: "SI", 6: "SP", 7: "BI"}


@dataclass
class MediaRecord:
    """What ingest records about one decoded file."""

    media: str  # "image" or "video"
    format: str
    extension: str
    pixel_hash: dict[str, Any]
    facts: dict[str, Any]
    frames: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def sniff_image(head: bytes) -> tuple[str, str] | None:
    for magic, name, ext in IMAGE_SIGNATURES:
        if head.startswith(magic):
            return name, ext
    return None


def decode_image(data: bytes, *, where: str) -> tuple[npt.NDArray[Any], str]:
    """Decode image bytes to an array in RGB(A) or L order, native dtype. Raises InputError."""
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.size == 0:
        raise InputError(
            f"{where}: the image cannot be decoded (truncated or corrupt)",
            hint="check the file against its source; a damaged file must be re-acquired",
        )
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if channels == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    elif channels == 4:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGBA)
    if channels not in CHANNEL_ORDERS:
        raise InputError(f"{where}: {channels} channels are not supported")
    if pixels.dtype not in (np.uint8, np.uint16, np.float32):
        raise InputError(f"{where}: sample type {pixels.dtype} is not supported")
    return pixels, CHANNEL_ORDERS[channels]


def analyse_image(path: Path, *, where: str) -> MediaRecord:
    data = path.read_bytes()
    sniffed = sniff_image(data[:16])
    if sniffed is None:
        raise InputError(f"{where}: not a PNG, JPEG, TIFF or BMP image")
    fmt, ext = sniffed
    pages, exif, exif_error = _pillow_facts(path)
    if pages > 1:
        raise InputError(
            f"{where}: a multi-page TIFF ({pages} pages) cannot be ingested as one exhibit yet",
            hint="export each page losslessly to its own file and ingest those, keeping the original",
        )
    pixels, order = decode_image(data, where=where)
    facts: dict[str, Any] = {
        "width": int(pixels.shape[1]),
        "height": int(pixels.shape[0]),
        "channels": len(order),
        "channel_order": order,
        "dtype": pixels.dtype.name,
        "bits_per_sample": pixels.dtype.itemsize * 8,
        "decoder": f"opencv {cv2.__version__} imdecode IMREAD_UNCHANGED",
    }
    if exif:
        facts["exif"] = exif
    warnings = []
    if exif_error:
        warnings.append(f"EXIF could not be read: {exif_error}")
    if fmt == "jpeg" and not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        warnings.append("the JPEG has no end-of-image marker: it may be truncated")
    if "Orientation" in (exif or {}) and exif.get("Orientation") not in ("1", None):
        warnings.append(
            f"EXIF Orientation is {exif['Orientation']}: pixels are hashed as stored, not rotated"
        )
    return MediaRecord(
        media="image",
        format=fmt,
        extension=ext,
        pixel_hash={
            "algorithm": PIXEL_HASH_ALGORITHM,
            "sha256": pixel_hash(pixels, channel_order=order),
            "dtype": pixels.dtype.name,
            "shape": [int(pixels.shape[0]), int(pixels.shape[1]), len(order)],
            "channel_order": order,
        },
        facts=facts,
        warnings=warnings,
    )


def _pillow_facts(path: Path) -> tuple[int, dict[str, str], str | None]:
    """Page count and EXIF via Pillow (metadata only: Pillow never decodes pixels here)."""
    from PIL import ExifTags, Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            pages = int(getattr(im, "n_frames", 1))
            raw = im.getexif()
            exif: dict[str, str] = {}
            for tag, value in raw.items():
                name = ExifTags.TAGS.get(tag, f"0x{tag:04x}")
                text = value.hex() if isinstance(value, bytes) else str(value)
                exif[name] = text[:200]
            return pages, exif, None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        return 1, {}, str(exc) or type(exc).__name__


def _plane_row_bytes(frame: av.VideoFrame) -> list[int]:
    rows = [0] * len(frame.planes)
    for comp in frame.format.components:
        rows[comp.plane] += comp.width * math.ceil(comp.bits / 8)
    return rows


def frame_sha256(frame: av.VideoFrame) -> str:
    """SHA-256 of a decoded frame: each plane's visible rows, without line padding, in order."""
    name = frame.format.name
    if name not in FRAME_HASH_FORMATS:
        raise InputError(
            f"frame pixel format {name!r} is not supported for frame hashing",
            hint="please report this file's format; supported: "
            + ", ".join(sorted(FRAME_HASH_FORMATS)),
        )
    digest = hashlib.sha256()
    for plane, row_bytes in zip(frame.planes, _plane_row_bytes(frame), strict=True):
        buf = np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)
        digest.update(np.ascontiguousarray(buf[:, :row_bytes]).tobytes())
    return digest.hexdigest()


def _fraction(value: Fraction | None) -> str | None:
    return None if value is None else f"{value.numerator}/{value.denominator}"


def analyse_video(
    path: Path,
    *,
    where: str,
    suffix: str = "",
    progress: Callable[[int, int | None], None] | None = None,
) -> MediaRecord:
    """Decode every frame of the first video stream. Decode errors are counted, as ffmpeg does."""
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{where}: not a supported image or video ({getattr(exc, 'strerror', None) or exc})",
            hint="images: PNG, JPEG, TIFF, BMP; video: anything FFmpeg decodes",
        ) from None
    with container:
        if not container.streams.video:
            raise InputError(f"{where}: the file has no video stream")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        declared = int(stream.frames) or None
        frames: list[dict[str, Any]] = []
        decode_errors = 0
        corrupt = 0
        interlaced = 0
        first = None

        def take(frame: av.VideoFrame) -> None:
            nonlocal corrupt, interlaced, first
            if first is None:
                first = frame
            is_corrupt = bool(getattr(frame, "is_corrupt", False))
            corrupt += is_corrupt
            interlaced += bool(frame.interlaced_frame)
            record: dict[str, Any] = {
                "index": len(frames),
                "pts": frame.pts,
                "type": PICTURE_TYPES.get(int(frame.pict_type), "?"),
                "key": bool(frame.key_frame),
                "sha256": frame_sha256(frame),
            }
            if is_corrupt:
                record["corrupt"] = True
            frames.append(record)
            if progress is not None:
                progress(len(frames), declared)

        try:
            for packet in container.demux(stream):
                try:
                    for frame in packet.decode():
                        take(frame)
                except av.error.InvalidDataError:
                    decode_errors += 1
        except av.error.FFmpegError as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise InputError(f"{where}: the video cannot be read ({reason})") from None
        if not frames:
            raise InputError(f"{where}: no video frame could be decoded")
        assert first is not None
        facts: dict[str, Any] = {
            "container": container.format.name,
            "codec": ctx.name,
            "codec_long_name": ctx.codec.long_name,
            "profile": ctx.profile,
            "width": int(first.width),
            "height": int(first.height),
            "pixel_format": first.format.name,
            "frame_count": len(frames),
            "declared_frame_count": declared,
            "average_rate": _fraction(stream.average_rate),
            "time_base": _fraction(stream.time_base),
            "color_range": int(first.color_range),
            "colorspace": int(first.colorspace),
            "interlaced_frames": interlaced,
            "sample_aspect_ratio": _fraction(ctx.sample_aspect_ratio),
            "bit_rate": ctx.bit_rate,
            "duration_us": container.duration,
            "audio_streams": len(container.streams.audio),
            "metadata": {str(k): str(v)[:200] for k, v in container.metadata.items()},
            "decoder": f"ffmpeg libavcodec {'.'.join(map(str, av.library_versions['libavcodec']))}",
        }
    warnings = []
    if decode_errors:
        warnings.append(f"{decode_errors} packet(s) could not be decoded and yielded no frame")
    if corrupt:
        warnings.append(f"{corrupt} frame(s) were flagged corrupt by the decoder")
    if facts["audio_streams"]:
        warnings.append("audio streams are kept in the stored file but not hashed per sample")
    facts["decode_errors"] = decode_errors
    facts["bit_exact_decoding"] = facts["codec"] in BIT_EXACT_CODECS
    if not facts["bit_exact_decoding"]:
        warnings.append(
            f"{facts['codec']} decoding is not bit-exact by its standard: frame hashes are those of "
            f"the recorded FFmpeg version and may differ under another decoder"
        )
    leaves = [bytes.fromhex(f["sha256"]) for f in frames]
    return MediaRecord(
        media="video",
        format=str(container.format.name),
        extension=safe_extension(suffix or path.suffix),
        pixel_hash={
            "algorithm": "forensic-frames/1",
            "sha256": merkle_root(leaves),
            "frame_count": len(frames),
        },
        facts=facts,
        frames=frames,
        warnings=warnings,
    )


def safe_extension(suffix: str) -> str:
    ext = suffix.lower()
    return ext if re.fullmatch(r"\.[a-z0-9]{1,8}", ext) else ".bin"


def analyse(
    path: Path,
    *,
    where: str,
    suffix: str = "",
    progress: Callable[[int, int | None], None] | None = None,
) -> MediaRecord:
    """Analyse a stored copy: images by their magic bytes, anything else through FFmpeg."""
    with path.open("rb") as fh:
        head = fh.read(16)
    if sniff_image(head) is not None:
        return analyse_image(path, where=where)
    return analyse_video(path, where=where, suffix=suffix, progress=progress)


#: How video frames become RGB arrays for enhancement. The conversion is part of the record:
#: `verify --replay` repeats it and compares the converted frame's hash with the recorded one.
FRAME_CONVERSION: dict[str, Any] = {
    "converter": "PyAV VideoFrame.reformat (libswscale)",
    "interpolation": "BILINEAR",
    "threads": 1,
    "source_colorspace": "as signalled by the stream (ITU-R BT.601 when unspecified)",
}


def _target_format(frame: av.VideoFrame) -> str:
    bits = max(c.bits for c in frame.format.components)
    grey = len(frame.format.components) == 1
    if grey:
        return "gray16le" if bits > 8 else "gray"
    return "rgb48le" if bits > 8 else "rgb24"


def decode_frames(
    path: Path, wanted: set[int], *, where: str
) -> dict[int, tuple[npt.NDArray[Any], str, int | None, str]]:
    """Decode the frames whose indices are in ``wanted``.

    Returns, per index: the frame as an RGB (or grey) array for enhancement, the SHA-256 of
    the decoded frame itself (comparable with the ingest record), its PTS, and the pixel
    format converted from. Frames are counted in decoding output order, as at ingest.
    """
    out: dict[int, tuple[npt.NDArray[Any], str, int | None, str]] = {}
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise InputError(f"{where}: the video cannot be opened ({exc})") from None
    with container:
        stream = container.streams.video[0]
        try:
            _collect(container.demux(stream), wanted, out)
        except av.error.FFmpegError as exc:
            raise InputError(f"{where}: the video cannot be read ({exc})") from None
    missing = sorted(wanted - set(out))
    if missing:
        raise InputError(f"{where}: frames {missing[:5]} could not be decoded")
    return out


def _collect(
    packets: Any, wanted: set[int], out: dict[int, tuple[npt.NDArray[Any], str, int | None, str]]
) -> None:
    last = max(wanted)
    index = 0
    for packet in packets:
        try:
            decoded = packet.decode()
        except av.error.InvalidDataError:
            continue  # counted at ingest, as ffmpeg does; the frame numbering follows output
        for frame in decoded:
            if index in wanted:
                target = _target_format(frame)
                converted = frame.reformat(
                    format=target,
                    interpolation=str(FRAME_CONVERSION["interpolation"]),
                    threads=int(FRAME_CONVERSION["threads"]),
                ).to_ndarray()
                out[index] = (
                    np.ascontiguousarray(converted),
                    frame_sha256(frame),
                    frame.pts,
                    frame.format.name,
                )
            index += 1
        if index > last:
            return
