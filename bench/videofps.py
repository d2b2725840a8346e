"""Just the two video-rate rows of the speed section (`bench.sections.speed.fps`), for
measuring a change to the video pipeline without the whole section.

    python -m bench.videofps [--quick] [--repeats N] [--frames N]

Each row alternates rounds of a forensic run and the bare loop (as the section does) and
prints the section's row text: frames per second, wall-clock ratio and CPU-time ratio. The
machine may be shared: the CPU-time ratio is the steadier of the two.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from bench.bare import opencv_recipe
from bench.harness import MIN_REPEATS, Context
from bench.memprobe import RECIPE
from bench.sections.speed import INTEGER_RECIPE, _forensic_work, fps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.videofps", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="4CIF instead of 1080p")
    parser.add_argument("--repeats", type=int, default=MIN_REPEATS, help="timed rounds per row")
    parser.add_argument("--frames", type=int, default=10, help="frames per run")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-videofps-") as scratch:
        ctx = Context(quick=args.quick, scratch=Path(scratch), repeats=args.repeats)
        size = ctx.size((1080, 1920), (576, 704))
        label = "4CIF" if args.quick else "1080p"
        rows = [
            fps(ctx, label, RECIPE, opencv_recipe, "OpenCV's calls", size, args.frames),
            fps(
                ctx,
                label,
                INTEGER_RECIPE,
                _forensic_work,
                "the same forensic operations",
                size,
                args.frames,
            ),
        ]
    for row in rows:
        print(f"{row.name}: {row.figure} [{row.status}]")
        cpu = {k: round(v["median"], 3) for k, v in row.details["timings"].items() if "cpu" in k}
        ratios = {"share": row.details["share"], "cpu_ratio": row.details["cpu_ratio"]}
        print(json.dumps({**ratios, "cpu_s": cpu}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
