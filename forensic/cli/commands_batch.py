"""``forensic batch MANIFEST``: many jobs over Dask workers (`forensic.batch`), with a progress
bar over all jobs, a summary table and ``--json``. Its rendering lives here, beside it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from forensic.cli.app import JsonFlag, KeyDir, app, ask_passphrase
from forensic.cli.render import console, emit_json


@app.command("batch")
def batch_cmd(
    manifest: Annotated[
        Path,
        typer.Argument(
            help="Jobs: a TOML file of [[jobs]] tables or a CSV file with a header row "
            "(case, exhibit, recipe, and optionally frames, seconds, name).",
            show_default=False,
        ),
    ],
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="A running Dask scheduler, tcp://HOST:PORT (default: a local cluster of "
            "worker processes started for this batch).",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            max=256,
            help="Worker processes of the local cluster (default: one per core).",
            show_default=False,
        ),
    ] = None,
    part_frames: Annotated[
        int,
        typer.Option(
            "--part-frames",
            min=1,
            max=100_000,
            help="Frames per part of a video run spread over workers. Results do not depend on it.",
        ),
    ] = 64,
    key_dir: KeyDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Ingest and enhance many exhibits over Dask workers; only this process signs, in manifest
    order. A restarted batch skips what is already recorded. Exit 1 if a job failed."""
    from forensic import api
    from forensic.batch import connect, load_manifest, run_batch

    if scheduler is not None and workers is not None:
        raise typer.BadParameter("give --scheduler or --workers, not both")
    jobs = load_manifest(manifest)
    for case_dir in dict.fromkeys(job.case_dir for job in jobs):
        api.open_case(case_dir)  # a wrong folder fails here, before a cluster starts
    signer = api.unlock_signer(key_dir, ask_passphrase)
    with (
        connect(scheduler, workers) as client,
        _progress(not as_json and sys.stderr.isatty(), len(jobs)) as progress,
    ):
        result = run_batch(
            jobs,
            signer=signer,
            clock=lambda: datetime.now(UTC),
            client=client,
            part_frames=part_frames,
            progress=progress,
        )
    if as_json:
        emit_json(result.as_dict())
    else:
        _summary(result)
    if not result.ok:
        if not as_json:
            failed = result.counts()["failed"]
            sys.stderr.write(f"error: {failed} of {len(jobs)} jobs failed (see the table)\n")
        raise typer.Exit(1)


@contextmanager
def _progress(enabled: bool, jobs: int) -> Iterator[Callable[[Any], None] | None]:
    """One bar over every part of every job, the jobs settled and the one being recorded."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.fields[jobs]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("parts"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("starting", total=None, jobs=f"jobs 0/{jobs}")

        def update(p: Any) -> None:
            bar.update(
                task,
                completed=p.parts_done,
                total=p.parts,
                description=p.current,
                jobs=f"jobs {p.jobs_done}/{p.jobs}",
            )

        yield update


def _summary(result: Any) -> None:
    from rich.table import Table

    workers = f"{result.workers} worker{'s' if result.workers != 1 else ''}"
    table = Table(title=f"Batch on {workers} ({result.scheduler})")
    for column in ("job", "case", "exhibit", "recipe", "status", "run", "frames", "reason"):
        table.add_column(column, overflow="fold")
    style = {"recorded": "green", "skipped": "yellow", "failed": "bold red"}
    for o in result.outcomes:
        table.add_row(
            str(o.job.number),
            o.job.case_dir.name,
            (o.exhibit or o.job.exhibit) + (" (new)" if o.ingested else ""),
            o.job.recipe.name,
            f"[{style[o.status]}]{o.status}[/]",
            o.run or "",
            "" if o.frames is None else str(o.frames),
            o.reason or "",
        )
    out = console()
    out.print(table)
    counts = result.counts()
    out.print(
        f"{counts['recorded']} recorded, {counts['skipped']} skipped, {counts['failed']} failed "
        f"in {result.seconds:.1f} s"
    )
