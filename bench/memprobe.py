"""Run one recipe on an ingested video in this process and print its peak resident memory.

    python -m bench.memprobe CASE KEY_DIR FRAMES [WORKERS]
    python -m bench.memprobe --bare CLIP FRAMES THREADS

The second form runs the bare PyAV + OpenCV loop (`bench.bare`) on the same recipe instead.
Used by sections 3 and 7 in a fresh process per clip, so that one measurement's peak is not
another's.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from bench.casework import PASSPHRASE, now
from forensic.case import open_case
from forensic.keys import unlock
from forensic.pipeline.run import run_recipe
from forensic.recipe import parse_recipe

RECIPE = """
[[steps]]
op = "denoise_gaussian"
sigma = 1.0
frames = [0, {last}]

[[steps]]
op = "clahe"

[[steps]]
op = "unsharp_mask"
radius = 1.2
amount = 0.7
"""


def main(argv: list[str]) -> int:
    if argv[0] == "--bare":
        return _bare(Path(argv[1]), int(argv[2]), int(argv[3]))
    case_dir, key_dir, frames = Path(argv[0]), Path(argv[1]), int(argv[2])
    workers = int(argv[3]) if len(argv) > 3 else None
    case = open_case(case_dir)
    signer = unlock(key_dir, PASSPHRASE)
    recipe = parse_recipe(RECIPE.format(last=frames - 1).encode(), where="memprobe")
    # Unlocking the key (scrypt, 128 MiB) and importing the libraries peak before the run
    # starts: reset the kernel's high-water mark so that the peak is the run's own.
    reset = _reset_peak()
    before = _status_kib("VmRSS")
    t = time.perf_counter()
    run_recipe(case, "E1", recipe, signer=signer, now=now(), workers=workers)
    elapsed = time.perf_counter() - t
    _report(reset, before, elapsed)
    return 0


def _bare(clip: Path, frames: int, threads: int) -> int:
    import tempfile

    from bench.bare import opencv_recipe, process

    with tempfile.TemporaryDirectory(prefix="memprobe-") as folder:
        reset = _reset_peak()
        before = _status_kib("VmRSS")
        t = time.perf_counter()
        process(
            clip,
            Path(folder) / "bare.mkv",
            opencv_recipe,
            first=0,
            last=frames - 1,
            threads=threads,
        )
        elapsed = time.perf_counter() - t
    _report(reset, before, elapsed)
    return 0


def _report(reset: bool, before: int, elapsed: float) -> None:
    peak = _status_kib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "peak_kib": peak,
                "before_kib": before,
                "seconds": elapsed,
                "method": "VmHWM after clear_refs" if reset else "ru_maxrss (whole process)",
            }
        )
    )


def _reset_peak() -> bool:
    """Reset VmHWM (Linux >= 4.0: writing 5 to /proc/self/clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _status_kib(field: str) -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
