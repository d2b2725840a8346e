"""Section 1: audit overhead. A 3-step classical recipe on 1080p frames through
`forensic enhance` against the same library calls in a bare loop (same decode, same lossless
output format, no hashes, journal or provenance), with a breakdown of where the time goes.

Pending: it measures the streaming pipeline of issue 7, which is being rewritten. It will be
added here once that lands; until then the section reports itself as pending rather than
measuring code that is about to change.
"""

from __future__ import annotations

from bench.harness import Context, Row, pending

SECTION = "1"
WHY = "issue 7 pipeline"


def run(ctx: Context) -> list[Row]:
    ctx.log(f"section 1: pending: {WHY}")
    return [
        pending(
            SECTION,
            "3-step recipe on 1080p frames: forensic enhance vs bare loop",
            WHY,
            "≤ 1.10x the bare loop (goal 1.03x), with a time breakdown",
        )
    ]
