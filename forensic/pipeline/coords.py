"""Coordinates in source-frame pixels, mapped through the geometry of earlier steps.

An examiner measures a plate's corners or a face's box on the exhibit as stored. A step that
comes after a crop, a resize, a pixel-aspect correction, a perspective warp or a quarter turn
works on another grid; taking its corners as given would silently cut the plate off (issue
16). With ``coords = "source"`` (the default) a run maps every region, box, point and corner
parameter through the forward point maps of the steps before it (`forward_map`: each geometric
operation's map from input to output pixel centres, a 3 x 3 projective matrix) and records both
the values given and the values used (`Step.given`). ``coords = "input"`` keeps the older
meaning: each step's coordinates are in its own input's pixels, used as given.

Boxes map by their pixel edges (x - 0.5 ... x + width - 0.5) and become the smallest whole-
pixel box containing the mapped corners' bounding box; points map by their centres and are
rounded where the parameter is an integer. Region texts (``rect(...)`` and ``polygon(...)``,
`forensic.ops.defects.REGION_GRAMMAR`: the ``region`` of ``generative.face_restoration`` and
``generative.inpaint_learned``, the ``add`` and ``remove`` edits of ``detect_defects`` and
``generative.fill_defects``) map region by region: a rect as a box while the map keeps
boxes upright (crops, resizes, flips, quarter turns), else as the polygon through its mapped
corner pixel centres; a polygon by its vertices (pixel centres). An encoded mask
(``HxW:base64``) given to such a step in the recipe cannot be mapped and is refused after
geometry: give the region instead.

Geometry that is not projective (lens distortion with non-zero coefficients, stabilisation,
generative enlargement) cannot be mapped through: a later coordinate given in source pixels
is then refused, naming the step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from forensic.classical.geometry import PIXEL_ASPECT_PRESETS, perspective_matrix
from forensic.errors import InputError
from forensic.ops.defects import REGION_GRAMMAR, parse_regions, regions_mask
from forensic.ops.orientation import orient_matrix
from forensic.recipe import Recipe, Step

Matrix = NDArray[np.float64]
BOX = ("x", "y", "width", "height")
REGION = ("region_x", "region_y", "region_width", "region_height")
#: Point parameters: (x name, y name).
POINTS = (("x", "y"), ("cx", "cy"))


@dataclass
class Grid:
    """Where the source frame's pixels are now: the forward map from source pixel centres to
    the current image's, the current size, and why mapping stopped (None: it did not)."""

    matrix: Matrix
    width: int
    height: int
    lost: str | None = None

    @property
    def identity(self) -> bool:
        return bool(np.allclose(self.matrix, np.eye(3), atol=1e-12))


def _scale(w_in: int, h_in: int, w_out: int, h_out: int) -> Matrix:
    """Pixel-centre aligned scaling (OpenCV's resize): u = (x + 0.5) w_out / w_in - 0.5."""
    sx, sy = w_out / w_in, h_out / h_in
    return np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]], np.float64)


def _translate(dx: float, dy: float) -> Matrix:
    return np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1]], np.float64)


def forward_map(op_name: str, params: Mapping[str, Any], width: int, height: int) -> Grid:
    """The forward point map of one step on a ``width`` x ``height`` input, with the output
    size; ``lost`` set when the step's geometry is not projective or not known here."""
    eye = np.eye(3)
    same = Grid(eye, width, height)
    p = params
    if op_name == "crop":
        return Grid(_translate(-p["x"], -p["y"]), int(p["width"]), int(p["height"]))
    if op_name in ("resize", "pixel_aspect", "super_resolve_frames"):
        w, h = _resized(op_name, p, width, height)
        return Grid(_scale(width, height, w, h), w, h)
    if op_name == "field_extract":
        offset = 0 if p.get("field", "top") == "top" else 1
        rows = len(range(offset, height, 2))
        return Grid(np.array([[1, 0, 0], [0, 0.5, -offset / 2], [0, 0, 1]]), width, rows)
    if op_name == "flip":
        direction = p.get("direction", "horizontal")
        transform = {"horizontal": "flip_horizontal", "vertical": "flip_vertical"}.get(
            direction, "rotate_180"
        )
        return Grid(np.asarray(orient_matrix(transform, width, height), np.float64), width, height)
    if op_name == "orient":
        transform = str(p["transform"])
        swap = transform in ("rotate_90_cw", "rotate_90_ccw", "transpose", "transverse")
        m = np.asarray(orient_matrix(transform, width, height), np.float64)
        return Grid(m, height if swap else width, width if swap else height)
    if op_name == "rotate":
        return _rotation(p, width, height)
    if op_name == "perspective":
        w, h = int(p["width"]), int(p["height"])
        return Grid(perspective_matrix(tuple(p["corners"]), w, h), w, h)
    if op_name == "lens_distortion":
        if p.get("k1", 0.0) == 0 and p.get("k2", 0.0) == 0:
            return same
        return replace(same, lost="lens distortion correction is not a projective map")
    if op_name == "stabilise":
        return replace(same, lost="stabilisation moves each frame by its own estimate")
    enlarges = p.get("scale") not in (None, 1) or op_name == "generative.onnx_super_resolution"
    if op_name.startswith("generative.") and enlarges:
        return replace(same, lost="a generative enlargement's geometry is not recorded here")
    return same  # values, redaction, deinterlacing, registration to the reference frame


def _resized(op_name: str, p: Mapping[str, Any], w: int, h: int) -> tuple[int, int]:
    if op_name == "super_resolve_frames":
        return w * int(p.get("scale", 2)), h * int(p.get("scale", 2))
    if op_name == "pixel_aspect":
        par = PIXEL_ASPECT_PRESETS.get(str(p.get("preset", "custom")), float(p.get("ratio", 1.0)))
        if par == 1.0:
            return w, h
        return (round(w * par), h) if par > 1 else (w, round(h / par))
    scale, width, height = p.get("scale"), p.get("width"), p.get("height")
    if scale is not None:
        return max(1, round(w * scale)), max(1, round(h * scale))
    if width is not None and height is not None:
        return int(width), int(height)
    if width is not None:
        return int(width), max(1, round(h * width / w))
    if height is not None:
        return max(1, round(w * height / h)), int(height)
    return w, h


def _rotation(p: Mapping[str, Any], w: int, h: int) -> Grid:
    angle = float(p["angle"])
    if angle % 90 == 0:
        k = int(angle // 90) % 4
        transform = ("none", "rotate_90_ccw", "rotate_180", "rotate_90_cw")[k]
        m = np.asarray(orient_matrix(transform, w, h), np.float64)
        return Grid(m, h if k % 2 else w, w if k % 2 else h)
    theta = math.radians(angle)
    cos, sin = abs(math.cos(theta)), abs(math.sin(theta))
    out_w, out_h = (
        (math.ceil(w * cos + h * sin - 1e-9), math.ceil(w * sin + h * cos - 1e-9))
        if p.get("expand", True)
        else (w, h)
    )
    affine = np.asarray(cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0))
    affine[0, 2] += (out_w - w) / 2
    affine[1, 2] += (out_h - h) / 2
    return Grid(np.vstack([affine, [0, 0, 1]]).astype(np.float64), out_w, out_h)


def _points(m: Matrix, xy: NDArray[np.float64]) -> NDArray[np.float64]:
    homogeneous = np.hstack([xy, np.ones((len(xy), 1))]) @ m.T
    return np.asarray(homogeneous[:, :2] / homogeneous[:, 2:3], np.float64)


def map_box(m: Matrix, x: float, y: float, w: float, h: float) -> tuple[int, int, int, int]:
    """The whole-pixel box holding the image of a box under ``m`` (by its pixel edges)."""
    edges = np.array(
        [
            [x - 0.5, y - 0.5],
            [x + w - 0.5, y - 0.5],
            [x + w - 0.5, y + h - 0.5],
            [x - 0.5, y + h - 0.5],
        ]
    )
    mapped = _points(m, edges)
    x0 = math.floor(float(mapped[:, 0].min()) + 0.5 + 1e-9)
    y0 = math.floor(float(mapped[:, 1].min()) + 0.5 + 1e-9)
    x1 = math.ceil(float(mapped[:, 0].max()) + 0.5 - 1e-9)
    y1 = math.ceil(float(mapped[:, 1].max()) + 0.5 - 1e-9)
    return x0, y0, max(1, x1 - x0), max(1, y1 - y0)


def map_params(step: Step, m: Matrix) -> dict[str, Any]:
    """``step``'s parameters with every coordinate mapped by ``m`` (source -> step input)."""
    params = dict(step.params)
    names = {p.name for p in step.operation().params}
    if all(k in names for k in BOX) and all(params.get(k) is not None for k in BOX):
        params.update(zip(BOX, map_box(m, *(params[k] for k in BOX)), strict=True))
    elif all(k in names for k in ("x", "y")) and params.get("x") is not None:
        (u, v) = _points(m, np.array([[params["x"], params["y"]]], np.float64))[0]
        params["x"], params["y"] = round(float(u)), round(float(v))
    if all(params.get(k) is not None for k in REGION):
        params.update(zip(REGION, map_box(m, *(params[k] for k in REGION)), strict=True))
    if params.get("cx") is not None and params.get("cy") is not None:
        (u, v) = _points(m, np.array([[params["cx"], params["cy"]]], np.float64))[0]
        params["cx"], params["cy"] = round(float(u), 6), round(float(v), 6)
    if params.get("corners") is not None:
        mapped = _points(m, np.asarray(params["corners"], np.float64).reshape(4, 2))
        params["corners"] = [round(float(v), 6) for v in mapped.reshape(-1)]
    for name in _region_names(step):
        params[name] = map_regions(step.op_name, name, str(params[name]), m)
    return params


#: Region-text parameters mapped like boxes: the region a generative step replaces, and the
#: examiner's ``add`` / ``remove`` edits of a defect mask (drawn, like every other position,
#: on the exhibit as stored).
REGION_TEXTS = ("region", "add", "remove")


def _region_names(step: Step) -> list[str]:
    """The step's parameters that hold region texts (rect(...); polygon(...)), given."""
    return [
        p.name
        for p in step.operation().params
        if p.name in REGION_TEXTS
        and p.text_format == REGION_GRAMMAR
        and step.params.get(p.name) is not None
    ]


def _keeps_boxes_upright(m: Matrix) -> bool:
    """Whether ``m`` maps every upright box onto an upright box (no shear, rotation other than
    quarter turns, or perspective)."""
    affine = abs(m[2, 0]) < 1e-12 and abs(m[2, 1]) < 1e-12
    diagonal = abs(m[0, 1]) < 1e-12 and abs(m[1, 0]) < 1e-12
    swapped = abs(m[0, 0]) < 1e-12 and abs(m[1, 1]) < 1e-12
    return bool(affine and (diagonal or swapped))


def _number(value: float) -> str:
    rounded = round(float(value), 6)
    return str(int(rounded)) if rounded == int(rounded) else str(rounded)


def map_regions(op_name: str, name: str, text: str, m: Matrix) -> str:
    """A region text (``rect(...); polygon(...)``) in source pixels, mapped by ``m``."""
    parts: list[str] = []
    for kind, numbers in parse_regions(op_name, name, text):
        if kind == "rect" and _keeps_boxes_upright(m):
            parts.append("rect({}, {}, {}, {})".format(*map_box(m, *numbers)))
            continue
        if kind == "rect":  # its corner pixels' centres (a polygon includes its edges)
            x, y, w, h = numbers
            vertices = [x, y, x + w - 1, y, x + w - 1, y + h - 1, x, y + h - 1]
        else:
            vertices = numbers
        mapped = _points(m, np.asarray(vertices, np.float64).reshape(-1, 2))
        parts.append(f"polygon({', '.join(_number(v) for v in mapped.reshape(-1))})")
    return "; ".join(parts)


def has_coordinates(step: Step) -> bool:
    p = step.params
    return (
        bool(_region_names(step))
        or step.roi is not None
        or all(p.get(k) is not None for k in ("x", "y"))
        or all(p.get(k) is not None for k in REGION)
        or (p.get("cx") is not None and p.get("cy") is not None)
        or p.get("corners") is not None
    )


def to_source_coords(recipe: Recipe, width: int, height: int) -> tuple[Recipe, list[str]]:
    """The recipe with coordinates given in source-frame pixels mapped to each step's input
    (``coords = "source"``), and warnings for values that changed under a recipe that did not
    say ``coords`` explicitly. ``coords = "input"``: unchanged."""
    if recipe.coords == "input":
        return recipe, []
    grid = Grid(np.eye(3), width, height)
    steps: list[Step] = []
    warnings: list[str] = []
    for step in recipe.steps:
        # A step whose geometry cannot be mapped (stabilisation, lens correction) leaves the
        # matrix at identity: "moved" must not be judged by the matrix alone, or coordinates
        # after such a step as the first geometric one would pass through unmapped.
        moved = not grid.identity or grid.lost is not None
        if moved and _given_mask(step):
            raise InputError(
                f'{step.label}: its mask is given as encoded pixels (coords = "source"), '
                "which are not mapped through the earlier steps' geometry"
                + (f" ({grid.lost})" if grid.lost else ""),
                hint="give the region as rect(...) or polygon(...) in source pixels, or say "
                'coords = "input" in [recipe] with a mask of the previous step\'s output size',
            )
        if has_coordinates(step) and moved:
            if grid.lost is not None:
                raise InputError(
                    f"{step.label}: its coordinates are in source-frame pixels (coords = "
                    f'"source"), which cannot be mapped to its input: {grid.lost}',
                    hint='measure on the previous step\'s output and write coords = "input" in '
                    "[recipe], or move the step before that one",
                )
            params = map_params(step, grid.matrix)
            roi = None if step.roi is None else map_box(grid.matrix, *step.roi)
            keyframes = (
                None
                if step.keyframes is None
                else tuple((k[0], *map_box(grid.matrix, *k[1:])) for k in step.keyframes)
            )
            given = dict(step.params) if step.given is None else step.given
            if step.roi is not None:
                given = {**given, "roi": list(step.roi)}
            if step.keyframes is not None:
                given = {**given, "keyframes": [list(k) for k in step.keyframes]}
            if params != step.params or roi != step.roi or keyframes != step.keyframes:
                if not recipe.coords_explicit:
                    warnings.append(
                        f"{step.label}: its coordinates were taken in source-frame pixels "
                        '(coords = "source", the default) and mapped through the earlier '
                        "steps' geometry; a recipe measured on the previous step's output must "
                        'say coords = "input" in [recipe]'
                    )
                step = replace(step, params=params, roi=roi, given=given, keyframes=keyframes)
        _check_regions_inside(step, grid)
        steps.append(step)
        params_now = _resolved_size_params(step, grid.width, grid.height)
        nxt = forward_map(step.op_name, params_now, grid.width, grid.height)
        lost = grid.lost or nxt.lost
        grid = Grid(nxt.matrix @ grid.matrix, nxt.width, nxt.height, lost)
    return replace(recipe, steps=tuple(steps)), warnings


def _check_regions_inside(step: Step, grid: Grid) -> None:
    """Refuse a region text with a region that covers no pixel of the step's input: an
    edit or a generative region that silently does nothing (drawn on another frame size, or
    off the part an earlier crop kept) must not pass as done."""
    for name in _region_names(step):
        regions = parse_regions(step.op_name, name, str(step.params[name]))
        given = parse_regions(step.op_name, name, str((step.given or step.params)[name]))
        for k, region in enumerate(regions):
            if regions_mask((grid.height, grid.width), [region]).any():
                continue
            kind, numbers = given[k] if len(given) == len(regions) else region
            shown = f"{kind}({', '.join(_number(v) for v in numbers)})"
            where = (
                "the source frame"
                if grid.identity and grid.lost is None
                else "its input, after the earlier steps' geometry"
            )
            raise InputError(
                f"{step.label}: {name} region {k + 1}, {shown}, covers no pixel of {where} "
                f"({grid.width} x {grid.height} px)",
                hint='give regions in the exhibit\'s pixels (coords = "source"), inside the '
                "part that earlier crops keep",
            )


def _given_mask(step: Step) -> bool:
    """Whether a recipe gives a region-taking step an encoded mask (``HxW:base64``) itself
    (a mask in place of its region)."""
    names = {p.name: p for p in step.operation().params}
    mask = names.get("mask")
    return (
        mask is not None
        and any(name in names for name in REGION_TEXTS)
        and (mask.text_format or "").startswith("HxW:base64")
        and step.params.get("mask") is not None
    )


def _resolved_size_params(step: Step, width: int, height: int) -> dict[str, Any]:
    """A step's parameters with defaults filled and automatic output sizes computed as the
    operation will (a perspective's width and height from its corners)."""
    op = step.operation()
    try:
        params = op.check_params(step.params)
    except InputError:
        params = dict(step.params)
    if step.op_name == "perspective" and params.get("corners") is not None:
        p = np.asarray(params["corners"], np.float64).reshape(4, 2)
        top, right = np.linalg.norm(p[1] - p[0]), np.linalg.norm(p[2] - p[1])
        bottom, left = np.linalg.norm(p[2] - p[3]), np.linalg.norm(p[3] - p[0])
        if params.get("width") is None:
            params["width"] = max(2, round(max(top, bottom)) + 1)
        if params.get("height") is None:
            params["height"] = max(2, round(max(left, right)) + 1)
    return params
