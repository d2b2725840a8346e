from __future__ import annotations

import functools
import hashlib
import operator
import os
import stat
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from skimage import data

from forensic import ingest as ingest_mod
from forensic.case import Case
from forensic.errors import CaseError, InputError
from forensic.hashing import merkle_root, pixel_hash
from forensic.ingest import ingest
from forensic.journal import CHECKPOINT_FILE, JOURNAL_FILE
from forensic.keys import Signer
from forensic.verify import verify_case
from tests.conftest import NOW, PASSPHRASE, ffmpeg_or_skip


def spec_pixel_hash(arr: np.ndarray, order: str) -> str:
    """The pixel hash exactly as docs/spec.md defines it, written independently."""
    a = arr if arr.ndim == 3 else arr[:, :, None]
    h, w, c = a.shape
    header = f"forensic-pixels/1 dtype={a.dtype.name} shape={h}x{w}x{c} order={order}\n".encode()
    return hashlib.sha256(header + a.astype(a.dtype.newbyteorder("<")).tobytes()).hexdigest()


def test_pixel_hash_matches_spec() -> None:
    cam = data.camera()
    assert pixel_hash(cam, channel_order="L") == spec_pixel_hash(cam, "L")
    wide = cam.astype(np.uint16) * 257
    assert pixel_hash(wide, channel_order="L") == spec_pixel_hash(wide, "L")
    # Same bytes, another shape: another hash.
    assert pixel_hash(cam.reshape(256, 1024), channel_order="L") != pixel_hash(
        cam, channel_order="L"
    )


@pytest.mark.parametrize(
    ("name", "expected", "order", "dtype"),
    [
        ("camera_clean.png", lambda: data.camera(), "L", "uint8"),
        ("astronaut_clean.png", lambda: data.astronaut(), "RGB", "uint8"),
        ("camera16.png", lambda: data.camera().astype(np.uint16) * 257, "L", "uint16"),
        ("astronaut16.png", lambda: data.astronaut().astype(np.uint16) * 257, "RGB", "uint16"),
        ("astronaut.tif", lambda: data.astronaut(), "RGB", "uint8"),
        ("camera.bmp", lambda: data.camera(), "L", "uint8"),
    ],
)
def test_image_pixel_hash_equals_ground_truth(
    case: Case, signer: Signer, media: Path, name: str, expected, order: str, dtype: str
) -> None:
    [result] = ingest(case, [media / name], signer=signer, now=NOW)
    ph = result.payload["pixel_hash"]
    truth = expected()
    assert ph["sha256"] == spec_pixel_hash(truth, order)
    assert ph["dtype"] == dtype
    assert ph["channel_order"] == order
    assert ph["shape"][:2] == list(truth.shape[:2])


def test_jpeg_pixel_hash_matches_an_independent_decoder(
    case: Case, signer: Signer, media: Path
) -> None:
    [result] = ingest(case, [media / "camera.jpg"], signer=signer, now=NOW)
    with Image.open(media / "camera.jpg") as im:
        pil = np.asarray(im)
    # libjpeg-turbo in both: same IDCT, same pixels.
    assert result.payload["pixel_hash"]["sha256"] == spec_pixel_hash(pil, "L")


def test_originals_untouched_and_store_read_only(case: Case, signer: Signer, media: Path) -> None:
    src = media / "camera_noisy.png"
    before = (src.read_bytes(), src.stat().st_mtime_ns, stat.S_IMODE(src.stat().st_mode))
    [result] = ingest(case, [src], signer=signer, now=NOW)
    assert (src.read_bytes(), src.stat().st_mtime_ns, stat.S_IMODE(src.stat().st_mode)) == before
    stored = case.root / result.stored
    assert stored.name == f"{hashlib.sha256(before[0]).hexdigest()}.png"
    assert stored.read_bytes() == before[0]
    assert stat.S_IMODE(stored.stat().st_mode) == 0o444
    original = result.payload["original"]
    assert original["name"] == "camera_noisy.png"
    assert original["path"] == str(src.resolve())
    assert original["size"] == len(before[0])


def test_reingest_is_recognised(case: Case, signer: Signer, media: Path, tmp_path: Path) -> None:
    first = ingest(case, [media / "camera_noisy.png", media / "camera.bmp"], signer=signer, now=NOW)
    assert [r.exhibit for r in first] == ["E1", "E2"]
    copy = tmp_path / "renamed.png"
    copy.write_bytes((media / "camera_noisy.png").read_bytes())
    again = ingest(case, [copy, media / "camera.jpg"], signer=signer, now=NOW)
    assert [(r.exhibit, r.new) for r in again] == [("E1", False), ("E3", True)]
    assert [e.kind for e in case.entries()].count("evidence.ingest") == 3
    assert len(list(case.evidence_dir.iterdir())) == 3


def test_video_frames_hashes_and_facts(case: Case, signer: Signer, media: Path) -> None:
    seen: list[int] = []
    [result] = ingest(
        case,
        [media / "cctv.mp4"],
        signer=signer,
        now=NOW,
        progress=lambda _w, n, _t: seen.append(n),
    )
    p = result.payload
    frames = p["frames"]
    assert len(frames) == 32 == p["facts"]["frame_count"]
    assert seen[-1] == 32
    assert frames[0]["type"] == "I"
    assert frames[0]["key"] is True
    assert {f["type"] for f in frames} <= {"I", "P", "B"}
    pts = [f["pts"] for f in frames]
    assert pts == sorted(pts)
    assert len(set(pts)) == 32
    assert p["pixel_hash"]["sha256"] == merkle_root([bytes.fromhex(f["sha256"]) for f in frames])
    facts = p["facts"]
    assert (facts["codec"], facts["width"], facts["height"], facts["average_rate"]) == (
        "h264",
        320,
        240,
        "25/1",
    )
    assert facts["bit_exact_decoding"] is True
    assert facts["pixel_format"] == "yuv420p"


def _ffmpeg_framehashes(ffmpeg: str, path: Path) -> list[str]:
    out = subprocess.run(
        [ffmpeg, "-v", "error", "-i", str(path), "-f", "framehash", "-hash", "sha256", "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [
        line.rsplit(",", 1)[1].strip()
        for line in out.splitlines()
        if line and not line.startswith("#")
    ]


def test_video_frame_hashes_equal_ffmpeg_framehash(case: Case, signer: Signer, media: Path) -> None:
    ffmpeg = ffmpeg_or_skip()
    [result] = ingest(case, [media / "cctv.mp4"], signer=signer, now=NOW)
    ours = [f["sha256"] for f in result.payload["frames"]]
    assert ours == _ffmpeg_framehashes(ffmpeg, case.root / result.stored)


@pytest.mark.parametrize(
    ("codec", "pix_fmt", "suffix"),
    [
        ("rawvideo", "gray", ".nut"),
        ("rawvideo", "gray16le", ".nut"),
        ("rawvideo", "rgb24", ".nut"),
        ("rawvideo", "nv12", ".nut"),
        ("rawvideo", "yuyv422", ".nut"),
        ("rawvideo", "yuv420p10le", ".nut"),
        ("ffv1", "yuv422p", ".mkv"),
        ("libx264", "yuv420p", ".mp4"),
    ],
)
def test_frame_hashes_equal_ffmpeg_for_other_pixel_formats(
    case: Case, signer: Signer, tmp_path: Path, codec: str, pix_fmt: str, suffix: str
) -> None:
    ffmpeg = ffmpeg_or_skip()
    path = tmp_path / f"clip{suffix}"
    rng = np.random.default_rng(7)
    # Odd-ish sizes so that line padding and chroma rounding matter.
    width, height = 90, 62
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for _ in range(5):
            frame = av.VideoFrame.from_ndarray(
                rng.integers(0, 256, (height, width, 3), dtype=np.uint8), format="rgb24"
            )
            for packet in stream.encode(frame.reformat(format=pix_fmt)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    [result] = ingest(case, [path], signer=signer, now=NOW)
    assert result.payload["facts"]["pixel_format"] == pix_fmt
    ours = [f["sha256"] for f in result.payload["frames"]]
    assert len(ours) == 5
    assert ours == _ffmpeg_framehashes(ffmpeg, path)


def _snapshot(case: Case) -> tuple[bytes, bytes, list[str]]:
    return (
        (case.root / JOURNAL_FILE).read_bytes(),
        (case.root / CHECKPOINT_FILE).read_bytes(),
        sorted(os.listdir(case.evidence_dir)),
    )


def _bad_inputs(tmp: Path, media: Path) -> dict[str, tuple[Path, str]]:
    (tmp / "empty.png").write_bytes(b"")
    png = (media / "camera_clean.png").read_bytes()
    (tmp / "truncated.png").write_bytes(png[: len(png) // 2])
    (tmp / "notes.mp4").write_text("this is a text file, not a video\n")
    (tmp / "folder").mkdir()
    return {
        "empty": (tmp / "empty.png", "empty"),
        "truncated png": (tmp / "truncated.png", "cannot be decoded"),
        "text named mp4": (tmp / "notes.mp4", "not a supported image or video"),
        "directory": (tmp / "folder", "is a directory"),
        "missing": (tmp / "missing.png", "no such file"),
    }


@pytest.mark.parametrize(
    "kind", ["empty", "truncated png", "text named mp4", "directory", "missing"]
)
def test_bad_input_adds_nothing(
    case: Case, signer: Signer, media: Path, tmp_path: Path, kind: str
) -> None:
    path, message = _bad_inputs(tmp_path, media)[kind]
    before = _snapshot(case)
    with pytest.raises(InputError, match=message) as info:
        # A good file first: the batch is all or nothing.
        ingest(case, [media / "camera_clean.png", path], signer=signer, now=NOW)
    assert str(path) in str(info.value)
    assert _snapshot(case) == before


def test_unreadable_file(
    case: Case, signer: Signer, media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "secret.png"
    path.write_bytes((media / "camera_clean.png").read_bytes())
    path.chmod(0)
    if os.geteuid() == 0:
        # root reads anything: make the open fail the way it does for an ordinary user.
        real_open = os.open

        def denying_open(p: object, flags: int, *a: object) -> int:
            if Path(str(p)) == path:
                raise PermissionError(13, "Permission denied", str(p))
            return real_open(p, flags, *a)  # type: ignore[arg-type]

        monkeypatch.setattr(ingest_mod.os, "open", denying_open)
    before = _snapshot(case)
    with pytest.raises(InputError, match="permission denied"):
        ingest(case, [path], signer=signer, now=NOW)
    assert _snapshot(case) == before


def test_bad_input_via_cli_is_clean(run_cli, case: Case, media: Path, tmp_path: Path) -> None:
    for path, message in _bad_inputs(tmp_path, media).values():
        code, out, err = run_cli("ingest", case.root, path)
        assert code == 2, (path, err)
        assert message in err
        assert "Traceback" not in out + err


def test_two_processes_ingesting_at_once(case: Case, key_dir: Path, media: Path) -> None:
    env = {**os.environ, "FORENSIC_KEY_DIR": str(key_dir), "FORENSIC_PASSPHRASE": PASSPHRASE}
    groups = [
        ["camera_noisy.png", "camera.bmp", "cctv.mp4"],
        ["astronaut16.png", "camera.jpg", "astronaut.tif"],
    ]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "forensic.cli",
                "ingest",
                str(case.root),
                *[str(media / n) for n in names],
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for names in groups
    ]
    outputs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    items = [e.payload for e in case.entries() if e.kind == "evidence.ingest"]
    assert sorted(x["original"]["name"] for x in items) == sorted(
        functools.reduce(operator.iadd, groups, [])
    )
    assert sorted(x["exhibit"] for x in items) == sorted(f"E{i}" for i in range(1, 7))
    verify_case(case.root).raise_for_failure()


def test_raw_h264_elementary_stream(
    case: Case, signer: Signer, media: Path, tmp_path: Path
) -> None:
    """DVR exports often come as bare Annex B streams (.h264/.264) with no container."""
    raw = tmp_path / "export.264"
    with av.open(str(media / "cctv.mp4")) as src, av.open(str(raw), "w", format="h264") as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)
    [mp4] = ingest(case, [media / "cctv.mp4"], signer=signer, now=NOW)
    [annexb] = ingest(case, [raw], signer=signer, now=NOW)
    assert annexb.payload["facts"]["codec"] == "h264"
    assert annexb.payload["stored"].endswith(".264")
    # Same coded pictures, so the same decoded frames and the same Merkle root.
    assert annexb.payload["pixel_hash"]["sha256"] == mp4.payload["pixel_hash"]["sha256"]


def test_unwritable_evidence_store_is_a_clear_error(
    case: Case, signer: Signer, media: Path
) -> None:
    before = _snapshot(case)
    store = case.evidence_dir
    store.rename(case.root / "evidence.moved")  # the store vanished: mkstemp fails
    try:
        with pytest.raises(CaseError, match="cannot write into the evidence store"):
            ingest(case, [media / "camera_clean.png"], signer=signer, now=NOW)
    finally:
        (case.root / "evidence.moved").rename(store)
    assert _snapshot(case) == before
