"""Write video and frame sequences: lossless FFV1 archives, PNG frames, H.264 presentation copies.

* :class:`FFV1Writer`: lossless FFV1 (version 3, slice CRCs, every frame a key frame) in
  Matroska, streamed frame by frame. ``write`` returns the SHA-256 (``media.frame_sha256``) of
  the frame as the decoder will return it, so that ingesting the file gives the same per-frame
  hashes. Written bit-exactly: the same frames give the same file bytes.
* :func:`read_video`: decodes such a file back to the arrays that were written.
* :func:`write_png_frames`: one PNG per frame, written atomically, never over an existing file.
* :class:`H264Writer`: a lossy H.264 presentation copy (BT.709, limited range, signalled);
  never evidence, and the caller must label it so.
* :func:`burn_in` and :func:`timecode`: frame number and time drawn in a corner box.

One module on purpose (about 650 lines): the writers and the reader share the pixel-format
mapping that makes an FFV1 file decode to exactly the arrays written.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import queue
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import av.error
import cv2
import numpy as np
import numpy.typing as npt

from forensic.errors import InputError
from forensic.fsutil import fsync_dir
from forensic.hashing import CHANNEL_ORDERS, merkle_root, sha256_hex
from forensic.hashing import image_hash as canonical_image_hash
from forensic.hashing import pixel_hash as canonical_pixel_hash
from forensic.media import convert_frame, decode_image, frame_sha256

Image = npt.NDArray[Any]

#: FFV1 pixel format per (channels, dtype). The bundled FFV1 encoder has no 8-bit planar RGB
#: (gbrp); it stores 8-bit RGB as bgr0 (the padding byte is 0) and 8-bit RGBA as bgra. Each of
#: these is also what the FFV1 decoder returns.
FFV1_FORMATS: dict[tuple[int, str], str] = {
    (1, "uint8"): "gray",
    (1, "uint16"): "gray16le",
    (3, "uint8"): "bgr0",
    (3, "uint16"): "gbrp16le",
    (4, "uint8"): "bgra",
    (4, "uint16"): "gbrap16le",
}

#: Encoder settings, recorded with the output: FFV1 version 3, CRC per slice, GOP 1 (every
#: frame intra), one thread, bit-exact muxing (no library version strings, no dates).
# Four slices, fixed: the bytes depend on the slice count but not on the number of threads
# that encode the slices (measured: same SHA-256 with 1 and 2 threads), and two threads halve
# the time of a 1080p frame (about 100 ms to 55 ms here).
FFV1_OPTIONS = {"level": "3", "slicecrc": "1", "g": "1", "slices": "4", "flags": "+bitexact"}
#: Threads per FFV1 encoder or decoder (slice threading: never changes the result).
CODEC_THREADS = 2
CONTAINER_OPTIONS = {"fflags": "+bitexact"}


def _layout(image: Image) -> tuple[int, str]:
    if not isinstance(image, np.ndarray):
        raise InputError(f"a frame must be a numpy array, not {type(image).__name__}")
    if image.dtype not in (np.uint8, np.uint16):
        raise InputError(f"frame sample type {image.dtype} is not supported (uint8 or uint16)")
    if image.ndim == 2:
        channels = 1
    elif image.ndim == 3 and image.shape[2] in (3, 4):
        channels = int(image.shape[2])
    else:
        raise InputError(
            f"frame shape {image.shape} is not supported: (H, W) grey, (H, W, 3) RGB or "
            "(H, W, 4) RGBA"
        )
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError(f"frame shape {image.shape} is empty")
    return channels, image.dtype.name


def _to_frame(image: Image, pix_fmt: str) -> av.VideoFrame:
    """The frame exactly as the FFV1 decoder will return it."""
    if pix_fmt == "bgr0":
        height, width = image.shape[:2]
        frame = av.VideoFrame(width, height, "bgr0")
        plane = frame.planes[0]
        rows = np.frombuffer(memoryview(plane), np.uint8, count=height * plane.line_size)
        rows = rows.reshape(height, plane.line_size)
        rows[:, width * 4 :] = 0  # line padding: never encoded, zeroed all the same
        # R, G, B and a zero plane shuffled straight into the frame's buffer as B, G, R, 0:
        # one OpenCV call that releases the GIL (numpy's three strided copies, a zeroed
        # buffer and a copy into the frame took about 4 times as long, holding the GIL).
        px = rows[:, : width * 4].reshape(height, width, 4)
        zero = np.zeros((height, width), np.uint8)
        cv2.mixChannels([np.ascontiguousarray(image), zero], [px], [0, 2, 1, 1, 2, 0, 3, 3])
        return frame
    if pix_fmt == "bgra":
        return av.VideoFrame.from_ndarray(
            np.ascontiguousarray(image[..., [2, 1, 0, 3]]), format="bgra"
        )
    return av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=pix_fmt)


def _from_frame(frame: av.VideoFrame) -> Image:
    """Inverse of _to_frame for the FFV1 formats; other formats as converted for enhancement."""
    name = frame.format.name
    if name == "bgr0":
        plane = frame.planes[0]
        rows = np.frombuffer(memoryview(plane), np.uint8, count=plane.height * plane.line_size)
        px = rows.reshape(plane.height, plane.line_size)[:, : frame.width * 4]
        # A byte shuffle (B, G, R, 0 to R, G, B); OpenCV's releases the GIL, numpy's does not.
        return cv2.cvtColor(px.reshape(frame.height, frame.width, 4), cv2.COLOR_BGRA2RGB)
    if name == "bgra":
        return np.ascontiguousarray(frame.to_ndarray()[..., [2, 1, 0, 3]])
    if name in ("gray", "gray16le", "gbrp16le", "gbrap16le"):
        return np.ascontiguousarray(frame.to_ndarray())
    return convert_frame(frame)


def _temp_beside(path: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    return Path(name)


def _refuse_existing(path: Path) -> None:
    if os.path.lexists(path):
        raise InputError(f"{path} already exists: outputs are never overwritten")
    if not path.parent.exists():
        raise InputError(f"the folder {path.parent} does not exist")
    if not path.parent.is_dir():
        raise InputError(f"{path.parent} is not a folder")


class _HashingFile(io.RawIOBase):
    """An append-only file that hashes what is written to it as it goes: the muxer writes the
    run's video once, and its SHA-256 is known without reading the file back (330 MB for 12
    frames of 1080p: about 0.2 s of the run saved)."""

    #: Bytes after which what was written is flushed to disk in the background, so that the
    #: fsync before the run is journaled has little left to wait for.
    SYNC_EVERY = 64 << 20

    def __init__(self, path: Path) -> None:
        self.fh = path.open("xb")
        self.digest = hashlib.sha256()
        self.size = 0
        self._unsynced = 0
        self._flusher: threading.Thread | None = None

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False  # so the muxer never goes back to rewrite what was hashed

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.fh.write(view)
        self.digest.update(view)
        self.size += len(view)
        self._unsynced += len(view)
        if self._unsynced >= self.SYNC_EVERY and not (self._flusher and self._flusher.is_alive()):
            self.fh.flush()
            self._unsynced = 0
            self._flusher = threading.Thread(
                target=os.fdatasync, args=(self.fh.fileno(),), daemon=True
            )
            self._flusher.start()
        return len(view)

    def tell(self) -> int:
        return self.size

    def sync(self) -> None:
        if self._flusher is not None:
            self._flusher.join()
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def close(self) -> None:
        if self._flusher is not None:
            self._flusher.join()
        if not self.fh.closed:
            self.fh.close()
        super().close()


#: Uniform grey frames encoded in this process, for `FFV1Writer` ``repeat_uniform``:
#: (shape, dtype, pixel format, value) -> (frame hash, FFV1 packet). The encoder settings are
#: this module's constants, so they need no place in the key.
_UNIFORM_PACKETS: dict[tuple[Any, ...], tuple[str, bytes]] = {}


class FFV1Writer:
    """Lossless FFV1 in Matroska, one frame at a time; the file appears only on a clean close.

    Every frame must have the first frame's shape and sample type. ``write`` returns the
    frame's SHA-256 as ingest will compute it from the written file.

    ``submit`` is ``write`` on the writer's own thread: the frame is checked at once (a wrong
    shape raises here) and queued, at most ``QUEUE_FRAMES`` deep, then converted, hashed,
    encoded and muxed in order on the thread, so that a run's encoding overlaps its decoding
    and operations (libavcodec releases the GIL while it encodes). The same frames give the
    same bytes either way: one encoder, one order. ``frame_hash(k)`` waits for the hash of the
    k-th frame; a failure on the thread is raised by the next call, at the latest by
    ``close``.
    """

    #: Frames queued ahead of the encoding thread (bounds the memory they hold).
    QUEUE_FRAMES = 3

    def __init__(
        self, path: Path, *, rate: Fraction | int = 25, repeat_uniform: bool = False
    ) -> None:
        """``repeat_uniform``: a grey frame of one value everywhere (a provenance map of a
        run of value operations) is encoded once per process: the packet the encoder made
        for a frame of that size, type and value is muxed again (every FFV1 frame here is a
        keyframe coded on its own with fixed settings, so the file's bytes are those of
        encoding it again; tested), with the frame hash computed for it. A map video of
        such frames then never starts its encoder, which cost more than the whole map video
        otherwise (its first frame zeroes a 40 MB packet buffer at 1080p)."""
        self.path = Path(path)
        _refuse_existing(self.path)
        self.rate = Fraction(rate)
        if self.rate <= 0:
            raise InputError(f"frame rate {rate} must be positive")
        self._tmp = _temp_beside(self.path)
        self._container: Any = None
        self._stream: Any = None
        self._layout: tuple[tuple[int, ...], str] | None = None
        self._pix_fmt: str | None = None
        self._frames = 0
        self._accepted = 0
        self._closed = False
        self._sink: _HashingFile | None = None
        self.sha256: str | None = None  # of the file's bytes, once closed
        self.size: int | None = None
        #: Each encoded frame's hash, in order (`submit`), as 32 raw bytes each: a list of hex
        #: strings cost about 120 bytes a frame of a long clip, this 32.
        self._digests = bytearray()
        #: How many frames are encoded (and hashed) so far.
        self.encoded = 0
        self._queue: queue.Queue[Image | None] | None = None
        self._thread: threading.Thread | None = None
        self._encoded = threading.Condition()
        self._failure: BaseException | None = None
        self._repeat_uniform = repeat_uniform

    @property
    def pix_fmt(self) -> str | None:
        """The FFV1 pixel format (known after the first frame)."""
        return self._pix_fmt

    @property
    def frames(self) -> int:
        return self._frames

    def __enter__(self) -> FFV1Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _open(self, image: Image) -> None:
        channels, dtype = _layout(image)
        self._pix_fmt = FFV1_FORMATS[(channels, dtype)]
        self._layout = (tuple(image.shape), dtype)
        # Written as a stream (no seeking back to fill in the duration and index), so the file
        # is hashed as it is written; `remux_indexed` makes an indexed copy for export.
        self._tmp.unlink(missing_ok=True)
        self._sink = _HashingFile(self._tmp)
        self._container = av.open(
            self._sink, "w", format="matroska", options={**CONTAINER_OPTIONS, "live": "1"}
        )
        stream = self._container.add_stream("ffv1", rate=self.rate)
        stream.width, stream.height = int(image.shape[1]), int(image.shape[0])
        stream.pix_fmt = self._pix_fmt
        stream.codec_context.thread_count = CODEC_THREADS
        stream.codec_context.thread_type = "SLICE"
        stream.codec_context.gop_size = 1
        stream.options = dict(FFV1_OPTIONS)
        self._stream = stream

    def _accept(self, image: Image) -> None:
        """Refuse a frame that does not fit the video (before anything is queued)."""
        if self._closed:
            raise InputError(f"{self.path}: the writer is closed")
        if self._layout is None:
            self._open(image)
        else:
            _layout(image)
            if (tuple(image.shape), image.dtype.name) != self._layout:
                shape, dtype = self._layout
                raise InputError(
                    f"{self.path}: frame {self._accepted} is {image.shape} {image.dtype}, but "
                    f"the video's frames are {shape} {dtype}: every frame must match the first"
                )
        self._accepted += 1

    def write(self, image: Image) -> str:
        self._accept(image)
        return self._encode(image)

    def _uniform_value(self, image: Image) -> int | None:
        if not self._repeat_uniform or image.ndim != 2 or image.size == 0:
            return None
        low, high = cv2.minMaxLoc(image)[:2]  # one pass, without the GIL
        return int(low) if low == high else None

    def _encode(self, image: Image) -> str:
        assert self._pix_fmt is not None
        value = self._uniform_value(image)
        key = None if value is None else (image.shape, image.dtype.name, self._pix_fmt, value)
        cached = None if key is None else _UNIFORM_PACKETS.get(key)
        if cached is not None:
            digest, payload = cached
            packet = av.Packet(payload)
            packet.stream = self._stream
            packet.time_base = 1 / self.rate
            packet.pts = packet.dts = self._frames
            packet.is_keyframe = True
            self._container.mux(packet)
            self._frames += 1
            return digest
        frame = _to_frame(image, self._pix_fmt)
        # The mapping to the encoder's pixel format must be exactly invertible, or the file
        # would not hold these pixels (FFV1 itself is lossless and CRC-checked per slice). The
        # mapping is the same code for every frame of a file: checked on the first (about 5 ms
        # a 1080p frame); `verify --pixels` decodes every stored frame against its hash.
        if self._frames == 0 and not np.array_equal(_from_frame(frame), image):
            raise RuntimeError(
                f"internal error: {self._pix_fmt} does not hold this frame's pixels exactly"
            )
        digest = frame_sha256(frame)
        frame.pts = self._frames
        frame.time_base = 1 / self.rate
        packets = self._stream.encode(frame)
        if key is not None and len(packets) == 1:
            if len(_UNIFORM_PACKETS) >= 16:
                _UNIFORM_PACKETS.clear()
            _UNIFORM_PACKETS[key] = (digest, bytes(packets[0]))
        for packet in packets:
            self._container.mux(packet)
        self._frames += 1
        return digest

    def submit(self, image: Image) -> int:
        """Check ``image`` and queue it for the writer's thread; returns its position."""
        self._raise_failure()
        self._accept(image)
        if self._thread is None:
            self._queue = queue.Queue(maxsize=self.QUEUE_FRAMES)
            self._thread = threading.Thread(target=self._drain, name="forensic-ffv1", daemon=True)
            self._thread.start()
        assert self._queue is not None
        self._queue.put(image)
        return self._accepted - 1

    def _drain(self) -> None:
        assert self._queue is not None
        while (image := self._queue.get()) is not None:
            if self._failure is not None:
                continue  # keep taking frames so that `submit` never blocks on a dead thread
            try:
                digest = self._encode(image)
            except BaseException as exc:  # handed to the caller by the next call
                self._failure = exc
                digest = ""
            with self._encoded:
                if self._failure is None:
                    self._digests += bytes.fromhex(digest)
                    self.encoded += 1
                self._encoded.notify_all()

    def frame_hash(self, position: int) -> str:
        """The hash of the frame ``submit`` put at ``position``, once it is encoded."""
        with self._encoded:
            self._encoded.wait_for(lambda: self.encoded > position or self._failure is not None)
        self._raise_failure()
        return bytes(self._digests[32 * position : 32 * position + 32]).hex()

    def frame_hashes_root(self) -> str:
        """The RFC 9162 Merkle root of the encoded frames' hashes, in order."""
        with self._encoded:
            digests = bytes(self._digests)
        return merkle_root(digests[k : k + 32] for k in range(0, len(digests), 32))

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _join(self) -> None:
        if self._thread is not None:
            assert self._queue is not None
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        if self._closed:
            return
        self._join()
        self._closed = True
        try:
            self._raise_failure()
            if self._container is None:
                raise InputError(f"{self.path}: no frame was written")
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            self._container = None
            assert self._sink is not None
            self._sink.sync()
            self.sha256, self.size = self._sink.digest.hexdigest(), self._sink.size
            self._sink.close()
            os.link(self._tmp, self.path)  # fails rather than replace a file made meanwhile
            fsync_dir(self.path.parent)
        except FileExistsError:
            raise InputError(f"{self.path} already exists: outputs are never overwritten") from None
        finally:
            self.abort()

    def abort(self) -> None:
        """Discard what was written (the target is left as it was)."""
        if self._thread is not None:
            if self._failure is None:
                self._failure = InputError(f"{self.path}: the writer was aborted")
            self._join()
        self._closed = True
        if self._container is not None:
            with contextlib.suppress(av.error.FFmpegError):
                self._container.close()
            self._container = None
        if self._sink is not None:
            self._sink.close()
        self._tmp.unlink(missing_ok=True)


def remux_indexed(source: Path, target: Path, *, container: str = "matroska") -> None:
    """Copy a video's packets, unchanged, into a new Matroska file with a duration and a seek
    index (for players), or into an MP4 (``container="mp4"``: FFV1 in ISO BMFF, which C2PA
    can sign); the decoded frames, and so their hashes, are the source's."""
    _refuse_existing(target)
    tmp = _temp_beside(target)
    tmp.unlink()
    try:
        with (
            av.open(str(source)) as src,
            av.open(str(tmp), "w", format=container, options=CONTAINER_OPTIONS) as dst,
        ):
            in_stream = src.streams.video[0]
            out_stream = dst.add_stream_from_template(in_stream)
            for packet in src.demux(in_stream):
                if packet.dts is None:
                    continue  # the demuxer's end-of-stream marker
                packet.stream = out_stream
                dst.mux(packet)
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.link(tmp, target)
        fsync_dir(target.parent)
    except av.error.FFmpegError as exc:
        raise InputError(f"{source}: cannot be copied into {target.name} ({exc})") from None
    finally:
        tmp.unlink(missing_ok=True)


def read_video(path: Path) -> Iterator[Image]:
    """The frames of a video as arrays: FFV1Writer's formats back to exactly what was written
    ((H, W) grey, (H, W, 3) RGB, (H, W, 4) RGBA), anything else converted as for enhancement."""
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: the video cannot be opened ({exc})") from None
    with container:
        if not container.streams.video:
            raise InputError(f"{path}: the file has no video stream")
        stream = container.streams.video[0]
        if stream.codec_context.name == "ffv1":
            stream.codec_context.thread_count = CODEC_THREADS
            stream.codec_context.thread_type = "SLICE"
        for frame in container.decode(stream):
            yield _from_frame(frame)


@dataclass(frozen=True)
class VideoHashes:
    """What decoding a video gives, frame by frame in decoder output order."""

    #: `forensic.media.frame_sha256` of each decoded frame (what ingest records).
    frames: list[str]
    #: The canonical pixel hash of each frame as `read_video` returns it (when asked for).
    pixels: list[str] | None
    #: Packets the decoder refused (they yield no frame; counted as ingest counts them).
    decode_errors: int


#: Hashing threads beside the decoder in `hash_video` (SHA-256 releases the GIL).
HASH_THREADS = max(1, min(4, os.cpu_count() or 1))


def hash_video(
    path: Path,
    *,
    where: str,
    pixels: bool = False,
    check: Callable[[VideoHashes], bool] | None = None,
) -> VideoHashes:
    """Decode the first video stream once and hash every frame, as ingest numbers them.

    The decoder runs with FFmpeg's frame and slice threads (as ``ffmpeg -f framehash`` does)
    while a few threads hash the frames already decoded. A conforming decoder gives the same
    frames on any thread count, but error concealment on a damaged stream may not: when
    ``check`` (typically "these are the recorded hashes") refuses the result, the video is
    decoded again exactly as ingest decodes it (slice threads only) and that result is
    returned. ``pixels`` adds the canonical pixel hash of each frame as `read_video` gives it.
    """
    found = _hash_video(path, where=where, pixels=pixels, frame_threads=True)
    if check is None or check(found):
        return found
    return _hash_video(path, where=where, pixels=pixels, frame_threads=False)


def _hash_video(path: Path, *, where: str, pixels: bool, frame_threads: bool) -> VideoHashes:
    def digest(frame: av.VideoFrame) -> tuple[str, str | None]:
        pixel = canonical_image_hash(_from_frame(frame)) if pixels else None
        return frame_sha256(frame), pixel

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise InputError(f"{where}: the video cannot be opened ({exc})") from None
    frames: list[str] = []
    pixel_hashes: list[str] = []
    errors = 0
    pending: deque[Future[tuple[str, str | None]]] = deque()

    def collect(future: Future[tuple[str, str | None]]) -> None:
        frame_hash, pixel_hash = future.result()
        frames.append(frame_hash)
        if pixel_hash is not None:
            pixel_hashes.append(pixel_hash)

    with (
        container,
        ThreadPoolExecutor(HASH_THREADS, thread_name_prefix="forensic-hash") as pool,
    ):
        if not container.streams.video:
            raise InputError(f"{where}: the file has no video stream")
        stream = container.streams.video[0]
        if frame_threads:
            stream.codec_context.thread_type = "AUTO"
            stream.codec_context.thread_count = 0
        try:
            for packet in container.demux(stream):
                try:
                    decoded = packet.decode()
                except av.error.InvalidDataError:
                    errors += 1  # as ingest: the packet yields no frame
                    continue
                for frame in decoded:
                    pending.append(pool.submit(digest, frame))
                    while len(pending) > 2 * HASH_THREADS:  # bounds the frames held
                        collect(pending.popleft())
            while pending:
                collect(pending.popleft())
        except av.error.FFmpegError as exc:
            raise InputError(f"{where}: the video cannot be read ({exc})") from None
        finally:
            for future in pending:
                future.cancel()
    return VideoHashes(frames, pixel_hashes if pixels else None, errors)


def write_png_frames(
    frames: Iterable[Image], folder: Path, *, start_index: int
) -> list[dict[str, Any]]:
    """Write ``frame_<index>.png`` (index from ``start_index``, six digits) for each frame.

    Each file is encoded, decoded back and compared, written to a temporary file, synced and
    linked into place, which fails rather than overwrite an existing file. Returns per file
    ``{index, file, sha256, size, pixel_sha256, channel_order}`` (``pixel_sha256``: the
    canonical pixel hash, docs/spec.md 2.2).
    """
    if start_index < 0:
        raise InputError(f"start index {start_index} must not be negative")
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder")
    out: list[dict[str, Any]] = []
    for offset, image in enumerate(frames):
        index = start_index + offset
        channels, _ = _layout(image)
        target = folder / f"frame_{index:06d}.png"
        if os.path.lexists(target):
            raise InputError(f"{target} already exists: outputs are never overwritten")
        data = _encode_png(image)
        tmp = _temp_beside(target)
        try:
            with tmp.open("wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.link(tmp, target)
        except FileExistsError:
            raise InputError(f"{target} already exists: outputs are never overwritten") from None
        finally:
            tmp.unlink(missing_ok=True)
        order = CHANNEL_ORDERS[channels]
        out.append(
            {
                "index": index,
                "file": target.name,
                "sha256": sha256_hex(data),
                "size": len(data),
                "pixel_sha256": canonical_pixel_hash(image, channel_order=order),
                "channel_order": order,
            }
        )
    if out:
        fsync_dir(folder)
    return out


def _encode_png(image: Image) -> bytes:
    bgr = image
    if image.ndim == 3:
        code = cv2.COLOR_RGB2BGR if image.shape[2] == 3 else cv2.COLOR_RGBA2BGRA
        bgr = cv2.cvtColor(image, code)
    ok, buffer = cv2.imencode(".png", np.ascontiguousarray(bgr), [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise RuntimeError("internal error: cannot encode PNG")
    data = buffer.tobytes()
    back, _ = decode_image(data, where="encoded PNG")
    if back.dtype != image.dtype or back.shape != image.shape or not np.array_equal(back, image):
        raise RuntimeError("internal error: the PNG did not round-trip")
    return data


# -- presentation copies -----------------------------------------------------------------------

#: x264 settings that give the same bytes every time (see fixtures/generate.py): constant QP,
#: one thread, no lookahead or macroblock tree.
X264_PARAMS = (
    "threads=1:lookahead-threads=1:sliced-threads=0:non-deterministic=0:mbtree=0:rc-lookahead=0:"
    "colorprim=bt709:transfer=bt709:colormatrix=bt709:range=tv"
)

# ITU-R BT.709 luma coefficients; limited range: Y 16-235, Cb/Cr 16-240.
_KR, _KB = 0.2126, 0.0722


def rgb_to_yuv420_bt709(image: Image) -> tuple[Image, Image, Image]:
    """8-bit limited-range BT.709 Y, Cb, Cr planes (chroma averaged over 2x2) of an RGB or grey
    image with even sides; 16-bit input is scaled to 8 bits first. Deterministic (numpy only)."""
    rgb = image.astype(np.float64)
    if image.dtype == np.uint16:
        rgb = rgb / 257.0
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = _KR * r + (1 - _KR - _KB) * g + _KB * b
    cb = (b - y) / (2 * (1 - _KB))
    cr = (r - y) / (2 * (1 - _KR))
    h, w = y.shape

    def pool(c: Image) -> Image:
        return np.asarray(c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)))

    def quant(v: Image, lo: float, span: float) -> Image:
        return np.clip(np.rint(lo + v * span), 0, 255).astype(np.uint8)

    return (
        quant(y / 255.0, 16, 219),
        quant(pool(cb) / 255.0, 128, 224),
        quant(pool(cr) / 255.0, 128, 224),
    )


class H264Writer:
    """A lossy H.264 presentation copy (yuv420p, BT.709 limited range, signalled in the
    stream), deterministic x264 settings. Not evidence: the caller labels it lossy.

    Odd frame sides are padded by repeating the last row or column (4:2:0 needs even sides).
    """

    lossy = True

    def __init__(self, path: Path, *, rate: Fraction | int = 25, qp: int = 18) -> None:
        self.path = Path(path)
        _refuse_existing(self.path)
        if not 0 <= qp <= 51:
            raise InputError(f"qp {qp} is outside 0-51")
        self.rate = Fraction(rate)
        self.qp = qp
        self._tmp = _temp_beside(self.path)
        self._container: Any = None
        self._stream: Any = None
        self._layout: tuple[tuple[int, ...], str] | None = None
        self._frames = 0
        self._closed = False

    @property
    def frames(self) -> int:
        return self._frames

    def __enter__(self) -> H264Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _open(self, image: Image) -> None:
        self._layout = (tuple(image.shape), image.dtype.name)
        height, width = image.shape[:2]
        self._container = av.open(str(self._tmp), "w", format="mp4", options=CONTAINER_OPTIONS)
        stream = self._container.add_stream("libx264", rate=self.rate)
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = "yuv420p"
        ctx = stream.codec_context
        ctx.thread_count = 1
        ctx.color_range = 1  # limited ("tv")
        ctx.colorspace = ctx.color_primaries = ctx.color_trc = 1  # BT.709
        stream.options = {
            "qp": str(self.qp),
            "preset": "medium",
            "x264-params": X264_PARAMS,
            "flags": "+bitexact",
        }
        self._stream = stream

    def write(self, image: Image) -> None:
        if self._closed:
            raise InputError(f"{self.path}: the writer is closed")
        channels, _ = _layout(image)
        if self._layout is None:
            self._open(image)
        elif (tuple(image.shape), image.dtype.name) != self._layout:
            raise InputError(
                f"{self.path}: frame {self._frames} is {image.shape} {image.dtype}, but the "
                f"video's frames are {self._layout[0]} {self._layout[1]}"
            )
        rgb = image[..., :3] if channels == 4 else image
        pad = ((0, image.shape[0] % 2), (0, image.shape[1] % 2)) + ((0, 0),) * (rgb.ndim - 2)
        rgb = np.pad(rgb, pad, mode="edge")
        y, u, v = rgb_to_yuv420_bt709(rgb)
        width = y.shape[1]
        stacked = np.concatenate([y, u.reshape(-1, width), v.reshape(-1, width)])
        frame = av.VideoFrame.from_ndarray(stacked, format="yuv420p")
        frame.color_range = 1
        frame.colorspace = 1
        frame.pts = self._frames
        frame.time_base = 1 / self.rate
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self._frames += 1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._container is None:
                raise InputError(f"{self.path}: no frame was written")
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            self._container = None
            os.link(self._tmp, self.path)
            fsync_dir(self.path.parent)
        except FileExistsError:
            raise InputError(f"{self.path} already exists: outputs are never overwritten") from None
        finally:
            self.abort()

    def abort(self) -> None:
        self._closed = True
        if self._container is not None:
            with contextlib.suppress(av.error.FFmpegError):
                self._container.close()
            self._container = None
        self._tmp.unlink(missing_ok=True)


# -- burn-in -----------------------------------------------------------------------------------


def timecode(pts: int, time_base: str | Fraction) -> str:
    """``HH:MM:SS.mmm`` of ``pts`` x ``time_base`` (milliseconds truncated, as a frame's start)."""
    if isinstance(time_base, str):
        num, _, den = time_base.partition("/")
        try:
            base = Fraction(int(num), int(den or 1))
        except (ValueError, ZeroDivisionError):
            raise InputError(f"time base {time_base!r} is not a fraction like 1/25") from None
    else:
        base = Fraction(time_base)
    seconds = Fraction(int(pts)) * base
    if seconds < 0:
        raise InputError(f"time {float(seconds)} s is negative: no timecode")
    ms = int(seconds * 1000)
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _burn_text(frame_index: int, code: str) -> str:
    return f"frame {frame_index}  {code}"


def burn_in_box(
    shape: tuple[int, ...], *, frame_index: int, timecode: str
) -> tuple[int, int, int, int]:
    """``(x, y, width, height)`` of the box :func:`burn_in` draws (top-left corner), clipped to
    the image."""
    height, width = int(shape[0]), int(shape[1])
    scale, thickness, margin = _text_metrics(height)
    (tw, th), base = cv2.getTextSize(_burn_text(frame_index, timecode), _FONT, scale, thickness)
    return 0, 0, min(width, tw + 2 * margin), min(height, th + base + 2 * margin)


def _text_metrics(height: int) -> tuple[float, int, int]:
    # Hershey simplex caps are about 22 px high at scale 1: about 9 px at 240 lines, 32 at 1080.
    scale = max(0.4, height / 1080 * 1.4)
    thickness = max(1, round(scale * 1.6))
    margin = max(3, round(6 * scale))
    return scale, thickness, margin


def burn_in(image: Image, *, frame_index: int, timecode: str) -> Image:
    """A copy of ``image`` with ``frame <n>  <timecode>`` in white on a black box, top left.
    The input is not changed; pixels outside :func:`burn_in_box` are not changed."""
    _layout(image)
    out = image.copy()
    x, y, w, h = burn_in_box(image.shape, frame_index=frame_index, timecode=timecode)
    scale, thickness, margin = _text_metrics(image.shape[0])
    # Drawn as an 8-bit grey mask (OpenCV draws text on 8-bit images only), then scaled.
    text = _burn_text(frame_index, timecode)
    (_, th), _ = cv2.getTextSize(text, _FONT, scale, thickness)
    mask = np.zeros((h, w), np.uint8)
    cv2.putText(mask, text, (margin, margin + th), _FONT, scale, 255, thickness, cv2.LINE_AA)
    top = int(np.iinfo(image.dtype).max)
    grey = (mask.astype(np.uint32) * top // 255).astype(image.dtype)
    if image.ndim == 2:
        box = grey
    else:
        box = np.repeat(grey[:, :, None], image.shape[2], axis=2)
        if image.shape[2] == 4:
            box[..., 3] = top
    out[y : y + h, x : x + w] = box
    return out
