"""Tampering campaign (issue 15): random changes to every file of a case and of its signed
report, each checked by ``verify``; every change that goes unnoticed is listed with the reason
it is harmless (or counted as a failure when no reason applies).

A change is *detected* when ``verify`` fails, or when one of its notes names the changed file
(check 8 names files the record does not know; a missing key copy is a note). The report is
checked with ``verify REPORT.pdf --case CASE``.
"""

from __future__ import annotations

import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stress.lab import Lab, preserved_environ

MUTATIONS = ("flip a byte", "truncate", "append bytes", "delete", "empty")

#: Files whose content the record does not protect, and why a change to them is harmless.
HARMLESS = {
    ".lock": "the lock file's content is never read; only its lock matters",
}


@dataclass
class Outcome:
    target: str
    mutation: str
    detected: bool
    how: str


def _mutate(path: Path, mutation: str, rng: random.Random) -> bool:
    """Apply ``mutation``; False when it cannot change this file (e.g. truncating nothing)."""
    data = path.read_bytes() if path.exists() else b""
    path.chmod(0o644)
    if mutation == "flip a byte":
        if not data:
            return False
        at = rng.randrange(len(data))
        changed = bytearray(data)
        changed[at] ^= rng.randrange(1, 256)
        path.write_bytes(bytes(changed))
    elif mutation == "truncate":
        if not data:
            return False
        path.write_bytes(data[: rng.randrange(len(data))])
    elif mutation == "append bytes":
        path.write_bytes(data + rng.randbytes(rng.randrange(1, 64)))
    elif mutation == "delete":
        path.unlink()
    elif mutation == "empty":
        if not data:
            return False
        path.write_bytes(b"")
    return True


def _check(api: Any, target: str, case: Path, pdf: Path) -> tuple[bool, str]:
    """(detected, how) for one changed file."""
    if target == "<report.pdf>":
        result = api.verify_report(pdf, case_dir=case, templates_dir=None, trusted=[])
        return (not result.ok), str(getattr(result, "failure", ""))
    verdict = api.verify_case(case)
    named = [note for c in verdict.checks for note in c.notes if target in note]
    detected = not verdict.ok or bool(named)
    return detected, str(verdict.failure) if not verdict.ok else "; ".join(named)


def run(quick: bool, *, seed: int = 1000, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Quick: 40 trials. Full: 1,000 trials over every file of the case and the report."""
    from forensic import api

    started = time.monotonic()
    trials = 40 if quick else 1000
    rng = random.Random(seed)
    outcomes: list[Outcome] = []
    internal: list[str] = []
    with preserved_environ(), tempfile.TemporaryDirectory(prefix="forensic-tamper-") as tmp:
        lab = Lab(Path(tmp))
        lab.make_media()
        lab.make_bases(second_examiner=False)
        base = lab.bases["run"]
        lab.must("enhance", base, "E1", "--recipe", "dark-noisy", "--keep-intermediates", "--again")
        report = lab.root / "report.pdf"
        lab.must("report", base, "--out", report)
        files = [
            *sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file()),
            "<report.pdf>",
        ]
        assert api.verify_case(base).ok
        n = 0
        while len(outcomes) < trials:  # a change that cannot apply (emptying nothing) is redrawn
            target = files[n % len(files)] if n < len(files) else rng.choice(files)
            n += 1
            mutation = rng.choice(MUTATIONS)
            work = Path(tempfile.mkdtemp(prefix="t-", dir=tmp))
            case = work / "case"
            shutil.copytree(base, case)
            pdf = work / "report.pdf"
            shutil.copy(report, pdf)
            path = pdf if target == "<report.pdf>" else case / target
            if not _mutate(path, mutation, rng):
                shutil.rmtree(work)
                continue
            try:
                detected, how = _check(api, target, case, pdf)
            except Exception as exc:  # an internal error is a finding, not the harness's end
                detected, how = True, f"INTERNAL ERROR {type(exc).__name__}: {exc}"
                internal.append(f"{mutation} of {target}: {how}")
                log(f"  internal error: {mutation} of {target}: {exc!r}")
            outcomes.append(Outcome(target, mutation, detected, how))
            if not detected:
                log(f"  undetected: {mutation} of {target}")
            shutil.rmtree(work)
    undetected = [o for o in outcomes if not o.detected]
    unexplained = [o for o in undetected if Path(o.target).name not in HARMLESS]
    by_file = Counter(o.target.split("/")[0] for o in outcomes)
    return {
        "trials": len(outcomes),
        "detected": len(outcomes) - len(undetected),
        "undetected": len(undetected),
        "undetected changes to anything the record protects": len(unexplained),
        "undetected, harmless": sorted(
            {
                f"{o.mutation} of {o.target}: {HARMLESS[Path(o.target).name]}"
                for o in undetected
                if o not in unexplained
            }
        ),
        "unexplained": [f"{o.mutation} of {o.target}" for o in unexplained],
        "exit 70": len(internal),
        "internal errors (exit 70)": internal,
        "trials per top-level file or folder": dict(sorted(by_file.items())),
        "seconds": round(time.monotonic() - started, 1),
    }


if __name__ == "__main__":
    import json

    result = run("--full" not in sys.argv)
    print(json.dumps(result, indent=2))
    failed = result["undetected changes to anything the record protects"]
    sys.exit(1 if failed or result["internal errors (exit 70)"] else 0)
