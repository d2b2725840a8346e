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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The syscalls at which a write becomes durable or visible.
SYSCALLS = ("fsync", "fdatasync", "rename", "renameat", "renameat2", "unlink", "unlinkat")
PASSPHRASE = "stress-passphrase-not-secret"
COMMAND_TIMEOUT_S = 300.0


def forensic_command() -> list[str]:
    return [sys.executable, "-c", "import sys; from forensic.cli import run; sys.exit(run())"]


@dataclass(frozen=True)
class Scenario:
    """One writing command run on a copy of a base case (``{case}`` and ``{work}`` in
    ``argv`` are replaced by the copy and the lab folder)."""

    name: str
    base: str
    argv: tuple[str, ...]
    #: The command creates the case (``{case}`` does not exist before it).
    creates_case: bool = False


@contextlib.contextmanager
def preserved_environ() -> Iterator[None]:
    """The harnesses run the CLI in-process with their own key folder and templates: the
    caller's environment (a test session's, say) is restored afterwards."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


class Lab:
    """Keys, media and base cases in one folder, made once per harness run."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.key = root / "key"
        self.second_key = root / "second"
        self.env = dict(
            os.environ,
            FORENSIC_KEY_DIR=str(self.key),
            FORENSIC_PASSPHRASE=PASSPHRASE,
            PYTHONPATH=str(Path(__file__).resolve().parents[1]),
        )
        self.media: dict[str, Path] = {}
        self.bases: dict[str, Path] = {}
        self._fresh = 0

    def cli(
        self, *args: str | Path, key_dir: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        if key_dir is not None:
            env["FORENSIC_KEY_DIR"] = str(key_dir)
        return subprocess.run(
            [*forensic_command(), *map(str, args)],
            env=env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )

    def must(self, *args: str | Path, key_dir: Path | None = None) -> str:
        done = self.cli(*args, key_dir=key_dir)
        if done.returncode != 0:
            raise RuntimeError(f"set-up command {args} failed: {done.stderr}")
        return done.stdout

    def make_media(self) -> None:
        import av
        import cv2
        import numpy as np

        rng = np.random.default_rng(15)
        folder = self.root / "media"
        folder.mkdir()
        for n in range(2):
            path = folder / f"still{n}.png"
            cv2.imwrite(str(path), (rng.random((48, 64, 3)) * 255).astype(np.uint8))
            self.media[f"still{n}"] = path
        clip = folder / "clip.mp4"
        with av.open(str(clip), "w") as container:
            stream = container.add_stream("mpeg4", rate=25)
            stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
            for _ in range(8):
                frame = av.VideoFrame.from_ndarray(
                    (rng.random((48, 64, 3)) * 255).astype(np.uint8), format="rgb24"
                )
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        self.media["clip"] = clip
        recipe = folder / "clip.toml"
        recipe.write_text('[[steps]]\nop = "invert"\nframes = [0, 3]\n')
        self.media["clip-recipe"] = recipe

    def fresh_file(self) -> Path:
        """A new small image for the next command (its hash is not in any case)."""
        import cv2
        import numpy as np

        self._fresh += 1
        path = self.root / "fresh" / f"f{self._fresh}.png"
        path.parent.mkdir(exist_ok=True)
        image = np.full((16, 16, 3), self._fresh % 256, np.uint8)
        image[0, 0] = (self._fresh // 256) % 256
        cv2.imwrite(str(path), image)
        return path

    def fill_templates(self) -> None:
        """Report templates with the lab's statements filled in (the shipped ones hold
        placeholders that `forensic report` refuses to sign)."""
        from forensic.report.templates import PLACEHOLDER, default_folder

        dest = self.root / "templates"
        shutil.copytree(default_folder(), dest)
        lab = dest / "lab.toml"
        lab.write_text(
            PLACEHOLDER.sub(lambda _: "Stress Laboratory (harness).", lab.read_text("utf-8")),
            "utf-8",
        )
        self.env["FORENSIC_REPORT_TEMPLATES"] = str(dest)
        os.environ["FORENSIC_REPORT_TEMPLATES"] = str(dest)

    def make_bases(self, *, second_examiner: bool = True) -> None:
        """Base cases to copy for each trial; ``second_examiner`` adds the two that need one
        (an issued report to approve, a generative step to co-sign)."""
        self.fill_templates()
        self.must("keys", "init", "--name", "Stress Examiner")
        self.must("keys", "init", "--name", "Second Examiner", key_dir=self.second_key)
        second_pem = self.root / "second.pem"
        second_pem.write_text(self.must("keys", "export-public", key_dir=self.second_key))
        self.must("pki", "init", "--lab", "Stress Laboratory")
        self.media["second-pem"] = second_pem
        empty = self.root / "bases" / "empty"
        empty.parent.mkdir()
        self.must("case", "init", empty, "--case-id", "STRESS-1", "--title", "Stress")
        still = self.root / "bases" / "still"
        shutil.copytree(empty, still)
        self.must("ingest", still, self.media["still0"])
        run = self.root / "bases" / "run"
        shutil.copytree(still, run)
        self.must("enhance", run, "E1", "--recipe", "dark-noisy")
        self.must("pki", "bind", run)
        video = self.root / "bases" / "video"
        shutil.copytree(empty, video)
        self.must("ingest", video, self.media["clip"])
        self.bases = {"empty": empty, "still": still, "run": run, "video": video}
        if not second_examiner:
            return
        # A second examiner, enrolled and bound, to approve a report and co-sign a step.
        self.must("pki", "init", "--lab", "Stress Laboratory", key_dir=self.second_key)
        signed = self.root / "bases" / "signed"
        shutil.copytree(run, signed)
        self.must("case", "add-examiner", signed, "--public-key", second_pem, "--name", "Second")
        self.must("pki", "bind", signed, key_dir=self.second_key)
        report = self.root / "media" / "report.pdf"
        self.must("report", signed, "--out", report)
        self.media["report"] = report
        leads = self.root / "bases" / "leads"
        self.must(
            "case",
            "init",
            leads,
            "--case-id",
            "STRESS-2",
            "--title",
            "Leads",
            "--profile",
            "investigative",
        )
        self.must("ingest", leads, self.media["still0"])
        fill = self.root / "media" / "fill.toml"
        fill.write_text(
            '[[steps]]\nop = "generative.inpaint_telea"\nx = 10\ny = 10\nwidth = 8\nheight = 8\n'
        )
        self.must("enhance", leads, "E1", "--recipe", fill)
        self.must("case", "add-examiner", leads, "--public-key", second_pem, "--name", "Second")
        self.bases |= {"signed": signed, "leads": leads}

    def scenarios(self) -> list[Scenario]:
        m = self.media
        if "signed" not in self.bases:  # made without the second examiner
            return [s for s in self._scenarios(m) if s.base not in ("signed", "leads")]
        return self._scenarios(m)

    def _scenarios(self, m: dict[str, Path]) -> list[Scenario]:
        second = str(self.second_key)
        report = str(m.get("report", ""))
        return [
            Scenario(
                "case init",
                "empty",
                ("case", "init", "{case}", "--case-id", "S-2", "--title", "t"),
                creates_case=True,
            ),
            Scenario("ingest", "empty", ("ingest", "{case}", str(m["still0"]), str(m["clip"]))),
            Scenario(
                "add-examiner",
                "empty",
                (
                    "case",
                    "add-examiner",
                    "{case}",
                    "--public-key",
                    str(m["second-pem"]),
                    "--name",
                    "Second",
                ),
            ),
            Scenario(
                "enhance still", "still", ("enhance", "{case}", "E1", "--recipe", "dark-noisy")
            ),
            Scenario(
                "enhance video",
                "video",
                ("enhance", "{case}", "E1", "--recipe", str(m["clip-recipe"])),
            ),
            Scenario(
                "export",
                "run",
                ("export", "{case}", "R1", "--format", "png", "--out", "{work}/export"),
            ),
            Scenario("pki bind", "still", ("pki", "bind", "{case}")),
            Scenario("report", "run", ("report", "{case}", "--out", "{work}/report.pdf")),
            Scenario(
                "report sign",
                "signed",
                (
                    "report",
                    "sign",
                    "{case}",
                    report,
                    "--out",
                    "{work}/approved.pdf",
                    "--key-dir",
                    second,
                ),
            ),
            Scenario("cosign", "leads", ("cosign", "{case}", "R1.1", "--key-dir", second)),
        ]


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
        import contextlib
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
