"""The operation catalogue as Markdown (docs/operations.md), generated from the registry so that
the documentation cannot drift from the code. Regenerate with ``make docs``."""

from __future__ import annotations

import sys
from typing import Any

from forensic.classical.registry import registry
from forensic.ops.framework import Operation

_CATEGORY_ORDER = (
    "deinterlace", "exposure", "colour", "denoise", "deblur", "sharpen", "geometry", "temporal",
    "redaction", "analysis",
)  # fmt: skip
_TEMPORAL = {
    "map": "Temporal: runs over a frame range, one output frame per input frame (streamed; "
    "per-frame details recorded).",
    "reduce": "Temporal: runs over a frame range and makes one image from it.",
}


def _value(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, tuple):
        return ", ".join(f"{x:g}" for x in v)
    return str(v)


def _section(op: Operation) -> list[str]:
    lines = [
        f"### `{op.name}`",
        "",
        f"**{op.summary}** Version {op.version}; SWGIT class *{op.swgit_class}*; "
        f"effect on provenance: *{op.effect}*.",
        "",
        op.description,
        "",
    ]
    if op.temporal != "frame":
        lines += [_TEMPORAL[op.temporal], ""]
    if op.params:
        lines += ["| parameter | default | allowed | meaning |", "|---|---|---|---|"]
        for p in op.params:
            default = (
                "required" if p.required else ("auto" if p.default is None else _value(p.default))
            )
            meaning = p.description + (f" Auto: {p.auto}." if p.auto else "")
            cells = (f"`{p.name}`", default, p.allowed(), meaning)
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    lines += [
        f"Output: {op.output_dtype}.",
        "",
        f"Determinism: {op.determinism}",
        "",
        "References:",
        "",
    ]
    for ref in op.references:
        extra = f" [doi:{ref.doi}](https://doi.org/{ref.doi})" if ref.doi else ""
        note = f" ({ref.note})" if ref.note else ""
        lines.append(f"- {ref.citation}{extra}{note}")
    return [*lines, ""]


def markdown() -> str:
    ops = registry(include_temporal=True)
    categories = sorted({op.category for op in ops.values()}, key=_CATEGORY_ORDER.index)
    lines = [
        "# Classical operations",
        "",
        "Generated from the registry by `make docs` (`python -m forensic.classical.catalogue`);",
        "do not edit by hand. `forensic ops show NAME` prints the same for one operation.",
        "",
        "Levels are fractions of full scale (0 = black, 1 = white) so that a recipe means the",
        "same on 8- and 16-bit evidence. Effects on provenance: *values* (pixel values changed in",
        "place), *geometry* (pixels moved or dropped, none resampled), *resampled* (new positions",
        "interpolated), *redaction* (a region destroyed for a disclosure copy, never enhancement).",
        "Temporal operations take a range of video frames (a recipe step's `frames`) instead of",
        "one image.",
        "",
    ]
    for category in categories:
        names = sorted(n for n, op in ops.items() if op.category == category)
        lines += [f"## {category.capitalize()}", ""]
        for name in names:
            lines += _section(ops[name])
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
