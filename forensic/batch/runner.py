"""The batch runner: many jobs over Dask workers, one signed record per case as if one process
had done the work.

Roles:

* **workers** (Dask worker processes: a local cluster sized to the machine by default, or an
  existing cluster at ``--scheduler tcp://HOST:PORT``) compute: ingest's copy, hashing and
  decoding (`api.prepare_ingest`), a still run, or one part of a video run cut at safe points
  (`api.compute_run_part`). They read and write the case only through its store (a shared
  folder for now) and never see a key;
* **this process** holds the signing key and records, in manifest order whatever order the
  workers finish in: first every new exhibit (``evidence.ingest``), then every run
  (``run.step`` entries and ``run``), through the same code as ``forensic ingest`` and
  ``forensic enhance`` (`api.commit_ingest`, `api.record_run`). Run IDs, entries and output
  files are therefore those of a one-process sequence of the same commands.

Resuming: an exhibit is recognised by its SHA-256 (a file already in the case is not copied
again), a run by its recipe's SHA-256, its input and its range (`api.recorded_runs_like`), so a
restarted batch skips what is recorded and never records anything twice. Failures: a worker that
dies has its task rerun elsewhere by Dask; an unexpected exception is retried (``RETRIES``);
a job whose problem is a `ForensicError` (bad input, refused by the policy...) fails at once
with its reason and records nothing (its staged files are removed); the other jobs go on.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from forensic import api
from forensic.batch.manifest import Job
from forensic.errors import ForensicError, InputError
from forensic.keys import Signer

#: Reruns of a task that raised something unexpected (an OSError on a shared folder...). A
#: `ForensicError` is returned as a value instead, never retried: it would fail again.
RETRIES = 2
#: Parts computed ahead of the recording, per worker (bounds the memory results hold).
AHEAD_PER_WORKER = 3
#: Frames per part of a video run (see `forensic.pipeline.parts.DEFAULT_PART_FRAMES`).
DEFAULT_PART_FRAMES = 64


@dataclass
class JobOutcome:
    """What became of one job: ``recorded``, ``skipped`` (already recorded) or ``failed``."""

    job: Job
    status: str
    exhibit: str | None = None
    ingested: bool = False  # a new evidence.ingest entry by this batch
    run: str | None = None
    frames: int | None = None
    parts: int = 0
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "job": self.job.number,
            "where": self.job.where,
            "case": str(self.job.case_dir),
            "exhibit": self.exhibit,
            "ingested": self.ingested,
            "recipe": self.job.recipe.name,
            "status": self.status,
            "run": self.run,
            "frames": self.frames,
            "parts": self.parts,
            "reason": self.reason,
        }


@dataclass
class BatchResult:
    outcomes: list[JobOutcome]
    scheduler: str
    workers: int
    seconds: float

    @property
    def ok(self) -> bool:
        return all(o.status != "failed" for o in self.outcomes)

    def counts(self) -> dict[str, int]:
        out = {"recorded": 0, "skipped": 0, "failed": 0}
        for o in self.outcomes:
            out[o.status] += 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "scheduler": self.scheduler,
            "workers": self.workers,
            "seconds": round(self.seconds, 3),
            "counts": self.counts(),
            "jobs": [o.as_dict() for o in self.outcomes],
        }


@dataclass(frozen=True)
class Progress:
    """Where the batch is: parts computed and recorded, jobs settled (``outcome`` is the job
    that just settled, if any)."""

    parts_done: int
    parts: int
    jobs_done: int
    jobs: int
    current: str
    outcome: JobOutcome | None = None


@dataclass(frozen=True)
class _Failed:
    """A `ForensicError` raised on a worker, returned as a value (exceptions with keyword
    arguments do not all survive pickling, and these must not be retried)."""

    kind: str
    message: str
    hint: str | None


def _guard(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except ForensicError as exc:
        return _Failed(type(exc).__name__, exc.message, exc.hint)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _prepare_task(case: Any, path: Path, known: frozenset[str]) -> Any:
    """Worker: the file's SHA-256 first (a file already in the case is not copied again),
    else ingest's phase 1 (copy into the case's evidence folder, hash, decode)."""

    def work() -> Any:
        try:
            sha = _sha256_file(path)
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {exc.strerror}") from None
        return sha if sha in known else api.prepare_ingest(case, path)

    return _guard(work)


def _part_task(case: Any, plan: Any, indices: list[int] | None, first: bool) -> Any:
    """Worker: a still run, or one part of a video run, computed (never recorded)."""
    return _guard(api.compute_run_part, case, plan, indices, first=first)


def _discard(futures: Any) -> None:
    """Copies prepared for jobs that were never committed (an interrupted batch): removed, so
    that no temporary file is left in the evidence folder (a task still running when
    cancelled may leave one: `forensic case recover --remove-temporaries` lists and removes
    those)."""
    for future in futures:
        if not future.done():
            future.cancel()
            continue
        with contextlib.suppress(Exception):
            result = future.result()
            temp = getattr(result, "temp", None)
            if isinstance(temp, Path):
                temp.unlink(missing_ok=True)


class JobFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _reason(failed: _Failed) -> str:
    return failed.message + (f" ({failed.hint})" if failed.hint else "")


def _value(future: Any) -> Any:
    """A task's result; `JobFailed` with the reason when it failed for good."""
    try:
        result = future.result()
    except Exception as exc:  # retried already (or the worker died too often): report it
        raise JobFailed(f"{type(exc).__name__}: {exc}") from None
    if isinstance(result, _Failed):
        raise JobFailed(_reason(result))
    return result


def default_workers() -> int:
    """Worker processes for the embedded cluster: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def connect(
    scheduler: str | None = None, workers: int | None = None, *, timeout: str = "20s"
) -> Iterator[Any]:
    """A Dask client: of the cluster at ``scheduler`` (``tcp://HOST:PORT``, given ``timeout``
    to answer), or of a local cluster of ``workers`` processes (default: one per core), closed
    on the way out."""
    import logging

    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            # distributed's constructors carry no annotations (hence the ignores below).
            client = Client(scheduler, timeout=timeout)  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputError(
                f"--scheduler {scheduler}: cannot connect ({exc})",
                hint="give the address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786",
            ) from None
        with client:
            yield client
        return
    n = workers or default_workers()
    with (
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",  # nobody else may submit work (Dask's messages are pickles)
            # No dashboard, and the scheduler's small HTTP server on a free port rather than
            # 8787, which another cluster may hold (Dask would warn and move).
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": ":0"},
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,  # type: ignore[no-untyped-call]
    ):
        yield client


def _described(client: Any) -> tuple[str, int]:
    info = client.scheduler_info(n_workers=-1)
    return str(info.get("address", "?")), len(info.get("workers", {}))


@dataclass
class _Planned:
    job: Job
    case: Any
    plan: Any
    parts: list[list[int] | None]
    futures: list[Any] = field(default_factory=list)


class _Ahead:
    """Parts submitted in manifest order, at most ``limit`` ahead of the one being recorded."""

    def __init__(self, client: Any, planned: list[_Planned], limit: int) -> None:
        self.client = client
        self.queue: deque[tuple[_Planned, int]] = deque(
            (p, k) for p in planned for k in range(len(p.parts))
        )
        self.limit = limit
        self.outstanding = 0

    def fill(self) -> None:
        while self.queue and self.outstanding < self.limit:
            p, k = self.queue.popleft()
            p.futures.append(
                self.client.submit(
                    _part_task,
                    p.case,
                    p.plan,
                    p.parts[k],
                    k == 0,
                    key=f"forensic-part-{p.job.number}-{k}-{uuid.uuid4().hex}",
                    pure=False,
                    retries=RETRIES,
                )
            )
            self.outstanding += 1

    def take(self, p: _Planned, k: int) -> Any:
        """The result of part ``k`` of ``p`` (submitting more as this one is taken)."""
        self.fill()
        future = p.futures[k]
        try:
            return _value(future)
        finally:
            self.outstanding -= 1
            future.release()
            self.fill()

    def drop(self, p: _Planned, taken: int) -> None:
        """A failed job: cancel its other parts, never submit the rest."""
        for future in p.futures[taken:]:
            future.cancel()
            self.outstanding -= 1
        left = [(q, k) for q, k in self.queue if q is not p]
        self.queue = deque(left)


def run_batch(
    jobs: list[Job],
    *,
    signer: Signer,
    clock: Callable[[], datetime],
    client: Any,
    part_frames: int = DEFAULT_PART_FRAMES,
    progress: Callable[[Progress], None] | None = None,
) -> BatchResult:
    """Run ``jobs`` on the Dask ``client``'s workers and record them here (see the module
    docstring). ``clock`` gives each record's time; never raises for one job's failure."""
    started = time.perf_counter()
    address, nworkers = _described(client)
    outcomes = {job.number: JobOutcome(job, "failed") for job in jobs}
    settled = 0
    parts_total = len(jobs)
    parts_done = 0

    def report(current: str, outcome: JobOutcome | None = None) -> None:
        if progress is not None:
            progress(Progress(parts_done, parts_total, settled, len(jobs), current, outcome))

    def fail(job: Job, reason: str) -> None:
        nonlocal settled
        outcome = outcomes[job.number]
        outcome.status, outcome.reason = "failed", reason
        settled += 1
        report(job.where, outcome)

    # 1. Cases, then every file's ingest phase 1 on the workers at once.
    cases: dict[Path, Any] = {}
    case_errors: dict[Path, str] = {}
    for job in jobs:
        if job.case_dir not in cases and job.case_dir not in case_errors:
            try:
                cases[job.case_dir] = api.open_case(job.case_dir)
            except ForensicError as exc:
                case_errors[job.case_dir] = exc.message
    known = {d: frozenset(x.sha256 for x in api.exhibits(c)) for d, c in cases.items()}
    prepared: dict[int, Any] = {}
    for job in jobs:
        if job.exhibit_file is not None and job.case_dir in cases:
            prepared[job.number] = client.submit(
                _prepare_task,
                cases[job.case_dir],
                job.exhibit_file,
                known[job.case_dir],
                key=f"forensic-ingest-{job.number}-{uuid.uuid4().hex}",
                pure=False,
                retries=RETRIES,
            )
    # 2. Ingest phase 2 here, in manifest order.
    live: list[tuple[Job, str]] = []
    try:
        for job in jobs:
            if job.case_dir in case_errors:
                fail(job, case_errors[job.case_dir])
                continue
            case = cases[job.case_dir]
            if job.exhibit_file is None:
                assert job.source_ref is not None
                live.append((job, job.source_ref))
                continue
            try:
                result = _value(prepared[job.number])
            except JobFailed as exc:
                del prepared[job.number]  # the worker removed its copy
                fail(job, exc.reason)
                continue
            del prepared[job.number]  # committed below, which removes the copy whatever happens
            if isinstance(result, str):  # already in the case: its exhibit, no entry
                match = [x.exhibit_id for x in api.exhibits(case) if x.sha256 == result]
                outcomes[job.number].exhibit = match[0]
                live.append((job, match[0]))
                continue
            try:
                (ingested,) = api.commit_ingest(case, [result], signer=signer, now=clock())
            except ForensicError as exc:
                fail(job, exc.message)
                continue
            outcomes[job.number].exhibit = ingested.exhibit
            outcomes[job.number].ingested = ingested.new
            live.append((job, ingested.exhibit))
            report(f"{job.where}: ingested {ingested.exhibit}")
    finally:
        _discard(prepared.values())
    # 3. Plans (every problem before any pixel), skipping what is recorded already.
    planned: list[_Planned] = []
    seen: dict[tuple[Any, ...], int] = {}
    for job, ref in live:
        case = cases[job.case_dir]
        outcome = outcomes[job.number]
        outcome.exhibit = outcome.exhibit or ref
        try:
            if any(s.track is not None for s in job.recipe.steps):
                raise InputError(
                    "recipes with tracked boxes are not run in batch (tracking reads the whole "
                    "clip first)",
                    hint="run this one with forensic enhance",
                )
            plan = api.plan_run(case, ref, job.recipe)
            plan.raise_first()
            if plan.indices is not None and any(
                s.lane == "generative" and getattr(s.operation(), "temporal", "frame") == "frame"
                for s in plan.recipe.steps
            ):
                raise InputError(
                    "video runs with a generative per-frame step are not run in batch (their "
                    "flicker figure is measured over consecutive frames of the whole clip)",
                    hint="run this one with forensic enhance",
                )
        except ForensicError as exc:
            fail(job, exc.message)
            continue
        same = (
            job.case_dir.resolve(),
            plan.source.exhibit_id,
            plan.source.source_run,
            plan.recipe.sha256,
            repr(plan.recipe.range_record),
        )
        earlier = api.recorded_runs_like(case, plan)
        if earlier or same in seen:
            outcome.status = "skipped"
            outcome.run = earlier[0].run_id if earlier else None
            outcome.reason = (
                f"already recorded as {earlier[0].run_id}"
                if earlier
                else f"the same run as job {seen[same]}"
            )
            settled += 1
            report(job.where, outcome)
            continue
        seen[same] = job.number
        parts: list[list[int] | None] = (
            [None] if plan.indices is None else list(api.split_run(plan, part_frames))
        )
        planned.append(_Planned(job, case, plan, parts))
    parts_total = sum(len(p.parts) for p in planned) + settled
    parts_done = settled
    # 4. Compute on the workers; record here, job after job in manifest order.
    ahead = _Ahead(client, planned, max(2, AHEAD_PER_WORKER * max(1, nworkers)))
    ahead.fill()
    for p in planned:
        outcome = outcomes[p.job.number]
        outcome.parts = len(p.parts)
        taken = 0

        def results(p: _Planned = p) -> Iterator[Any]:
            nonlocal taken, parts_done
            for k in range(len(p.parts)):
                taken += 1  # asked for: settled, whatever comes of it
                value = ahead.take(p, k)
                parts_done += 1
                report(f"{p.job.where}: part {k + 1} of {len(p.parts)}")
                yield value

        try:
            computed: Any = next(results()) if p.plan.indices is None else results()
            summary = api.record_run(
                p.case, p.plan, computed, signer=signer, now=clock(), name=p.job.name
            )
        except JobFailed as exc:
            ahead.drop(p, taken)
            fail(p.job, exc.reason)
            continue
        except ForensicError as exc:
            ahead.drop(p, taken)
            fail(p.job, exc.message)
            continue
        outcome.status, outcome.run = "recorded", summary.run_id
        outcome.frames = len(p.plan.indices) if p.plan.indices is not None else 1
        settled += 1
        report(p.job.where, outcome)
    return BatchResult(
        [outcomes[j.number] for j in jobs], address, nworkers, time.perf_counter() - started
    )
