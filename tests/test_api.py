"""The application API: every problem of a plan at once, cancellation records nothing,
verification reports its checks as they finish."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from forensic import api
from forensic.case import Case
from forensic.errors import InputError, PolicyError
from forensic.ingest import ingest
from forensic.keys import Signer
from forensic.pipeline.steps import Cancelled
from forensic.recipe import parse_recipe

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def image_case(case: Case, signer: Signer, media: Path) -> Case:
    ingest(case, [media / "camera_noisy.png"], signer=signer, now=NOW)
    return case


def _snapshot(case: Case) -> dict[str, bytes]:
    return {
        str(p.relative_to(case.root)): p.read_bytes()
        for p in sorted(case.root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def test_plan_lists_every_problem_before_anything_runs(image_case: Case) -> None:
    recipe = parse_recipe(
        b'[[steps]]\nop = "invert"\nroi = [0, 0, 100000, 10]\n'
        b'[[steps]]\nop = "invert"\nframes = [0, 3]\n',
        where="bad.toml",
    )
    plan = api.plan_run(image_case, "E1", recipe)
    assert not plan.ok
    messages = [p.message for p in plan.problems]
    # The frame range on a still image and the region outside it, both reported at once.
    assert any("frames is only for video" in m for m in messages), messages
    assert any("reaches outside" in m for m in messages), messages
    assert all(isinstance(p, InputError) for p in plan.problems)


def test_plan_of_a_refused_generative_step_names_the_rule(image_case: Case) -> None:
    recipe = parse_recipe(b'[[steps]]\nop = "generative.inpaint_telea"\n', where="gen.toml")
    plan = api.plan_run(image_case, "E1", recipe)
    assert [type(p) for p in plan.problems] == [PolicyError]
    assert "evidence" in plan.problems[0].message


def test_a_good_plan_has_no_problem(image_case: Case) -> None:
    plan = api.plan_run(image_case, "E1", parse_recipe(b'[[steps]]\nop = "invert"\n', where="t"))
    assert plan.ok
    assert plan.indices is None
    assert plan.source.exhibit_id == "E1"


def test_a_cancelled_run_records_nothing(image_case: Case, signer: Signer) -> None:
    before = _snapshot(image_case)
    recipe = parse_recipe(b'[[steps]]\nop = "invert"\n[[steps]]\nop = "invert"\n', where="t")
    asked = []

    def cancel() -> bool:
        asked.append(1)
        return len(asked) > 1  # let the first step start, then cancel

    with pytest.raises(Cancelled, match="nothing was recorded"):
        api.run_recipe(image_case, "E1", recipe, signer=signer, now=NOW, cancel=cancel)
    assert _snapshot(image_case) == before


def test_verify_reports_each_check_as_it_finishes(image_case: Case, signer: Signer) -> None:
    api.run_recipe(
        image_case,
        "E1",
        parse_recipe(b'[[steps]]\nop = "invert"\n', where="t"),
        signer=signer,
        now=NOW,
    )
    seen: list[tuple[int, str]] = []
    verdict = api.verify_case(
        image_case.root, replay=True, progress=lambda c: seen.append((c.number, c.status))
    )
    assert verdict.ok, verdict.failure
    assert seen == [(c.number, "ok") for c in verdict.checks]
    assert len(seen) == 9  # checks 1-8 and the replay


def test_case_overview_lists_runs_and_exhibits(image_case: Case, signer: Signer) -> None:
    summary = api.run_recipe(
        image_case,
        "E1",
        parse_recipe(b'[[steps]]\nop = "invert"\n', where="t"),
        signer=signer,
        now=NOW,
    )
    overview = api.case_overview(image_case)
    assert [x.exhibit_id for x in overview.exhibits] == ["E1"]
    assert [r.run_id for r in overview.runs] == [summary.run_id]
    assert overview.runs[0].output["pixel_sha256"] == summary.output["pixel_sha256"]
    assert overview.reports == []
