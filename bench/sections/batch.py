"""Section 10: `forensic batch` on 1, 2 and 4 Dask worker processes, and its serial part.

The workload: clips (FFV1, 320x240, 48 frames; quick: 160x120, 24 frames) each ingested and
enhanced with the shipped ``dark-noisy`` recipe (non-local means, levels, CLAHE) into fresh
cases, as one batch. Each worker count gets its own local cluster, started before the clock
(a cluster is started once per batch, not per job); the batches run in turn, round after
round, and each figure is the median of the rounds. The baseline is the same jobs in one
process through `api.ingest` and `api.run_recipe`, with its own per-frame thread pool (the
default, up to 4 threads), timed in the same rounds.

The serial part is what only the key holder does, per job: storing and journaling a run
(`api.record_run` from results already computed: the FFV1 encoding of the output and the
provenance map, the per-frame JSON, staging, the signatures and the journal append) and one
bare journal append (sign, chain, checkpoint). With ``c`` the compute time of a job on one
worker and ``s`` its serial part, a cluster cannot record more than ``1 / s`` jobs per second
whatever its size; the row says how many workers that takes (``c / s``).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.casework import examiner, new_case, now
from bench.harness import INFO, Context, Row, fmt_seconds
from forensic import api
from forensic.batch import connect, load_manifest, run_batch
from forensic.videoio import FFV1Writer

SECTION = "10"
WORKERS = (1, 2, 4)


def _clip(path: Path, seed: int, frames: int, size: tuple[int, int]) -> Path:
    rng = np.random.default_rng(seed)
    h, w = size
    y, x = np.mgrid[0:h, 0:w]
    with FFV1Writer(path, rate=25) as writer:
        for t in range(frames):
            scene = np.stack([x + 2 * t, y, (x + y) // 2], axis=-1).astype(np.float64) * 0.3
            noisy = scene + rng.normal(0, 8, scene.shape)
            writer.write(np.clip(noisy, 0, 255).astype(np.uint8))
    return path


def _manifest(ctx: Context, label: str, clips: list[Path]) -> Path:
    """A fresh case and a manifest of one job per clip."""
    case, _ = new_case(ctx, label)
    folder = case.root.parent
    lines = ["case,exhibit,recipe,frames"]
    lines += [f"{case.root.name},{clip},dark-noisy,all" for clip in clips]
    path = folder / f"{label}.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(ctx: Context) -> list[Row]:
    ex = examiner(ctx)
    jobs, frames, size = (4, 24, (120, 160)) if ctx.quick else (8, 48, (240, 320))
    media = ctx.scratch / "batch-media"
    media.mkdir(exist_ok=True)
    clips = [_clip(media / f"cam{k}.mkv", ctx.seed + k, frames, size) for k in range(jobs)]
    rounds = 2 if ctx.quick else 3
    seconds: dict[str, list[float]] = {"one process": [], **{f"{n}": [] for n in WORKERS}}
    clusters: dict[int, Any] = {}
    stack = []
    try:
        for n in WORKERS:
            cm = connect(workers=n)
            clusters[n] = cm.__enter__()
            stack.append(cm)
        for r in range(rounds):
            case, _ = new_case(ctx, f"single-{r}")
            started = time.perf_counter()
            done = api.ingest(case, clips, signer=ex.signer, now=now())
            for item in done:
                api.run_recipe(
                    case,
                    item.exhibit,
                    api.recipe_with_range(api.load_recipe("dark-noisy"), frames="all"),
                    signer=ex.signer,
                    now=now(),
                )
            seconds["one process"].append(time.perf_counter() - started)
            for n in WORKERS:
                manifest = _manifest(ctx, f"batch-{n}-{r}", clips)
                started = time.perf_counter()
                result = run_batch(
                    load_manifest(manifest), signer=ex.signer, clock=now, client=clusters[n]
                )
                seconds[f"{n}"].append(time.perf_counter() - started)
                if result.counts()["recorded"] != jobs:
                    raise RuntimeError(f"bench batch on {n} workers: {result.as_dict()}")
            ctx.log(
                f"batch round {r + 1}/{rounds}: "
                + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in seconds.items())
            )
    finally:
        for cm in reversed(stack):
            cm.__exit__(None, None, None)
    median = {k: statistics.median(v) for k, v in seconds.items()}
    serial, append, compute = _serial_part(ctx, clips[0])
    rows = []
    base = median["one process"]
    rows.append(
        Row(
            SECTION,
            f"{jobs} clip jobs ({frames} frames {size[1]}x{size[0]}, dark-noisy) in one process",
            f"{fmt_seconds(base)} ({jobs / base:.2f} jobs/s)",
            "-",
            INFO,
            details={"seconds": seconds["one process"]},
        )
    )
    previous = None
    for n in WORKERS:
        t = median[f"{n}"]
        figure = f"{fmt_seconds(t)} ({jobs / t:.2f} jobs/s); {base / t:.2f}x one process"
        if previous is not None:
            p_n, p_t = previous
            per_added = (p_t / t - 1) / (n - p_n)
            figure += (
                f"; {p_t / t:.2f}x {p_n} worker{'s' if p_n > 1 else ''} "
                f"({per_added:+.0%} per added worker)"
            )
        rows.append(
            Row(
                SECTION,
                f"the same as a batch on {n} worker process{'es' if n > 1 else ''}",
                figure,
                "-",
                INFO,
                note="rounds vary with the load other processes put on the machine's cores: "
                "see the seconds of each round in the JSON",
                details={"seconds": seconds[f"{n}"]},
            )
        )
        previous = (n, t)
    rows.append(
        Row(
            SECTION,
            "serial part per clip job: record a computed run (FFV1 encode, JSON, sign, append)",
            f"{fmt_seconds(serial)} per job, against {fmt_seconds(compute)} to compute it on one "
            f"worker: at most {1 / serial:.1f} jobs/s recorded, reached with about "
            f"{compute / serial:.0f} workers",
            "-",
            INFO,
        )
    )
    rows.append(
        Row(
            SECTION,
            "one signed entry on its own (run.supersede: read the journal, Ed25519, chain, "
            "checkpoint, fsyncs)",
            f"{fmt_seconds(append)} per entry",
            "-",
            INFO,
        )
    )
    return rows


def _serial_part(ctx: Context, clip: Path) -> tuple[float, float, float]:
    """Median seconds of recording one computed clip run, of one journal append, and of
    computing the run (in this process, one part, one thread)."""
    ex = examiner(ctx)
    recipe = api.recipe_with_range(api.load_recipe("dark-noisy"), frames="all")
    record, compute, appends = [], [], []
    for _ in range(3):
        case, _ = new_case(ctx, "serial")
        (item,) = api.ingest(case, [clip], signer=ex.signer, now=now())
        plan = api.plan_run(case, item.exhibit, recipe)
        started = time.perf_counter()
        part = api.compute_run_part(case, plan, list(plan.indices or []), first=True)
        compute.append(time.perf_counter() - started)
        started = time.perf_counter()
        summary = api.record_run(case, plan, [part], signer=ex.signer, now=now())
        record.append(time.perf_counter() - started)
        # One more signed entry on its own: the journal's share of the serial part.
        started = time.perf_counter()
        api.supersede_run(case, summary.run_id, reason="bench", signer=ex.signer, now=now())
        appends.append(time.perf_counter() - started)
    return statistics.median(record), statistics.median(appends), statistics.median(compute)
