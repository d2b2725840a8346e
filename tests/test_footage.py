"""Real footage (issue 16): inert steps flagged, recipes and runs, orientation as evidence,
coordinates in source pixels, whole-clip disclosure copies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from forensic.case import Case
from forensic.errors import InputError
from forensic.ingest import ingest
from forensic.keys import Signer
from forensic.pipeline.run import run_recipe, supersede_run
from forensic.recipe import RecipeError, load_recipe, parse_recipe, with_range
from forensic.records import read_runs
from forensic.verify import verify_case
from forensic.videoio import FFV1Writer
from tests.conftest import NOW


def clean_frame() -> np.ndarray[Any, Any]:
    """Flat areas and sharp edges, no noise: the noise estimate is exactly 0."""
    image = np.zeros((64, 96, 3), np.uint8)
    image[:, :48] = 40
    image[:, 48:] = 200
    image[20:40, 10:30] = 120
    return image


def write_png(path: Path, image: np.ndarray[Any, Any]) -> Path:
    bgr = image[:, :, ::-1] if image.ndim == 3 else image
    assert cv2.imwrite(str(path), np.ascontiguousarray(bgr))
    return path


def run(case: Case, signer: Signer, source: str, text: str, **kw: Any) -> Any:
    return run_recipe(
        case, source, parse_recipe(text.encode(), where="test.toml"), signer=signer, now=NOW, **kw
    )


# -- inert steps ---------------------------------------------------------------------------------


def test_nl_means_on_a_clean_frame_is_flagged_inert(
    case: Case, signer: Signer, tmp_path: Path
) -> None:
    ingest(case, [write_png(tmp_path / "clean.png", clean_frame())], signer=signer, now=NOW)
    summary = run(
        case,
        signer,
        "E1",
        '[[steps]]\nop = "denoise_nl_means"\n\n[[steps]]\nop = "levels"\ngamma = 1.5\n',
    )
    (recorded,) = read_runs(case.entries())
    step1, step2 = recorded.steps
    assert any("inert: its output equals its input" in w for w in step1.warnings)
    assert any(
        "noise level (sigma) was estimated as 0" in w and "h = 1e-06" in w for w in step1.warnings
    )
    assert not any("inert" in w for w in step2.warnings)  # gamma 1.5 changes the mid-tones
    assert [w for w in summary.warnings if "step 1" in w] == step1.warnings
    assert step1.warnings[0] in recorded.warnings


def test_a_noisy_frame_gets_no_inert_warning(case: Case, signer: Signer, tmp_path: Path) -> None:
    rng = np.random.default_rng(16)
    noisy = np.clip(clean_frame() + rng.normal(0, 12, (64, 96, 3)), 0, 255).astype(np.uint8)
    ingest(case, [write_png(tmp_path / "noisy.png", noisy)], signer=signer, now=NOW)
    run(case, signer, "E1", '[[steps]]\nop = "denoise_nl_means"\n')
    (recorded,) = read_runs(case.entries())
    assert not any("inert" in w or "estimated as 0" in w for w in recorded.warnings)


# -- recipes and runs ----------------------------------------------------------------------------


def moving_clip(count: int = 12) -> list[np.ndarray[Any, Any]]:
    """Colour frames 48 x 64 with a bright square moving right 2 px per frame, and noise."""
    rng = np.random.default_rng(7)
    frames = []
    for i in range(count):
        frame = rng.integers(20, 60, (48, 64, 3)).astype(np.uint8)
        frame[10:20, 4 + 2 * i : 14 + 2 * i] = 230
        frames.append(frame)
    return frames


def write_clip(path: Path, frames: list[np.ndarray[Any, Any]]) -> Path:
    with FFV1Writer(path, rate=10) as writer:
        for frame in frames:
            writer.write(frame)
    return path


@pytest.fixture
def clip_case(case: Case, signer: Signer, tmp_path: Path) -> Case:
    ingest(case, [write_clip(tmp_path / "clip.mkv", moving_clip())], signer=signer, now=NOW)
    return case


def test_a_shipped_recipe_runs_by_name_on_video_with_a_frame_range(
    clip_case: Case, signer: Signer
) -> None:
    recipe = load_recipe("dark-noisy")
    with pytest.raises(InputError, match="--frames A:B or --seconds S:E"):
        run_recipe(clip_case, "E1", recipe, signer=signer, now=NOW)
    summary = run_recipe(clip_case, "E1", with_range(recipe, frames="2:5"), signer=signer, now=NOW)
    assert summary.output["frames"] == 4
    (recorded,) = read_runs(clip_case.entries())
    assert recorded["range"] == {"frames": [2, 5], "seconds": None}
    inputs = next(s.applied(clip_case.store) for s in recorded.steps)
    assert [r["frame"] for r in inputs] == [2, 3, 4, 5]
    # 10 frames a second: 0.3 s to 0.6 s are frames 3 to 6.
    timed = run_recipe(
        clip_case, "E1", with_range(recipe, seconds="0.3:0.6"), signer=signer, now=NOW
    )
    assert timed.output["frames"] == 4
    assert read_runs(clip_case.entries())[1]["range"] == {"frames": [3, 6], "seconds": [0.3, 0.6]}


def test_range_options_are_checked() -> None:
    recipe = load_recipe("dark-noisy")
    for bad in ("5", "5:2", "a:b", "-1:3"):
        with pytest.raises(RecipeError, match="--frames"):
            with_range(recipe, frames=bad)
    with pytest.raises(RecipeError, match="not both"):
        with_range(recipe, frames="1:2", seconds="0:1")


def test_an_identical_run_is_refused_unless_again(clip_case: Case, signer: Signer) -> None:
    recipe = with_range(load_recipe("dark-noisy"), frames="0:1")
    run_recipe(clip_case, "E1", recipe, signer=signer, now=NOW)
    before = (clip_case.root / "journal.jsonl").read_bytes()
    with pytest.raises(InputError, match=r"already run on E1 with the same range: R1") as info:
        run_recipe(clip_case, "E1", recipe, signer=signer, now=NOW)
    assert "--again" in str(info.value.hint)
    assert (clip_case.root / "journal.jsonl").read_bytes() == before
    # Another range is another run; --again runs the same once more.
    run_recipe(clip_case, "E1", with_range(recipe, frames="0:2"), signer=signer, now=NOW)
    again = run_recipe(clip_case, "E1", recipe, signer=signer, now=NOW, again=True)
    assert again.run_id == "R3"


def test_supersede_marks_a_run_journaled_and_verified(clip_case: Case, signer: Signer) -> None:
    run_recipe(
        clip_case, "E1", with_range(load_recipe("dark-noisy"), frames="3:3"), signer=signer, now=NOW
    )
    with pytest.raises(InputError, match="--reason is empty"):
        supersede_run(clip_case, "R1", reason="  ", signer=signer, now=NOW)
    with pytest.raises(InputError, match="no run 'R9'"):
        supersede_run(clip_case, "R9", reason="x", signer=signer, now=NOW)
    marked = supersede_run(
        clip_case, "r1", reason="exploratory look at frame 3", signer=signer, now=NOW
    )
    assert marked.is_superseded
    assert marked.superseded is not None
    assert marked.superseded["reason"] == "exploratory look at frame 3"
    assert clip_case.entries()[-1].kind == "run.supersede"
    with pytest.raises(InputError, match="already superseded"):
        supersede_run(clip_case, "R1", reason="again", signer=signer, now=NOW)
    assert verify_case(clip_case.root).ok


def test_cli_enhance_frames_again_and_supersede(run_cli: Any, clip_case: Case) -> None:
    root = clip_case.root
    code, _, err = run_cli("enhance", root, "E1", "--recipe", "dark-noisy")
    assert code != 0
    assert "--frames A:B" in err
    assert run_cli("enhance", root, "E1", "--recipe", "dark-noisy", "--frames", "0:1")[0] == 0
    code, _, err = run_cli("enhance", root, "E1", "--recipe", "dark-noisy", "--frames", "0:1")
    assert code != 0
    assert "already run on E1" in err
    assert "--again" in err
    args = ("enhance", root, "E1", "--recipe", "dark-noisy", "--frames", "0:1", "--again")
    assert run_cli(*args)[0] == 0
    code, out, _ = run_cli("run", "supersede", root, "R1", "--reason", "a first look", "--by", "R2")
    assert code == 0
    assert "R1" in out
    assert "replaced by R2" in out
    code, out, _ = run_cli("case", "show", root)
    assert "SUPERSEDED by R2: a first look" in out
    code, out, _ = run_cli("case", "show", root, "--json")
    runs = json.loads(out)["runs"]
    assert runs[0]["superseded"]["reason"] == "a first look"
    assert runs[1]["superseded"] is None
