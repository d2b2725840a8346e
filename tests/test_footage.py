"""Real footage (issue 16): inert steps flagged, recipes and runs, orientation as evidence,
coordinates in source pixels, whole-clip disclosure copies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from forensic.case import Case
from forensic.ingest import ingest
from forensic.keys import Signer
from forensic.pipeline.run import run_recipe
from forensic.recipe import parse_recipe
from forensic.records import read_runs
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
