"""Temporal consistency of generative steps on video: the flicker factor, its policy bound."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from forensic.case import Case, init_case
from forensic.errors import PolicyError
from forensic.ingest import ingest
from forensic.journal import read_entries
from forensic.keys import Signer
from forensic.ops.framework import Param, box_params, operation, registered
from forensic.ops.pixels import Image
from forensic.pipeline.flicker import FlickerMeter, judge_flicker
from forensic.pipeline.run import run_recipe
from forensic.policy import default_policy_path, parse_policy
from forensic.recipe import parse_recipe
from forensic.records import read_runs
from forensic.verify import verify_case
from tests.conftest import NOW

NOISY_OP = "generative.test_flicker_noise"
#: The clip's frames are 320x240; the crop keeps the inpainted box inside a small frame.
NOISY = b"""
[recipe]
coords = "input"
[[steps]]
op = "crop"
x = 100
y = 80
width = 64
height = 48
frames = [0, 4]
[[steps]]
op = "generative.test_flicker_noise"
x = 2
y = 2
width = 60
height = 44
amplitude = 40.0
"""
STEADY = (
    NOISY.replace(b"generative.test_flicker_noise", b"generative.inpaint_telea")
    .replace(b"amplitude = 40.0", b"radius = 3.0")
    .replace(b"width = 60\nheight = 44", b"width = 12\nheight = 12")
)


@pytest.fixture(scope="module", autouse=True)
def noisy_model() -> Iterator[None]:
    """A deliberately flickering generative step for the tests: it fills a box with noise that
    depends on the frame's content (so each frame gets different noise), as an unsteady model
    would."""

    @operation(
        name=NOISY_OP,
        version="1",
        category="inpaint",
        swgit_class="advanced",
        summary="Test only: fills a box with frame-dependent noise.",
        description="Test only.",
        references=(),
        params=(*box_params(), Param("amplitude", "float", "Noise level.", "levels", 0.0, 255)),
        effect="inferred",
        lane="generative",
    )
    def noise(
        image: Image, *, x: int, y: int, width: int, height: int, amplitude: float = 10.0
    ) -> Image:
        seed = int.from_bytes(hashlib.sha256(image.tobytes()).digest()[:8], "little")
        rng = np.random.default_rng(seed)
        out = image.astype(np.float64)
        box = out[y : y + height, x : x + width]
        box += rng.uniform(-amplitude, amplitude, box.shape)
        return np.clip(np.rint(out), 0, 255).astype(image.dtype)

    yield
    registered("generative").pop(NOISY_OP)


def _policy(tmp: Path, extra: str) -> Path:
    text = default_policy_path().read_text()
    marker = 'label = "INFERRED - NOT FOR IDENTIFICATION"\n'
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "policy.toml"
    path.write_text(text.replace(marker, marker + extra))
    return path


def _case(tmp: Path, signer: Signer, media: Path, extra: str = "") -> Case:
    case = init_case(
        tmp / "case",
        case_id="FL-1",
        title="flicker",
        policy_path=_policy(tmp, extra) if extra else None,
        signer=signer,
        now=NOW,
        profile="investigative",
    )
    ingest(case, [media / "cctv.mp4"], signer=signer, now=NOW)
    return case


def _run(case: Case, signer: Signer, text: bytes) -> None:
    run_recipe(case, "E1", parse_recipe(text, where="t.toml"), signer=signer, now=NOW)


def _clip() -> list[NDArray[np.uint8]]:
    from skimage import data

    image = data.coffee()[100:220, 150:310]
    return [np.ascontiguousarray(np.roll(image, (k, 2 * k), axis=(0, 1))) for k in range(5)]


def _measure(noise: int, *, scale: int = 2) -> dict[str, float]:
    meter = FlickerMeter()
    rng = np.random.default_rng(7)
    for k, frame in enumerate(_clip()):
        up = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        if noise:
            up = np.clip(up + rng.integers(-noise, noise + 1, up.shape), 0, 255).astype(np.uint8)
        meter.add(k, frame, up)
    figure = meter.record()
    assert figure is not None
    return figure


# -- the measure ---------------------------------------------------------------------------


def test_a_steady_output_scores_near_one_and_a_flickering_one_far_above() -> None:
    steady = _measure(0)
    noisy = _measure(12)
    assert steady["pairs"] == 4
    assert 0.8 < steady["flicker_factor"] < 1.25
    assert noisy["flicker_factor"] > 10
    assert noisy["warping_error_input"] == steady["warping_error_input"]
    assert 0.8 < steady["valid_fraction"] <= 1.0


def test_the_figure_is_bit_identical_on_one_and_two_opencv_threads() -> None:
    before = cv2.getNumThreads()
    try:
        cv2.setNumThreads(1)
        one = _measure(12)
        cv2.setNumThreads(2)
        two = _measure(12)
    finally:
        cv2.setNumThreads(before)
    assert one == two


def test_identical_still_frames_give_exactly_one_and_gaps_make_no_pair() -> None:
    meter = FlickerMeter()
    frame = _clip()[0]
    for k in (0, 1, 2):
        meter.add(k, frame, frame)
    figure = meter.record()
    assert figure is not None
    assert figure["flicker_factor"] == 1.0
    gapped = FlickerMeter()
    gapped.add(0, frame, frame)
    gapped.add(5, frame, frame)
    assert gapped.record() is None


def test_judge_warns_or_refuses_above_the_bound() -> None:
    figure = {"flicker_factor": 3.5}
    assert judge_flicker(figure, max_flicker=4.0, action="refuse", where="s") == []
    (warning,) = judge_flicker(figure, max_flicker=2.0, action="warn", where="R1 step 2")
    assert "R1 step 2: flicker factor 3.500 is above the policy's max_flicker 2" in warning
    with pytest.raises(PolicyError, match="nothing was recorded"):
        judge_flicker(figure, max_flicker=2.0, action="refuse", where="s")


# -- the policy key ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("max_flicker = 0.5\n", r"max_flicker is 0\.5; it must be a finite number of at least 1"),
        ("max_flicker = nan\n", r"max_flicker is nan"),
        ("max_flicker = inf\n", r"max_flicker is inf"),
        ('max_flicker = "2"\n', r"generative\.max_flicker must be a number"),
        ('max_flicker = 2.0\nflicker_action = "maybe"\n', r"flicker_action is 'maybe'"),
        ('flicker_action = "warn"\n', r"flicker_action is set but .*max_flicker is not"),
    ],
)
def test_bad_flicker_bounds_fail_closed(tmp_path: Path, extra: str, message: str) -> None:
    raw = _policy(tmp_path, extra).read_bytes()
    with pytest.raises(PolicyError, match=message):
        parse_policy(raw, where="p.toml")


def test_a_good_bound_parses_and_is_absent_by_default(tmp_path: Path) -> None:
    policy = parse_policy(_policy(tmp_path, "max_flicker = 2\n").read_bytes(), where="p")
    rules = policy.profile("investigative").generative
    assert (rules.max_flicker, rules.flicker_action) == (2.0, "refuse")
    shipped = parse_policy(default_policy_path().read_bytes(), where="p")
    assert shipped.profile("investigative").generative.max_flicker is None


# -- on a clip -----------------------------------------------------------------------------


def test_a_generative_step_on_a_clip_records_its_flicker_factor(
    tmp_path: Path, signer: Signer, media: Path
) -> None:
    case = _case(tmp_path, signer, media)
    _run(case, signer, NOISY)
    _run(case, signer, STEADY)
    noisy, steady = read_runs(read_entries(case.root))
    flicker = noisy.steps[1]["temporal_consistency"]
    assert flicker["pairs"] == 4
    assert flicker["flicker_factor"] > 5
    calm = steady.steps[1]["temporal_consistency"]
    assert 0.7 < calm["flicker_factor"] < 1.3
    assert "temporal_consistency" not in noisy.steps[0]  # classical steps are not measured
    assert verify_case(case.root, pixels=True).ok
    # Replay measures the figure again: the same; a changed measure on the same environment
    # is not reproduced, although the pixels are bit-exact.
    from forensic.pipeline import flicker as flicker_module
    from forensic.pipeline.replay import replay_run

    verdicts = replay_run(case, noisy, max_abs_difference=1, min_psnr_db=50.0)
    assert [v.verdict for v in verdicts] == ["bit-exact", "bit-exact"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(flicker_module, "EPSILON", 1e-3)
        verdicts = replay_run(case, noisy, max_abs_difference=1, min_psnr_db=50.0)
    assert [v.verdict for v in verdicts] == ["bit-exact", "not reproduced"]
    assert "flicker factor measures" in verdicts[1].detail
    assert "same environment" in verdicts[1].detail
    # The workbench's case overview carries the figure for the run and compare views.
    from tests.test_workbench import _client, _session

    with _client(case, None, read_only=True) as client:
        runs = _session(client).get("/api/case").json()["runs"]
    assert runs[0]["steps"][1]["temporal_consistency"] == flicker
    assert runs[0]["steps"][0]["temporal_consistency"] is None


def test_the_policy_bound_refuses_with_nothing_recorded_or_warns(
    tmp_path: Path, signer: Signer, media: Path
) -> None:
    case = _case(tmp_path / "refuse", signer, media, "max_flicker = 2.0\n")
    journal = (case.root / "journal.jsonl").read_bytes()
    derived = sorted(p.name for p in (case.root / "derived").rglob("*"))
    with pytest.raises(PolicyError, match=r"step 2 \(generative.test_flicker_noise\).*flicker"):
        _run(case, signer, NOISY)
    assert (case.root / "journal.jsonl").read_bytes() == journal
    assert sorted(p.name for p in (case.root / "derived").rglob("*")) == derived
    _run(case, signer, STEADY)  # a steady step passes the same bound
    warned = _case(tmp_path / "warn", signer, media, 'max_flicker = 2.0\nflicker_action = "warn"\n')
    _run(warned, signer, NOISY)
    (run,) = read_runs(read_entries(warned.root))
    assert any("above the policy's max_flicker 2" in w for w in run.steps[1]["warnings"])
    assert any("max_flicker" in w for w in run["warnings"])


@pytest.mark.slow
def test_the_flicker_factor_is_in_the_report_text(
    tmp_path: Path, signer: Signer, media: Path, other_signer: Signer
) -> None:
    from forensic.case import enrol_examiner
    from forensic.cosign import cosign
    from forensic.keys import create_key, public_pem, unlock
    from forensic.pki import bind, init_pki
    from forensic.report import issue_report
    from tests.conftest import PASSPHRASE
    from tests.test_report import tool

    pdftotext = tool("pdftotext")
    folder = tmp_path / "keys"
    create_key(folder, name="Report Examiner", passphrase=PASSPHRASE, now=NOW)
    examiner = unlock(folder, PASSPHRASE)
    report_signer = init_pki(folder, examiner, passphrase=PASSPHRASE, lab="Test Lab", now=NOW)
    case = _case(tmp_path, examiner, media)
    _run(case, examiner, NOISY)
    bind(case, examiner, report_signer, now=NOW)
    enrol_examiner(
        case, public_pem(other_signer.public_key), name=other_signer.name, signer=examiner, now=NOW
    )
    cosign(case, "R1.2", signer=other_signer, now=NOW)
    out = tmp_path / "report.pdf"
    issue_report(case, out=out, signer=examiner, report_signer=report_signer, now=NOW)
    text = subprocess.run(
        [pdftotext, "-layout", str(out), "-"], capture_output=True, check=True, text=True
    ).stdout
    (run,) = read_runs(read_entries(case.root))
    factor = run.steps[1]["temporal_consistency"]["flicker_factor"]
    assert "Flicker factor" in text
    assert f"{factor:.3f}" in text
