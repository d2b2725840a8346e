"""Hostile inputs: a generator of malformed, extreme and non-regular files, fed to the CLI.

`generate` writes the inputs into a folder: truncated and bit-flipped PNG, JPEG, TIFF, BMP,
MP4, AVI, Matroska and raw H.264; zero-length files; wrong extensions; decompression bombs
(headers declaring 100000x100000 PNG and TIFF, a 65500x65500 JPEG, a 60000x60000 BMP, and a
real 12000x12000 deflate bomb of 150 kB); FIFOs, character devices, a socket, symbolic links
to ``/dev/zero``, to a FIFO and to nothing; 1x1, 16-bit, CMYK, alpha, palette, float and
multi-page images; a file with no video stream and one with several; and recipe- and
policy-shaped inputs (deep nesting, oversize, binary, a FIFO, ``/dev/zero``, a policy whose
``evidence`` profile allows the generative lane, limits out of range).

`run` gives each to a CLI worker (`stress.worker`) in a subprocess: evidence to ``forensic
ingest``, recipes to ``forensic enhance --recipe``, policies to ``forensic policy check`` and
``forensic case init --policy``; a job that takes longer than the timeout is a hang (the
worker is killed and restarted). Counts:

* ``inputs``, ``jobs``: files generated, commands run;
* ``exit_70``, ``hangs``, ``tracebacks``: failures (must be 0);
* ``refused``: a clean message and a non-zero exit; ``refusals_not_naming_file``: a refusal
  whose message does not name the file (must be 0);
* ``accepted``, ``accepted_with_warning``: ingested (with a warning recorded in the entry);
* ``unexpected``: outcome differs from the generator's expectation (listed in the JSON);
* ``originals_changed``: a regular input whose bytes, mode or mtime changed (must be 0);
* ``case_unusable``: 1 when ``forensic verify`` (``--pixels`` in full mode) fails on the case
  the inputs were ingested into (must be 0).

Quick mode (``make test`` runs it through tests/test_stress.py) uses the subset marked
``quick``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PASSPHRASE = "stress-harness-not-secret"  # a throwaway key
#: Seconds a job may take before it counts as a hang (the machine may be loaded).
JOB_TIMEOUT = 90.0
#: Seconds the worker may take to import forensic and start.
START_TIMEOUT = 300.0


@dataclass
class Hostile:
    name: str
    role: str  # "evidence", "recipe" or "policy"
    path: Path
    #: "accept", "warn" (accepted with a warning), "refuse", or None (either is fine).
    expect: str | None
    quick: bool = False


@dataclass
class Outcome:
    name: str
    argv: list[str]
    category: str  # accepted, accepted_with_warning, refused, exit_70, hang, other_exit
    code: int | None
    message: str
    traceback: bool = False
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


# -- generator ----------------------------------------------------------------------------------


def _base_image(height: int = 48, width: int = 64) -> np.ndarray:
    rng = np.random.default_rng(15)
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.stack([xx * 4, yy * 5, (xx + yy) * 2], axis=-1).astype(np.float64)
    img += rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _encode(img: np.ndarray, ext: str) -> bytes:
    import cv2

    bgr = img[..., ::-1] if img.ndim == 3 and img.shape[2] == 3 else img
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(bgr))
    if not ok:
        raise RuntimeError(f"cannot encode {ext}")
    return bytes(buf.tobytes())


def _pil(img: np.ndarray, fmt: str, mode: str | None = None, **kw: Any) -> bytes:
    from PIL import Image

    im = Image.fromarray(img)
    if mode is not None:
        im = im.convert(mode)
    out = io.BytesIO()
    im.save(out, fmt, **kw)
    return out.getvalue()


def _flip(data: bytes, seed: int, count: int = 8, skip: int = 32) -> bytes:
    rng = np.random.default_rng(seed)
    out = bytearray(data)
    for _ in range(count):
        i = int(rng.integers(min(skip, len(out) - 1), len(out)))
        out[i] ^= 1 << int(rng.integers(8))
    return bytes(out)


def _random_bytes(seed: int, size: int) -> bytes:
    return np.random.default_rng(seed).bytes(size)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def png_declaring(width: int, height: int, rows: int = 16) -> bytes:
    """A small PNG whose header declares ``width`` x ``height`` (grey, 8 bits) with the
    first ``rows`` rows of zeros compressed (a deflate bomb when ``rows == height``)."""
    comp = zlib.compressobj(9)
    body = b""
    row = b"\x00" * (width + 1)
    for _ in range(rows):
        body += comp.compress(row)
    body += comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", body)
        + _png_chunk(b"IEND", b"")
    )


def jpeg_declaring(width: int, height: int) -> bytes:
    data = bytearray(_encode(_base_image(16, 16), ".jpg"))
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def bmp_declaring(width: int, height: int) -> bytes:
    data = bytearray(_encode(_base_image(16, 16), ".bmp"))
    struct.pack_into("<ii", data, 18, width, height)
    return bytes(data)


def tiff_declaring(width: int, height: int) -> bytes:
    """A minimal little-endian TIFF (one strip, grey 8-bit) whose tags declare the size."""
    pixels = b"\x00" * 256
    entries = [
        (256, 4, 1, width),  # ImageWidth, LONG
        (257, 4, 1, height),  # ImageLength
        (258, 3, 1, 8),  # BitsPerSample
        (259, 3, 1, 1),  # Compression: none
        (262, 3, 1, 1),  # Photometric: black is zero
        (273, 4, 1, 8),  # StripOffsets: right after the header
        (277, 3, 1, 1),  # SamplesPerPixel
        (278, 4, 1, height),  # RowsPerStrip
        (279, 4, 1, len(pixels)),  # StripByteCounts
    ]
    ifd_offset = 8 + len(pixels)
    ifd = struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        packed = struct.pack("<HI", value, 0)[:4] if typ == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, typ, count) + packed
    ifd += struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", ifd_offset) + pixels + ifd


def _video(
    path: Path, fmt: str, codec: str, *, frames: int = 12, video_streams: int = 1, audio: bool
) -> None:
    import av

    img = _base_image()
    with av.open(str(path), "w", format=fmt) as out:
        streams: list[Any] = []
        for _ in range(video_streams):
            stream: Any = out.add_stream(codec, rate=25)
            stream.width, stream.height = img.shape[1], img.shape[0]
            stream.pix_fmt = "yuv420p"
            streams.append(stream)
        sound: Any = (
            out.add_stream("pcm_s16le" if fmt != "mp4" else "aac", rate=8000) if audio else None
        )
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.roll(img, i, axis=1), format="rgb24")
            for stream in streams:
                for packet in stream.encode(frame):
                    out.mux(packet)
        for stream in streams:
            for packet in stream.encode():
                out.mux(packet)
        if sound is not None:
            samples = np.zeros((1, 4000), np.int16) if fmt != "mp4" else np.zeros((1, 4000), "f4")
            layout_fmt = "s16" if fmt != "mp4" else "fltp"
            aframe = av.AudioFrame.from_ndarray(samples, format=layout_fmt, layout="mono")
            aframe.sample_rate = 8000
            for packet in sound.encode(aframe):
                out.mux(packet)
            for packet in sound.encode():
                out.mux(packet)


def _audio_only(path: Path) -> None:
    import av

    with av.open(str(path), "w", format="wav") as out:
        sound: Any = out.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 800), np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = 8000
        for packet in sound.encode(frame):
            out.mux(packet)
        for packet in sound.encode():
            out.mux(packet)


VALID_RECIPE = (
    '[recipe]\nname = "ok"\n\n[[steps]]\nop = "crop"\nx = 0\ny = 0\nwidth = 8\nheight = 8\n'
)


def _policy_text() -> str:
    from forensic.policy import default_policy_path

    return default_policy_path().read_text("utf-8")


def generate(folder: Path, *, videos: bool = True) -> list[Hostile]:
    """Write every hostile input into ``folder``; returns them (regular files, FIFOs, links
    and a socket; the devices are the system's own). ``videos=False`` skips the encoded
    videos (the slowest to make; quick mode has none)."""
    out: list[Hostile] = []

    def put(
        name: str, data: bytes, expect: str | None, role: str = "evidence", quick: bool = False
    ) -> None:
        path = folder / name
        path.write_bytes(data)
        out.append(Hostile(name, role, path, expect, quick))

    img = _base_image()
    stills = {
        "png": _encode(img, ".png"),
        "jpg": _encode(img, ".jpg"),
        "tif": _encode(img, ".tif"),
        "bmp": _encode(img, ".bmp"),
    }
    for ext, data in stills.items():
        put(f"clean.{ext}", data, "accept", quick=ext == "png")
        put(f"truncated-half.{ext}", data[: len(data) // 2], None, quick=ext in ("png", "jpg"))
        put(f"truncated-header.{ext}", data[:20], "refuse")
        for seed in range(4):
            put(f"bitflip-{seed}.{ext}", _flip(data, seed), None, quick=(ext, seed) == ("jpg", 0))
    # Damaged entropy-coded data that libjpeg conceals: must be accepted with a warning.
    jpeg = bytearray(stills["jpg"])
    sos = jpeg.find(b"\xff\xda")
    for k in range(6):
        jpeg[sos + 40 + 97 * k] ^= 0x5A
    put("corrupt-scan.jpg", bytes(jpeg), "warn", quick=True)
    tiff = _pil(img, "TIFF", compression="tiff_lzw")
    put("corrupt-lzw.tif", _flip(tiff, 3, count=4, skip=16), None)

    put("empty.png", b"", "refuse", quick=True)
    put("empty.mp4", b"", "refuse")
    put("png-named.jpg", stills["png"], "accept")
    put("text-named.mp4", b"this is not a video\n" * 10, "refuse")
    put("random.bin", _random_bytes(7, 4096), "refuse")

    put("bomb-png-100000x100000.png", png_declaring(100_000, 100_000), "refuse", quick=True)
    put("bomb-jpeg-65500x65500.jpg", jpeg_declaring(65_500, 65_500), "refuse", quick=True)
    put("bomb-bmp-60000x60000.bmp", bmp_declaring(60_000, 60_000), "refuse", quick=True)
    put("bomb-tiff-100000x100000.tif", tiff_declaring(100_000, 100_000), "refuse")
    put("bomb-deflate-12000x12000.png", png_declaring(12_000, 12_000, rows=12_000), "refuse")

    put("one-pixel.png", _encode(np.zeros((1, 1), np.uint8), ".png"), "accept")
    put("sixteen-bit.png", _encode(img.astype(np.uint16) * 257, ".png"), "accept")
    put("sixteen-bit.tif", _encode(img.astype(np.uint16) * 257, ".tif"), "accept")
    put("cmyk.jpg", _pil(img, "JPEG", "CMYK"), None)
    put("cmyk.tif", _pil(img, "TIFF", "CMYK"), None)
    put("rgba.png", _pil(img, "PNG", "RGBA"), "accept")
    put("grey-alpha.png", _pil(img, "PNG", "LA"), "accept")
    put("palette.png", _pil(img, "PNG", "P"), "accept")
    put("float.tif", _encode(img[..., 0].astype(np.float32) / 255, ".tif"), None)
    from PIL import Image

    pages = io.BytesIO()
    frames = [Image.fromarray(img), Image.fromarray(img[::-1].copy())]
    frames[0].save(pages, "TIFF", save_all=True, append_images=frames[1:])
    put("two-pages.tif", pages.getvalue(), "refuse")

    codecs = {
        "mp4": ("mp4", "libx264"),
        "avi": ("avi", "mpeg4"),
        "mkv": ("matroska", "ffv1"),
        "h264": ("h264", "libx264"),
    }
    for ext, (fmt, codec) in codecs.items() if videos else ():
        path = folder / f"clean.{ext}"
        _video(path, fmt, codec, audio=False)
        data = path.read_bytes()
        # MPEG-4 Part 2 is not bit-exact by its standard: ingest warns.
        out.append(Hostile(path.name, "evidence", path, "warn" if ext == "avi" else "accept"))
        put(f"truncated-half.{ext}", data[: len(data) // 2], None)
        put(f"truncated-1k.{ext}", data[:1024], None)
        for seed in range(3):
            put(f"bitflip-{seed}.{ext}", _flip(data, seed, count=16), None)
    if videos:
        _audio_only(folder / "no-video.wav")
        out.append(Hostile("no-video.wav", "evidence", folder / "no-video.wav", "refuse"))
        several = folder / "two-video-one-audio.mkv"
        _video(several, "matroska", "ffv1", video_streams=2, audio=True)
        out.append(Hostile(several.name, "evidence", several, "warn"))

    # Not regular files.
    fifo = folder / "fifo.png"
    os.mkfifo(fifo)
    out.append(Hostile(fifo.name, "evidence", fifo, "refuse", quick=True))
    for name, target in (
        ("link-to-dev-zero.png", "/dev/zero"),
        ("link-to-fifo.png", str(fifo)),
        ("dangling-link.png", str(folder / "no-such-file")),
        ("link-to-dev-urandom.mp4", "/dev/urandom"),
    ):
        (folder / name).symlink_to(target)
        out.append(
            Hostile(
                name, "evidence", folder / name, "refuse", quick=name.startswith("link-to-dev-z")
            )
        )
    for device in ("/dev/zero", "/dev/null"):
        out.append(Hostile(device, "evidence", Path(device), "refuse"))
    sock_path = folder / "socket.png"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(sock_path))
    sock.close()
    out.append(Hostile(sock_path.name, "evidence", sock_path, "refuse"))
    (folder / "a-folder.png").mkdir()
    out.append(Hostile("a-folder.png", "evidence", folder / "a-folder.png", "refuse"))

    # Recipes.
    put("recipe-valid.toml", VALID_RECIPE.encode(), "accept", role="recipe")
    put(
        "recipe-deep-arrays.toml",
        ("x = " + "[" * 5000 + "]" * 5000).encode(),
        "refuse",
        "recipe",
        quick=True,
    )
    put(
        "recipe-deep-tables.toml",
        ("x = " + "{a = " * 3000 + "1" + "}" * 3000).encode(),
        "refuse",
        "recipe",
    )
    put(
        "recipe-dotted-deep.toml",
        ("[" + ".".join(["a"] * 2000) + "]\n").encode(),
        "refuse",
        "recipe",
    )
    put("recipe-huge.toml", VALID_RECIPE.encode() + b"#" * (3 << 20) + b"\n", "refuse", "recipe")
    put("recipe-binary.toml", _random_bytes(3, 2048), "refuse", "recipe")
    put("recipe-latin1.toml", '[recipe]\nname = "caf\xe9"\n'.encode("latin-1"), "refuse", "recipe")
    put("recipe-empty.toml", b"", "refuse", "recipe")
    put("recipe-steps-number.toml", b"steps = 3\n", "refuse", "recipe")
    put(
        "recipe-huge-int.toml",
        VALID_RECIPE.replace("x = 0", "x = 9223372036854775807").encode(),
        "refuse",
        "recipe",
    )
    put("recipe-nan.toml", VALID_RECIPE.replace("x = 0", "x = nan").encode(), "refuse", "recipe")
    rfifo = folder / "recipe-fifo.toml"
    os.mkfifo(rfifo)
    out.append(Hostile(rfifo.name, "recipe", rfifo, "refuse", quick=True))
    (folder / "recipe-dev-zero.toml").symlink_to("/dev/zero")
    out.append(
        Hostile(
            "recipe-dev-zero.toml", "recipe", folder / "recipe-dev-zero.toml", "refuse", quick=True
        )
    )

    # Policies.
    policy = _policy_text()
    put("policy-valid.toml", policy.encode(), "accept", "policy")
    put(
        "policy-deep.toml",
        (policy + "\n[x]\ny = " + "[" * 5000 + "]" * 5000 + "\n").encode(),
        "refuse",
        "policy",
        quick=True,
    )
    put("policy-huge.toml", policy.encode() + b"#" * (3 << 20) + b"\n", "refuse", "policy")
    put("policy-binary.toml", _random_bytes(4, 4096), "refuse", "policy")
    generative = policy.replace('lanes = ["classical"]', 'lanes = ["classical", "generative"]', 1)
    put("policy-evidence-generative.toml", generative.encode(), "refuse", "policy", quick=True)
    put(
        "policy-limits-zero.toml",
        policy.replace("max_pixels = 120000000", "max_pixels = 0").encode(),
        "refuse",
        "policy",
    )
    put(
        "policy-limits-text.toml",
        policy.replace("max_frames = 1000000", 'max_frames = "many"').encode(),
        "refuse",
        "policy",
    )
    put(
        "policy-no-profiles.toml",
        policy.split("[profiles.evidence]")[0].encode(),
        "refuse",
        "policy",
    )
    pfifo = folder / "policy-fifo.toml"
    os.mkfifo(pfifo)
    out.append(Hostile(pfifo.name, "policy", pfifo, "refuse"))
    (folder / "policy-dev-zero.toml").symlink_to("/dev/zero")
    out.append(
        Hostile(
            "policy-dev-zero.toml", "policy", folder / "policy-dev-zero.toml", "refuse", quick=True
        )
    )
    return out


# -- running ------------------------------------------------------------------------------------


class Worker:
    """One `stress.worker` process; `ask` returns None when a job hangs (then it is killed
    and a fresh worker started for the next job)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def _start(self) -> None:
        self.starts += 1
        err = self.log.open("ab")
        self.proc = subprocess.Popen(
            # By path, not `-m`: the checkout under test (--against) may have its own stress/.
            [sys.executable, str(ROOT / "stress" / "worker.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            env=self.env,
            cwd=self.log.parent,  # not ROOT: `-m` puts the cwd first on sys.path
            start_new_session=True,
        )
        err.close()
        if self._read(START_TIMEOUT) is None:
            raise RuntimeError(f"the stress worker did not start; see {self.log}")

    def _read(self, timeout: float) -> dict[str, Any] | None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                return None
        line = self.proc.stdout.readline()
        if not line:
            return {"code": None, "stderr": "worker died", "traceback": False, "stdout": ""}
        result: dict[str, Any] = json.loads(line)
        return result

    def ask(self, argv: list[str], timeout: float) -> dict[str, Any] | None:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        assert self.proc is not None
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"argv": argv}) + "\n").encode())
        self.proc.stdin.flush()
        result = self._read(timeout)
        if result is None or result.get("code") is None:
            self.stop()
        return result

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()
        self.proc = None


def _fingerprint(path: Path) -> tuple[str, int, int] | None:
    if path.is_symlink() or not path.is_file() or not str(path).startswith(tempfile.gettempdir()):
        return None
    st = path.stat()
    return hashlib.sha256(path.read_bytes()).hexdigest(), st.st_mode, st.st_mtime_ns


def _classify(item: Hostile, argv: list[str], result: dict[str, Any] | None) -> Outcome:
    if result is None:
        return Outcome(item.name, argv, "hang", None, f"no answer in {JOB_TIMEOUT:.0f} s")
    code = result["code"]
    message = str(result.get("stderr", "")).strip()
    document = _json_document(str(result.get("stdout") or ""))
    if isinstance(document, dict) and document.get("ok") is False:
        # Under --json a failure is one JSON document on stdout (docs/cli-json.md).
        error = document.get("error") or {}
        message = f"{message}\nerror: {error.get('message', '')}".strip()
    outcome = Outcome(item.name, argv, "other_exit", code, message[-600:], result["traceback"])
    outcome.seconds = float(result.get("seconds") or 0)
    if code == 70:
        outcome.category = "exit_70"
    elif code == 0:
        outcome.category = "accepted"
        if argv[0] == "ingest":
            listing = document.get("results", []) if isinstance(document, dict) else document
            if isinstance(listing, list):
                outcome.warnings = [
                    w for r in listing if isinstance(r, dict) for w in r.get("warnings", [])
                ]
            if outcome.warnings:
                outcome.category = "accepted_with_warning"
    elif code is not None and any(line.startswith("error: ") for line in message.splitlines()):
        outcome.category = "refused"
    return outcome


def _json_document(text: str) -> Any:
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        return None


def _jobs(item: Hostile, case: Path, scratch: Path, n: int) -> list[list[str]]:
    path = str(item.path)
    if item.role == "evidence":
        return [["ingest", str(case), path, "--json"]]
    if item.role == "recipe":
        return [["enhance", str(case), "E1", "--recipe", path]]
    new_case = scratch / f"policy-case-{n}"
    return [
        ["policy", "check", path],
        ["case", "init", str(new_case), "--case-id", f"H-{n}", "--title", "t", "--policy", path],
    ]


def run(quick: bool, *, log: Callable[[str], None] | None = None) -> dict[str, int]:
    """Generate the inputs, run each, return the counts (details in ``run.details``)."""
    say = log or (lambda text: print(f"stress hostile: {text}", file=sys.stderr, flush=True))
    scratch = Path(tempfile.mkdtemp(prefix="forensic-stress-"))
    worker: Worker | None = None
    try:
        inputs_dir = scratch / "inputs"
        inputs_dir.mkdir()
        items = [h for h in generate(inputs_dir, videos=not quick) if h.quick or not quick]
        before = {h.name: _fingerprint(h.path) for h in items}
        env = {
            **os.environ,
            # STRESS_CODE_ROOT (``python -m stress --against DIR``): another checkout's forensic
            # under the same inputs, e.g. the code before a fix.
            "PYTHONPATH": os.pathsep.join(
                [
                    *(
                        [os.environ["STRESS_CODE_ROOT"]]
                        if os.environ.get("STRESS_CODE_ROOT")
                        else []
                    ),
                    str(ROOT),
                    os.environ.get("PYTHONPATH", ""),
                ]
            ),
            "FORENSIC_KEY_DIR": str(scratch / "key"),
            "FORENSIC_PASSPHRASE": PASSPHRASE,
        }
        worker = Worker(env, scratch / "worker.log")
        case = scratch / "case"
        setup = [
            ["keys", "init", "--name", "Stress Harness"],
            ["case", "init", str(case), "--case-id", "STRESS-1", "--title", "hostile inputs"],
            ["ingest", str(case), str(inputs_dir / "clean.png")],
        ]
        for argv in setup:
            answer = worker.ask(argv, START_TIMEOUT)
            if answer is None or answer["code"] != 0:
                raise RuntimeError(f"stress set-up failed: {argv}: {answer}")
        outcomes: list[Outcome] = []
        unexpected: list[str] = []
        t0 = time.perf_counter()
        for n, item in enumerate(items):
            for argv in _jobs(item, case, scratch, n):
                outcome = _classify(item, argv, worker.ask(argv, JOB_TIMEOUT))
                outcomes.append(outcome)
                got = {
                    "accepted": "accept",
                    "accepted_with_warning": "warn",
                    "refused": "refuse",
                }.get(outcome.category, outcome.category)
                if item.expect is not None and got != item.expect:
                    unexpected.append(f"{item.name} [{argv[0]}]: expected {item.expect}, got {got}")
                if outcome.category not in ("accepted", "accepted_with_warning", "refused"):
                    say(f"{item.name}: {outcome.category} ({outcome.message[-300:]})")
        say(f"{len(outcomes)} jobs in {time.perf_counter() - t0:.0f} s")
        verify = ["verify", str(case), *([] if quick else ["--pixels"])]
        verdict = worker.ask(verify, START_TIMEOUT)
        changed = [h.name for h in items if before[h.name] != _fingerprint(h.path)]
        refusals = [o for o in outcomes if o.category == "refused"]
        not_naming = [
            o.name for o in refusals if Path(o.name).name not in o.message and o.argv[0] != "case"
        ]
        counts = {
            "inputs": len(items),
            "jobs": len(outcomes),
            "exit_70": sum(o.category == "exit_70" for o in outcomes),
            "hangs": sum(o.category == "hang" for o in outcomes),
            "tracebacks": sum(o.traceback for o in outcomes),
            "other_exits": sum(o.category == "other_exit" for o in outcomes),
            "refused": len(refusals),
            "refusals_not_naming_file": len(not_naming),
            "accepted": sum(o.category == "accepted" for o in outcomes),
            "accepted_with_warning": sum(o.category == "accepted_with_warning" for o in outcomes),
            "unexpected": len(unexpected),
            "originals_changed": len(changed),
            "case_unusable": int(verdict is None or verdict["code"] != 0),
            "worker_starts": worker.starts,
        }
        run.details = {  # type: ignore[attr-defined]
            "outcomes": [o.__dict__ for o in outcomes],
            "unexpected": unexpected,
            "originals_changed": changed,
            "refusals_not_naming_file": not_naming,
            "verify": verdict,
        }
        other = "-other" if os.environ.get("STRESS_CODE_ROOT") else ""
        details = ROOT / "build" / "stress" / f"hostile-{'quick' if quick else 'full'}{other}.json"
        details.parent.mkdir(parents=True, exist_ok=True)
        details.write_text(json.dumps(run.details, indent=1, default=str) + "\n", "utf-8")  # type: ignore[attr-defined]
        for line in unexpected:
            say(f"unexpected: {line}")
        return counts
    finally:
        if worker is not None:
            worker.stop()
        shutil.rmtree(scratch, ignore_errors=True)
