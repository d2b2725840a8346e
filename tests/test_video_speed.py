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
