"""The eight lossless orientations of a picture (quarter turns and mirrors), as recorded at
ingest (EXIF Orientation of stills, the display matrix of video) and applied by the ``orient``
operation. Kept here, below both `forensic.media` and `forensic.classical`, so that the fact
recorded at ingest and the step that applies it share one table.
"""

from __future__ import annotations

#: The eight lossless orientations: the dihedral group of the rectangle. Names follow the
#: transform that makes the stored picture upright (EXIF Orientation 1-8 map onto them).
ORIENTATIONS = (
    "none",
    "rotate_90_cw",
    "rotate_180",
    "rotate_90_ccw",
    "flip_horizontal",
    "flip_vertical",
    "transpose",
    "transverse",
)
#: EXIF Orientation (CIPA DC-008 tag 0x0112) -> the transform that displays the picture upright.
EXIF_ORIENTATIONS = {
    1: "none",
    2: "flip_horizontal",
    3: "rotate_180",
    4: "flip_vertical",
    5: "transpose",
    6: "rotate_90_cw",
    7: "transverse",
    8: "rotate_90_ccw",
}


def orientation_for_rotation(ccw_degrees: float) -> str | None:
    """The transform that displays a video upright whose display matrix rotates it by
    ``ccw_degrees`` anticlockwise (PyAV's ``VideoFrame.rotation``); None if not a quarter
    turn."""
    quarter = round(ccw_degrees / 90)
    if abs(ccw_degrees - 90 * quarter) > 0.5:
        return None
    return ("none", "rotate_90_ccw", "rotate_180", "rotate_90_cw")[quarter % 4]


def orient_matrix(transform: str, width: int, height: int) -> list[list[int]]:
    """The forward point map (3 x 3, pixel centres) of ``transform`` on a width x height
    image: input pixel (x, y) lands on output pixel M (x, y, 1)."""
    w, h = width - 1, height - 1
    rows = {
        "none": ((1, 0, 0), (0, 1, 0)),
        "rotate_90_cw": ((0, -1, h), (1, 0, 0)),
        "rotate_180": ((-1, 0, w), (0, -1, h)),
        "rotate_90_ccw": ((0, 1, 0), (-1, 0, w)),
        "flip_horizontal": ((-1, 0, w), (0, 1, 0)),
        "flip_vertical": ((1, 0, 0), (0, -1, h)),
        "transpose": ((0, 1, 0), (1, 0, 0)),
        "transverse": ((0, -1, h), (-1, 0, w)),
    }[transform]
    return [list(rows[0]), list(rows[1]), [0, 0, 1]]
