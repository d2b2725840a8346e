"""The float conversions of `forensic.ops.pixels` rewritten to hold less memory (bands, in
place, one plane at a time) give the values of the whole-array formulas they replace."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import ndimage

from forensic.ops.pixels import from_float, map_planes, map_values, per_plane, to_float


def _whole_array(values: Any, dtype: Any) -> Any:
    top = int(np.iinfo(dtype).max)
    return np.rint(np.clip(np.asarray(values, np.float64), 0.0, 1.0) * top).astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("shape", [(), (0, 3), (5,), (7, 3), (300, 401), (2, 70_000), (64, 48, 3)])
def test_from_float_gives_the_whole_array_values(shape: tuple[int, ...], dtype: Any) -> None:
    rng = np.random.default_rng(len(shape) + 10 * np.dtype(dtype).itemsize)
    top = np.iinfo(dtype).max
    values = rng.uniform(-0.2, 1.2, shape)
    if values.size:
        flat = values.reshape(-1)
        third = flat.size // 3
        flat[:third] = (rng.integers(0, top, third) + 0.5) / top  # ties: half to even
    views = [values] if values.ndim < 2 else [values, values.T, np.asfortranarray(values)]
    for view in views:
        ours = from_float(view, np.dtype(dtype))
        expected = _whole_array(view, np.dtype(dtype))
        assert ours.dtype == expected.dtype
        assert ours.shape == expected.shape
        assert np.array_equal(ours, expected)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_from_float_refuses_non_finite_values(bad: float) -> None:
    values = np.zeros((40, 30, 3))
    values[31, 2, 1] = bad
    with pytest.raises(ValueError, match="non-finite"):
        from_float(values, np.dtype(np.uint8))


def test_to_float_divides_a_new_array() -> None:
    image = np.arange(256, dtype=np.uint8).reshape(16, 16)
    values = to_float(image)
    assert np.array_equal(values, image.astype(np.float64) / 255)
    assert not np.shares_memory(values, image)


def test_map_planes_gives_the_values_of_map_values_per_plane() -> None:
    rng = np.random.default_rng(4)
    rgb = rng.integers(0, 256, (90, 70, 3), dtype=np.uint8)
    images = {
        "grey": rgb[..., 1],
        "rgb": rgb,
        "rgba view": np.dstack([rgb, rgb[..., :1]])[::2, 1::3],
        "rgb16": rng.integers(0, 65536, (40, 50, 3), dtype=np.uint16),
    }

    def blur(p: Any) -> Any:
        return ndimage.gaussian_filter(p, 1.3, mode="reflect")

    for name, image in images.items():
        ours = map_planes(image, blur)
        expected = map_values(image, lambda x: per_plane(x, blur))
        assert ours.dtype == image.dtype, name
        assert np.array_equal(ours, expected), name
