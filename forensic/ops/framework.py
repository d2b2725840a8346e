"""The operation framework: pure functions plus the metadata a court expert needs.

Both lanes register with it: the classical lane (`forensic.classical`) and the quarantined
generative lane (`forensic.generative`) declare their operations with `operation`, each under
its own ``lane``; neither imports the other. `registered` is one lane's table.

Every operation is a function ``op(image, *, param=default, ...)`` decorated with
`operation`. The decorator records the metadata (name, version, SWGIT class, description,
references, parameter schema, provenance effect, output dtype, determinism) and wraps the
function so that *every* call, direct or through the registry, is validated first: the image
(dtype, shape) and each parameter (type, range) are checked, and a bad one raises
`ParameterError` naming it and the allowed values. Defaults live in one place, the function
signature; the decorator reads them from there and refuses, at import time, a schema that
disagrees with the signature.

A parameter whose default is ``None`` and that carries an ``auto`` text is filled from the
image by the operation's ``resolve`` hook (noise level, motion-blur length...). `Operation.run`
returns the resolved values so that the journal records what was actually used, and a replay
with those values does not depend on the estimator.

Temporal operations work on a range of video frames instead of one image (``temporal``):

* ``"frame"`` (the default, every single-image operation): ``impl(image, **params) -> Image``,
  applied with `Operation.run`.
* ``"map"``: N frames in, N frames out, streaming (registration, stabilisation):
  ``impl(frames, **params)`` yields one ``(frame, details)`` per input frame, in order, and
  consumes ``frames`` lazily, holding at most its own window (never the clip). Applied with
  `Operation.stream`.
* ``"reduce"``: N frames in, one image out (averaging, multi-frame super-resolution):
  ``impl(frames, **params) -> (image, details)``. Applied with `Operation.reduce`; an
  automatic (``None``) parameter that the implementation estimated is reported in ``details``
  under the parameter's own name and recorded as the value used.

Every frame is validated like an image and must have the first frame's shape and dtype; a bad
one raises `ParameterError` naming ``frames`` and the frame's position (0 = the first frame of
the range). Details are JSON-serialisable. `registry` lists the single-image operations (the
ones a still image can use); ``registry(include_temporal=True)`` lists all of them, and `get`
finds either kind.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, cast

import numpy as np
from numpy.typing import NDArray

from forensic.errors import ParameterError

Image = NDArray[Any]
#: The lane an operation belongs to unless its decorator says otherwise.
LANE = "classical"

SwgitClass = Literal["basic", "advanced", "redaction"]
#: What an operation does to provenance, from least to most invasive:
#: ``values``: each output pixel is a function of input values at (or around) the same place;
#: ``geometry``: pixels are moved or dropped without resampling (crop, flip, quarter turns);
#: ``resampled``: new pixel positions are interpolated from neighbours;
#: ``redaction``: a region is deliberately destroyed for a disclosure copy.
#: ``inferred``: pixels invented (generative lane only; never a classical operation's effect).
#: ``analysis``: no pixel changes; the step measures the image (defect masks) and records it.
Effect = Literal["values", "geometry", "resampled", "redaction", "inferred", "analysis"]
EFFECTS: tuple[Effect, ...] = (
    "values", "geometry", "resampled", "redaction", "inferred", "analysis"
)  # fmt: skip
Kind = Literal["int", "float", "bool", "choice", "floats", "str", "psf"]
#: How an operation meets video (see the module docstring): one image at a time, N frames to
#: N frames (streaming), or N frames to one image.
Temporal = Literal["frame", "map", "reduce"]
TEMPORAL_KINDS: tuple[Temporal, ...] = ("frame", "map", "reduce")
#: What a "map" operation yields per input frame: the output frame and its details.
FrameResult = tuple[Image, dict[str, Any]]

SUPPORTED_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16))
SAME_DTYPE = "same as input (uint8 or uint16); values are rounded half-to-even and clipped"
DETERMINISTIC = (
    "Deterministic: no randomness; bit-identical output for the same input, pinned library "
    "versions and CPU architecture, whatever the thread count (tested)."
)


@dataclass(frozen=True)
class Reference:
    """A scientific reference as printed in the report."""

    citation: str
    doi: str | None = None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"citation": self.citation, "doi": self.doi, "note": self.note}


@dataclass(frozen=True)
class Param:
    """One parameter of an operation: type, unit, range and meaning.

    ``default`` is filled in by `operation` from the function signature. ``auto`` explains
    what a ``None`` value means (a value estimated from the image).
    """

    name: str
    kind: Kind
    description: str
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    choices: tuple[str, ...] = ()
    length: int | None = None
    auto: str | None = None
    text_format: str | None = None
    #: For kinds the registry cannot check by itself (a PSF): (operation, value) -> value.
    validator: Callable[[str, Any], Any] | None = field(default=None, compare=False)
    default: Any = None

    @property
    def required(self) -> bool:
        return self.default is None and self.auto is None

    def allowed(self) -> str:
        """The allowed values, in words, for error messages and ``ops show``."""
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "bool":
            return "true or false"
        if self.kind in ("str", "psf"):
            return self.text_format or "a text"
        what = "an integer" if self.kind == "int" else "a number"
        if self.kind == "floats":
            what = f"{self.length} numbers, each"
        if self.maximum is None and self.minimum is not None:
            text = f"{what} {'>' if self.exclusive_minimum else '>='} {_num(self.minimum)}"
        else:
            lo = "-inf" if self.minimum is None else _num(self.minimum)
            hi = "inf" if self.maximum is None else _num(self.maximum)
            bracket = "(" if self.exclusive_minimum else "["
            text = f"{what} in {bracket}{lo}, {hi}]"
        if self.unit:
            text += f" {self.unit}"
        if self.auto is not None:
            text += ", or null (auto)"
        return text

    def validate(self, op: str, value: Any) -> Any:
        """Return ``value`` normalised to the schema type, or raise `ParameterError`."""
        if value is None:
            if self.auto is not None:
                return None
            raise ParameterError(op, self.name, f"is required; allowed: {self.allowed()}")
        if self.validator is not None:
            return self.validator(op, value)
        if self.kind == "bool":
            if not isinstance(value, bool | np.bool_):
                raise ParameterError(op, self.name, f"is {value!r}; allowed: true or false")
            return bool(value)
        if self.kind == "choice":
            if not isinstance(value, str) or value not in self.choices:
                raise ParameterError(op, self.name, f"is {value!r}; allowed: {self.allowed()}")
            return value
        if self.kind == "str":
            if not isinstance(value, str) or not value.strip():
                raise ParameterError(op, self.name, f"is {value!r}; allowed: a non-empty text")
            return value
        if self.kind == "floats":
            if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
                raise ParameterError(op, self.name, f"is {value!r}; allowed: {self.allowed()}")
            items = list(value)
            if len(items) != self.length:
                raise ParameterError(
                    op, self.name, f"has {len(items)} values; allowed: {self.allowed()}"
                )
            return tuple(self._number(op, v, integer=False) for v in items)
        return self._number(op, value, integer=self.kind == "int")

    def _number(self, op: str, value: Any, *, integer: bool) -> float | int:
        if isinstance(value, bool | np.bool_) or not isinstance(
            value, int | float | np.integer | np.floating
        ):
            raise ParameterError(op, self.name, f"is {value!r}; allowed: {self.allowed()}")
        if not math.isfinite(float(value)):
            raise ParameterError(op, self.name, f"is {value!r}; allowed: {self.allowed()}")
        if integer:
            if float(value) != int(value):
                raise ParameterError(op, self.name, f"is {value!r}; allowed: {self.allowed()}")
            number: float | int = int(value)
        else:
            number = float(value)
            if not math.isfinite(number):
                raise ParameterError(op, self.name, f"is {value!r}; allowed: {self.allowed()}")
        too_low = self.minimum is not None and (
            number <= self.minimum if self.exclusive_minimum else number < self.minimum
        )
        too_high = self.maximum is not None and number > self.maximum
        if too_low or too_high:
            raise ParameterError(op, self.name, f"is {_num(number)}; allowed: {self.allowed()}")
        return number

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.kind,
            "description": self.description,
            "unit": self.unit or None,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "exclusive_minimum": self.exclusive_minimum,
            "choices": list(self.choices) or None,
            "length": self.length,
            "auto": self.auto,
            "text_format": self.text_format,
            "default": list(self.default) if isinstance(self.default, tuple) else self.default,
            "required": self.required,
            "allowed": self.allowed(),
        }


def box_params(region: str = "the region") -> tuple[Param, ...]:
    """The x, y, width, height parameters of an operation that works on a rectangle."""
    return (
        Param("x", "int", f"Left column of {region}.", "px", 0, None),
        Param("y", "int", f"Top row of {region}.", "px", 0, None),
        Param("width", "int", f"Width of {region}.", "px", 1, None),
        Param("height", "int", f"Height of {region}.", "px", 1, None),
    )


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


#: Fills automatic (None) parameters from the image; returns (params, details).
Resolver = Callable[[Image, dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]]


@dataclass(frozen=True)
class OpResult:
    """The output of `Operation.run`: the image, the parameters actually used, and details
    worth recording (estimates, iterations run), all JSON-serialisable."""

    image: Image
    params: dict[str, Any]
    effect: Effect
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Operation:
    """A registered classical operation. Call it like the function it wraps."""

    name: str
    version: str
    category: str
    swgit_class: SwgitClass
    summary: str
    description: str
    references: tuple[Reference, ...]
    params: tuple[Param, ...]
    effect: Effect
    output_dtype: str
    determinism: str
    impl: Callable[..., Any]
    colour_only: bool = False
    resolve: Resolver | None = None
    effect_for: Callable[[dict[str, Any]], Effect] | None = None
    details_for: Callable[[Image, dict[str, Any]], dict[str, Any]] | None = None
    lane: str = LANE
    temporal: Temporal = "frame"

    @property
    def docstring(self) -> str:
        return inspect.getdoc(self.impl) or ""

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def required_params(self) -> list[str]:
        return [p.name for p in self.params if p.required]

    def bind(self, image: Any, params: Mapping[str, Any]) -> dict[str, Any]:
        """Validate ``image`` and ``params``; return every parameter, defaults filled in."""
        check_image(self.name, image, colour_only=self.colour_only)
        return self.check_params(params)

    def check_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Validate parameter names and values alone (no image); defaults filled in."""
        known = {p.name for p in self.params}
        for key in params:
            if key not in known:
                allowed = ", ".join(sorted(known)) or "none"
                raise ParameterError(
                    self.name,
                    key,
                    f"is not a parameter of this operation (its parameters: {allowed})",
                )
        return {p.name: p.validate(self.name, params.get(p.name, p.default)) for p in self.params}

    def run(self, image: Image, params: Mapping[str, Any] | None = None) -> OpResult:
        """Validate, resolve automatic values, apply. The input array is never modified."""
        self._require("frame")
        bound = self.bind(image, params or {})
        details: dict[str, Any] = {}
        if self.resolve is not None:
            bound, details = self.resolve(image, bound)
            # What was filled in is what the journal records and a replay uses: hold it to
            # the same schema as values given by hand.
            bound = {p.name: p.validate(self.name, bound[p.name]) for p in self.params}
        out = self.impl(image, **bound)
        effect = self.effect_for(bound) if self.effect_for is not None else self.effect
        if self.details_for is not None:
            details = {**details, **self.details_for(image, bound)}
        return OpResult(image=out, params=bound, effect=effect, details=details)

    def __call__(self, image: Image, **params: Any) -> Image:
        return self.run(image, params).image

    def stream(
        self, frames: Iterable[Image], params: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, Any], Iterator[FrameResult]]:
        """Apply a "map" operation: the bound parameters, and an iterator of (frame, details).

        Parameters are validated now; frames lazily, as the iterator pulls them (a bad frame
        raises `ParameterError` naming ``frames`` and its position). Input frames are never
        modified; output frames are new arrays.
        """
        self._require("map")
        bound = self.check_params(params or {})
        return bound, self._mapped(frames, bound)

    def _mapped(self, frames: Iterable[Image], bound: dict[str, Any]) -> Iterator[FrameResult]:
        yield from self.impl(self.checked_frames(frames), **bound)

    def reduce(self, frames: Iterable[Image], params: Mapping[str, Any] | None = None) -> OpResult:
        """Apply a "reduce" operation to a frame range: one output image and its details.

        Automatic (``None``) parameters that the operation estimated are taken from the
        details (same name) into the returned parameters, so that the journal records them.
        """
        self._require("reduce")
        bound = self.check_params(params or {})
        out, details = self.impl(self.checked_frames(frames), **bound)
        for p in self.params:
            if bound[p.name] is None and p.auto is not None and details.get(p.name) is not None:
                bound[p.name] = p.validate(self.name, details[p.name])
        effect = self.effect_for(bound) if self.effect_for is not None else self.effect
        return OpResult(image=out, params=bound, effect=effect, details=details)

    def checked_frames(self, frames: Iterable[Image]) -> Iterator[Image]:
        """``frames``, each checked as it is pulled: a supported image with the first frame's
        shape and dtype. An empty range is refused when the iterator is exhausted."""
        if isinstance(frames, np.ndarray | str | bytes) or not isinstance(frames, Iterable):
            raise ParameterError(
                self.name,
                "frames",
                f"must be an iterable of images (a list or a generator), not "
                f"{type(frames).__name__}",
                hint="a temporal operation takes a frame range, e.g. [frame0, frame1, ...]",
            )
        return self._checked(frames)

    def _checked(self, frames: Iterable[Image]) -> Iterator[Image]:
        first: Image | None = None
        position = -1
        for position, frame in enumerate(frames):
            try:
                check_image(self.name, frame, colour_only=self.colour_only)
            except ParameterError as exc:
                message = exc.detail.removeprefix("parameter 'image' ")
                raise ParameterError(
                    self.name, "frames", f"frame {position} {message}", hint=exc.hint
                ) from None
            if first is None:
                first = frame
            elif frame.shape != first.shape or frame.dtype != first.dtype:
                raise ParameterError(
                    self.name,
                    "frames",
                    f"frame {position} is {frame.shape} {frame.dtype} but frame 0 is "
                    f"{first.shape} {first.dtype}; every frame of a range must match",
                )
            yield frame
        if position < 0:
            raise ParameterError(self.name, "frames", "is empty: the range holds no frame")

    def _require(self, kind: Temporal) -> None:
        """Refuse to apply the operation the wrong way (one image vs a frame range)."""
        if self.temporal == kind:
            return
        if self.temporal == "frame":
            raise ParameterError(
                self.name,
                "frames",
                "cannot be given: this operation works on one image at a time",
                hint="apply it to each frame with Operation.run(image, params)",
            )
        what = "N frames to N frames" if self.temporal == "map" else "N frames to one image"
        use = "stream" if self.temporal == "map" else "reduce"
        raise ParameterError(
            self.name,
            "image" if kind == "frame" else "frames",
            f"does not fit: {self.name} is a temporal operation: it runs over a video frame "
            f"range ({self.temporal}, {what}), applied with Operation.{use}(frames, params)",
            hint="in a recipe, give the step its range: frames = [first, last]",
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "lane": self.lane,
            "category": self.category,
            "swgit_class": self.swgit_class,
            "summary": self.summary,
            "description": self.description,
            "references": [r.as_dict() for r in self.references],
            "parameters": [p.as_dict() for p in self.params],
            "effect": self.effect,
            "output_dtype": self.output_dtype,
            "colour_only": self.colour_only,
            "determinism": self.determinism,
            "temporal": self.temporal,
        }


#: Every lane's operations, by lane and name (see `registered`).
_LANES: dict[str, dict[str, Operation]] = {}
_F = TypeVar("_F", bound=Callable[..., Any])


def operation(
    *,
    name: str,
    version: str,
    category: str,
    swgit_class: SwgitClass,
    summary: str,
    description: str,
    references: Sequence[Reference],
    params: Sequence[Param] = (),
    effect: Effect = "values",
    output_dtype: str = SAME_DTYPE,
    determinism: str = DETERMINISTIC,
    colour_only: bool = False,
    resolve: Resolver | None = None,
    effect_for: Callable[[dict[str, Any]], Effect] | None = None,
    details_for: Callable[[Image, dict[str, Any]], dict[str, Any]] | None = None,
    lane: str = LANE,
    into: dict[str, Operation] | None = None,
    temporal: Temporal = "frame",
) -> Callable[[_F], _F]:
    """Register ``fn`` as an operation and return a validating wrapper.

    The operation goes into its ``lane``'s table (`registered`), or into ``into`` when given:
    the generative lane's operations share the metadata and validation of the classical ones
    but never appear in the classical table.

    ``temporal`` says how the operation meets video (module docstring). The wrapper of a
    "map" operation returns the iterator of (frame, details) that `Operation.stream` gives;
    that of a "reduce" operation the (image, details) pair of `Operation.reduce`.
    """
    target = registered(lane) if into is None else into
    if temporal not in TEMPORAL_KINDS:
        raise TypeError(f"{name}: temporal must be one of {TEMPORAL_KINDS}, not {temporal!r}")

    def decorate(fn: _F) -> _F:
        filled = tuple(_with_default(fn, p) for p in params)
        signature = list(inspect.signature(fn).parameters.values())
        signature_names = [p.name for p in signature if p.kind is p.KEYWORD_ONLY]
        if signature_names != [p.name for p in filled]:
            raise TypeError(
                f"{name}: schema {[p.name for p in filled]} != signature {signature_names}"
            )
        if temporal != "frame" and (not signature or signature[0].name != "frames"):
            raise TypeError(f"{name}: a temporal operation's first argument must be 'frames'")
        if name in target:
            raise TypeError(f"operation {name!r} registered twice")
        op = Operation(
            name=name,
            version=version,
            category=category,
            swgit_class=swgit_class,
            summary=summary,
            description=" ".join(description.split()),
            references=tuple(references),
            params=filled,
            effect=effect,
            output_dtype=output_dtype,
            determinism=" ".join(determinism.split()),
            impl=fn,
            colour_only=colour_only,
            resolve=resolve,
            effect_for=effect_for,
            details_for=details_for,
            lane=lane,
            temporal=temporal,
        )
        target[name] = op

        @functools.wraps(fn)
        def validated(image: Any, **kwargs: Any) -> Any:
            if op.temporal == "map":
                return op.stream(image, kwargs)[1]
            if op.temporal == "reduce":
                result = op.reduce(image, kwargs)
                return result.image, result.details
            return op(image, **kwargs)

        validated.operation = op  # type: ignore[attr-defined]
        return cast(_F, validated)

    return decorate


def _with_default(fn: Callable[..., Any], param: Param) -> Param:
    sig = inspect.signature(fn).parameters.get(param.name)
    if sig is None:
        raise TypeError(f"{fn.__name__}: schema parameter {param.name!r} is not in the signature")
    if sig.default is inspect.Parameter.empty:
        # A required parameter (a crop box, corner points): no default, no auto.
        if param.auto is not None:
            raise TypeError(f"{fn.__name__}: required {param.name!r} cannot have an 'auto' text")
        return dataclasses.replace(param, default=None)
    if sig.default is None and param.auto is None:
        raise TypeError(f"{fn.__name__}: {param.name!r} defaults to None but has no 'auto' text")
    # The default must itself be valid: a schema that rejects its own default is a bug.
    param.validate(fn.__name__, sig.default)
    return dataclasses.replace(param, default=sig.default)


def registered(lane: str) -> dict[str, Operation]:
    """The live table of the operations registered so far under ``lane``, by name.

    The lanes wrap it (`forensic.classical.registry`, `forensic.generative.registry`), since
    only they know which modules must be imported for every operation to be registered.
    """
    return _LANES.setdefault(lane, {})


def check_image(op: str, image: Any, *, colour_only: bool = False) -> None:
    """Refuse anything but a 2-D grey or H x W x 3/4 colour array of uint8 or uint16."""
    if not isinstance(image, np.ndarray):
        raise ParameterError(op, "image", f"must be a numpy array, not {type(image).__name__}")
    if image.dtype not in SUPPORTED_DTYPES:
        raise ParameterError(
            op,
            "image",
            f"has dtype {image.dtype}; allowed: uint8 or uint16",
            hint="decode evidence with forensic.media.decode_image, which keeps the stored depth",
        )
    if image.ndim == 2:
        grey = True
    elif image.ndim == 3 and image.shape[2] in (3, 4):
        grey = False
    else:
        raise ParameterError(
            op,
            "image",
            f"has shape {image.shape}; allowed: (H, W), (H, W, 3) RGB or (H, W, 4) RGBA",
        )
    if min(image.shape[:2]) < 1:
        raise ParameterError(op, "image", f"is empty (shape {image.shape})")
    if colour_only and grey:
        raise ParameterError(op, "image", "is greyscale; this operation needs a colour (RGB) image")
