"""The benchmark suite (issue 8): `make bench`, or `python -m bench [--quick] [--only SECTION]`.

Each section is one module in `bench.sections` with a ``run(ctx) -> list[Row]`` function;
`SECTIONS` lists them in the order of the issue. See `bench.harness` for the rules every
figure follows.
"""

from __future__ import annotations

from bench.harness import Section
from bench.sections import (
    audit,
    batch,
    keys,
    operations,
    quality,
    report,
    speed,
    verification,
    video,
)
from bench.sections import defects as defects_section
from bench.sections import gpu as gpu_section
from bench.sections import workbench as workbench_section

SECTIONS = (
    Section(1, "audit", "Audit overhead: forensic enhance vs a bare loop", audit.run),
    Section(2, "operations", "Per-operation speed vs the fastest implementation", operations.run),
    Section(3, "video", "Video: frames per second and peak memory", video.run),
    Section(4, "verify", "Verification and replay", verification.run),
    Section(5, "report", "Report: 40 1080p images", report.run),
    Section(6, "quality", "Restoration quality against ground truth", quality.run),
    Section(7, "workbench", "Workbench: frame step and preview overhead", workbench_section.run),
    Section(8, "speed", "Speed: value operations, video runs and verify --pixels", speed.run),
    Section(9, "keys", "Key folder: cost of one passphrase guess per key file", keys.run),
    Section(10, "batch", "Batch on Dask: 1, 2, 4 worker processes; the serial part", batch.run),
    Section(11, "gpu", "Generative lane: CPU and GPU inference, tiling, map cost", gpu_section.run),
    Section(
        12, "defects", "Damaged photographs and film: detection and repair", defects_section.run
    ),
)


def find_section(key: str) -> Section:
    """A section by number (``2``) or name (``operations``)."""
    for s in SECTIONS:
        if key.strip().lower() in (str(s.number), s.name):
            return s
    known = ", ".join(f"{s.number}/{s.name}" for s in SECTIONS)
    raise KeyError(f"no section {key!r} (sections: {known})")
