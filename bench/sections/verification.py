"""Section 4: verification and replay.

* `forensic.verify` (checks 1-7, the default `forensic verify CASE`) on a case holding 1 GiB of
  evidence (64 MiB in quick mode), against plain ``hashlib`` SHA-256 of the same files: both
  read warm from the page cache, so the figure is the cost of the checks, not of the disk.
* `verify --replay` of a case with one 3-step run on a 1080p still, against the time that
  run took (`run_recipe`), and against `verify` without replay on the same case.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench.casework import Examiner, ingest_files, new_case, now, write_png
from bench.harness import Context, Row, Timing, ratio, rounds, side_by_side, timed, verdict
from bench.images import add_noise, scene
from forensic.case import Case
from forensic.pipeline.run import run_recipe
from forensic.recipe import parse_recipe
from forensic.verify import verify_case

SECTION = "4"
GIB = 1 << 30

RECIPE = b"""
[recipe]
name = "bench-replay"
description = "bilateral denoise, CLAHE, unsharp mask"
[[steps]]
op = "denoise_bilateral"
[[steps]]
op = "clahe"
[[steps]]
op = "unsharp_mask"
radius = 1.2
amount = 0.7
"""


def _evidence(ctx: Context, total: int) -> list[Path]:
    """Uncompressed 1080p RGB BMP stills of random content (one decodes fast and no two are
    alike), ``total`` bytes in all."""
    rng = np.random.default_rng([ctx.seed, 4])
    folder = ctx.scratch / "evidence-gb"
    files: list[Path] = []
    size = 0
    while size < total:
        pixels = rng.integers(0, 256, size=(1080, 1920, 3), dtype=np.uint8)
        path = folder / f"still-{len(files):04d}.bmp"
        folder.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), pixels):
            raise RuntimeError(f"cannot write {path}")
        files.append(path)
        size += path.stat().st_size
    return files


def _sha256_all(files: list[Path]) -> list[str]:
    out = []
    for path in files:
        with path.open("rb") as fh:
            out.append(hashlib.file_digest(fh, "sha256").hexdigest())
    return out


def verify_per_gb(ctx: Context) -> Row:
    total = (64 << 20) if ctx.quick else GIB
    files = _evidence(ctx, total)
    case, ex = new_case(ctx, "verify-gb")
    ctx.log(f"section 4: ingesting {len(files)} files ({total / GIB:.2f} GiB)")
    for start in range(0, len(files), 16):
        ingest_files(case, ex, files[start : start + 16])
    for f in files:
        f.unlink()  # the case keeps its own copies; free the disk
    stored = sorted(p for p in case.evidence_dir.iterdir() if p.is_file())
    size = sum(p.stat().st_size for p in stored)
    gb = size / 1e9

    def check() -> None:
        _ok(verify_case(case.root))

    ctx.log("section 4: verify vs hashlib")
    t = side_by_side({"verify": check, "hashlib": lambda: _sha256_all(stored)}, repeats=ctx.repeats)
    r = ratio(t["verify"], t["hashlib"])
    per_gb = {k: v.median / gb for k, v in t.items()}
    figure = (
        f"{per_gb['verify']:.2f} s/GB ({gb / t['verify'].median:.2f} GB/s) vs hashlib "
        f"{per_gb['hashlib']:.2f} s/GB ({gb / t['hashlib'].median:.2f} GB/s): {r:.2f}x"
    )
    return Row(
        SECTION,
        f"verify, {len(stored)} files, {gb:.2f} GB of evidence",
        figure,
        "≤ 1.1x plain SHA-256 of the same bytes",
        verdict(r <= 1.1),
        f"verify {t['verify'].text()}, hashlib {t['hashlib'].text()}; warm page cache; "
        "1080p RGB BMP stills.",
        {"bytes": size, "files": len(stored), "timings": {k: vars(v) for k, v in t.items()}},
    )


def replay(ctx: Context) -> Row:
    h, w = ctx.size((1080, 1920), (270, 480))
    still = add_noise(scene(h, w), 10 / 255, np.random.default_rng([ctx.seed, 5]))
    source = write_png(ctx.scratch / "replay" / "still.png", still)
    recipe = parse_recipe(RECIPE, where="bench recipe")
    cases: list[tuple[Case, Examiner]] = []

    def one_round() -> dict[str, float]:
        case, ex = new_case(ctx, "replay")
        ingest_files(case, ex, [source])
        cases.append((case, ex))
        seconds = {
            "run": timed(lambda: run_recipe(case, "E1", recipe, signer=ex.signer, now=now())),
            "verify --replay": timed(lambda: _ok(verify_case(case.root, replay=True))),
            "verify": timed(lambda: _ok(verify_case(case.root))),
        }
        return seconds

    ctx.log("section 4: run vs verify --replay")
    t: dict[str, Timing] = rounds(one_round, repeats=ctx.repeats)
    r = ratio(t["verify --replay"], t["run"])
    figure = (
        f"{r:.2f}x: verify --replay {t['verify --replay'].text()} vs the run "
        f"{t['run'].text()} (verify alone {t['verify'].text()})"
    )
    return Row(
        SECTION,
        f"verify --replay, 3-step recipe on a {w}x{h} grey still",
        figure,
        "≤ 1.1x the original run",
        verdict(r <= 1.1),
        "Recipe: denoise_bilateral, clahe, unsharp_mask (defaults; automatic values recorded "
        "and reused). Each round: a fresh case, the run, then verify with and without replay.",
        {"timings": {k: vars(v) for k, v in t.items()}},
    )


def _ok(v: Any) -> None:
    if not v.ok:
        raise RuntimeError(f"the benchmark case does not verify: {v.failure}")


def run(ctx: Context) -> list[Row]:
    return [verify_per_gb(ctx), replay(ctx)]
