"""Property-based fuzzing (hypothesis) of the loaders, the recipe parser and the policy parser.

The property, for every input: the function returns, or raises a `ForensicError`; never any
other exception, and within `MAX_SECONDS`. Inputs are valid files (small PNG, JPEG, TIFF, BMP,
16-bit PNG, FFV1 Matroska, H.264 MP4, the shipped policy, a recipe) mutated by byte
replacements, insertions, deletions and truncation, plus text assembled from TOML fragments
(brackets, braces, quotes, keys, numbers) and raw bytes. Runs are deterministic
(``derandomize=True``, no example database).

``tests/test_fuzz.py`` runs each target with `DEFAULT_EXAMPLES` examples inside ``make test``;
``python -m stress --only fuzz`` (``make stress``) runs `FULL_EXAMPLES` per target and counts
examples, failures and the slowest example.
"""

from __future__ import annotations

import contextlib
import functools
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forensic.errors import ForensicError

#: Examples per target in the default test run, and in ``make stress``.
DEFAULT_EXAMPLES = 25
FULL_EXAMPLES = 1000
QUICK_EXAMPLES = 60
#: No single example may take longer (a hang or an unbounded read would).
MAX_SECONDS = 30.0

TOML_FRAGMENTS = [
    "[recipe]\n",
    "[[steps]]\n",
    'op = "crop"\n',
    'op = "unsharp_mask"\n',
    "x = ",
    "width = ",
    "roi = ",
    "frames = ",
    "seconds = ",
    "name = ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "=",
    '"',
    "'''",
    "\n",
    "0",
    "-1",
    "1e400",
    "nan",
    "inf",
    "9223372036854775808",
    "true",
    "1979-05-27T07:32:00Z",
    "a.b.c",
    "\\u0000",
    "\u00e9",
    "[policy]\n",
    "[limits]\n",
    "max_pixels = ",
    "[profiles.evidence]\n",
    'lanes = ["generative"]\n',
]


@functools.cache
def media_bases() -> dict[str, bytes]:
    """Small valid files to mutate, by name (with the suffix they are written under)."""
    import io

    import av
    from PIL import Image

    from stress.hostile import _base_image, _encode

    img = _base_image(12, 16)
    bases = {
        "a.png": _encode(img, ".png"),
        "a.jpg": _encode(img, ".jpg"),
        "a.tif": _encode(img, ".tif"),
        "a.bmp": _encode(img, ".bmp"),
        "a16.png": _encode(img.astype(np.uint16) * 257, ".png"),
    }
    lzw = io.BytesIO()
    Image.fromarray(img).save(lzw, "TIFF", compression="tiff_lzw")
    bases["lzw.tif"] = lzw.getvalue()
    for name, fmt, codec in (("v.mkv", "matroska", "ffv1"), ("v.mp4", "mp4", "libx264")):
        out = io.BytesIO()
        with av.open(out, "w", format=fmt) as container:
            stream: Any = container.add_stream(codec, rate=25)
            stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
            for i in range(3):
                frame = av.VideoFrame.from_ndarray(
                    np.roll(_base_image(24, 32), i, axis=1), format="rgb24"
                )
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        bases[name] = out.getvalue()
    return bases


@functools.cache
def text_bases() -> dict[str, bytes]:
    from forensic.policy import default_policy_path
    from stress.hostile import VALID_RECIPE

    return {"recipe": VALID_RECIPE.encode(), "policy": default_policy_path().read_bytes()}


def _apply(base: bytes, edits: list[tuple[int, int, str]], cut: int | None) -> bytes:
    data = bytearray(base)
    for pos, value, kind in edits:
        if not data:
            break
        i = pos % len(data)
        if kind == "set":
            data[i] = value
        elif kind == "insert":
            data[i:i] = bytes([value]) * (1 + value % 7)
        else:
            del data[i : i + 1 + value % 16]
    if cut is not None and data:
        del data[cut % len(data) :]
    return bytes(data)


def mutations(base: bytes) -> st.SearchStrategy[bytes]:
    edit = st.tuples(
        st.integers(0, 1 << 20), st.integers(0, 255), st.sampled_from(["set", "insert", "delete"])
    )
    return st.builds(
        _apply, st.just(base), st.lists(edit, max_size=8), st.none() | st.integers(0, 1 << 20)
    )


def media_inputs() -> st.SearchStrategy[tuple[str, bytes]]:
    bases = media_bases()
    return st.sampled_from(sorted(bases)).flatmap(
        lambda name: st.tuples(st.just(name), mutations(bases[name]))
    )


def toml_inputs(kind: str) -> st.SearchStrategy[bytes]:
    fragments = st.lists(st.sampled_from(TOML_FRAGMENTS), max_size=40).map(
        lambda parts: "".join(parts).encode()
    )
    return st.one_of(mutations(text_bases()[kind]), fragments, st.binary(max_size=300))


def _bounded(call: Callable[[], Any]) -> None:
    """Run ``call``: returning or a ForensicError is fine; anything else, or too long, fails."""
    t0 = time.perf_counter()
    with contextlib.suppress(ForensicError):
        call()
    elapsed = time.perf_counter() - t0
    if elapsed > MAX_SECONDS:
        raise AssertionError(f"took {elapsed:.1f} s, more than {MAX_SECONDS} s")


def check_media(name: str, data: bytes) -> None:
    from forensic.media import MediaLimits, analyse

    with tempfile.TemporaryDirectory(prefix="forensic-fuzz-") as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        _bounded(
            lambda: analyse(
                path, where=name, suffix=path.suffix, limits=MediaLimits(), damage_checks=True
            )
        )


def check_decode_image(data: bytes) -> None:
    from forensic.media import decode_image

    _bounded(lambda: decode_image(data, where="fuzz"))


def check_recipe(raw: bytes) -> None:
    from forensic.recipe import parse_recipe

    _bounded(lambda: parse_recipe(raw, where="fuzz.toml"))


def check_policy(raw: bytes) -> None:
    from forensic.policy import parse_policy

    _bounded(lambda: parse_policy(raw, where="fuzz.toml"))


def targets(max_examples: int) -> dict[str, Callable[[], None]]:
    """The fuzz targets as hypothesis tests of ``max_examples`` examples each."""
    fixed = settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )

    @fixed
    @given(media_inputs())
    def media(item: tuple[str, bytes]) -> None:
        check_media(*item)

    @fixed
    @given(media_inputs().map(lambda item: item[1]))
    def decode_image(data: bytes) -> None:
        check_decode_image(data)

    @fixed
    @given(toml_inputs("recipe"))
    def recipe(raw: bytes) -> None:
        check_recipe(raw)

    @fixed
    @given(toml_inputs("policy"))
    def policy(raw: bytes) -> None:
        check_policy(raw)

    return {"media": media, "decode_image": decode_image, "recipe": recipe, "policy": policy}


def run(quick: bool) -> dict[str, int]:
    """Every target with `FULL_EXAMPLES` (quick: `QUICK_EXAMPLES`) examples; counts."""
    examples = QUICK_EXAMPLES if quick else FULL_EXAMPLES
    counts: dict[str, int] = {"examples_per_target": examples}
    failures = 0
    for name, target in targets(examples).items():
        t0 = time.perf_counter()
        try:
            target()
            counts[f"{name}_failures"] = 0
        except Exception as exc:  # a falsifying example: counted and shown
            failures += 1
            counts[f"{name}_failures"] = 1
            print(f"stress fuzz: {name}: {type(exc).__name__}: {exc}", flush=True)
        counts[f"{name}_seconds"] = round(time.perf_counter() - t0)
    counts["targets"] = len(targets(examples))
    counts["failed_targets"] = failures
    return counts
