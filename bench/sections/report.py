"""Section 5: the signed PDF report for a case with 40 1080p images (4 in quick mode).

The case holds 40 1080p grey stills, each with a one-step run (``levels``), so the report
shows 40 before/after pairs and 40 provenance overlays. How the report embeds images (read from
`forensic.report.build`): each is reduced by an integer block mean so that its longer side is
at most ``DISPLAY_MAX`` px (1920 x 1080 becomes 960 x 540) and encoded as PNG at zlib level 1;
reportlab (``useA85=0``, so no ASCII-85) decodes that PNG and deflates its samples again
itself. The lossless outputs and provenance maps are attached unchanged.
"""

from __future__ import annotations

import numpy as np

from bench.casework import ingest_files, new_case, now, write_png
from bench.harness import Context, Row, rounds, timed, verdict
from bench.images import add_noise, scene
from forensic.pipeline.run import run_recipe
from forensic.recipe import parse_recipe
from forensic.report import issue_report
from forensic.report.build import DISPLAY_MAX
from forensic.verify import verify_case

SECTION = "5"
TIME_TARGET_S = 30.0
RECIPE = b"""
[recipe]
name = "bench-report"
[[steps]]
op = "levels"
gamma = 1.2
"""


def run(ctx: Context) -> list[Row]:
    n = 4 if ctx.quick else 40
    h, w = 1080, 1920
    rng = np.random.default_rng([ctx.seed, 6])
    clean = scene(h, w)
    case, ex = new_case(ctx, "report", pki=True)
    report_signer = ex.report_signer
    assert report_signer is not None
    folder = ctx.scratch / "report-stills"
    ctx.log(f"section 5: making a case with {n} 1080p stills and runs")
    files = [
        write_png(folder / f"still-{i:02d}.png", add_noise(clean, 0.02, rng)) for i in range(n)
    ]
    for start in range(0, n, 10):
        ingest_files(case, ex, files[start : start + 10])
    recipe = parse_recipe(RECIPE, where="bench recipe")
    for i in range(n):
        run_recipe(case, f"E{i + 1}", recipe, signer=ex.signer, now=now())
    counter = iter(range(1000))
    sizes: list[int] = []

    def one_round() -> dict[str, float]:
        out = ctx.scratch / f"report-{next(counter)}.pdf"
        seconds = {
            "report": timed(
                lambda: issue_report(
                    case, out=out, signer=ex.signer, report_signer=report_signer, now=now()
                )
            ),
            "verify": timed(lambda: verify_case(case.root)),
        }
        sizes.append(out.stat().st_size)
        return seconds

    ctx.log("section 5: issuing reports")
    t = rounds(one_round, repeats=ctx.repeats)
    size_mb = float(np.median(sizes)) / 1e6
    attached = sum(p.stat().st_size for p in (case.root / "derived").iterdir()) / 1e6
    per_image = t["report"].median / n
    shown = f"{w // -(-max(h, w) // DISPLAY_MAX)}x{h // -(-max(h, w) // DISPLAY_MAX)}"
    target_s = TIME_TARGET_S * n / 40
    return [
        Row(
            SECTION,
            f"report time, {n} 1080p stills (before/after + provenance overlay each)",
            f"{t['report'].text()} ({per_image:.2f} s per image; of which verify "
            f"{t['verify'].median:.2f} s)",
            f"≤ {target_s:.0f} s ({TIME_TARGET_S / 40:.2f} s per image)",
            verdict(t["report"].median <= target_s),
            f"Previews: integer block mean to ≤ {DISPLAY_MAX} px ({shown}), PNG zlib level 1, "
            "which reportlab decodes and deflates again (useA85=0: no ASCII-85); time includes "
            "verify, build, attachments and the PAdES signature.",
            {"timings": {k: vars(v) for k, v in t.items()}, "images": n},
        ),
        Row(
            SECTION,
            f"report size, {n} 1080p stills",
            f"{size_mb:.1f} MB, of which {attached:.1f} MB are the attached lossless outputs and "
            f"provenance maps ({(size_mb - attached) / n:.2f} MB per image for the rest)",
            "≤ attachments + 1 MB per image",
            verdict(size_mb - attached <= n * 1.0),
            "Attachments are required (the PDF alone is a complete record); the rest is pages "
            "and previews.",
            {"bytes_median": float(np.median(sizes)), "attached_mb": attached},
        ),
    ]
