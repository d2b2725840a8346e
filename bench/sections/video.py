"""Section 3: video. Frames per second for a CCTV recipe on 4CIF (704 x 576) and 1080p clips,
end to end (decode, operations, hashes, lossless encode), against a bare PyAV + OpenCV loop
doing the same; peak memory for a clip and one ten times longer.

Pending: it measures the streaming video pipeline of issue 7, which is being rewritten. Until
it lands the section reports itself as pending rather than printing numbers for code that is
about to change.
"""

from __future__ import annotations

from bench.harness import Context, Row, pending

SECTION = "3"
WHY = "issue 7 pipeline"


def run(ctx: Context) -> list[Row]:
    ctx.log(f"section 3: pending: {WHY}")
    return [
        pending(SECTION, "CCTV recipe, 4CIF clip: fps vs bare PyAV + OpenCV loop", WHY),
        pending(SECTION, "CCTV recipe, 1080p clip: fps vs bare PyAV + OpenCV loop", WHY),
        pending(SECTION, "peak memory: clip vs a clip ten times longer", WHY),
    ]
