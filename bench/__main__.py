"""``python -m bench [--quick] [--only SECTION ...] [--json PATH] [--markdown PATH]``.

Prints the Markdown table, writes the results as JSON (``build/bench/results.json``) and, for
a full run of every section, ``bench/RESULTS.md``. A quick run or a partial one writes its
Markdown next to the JSON instead, so the committed table always comes from a complete run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import SECTIONS, find_section
from bench.harness import (
    Context,
    Row,
    Section,
    detect_gpu,
    machine,
    render,
    results_document,
    write_json,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS_MD = ROOT / "bench" / "RESULTS.md"
BUILD = ROOT / "build" / "bench"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a fast pass (~2 min)")
    parser.add_argument(
        "--only",
        action="append",
        metavar="SECTION",
        help="run only this section (number or name; repeatable)",
    )
    parser.add_argument("--json", type=Path, default=None, help="where to write the JSON")
    parser.add_argument("--markdown", type=Path, default=None, help="where to write the table")
    args = parser.parse_args(argv)
    try:
        chosen = [find_section(k) for k in args.only] if args.only else list(SECTIONS)
    except KeyError as exc:
        parser.error(str(exc.args[0]))
    complete = not args.quick and len(chosen) == len(SECTIONS)
    mode = "quick" if args.quick else "full"
    json_path = args.json or BUILD / ("results.json" if complete else f"results-{mode}.json")
    md_path = args.markdown or (RESULTS_MD if complete else json_path.with_suffix(".md"))

    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    t0 = time.perf_counter()
    gpu = detect_gpu()
    if gpu.get("cuda") or any(section.name == "gpu" for section in chosen):
        # The generative section runs torch on the CPU too: its thread count belongs in the
        # header whenever that section runs, not only on a GPU machine.
        import torch

        gpu["torch_threads"] = torch.get_num_threads()
    print(f"bench: {mode} mode; GPU: {gpu.get('name') or 'no GPU'}", file=sys.stderr)
    done: list[tuple[Section, list[Row]]] = []
    with tempfile.TemporaryDirectory(prefix="forensic-bench-") as scratch:
        ctx = Context(quick=args.quick, scratch=Path(scratch), gpu=gpu)
        for section in chosen:
            start = time.perf_counter()
            rows = section.run(ctx)
            ctx.log(f"section {section.number} done in {time.perf_counter() - start:.0f} s")
            done.append((section, rows))
    document = results_document(
        started=started,
        mode=mode,
        elapsed_s=time.perf_counter() - t0,
        machine_info=machine(gpu),
        sections=done,
    )
    write_json(json_path, document)
    text = render(document)
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    print(f"bench: wrote {json_path} and {md_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
