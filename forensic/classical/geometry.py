"""Geometry: crop, quarter turns and rotation, flips, resizing, pixel aspect ratio,
perspective rectification and radial lens-distortion correction.

Coordinates are pixel centres: pixel (column x, row y) covers [x - 0.5, x + 0.5] x
[y - 0.5, y + 0.5], the convention of OpenCV's warps. Crops, flips and quarter turns move
pixels without changing any value (effect ``geometry``); everything that interpolates marks
its output ``resampled``. Interpolation is OpenCV's: coordinates are quantised to 1/32 px and
integer images are interpolated in fixed point, which is deterministic.

One module on purpose (about 670 lines): every warp here shares the pixel-centre convention,
the interpolation and fill parameters and their provenance effects.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from forensic.classical import references as ref
from forensic.errors import ParameterError
from forensic.ops.framework import Effect, Param, operation
from forensic.ops.orientation import ORIENTATIONS, orient_matrix
from forensic.ops.pixels import Image, check_box, full_scale

INTERPOLATIONS = {
    "nearest": cv2.INTER_NEAREST_EXACT,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
}
# cv2's warps have no INTER_NEAREST_EXACT; plain INTER_NEAREST is exact for them.
WARP_INTERPOLATIONS = {**INTERPOLATIONS, "nearest": cv2.INTER_NEAREST}
_INTERP_TEXT = """nearest (copies the closest pixel), bilinear (2 x 2 linear), bicubic (4 x 4
cubic convolution with OpenCV's a = -0.75; Keys derived a = -1/2) or lanczos (8 x 8 Lanczos
window, a = 4)"""
_INTERP_REFS = (ref.KEYS_1981, ref.DUCHON_1979, ref.OPENCV)


def interpolation_param(default_doc: str = "Interpolation kernel.") -> Param:
    return Param(
        "interpolation",
        "choice",
        default_doc,
        choices=tuple(INTERPOLATIONS),
    )


def fill_value(image: Image, fill: float) -> tuple[float, ...]:
    v = float(round(fill * full_scale(image.dtype)))
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels == 4:  # keep the alpha channel opaque outside the source
        return (v, v, v, float(full_scale(image.dtype)))
    return (v,) * channels


def _channels_ok(image: Image) -> Image:
    # OpenCV warps take at most 4 channels and C-contiguous input; copy, never alter.
    return np.ascontiguousarray(image)


@operation(
    name="crop",
    version="1",
    category="geometry",
    swgit_class="basic",
    summary="Keep a rectangle of the image.",
    description="""Keeps the rectangle whose top-left pixel is (x, y) and whose size is
    width x height, discarding the rest. Values are copied exactly; the offset is recorded so
    that every output pixel can be traced to its source pixel.""",
    references=(ref.GONZALEZ_WOODS,),
    effect="geometry",
    output_dtype="same as input; values copied exactly",
    params=(
        Param("x", "int", "Left column.", "px", 0, None),
        Param("y", "int", "Top row.", "px", 0, None),
        Param("width", "int", "Width.", "px", 1, None),
        Param("height", "int", "Height.", "px", 1, None),
    ),
)
def crop(image: Image, *, x: int, y: int, width: int, height: int) -> Image:
    """Crop to a rectangle.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    x, y : int
        Column and row of the top-left kept pixel.
    width, height : int
        Size of the kept rectangle; it must lie inside the image.

    Returns
    -------
    ndarray
        ``image[y:y + height, x:x + width]`` as a new array.

    Notes
    -----
    Output pixel ``(u, v)`` is input pixel ``(u + x, v + y)``.

    References
    ----------
    Gonzalez & Woods (2018), ch. 2.
    """
    check_box("crop", image, x, y, width, height)
    return image[y : y + height, x : x + width].copy()


def _rotation_effect(p: dict[str, Any]) -> Effect:
    return "geometry" if float(p["angle"]) % 90 == 0 else "resampled"


@operation(
    name="rotate",
    version="1",
    category="geometry",
    swgit_class="basic",
    summary="Rotate about the centre: exact for multiples of 90 degrees, interpolated otherwise.",
    description="""Rotates the image anticlockwise by angle degrees about its centre. A
    multiple of 90 degrees is an exact rearrangement of pixels (lossless and invertible). Any
    other angle resamples the image with the chosen interpolation kernel (nearest, bilinear,
    bicubic or Lanczos), enlarging the canvas to hold the whole rotated image when expand is
    true, and filling uncovered corners with the fill value; such output is marked
    resampled.""",
    references=(ref.KEYS_1981, ref.DUCHON_1979, ref.OPENCV),
    effect="resampled",
    effect_for=_rotation_effect,
    output_dtype="same as input; exact copy of the values for multiples of 90 degrees",
    params=(
        Param("angle", "float", "Anticlockwise rotation.", "degrees", -360.0, 360.0),
        interpolation_param(
            f"Interpolation for angles that are not multiples of 90: {_INTERP_TEXT}."
        ),
        Param("expand", "bool", "Enlarge the canvas to keep the whole image."),
        Param("fill", "float", "Value of uncovered pixels.", "fraction of full scale", 0.0, 1.0),
    ),
)
def rotate(
    image: Image,
    *,
    angle: float,
    interpolation: str = "bicubic",
    expand: bool = True,
    fill: float = 0.0,
) -> Image:
    """Rotate anticlockwise about the image centre.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    angle : float
        Degrees, anticlockwise as seen on screen.
    interpolation : {'nearest', 'bilinear', 'bicubic', 'lanczos'}
        Kernel for angles that are not multiples of 90.
    expand : bool
        Enlarge the output to contain the whole rotated image (otherwise keep the size).
    fill : float
        Fraction of full scale for pixels with no source (alpha, if any, is set opaque).

    Returns
    -------
    ndarray
        Same dtype. Multiples of 90 degrees: ``numpy.rot90`` (exact, invertible).

    Notes
    -----
    Output pixel ``p`` takes the input at ``R(-angle) (p - c_out) + c_in``, with ``c`` the
    centres ``((w - 1) / 2, (h - 1) / 2)``.

    References
    ----------
    Keys (1981), doi:10.1109/TASSP.1981.1163711; Duchon (1979).
    """
    if angle % 90 == 0:
        return np.rot90(image, k=int(angle // 90) % 4).copy()
    h, w = image.shape[:2]
    theta = math.radians(angle)
    cos, sin = abs(math.cos(theta)), abs(math.sin(theta))
    out_w, out_h = (
        (math.ceil(w * cos + h * sin - 1e-9), math.ceil(w * sin + h * cos - 1e-9))
        if expand
        else (w, h)
    )
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)
    m[0, 2] += (out_w - w) / 2
    m[1, 2] += (out_h - h) / 2
    return np.asarray(
        cv2.warpAffine(
            _channels_ok(image),
            m,
            (out_w, out_h),
            flags=WARP_INTERPOLATIONS[interpolation],
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=fill_value(image, fill),
        )
    )


@operation(
    name="flip",
    version="1",
    category="geometry",
    swgit_class="basic",
    summary="Mirror horizontally, vertically or both.",
    description="""Mirrors the image left-right (horizontal), top-bottom (vertical) or both
    (equivalent to a 180 degree rotation). Exact and its own inverse. Used to correct footage
    recorded through a mirror or with a camera mounted inverted.""",
    references=(ref.GONZALEZ_WOODS,),
    effect="geometry",
    output_dtype="same as input; values copied exactly",
    params=(
        Param(
            "direction",
            "choice",
            "Which mirror.",
            choices=("horizontal", "vertical", "both"),
        ),
    ),
)
def flip(image: Image, *, direction: str = "horizontal") -> Image:
    """Mirror the image.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    direction : {'horizontal', 'vertical', 'both'}
        Horizontal swaps left and right; vertical swaps top and bottom.

    Returns
    -------
    ndarray
        Same shape and dtype; ``flip(flip(x)) == x``.

    Notes
    -----
    Horizontal: ``y(u, v) = x(w - 1 - u, v)``; vertical: ``y(u, v) = x(u, h - 1 - v)``.

    References
    ----------
    Gonzalez & Woods (2018), ch. 2.
    """
    axes = {"horizontal": (1,), "vertical": (0,), "both": (0, 1)}[direction]
    return np.flip(image, axis=axes).copy()


def _orient_details(image: Image, p: dict[str, Any]) -> dict[str, Any]:
    return {"point_map": orient_matrix(p["transform"], image.shape[1], image.shape[0])}


@operation(
    name="orient",
    version="1",
    category="geometry",
    swgit_class="basic",
    summary="Show the picture upright: lossless quarter turns and mirrors (EXIF, display matrix).",
    description="""Phones and some cameras store the picture sideways or mirrored and record
    how to display it: EXIF Orientation in a still, a display matrix (or 'rotate' tag) in a
    video. forensic hashes and processes the pixels as stored and records that orientation at
    ingest as a fact; this step applies it, visibly and on the record, instead of a decoder
    doing so silently. transform is one of the eight exact rearrangements (none, quarter turns,
    mirrors, the two diagonal mirrors); in a recipe, auto takes the one recorded at ingest for
    the exhibit. Values are copied exactly; the forward point map is recorded.""",
    references=(ref.EXIF_232, ref.ISO_14496_12, ref.GONZALEZ_WOODS),
    effect="geometry",
    output_dtype="same as input; values copied exactly",
    details_for=_orient_details,
    params=(
        Param(
            "transform",
            "choice",
            "The rearrangement; auto: the exhibit's recorded orientation (in a recipe).",
            choices=("auto", *ORIENTATIONS),
        ),
    ),
)
def orient(image: Image, *, transform: str = "auto") -> Image:
    """Apply one of the eight lossless orientations.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    transform : str
        ``none``, ``rotate_90_cw``, ``rotate_180``, ``rotate_90_ccw`` (clockwise on screen),
        ``flip_horizontal``, ``flip_vertical``, ``transpose`` (mirror in the main diagonal) or
        ``transverse`` (mirror in the other diagonal). ``auto`` is resolved by a run from the
        exhibit's recorded orientation; called directly it is refused.

    Returns
    -------
    ndarray
        The rearranged copy; quarter turns and diagonal mirrors swap width and height.

    Notes
    -----
    EXIF Orientation 1-8 maps to none, flip_horizontal, rotate_180, flip_vertical, transpose,
    rotate_90_cw, transverse, rotate_90_ccw. Output pixel positions follow `orient_matrix`.

    References
    ----------
    CIPA DC-008-2019 (Exif 2.32), tag 0x0112; ISO/IEC 14496-12 (display matrix).
    """
    if transform == "auto":
        raise ParameterError(
            "orient",
            "transform",
            "is 'auto', which only a run can resolve (from the exhibit's recorded orientation)",
            hint="give the transform, e.g. transform = 'rotate_90_cw'",
        )
    rearranged = {
        "none": lambda a: a,
        "rotate_90_cw": lambda a: np.rot90(a, -1),
        "rotate_180": lambda a: np.rot90(a, 2),
        "rotate_90_ccw": lambda a: np.rot90(a, 1),
        "flip_horizontal": lambda a: a[:, ::-1],
        "flip_vertical": lambda a: a[::-1],
        "transpose": lambda a: np.swapaxes(a, 0, 1),
        "transverse": lambda a: np.rot90(np.swapaxes(a, 0, 1), 2),
    }[transform](image)
    return np.ascontiguousarray(rearranged)


def _resize(image: Image, width: int, height: int, interpolation: str) -> Image:
    return np.asarray(
        cv2.resize(
            _channels_ok(image), (width, height), interpolation=INTERPOLATIONS[interpolation]
        )
    )


@operation(
    name="resize",
    version="1",
    category="geometry",
    swgit_class="basic",
    summary="Scale the image (nearest, bilinear, bicubic or Lanczos).",
    description="""Resamples the image to a new size, given as a scale factor or as a width
    and/or height (the other side then keeps the aspect ratio). Interpolation estimates values
    between the original samples; it adds no information, and the output is marked
    resampled. Nearest neighbour keeps original values (blocky); bilinear is smooth; bicubic
    and Lanczos keep edges sharper but can overshoot slightly near them.""",
    references=_INTERP_REFS,
    effect="resampled",
    params=(
        Param(
            "scale",
            "float",
            "Scale factor for both sides.",
            "factor",
            0.01,
            16.0,
            exclusive_minimum=True,
            auto="from width and/or height",
        ),
        Param("width", "int", "Output width.", "px", 1, 65535, auto="from scale or height"),
        Param("height", "int", "Output height.", "px", 1, 65535, auto="from scale or width"),
        interpolation_param(f"Interpolation kernel: {_INTERP_TEXT}."),
    ),
)
def resize(
    image: Image,
    *,
    scale: float | None = None,
    width: int | None = None,
    height: int | None = None,
    interpolation: str = "bicubic",
) -> Image:
    """Resize by a factor or to a size.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    scale : float or None
        Factor for both sides; exclusive with ``width``/``height``.
    width, height : int or None
        Output size; give one to keep the aspect ratio (rounded to the nearest pixel).
    interpolation : {'nearest', 'bilinear', 'bicubic', 'lanczos'}
        Kernel (OpenCV; pixel-centre aligned).

    Returns
    -------
    ndarray
        Same dtype; the new size.

    Notes
    -----
    Output pixel ``u`` samples the input at ``(u + 0.5) w_in / w_out - 0.5`` (likewise for
    rows). Bicubic: Keys' cubic-convolution kernel with OpenCV's ``a = -0.75`` (Keys derived
    ``a = -1/2``); Lanczos: ``sinc(x) sinc(x / 4)``,
    ``|x| < 4``.

    References
    ----------
    Keys (1981), doi:10.1109/TASSP.1981.1163711; Duchon (1979).
    """
    h, w = image.shape[:2]
    if scale is not None:
        if width is not None or height is not None:
            raise ParameterError(
                "resize", "scale", "cannot be combined with width or height; give one or the other"
            )
        out_w, out_h = max(1, round(w * scale)), max(1, round(h * scale))
    elif width is not None and height is not None:
        out_w, out_h = width, height
    elif width is not None:
        out_w, out_h = width, max(1, round(h * width / w))
    elif height is not None:
        out_w, out_h = max(1, round(w * height / h)), height
    else:
        raise ParameterError("resize", "scale", "is missing: give scale, or width and/or height")
    if out_w * out_h > 400_000_000:
        raise ParameterError(
            "resize", "scale", f"gives {out_w} x {out_h} pixels, more than 400 megapixels"
        )
    return _resize(image, out_w, out_h, interpolation)


def _pixel_aspect_effect(p: dict[str, Any]) -> Effect:
    return "geometry" if p["preset"] == "custom" and p["ratio"] == 1.0 else "resampled"


PIXEL_ASPECT_PRESETS = {
    # Width : height of one stored pixel. ITU-T H.264 Table E-1 sample aspect ratios, except
    # pal_2cif, derived: 4CIF's 12:11 with every second line dropped.
    "pal_4x3": 12 / 11,  # 704 x 576 (4CIF) and 352 x 288 (CIF), 625-line 4:3
    "pal_2cif": 6 / 11,  # 704 x 288: 4CIF width, one field's lines
    "ntsc_4x3": 10 / 11,  # 704 x 480 and 352 x 240, 525-line 4:3
    "pal_16x9": 16 / 11,
    "ntsc_16x9": 40 / 33,
}


@operation(
    name="pixel_aspect",
    version="1",
    category="geometry",
    swgit_class="basic",
    summary="Correct non-square pixels (CIF, 2CIF, 4CIF DVR footage) to square ones.",
    description="""Digital video recorders store standard-definition pictures with pixels that
    are not square (CIF and 4CIF PAL pixels are 12:11, wider than tall; 2CIF stores one field
    and its pixels are 6:11). Shown as stored, people look thinner or fatter and distances
    along the two axes disagree. This operation resamples to square pixels, stretching the
    width when pixels are wide and the height when they are tall, so that no resolution is
    discarded. Presets follow the sample aspect ratios of ITU-T H.264 Table E-1 (2CIF's 6:11 is
    derived from 4CIF's 12:11, half the lines); custom uses ratio.""",
    references=(ref.H264_VUI, ref.BT601, *_INTERP_REFS),
    effect="resampled",
    effect_for=_pixel_aspect_effect,
    params=(
        Param(
            "preset",
            "choice",
            "Source format (or custom).",
            choices=("custom", *PIXEL_ASPECT_PRESETS),
        ),
        Param(
            "ratio",
            "float",
            "Custom pixel aspect ratio, width / height of one stored pixel.",
            "",
            0.1,
            10.0,
        ),
        interpolation_param(f"Interpolation kernel: {_INTERP_TEXT}."),
    ),
)
def pixel_aspect(
    image: Image, *, preset: str = "custom", ratio: float = 1.0, interpolation: str = "bicubic"
) -> Image:
    """Resample non-square pixels to square pixels.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    preset : str
        ``pal_4x3`` (12:11), ``pal_2cif`` (6:11), ``ntsc_4x3`` (10:11), ``pal_16x9`` (16:11),
        ``ntsc_16x9`` (40:33) or ``custom`` (use ``ratio``).
    ratio : float
        Pixel aspect ratio for ``custom``; 1 returns an exact copy.
    interpolation : {'nearest', 'bilinear', 'bicubic', 'lanczos'}
        Resampling kernel.

    Returns
    -------
    ndarray
        Same dtype; width multiplied by the ratio if it exceeds 1, height divided by it
        otherwise (rounded to whole pixels).

    Notes
    -----
    ``par = preset ratio``; ``w' = round(w . par)`` if ``par > 1`` else ``h' = round(h / par)``.

    References
    ----------
    ITU-T H.264 Annex E, Table E-1; ITU-R BT.601.
    """
    par = PIXEL_ASPECT_PRESETS.get(preset, ratio)
    h, w = image.shape[:2]
    if par == 1.0:
        return image.copy()
    if par > 1:
        return _resize(image, round(w * par), h, interpolation)
    return _resize(image, w, round(h / par), interpolation)


def perspective_matrix(
    corners: tuple[float, ...], width: int, height: int
) -> np.ndarray[Any, np.dtype[np.float64]]:
    """The 3 x 3 homography taking the four source corners to the output rectangle's corner
    pixel centres (0, 0), (width - 1, 0), (width - 1, height - 1), (0, height - 1)."""
    src = np.asarray(corners, np.float64).reshape(4, 2)
    dst = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], np.float64)
    return np.asarray(
        cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32)), np.float64
    )


def _quad_sides(corners: tuple[float, ...]) -> tuple[int, int]:
    p = np.asarray(corners, np.float64).reshape(4, 2)
    top, right = np.linalg.norm(p[1] - p[0]), np.linalg.norm(p[2] - p[1])
    bottom, left = np.linalg.norm(p[2] - p[3]), np.linalg.norm(p[3] - p[0])
    return max(2, round(max(top, bottom)) + 1), max(2, round(max(left, right)) + 1)


def _resolve_perspective(image: Image, p: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    _check_quad(image, p["corners"])
    w_auto, h_auto = _quad_sides(p["corners"])
    width = p["width"] if p["width"] is not None else w_auto
    height = p["height"] if p["height"] is not None else h_auto
    m = perspective_matrix(p["corners"], width, height)
    return {**p, "width": width, "height": height}, {
        "homography": [[round(float(v), 9) for v in row] for row in m]
    }


def _check_quad(image: Image, corners: tuple[float, ...]) -> None:
    h, w = image.shape[:2]
    p = np.asarray(corners, np.float64).reshape(4, 2)
    if (
        np.any(p[:, 0] < -0.5)
        or np.any(p[:, 0] > w - 0.5)
        or np.any(p[:, 1] < -0.5)
        or np.any(p[:, 1] > h - 0.5)
    ):
        raise ParameterError(
            "perspective", "corners", f"has a point outside the {w} x {h} image: {p.tolist()}"
        )
    # The quadrilateral must be convex and listed clockwise on screen (TL, TR, BR, BL).
    cross = []
    for i in range(4):
        a, b, c = p[i], p[(i + 1) % 4], p[(i + 2) % 4]
        cross.append((b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0]))
    if not all(z > 0 for z in cross):
        raise ParameterError(
            "perspective",
            "corners",
            "must be a convex quadrilateral listed top-left, top-right, bottom-right, "
            f"bottom-left (clockwise on screen); got {p.tolist()}",
        )


@operation(
    name="perspective",
    version="1",
    category="geometry",
    swgit_class="advanced",
    summary="Four-point perspective rectification (a number plate, a document, a floor).",
    description="""Maps a planar quadrilateral seen at an angle, given by its four corners in
    the image, onto an upright rectangle, by the unique projective transformation
    (homography) that takes the corners to the rectangle's corners. Used to view a number
    plate, sign or document face-on, or to measure on a plane. The result is interpolated
    (marked resampled); detail far from the camera is stretched from few pixels, and only
    points on the chosen plane are rectified correctly. The homography is recorded.""",
    references=(ref.HARTLEY_ZISSERMAN_2004, *_INTERP_REFS),
    effect="resampled",
    resolve=_resolve_perspective,
    params=(
        Param(
            "corners",
            "floats",
            "x, y of the top-left, top-right, bottom-right, bottom-left corners.",
            "px",
            -0.5,
            65535.0,
            length=8,
        ),
        Param(
            "width", "int", "Output width.", "px", 2, 16384, auto="longer of top and bottom sides"
        ),
        Param(
            "height", "int", "Output height.", "px", 2, 16384, auto="longer of left and right sides"
        ),
        interpolation_param(f"Interpolation kernel: {_INTERP_TEXT}."),
    ),
)
def perspective(
    image: Image,
    *,
    corners: tuple[float, ...],
    width: int | None = None,
    height: int | None = None,
    interpolation: str = "bicubic",
) -> Image:
    """Rectify a quadrilateral to a rectangle.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    corners : sequence of 8 floats
        ``x0, y0, x1, y1, x2, y2, x3, y3``: top-left, top-right, bottom-right, bottom-left
        corner pixel centres in the source (columns, rows).
    width, height : int or None
        Output size; None: the longer of the two opposite sides, plus one.
    interpolation : {'nearest', 'bilinear', 'bicubic', 'lanczos'}
        Resampling kernel.

    Returns
    -------
    ndarray
        ``height x width``, same dtype; corner ``i`` of the source lands on the output corner
        pixel centre ``i``.

    Notes
    -----
    Solves ``H`` (8 unknowns, ``h33 = 1``) from the four correspondences; the output pixel
    ``p`` takes the input value at ``H^-1 p`` (homogeneous coordinates).

    References
    ----------
    Hartley & Zisserman (2004), ch. 4, doi:10.1017/CBO9780511811685.
    """
    _check_quad(image, corners)
    w_auto, h_auto = _quad_sides(corners)
    out_w = width if width is not None else w_auto
    out_h = height if height is not None else h_auto
    m = perspective_matrix(corners, out_w, out_h)
    return np.asarray(
        cv2.warpPerspective(
            _channels_ok(image),
            m,
            (out_w, out_h),
            flags=WARP_INTERPOLATIONS[interpolation],
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=fill_value(image, 0.0),
        )
    )


def lens_maps(
    shape: tuple[int, int], k1: float, k2: float, cx: float, cy: float
) -> tuple[np.ndarray[Any, np.dtype[np.float32]], np.ndarray[Any, np.dtype[np.float32]]]:
    """For each output (corrected) pixel, the source position in the distorted image."""
    h, w = shape
    norm = math.hypot(w, h) / 2  # radius 1 = half the image diagonal
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    dx, dy = (xs - cx) / norm, (ys - cy) / norm
    r2 = dx * dx + dy * dy
    factor = 1 + k1 * r2 + k2 * r2 * r2
    return (
        (cx + dx * factor * norm).astype(np.float32),
        (cy + dy * factor * norm).astype(np.float32),
    )


@operation(
    name="lens_distortion",
    version="1",
    category="geometry",
    swgit_class="advanced",
    summary="Correct radial (barrel or pincushion) lens distortion.",
    description="""Wide-angle CCTV lenses bend straight lines outwards (barrel distortion) or
    inwards (pincushion). This operation removes radial distortion described by the
    Brown-Conrady polynomial: a point at normalised distance r from the distortion centre is
    seen at r (1 + k1 r^2 + k2 r^4); each corrected pixel takes the value found at that
    distorted position. Negative k1 corrects barrel distortion. r is measured in units of half
    the image diagonal, so the coefficients do not depend on the resolution. Values are
    interpolated (marked resampled); k1 and k2 should come from calibration or from making a
    known straight line straight, and are recorded.""",
    references=(ref.BROWN_1966, ref.ZHANG_2000, *_INTERP_REFS),
    effect="resampled",
    params=(
        Param("k1", "float", "Second-order radial coefficient (negative: barrel).", "", -1.0, 1.0),
        Param("k2", "float", "Fourth-order radial coefficient.", "", -1.0, 1.0),
        Param(
            "cx", "float", "Distortion centre, column.", "px", -0.5, 65535.0, auto="image centre"
        ),
        Param("cy", "float", "Distortion centre, row.", "px", -0.5, 65535.0, auto="image centre"),
        interpolation_param(f"Interpolation kernel: {_INTERP_TEXT}."),
    ),
)
def lens_distortion(
    image: Image,
    *,
    k1: float = 0.0,
    k2: float = 0.0,
    cx: float | None = None,
    cy: float | None = None,
    interpolation: str = "bicubic",
) -> Image:
    """Radial distortion correction.

    Parameters
    ----------
    image : ndarray
        Grey or colour image, uint8 or uint16.
    k1, k2 : float
        Radial coefficients of the distorting lens (model below).
    cx, cy : float or None
        Centre of distortion in pixels; None: the image centre.
    interpolation : {'nearest', 'bilinear', 'bicubic', 'lanczos'}
        Resampling kernel.

    Returns
    -------
    ndarray
        Same shape and dtype.

    Notes
    -----
    With ``d = (p - c) / R``, ``R`` half the diagonal: the corrected pixel ``p`` takes the
    input at ``c + R d (1 + k1 |d|^2 + k2 |d|^4)``; outside the input is black.

    References
    ----------
    Brown (1966), Photogrammetric Engineering 32(3), 444-462; Zhang (2000),
    doi:10.1109/34.888718.
    """
    h, w = image.shape[:2]
    if max(h, w) >= 32767:  # cv2.remap's limit (signed 16-bit coordinates)
        raise ParameterError(
            "lens_distortion", "image", f"is {w} x {h}; at most 32766 pixels per side"
        )
    centre_x = (w - 1) / 2 if cx is None else cx
    centre_y = (h - 1) / 2 if cy is None else cy
    map_x, map_y = lens_maps((h, w), k1, k2, centre_x, centre_y)
    return np.asarray(
        cv2.remap(
            _channels_ok(image),
            map_x,
            map_y,
            WARP_INTERPOLATIONS[interpolation],
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=fill_value(image, 0.0),
        )
    )
