"""Cases, keys and evidence made with forensic's public API, in the run's scratch folder."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench.harness import Context
from forensic.case import Case, init_case
from forensic.ingest import ingest
from forensic.keys import Signer, create_key, unlock
from forensic.pki import ReportSigner, bind, init_pki

PASSPHRASE = "bench-passphrase-not-secret"  # noqa: S105 (a throwaway key in a temp dir)
_counter = itertools.count(1)


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Examiner:
    key_dir: Path
    signer: Signer
    report_signer: ReportSigner | None = None


def examiner(ctx: Context, *, pki: bool = False) -> Examiner:
    """One examiner key per run (scrypt makes it slow to create), with a report PKI if asked."""
    ex: Examiner | None = ctx.cache.get("examiner")
    if ex is None:
        key_dir = ctx.scratch / "keys"
        create_key(key_dir, name="Bench Examiner", passphrase=PASSPHRASE, now=now())
        ex = Examiner(key_dir, unlock(key_dir, PASSPHRASE))
        ctx.cache["examiner"] = ex
    if pki and ex.report_signer is None:
        ex.report_signer = init_pki(
            ex.key_dir, ex.signer, passphrase=PASSPHRASE, lab="Bench Lab", now=now()
        )
    return ex


def new_case(ctx: Context, label: str, *, pki: bool = False) -> tuple[Case, Examiner]:
    """A fresh case (bound to the report certificate when ``pki``)."""
    ex = examiner(ctx, pki=pki)
    n = next(_counter)
    case = init_case(
        ctx.scratch / f"case-{label}-{n}",
        case_id=f"BENCH-{n:03d}",
        title=f"Benchmark: {label}",
        policy_path=None,
        signer=ex.signer,
        now=now(),
    )
    if pki:
        assert ex.report_signer is not None
        bind(case, ex.signer, ex.report_signer, now=now())
    return case, ex


def write_png(path: Path, image: Any, level: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(
        ".png", np.ascontiguousarray(image), [cv2.IMWRITE_PNG_COMPRESSION, level]
    )
    if not ok:
        raise RuntimeError(f"cannot encode {path}")
    path.write_bytes(buf.tobytes())
    return path


def ingest_files(case: Case, ex: Examiner, files: list[Path]) -> None:
    ingest(case, files, signer=ex.signer, now=now())


def lab_templates(ctx: Context) -> Path:
    """A copy of the shipped report templates with their placeholders filled (a report is
    not issued with them unfilled)."""
    import re
    import shutil

    from forensic.report.templates import PLACEHOLDER, default_folder

    folder = ctx.scratch / "lab-templates"
    if not folder.exists():
        shutil.copytree(default_folder(), folder)
        lab = folder / "lab.toml"
        text = PLACEHOLDER.sub("Benchmark laboratory (not accredited)", lab.read_text("utf-8"))
        assert not re.search(r"\{\{", text)
        lab.write_text(text, "utf-8")
    return folder
