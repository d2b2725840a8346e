"""``python -m stress [--quick] [--only NAME ...]``: run the stress harnesses, print counts.

Writes ``build/stress/results.json`` (every run) and, for a full run, replaces the section's
block in ``docs/stress.md`` (between ``<!-- stress:NAME -->`` markers), so the committed counts
always come from a full run. Exit status 1 when a section reports a failure count above 0
(see `FAILURE_COUNTS`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from stress import SECTIONS, Counts

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "stress"
DOC = ROOT / "docs" / "stress.md"
#: Counts that must be 0 for the harness to pass.
FAILURE_COUNTS = (
    "exit_70",
    "hangs",
    "tracebacks",
    "originals_changed",
    "case_unusable",
    "refusals_not_naming_file",
    "failed_targets",
    "exit 70",
    "hangs",
    "cases left unusable",
    "originals changed",
    "undetected changes to anything the record protects",
    "recorded twice",
)


def table(name: str, counts: Counts, *, mode: str, seconds: float) -> str:
    lines = [
        f"<!-- stress:{name} -->",
        f"### {name} ({mode} run, {datetime.now(UTC):%Y-%m-%d}, {seconds:.0f} s, "
        f"Python {platform.python_version()}, {platform.machine()})",
        "",
        "| count | value |",
        "|---|---:|",
        # Scalars only; lists and tables (the details) are in the JSON.
        *(
            f"| {key} | {value} |"
            for key, value in counts.items()
            if isinstance(value, int | float | str | bool)
        ),
        f"<!-- /stress:{name} -->",
    ]
    return "\n".join(lines)


def update_doc(name: str, block: str) -> None:
    text = DOC.read_text("utf-8") if DOC.exists() else "# Stress harness results\n"
    start, end = f"<!-- stress:{name} -->", f"<!-- /stress:{name} -->"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = before + block + after
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    DOC.write_text(text, "utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stress", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a reduced set (seconds)")
    parser.add_argument("--only", action="append", metavar="NAME", choices=sorted(SECTIONS))
    parser.add_argument(
        "--against",
        metavar="DIR",
        type=Path,
        help="run the CLI of another checkout (e.g. before a fix); writes no docs",
    )
    args = parser.parse_args(argv)
    chosen = args.only or list(SECTIONS)
    mode = "quick" if args.quick else "full"
    if args.against is not None:
        os.environ["STRESS_CODE_ROOT"] = str(args.against.resolve())
        mode += f" against {args.against}"
    results: dict[str, object] = {"mode": mode, "started": f"{datetime.now(UTC):%FT%TZ}"}
    failed = False
    for name in chosen:
        t0 = time.perf_counter()
        counts = SECTIONS[name](args.quick)
        seconds = time.perf_counter() - t0
        results[name] = {"counts": counts, "seconds": round(seconds, 1)}
        block = table(name, counts, mode=mode, seconds=seconds)
        print(block)
        if not args.quick and args.against is None:
            update_doc(name, block)
        bad = {k: counts[k] for k in FAILURE_COUNTS if counts.get(k)}
        if counts.get("verify", "ok") != "ok":
            bad["verify"] = counts["verify"]
        if bad:
            failed = True
            print(f"stress: {name} FAILED: {bad}", file=sys.stderr)
    BUILD.mkdir(parents=True, exist_ok=True)
    out = BUILD / ("results.json" if mode == "full" else f"results-{mode.split()[0]}-other.json")
    if mode == "quick":
        out = BUILD / "results-quick.json"
    out.write_text(json.dumps(results, indent=2, default=str) + "\n", "utf-8")
    print(f"stress: wrote {out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
