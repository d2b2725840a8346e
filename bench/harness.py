"""The benchmark harness: timing statistics, rows, the context a section runs in, and output.

Every timing is the median of at least `MIN_REPEATS` runs after a warm-up, with min and max.
Comparisons are ratios of medians taken side by side in one run: the candidates are timed in
turn, round after round, so that a busy machine slows them alike.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MIN_REPEATS = 5

MET, NOT_MET, PENDING, INFO = "met", "not met", "pending", "info"

#: Environment variables that change numeric libraries' threading.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "OPENCV_FOR_THREADS_NUM",
    "OPENCV_IPP",
)


@dataclass(frozen=True)
class Timing:
    """Seconds per run: the median of ``n`` runs after ``warmup`` untimed ones, with min and max."""

    median: float
    min: float
    max: float
    n: int
    warmup: int

    @classmethod
    def of(cls, seconds: Sequence[float], warmup: int) -> Timing:
        if not seconds:
            raise ValueError("no timings")
        return cls(
            median=float(statistics.median(seconds)),
            min=float(min(seconds)),
            max=float(max(seconds)),
            n=len(seconds),
            warmup=warmup,
        )

    def text(self, unit: str = "auto") -> str:
        """``1.23 s (1.20-1.31, n=5)``."""
        return f"{fmt_seconds(self.median, unit)} ({fmt_range(self, unit)}, n={self.n})"


def fmt_seconds(seconds: float, unit: str = "auto") -> str:
    if unit == "ms" or (unit == "auto" and seconds < 1.0):
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def fmt_range(t: Timing, unit: str = "auto") -> str:
    if unit == "ms" or (unit == "auto" and t.median < 1.0):
        return f"{t.min * 1e3:.1f}-{t.max * 1e3:.1f} ms"
    return f"{t.min:.2f}-{t.max:.2f} s"


def measure(fn: Callable[[], object], *, repeats: int = MIN_REPEATS, warmup: int = 1) -> Timing:
    """Time ``fn`` ``repeats`` times after ``warmup`` untimed calls."""
    return side_by_side({"fn": fn}, repeats=repeats, warmup=warmup)["fn"]


def side_by_side(
    fns: Mapping[str, Callable[[], object]], *, repeats: int = MIN_REPEATS, warmup: int = 1
) -> dict[str, Timing]:
    """Time several candidates in one run, interleaved: warm-up rounds first, then ``repeats``
    rounds, each calling every candidate once (in turn)."""
    if repeats < MIN_REPEATS:
        raise ValueError(f"repeats is {repeats}; at least {MIN_REPEATS} runs are required")
    if warmup < 1:
        raise ValueError("at least one warm-up run is required")
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    seconds: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            seconds[name].append(time.perf_counter() - start)
    return {name: Timing.of(values, warmup) for name, values in seconds.items()}


def rounds(
    fn: Callable[[], Mapping[str, float]], *, repeats: int = MIN_REPEATS, warmup: int = 1
) -> dict[str, Timing]:
    """For measurements that need untimed set-up before each run: ``fn`` does one round (its
    own set-up, then the timed parts side by side) and returns {label: seconds}."""
    if repeats < MIN_REPEATS:
        raise ValueError(f"repeats is {repeats}; at least {MIN_REPEATS} runs are required")
    for _ in range(max(1, warmup)):
        fn()
    seconds: dict[str, list[float]] = {}
    for _ in range(repeats):
        for label, value in fn().items():
            seconds.setdefault(label, []).append(value)
    return {label: Timing.of(values, max(1, warmup)) for label, values in seconds.items()}


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def ratio(ours: Timing, best: Timing) -> float:
    """Median over median (how many times slower ours is)."""
    return ours.median / best.median if best.median > 0 else float("inf")


@dataclass
class Row:
    """One line of the table: what was measured, the figure, the target and whether it holds."""

    section: str
    name: str
    figure: str
    target: str
    status: str
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in (MET, NOT_MET, PENDING, INFO):
            raise ValueError(f"unknown status {self.status!r}")


def verdict(ok: bool) -> str:
    return MET if ok else NOT_MET


def pending(section: str, name: str, why: str, target: str = "") -> Row:
    return Row(section, name, f"pending: {why}", target or "-", PENDING)


@dataclass
class Context:
    """What a section gets: the mode, the repeat count, a seed, a scratch folder and a logger."""

    quick: bool
    scratch: Path
    seed: int = 20261124
    repeats: int = MIN_REPEATS
    gpu: dict[str, Any] = field(default_factory=dict)
    #: Things sections share within one run (an examiner key, say), made once.
    cache: dict[str, Any] = field(default_factory=dict)
    log: Callable[[str], None] = lambda message: print(message, file=sys.stderr, flush=True)

    def size(self, full: tuple[int, int], quick: tuple[int, int]) -> tuple[int, int]:
        """Image (height, width) for this mode."""
        return quick if self.quick else full


#: Section(number, name, title, run); run(ctx) -> list[Row]
@dataclass(frozen=True)
class Section:
    number: int
    name: str
    title: str
    run: Callable[[Context], list[Row]]


# -- the machine -----------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def detect_gpu() -> dict[str, Any]:
    """CUDA through torch, asked in a child process so that importing torch does not change
    this process's thread settings when there is no GPU to use."""
    code = (
        "import json, torch\n"
        "ok = torch.cuda.is_available()\n"
        "print(json.dumps({'cuda': ok, 'torch': torch.__version__,"
        " 'name': torch.cuda.get_device_name(0) if ok else None}))\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
        )
        info: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
        return {"cuda": False, "torch": "not installed", "name": None}
    return info


def machine(gpu: Mapping[str, Any]) -> dict[str, Any]:
    """CPU model, cores, thread settings and library versions."""
    import cv2

    from forensic.environment import pixel_environment

    env = pixel_environment()
    versions = dict(env["libraries"])
    for extra in ("bm3d", "bm4d", "torch", "reportlab", "pyhanko"):
        versions[extra] = _version(extra)
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 0
    threads: dict[str, Any] = {
        "cv2.getNumThreads": int(cv2.getNumThreads()),
        "opencv_ipp": env["opencv"]["ipp_enabled"],
        "environment": {k: os.environ.get(k, "unset") for k in THREAD_VARIABLES},
        "torch": "torch.get_num_threads() = {}".format(gpu["torch_threads"])
        if "torch_threads" in gpu
        else "not used (the generative section did not run)",
    }
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "gpu": f"{gpu['name']} (CUDA, torch {gpu['torch']})" if gpu.get("cuda") else "no GPU",
        "threads": threads,
        "opencv_parallel": env["opencv"]["parallel_framework"],
        "versions": versions,
    }


def _version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


# -- output ----------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(str(c)) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render(results: Mapping[str, Any]) -> str:
    """The Markdown document: the run, the machine, one table per section, detail tables."""
    m = results["machine"]
    t = m["threads"]
    env_threads = ", ".join(f"{k}={v}" for k, v in t["environment"].items())
    lib = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if not k.startswith("ffmpeg."))
    out = [
        "# Benchmark results",
        "",
        "Generated by `make bench` (`python -m bench`); do not edit by hand.",
        "",
        f"* Run: {results['started']}, {results['mode']} mode, {results['elapsed_s']:.0f} s in all.",
        f"* Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), {m['gpu']}.",
        f"* Threads: OpenCV {t['cv2.getNumThreads']} (IPP {'on' if t['opencv_ipp'] else 'off'}, "
        f"{m['opencv_parallel']}); {env_threads}; torch: {t['torch']}.",
        f"* Libraries: {lib}.",
        "* Timings: median of at least 5 runs after a warm-up, (min-max, n); ratios are taken "
        "side by side in the same run.",
    ]
    for section in results["sections"]:
        out += ["", f"## {section['number']}. {section['title']}", ""]
        rows = section["rows"]
        if not rows:
            out.append("(no rows)")
            continue
        out.append(
            markdown_table(
                ["row", "figure", "target", "status"],
                [[r["name"], r["figure"], r["target"], r["status"]] for r in rows],
            )
        )
        notes = [f"* {r['name']}: {r['note']}" for r in rows if r["note"]]
        if notes:
            out += ["", *notes]
        for r in rows:
            table = r["details"].get("table")
            if table:
                out += ["", f"**{r['name']}**", "", markdown_table(table["columns"], table["rows"])]
    return "\n".join(out) + "\n"


def results_document(
    *,
    started: str,
    mode: str,
    elapsed_s: float,
    machine_info: Mapping[str, Any],
    sections: Sequence[tuple[Section, list[Row]]],
) -> dict[str, Any]:
    return {
        "format": "forensic-bench/1",
        "started": started,
        "mode": mode,
        "elapsed_s": elapsed_s,
        "machine": dict(machine_info),
        "sections": [
            {
                "number": s.number,
                "name": s.name,
                "title": s.title,
                "rows": [asdict(r) for r in rows],
            }
            for s, rows in sections
        ],
    }


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=False, default=_jsonable) + "\n")
    tmp.replace(path)


def _jsonable(value: Any) -> Any:
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
