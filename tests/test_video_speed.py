"""The video pipeline's speed work changes no byte: a run's outputs and records hash as they
did before the encoding moved to its own thread (pinned from commit 6c017c2), on any number of
worker threads; `hash_video` (one decoding for `verify --pixels`) gives what ingest and
`read_video` give; the background FFV1 writer writes what the synchronous one writes."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from forensic import videoio
from forensic.case import Case
from forensic.errors import InputError
from forensic.hashing import image_hash
from forensic.ingest import ingest
from forensic.journal import read_entries
from forensic.keys import Signer
from forensic.media import analyse_video
from forensic.pipeline.run import run_recipe
from forensic.recipe import parse_recipe
from forensic.records import read_runs
from forensic.videoio import FFV1Writer, hash_video, read_video
from tests.conftest import NOW

RECIPE = b"""
[[steps]]
op = "levels"
gamma = 1.3
frames = [0, 11]

[[steps]]
op = "crop"
x = 8
y = 6
width = 120
height = 90

[[steps]]
op = "flip"
"""
#: What the code of commit 6c017c2 (before this work) records for RECIPE on the generated
#: cctv.mp4 with kept intermediates: the output video, its records and every step's records.
PINNED = {
    "video": "b5aeccd8a1b848bfd308658cdd125d6fac2c5d0184ac66047b53e1c56ac5c66c",
    "merkle": "df7dac1ba75dfd2b217809d84eae454d05fad71b4da2f0a83cc4ab08295bd15f",
    "frames_file": "9472b544c0555d0f432865747ade27796f999cf33c6021224c2ee902ca5a0823",
    "inputs_file": "ac8f112ff2556df8ea3ed85ccbced88b5cb1025686bad6f7c7d718556e9477b6",
    "provenance": "54a7eac857633cdf7c56c91141d515e66a09735fa436320773a7bdfb8f1108e0",
    "steps": [
        "1437c531c2c6667399516929ee6fd6deb948c35122b99c6015e0c798f4e21bf2",
        "f98450c2d89f3ec9770cc2243f567703acf36764c94874c143b4320c2372ade4",
        "96c8fcc35d68071454a0682ae471a8cee6c7fdafe82658a898c6cbc999c0a72c",
    ],
    "kept": [
        "69b934302b401c7f7b5393308dd4af62390d10dbc3ed518242865ae037e690bb",
        "714a8452d9d89b2fbdad4200a2c08b7207f55e346fa1b11519203ff991f707eb",
    ],
}


def _hashes(case: Case) -> dict[str, Any]:
    run = read_runs(read_entries(case.root))[-1]
    return {
        "video": run["output"]["video"]["sha256"],
        "merkle": run["output"]["merkle_root"],
        "frames_file": run["frames"]["sha256"],
        "inputs_file": run["inputs"]["sha256"],
        "provenance": run["provenance"]["video"]["sha256"],
        "steps": [s["applied"]["sha256"] for s in run.steps],
        "kept": [s["kept"]["sha256"] for s in run.steps if "kept" in s],
    }


@pytest.mark.parametrize("workers", [1, 3])
def test_run_outputs_hash_as_before(case: Case, signer: Signer, media: Path, workers: int) -> None:
    ingest(case, [media / "cctv.mp4"], signer=signer, now=NOW)
    recipe = parse_recipe(RECIPE, where="test.toml")
    run_recipe(case, "E1", recipe, signer=signer, now=NOW, workers=workers, keep_intermediates=True)
    assert _hashes(case) == PINNED


def test_hash_video_gives_what_ingest_and_read_video_give(media: Path, tmp_path: Path) -> None:
    clip = media / "cctv.mp4"
    ingested = [f["sha256"] for f in analyse_video(clip, where="clip").frames]
    assert hash_video(clip, where="clip").frames == ingested
    frames = list(read_video(clip))[:5]
    stored = tmp_path / "out.mkv"
    with FFV1Writer(stored, rate=Fraction(25)) as writer:
        written = [writer.write(f) for f in frames]
    found = hash_video(stored, where="out", pixels=True)
    assert found.frames == written == [f["sha256"] for f in analyse_video(stored, where="o").frames]
    assert found.pixels == [image_hash(f) for f in frames]
    assert found.decode_errors == 0


def test_hash_video_decodes_again_as_ingest_when_the_check_refuses(media: Path) -> None:
    calls: list[list[str]] = []

    def refuse(hashes: Any) -> bool:
        calls.append(hashes.frames)
        return False

    found = hash_video(media / "cctv.mp4", where="clip", check=refuse)
    assert len(calls) == 1  # the threaded decoding was refused; the second is returned as is
    assert found.frames == calls[0]


def test_hash_video_refuses_what_is_not_a_video(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mkv"
    junk.write_bytes(b"not a video at all" * 10)
    with pytest.raises(InputError, match="junk"):
        hash_video(junk, where="junk")


def _frames(n: int, shape: tuple[int, ...], dtype: Any) -> list[Any]:
    rng = np.random.default_rng(5)
    top = np.iinfo(dtype).max
    return [rng.integers(0, top, size=shape, dtype=dtype, endpoint=True) for _ in range(n)]


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((37, 53, 3), np.uint8), ((36, 50), np.uint16), ((30, 40, 4), np.uint8)],
)
def test_background_writer_writes_the_same_bytes(
    tmp_path: Path, shape: tuple[int, ...], dtype: Any
) -> None:
    frames = _frames(7, shape, dtype)
    with FFV1Writer(tmp_path / "sync.mkv") as sync:
        hashes = [sync.write(f) for f in frames]
    with FFV1Writer(tmp_path / "background.mkv") as background:
        positions = [background.submit(f) for f in frames]
        assert positions == list(range(7))
        assert [background.frame_hash(k) for k in positions] == hashes
    assert (tmp_path / "sync.mkv").read_bytes() == (tmp_path / "background.mkv").read_bytes()
    assert sync.sha256 == background.sha256


def test_background_writer_refuses_a_mismatched_frame_at_once(tmp_path: Path) -> None:
    target = tmp_path / "bad.mkv"
    writer = FFV1Writer(target)
    writer.submit(np.zeros((20, 30, 3), np.uint8))
    with pytest.raises(InputError, match=r"frame 1 is \(20, 31, 3\)"):
        writer.submit(np.zeros((20, 31, 3), np.uint8))
    writer.abort()
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def _bgr0_by_numpy(image: Any) -> Any:
    """The bgr0 frame as `_to_frame` first built it (numpy copies into a zeroed buffer)."""
    import av

    height, width = image.shape[:2]
    frame = av.VideoFrame(width, height, "bgr0")
    plane = frame.planes[0]
    rows = np.zeros((height, plane.line_size), np.uint8)
    px = rows[:, : width * 4].reshape(height, width, 4)
    px[..., 0], px[..., 1], px[..., 2] = image[..., 2], image[..., 1], image[..., 0]
    plane.update(rows.tobytes())
    return frame


@pytest.mark.parametrize("shape", [(37, 53, 3), (1, 1, 3), (90, 120, 3), (17, 1001, 3)])
def test_bgr0_frames_hold_the_bytes_of_the_numpy_shuffle(shape: tuple[int, ...]) -> None:
    """`_to_frame` shuffles RGB into bgr0 with one OpenCV call: the same visible bytes (and
    so the same frame hash and the same encoding) as the numpy copies it replaced, with line
    padding (widths 53, 1001) and for a non-contiguous view."""
    from forensic.media import frame_sha256
    from forensic.videoio import _from_frame, _to_frame

    image = _frames(1, shape, np.uint8)[0]
    for pixels in (image, image[:, ::-1]):
        ours, theirs = _to_frame(pixels, "bgr0"), _bgr0_by_numpy(pixels)
        assert frame_sha256(ours) == frame_sha256(theirs)
        assert np.array_equal(_from_frame(ours), pixels)
        line = ours.planes[0].line_size
        visible = np.frombuffer(memoryview(ours.planes[0]), np.uint8)[: shape[0] * line]
        assert not visible.reshape(shape[0], line)[:, 3 : shape[1] * 4 : 4].any()  # the 0 byte


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_repeated_uniform_frames_give_the_bytes_of_encoding_them(
    tmp_path: Path, dtype: Any
) -> None:
    """A uniform grey frame encoded once in the process is muxed from the packet already
    made (provenance maps): the file, its hash and every frame hash are those of encoding
    each frame, through runs of one value, a change of value, a non-uniform frame between two
    equal uniform ones, on the writer's thread and without it, and in a file whose frames
    all come from earlier files (its encoder never runs)."""
    rng = np.random.default_rng(9)
    shape = (45, 67)

    def full(value: int) -> Any:
        return np.full(shape, value, dtype)

    frames = [full(1), full(1), full(1), full(2), full(1), full(1)]
    frames += [rng.integers(0, 5, shape).astype(dtype), full(1), full(3), full(3)]
    with FFV1Writer(tmp_path / "plain.mkv") as plain:
        hashes = [plain.write(f) for f in frames]
    videoio._UNIFORM_PACKETS.clear()  # the first writer encodes each value once...
    with FFV1Writer(tmp_path / "repeat.mkv", repeat_uniform=True) as repeat:
        assert [repeat.write(f) for f in frames] == hashes
    with FFV1Writer(tmp_path / "thread.mkv", repeat_uniform=True) as thread:
        positions = [thread.submit(f) for f in frames]  # ...this one none: all from before
        assert [thread.frame_hash(k) for k in positions] == hashes
    assert plain.sha256 == repeat.sha256 == thread.sha256
    data = (tmp_path / "plain.mkv").read_bytes()
    assert data == (tmp_path / "repeat.mkv").read_bytes() == (tmp_path / "thread.mkv").read_bytes()
    with FFV1Writer(tmp_path / "only.mkv", repeat_uniform=True) as only:  # never encodes
        assert [only.write(f) for f in frames[1:3]] == hashes[1:3]
    with FFV1Writer(tmp_path / "only-plain.mkv") as only_plain:
        assert [only_plain.write(f) for f in frames[1:3]] == hashes[1:3]
    assert only.sha256 == only_plain.sha256
    decoded = list(read_video(tmp_path / "repeat.mkv"))
    assert len(decoded) == len(frames)
    assert all(np.array_equal(a, b) for a, b in zip(decoded, frames, strict=True))
