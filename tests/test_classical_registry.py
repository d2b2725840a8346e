"""The registry's contract: complete metadata, a schema that matches the code, clear errors."""

from __future__ import annotations

import inspect
import json
import re
from typing import Any

import numpy as np
import pytest

from forensic.classical import get, registry
from forensic.errors import InputError, ParameterError
from forensic.ops.framework import EFFECTS, Operation, Param
from tests.classical_cases import params_for, sample_images

OPS = registry()
NAMES = sorted(OPS)
DOI = re.compile(r"^10\.\d{4,9}/\S+$")
IMAGES = sample_images()


def test_the_issue_list_is_covered() -> None:
    wanted = {
        "levels", "brightness_contrast", "equalize_histogram", "clahe", "white_balance",
        "channel_extract", "channel_mix", "invert",
        "denoise_gaussian", "denoise_median", "denoise_bilateral", "denoise_nl_means",
        "denoise_wavelet", "denoise_tv",
        "deconvolve_wiener", "deconvolve_richardson_lucy", "deconvolve_unsupervised_wiener",
        "unsharp_mask", "sharpen_laplacian",
        "crop", "rotate", "flip", "resize", "pixel_aspect", "perspective", "lens_distortion",
        "field_extract", "deinterlace_double", "deinterlace_blend",
        "redact_fill", "redact_pixelate", "redact_blur",
    }  # fmt: skip
    assert wanted <= set(OPS), sorted(wanted - set(OPS))


@pytest.mark.parametrize("name", NAMES)
def test_metadata_is_complete(name: str) -> None:
    assert OPS[name].name == name
    check_metadata(OPS[name])


def check_metadata(op: Operation) -> None:
    assert op.lane == "classical"
    assert re.fullmatch(r"\d+", op.version)
    assert op.swgit_class in ("basic", "advanced", "redaction")
    assert op.effect in EFFECTS
    assert len(op.summary) > 15
    assert op.summary.endswith(".")
    assert len(op.description.split()) >= 25, "the report needs a real paragraph"
    assert op.references, "every operation cites at least one reference"
    for ref in op.references:
        assert len(ref.citation) > 30
        assert re.search(r"\(\d{4}\)", ref.citation)
        assert ref.doi is None or DOI.match(ref.doi), ref.doi
        assert ref.doi or ref.note, "no DOI: say why (book ISBN, standard, ...)"
    assert op.output_dtype
    assert op.determinism
    for p in op.params:
        assert p.description
        assert p.kind
        assert p.allowed()


@pytest.mark.parametrize("name", NAMES)
def test_docstring_is_numpydoc_with_notes_and_references(name: str) -> None:
    doc = OPS[name].docstring
    for section in (
        "Parameters\n----------",
        "Returns\n-------",
        "Notes\n-----",
        "References\n----------",
    ):
        assert section in doc, f"{name}: docstring lacks {section.splitlines()[0]}"
    for p in OPS[name].params:
        assert re.search(rf"^{p.name}\b|, {p.name}\b", doc, re.M), f"{name}: {p.name} undocumented"


@pytest.mark.parametrize("name", NAMES)
def test_schema_matches_the_signature(name: str) -> None:
    op = OPS[name]
    sig = inspect.signature(op.impl)
    params = list(sig.parameters.values())
    assert params[0].name == "image"
    assert params[0].kind is params[0].POSITIONAL_OR_KEYWORD
    keyword = [p for p in params[1:] if p.kind is p.KEYWORD_ONLY]
    assert len(keyword) == len(params) - 1, "options must be keyword-only"
    assert [p.name for p in keyword] == [p.name for p in op.params]
    for s, p in zip(keyword, op.params, strict=True):
        expected = None if s.default is inspect.Parameter.empty else s.default
        assert p.default == expected


def test_a_missing_description_or_reference_is_caught() -> None:
    """The completeness test above must be able to fail: a bare operation fails it."""
    bare = Operation(
        name="bare", version="1", category="x", swgit_class="basic", summary="", description="",
        references=(), params=(), effect="values", output_dtype="", determinism="",
        impl=lambda image: image,
    )  # fmt: skip
    with pytest.raises(AssertionError):
        check_metadata(bare)


def test_registry_is_json_serialisable() -> None:
    text = json.dumps({n: op.as_dict() for n, op in OPS.items()})
    back = json.loads(text)
    assert back["denoise_nl_means"]["references"][0]["doi"] == "10.1109/CVPR.2005.38"
    assert back["crop"]["parameters"][0]["required"] is True


def test_redaction_is_its_own_class() -> None:
    for name, op in OPS.items():
        is_redaction = name.startswith("redact_")
        assert (op.swgit_class == "redaction") is is_redaction, name
        assert (op.effect == "redaction") is is_redaction, name


def test_unknown_operation_suggests_names() -> None:
    with pytest.raises(InputError, match="denoise_median"):
        get("median")


# -- validation: every numeric bound, every choice, unknown names, bad images ----------------


def _valid_image(op: Operation) -> np.ndarray[Any, Any]:
    return IMAGES["rgb8"] if op.colour_only else IMAGES["grey8"]


def _bound_cases() -> list[tuple[str, str, Any]]:
    cases: list[tuple[str, str, Any]] = []
    for name, op in OPS.items():
        for p in op.params:
            if p.kind in ("int", "float"):
                if p.minimum is not None:
                    cases.append((name, p.name, p.minimum - (0 if p.exclusive_minimum else 1)))
                if p.maximum is not None:
                    cases.append((name, p.name, p.maximum + 1))
                cases.append((name, p.name, "7"))
            elif p.kind == "choice":
                cases.append((name, p.name, "no-such-choice"))
            elif p.kind == "bool":
                cases.append((name, p.name, "yes"))
            elif p.kind == "floats":
                cases.append((name, p.name, (1.0, 2.0)))
    return cases


@pytest.mark.parametrize(("name", "param", "value"), _bound_cases())
def test_bad_parameter_is_named_with_its_allowed_range(name: str, param: str, value: Any) -> None:
    op = OPS[name]
    args = {**params_for(name), param: value}
    with pytest.raises(ParameterError) as err:
        op.run(_valid_image(op), args)
    assert err.value.parameter == param
    assert f"'{param}'" in str(err.value)
    assert name in str(err.value)
    assert "allowed" in str(err.value)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_parameter_is_refused(name: str) -> None:
    op = OPS[name]
    with pytest.raises(ParameterError, match="'sigmaa' is not a parameter"):
        op.run(_valid_image(op), {**params_for(name), "sigmaa": 1})


@pytest.mark.parametrize("name", [n for n in NAMES if OPS[n].required_params()])
def test_missing_required_parameter_is_named(name: str) -> None:
    op = OPS[name]
    missing = op.required_params()[0]
    args = {k: v for k, v in params_for(name).items() if k != missing}
    with pytest.raises(ParameterError, match=f"'{missing}' is required"):
        op.run(_valid_image(op), args)


@pytest.mark.parametrize(
    ("image", "fragment"),
    [
        (np.zeros((8, 8), np.float32), "dtype float32"),
        (np.zeros((8, 8), np.int16), "dtype int16"),
        (np.zeros((8, 8, 2), np.uint8), "shape (8, 8, 2)"),
        (np.zeros((2, 8, 8, 3), np.uint8), "shape"),
        ([[1, 2], [3, 4]], "numpy array"),
    ],
)
def test_bad_image_is_refused(image: Any, fragment: str) -> None:
    with pytest.raises(ParameterError, match=re.escape(fragment)) as err:
        get("invert").run(image)
    assert err.value.parameter == "image"


@pytest.mark.parametrize(
    ("name", "image"),
    [
        ("denoise_nl_means", np.zeros((1, 7, 4), np.uint8)),
        ("denoise_nl_means", np.zeros((3, 40), np.uint16)),
        ("lens_distortion", np.zeros((2, 33000), np.uint8)),
        ("deconvolve_wiener", np.zeros((40, 40), np.uint8)),  # too small for motion(auto)
        ("deinterlace_blend", np.zeros((1, 40), np.uint8)),
        ("crop", np.zeros((0, 4), np.uint8)),
    ],
)
def test_image_an_operation_cannot_use_is_named(name: str, image: Any) -> None:
    params = {"psf": "motion(auto)"} if name == "deconvolve_wiener" else params_for(name)
    if name == "crop":
        params = {"x": 0, "y": 0, "width": 1, "height": 1}
    with pytest.raises(ParameterError) as err:
        OPS[name].run(image, params)
    assert err.value.parameter in ("image", "psf")


def test_integer_parameters_refuse_nan_and_infinity() -> None:
    for value in (float("nan"), float("inf")):
        with pytest.raises(ParameterError, match="'size'"):
            OPS["denoise_median"].run(IMAGES["grey8"], {"size": value})


def test_grey_image_for_a_colour_operation() -> None:
    with pytest.raises(ParameterError, match="greyscale; this operation needs a colour"):
        get("white_balance").run(IMAGES["grey8"])


@pytest.mark.parametrize(
    ("name", "args", "param"),
    [
        ("crop", {"x": 170, "y": 0, "width": 5, "height": 5}, "x"),
        ("crop", {"x": 100, "y": 0, "width": 100, "height": 5}, "width"),
        ("crop", {"x": 0, "y": 100, "width": 5, "height": 30}, "height"),
        ("levels", {"black": 0.6, "white": 0.4}, "black"),
        ("denoise_median", {"size": 4}, "size"),
        ("resize", {"scale": 2.0, "width": 10}, "scale"),
        ("resize", {}, "scale"),
        ("perspective", {"corners": (0, 0, 10, 0, 0, 10, 10, 10)}, "corners"),
        ("perspective", {"corners": (0, 0, 500, 0, 500, 500, 0, 500)}, "corners"),
        ("deconvolve_wiener", {"psf": "gaussian(sigma=-1)"}, "psf"),
        ("deconvolve_wiener", {"psf": "gaussian(radius=2)"}, "psf"),
        ("deconvolve_wiener", {"psf": "motion(length=5)"}, "psf"),
        ("deconvolve_wiener", {"psf": "defocus(auto)"}, "psf"),
        ("deconvolve_wiener", {"psf": "boxcar(3)"}, "psf"),
        ("deconvolve_wiener", {"psf": "gaussian(sigma=1, sigma=3)"}, "psf"),
        ("deconvolve_wiener", {"psf": "gaussian(sigma=1_0)"}, "psf"),
        ("deconvolve_wiener", {"psf": [[1, 2], [3, 4]]}, "psf"),
        ("deconvolve_wiener", {"psf": [[-1, 1, 1]]}, "psf"),
        ("deconvolve_wiener", {"psf": [[0.0, 0.0, 0.0]]}, "psf"),
        ("deconvolve_wiener", {"psf": [[1, 2, 3], [4, 5]]}, "psf"),
        ("redact_blur", {"x": 3, "y": 3, "width": 1, "height": 1}, "width"),
        ("clahe", {"clip_limit": 0}, "clip_limit"),
        ("white_balance", {"method": "manual"}, "x"),
    ],
)
def test_cross_parameter_checks_name_the_parameter(
    name: str, args: dict[str, Any], param: str
) -> None:
    op = OPS[name]
    with pytest.raises(ParameterError) as err:
        op.run(IMAGES["rgb8"], args)
    assert err.value.parameter == param, str(err.value)


def test_param_schema_text() -> None:
    p = Param("sigma", "float", "x", "px", 0.0, 5.0, exclusive_minimum=True, auto="estimated")
    assert p.allowed() == "a number in (0, 5] px, or null (auto)"
