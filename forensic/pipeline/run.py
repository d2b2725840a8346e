"""Running a recipe: plan it, then hand it to the still or the video pipeline."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Any

from forensic.case import Case
from forensic.errors import InputError
from forensic.journal import Entry
from forensic.keys import Signer
from forensic.lanes import on_device
from forensic.pipeline.sources import find_source
from forensic.pipeline.steps import CancelHook, ProgressHook, RunPlan, RunSummary, plan_run
from forensic.pipeline.still import run_still
from forensic.pipeline.tracking import track_steps
from forensic.pipeline.video import run_video
from forensic.recipe import Recipe
from forensic.records import RUN_SUPERSEDE, RunRecord, find_run, read_runs

#: Longest run name and supersede reason: each is printed in one cell of a report's table.
MAX_RUN_NAME, MAX_REASON = 200, 2000
CONTROL_CODES = re.compile(r"[\x00-\x1f\x7f]")


def check_run_name(name: str) -> None:
    """Refuse a run name (``--name``) that a report's table cell cannot hold on one page."""
    if len(name) > MAX_RUN_NAME or CONTROL_CODES.search(name):
        raise InputError(
            f"the run name (--name) must be at most {MAX_RUN_NAME} characters of text, without "
            f"control codes; it has {len(name):,} characters",
            hint="give the run a short name; the recipe's description says what it does",
        )


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
    again: bool = False,
    device: str = "auto",
    tile_progress: Callable[[int, int], None] | None = None,
) -> RunSummary:
    """Validate, compute, store and journal one run of ``recipe`` on ``source_ref`` (an exhibit
    ``E1`` or a still run's output ``R2``). The first problem of the plan is raised before any
    pixel is read; a failure or a cancellation records nothing. A run identical to a recorded
    one (same recipe bytes, same input, same range) is refused unless ``again``.
    Generative steps run on ``device`` (``auto``, ``cpu`` or ``cuda``; the profile's
    ``generative.devices`` must allow it), reporting each network pass's tiles to
    ``tile_progress``; the device is recorded in each generative step's ``model``."""
    if name is not None:
        check_run_name(name)
    if any(s.track is not None for s in recipe.steps):
        # Tracking reads pixels, so it runs after a first plan found nothing wrong, and the
        # tracked boxes (keyframes) are then planned and checked like boxes given by hand.
        plan_run(case, source_ref, recipe, device=device).raise_first()
        recipe = track_steps(case, find_source(case, source_ref), recipe)
    plan = plan_run(case, source_ref, recipe, device=device)
    plan.raise_first()
    if not again:
        earlier = same_runs(case.entries(), plan)
        if earlier:
            names = ", ".join(
                r.run_id + (" (superseded)" if r.is_superseded else "") for r in earlier
            )
            raise InputError(
                f"recipe {plan.recipe.name!r} (SHA-256 {plan.recipe.sha256[:12]}…) was already "
                f"run on {source_ref.upper()} with the same range: {names}; a second identical "
                "run adds nothing to the record",
                hint="pass --again to run it once more anyway",
            )
    # Classical-only runs never load the generative lane (or torch): no device context.
    context: AbstractContextManager[Any] = (
        nullcontext() if plan.device is None else on_device(plan.device, tile_progress)
    )
    with context:
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


def same_runs(entries: Sequence[Entry], plan: RunPlan) -> list[RunRecord]:
    """Recorded runs of the same recipe bytes on the same input with the same range."""
    source = plan.source
    wanted_source = None if source.source_run is None else source.source_run
    return [
        r
        for r in read_runs(entries)
        if r.recipe_sha256 == plan.recipe.sha256
        and r.exhibit_id == source.exhibit_id
        and r.source_run == wanted_source
        and r.get("range") == plan.recipe.range_record
    ]


def supersede_run(
    case: Case,
    run_ref: str,
    *,
    reason: str,
    signer: Signer,
    now: datetime,
    by: str | None = None,
) -> RunRecord:
    """Journal that run ``run_ref`` is superseded (an exploratory look, a mistake, replaced by
    run ``by``), with the examiner's ``reason``. The run and its files stay in the case and in
    verification; reports list it in one short table instead of in full."""
    text = " ".join(reason.split())
    if not text:
        raise InputError(
            "--reason is empty", hint='say why, e.g. --reason "exploratory look at frame 20"'
        )
    if len(text) > MAX_REASON or CONTROL_CODES.search(text):
        # Reports print it in a table cell: a longer one cannot be laid out on a page.
        raise InputError(
            f"--reason must be at most {MAX_REASON:,} characters of text, without control codes "
            f"(it has {len(text):,})",
            hint='say why in a sentence, e.g. --reason "exploratory look at frame 20"',
        )
    with case.writer(signer) as writer:
        target = find_run(writer.entries, run_ref, case_id=case.case_id)
        if target.is_superseded:
            assert target.superseded is not None
            raise InputError(
                f"run {target.run_id} is already superseded ({target.superseded.get('reason')})"
            )
        payload: dict[str, object] = {"run": target.run_id, "reason": text}
        if by is not None:
            replacement = find_run(writer.entries, by, case_id=case.case_id)
            if replacement.run_id == target.run_id:
                raise InputError(f"run {target.run_id} cannot supersede itself")
            payload["by"] = replacement.run_id
        writer.append(RUN_SUPERSEDE.name, payload, now=now)
        return next(r for r in read_runs(writer.entries) if r.run_id == target.run_id)
