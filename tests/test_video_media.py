"""Video decoding (colour, aspect, interlacing, frame-exact access) and the video writers."""

from __future__ import annotations

import subprocess
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from forensic import media as media_mod
from forensic.case import Case
from forensic.errors import InputError
from forensic.hashing import pixel_hash
from forensic.ingest import ingest
from forensic.interlace import COMBING_RATIO
from forensic.keys import Signer
from forensic.media import (
    analyse_video,
    conversion_record,
    decode_frames,
    decode_image,
    index_at_time,
    iter_frames,
)
from forensic.verify import verify_case
from forensic.videoio import (
    FFV1Writer,
    H264Writer,
    burn_in,
    burn_in_box,
    read_video,
    timecode,
    write_png_frames,
)
from tests.conftest import NOW, ffmpeg_or_skip

# Interior of each 16-px column of limited.mkv / full.mkv, away from chroma edges.
COLUMNS = [slice(16 * i + 4, 16 * i + 12) for i in range(4)]


def _column(image: np.ndarray, i: int) -> np.ndarray:
    return image[4:-4, COLUMNS[i]].reshape(-1, 3)


def _bt709(y: float, u: float, v: float, *, limited: bool) -> np.ndarray:
    if limited:
        y, u, v = (y - 16) * 255 / 219, (u - 128) * 255 / 224, (v - 128) * 255 / 224
    else:
        u, v = u - 128, v - 128
    kr, kb = 0.2126, 0.0722
    kg = 1 - kr - kb
    r = y + 2 * (1 - kr) * v
    b = y + 2 * (1 - kb) * u
    g = (y - kr * r - kb * b) / kg
    return np.array([r, g, b])


# -- colour ------------------------------------------------------------------------------------


def test_limited_range_is_expanded_exactly(media: Path) -> None:
    path = media / "limited.mkv"
    facts = analyse_video(path, where="limited").facts
    colour = facts["colour"]
    assert (colour["range"], colour["matrix"], colour["primaries"], colour["transfer"]) == (
        "limited",
        "bt709",
        "bt709",
        "bt709",
    )
    assert colour["assumed"] == []
    assert (facts["color_range"], facts["colorspace"]) == (1, 1)
    record = conversion_record(facts)
    assert record["range"] == {"signalled": "limited", "used": "limited", "output": "full"}
    assert record["matrix"] == {"signalled": "bt709", "used": "bt709"}
    assert record["reformat"] == {
        "src_colorspace": "ITU709",
        "dst_colorspace": "ITU709",
        "src_color_range": "MPEG",
        "dst_color_range": "JPEG",
    }
    frames = list(iter_frames(path, [0, 1, 2], where="limited"))
    for frame in frames:
        image = frame.image
        assert image.dtype == np.uint8
        assert image.shape == (48, 64, 3)
        assert image.flags.c_contiguous
        assert (_column(image, 0) == 0).all()  # Y 16: black
        assert (_column(image, 1) == 255).all()  # Y 235: white
        assert (_column(image, 2) == 128).all()  # Y 126: (126 - 16) * 255 / 219 = 128.1
        colour_px = _column(image, 3).astype(float)
        # The BT.709 matrix, not BT.601 (which would give R 164.8): libswscale's fixed-point
        # path lands within 3 levels of the exact equations.
        assert np.abs(colour_px - _bt709(100, 110, 170, limited=True)).max() <= 3
        assert (colour_px[:, 0] >= 170).all()


def test_full_range_keeps_black_and_white(media: Path) -> None:
    path = media / "full.mkv"
    facts = analyse_video(path, where="full").facts
    assert facts["pixel_format"] == "yuvj420p"
    assert (facts["colour"]["range"], facts["colour"]["matrix"]) == ("full", "bt709")
    record = conversion_record(facts)
    assert record["range"]["used"] == "full"
    assert record["reformat"]["src_color_range"] == "JPEG"
    [frame] = iter_frames(path, [1], where="full")
    assert (_column(frame.image, 0) == 0).all()
    assert (_column(frame.image, 1) == 255).all()
    assert (_column(frame.image, 2) == 128).all()
    colour_px = _column(frame.image, 3).astype(float)
    assert np.abs(colour_px - _bt709(100, 110, 170, limited=False)).max() <= 2


def test_unsignalled_colour_is_recorded_as_assumed(media: Path) -> None:
    facts = analyse_video(media / "cctv.mp4", where="cctv").facts
    colour = facts["colour"]
    assert (colour["range"], colour["matrix"]) == ("unspecified", "unspecified")
    assert (colour["used_range"], colour["used_matrix"]) == ("limited", "bt601")
    assert any("BT.601" in text for text in colour["assumed"])
    assert any("limited" in text for text in colour["assumed"])
    record = conversion_record(facts)
    assert record["assumed"] == colour["assumed"]
    assert record["reformat"]["src_colorspace"] == "ITU601"
    assert record["reformat"]["src_color_range"] == "MPEG"
    assert record["interpolation"] == "BILINEAR"


def test_conversion_of_unsignalled_video_is_unchanged(media: Path) -> None:
    """Runs recorded before colour was explicit must still replay bit-exactly: for a stream that
    signals nothing, the explicit conversion equals PyAV's default one."""
    with av.open(str(media / "cctv.mp4")) as container:
        old = [
            f.reformat(format="rgb24", interpolation="BILINEAR", threads=1).to_ndarray()
            for f in container.decode(video=0)
        ]
    new = [f.image for f in iter_frames(media / "cctv.mp4", range(32), where="cctv")]
    assert all(np.array_equal(a, b) for a, b in zip(old, new, strict=True))


def test_limited_range_grey_is_expanded(tmp_path: Path) -> None:
    path = tmp_path / "grey.mkv"
    row = np.array([16, 235, 126, 0, 255, 20], np.uint8).repeat(2)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 12, 4, "gray"
        stream.codec_context.color_range = 1
        frame = av.VideoFrame.from_ndarray(np.tile(row, (4, 1)), format="gray")
        frame.color_range = 1
        for packet in [*stream.encode(frame), *stream.encode()]:
            out.mux(packet)
    facts = analyse_video(path, where="grey").facts
    assert facts["colour"]["range"] == "limited"
    assert "range_expansion" in conversion_record(facts)
    [decoded] = iter_frames(path, [0], where="grey")
    # round((v - 16) * 255 / 219), clipped
    assert decoded.image[0].tolist() == [0, 0, 255, 255, 128, 128, 0, 0, 255, 255, 5, 5]


# -- aspect and interlacing --------------------------------------------------------------------


def test_flagged_interlacing_and_aspect(media: Path) -> None:
    facts = analyse_video(media / "interlaced_flagged.mp4", where="flagged").facts
    lace = facts["interlace"]
    assert lace["detected_by"] == "stream flags"
    assert lace["field_order"] == "tff"
    assert lace["flagged_frames"] == 12 == facts["interlaced_frames"]
    # The content is woven too, and the measure agrees on the order.
    assert lace["measured_field_order"] == "tff"
    assert lace["combed_frames"] >= 10
    assert facts["sample_aspect_ratio"] == "12/11"
    assert facts["display_aspect_ratio"] == "15/11"  # 160/128 * 12/11


def test_combing_measure_finds_unflagged_interlacing(media: Path) -> None:
    facts = analyse_video(media / "interlaced_combed.mkv", where="combed").facts
    lace = facts["interlace"]
    assert lace["flagged_frames"] == 0
    assert lace["detected_by"] == "combing measure"
    assert lace["field_order"] == "bff"  # the ground truth: odd rows are the earlier field
    assert lace["combed_frames"] >= 10
    assert facts["interlaced_frames"] == lace["combed_frames"]
    assert float(lace["combing_score"]) > COMBING_RATIO
    assert facts["sample_aspect_ratio"] is None
    assert facts["display_aspect_ratio"] == "5/4"
    assert "square pixels" in facts["aspect_assumed"]


@pytest.mark.parametrize("name", ["progressive_moving.mp4", "cctv.mp4"])
def test_progressive_video_is_not_combed(media: Path, name: str) -> None:
    facts = analyse_video(media / name, where=name).facts
    lace = facts["interlace"]
    assert (lace["field_order"], lace["flagged_frames"], lace["combed_frames"]) == (
        "progressive",
        0,
        0,
    )
    assert facts["interlaced_frames"] == 0
    assert float(lace["combing_score"]) < 1.1


def test_new_facts_go_into_the_journal(case: Case, signer: Signer, media: Path) -> None:
    """No floating-point values: the journal's canonical JSON holds none."""
    [result] = ingest(case, [media / "interlaced_combed.mkv"], signer=signer, now=NOW)
    facts = result.payload["facts"]
    assert facts["interlace"]["field_order"] == "bff"
    assert isinstance(facts["interlace"]["combing_score"], str)
    verify_case(case.root).raise_for_failure()


# -- frame-exact access ------------------------------------------------------------------------


def test_iter_frames_matches_ingest_and_decode_frames(media: Path) -> None:
    path = media / "cctv.mp4"
    record = analyse_video(path, where="cctv")
    wanted = [0, 15, 31]
    frames = list(iter_frames(path, wanted, where="cctv"))
    old = decode_frames(path, set(wanted), where="cctv")
    assert [f.index for f in frames] == wanted
    for f in frames:
        ingested = record.frames[f.index]
        assert f.source_sha256 == ingested["sha256"]
        assert f.pts == ingested["pts"]
        assert f.picture_type == ingested["type"]
        assert f.source_format == "yuv420p"
        image, sha, pts, fmt = old[f.index]
        assert np.array_equal(f.image, image)
        assert (sha, pts, fmt) == (f.source_sha256, f.pts, f.source_format)
        assert f.time_s == pytest.approx(f.pts * Fraction(record.facts["time_base"]))


def test_frames_by_time(media: Path) -> None:
    path = media / "cctv.mp4"
    record = analyse_video(path, where="cctv")
    tb = record.facts["time_base"]
    base = Fraction(tb)
    step = record.frames[1]["pts"] - record.frames[0]["pts"]
    for index in (0, 15, 31):
        pts = record.frames[index]["pts"]
        start = pts * base
        assert index_at_time(record.frames, float(start), tb) == index
        # Any time while the frame is displayed gives it.
        assert index_at_time(record.frames, float(start + step * base * 0.9), tb) == index
    t = float(record.frames[20]["pts"] * base) + 0.01
    [frame] = iter_frames(path, [index_at_time(record.frames, t, tb)], where="cctv")
    assert frame.source_sha256 == record.frames[20]["sha256"]
    end = (record.frames[-1]["pts"] + step) * base
    for outside in (float(record.frames[0]["pts"] * base) - 0.01, float(end), 3600.0):
        with pytest.raises(InputError, match="outside the clip"):
            index_at_time(record.frames, outside, tb)


def test_background_decoding_gives_identical_results(media: Path) -> None:
    path = media / "interlaced_flagged.mp4"
    indices = list(range(0, 12, 2))
    plain = list(iter_frames(path, indices, where="x", background=False))
    threaded = list(iter_frames(path, indices, where="x", background=True))
    assert [f.index for f in plain] == [f.index for f in threaded] == indices
    for a, b in zip(plain, threaded, strict=True):
        assert np.array_equal(a.image, b.image)
        assert (a.source_sha256, a.pts) == (b.source_sha256, b.pts)


def test_closing_early_stops_the_decoder_thread(media: Path) -> None:
    frames = iter_frames(media / "cctv.mp4", range(32), where="cctv")
    first = next(frames)
    assert first.index == 0
    frames.close()  # type: ignore[attr-defined]
    assert not [t for t in threading.enumerate() if t.name == "forensic-decode"]


def test_only_wanted_frames_are_converted(media: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = media_mod.convert_frame

    def counting(frame: av.VideoFrame) -> np.ndarray:
        calls.append(1)
        return real(frame)

    monkeypatch.setattr(media_mod, "convert_frame", counting)
    got = list(iter_frames(media / "cctv.mp4", [3, 7], where="cctv", background=False))
    assert [f.index for f in got] == [3, 7]
    assert len(calls) == 2


@pytest.mark.parametrize("background", [False, True])
def test_frame_index_errors(media: Path, background: bool) -> None:
    path = media / "cctv.mp4"
    with pytest.raises(InputError, match=r"frames \[32, 40\] could not be decoded.*32 frames"):
        list(iter_frames(path, [5, 32, 40], where="E1", background=background))
    with pytest.raises(InputError, match="sorted and unique"):
        iter_frames(path, [5, 3], where="E1", background=background)
    with pytest.raises(InputError, match="sorted and unique"):
        iter_frames(path, [3, 3], where="E1", background=background)
    with pytest.raises(InputError, match="negative"):
        iter_frames(path, [-1], where="E1", background=background)
    assert list(iter_frames(path, [], where="E1", background=background)) == []


def test_not_a_video_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.mkv"
    path.write_text("not a video\n")
    with pytest.raises(InputError, match="E9: the video cannot be opened"):
        list(iter_frames(path, [0], where="E9"))


# -- FFV1 --------------------------------------------------------------------------------------

LAYOUTS = [
    ((33, 47), np.uint8, "gray"),
    ((33, 47), np.uint16, "gray16le"),
    ((33, 47, 3), np.uint8, "bgr0"),
    ((33, 47, 3), np.uint16, "gbrp16le"),
    ((33, 47, 4), np.uint8, "bgra"),
    ((33, 47, 4), np.uint16, "gbrap16le"),
]


def _random_frames(shape: tuple[int, ...], dtype: type, n: int = 4) -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    top = np.iinfo(dtype).max
    return [rng.integers(0, top + 1, shape, dtype=dtype) for _ in range(n)]


@pytest.mark.parametrize(("shape", "dtype", "pix_fmt"), LAYOUTS)
def test_ffv1_round_trip_and_reingest(
    tmp_path: Path, shape: tuple[int, ...], dtype: type, pix_fmt: str
) -> None:
    frames = _random_frames(shape, dtype)
    path = tmp_path / "out.mkv"
    with FFV1Writer(path, rate=Fraction(25)) as writer:
        hashes = [writer.write(f) for f in frames]
    assert (writer.pix_fmt, writer.frames) == (pix_fmt, 4)
    back = list(read_video(path))
    assert len(back) == 4
    for a, b in zip(frames, back, strict=True):
        assert b.dtype == a.dtype
        assert np.array_equal(a, b)
    record = analyse_video(path, where="out")
    assert [f["sha256"] for f in record.frames] == hashes
    assert record.facts["codec"] == "ffv1"
    assert record.facts["pixel_format"] == pix_fmt
    assert record.facts["bit_exact_decoding"] is True
    # Same frames, same bytes.
    again = tmp_path / "again.mkv"
    with FFV1Writer(again, rate=25) as writer:
        for f in frames:
            writer.write(f)
    assert again.read_bytes() == path.read_bytes()


@pytest.mark.parametrize(("shape", "dtype", "pix_fmt"), LAYOUTS[1:4])
def test_ffv1_hashes_equal_ffmpeg_framehash(
    tmp_path: Path, shape: tuple[int, ...], dtype: type, pix_fmt: str
) -> None:
    ffmpeg = ffmpeg_or_skip()
    path = tmp_path / "out.mkv"
    with FFV1Writer(path) as writer:
        hashes = [writer.write(f) for f in _random_frames(shape, dtype, 2)]
    out = subprocess.run(
        [ffmpeg, "-v", "error", "-i", str(path), "-f", "framehash", "-hash", "sha256", "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    theirs = [ln.rsplit(",", 1)[1].strip() for ln in out.splitlines() if ln and ln[0] != "#"]
    assert theirs == hashes


def _write_all(path: Path, frames: list[np.ndarray]) -> None:
    with FFV1Writer(path) as writer:
        for frame in frames:
            writer.write(frame)


def test_ffv1_writer_refuses_bad_frames(tmp_path: Path) -> None:
    path = tmp_path / "out.mkv"
    grey = np.zeros((10, 10), np.uint8)
    cases = [
        (
            [grey, np.zeros((10, 12), np.uint8)],
            r"frame 1 is \(10, 12\) uint8.*must match the first",
        ),
        ([grey, np.zeros((10, 10), np.uint16)], r"frame 1 is \(10, 10\) uint16"),
        ([np.zeros((10, 10), np.float32)], "sample type float32"),
        ([np.zeros((10, 10, 2), np.uint8)], "shape"),
    ]
    for frames, message in cases:
        with pytest.raises(InputError, match=message):
            _write_all(path, frames)
        assert list(tmp_path.iterdir()) == []  # no output, no temporary file left behind
    path.write_bytes(b"x")
    with pytest.raises(InputError, match="already exists"):
        FFV1Writer(path)


# -- PNG frames, H.264, burn-in ----------------------------------------------------------------


def test_png_frames(tmp_path: Path) -> None:
    frames = _random_frames((20, 30, 3), np.uint8, 2) + _random_frames((20, 30), np.uint16, 1)
    rows = write_png_frames(frames, tmp_path, start_index=123)
    assert [r["file"] for r in rows] == ["frame_000123.png", "frame_000124.png", "frame_000125.png"]
    for row, frame in zip(rows, frames, strict=True):
        data = (tmp_path / row["file"]).read_bytes()
        decoded, order = decode_image(data, where=row["file"])
        assert np.array_equal(decoded, frame)
        assert row["pixel_sha256"] == pixel_hash(frame, channel_order=order)
        assert row["size"] == len(data)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(InputError, match=r"frame_000124\.png already exists"):
        write_png_frames(frames[:1], tmp_path, start_index=124)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_h264_presentation_copy(tmp_path: Path, media: Path) -> None:
    truth = np.load(media / "cctv_clean.npz")["frames"][:4]
    paths = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    for path in paths:
        with H264Writer(path, rate=25) as writer:
            for frame in truth:
                writer.write(frame)
        assert writer.lossy
    assert paths[0].read_bytes() == paths[1].read_bytes()
    facts = analyse_video(paths[0], where="copy").facts
    assert (facts["codec"], facts["pixel_format"]) == ("h264", "yuv420p")
    assert (facts["colour"]["range"], facts["colour"]["matrix"]) == ("limited", "bt709")
    decoded = [f.image for f in iter_frames(paths[0], range(4), where="copy")]
    for a, b in zip(truth, decoded, strict=True):
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 3


def test_timecode() -> None:
    assert timecode(0, "1/25") == "00:00:00.000"
    assert timecode(3725 * 25 + 3, "1/25") == "01:02:05.120"
    assert timecode(1001, "1001/30000") == "00:00:33.400"
    assert timecode(90000 * 61, Fraction(1, 90000)) == "00:01:01.000"
    with pytest.raises(InputError, match="negative"):
        timecode(-1, "1/25")


@pytest.mark.parametrize(
    ("shape", "dtype", "min_height"),
    [((240, 320, 3), np.uint8, 12), ((1080, 1920, 3), np.uint8, 30), ((240, 320), np.uint16, 12)],
)
def test_burn_in(shape: tuple[int, ...], dtype: type, min_height: int) -> None:
    image = _random_frames(shape, dtype, 1)[0]
    before = image.copy()
    out = burn_in(image, frame_index=212, timecode="00:00:08.480")
    assert np.array_equal(image, before)  # the input is not touched
    x, y, w, h = burn_in_box(shape, frame_index=212, timecode="00:00:08.480")
    assert (x, y) == (0, 0)
    assert h >= min_height  # legible: text at least this many lines high
    assert w < shape[1] // 2
    changed = np.argwhere((out != image).reshape(shape[0], shape[1], -1).any(axis=2))
    assert changed[:, 0].max() < h
    assert changed[:, 1].max() < w
    box = out[:h, :w]
    top = np.iinfo(dtype).max
    assert (box == top).any()  # white text
    assert (box == 0).mean() > 0.5  # on black
    assert np.array_equal(out[h:], image[h:])
    assert np.array_equal(out[:, w:], image[:, w:])
