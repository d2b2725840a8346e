"""Regions of face restoration and learned inpainting given in source-frame pixels
(``coords = "source"``, the default) after earlier geometry: mapped to the step's input like
every other coordinate, exactly the mapped pixels marked inferred, and refused where the
geometry cannot be mapped through."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from forensic import provenance
from forensic.case import Case
from forensic.errors import InputError
from forensic.generative.unet import tiny_unet, to_onnx
from forensic.keys import Signer
from forensic.ops import defects
from forensic.pipeline.coords import Grid, forward_map, map_regions
from forensic.pipeline.run import run_recipe
from forensic.recipe import parse_recipe
from forensic.records import read_runs
from forensic.verify import verify_case
from tests.conftest import NOW
from tests.test_generative_onnx import SCENE, UNET_MANIFEST, _case, _entry, _policy_text, _stored

CROP = 'op = "crop"\nx = 10\ny = 8\nwidth = 70\nheight = 64\n'
RESIZE = 'op = "resize"\nscale = 2.0\n'


@pytest.fixture(scope="module")
def unet_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("regions") / "unet.onnx"
    example = (torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32))
    path.write_bytes(to_onnx(tiny_unet(7), example, ["image", "mask"]))
    return path


@pytest.fixture(scope="module")
def face_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(9)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Tanh(), torch.nn.Conv2d(8, 3, 3, padding=1)
    ).eval()
    path = tmp_path_factory.mktemp("regions") / "face.onnx"
    path.write_bytes(to_onnx(net, (torch.rand(1, 3, 32, 32),), ["image"], dynamic=False))
    return path


FACE_MANIFEST = {
    "task": "face-restoration", "channels": "RGB", "input_range": [-1, 1],
    "output_range": [-1, 1], "input_size": 32, "name": "fixed-size test model",
}  # fmt: skip


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _grid(*steps: tuple[str, dict[str, Any]], width: int = 96, height: int = 96) -> Grid:
    grid = Grid(np.eye(3), width, height)
    for name, params in steps:
        step = forward_map(name, params, grid.width, grid.height)
        grid = Grid(step.matrix @ grid.matrix, step.width, step.height, grid.lost or step.lost)
    return grid


def test_region_texts_map_through_crops_resizes_and_turns() -> None:
    op = "generative.inpaint_learned"
    crop_resize = _grid(
        ("crop", {"x": 10, "y": 8, "width": 70, "height": 64}), ("resize", {"scale": 2.0})
    )
    # Source columns 30..49 -> crop 20..39 -> x2: 40..79 (pixel edges scale exactly).
    assert map_regions(op, "region", "rect(30, 28, 20, 12)", crop_resize.matrix) == (
        "rect(40, 40, 40, 24)"
    )
    # A polygon's vertices are pixel centres: u = (x - 10 + 0.5) * 2 - 0.5.
    assert map_regions(op, "region", "polygon(20, 20, 40, 20, 30, 40)", crop_resize.matrix) == (
        "polygon(20.5, 24.5, 60.5, 24.5, 40.5, 64.5)"
    )
    assert map_regions(
        op, "region", "rect(0, 0, 4, 2); rect(90, 94, 6, 2)", crop_resize.matrix
    ) == ("rect(-20, -16, 8, 4); rect(160, 172, 12, 4)")
    # A quarter turn clockwise of a 96 x 96 image: (x, y) -> (95 - y, x).
    turn = _grid(("orient", {"transform": "rotate_90_cw"}))
    assert map_regions(op, "region", "rect(10, 20, 30, 5)", turn.matrix) == "rect(71, 10, 5, 30)"
    # Any other angle: the rect's corner pixels become a polygon's vertices.
    tilted = _grid(("rotate", {"angle": 30.0, "expand": False}))
    mapped = map_regions(op, "region", "rect(40, 40, 10, 10)", tilted.matrix)
    assert mapped.startswith("polygon(")
    assert len(defects.parse_regions(op, "region", mapped)[0][1]) == 8


def _run(case: Case, signer: Signer, text: str) -> Any:
    return run_recipe(
        case, "E1", parse_recipe(text.encode(), where="r.toml"), signer=signer, now=NOW
    )


def test_learned_inpainting_after_a_crop_and_resize_marks_exactly_the_mapped_pixels(
    tmp_path: Path, signer: Signer, unet_file: Path
) -> None:
    case = _case(tmp_path, signer, _policy_text(_entry(_sha(unet_file), UNET_MANIFEST)), SCENE)
    region = "rect(30, 28, 20, 12); polygon(20, 60, 40, 60, 30, 68)"
    summary = _run(
        case, signer,
        f"[[steps]]\n{CROP}[[steps]]\n{RESIZE}[[steps]]\n"
        f'op = "generative.inpaint_learned"\nweights = "{unet_file}"\nregion = "{region}"\n',
    )  # fmt: skip
    assert summary.output["width"] == 140
    assert summary.output["height"] == 128
    # Worked by hand: the rect -> crop (20, 20, 20, 12) -> x2 rect(40, 40, 40, 24); the
    # polygon's vertices -> ((x - 10 + 0.5) * 2 - 0.5, (y - 8 + 0.5) * 2 - 0.5).
    polygon = "polygon(20.5, 104.5, 60.5, 104.5, 40.5, 120.5)"
    used = f"rect(40, 40, 40, 24); {polygon}"
    (run,) = read_runs(case.entries())
    step = run.steps[2]
    assert step["params"]["region"] == used
    assert step["given"]["region"] == region
    expected = np.zeros((128, 140), bool)
    expected[40:64, 40:80] = True
    expected |= defects.regions_mask((128, 140), defects.parse_regions("t", "r", polygon))
    pmap = _stored(case, summary.provenance)
    assert np.array_equal(pmap == provenance.INFERRED, expected)
    assert verify_case(case.root, replay=True).ok


def test_face_restoration_after_a_crop_restores_the_face_where_it_is_now(
    tmp_path: Path, signer: Signer, face_file: Path
) -> None:
    case = _case(tmp_path, signer, _policy_text(_entry(_sha(face_file), FACE_MANIFEST)), SCENE)
    summary = _run(
        case, signer,
        f"[[steps]]\n{CROP}[[steps]]\n"
        f'op = "generative.face_restoration"\nweights = "{face_file}"\n'
        'region = "rect(40, 30, 25, 30)"\n',
    )  # fmt: skip
    expected = np.zeros((64, 70), bool)
    expected[22:52, 30:55] = True  # source rows 30..59, columns 40..64, less the crop's origin
    pmap = _stored(case, summary.provenance)
    assert np.array_equal(pmap == provenance.INFERRED, expected)
    output = _stored(case, summary.output)
    cropped = SCENE[8:72, 10:80]
    assert np.array_equal(output[~expected], cropped[~expected])
    assert not np.array_equal(output[expected], cropped[expected])


def test_a_region_after_geometry_that_cannot_be_mapped_is_refused(
    tmp_path: Path, signer: Signer, unet_file: Path
) -> None:
    case = _case(tmp_path, signer, _policy_text(_entry(_sha(unet_file), UNET_MANIFEST)), SCENE)
    step = f'[[steps]]\nop = "generative.inpaint_learned"\nweights = "{unet_file}"\n'
    lens = f'[[steps]]\n{CROP}[[steps]]\nop = "lens_distortion"\nk1 = -0.2\n'
    with pytest.raises(InputError, match=r"step 3 \(generative.inpaint_learned\).*cannot be "
                       r"mapped to its input: lens distortion correction"):  # fmt: skip
        _run(case, signer, lens + step + 'region = "rect(30, 28, 20, 12)"\n')
    # Lens correction as the first geometric step: the grid has not moved, but it is lost.
    first = '[[steps]]\nop = "lens_distortion"\nk1 = -0.2\n'
    with pytest.raises(InputError, match=r"step 2 \(generative.inpaint_learned\).*cannot be "
                       r"mapped to its input: lens distortion correction"):  # fmt: skip
        _run(case, signer, first + step + 'region = "rect(30, 28, 20, 12)"\n')
    mask = defects.encode_mask(np.ones((96, 96), bool))
    with pytest.raises(InputError, match=r"step 2 .* its mask is given as encoded pixels.*lens"):
        _run(case, signer, first + step + f'mask = "{mask}"\n')
    with pytest.raises(InputError, match=r"step 2 .* its mask is given as encoded pixels"):
        _run(case, signer, f"[[steps]]\n{CROP}" + step + f'mask = "{mask}"\n')
    assert read_runs(case.entries()) == []
    # Measured on the previous step's output instead: used as given.
    summary = _run(
        case, signer,
        f'[recipe]\ncoords = "input"\n[[steps]]\n{CROP}' + step + 'region = "rect(0, 0, 5, 4)"\n',
    )  # fmt: skip
    pmap = _stored(case, summary.provenance)
    assert int((pmap == provenance.INFERRED).sum()) == 20
