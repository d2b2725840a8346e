"""Every operation on every supported input kind: input untouched, dtype kept, determinism."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from forensic.classical import registry
from tests.classical_cases import digest, params_for, sample_images

OPS = registry()
IMAGES = sample_images()
CASES = [
    (name, kind)
    for name in sorted(OPS)
    for kind in IMAGES
    if not (OPS[name].colour_only and IMAGES[kind].ndim == 2)
]
ROOT = Path(__file__).resolve().parents[1]


def _run(name: str, kind: str) -> Any:
    return OPS[name].run(IMAGES[kind], params_for(name))


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_input_untouched_and_dtype_kept(name: str, kind: str) -> None:
    image = IMAGES[kind]
    before = digest(image)
    flags = image.flags.writeable
    result = _run(name, kind)
    assert digest(image) == before, "the operation modified its input"
    assert image.flags.writeable == flags
    out = result.image
    assert out.dtype == image.dtype, f"{name} turned {image.dtype} into {out.dtype}"
    assert not np.shares_memory(out, image), "output must be a new array"
    if name == "channel_extract":
        assert out.shape == image.shape[:2]
    elif image.ndim == 3:
        assert out.shape[2:] == image.shape[2:], "channels kept (alpha too)"
    else:
        assert out.ndim == 2
    if image.dtype == np.uint16:
        assert np.any(out % 257 != 0), "16-bit output has only 8-bit levels"
    # Recordable as strict JSON: no NaN or infinity in what the journal will hold.
    json.dumps({"params": result.params, "details": result.details}, allow_nan=False)


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_same_output_twice(name: str, kind: str) -> None:
    assert digest(_run(name, kind).image) == digest(_run(name, kind).image)


_KEEPS_ALPHA = [
    (name, kind)
    for name, kind in CASES
    if kind.startswith("rgba")
    and OPS[name].effect in ("values", "redaction")  # geometry moves alpha with the pixels
    and name != "channel_extract"  # returns one grey plane
]


@pytest.mark.parametrize(("name", "kind"), _KEEPS_ALPHA)
def test_alpha_is_carried_by_value_operations(name: str, kind: str) -> None:
    image = IMAGES[kind]
    out = _run(name, kind).image
    assert np.array_equal(out[..., 3], image[..., 3])


#: Operations that are meant to change a flat image (or, for the sampler, may wobble on one).
_CHANGES_FLAT = {
    "invert", "redact_fill", "white_balance", "channel_extract", "deconvolve_unsupervised_wiener"
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize(
    "flat",
    [np.full((96, 128), 200, np.uint8), np.full((96, 128, 3), (10, 60000, 900), np.uint16)],
    ids=["grey8", "rgb16"],
)
def test_flat_frames_stay_flat_and_record_finite_values(name: str, flat: Any) -> None:
    """A black or uniform frame (a covered lens, a test card) must not turn white or black,
    and automatic estimates on it must not record NaN."""
    op = OPS[name]
    if op.colour_only and flat.ndim == 2:
        return
    params = params_for(name)
    if name == "perspective":
        params = {"corners": (5.0, 5.0, 100.0, 8.0, 90.0, 80.0, 4.0, 70.0)}
    result = op.run(flat, params)
    json.dumps({"params": result.params, "details": result.details}, allow_nan=False)
    if op.effect in ("values", "redaction") and name not in _CHANGES_FLAT:
        assert np.array_equal(result.image, flat)


_FRESH = """
import json, sys, cv2
cv2.setNumThreads(1)
from forensic.classical import registry
from tests.classical_cases import digest, params_for, sample_images
images = sample_images()
out = {}
for name, op in registry().items():
    for kind, image in images.items():
        if op.colour_only and image.ndim == 2:
            continue
        out[f"{name}/{kind}"] = digest(op.run(image, params_for(name)).image)
json.dump(out, sys.stdout)
"""


def test_same_output_in_a_fresh_single_threaded_process() -> None:
    """A new interpreter with one thread everywhere gives the same bytes as this one.

    This is what `verify --replay` relies on; it also shows that no operation depends on the
    thread count (OpenCV, OpenMP and BLAS threads are all pinned to one in the child).
    """
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONHASHSEED": "12345",
    }
    child = subprocess.run(
        [sys.executable, "-c", _FRESH], cwd=ROOT, env=env, capture_output=True, text=True,
        check=True, timeout=600,
    )  # fmt: skip
    theirs = json.loads(child.stdout)
    ours = {f"{n}/{k}": digest(_run(n, k).image) for n, k in CASES}
    differing = sorted(k for k in ours if ours[k] != theirs.get(k))
    assert not differing, differing
