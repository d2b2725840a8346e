"""Decode evidence and describe it: canonical pixel hash, per-frame hashes, media facts.

Images decode with OpenCV (``IMREAD_UNCHANGED``: native bit depth, alpha kept, EXIF orientation
not applied, so the hash is of the pixels as stored). Video decodes with PyAV (FFmpeg); each frame
is hashed in its native pixel format, planes in order without line padding, which is what
``ffmpeg -i F -f framehash -hash sha256 -`` hashes.

Video facts also record how the pixels are to be read: colour range, matrix, primaries and
transfer as signalled (and what was assumed where nothing was), the pixel and display aspect
ratios, and interlacing (from the stream's flags, else from a combing measure on the luma).
Frames for enhancement come from :func:`iter_frames`, one at a time, converted to full-range
RGB (or grey) exactly as :func:`conversion_record` describes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import math
import queue
import re
import struct
import threading
import zlib
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any
from warnings import catch_warnings, simplefilter

import av
import av.error
import cv2
import numpy as np
import numpy.typing as npt

from forensic.colour import ColourPlan, colour_facts, colour_plan, expand_grey
from forensic.errors import InputError
from forensic.hashing import CHANNEL_ORDERS, PIXEL_HASH_ALGORITHM, merkle_root, pixel_hash
from forensic.interlace import (
    FIELD_ORDERS,
    CombingMeter,
    field_luma,
    interlace_facts,
)
from forensic.ops.orientation import EXIF_ORIENTATIONS, orientation_for_rotation

cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

IMAGE_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "png", ".png"),
    (b"\xff\xd8\xff", "jpeg", ".jpg"),
    (b"II*\x00", "tiff", ".tif"),
    (b"MM\x00*", "tiff", ".tif"),
    (b"BM", "bmp", ".bmp"),
)

# Pixel formats whose framehash layout is "each plane's visible rows, sample bytes only", plus the
# padded packed formats in PADDED_FORMATS (framehash hashes their padding byte too).
# Bit-packed, palette and other padded formats (rgb565, monob, pal8, rgb0, bayer...) are not
# listed: their byte layout is not the sum of their components, and a wrong frame hash is worse
# than none.
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
        "gbrp16le",
        "gbrap16le",
        "bgr0",
    ]
)

#: Packed formats with a padding byte, and their bytes per pixel (padding included): ffmpeg's
#: framehash copies whole pixels (``av_image_copy_to_buffer``), so the padding byte is hashed.
#: FFV1 stores 8-bit RGB as bgr0, and its decoder writes 0 into the padding byte.
PADDED_FORMATS = {"bgr0": 4}

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


#: Default pixel limit per image or video frame (width x height): above the largest camera
#: sensors' stills (about 100 megapixels), far below what would exhaust memory when decoded.
DEFAULT_MAX_PIXELS = 120_000_000
#: Default frame limit per video: 11 hours at 25 frames per second.
DEFAULT_MAX_FRAMES = 1_000_000
#: Hard ceilings a policy may not raise the limits above: OpenCV's own image-size limit
#: (``CV_IO_MAX_IMAGE_PIXELS``, 2^30) and 10 million frames.
CEILING_MAX_PIXELS = 1 << 30
CEILING_MAX_FRAMES = 10_000_000


@dataclass(frozen=True)
class MediaLimits:
    """How large a decoded input may be; checked from the declared size (image header, video
    stream parameters, declared frame count) *before* decoding, and again while decoding.
    Set by the case policy's ``[limits]`` table and recorded in each ``evidence.ingest``."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    max_frames: int = DEFAULT_MAX_FRAMES

    def as_dict(self) -> dict[str, int]:
        return {"max_pixels": self.max_pixels, "max_frames": self.max_frames}


#: What `analyse` applies when given no limits (re-decoding what was accepted at ingest).
CEILINGS = MediaLimits(max_pixels=CEILING_MAX_PIXELS, max_frames=CEILING_MAX_FRAMES)

#: Exceptions the decoders (OpenCV, FFmpeg through PyAV, zlib) raise on malformed input;
#: `analyse` turns each into an `InputError` naming the file. Anything else is a bug of ours
#: and stays one (exit 70), so the fuzzer (stress/fuzz.py) can find it.
DECODER_ERRORS: tuple[type[BaseException], ...] = (
    av.error.FFmpegError,
    cv2.error,
    OSError,
    ValueError,
    EOFError,
    OverflowError,
    MemoryError,
    RecursionError,
    struct.error,
    zlib.error,
)
#: What Pillow's format plugins raise on malformed headers and tags besides OSError (broken
#: TIFF tags end in KeyError, IndexError, TypeError or ZeroDivisionError inside Pillow); caught
#: only around Pillow's own calls.
PILLOW_ERRORS: tuple[type[BaseException], ...] = (
    *DECODER_ERRORS,
    SyntaxError,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
)


def _check_pixels(where: str, width: int, height: int, limits: MediaLimits, what: str) -> None:
    if width < 1 or height < 1:
        raise InputError(f"{where}: the {what} declares an empty size {width}x{height}")
    if width * height > limits.max_pixels:
        raise InputError(
            f"{where}: the {what} declares {width}x{height} = {width * height:,} pixels, more than "
            f"the limit of {limits.max_pixels:,} (policy [limits] max_pixels); it is not decoded",
            hint="a genuine file this large needs a case whose policy raises [limits] max_pixels",
        )


def _too_many_frames(where: str, count: int, limits: MediaLimits, what: str) -> InputError:
    return InputError(
        f"{where}: the video {what} {count:,} frames, more than the limit of "
        f"{limits.max_frames:,} (policy [limits] max_frames); it is not ingested",
        hint="cut the export into shorter files at the source, or use a case whose policy "
        "raises [limits] max_frames",
    )


@contextlib.contextmanager
def _pillow_unbounded(noted: list[str]) -> Iterator[None]:
    """Pillow's own decompression-bomb check off (under a lock): `MediaLimits` is checked
    instead, from the size Pillow reads from the header. The Python warnings Pillow emits
    on a malformed file (corrupt EXIF, truncated tags) are appended to ``noted``."""
    from PIL import Image

    with _PILLOW_LOCK, catch_warnings(record=True) as caught:
        simplefilter("always")
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved
            noted.extend(" ".join(str(w.message).split())[:200] for w in caught)


_PILLOW_LOCK = threading.RLock()


def sniff_image(head: bytes) -> tuple[str, str] | None:
    for magic, name, ext in IMAGE_SIGNATURES:
        if head.startswith(magic):
            return name, ext
    return None


def decode_image(data: bytes, *, where: str) -> tuple[npt.NDArray[Any], str]:
    """Decode image bytes to an array in RGB(A) or L order, native dtype. Raises InputError."""
    try:
        pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "cv2.error"
        raise InputError(
            f"{where}: the image cannot be decoded (OpenCV: {reason})",
            hint="check the file against its source; a damaged file must be re-acquired",
        ) from None
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


def analyse_image(
    path: Path, *, where: str, limits: MediaLimits = CEILINGS, damage_checks: bool = False
) -> MediaRecord:
    """Decode and describe a still. ``damage_checks`` (ingest) also decodes a JPEG or TIFF
    strictly to warn of damage OpenCV concealed (`_corrupt_data_warnings`; about 2.5 times the
    time of the analysis alone for a 12-megapixel JPEG)."""
    with path.open("rb") as fh:
        sniffed = sniff_image(fh.read(16))
    if sniffed is None:
        raise InputError(f"{where}: not a PNG, JPEG, TIFF or BMP image")
    fmt, ext = sniffed
    noted: list[str] = []  # Pillow's warnings
    width, height = _declared_size(path, where=where, noted=noted)
    _check_pixels(where, width, height, limits, "image")
    data = path.read_bytes()
    pages, exif, exif_error = _pillow_facts(path, noted)
    if pages > 1:
        raise InputError(
            f"{where}: a multi-page TIFF ({pages} pages) cannot be ingested as one exhibit yet",
            hint="export each page losslessly to its own file and ingest those, keeping the original",
        )
    pixels, order = decode_image(data, where=where)
    if pixels.shape[0] * pixels.shape[1] > limits.max_pixels:  # the header understated it
        _check_pixels(where, int(pixels.shape[1]), int(pixels.shape[0]), limits, "decoded image")
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
    if damage_checks:
        warnings.extend(_corrupt_data_warnings(path, data, fmt, noted))
    warnings.extend(f"Pillow warns: {text}" for text in dict.fromkeys(noted))
    orientation = exif_orientation(exif)
    if orientation is not None:
        facts["orientation"] = orientation
        if orientation["transform"] != "none":
            warnings.append(
                f"EXIF Orientation is {orientation['value']}: the picture is displayed "
                f"{orientation['transform'].replace('_', ' ')}; pixels are hashed and processed "
                'as stored: add an orient step (transform = "auto") to see it upright'
            )
    elif "Orientation" in (exif or {}) and exif.get("Orientation") not in ("1", None):
        warnings.append(
            f"EXIF Orientation is {exif['Orientation']!r}, not a valid value (1-8): pixels are "
            "hashed as stored, and no orientation is recorded"
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


def exif_orientation(exif: Mapping[str, str] | None) -> dict[str, Any] | None:
    """The orientation fact of a still from its EXIF Orientation tag, or None when absent or
    invalid: ``{source, value, transform}`` (the transform that shows it upright)."""
    text = (exif or {}).get("Orientation")
    if text is None or not text.strip().isdigit() or int(text) not in EXIF_ORIENTATIONS:
        return None
    value = int(text)
    return {"source": "EXIF Orientation", "value": value, "transform": EXIF_ORIENTATIONS[value]}


def video_orientation(
    frame: av.VideoFrame, stream_metadata: Mapping[str, str]
) -> tuple[dict[str, Any] | None, list[str]]:
    """The orientation fact of a video from its first frame's display matrix (PyAV's
    ``VideoFrame.rotation``: anticlockwise degrees), and warnings. A legacy ``rotate`` tag
    without a display matrix is recorded but not turned into a transform (its sense differs
    between tools); the examiner then gives the transform."""
    warnings: list[str] = []
    matrix: Any = next(
        (sd for sd in frame.side_data if str(getattr(sd, "type", "")).endswith("DISPLAYMATRIX")),
        None,
    )
    tag = stream_metadata.get("rotate")
    if matrix is None:
        if tag is None:
            return None, warnings
        warnings.append(
            f"the stream has a rotate tag {tag!r} but no display matrix: recorded, not applied "
            "by orient auto; give orient's transform by hand after viewing the frames"
        )
        return {"source": "rotate tag", "rotate_tag": tag, "transform": None}, warnings
    values = np.frombuffer(bytes(memoryview(matrix)), "<i4")[:9]
    rotation = float(frame.rotation)
    transform = orientation_for_rotation(rotation)
    fact: dict[str, Any] = {
        "source": "display matrix",
        "matrix": [int(v) for v in values],
        "rotation_ccw_degrees": rotation,
        "transform": transform,
    }
    if tag is not None:
        fact["rotate_tag"] = tag
    mirrored = int(values[0]) * int(values[4]) - int(values[1]) * int(values[3]) < 0
    if mirrored:
        fact["mirrored"] = True
        warnings.append(
            "the display matrix also mirrors the picture: orient auto applies only the "
            "rotation; add a flip after viewing the frames"
        )
    if transform is None:
        warnings.append(
            f"the display matrix rotates by {rotation} degrees, not a quarter turn: recorded, "
            "not applied by orient auto"
        )
    elif transform != "none":
        warnings.append(
            f"the display matrix rotates the picture {rotation:g} degrees anticlockwise for "
            "display: frames are hashed and processed as stored (what `ffmpeg -noautorotate` "
            'decodes); add an orient step (transform = "auto") to see them upright'
        )
    return fact, warnings


def _declared_size(path: Path, *, where: str, noted: list[str]) -> tuple[int, int]:
    """(width, height) as the image's header declares it, read by Pillow without decoding a
    pixel; a header Pillow cannot read is refused (its size could not be checked)."""
    from PIL import Image

    try:
        with _pillow_unbounded(noted), Image.open(path) as im:
            width, height = im.size
    except PILLOW_ERRORS as exc:
        raise InputError(
            f"{where}: the image header cannot be read ({_reason(exc)}), so its size cannot be "
            "checked before decoding; it is not decoded",
            hint="check the file against its source; a damaged file must be re-acquired",
        ) from None
    return int(width), int(height)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    if not text:
        return type(exc).__name__
    # Decoders name the stored temporary copy; the caller names the file given.
    line = re.sub(r"'[^']*\.incoming-[^']*'", "the file", text[-1])
    return f"{type(exc).__name__}: {line[:200]}"


def _corrupt_data_warnings(path: Path, data: bytes, fmt: str, noted: list[str]) -> list[str]:
    """Warnings for a JPEG or TIFF that OpenCV decoded although its data is damaged (libjpeg
    and libtiff conceal errors): Pillow decodes it strictly (truncated data is an error), and
    a JPEG is also decoded by FFmpeg with ``err_detect=explode``, which stops at the first
    damaged block. Measured on the hostile-media generator (``python -m stress``): bit flips
    in the entropy-coded data that OpenCV decodes silently are caught here."""
    from PIL import Image

    warnings: list[str] = []
    if fmt not in ("jpeg", "tiff"):
        return warnings
    try:
        with _pillow_unbounded(noted), Image.open(path) as im:
            im.load()
    except PILLOW_ERRORS as exc:
        warnings.append(
            f"corrupt data: Pillow's strict decoder reports {_reason(exc)} although OpenCV "
            "decoded the image: pixels may be damaged or concealed; compare with the source"
        )
    if fmt == "jpeg":
        try:
            with av.open(io.BytesIO(data), mode="r", format="jpeg_pipe") as container:
                stream = container.streams.video[0]
                stream.codec_context.options = {"err_detect": "explode"}
                for _ in container.decode(stream):
                    pass
        except (av.error.FFmpegError, IndexError, ValueError, AttributeError) as exc:
            warnings.append(
                "corrupt data: FFmpeg's strict JPEG decoder (err_detect=explode) stops at "
                f"damaged data ({_reason(exc)}): pixels may be damaged or concealed; compare "
                "with the source"
            )
    return warnings


def _pillow_facts(path: Path, noted: list[str]) -> tuple[int, dict[str, str], str | None]:
    """Page count and EXIF via Pillow (metadata only: Pillow never decodes pixels here)."""
    from PIL import ExifTags, Image

    try:
        with _pillow_unbounded(noted), Image.open(path) as im:
            pages = int(getattr(im, "n_frames", 1))
            raw = im.getexif()
            exif: dict[str, str] = {}
            for tag, value in raw.items():
                name = ExifTags.TAGS.get(tag, f"0x{tag:04x}")
                text = value.hex() if isinstance(value, bytes) else str(value)
                exif[name] = text[:200]
            return pages, exif, None
    except PILLOW_ERRORS as exc:
        return 1, {}, str(exc) or type(exc).__name__


def _plane_row_bytes(frame: av.VideoFrame) -> list[int]:
    if frame.format.name in PADDED_FORMATS:
        return [frame.width * PADDED_FORMATS[frame.format.name]]
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
        rows = np.ascontiguousarray(buf[:, :row_bytes])  # a view when there is no padding
        digest.update(rows.data.cast("B"))
    return digest.hexdigest()


def _fraction(value: Fraction | None) -> str | None:
    return None if value is None else f"{value.numerator}/{value.denominator}"


#: FFmpeg demuxers that read text files as pictures (``tty``: ANSI art), never footage.
TEXT_DEMUXERS = frozenset({"tty"})


def analyse_video(
    path: Path,
    *,
    where: str,
    suffix: str = "",
    progress: Callable[[int, int | None], None] | None = None,
    limits: MediaLimits = CEILINGS,
) -> MediaRecord:
    """Decode every frame of the first video stream. Decode errors are counted, as ffmpeg does.
    The frame size and the declared frame count are checked against ``limits`` before
    decoding, and the frames counted against them while decoding."""
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{where}: not a supported image or video ({getattr(exc, 'strerror', None) or exc})",
            hint="images: PNG, JPEG, TIFF, BMP; video: anything FFmpeg decodes",
        ) from None
    with container:
        if container.format.name in TEXT_DEMUXERS:
            # FFmpeg renders any text file as ANSI art "video"; it is not footage.
            raise InputError(
                f"{where}: is text, not a supported image or video",
                hint="images: PNG, JPEG, TIFF, BMP; video: anything FFmpeg decodes",
            )
        if not container.streams.video:
            raise InputError(f"{where}: the file has no video stream")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if ctx is None:  # FFmpeg has no decoder for what the container declares
            raise InputError(
                f"{where}: the video stream's codec cannot be identified or decoded",
                hint="images: PNG, JPEG, TIFF, BMP; video: anything FFmpeg decodes",
            )
        declared = int(stream.frames) or None
        if ctx.width and ctx.height:
            _check_pixels(where, int(ctx.width), int(ctx.height), limits, "video stream")
        if declared is not None and declared > limits.max_frames:
            raise _too_many_frames(where, declared, limits, "declares")
        ignored = _ignored_streams(container, stream)
        frames: list[dict[str, Any]] = []
        decode_errors = 0
        corrupt = 0
        interlaced = 0
        first = None
        meter = CombingMeter()

        def take(frame: av.VideoFrame) -> None:
            nonlocal corrupt, interlaced, first
            if first is None:
                first = frame
            if frame.width * frame.height > limits.max_pixels:
                _check_pixels(where, frame.width, frame.height, limits, "decoded frame")
            if len(frames) >= limits.max_frames:
                raise _too_many_frames(where, len(frames) + 1, limits, "has at least")
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
            meter.push(field_luma(frame))
            frames.append(record)
            if progress is not None:
                progress(len(frames), declared)

        try:
            with ffmpeg_errors() as logged:
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
            raise InputError(
                f"{where}: no frame could be decoded: it is not a PNG, JPEG, TIFF or BMP image "
                "(by its first bytes, whatever its name), nor a video FFmpeg can decode",
                hint="check the file against its source; a damaged file must be re-acquired",
            )
        assert first is not None
        meter.finish()
        interlace = interlace_facts(
            meter, interlaced, FIELD_ORDERS.get(int(ctx.field_order), "unknown")
        )
        sar = ctx.sample_aspect_ratio or stream.sample_aspect_ratio or None
        shape = Fraction(int(first.width), int(first.height))
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
            "colour": colour_facts(first),
            "interlaced_frames": interlace.pop("interlaced_frames"),
            "interlace": interlace,
            "sample_aspect_ratio": _fraction(sar),
            "display_aspect_ratio": _fraction(shape * (sar or 1)),
            "bit_rate": ctx.bit_rate,
            "duration_us": container.duration,
            "audio_streams": len(container.streams.audio),
            "metadata": {str(k): str(v)[:200] for k, v in container.metadata.items()},
            "decoder": f"ffmpeg libavcodec {'.'.join(map(str, av.library_versions['libavcodec']))}",
        }
        orientation, orientation_warnings = video_orientation(
            first, {str(k): str(v)[:200] for k, v in stream.metadata.items()}
        )
        if orientation is not None:
            facts["orientation"] = orientation
    warnings = list(orientation_warnings)
    if sar is None:
        facts["aspect_assumed"] = "sample aspect ratio not signalled: square pixels assumed"
    if decode_errors:
        warnings.append(f"{decode_errors} packet(s) could not be decoded and yielded no frame")
    if corrupt:
        warnings.append(f"{corrupt} frame(s) were flagged corrupt by the decoder")
    if logged:
        # FFV1's slice CRC mismatches and a truncated container are only logged: frames come
        # out concealed and unflagged.
        shown = "; ".join(logged[:3]) + ("; ..." if len(logged) > 3 else "")
        warnings.append(
            f"FFmpeg reported {len(logged)} error(s) while reading and decoding ({shown}): "
            "frames may be damaged or concealed; compare with the source"
        )
    if facts["audio_streams"]:
        warnings.append("audio streams are kept in the stored file but not hashed per sample")
    warnings.extend(ignored)
    warnings.extend(
        f"colour: {text}" for text in facts["colour"]["assumed"] if "not supported" in text
    )
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


_CONTINUATION = re.compile(r"^at [0-9.]+ seconds$")


@contextlib.contextmanager
def ffmpeg_errors() -> Iterator[list[str]]:
    """Collect the error messages FFmpeg logs (from every thread) while the block runs, as
    ``"<component>: <message>"``; the log level is restored afterwards."""
    import av.logging

    found: list[str] = []
    saved = av.logging.get_level()
    if saved is None or saved < av.logging.ERROR:
        av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture(local=False) as logs:
            yield found
    finally:
        av.logging.set_level(saved)
    for level, name, message in logs:
        text = " ".join(str(message).split())
        if level <= av.logging.ERROR and text and not _CONTINUATION.match(text):
            found.append(f"{name}: {text}"[:160])


def _ignored_streams(container: Any, used: Any) -> list[str]:
    """Warnings naming the streams besides the decoded one that are not examined: further
    video streams (a second camera, a thumbnail track) and data, subtitle or attachment
    streams (audio has its own warning)."""
    out = []
    for other in container.streams:
        if other.index == used.index or other.type == "audio":
            continue
        codec = getattr(getattr(other, "codec_context", None), "name", None) or "unknown codec"
        what = "video stream" if other.type == "video" else f"{other.type} stream"
        out.append(
            f"{what} #{other.index} ({codec}) is kept in the stored file but not decoded or "
            f"hashed: only video stream #{used.index} is examined"
        )
    return out


def safe_extension(suffix: str) -> str:
    ext = suffix.lower()
    return ext if re.fullmatch(r"\.[a-z0-9]{1,8}", ext) else ".bin"


def analyse(
    path: Path,
    *,
    where: str,
    suffix: str = "",
    progress: Callable[[int, int | None], None] | None = None,
    limits: MediaLimits | None = None,
    damage_checks: bool = False,
) -> MediaRecord:
    """Analyse a stored copy: images by their magic bytes, anything else through FFmpeg.

    ``limits`` (default: the hard ceilings only, for re-decoding what ingest accepted) are
    checked before decoding; ``damage_checks`` (ingest) adds the strict re-decoding of stills
    that warns of concealed damage. Whatever a decoder raises on a malformed file becomes an
    `InputError` naming ``where``."""
    bounds = CEILINGS if limits is None else limits
    with path.open("rb") as fh:
        head = fh.read(16)
    try:
        if sniff_image(head) is not None:
            return analyse_image(path, where=where, limits=bounds, damage_checks=damage_checks)
        return analyse_video(path, where=where, suffix=suffix, progress=progress, limits=bounds)
    except InputError as exc:
        if where in exc.message:
            raise
        raise InputError(f"{where}: {exc.message}", hint=exc.hint) from None
    except DECODER_ERRORS as exc:
        raise InputError(
            f"{where}: cannot be decoded ({_reason(exc)})",
            hint="check the file against its source; a damaged file must be re-acquired",
        ) from None


def conversion_record(facts: dict[str, Any]) -> dict[str, Any]:
    """Exactly what :func:`iter_frames` does to this exhibit's frames (from its ingest facts):
    source and target pixel format, the range and matrix signalled and used, what was assumed,
    and the arguments given to ``VideoFrame.reformat``. No floating-point values."""
    plan = colour_plan(
        str(facts["pixel_format"]),
        int(facts.get("color_range", 0)),
        int(facts.get("colorspace", 2)),
    )
    return plan.record()


_PLANS: dict[tuple[str, int, int], ColourPlan] = {}
_PLANS_LOCK = threading.Lock()


def _plan_for(frame: av.VideoFrame) -> ColourPlan:
    key = (frame.format.name, int(frame.color_range), int(frame.colorspace))
    with _PLANS_LOCK:
        plan = _PLANS.get(key)
        if plan is None:
            plan = _PLANS[key] = colour_plan(*key)
    return plan


def convert_frame(frame: av.VideoFrame) -> npt.NDArray[Any]:
    """A decoded frame as a contiguous full-range RGB (or grey) array, as conversion_record says."""
    plan = _plan_for(frame)
    pixels = frame.reformat(**plan.reformat_kwargs()).to_ndarray()
    if plan.expand_grey:
        return expand_grey(pixels)
    return np.ascontiguousarray(pixels)


# -- frame-exact access ------------------------------------------------------------------------


@dataclass
class DecodedFrame:
    """One frame for enhancement, numbered in decoder output order as at ingest."""

    index: int
    image: npt.NDArray[Any] = field(repr=False)
    source_sha256: str  # frame_sha256 of the decoded frame (equals the ingest record)
    pts: int | None
    time_s: float | None
    picture_type: str
    source_format: str


def _check_indices(indices: Sequence[int], where: str) -> list[int]:
    if any(isinstance(i, bool) or not isinstance(i, int | np.integer) for i in indices):
        raise InputError(f"{where}: frame indices must be integers")
    wanted = [int(i) for i in indices]
    if any(i < 0 for i in wanted):
        raise InputError(f"{where}: frame indices must not be negative ({min(wanted)})")
    if any(b <= a for a, b in itertools.pairwise(wanted)):
        raise InputError(f"{where}: frame indices must be sorted and unique")
    return wanted


def _decode_wanted(
    path: Path, wanted: list[int], where: str
) -> Generator[DecodedFrame, None, None]:
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise InputError(f"{where}: the video cannot be opened ({exc})") from None
    with container:
        if not container.streams.video:
            raise InputError(f"{where}: the file has no video stream")
        stream = container.streams.video[0]
        pos = 0
        index = 0
        try:
            for packet in container.demux(stream):
                try:
                    decoded = packet.decode()
                except av.error.InvalidDataError:
                    continue  # counted at ingest, as ffmpeg does; numbering follows the output
                for frame in decoded:
                    if index == wanted[pos]:
                        yield DecodedFrame(
                            index=index,
                            image=convert_frame(frame),
                            source_sha256=frame_sha256(frame),
                            pts=frame.pts,
                            time_s=frame.time,
                            picture_type=PICTURE_TYPES.get(int(frame.pict_type), "?"),
                            source_format=frame.format.name,
                        )
                        pos += 1
                        if pos == len(wanted):
                            return
                    index += 1
        except av.error.FFmpegError as exc:
            raise InputError(f"{where}: the video cannot be read ({exc})") from None
    missing = wanted[pos:]
    raise InputError(
        f"{where}: frames {missing[:5]}{' ...' if len(missing) > 5 else ''} could not be "
        f"decoded: the video decodes to {index} frames, numbered from 0"
    )


#: Frames decoded ahead of the consumer by the background decoder.
QUEUE_DEPTH = 2


def _in_background(
    make: Callable[[], Generator[DecodedFrame, None, None]],
) -> Iterator[DecodedFrame]:
    """Run a frame generator on a worker thread, ``QUEUE_DEPTH`` frames ahead of the consumer,
    so that decoding (libavcodec and libswscale release the GIL) overlaps processing. Errors
    are re-raised here; closing this generator stops and joins the worker."""
    items: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=QUEUE_DEPTH)
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            with contextlib.closing(make()) as frames:
                for frame in frames:
                    if not put(("frame", frame)):
                        return
            put(("end", None))
        except BaseException as exc:  # handed to the consumer, never lost on the thread
            put(("error", exc))

    worker = threading.Thread(target=work, name="forensic-decode", daemon=True)
    worker.start()
    try:
        while True:
            kind, item = items.get()
            if kind == "frame":
                yield item
            elif kind == "error":
                raise item
            else:
                return
    finally:
        stop.set()
        worker.join()


def iter_frames(
    path: Path, indices: Sequence[int], *, where: str, background: bool = True
) -> Iterator[DecodedFrame]:
    """Decode the frames at ``indices`` (sorted, unique), streaming, in order.

    Frames are numbered in decoder output order exactly as :func:`analyse_video` numbers them.
    Only wanted frames are converted (see :func:`conversion_record`); decoding stops after the
    last wanted one. A frame the video does not have raises InputError. With ``background``
    the decoding runs on a worker thread a few frames ahead (same results).
    """
    wanted = _check_indices(indices, where)
    if not wanted:
        return iter(())
    if background:
        return _in_background(lambda: _decode_wanted(path, wanted, where))
    return _decode_wanted(path, wanted, where)


def decode_frames(
    path: Path, wanted: set[int], *, where: str
) -> dict[int, tuple[npt.NDArray[Any], str, int | None, str]]:
    """Decode the frames whose indices are in ``wanted``.

    Returns, per index: the frame as an RGB (or grey) array for enhancement, the SHA-256 of
    the decoded frame itself (comparable with the ingest record), its PTS, and the pixel
    format converted from. Frames are counted in decoding output order, as at ingest.
    """
    return {
        f.index: (f.image, f.source_sha256, f.pts, f.source_format)
        for f in iter_frames(path, sorted(wanted), where=where)
    }


def index_at_time(frames: list[dict[str, Any]], seconds: float, time_base: str) -> int:
    """The index of the frame displayed at ``seconds`` (on the stream's timeline, PTS x time
    base), from the ingest record's frames: the last frame whose PTS is at or before it. The
    last frame is taken to last as long as the one before it (the median frame step)."""
    try:
        num, _, den = time_base.partition("/")
        base = Fraction(int(num), int(den or 1))
    except (ValueError, ZeroDivisionError):
        raise InputError(f"time base {time_base!r} is not a fraction like 1/25") from None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float | Fraction):
        raise InputError(f"time {seconds!r} is not a number of seconds")
    if isinstance(seconds, float) and not math.isfinite(seconds):
        raise InputError(f"time {seconds!r} is not a number of seconds")
    # A float as written (0.12 means 12/100, not the nearest binary fraction below it).
    t = Fraction(repr(seconds)) if isinstance(seconds, float) else Fraction(seconds)
    timed = sorted((int(f["pts"]), int(f["index"])) for f in frames if f.get("pts") is not None)
    if not timed:
        raise InputError("the video's frames carry no timestamps: give a frame number instead")
    steps = sorted(b[0] - a[0] for a, b in itertools.pairwise(timed))
    step = steps[len(steps) // 2] if steps else 0
    start = timed[0][0] * base
    end = (timed[-1][0] + step) * base
    inside = start <= t < end if step else t == start
    if not inside:
        raise InputError(
            f"time {seconds} s is outside the clip, which runs from {float(start):.3f} s to "
            f"{float(end):.3f} s"
        )
    chosen = timed[0][1]
    for pts, index in timed:
        if pts * base > t:
            break
        chosen = index
    return chosen
