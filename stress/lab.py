"""The stress harnesses' shared lab: a key folder, generated media and base cases made once
per harness run, and the CLI run as a subprocess (kill, tamper and concurrent use it)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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
