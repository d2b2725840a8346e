"""Running a recipe: plan it, then hand it to the still or the video pipeline."""

from __future__ import annotations

from datetime import datetime

from forensic.case import Case
from forensic.keys import Signer
from forensic.pipeline.steps import CancelHook, ProgressHook, RunSummary, plan_run
from forensic.pipeline.still import run_still
from forensic.pipeline.video import run_video
from forensic.recipe import Recipe


def run_recipe(
    case: Case,
    source_ref: str,
    recipe: Recipe,
    *,
    signer: Signer,
    now: datetime,
    name: str | None = None,
    keep_intermediates: bool = False,
    workers: int | None = None,
    progress: ProgressHook | None = None,
    cancel: CancelHook | None = None,
) -> RunSummary:
    """Validate, compute, store and journal one run of ``recipe`` on ``source_ref`` (an exhibit
    ``E1`` or a still run's output ``R2``). The first problem of the plan is raised before any
    pixel is read; a failure or a cancellation records nothing."""
    plan = plan_run(case, source_ref, recipe)
    plan.raise_first()
    if plan.indices is None:
        return run_still(
            case,
            plan,
            signer=signer,
            now=now,
            name=name,
            keep_intermediates=keep_intermediates,
            cancel=cancel,
        )
    return run_video(
        case,
        plan,
        signer=signer,
        now=now,
        name=name,
        keep_intermediates=keep_intermediates,
        workers=workers,
        progress=progress,
        cancel=cancel,
    )
