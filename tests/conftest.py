"""Shared fixtures: generated media, one examiner key per session, fresh cases."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from forensic import cli
from forensic.case import Case, init_case
from forensic.keys import Signer, create_key, unlock

PASSPHRASE = "test-passphrase-not-secret"
NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def generate_fresh(out: Path) -> dict[str, object]:
    """Run the fixture generator in a fresh interpreter, as `make demo` does (see its docstring)."""
    subprocess.run(
        [sys.executable, "-m", "fixtures.generate", str(out)], check=True, capture_output=True
    )
    manifest: dict[str, object] = json.loads((out / "MANIFEST.json").read_text())
    return manifest


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("media")
    generate_fresh(out)
    return out


def _new_key(factory: pytest.TempPathFactory, folder_name: str, examiner: str) -> Path:
    folder = factory.mktemp("keys") / folder_name
    create_key(folder, name=examiner, passphrase=PASSPHRASE, now=NOW)
    return folder


@pytest.fixture(scope="session")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _new_key(tmp_path_factory, "examiner", "Test Examiner")


@pytest.fixture(scope="session")
def signer(key_dir: Path) -> Signer:
    return unlock(key_dir, PASSPHRASE)


@pytest.fixture(scope="session")
def other_key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _new_key(tmp_path_factory, "other", "Other Person")


@pytest.fixture(scope="session")
def other_signer(other_key_dir: Path) -> Signer:
    return unlock(other_key_dir, PASSPHRASE)


@pytest.fixture
def case(tmp_path: Path, signer: Signer) -> Case:
    return init_case(
        tmp_path / "case",
        case_id="T-001",
        title="Test case",
        policy_path=None,
        signer=signer,
        now=NOW,
    )


def ffmpeg_or_skip() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        if os.environ.get("FORENSIC_REQUIRE_FFMPEG") == "1":
            pytest.fail("ffmpeg is required here (FORENSIC_REQUIRE_FFMPEG=1) but not installed")
        pytest.skip("Debian's ffmpeg is not installed (make system-deps installs it)")
    return path


Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], key_dir: Path
) -> Iterator[Run]:
    """Run the CLI in-process with the session key; return (exit code, stdout, stderr)."""
    monkeypatch.setenv("FORENSIC_KEY_DIR", str(key_dir))
    monkeypatch.setenv("FORENSIC_PASSPHRASE", PASSPHRASE)

    def run(*args: str | Path) -> tuple[int, str, str]:
        capsys.readouterr()
        code = cli.main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


#: What the tests' laboratory states in its report templates (the shipped ones hold placeholders).
LAB_STATEMENTS = {
    "{{the laboratory's name}}": "Example Forensic Imaging Laboratory",
    "{{the laboratory's address}}": "1 Example Street, Example Town",
}


def filled_templates(dest: Path) -> Path:
    """A copy of the shipped report templates with every placeholder filled in."""
    import re

    from forensic.report.templates import PLACEHOLDER, default_folder

    shutil.copytree(default_folder(), dest)
    lab = dest / "lab.toml"
    text = lab.read_text("utf-8")
    for placeholder, value in LAB_STATEMENTS.items():
        text = text.replace(placeholder, value)
    text = PLACEHOLDER.sub(lambda _: "Not accredited (test laboratory).", text)
    assert not re.search(r"\{\{", text)
    lab.write_text(text, "utf-8")
    return dest


@pytest.fixture(scope="session", autouse=True)
def _lab_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Reports in tests use a filled copy of the templates (FORENSIC_REPORT_TEMPLATES)."""
    folder = filled_templates(tmp_path_factory.mktemp("lab") / "templates")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FORENSIC_REPORT_TEMPLATES", str(folder))
        yield folder
