"""SIGKILL harness (issue 15): every writing command killed at each of its durable writes in
turn, and at random moments, then the case checked as its next user would find it.

Crash points come from strace's fault injection: ``strace -f -e inject=SYSCALL:signal=KILL:
when=N`` kills the command at the N-th call of one syscall (fsync, rename, unlink and their
variants), for every N the command reaches. Random moments: the command is started, and its
process group killed after a delay drawn (seeded) from its own uninterrupted duration.

After each kill, in this process: the originals the command read are unchanged; ``verify``
passes (an interrupted append is a note, never tampering); the next writing command (an
ingest of a new file, which finishes any interrupted append) succeeds; and ``verify`` passes
again. A case that fails either is *unusable*; any exit code 70 (internal error) or command
that outlives its timeout is counted too.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stress.lab import (
    COMMAND_TIMEOUT_S,
    PASSPHRASE,
    Lab,
    Scenario,
    forensic_command,
    preserved_environ,
)

#: The syscalls at which a write becomes durable or visible.
SYSCALLS = ("fsync", "fdatasync", "rename", "renameat", "renameat2", "unlink", "unlinkat")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Trial:
    scenario: str
    point: str
    killed: bool
    hang: bool = False
    exit70: bool = False
    unusable: str = ""
    originals_changed: bool = False
    notes: int = 0


class Harness:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.originals = {k: _sha256(p) for k, p in lab.media.items()}
        from forensic import api

        self.api = api
        self.signer = api.unlock_signer(lab.key, PASSPHRASE)

    def _prepare(self, scenario: Scenario) -> tuple[Path, Path, list[str]]:
        work = Path(tempfile.mkdtemp(prefix="trial-", dir=self.lab.root))
        case = work / "case"
        if not scenario.creates_case:
            shutil.copytree(self.lab.bases[scenario.base], case)
        argv = [a.replace("{case}", str(case)).replace("{work}", str(work)) for a in scenario.argv]
        return work, case, argv

    def count_calls(self, scenario: Scenario) -> Counter[str]:
        """How often the uninterrupted command makes each syscall (strace -c)."""
        work, _case, argv = self._prepare(scenario)
        log = work / "strace.log"
        subprocess.run(
            [
                "strace",
                "-f",
                "-qq",
                "-c",
                "-o",
                str(log),
                "-e",
                "trace=" + ",".join(SYSCALLS),
                *forensic_command(),
                *argv,
            ],
            env=self.lab.env,
            capture_output=True,
            timeout=COMMAND_TIMEOUT_S,
            check=True,
        )
        counts: Counter[str] = Counter()
        for line in log.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 5 and parts[-1] in SYSCALLS and parts[3].isdigit():
                counts[parts[-1]] = int(parts[3])
        shutil.rmtree(work)
        return counts

    def injected(self, scenario: Scenario, syscall: str, when: int) -> Trial:
        work, case, argv = self._prepare(scenario)
        cmd = [
            "strace",
            "-f",
            "-qq",
            "-o",
            "/dev/null",
            "-e",
            f"trace={syscall}",
            "-e",
            f"inject={syscall}:signal=KILL:when={when}",
            *forensic_command(),
            *argv,
        ]
        trial = Trial(scenario.name, f"{syscall} #{when}", killed=False)
        try:
            done = subprocess.run(
                cmd,
                env=self.lab.env,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            trial.hang = True
            return trial
        # strace reports the tracee's death by SIGKILL as its own exit status 137.
        trial.killed = done.returncode in (137, -9) or "+++ killed by SIGKILL" in done.stderr
        trial.exit70 = done.returncode == 70
        self._assess(trial, scenario, case)
        shutil.rmtree(work, ignore_errors=True)
        return trial

    def random_kill(self, scenario: Scenario, delay_s: float) -> Trial:
        work, case, argv = self._prepare(scenario)
        trial = Trial(scenario.name, f"after {delay_s:.2f} s", killed=False)
        proc = subprocess.Popen(
            [*forensic_command(), *argv],
            env=self.lab.env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            proc.wait(timeout=delay_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            trial.killed = True
        trial.exit70 = proc.returncode == 70
        self._assess(trial, scenario, case)
        shutil.rmtree(work, ignore_errors=True)
        return trial

    def _assess(self, trial: Trial, scenario: Scenario, case: Path) -> None:
        from forensic import cli

        trial.originals_changed = any(
            _sha256(p) != self.originals[k] for k, p in self.lab.media.items()
        )
        if scenario.creates_case and not (case / "case.json").exists():
            # Killed before the case existed: the next user runs `case init` again.
            code = self._cli(cli, [a.replace("{case}", str(case)) for a in scenario.argv])
            trial.exit70 |= code == 70
            if code != 0:
                trial.unusable = f"case init again exited {code}"
                return
        verdict = self.api.verify_case(case)
        if not verdict.ok:
            trial.unusable = f"verify after the kill: {verdict.failure}"
            return
        code = self._cli(cli, ["ingest", str(case), str(self.lab.fresh_file())])
        trial.exit70 |= code == 70
        if code != 0:
            trial.unusable = f"the next command (ingest) exited {code}"
            return
        verdict = self.api.verify_case(case)
        if not verdict.ok:
            trial.unusable = f"verify after the next command: {verdict.failure}"
        trial.notes = sum(len(c.notes) for c in verdict.checks[2:])

    def _cli(self, cli: Any, argv: list[str]) -> int:
        os.environ.update(FORENSIC_KEY_DIR=str(self.lab.key), FORENSIC_PASSPHRASE=PASSPHRASE)
        import io

        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return int(cli.main(argv))


def run(
    quick: bool,
    *,
    seed: int = 15,
    log: Callable[[str], None] = print,
    only: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Quick: ``ingest`` killed at each of its renames and unlinks (about a minute). Full: every
    scenario at every crash point, then random-moment kills until at least 300 trials."""
    if shutil.which("strace") is None:
        raise RuntimeError("strace is not installed (make system-deps installs it)")
    started = time.monotonic()
    with preserved_environ(), tempfile.TemporaryDirectory(prefix="forensic-kill-") as tmp:
        lab = Lab(Path(tmp))
        lab.make_media()
        lab.make_bases(second_examiner=not quick)
        harness = Harness(lab)
        scenarios = lab.scenarios()
        if quick:
            scenarios = [s for s in scenarios if s.name == "ingest"]
        elif only:
            scenarios = [s for s in scenarios if s.name in only]
        trials: list[Trial] = []
        durations: dict[str, float] = {}
        for scenario in scenarios:
            t0 = time.monotonic()
            counts = harness.count_calls(scenario)
            durations[scenario.name] = time.monotonic() - t0
            # Quick: the renames and unlinks (where files appear and disappear) of one command.
            for syscall in ("rename", "renameat", "renameat2", "unlink") if quick else SYSCALLS:
                for when in range(1, counts.get(syscall, 0) + 1):
                    trial = harness.injected(scenario, syscall, when)
                    trials.append(trial)
                    if trial.unusable or trial.exit70 or trial.hang:
                        log(
                            f"  {scenario.name} at {trial.point}: {trial.unusable or 'exit 70 or hang'}"
                        )
            log(f"  {scenario.name}: {dict(counts)} crash points done")
        if not quick and not only:
            rng = random.Random(seed)
            while len(trials) < 300:
                scenario = rng.choice(scenarios)
                trials.append(
                    harness.random_kill(scenario, rng.uniform(0.0, durations[scenario.name]))
                )
    killed = [t for t in trials if t.killed]
    return {
        "trials": len(trials),
        "killed": len(killed),
        "completed before the kill": len(trials) - len(killed),
        "cases left unusable": sum(bool(t.unusable) for t in trials),
        "originals changed": sum(t.originals_changed for t in trials),
        "exit 70": sum(t.exit70 for t in trials),
        "hangs": sum(t.hang for t in trials),
        "scenarios": sorted({t.scenario for t in trials}),
        "unusable": [f"{t.scenario} at {t.point}: {t.unusable}" for t in trials if t.unusable],
        "seconds": round(time.monotonic() - started, 1),
    }


if __name__ == "__main__":
    import json

    result = run("--full" not in sys.argv)
    print(json.dumps(result, indent=2))
    sys.exit(1 if result["cases left unusable"] or result["exit 70"] or result["hangs"] else 0)
