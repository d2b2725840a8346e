"""Hostile input (issue 15): every read bounded, every decoder failure a clear refusal.

Regression tests for what the outside campaign found: a FIFO as evidence, recipe or policy
blocked for ever; a recipe linked to /dev/zero grew memory without bound; decompression bombs
and huge declared sizes, and deeply nested TOML, ended in exit 70; a second video stream, and
JPEG data damaged but concealed by the decoder, went without a warning; an export could be
written into the case's own evidence folder; an evidence profile could allow the generative
lane.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import pytest

from forensic.case import Case, init_case
from forensic.errors import CaseError, InputError, PolicyError
from forensic.export import export_run
from forensic.fsutil import MAX_TOML_DEPTH, parse_toml, read_regular
from forensic.ingest import ingest
from forensic.keys import Signer
from forensic.media import DEFAULT_MAX_PIXELS, MediaLimits, analyse
from forensic.pipeline.run import run_recipe
from forensic.policy import default_policy_path, load_policy, parse_policy
from forensic.recipe import RecipeError, load_recipe, parse_recipe
from forensic.verify import verify_case
from stress.hostile import (
    VALID_RECIPE,
    _encode,
    _video,
    bmp_declaring,
    jpeg_declaring,
    png_declaring,
    tiff_declaring,
)
from tests.conftest import NOW


@pytest.fixture
def deadline() -> Iterator[None]:
    """Fail (rather than hang the suite) if the test blocks for more than 120 s (a loaded
    machine may take a while to unlock the key; a blocked read never ends)."""

    def expire(_sig: int, _frame: FrameType | None) -> None:
        raise TimeoutError("blocked: the input was read instead of refused")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, 120)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _image(tmp_path: Path, name: str = "ok.png") -> Path:
    path = tmp_path / name
    rng = np.random.default_rng(1)
    path.write_bytes(_encode(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), ".png"))
    return path


def _policy(tmp_path: Path, old: str, new: str) -> Path:
    text = default_policy_path().read_text("utf-8")
    assert old in text
    path = tmp_path / "policy.toml"
    path.write_text(text.replace(old, new, 1), "utf-8")
    return path


# -- not regular files ------------------------------------------------------------------------


@pytest.fixture
def specials(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "specials"
    folder.mkdir()
    fifo = folder / "fifo.png"
    os.mkfifo(fifo)
    (folder / "zero.png").symlink_to("/dev/zero")
    (folder / "to-fifo.png").symlink_to(fifo)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(folder / "socket.png"))
    sock.close()
    return {
        "FIFO": fifo,
        "character device": folder / "zero.png",
        "FIFO (named pipe), not": folder / "to-fifo.png",
        "socket": folder / "socket.png",
        "character device, not": Path("/dev/null"),
    }


def test_fifo_device_socket_as_evidence_are_refused_by_type(
    case: Case, signer: Signer, specials: dict[str, Path], deadline: None
) -> None:
    for kind, path in specials.items():
        with pytest.raises(InputError) as err:
            ingest(case, [path], signer=signer, now=NOW)
        assert str(path) in err.value.message
        assert kind.split(",")[0] in err.value.message
        assert "not a regular file" in err.value.message
    assert [e.kind for e in case.entries()] == ["case.open"]  # nothing added
    assert [p.name for p in case.evidence_dir.iterdir()] == []


def test_symlink_to_dev_zero_is_named_as_such(tmp_path: Path, deadline: None) -> None:
    link = tmp_path / "recipe.toml"
    link.symlink_to("/dev/zero")
    with pytest.raises(
        RecipeError, match=r"character device \(through a symbolic link to /dev/zero"
    ):
        load_recipe(link)


def test_fifo_and_dev_zero_as_recipe_or_policy_are_refused(
    specials: dict[str, Path], deadline: None
) -> None:
    for path in (specials["FIFO"], specials["character device"], Path("/dev/zero")):
        with pytest.raises(RecipeError, match="not a regular file"):
            load_recipe(path)
        with pytest.raises(PolicyError, match="not a regular file"):
            load_policy(path)


def test_case_init_with_a_fifo_policy_exits_cleanly(
    run_cli: Any, tmp_path: Path, specials: dict[str, Path], deadline: None
) -> None:
    code, _out, err = run_cli(
        "case", "init", tmp_path / "c", "--case-id", "F-1", "--title", "t",
        "--policy", specials["FIFO"],
    )  # fmt: skip
    assert code == 2
    assert "FIFO" in err
    assert not (tmp_path / "c").exists()


def test_dangling_symlink_is_named(case: Case, signer: Signer, tmp_path: Path) -> None:
    link = tmp_path / "gone.png"
    link.symlink_to(tmp_path / "nowhere.png")
    with pytest.raises(InputError, match=r"gone.png: a symbolic link to .*, which does not exist"):
        ingest(case, [link], signer=signer, now=NOW)
    with pytest.raises(RecipeError, match=r"symbolic link to .*nowhere.png, which does not exist"):
        read_regular(link, what="recipe", error=RecipeError)


# -- sizes and nesting ------------------------------------------------------------------------


def test_oversize_recipe_and_policy_are_refused_naming_the_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_bytes(VALID_RECIPE.encode() + b"#" * (2 << 20))
    with pytest.raises(RecipeError, match=r"larger than 1,048,576 bytes, the limit for a recipe"):
        load_recipe(big)
    with pytest.raises(PolicyError, match=r"larger than 1,048,576 bytes.*policy file"):
        load_policy(big)


@pytest.mark.parametrize(
    "text",
    [
        "x = " + "[" * 5000 + "]" * 5000,  # arrays: RecursionError in tomllib before
        "x = " + "{a = " * 3000 + "1" + "}" * 3000,  # inline tables
        "[" + ".".join(["a"] * 2000) + "]",  # dotted keys: no recursion, but deep data
        "x = " + "[" * (MAX_TOML_DEPTH + 1) + "]" * (MAX_TOML_DEPTH + 1),  # just too deep
    ],
)
def test_deep_toml_is_refused_not_a_recursion_error(text: str) -> None:
    with pytest.raises(RecipeError, match=f"nested deeper than {MAX_TOML_DEPTH} levels"):
        parse_recipe(text.encode(), where="deep.toml")
    with pytest.raises(PolicyError, match=f"nested deeper than {MAX_TOML_DEPTH} levels"):
        parse_policy(text.encode(), where="deep.toml")


def test_toml_at_the_depth_limit_parses() -> None:
    depth = MAX_TOML_DEPTH - 1  # the document itself is one level
    data = parse_toml(("x = " + "[" * depth + "]" * depth).encode(), where="ok.toml")
    assert "x" in data


# -- declared sizes: decompression bombs ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "pixels"),
    [
        ("bomb.png", png_declaring(100_000, 100_000), "10,000,000,000"),
        ("bomb.jpg", jpeg_declaring(65_500, 65_500), "4,290,250,000"),
        ("bomb.bmp", bmp_declaring(60_000, 60_000), "3,600,000,000"),
        ("bomb.tif", tiff_declaring(100_000, 100_000), "10,000,000,000"),
        # A real deflate bomb: 140 kB that inflate to 144 megapixels.
        ("deflate.png", png_declaring(12_000, 12_000, rows=12_000), "144,000,000"),
    ],
)
def test_bombs_are_refused_before_decoding_naming_file_and_limit(
    case: Case, signer: Signer, tmp_path: Path, name: str, data: bytes, pixels: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InputError) as err:
        ingest(case, [path], signer=signer, now=NOW)
    message = err.value.message
    assert str(path) in message
    assert f"= {pixels} pixels" in message
    assert f"limit of {DEFAULT_MAX_PIXELS:,} (policy [limits] max_pixels)" in message


def test_policy_limits_are_enforced_and_recorded(
    tmp_path: Path, signer: Signer, deadline: None
) -> None:
    policy = _policy(tmp_path, "max_pixels = 120000000", "max_pixels = 3000")
    case = init_case(
        tmp_path / "c", case_id="L-1", title="t", policy_path=policy, signer=signer, now=NOW
    )
    with pytest.raises(InputError, match=r"64x48 = 3,072 pixels, more than the limit of 3,000"):
        ingest(case, [_image(tmp_path)], signer=signer, now=NOW)
    small = tmp_path / "small.png"
    small.write_bytes(_encode(np.zeros((40, 50), np.uint8), ".png"))
    [result] = ingest(case, [small], signer=signer, now=NOW)
    assert result.payload["limits"] == {"max_pixels": 3000, "max_frames": 1_000_000}


def test_frame_limit_refuses_a_longer_video(tmp_path: Path, signer: Signer) -> None:
    video = tmp_path / "clip.mkv"
    _video(video, "matroska", "ffv1", frames=12, audio=False)
    policy = _policy(tmp_path, "max_frames = 1000000", "max_frames = 5")
    case = init_case(
        tmp_path / "c", case_id="L-2", title="t", policy_path=policy, signer=signer, now=NOW
    )
    with pytest.raises(
        InputError, match=r"clip.mkv: the video .* 6 frames, more than the limit of 5"
    ):
        ingest(case, [video], signer=signer, now=NOW)
    record = analyse(video, where="clip", limits=MediaLimits(max_frames=12))
    assert record.facts["frame_count"] == 12


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("max_pixels = 120000000", "max_pixels = 0", "limits.max_pixels is 0"),
        ("max_pixels = 120000000", "max_pixels = 2000000000", "between 1 and 1,073,741,824"),
        ("max_frames = 1000000", 'max_frames = "many"', "limits.max_frames must be a int"),
        (
            "max_frames = 1000000",
            "max_frames = 1000000\nmax_bytes = 5",
            "unknown key limits.max_bytes",
        ),
    ],
)
def test_policy_limits_are_validated(tmp_path: Path, old: str, new: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        load_policy(_policy(tmp_path, old, new))


def test_a_policy_without_limits_gets_the_defaults(tmp_path: Path) -> None:
    text = default_policy_path().read_text("utf-8")
    start = text.index("[limits]")
    end = text.index("# A profile is")
    policy = parse_policy((text[:start] + text[end:]).encode(), where="old.toml")
    assert policy.limits == MediaLimits()


# -- decoders -----------------------------------------------------------------------------------


def test_decoder_failures_are_input_errors_naming_the_file(tmp_path: Path) -> None:
    good = _image(tmp_path).read_bytes()
    cases = {
        "header.png": good[:20],
        "half.png": good[: len(good) // 2],
        "garbage.png": b"\x89PNG\r\n\x1a\n" + b"\xff" * 200,
        "text.mp4": b"not a video\n" * 20,
        "riff.avi": b"RIFF\x00\x00\x00\x00AVI LIST" + b"\x00" * 100,
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(InputError) as err:
            analyse(path, where=str(path))
        assert str(path) in err.value.message


def test_concealed_jpeg_damage_is_a_recorded_warning(
    case: Case, signer: Signer, tmp_path: Path
) -> None:
    rng = np.random.default_rng(2)
    pixels = np.clip(rng.normal(128, 40, (48, 64, 3)), 0, 255).astype(np.uint8)
    clean = _encode(pixels, ".jpg")
    damaged = bytearray(clean)
    sos = damaged.find(b"\xff\xda")
    for k in range(6):
        damaged[sos + 40 + 97 * k] ^= 0x5A
    (tmp_path / "clean.jpg").write_bytes(clean)
    (tmp_path / "damaged.jpg").write_bytes(bytes(damaged))
    ok, bad = ingest(
        case, [tmp_path / "clean.jpg", tmp_path / "damaged.jpg"], signer=signer, now=NOW
    )
    assert not any("corrupt data" in w for w in ok.payload["warnings"])
    assert any(
        "corrupt data" in w and "err_detect=explode" in w for w in bad.payload["warnings"]
    ), bad.payload["warnings"]


def test_fixture_stills_raise_no_corrupt_data_warning(media: Path) -> None:
    for path in sorted(media.iterdir()):
        if path.suffix.lower() in (".jpg", ".jpeg", ".tif", ".tiff"):
            record = analyse(path, where=path.name, damage_checks=True)
            assert not any("corrupt data" in w for w in record.warnings), (path, record.warnings)


def test_second_video_stream_and_data_streams_are_warned(tmp_path: Path) -> None:
    path = tmp_path / "two.mkv"
    _video(path, "matroska", "ffv1", frames=3, video_streams=2, audio=True)
    record = analyse(path, where="two.mkv")
    assert any(
        w.startswith("video stream #1 (ffv1) is kept in the stored file but not decoded")
        for w in record.warnings
    ), record.warnings
    assert any("audio streams" in w for w in record.warnings)


# -- export and policy --------------------------------------------------------------------------


def test_export_into_the_case_folder_is_refused(case: Case, signer: Signer, tmp_path: Path) -> None:
    ingest(case, [_image(tmp_path)], signer=signer, now=NOW)
    summary = run_recipe(
        case, "E1", parse_recipe(VALID_RECIPE.encode(), where="r.toml"), signer=signer, now=NOW
    )
    run_id = summary.run_id
    link = tmp_path / "link-into-case"
    link.symlink_to(case.root / "derived")
    for out in (
        case.root / "evidence" / "out.png",
        case.root / "out.png",
        link / "out.png",
    ):
        with pytest.raises(InputError, match="inside the case folder"):
            export_run(case, run_id, fmt="png", out=out, burn_in=False, signer=signer, now=NOW)
    assert not [e for e in case.entries() if e.kind == "export"]
    export_run(case, run_id, fmt="png", out=tmp_path / "out", burn_in=False, signer=signer, now=NOW)
    assert verify_case(case.root).ok


def test_policy_check_refuses_generative_lane_in_evidence_profile(
    run_cli: Any, tmp_path: Path
) -> None:
    path = _policy(tmp_path, 'lanes = ["classical"]', 'lanes = ["classical", "generative"]')
    code, _out, err = run_cli("policy", "check", path)
    assert code == 2
    assert "profile 'evidence' allows the generative lane" in err
    only_op = _policy(
        tmp_path, "allow_operations = []", 'allow_operations = ["generative.super_resolution"]'
    )
    with pytest.raises(PolicyError, match="evidence work must stay classical"):
        load_policy(only_op)


def test_case_manifest_that_is_a_fifo_is_refused(tmp_path: Path, deadline: None) -> None:
    from forensic.case import open_case

    folder = tmp_path / "c"
    folder.mkdir()
    os.mkfifo(folder / "case.json")
    with pytest.raises(CaseError, match="FIFO"):
        open_case(folder)


def test_fifo_as_key_report_or_templates_is_refused(
    run_cli: Any, case: Case, specials: dict[str, Path], deadline: None
) -> None:
    from forensic.report.templates import load_templates

    fifo = specials["FIFO"]
    code, _out, err = run_cli("verify", case.root, "--trust", fifo)
    assert code == 2
    assert "--trust" in err
    assert "FIFO" in err
    code, _out, err = run_cli(
        "case", "add-examiner", case.root, "--public-key", fifo, "--name", "X"
    )
    assert code == 2
    assert "FIFO" in err
    code, _out, err = run_cli("verify", fifo)
    assert code not in (0, 70)
    templates = fifo.parent / "templates"
    templates.mkdir()
    os.mkfifo(templates / "lab.toml")
    with pytest.raises(InputError, match="FIFO"):
        load_templates(templates)


def test_fifo_planted_in_place_of_evidence_is_reported_not_read(
    case: Case, signer: Signer, tmp_path: Path, deadline: None
) -> None:
    [result] = ingest(case, [_image(tmp_path)], signer=signer, now=NOW)
    stored = case.root / result.stored
    stored.unlink()
    os.mkfifo(stored)
    verdict = verify_case(case.root)
    assert not verdict.ok
    assert verdict.first_failure is not None
    assert "FIFO" in verdict.first_failure.detail
    with pytest.raises(OSError, match="FIFO"):
        case.store.read_bytes(result.stored)
    with pytest.raises(OSError, match="FIFO"):
        case.store.file_sha256(result.stored)
