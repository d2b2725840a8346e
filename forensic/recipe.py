"""Recipes: an ordered list of operations with parameters, written in TOML.

::

    [recipe]
    name = "number-plate"                        # optional
    description = "Clarify a number plate."      # optional

    [[steps]]
    op = "crop"                                  # as `forensic ops list` prints it
    x = 120                                      # the operation's parameters
    y = 80
    width = 240
    height = 120

    [[steps]]
    op = "denoise_nl_means"                      # defaults apply to what is not given
    roi = [10, 10, 100, 50]                      # optional: only this region (x, y, w, h)

A recipe is validated completely (every step, every parameter) before any pixel is touched;
each error names the step. Recipes shipped with forensic are in `forensic/recipes/` and can be
named instead of a path (``--recipe number-plate``).
"""

from __future__ import annotations

import itertools
import math
import os
import re
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from forensic.classical.registry import registry
from forensic.errors import InputError, ParameterError
from forensic.fsutil import parse_toml, read_regular
from forensic.hashing import sha256_hex
from forensic.lanes import GENERATIVE_PREFIX, lookup
from forensic.ops.framework import Operation

_STEP_KEYS = ("op", "roi", "frames", "seconds", "keyframes", "track")
#: A keyframed box: (frame, x, y, width, height).
Keyframe = tuple[int, int, int, int, int]
_BOX = ("x", "y", "width", "height")
_RECIPE_KEYS = ("name", "description", "coords")
#: What region, box, point and corner parameters are measured on (see forensic.pipeline.coords).
COORDS = ("source", "input")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: A recipe is a few hundred bytes; the limit keeps a wrong file from being read whole.
MAX_RECIPE_BYTES = 1 << 20


class RecipeError(InputError):
    """A recipe cannot be used; the message names the step and key."""


@dataclass(frozen=True)
class Step:
    number: int
    op_name: str
    lane: str
    params: dict[str, Any]
    roi: tuple[int, int, int, int] | None = None
    frames: tuple[int, int] | None = None
    #: A time range in seconds on the stream's timeline, resolved to ``frames`` at run time.
    seconds: tuple[float, float] | None = None
    #: The parameters as the recipe gave them, when a run resolved some of them from the
    #: exhibit (orient ``auto``, coordinates in source pixels); ``params`` are then the values
    #: used. None: ``params`` are as given.
    given: dict[str, Any] | None = None
    #: A box that moves over time (video): ``x, y, width, height`` at some frames, linearly
    #: interpolated between them (`box_at`); the step's range defaults to the keyframes' span.
    keyframes: tuple[Keyframe, ...] | None = None
    #: ``"mil"``: follow the box given on the range's first frame with OpenCV's MIL tracker
    #: before the run (`forensic.pipeline.tracking`); the tracked boxes become keyframes.
    track: str | None = None
    #: How the keyframes were tracked (recorded), once they were.
    tracked: dict[str, Any] | None = None

    def box_at(self, frame: int) -> dict[str, int]:
        """The keyframed box at ``frame``: linear between the keyframes around it, rounded to
        whole pixels (halves to even); before the first and after the last, held."""
        assert self.keyframes is not None
        keys = self.keyframes
        if frame <= keys[0][0]:
            return dict(zip(_BOX, keys[0][1:], strict=True))
        for (f0, *a), (f1, *b) in itertools.pairwise(keys):
            if f0 <= frame <= f1:
                t = (frame - f0) / (f1 - f0)
                return {k: round(u + (v - u) * t) for k, u, v in zip(_BOX, a, b, strict=True)}
        return dict(zip(_BOX, keys[-1][1:], strict=True))

    def params_at(self, frame: int) -> dict[str, Any]:
        """The step's parameters for one video frame (a keyframed box placed for it)."""
        if self.keyframes is None or frame < 0:
            return self.params
        return {**self.params, **self.box_at(frame)}

    #: The operation's version to apply: None for the current one (a new run); a replay gives
    #: the recorded version, which may be a superseded one kept for replay.
    op_version: str | None = None

    @property
    def label(self) -> str:
        return f"step {self.number} ({self.op_name})"

    def operation(self) -> Operation:
        op = lookup(self.op_name, self.op_version)
        if op is None:
            what = "operation" if self.op_version is None else f"version {self.op_version}"
            raise RecipeError(f"{self.label}: no such {what}")
        return op


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    steps: tuple[Step, ...]
    raw: bytes
    source: str
    #: The frames a video run reads, given on the command line (``--frames A:B``) rather than
    #: in the recipe: steps without their own range apply to all of them.
    run_frames: tuple[int, int] | None = None
    #: The same as a time range (``--seconds S:E``), resolved to ``run_frames`` at run time.
    run_seconds: tuple[float, float] | None = None
    #: ``--frames all``: every frame of the clip (a disclosure copy of the whole clip).
    run_all: bool = False
    #: ``"source"``: coordinates are source-frame pixels, mapped through earlier geometry;
    #: ``"input"``: each step's own input pixels (the meaning before forensic 0.2).
    coords: str = "source"
    #: Whether the recipe said ``coords`` itself (else the default applied).
    coords_explicit: bool = False

    @property
    def range_record(self) -> dict[str, Any] | None:
        """What a run records of a range given with the recipe (None: none was given)."""
        if self.run_frames is None and self.run_seconds is None and not self.run_all:
            return None
        return {
            "frames": None if self.run_frames is None else list(self.run_frames),
            "seconds": None if self.run_seconds is None else list(self.run_seconds),
        }

    @property
    def sha256(self) -> str:
        return sha256_hex(self.raw)

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8")


def bundled_recipes() -> dict[str, Path]:
    """Recipes shipped with the package, by name (file stem)."""
    folder = resources.files("forensic") / "recipes"
    return {
        Path(str(p)).stem: Path(str(p))
        for p in sorted(folder.iterdir(), key=lambda q: q.name)
        if p.name.endswith(".toml")
    }


def load_recipe(ref: str | Path) -> Recipe:
    """Read a recipe from a path, or by the name of a bundled recipe."""
    path = Path(ref)
    if not os.path.lexists(path) and isinstance(ref, str) and ref in bundled_recipes():
        path = bundled_recipes()[ref]
    if not os.path.lexists(path):
        shipped = ", ".join(bundled_recipes())
        raise RecipeError(
            f"recipe not found: {ref}", hint=f"give a TOML file, or one of the shipped: {shipped}"
        )
    # A regular file of at most MAX_RECIPE_BYTES: a FIFO or /dev/zero is refused, not read.
    raw = read_regular(path, what="recipe", max_bytes=MAX_RECIPE_BYTES, error=RecipeError)
    return parse_recipe(raw, where=str(path))


def parse_recipe(raw: bytes, *, where: str) -> Recipe:
    """Parse and statically validate a recipe (names, types, ranges; not yet the image)."""
    if len(raw) > MAX_RECIPE_BYTES:
        raise RecipeError(
            f"{where}: larger than {MAX_RECIPE_BYTES:,} bytes, the limit for a recipe"
        )
    data = parse_toml(raw, where=where, error=RecipeError)
    for key in data:
        if key not in ("recipe", "steps"):
            raise RecipeError(
                f"{where}: unknown top-level key {key!r}",
                hint="a recipe has an optional [recipe] table and [[steps]] tables",
            )
    meta = data.get("recipe", {})
    if not isinstance(meta, dict):
        raise RecipeError(f"{where}: [recipe] must be a table")
    for key, value in meta.items():
        if key not in _RECIPE_KEYS or not isinstance(value, str):
            raise RecipeError(f"{where}: [recipe] may only hold texts {', '.join(_RECIPE_KEYS)}")
    # Without a [recipe] name, the file's name serves, tidied to the characters a name allows.
    name = meta.get("name") or re.sub(r"[^A-Za-z0-9._-]+", "-", Path(where).stem).strip("-._")
    name = name or "recipe"
    if not _NAME.match(name):
        raise RecipeError(f"{where}: recipe name {name!r} must be letters, digits, '.', '_' or '-'")
    coords = meta.get("coords", "source")
    if coords not in COORDS:
        raise RecipeError(
            f"{where}: [recipe] coords is {coords!r}; allowed: 'source' (source-frame pixels, "
            "the default) or 'input' (each step's own input pixels)"
        )
    steps_data = data.get("steps")
    if not isinstance(steps_data, list) or not steps_data:
        raise RecipeError(f'{where}: no steps; add at least one [[steps]] table with op = "NAME"')
    steps = tuple(_step(where, i, s) for i, s in enumerate(steps_data, start=1))
    return Recipe(
        name=name,
        description=meta.get("description", ""),
        steps=steps,
        raw=raw,
        source=where,
        coords=coords,
        coords_explicit="coords" in meta,
    )


def _step(where: str, number: int, data: Any) -> Step:
    if not isinstance(data, dict):
        raise RecipeError(f"{where}: step {number} must be a [[steps]] table")
    op_name = data.get("op")
    if not isinstance(op_name, str) or not op_name:
        raise RecipeError(f'{where}: step {number} has no op = "NAME"')
    label = f"{where}: step {number} ({op_name})"
    params = {k: v for k, v in data.items() if k not in _STEP_KEYS}
    roi = _box(label, data.get("roi"))
    frames = _frames(label, data.get("frames"))
    seconds = _seconds(label, data.get("seconds"))
    if frames is not None and seconds is not None:
        raise RecipeError(f"{label}: give frames or seconds, not both")
    keyframes = _keyframes(label, data.get("keyframes"))
    track = data.get("track")
    if track is not None:
        if track != "mil":
            raise RecipeError(f"{label}: track is {track!r}; allowed: 'mil' (OpenCV's MIL tracker)")
        if keyframes is not None or frames is None:
            raise RecipeError(
                f"{label}: track follows x, y, width, height from the first of frames = "
                "[first, last]; give those (not keyframes)"
            )
    if keyframes is not None:
        if any(k in params for k in _BOX):
            raise RecipeError(f"{label}: give keyframes or x, y, width, height, not both")
        if seconds is not None:
            raise RecipeError(f"{label}: keyframes are frame numbers; give frames, not seconds")
        params = {**params, **dict(zip(_BOX, keyframes[0][1:], strict=True))}
        if frames is None:
            frames = (keyframes[0][0], keyframes[-1][0])
    if op_name.startswith(GENERATIVE_PREFIX):
        if roi is not None:
            raise RecipeError(
                f"{label}: roi is not allowed on a generative step",
                hint="inpainting takes its own region (x, y, width, height); crop first to "
                "confine super-resolution",
            )
        if keyframes is not None:
            raise RecipeError(f"{label}: keyframes are not allowed on a generative step")
        # Checked against the policy before anything else; parameters are the lane's business.
        return Step(number, op_name, "generative", params, roi, frames, seconds)
    ops = registry(include_temporal=True)
    if op_name not in ops:
        close = [n for n in ops if op_name.lower() in n or n in op_name.lower()]
        raise RecipeError(
            f"{label}: no such operation",
            hint=(f"did you mean {', '.join(close)}? " if close else "")
            + "`forensic ops list` prints the operations",
        )
    op = ops[op_name]
    if (keyframes is not None or track is not None) and (
        not all(op_has in {p.name for p in op.params} for op_has in _BOX)
        or getattr(op, "temporal", "frame") != "frame"
    ):
        raise RecipeError(
            f"{label}: keyframes are for operations on a box (x, y, width, height), such as "
            "the redact_* operations"
        )
    try:
        op.check_params(params)
    except ParameterError as exc:
        raise RecipeError(f"{label}: {exc.detail}", hint=exc.hint) from None
    if roi is not None and getattr(op, "temporal", "frame") != "frame":
        raise RecipeError(
            f"{label}: roi is not for a temporal operation ({op_name} works over frames)",
            hint="use the operation's own region parameters (`forensic ops show "
            f"{op_name}`), or crop first",
        )
    if roi is not None and op.effect != "values":
        raise RecipeError(
            f"{label}: roi is only for operations that change values in place, and "
            f"{op_name} has effect {op.effect!r}",
            hint="crop first, or use the operation's own region parameters",
        )
    if keyframes is not None:
        for kf in keyframes:
            try:
                op.check_params({**params, **dict(zip(_BOX, kf[1:], strict=True))})
            except ParameterError as exc:
                raise RecipeError(f"{label}: keyframe {list(kf)}: {exc.detail}") from None
    return Step(
        number, op_name, op.lane, params, roi, frames, seconds, keyframes=keyframes, track=track
    )


def _keyframes(label: str, value: Any) -> tuple[Keyframe, ...] | None:
    if value is None:
        return None
    ok = isinstance(value, list) and len(value) >= 1
    rows: list[Keyframe] = []
    for row in value if ok else []:
        if (
            not isinstance(row, list)
            or len(row) != 5
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in row)
            or min(row[:3]) < 0
            or min(row[3:]) < 1
        ):
            ok = False
            break
        rows.append((row[0], row[1], row[2], row[3], row[4]))
    if not ok or any(b[0] <= a[0] for a, b in itertools.pairwise(rows)):
        raise RecipeError(
            f"{label}: keyframes must be a list of [frame, x, y, width, height] (whole "
            "numbers, frames increasing), not " + repr(value)[:80],
            hint="e.g. keyframes = [[0, 40, 30, 24, 24], [59, 200, 40, 24, 24]]",
        )
    return tuple(rows)


def _box(label: str, value: Any) -> tuple[int, int, int, int] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) != 4
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        or value[0] < 0
        or value[1] < 0
        or value[2] < 1
        or value[3] < 1
    ):
        raise RecipeError(
            f"{label}: roi must be [x, y, width, height] with x, y >= 0 and width, height >= 1,"
            f" not {value!r}"
        )
    return (value[0], value[1], value[2], value[3])


def _frames(label: str, value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        or value[0] < 0
        or value[1] < value[0]
    ):
        raise RecipeError(f"{label}: frames must be [first, last] with 0 <= first <= last")
    return (value[0], value[1])


def _seconds(label: str, value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        or not all(math.isfinite(v) for v in value)
        or value[0] < 0
        or value[1] < value[0]
    ):
        raise RecipeError(
            f"{label}: seconds must be [start, end] in seconds with 0 <= start <= end, "
            f"not {value!r}",
            hint="the frames displayed at start and at end, and all between, are used",
        )
    return (value[0], value[1])


def resolve_times(recipe: Recipe, frame_of: Any) -> Recipe:
    """The recipe with every ``seconds`` range turned into a ``frames`` range by
    ``frame_of(seconds) -> frame index`` (the frame displayed at that time)."""
    if not any(s.seconds is not None for s in recipe.steps):
        return recipe
    steps = []
    for step in recipe.steps:
        if step.seconds is not None:
            try:
                first, last = frame_of(step.seconds[0]), frame_of(step.seconds[1])
            except InputError as exc:
                raise RecipeError(f"{step.label}: seconds: {exc.message}") from None
            step = replace(step, frames=(first, last))
        steps.append(step)
    return replace(recipe, steps=tuple(steps))


def with_range(recipe: Recipe, *, frames: str | None = None, seconds: str | None = None) -> Recipe:
    """``recipe`` run over a frame range ``"A:B"`` or a time range ``"S:E"`` given on the
    command line, so that a shipped recipe (no ranges of its own) can be named on a video."""
    if frames is not None and seconds is not None:
        raise RecipeError("give --frames or --seconds, not both")
    if frames is not None and frames.strip().lower() == "all":
        return replace(recipe, run_all=True)
    if frames is not None:
        first, last = _pair(frames, "--frames", int)
        if first < 0 or last < first:
            raise RecipeError(f"--frames {frames}: needs 0 <= A <= B (A:B, inclusive)")
        return replace(recipe, run_frames=(int(first), int(last)))
    if seconds is not None:
        start, end = _pair(seconds, "--seconds", float)
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end < start:
            raise RecipeError(f"--seconds {seconds}: needs 0 <= S <= E (S:E, in seconds)")
        return replace(recipe, run_seconds=(float(start), float(end)))
    return recipe


def _pair(text: str, option: str, kind: type[int] | type[float]) -> tuple[float, float]:
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError(text)
        return kind(parts[0].strip()), kind(parts[1].strip())
    except ValueError:
        example = "0:99" if kind is int else "2.5:4"
        raise RecipeError(
            f"{option} {text!r} is not a range", hint=f"write first:last, e.g. {option} {example}"
        ) from None
