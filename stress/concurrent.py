"""Concurrent writers (issue 15): several processes write to one case at once (ingests of
their own files and of one shared file, and enhancement runs); afterwards every file is
recorded exactly once, every run once, and the case verifies."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from stress.lab import COMMAND_TIMEOUT_S, Lab, forensic_command, preserved_environ


def run(quick: bool) -> dict[str, Any]:
    """Quick: 3 writers with 2 files each. Full: 8 writers with 4 files each."""
    from forensic import api

    started = time.monotonic()
    writers, per_writer = (3, 2) if quick else (8, 4)
    with preserved_environ(), tempfile.TemporaryDirectory(prefix="forensic-concurrent-") as tmp:
        lab = Lab(Path(tmp))
        lab.make_media()
        lab.make_bases(second_examiner=False)
        case = lab.bases["still"]
        shared = lab.fresh_file()
        jobs = []
        for w in range(writers):
            own = [lab.fresh_file() for _ in range(per_writer)]
            for f in [shared, *own]:
                jobs.append(["ingest", str(case), str(f)])
            jobs.append(
                ["enhance", str(case), "E1", "--recipe", "dark-noisy", "--name", f"w{w}", "--again"]
            )
        procs = [
            subprocess.Popen(
                [*forensic_command(), *job],
                env=lab.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for job in jobs
        ]
        codes = []
        hangs = 0
        for proc in procs:
            try:
                proc.wait(timeout=COMMAND_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                hangs += 1
            codes.append(proc.returncode)
        verdict = api.verify_case(case)
        opened = api.open_case(case)
        hashes = Counter(x.sha256 for x in api.exhibits(opened))
        runs = api.runs(opened)
    expected_files = 1 + 1 + writers * per_writer  # the base exhibit, the shared one, the own
    return {
        "writers": len(jobs),
        "exit codes": dict(Counter(codes)),
        "hangs": hangs,
        "exit 70": codes.count(70),
        "exhibits recorded": sum(hashes.values()),
        "exhibits expected": expected_files,
        "recorded twice": sum(1 for n in hashes.values() if n > 1),
        "runs recorded": len(runs),
        "runs expected": writers,
        "verify": "ok" if verdict.ok else str(verdict.failure),
        "seconds": round(time.monotonic() - started, 1),
    }


if __name__ == "__main__":
    import json

    result = run("--full" not in sys.argv)
    print(json.dumps(result, indent=2))
    bad = (
        result["verify"] != "ok"
        or result["recorded twice"]
        or result["exhibits recorded"] != result["exhibits expected"]
        or result["runs recorded"] != result["runs expected"]
        or result["exit 70"]
        or result["hangs"]
    )
    sys.exit(1 if bad else 0)
