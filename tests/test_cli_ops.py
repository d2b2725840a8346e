"""`forensic ops list` and `forensic ops show`: what an examiner reads about each filter."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from forensic.classical import registry

Run = Callable[..., tuple[int, str, str]]


def test_ops_list_names_every_operation(run_cli: Run) -> None:
    code, out, err = run_cli("ops", "list")
    assert code == 0, err
    for name in registry(include_temporal=True):
        assert name in out


def test_ops_list_json_is_the_registry(run_cli: Run) -> None:
    code, out, _ = run_cli("ops", "list", "--json")
    assert code == 0
    listed = {op["name"]: op for op in json.loads(out)}
    assert listed == {n: op.as_dict() for n, op in registry(include_temporal=True).items()}


def test_ops_list_by_category(run_cli: Run) -> None:
    code, out, _ = run_cli("ops", "list", "--category", "redaction", "--json")
    assert code == 0
    assert {op["name"] for op in json.loads(out)} == {
        "redact_fill", "redact_pixelate", "redact_blur"
    }  # fmt: skip
    code, _, err = run_cli("ops", "list", "--category", "magic")
    assert code == 2
    assert "no such category" in err
    assert "denoise" in err


@pytest.mark.parametrize("name", sorted(registry(include_temporal=True)))
def test_ops_show_prints_every_word(run_cli: Run, name: str) -> None:
    """Descriptions contain brackets ("[black, white]"): none may be eaten as markup."""
    code, out, err = run_cli("ops", "show", name)
    assert code == 0, err
    op = registry(include_temporal=True)[name]
    flat = " ".join(out.split())
    assert op.description in flat
    for ref in op.references:
        assert " ".join(ref.citation.split()) in flat


def test_ops_show_prints_description_parameters_and_references(run_cli: Run) -> None:
    code, out, err = run_cli("ops", "show", "denoise_nl_means")
    assert code == 0, err
    op = registry(include_temporal=True)["denoise_nl_means"]
    for p in op.params:
        assert p.name in out
    assert "https://doi.org/10.1109/CVPR.2005.38" in out
    assert "estimated from the image" in out


def test_ops_show_json(run_cli: Run) -> None:
    code, out, _ = run_cli("ops", "show", "crop", "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["effect"] == "geometry"
    assert [p["name"] for p in shown["parameters"]] == ["x", "y", "width", "height"]
    assert all(p["required"] for p in shown["parameters"])


def test_ops_show_unknown_name_is_a_clean_error(run_cli: Run) -> None:
    code, out, err = run_cli("ops", "show", "median")
    assert code == 2
    assert out == ""
    assert "no classical operation named 'median'" in err
    assert "denoise_median" in err
    assert "Traceback" not in err


def test_operation_catalogue_in_docs_is_current() -> None:
    from pathlib import Path

    from forensic.classical.catalogue import markdown

    doc = Path(__file__).resolve().parents[1] / "docs" / "operations.md"
    assert doc.read_text() == markdown(), "docs/operations.md is stale: run `make docs`"


def test_ops_list_lanes(run_cli: Run) -> None:
    """The generative lane is listed on request (it imports torch), each op with its lane."""
    from forensic import lanes

    code, out, err = run_cli("ops", "list", "--lane", "generative", "--json")
    assert code == 0, err
    listed = {op["name"]: op for op in json.loads(out)}
    assert set(listed) == set(lanes.generative_names())
    assert {op["lane"] for op in listed.values()} == {"generative"}
    assert {op["effect"] for op in listed.values()} == {"inferred"}
    code, out, err = run_cli("ops", "list", "--lane", "all")
    assert code == 0, err
    assert "generative.face_restoration" in out
    assert "denoise_nl_means" in out
    assert "lane" in out.splitlines()[0]
    code, _, err = run_cli("ops", "list", "--lane", "dreams")
    assert code == 2
    assert "--lane dreams: no such lane" in err
    assert "generative" in err


def test_ops_show_generative_operation(run_cli: Run) -> None:
    code, out, err = run_cli("ops", "show", "generative.inpaint_learned", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["lane"] == "generative"
    assert shown["effect"] == "inferred"
    code, out, err = run_cli("ops", "show", "generative.inpaint")
    assert code == 2
    assert out == ""
    assert "no generative operation named 'generative.inpaint'" in err
    assert "generative.inpaint_learned" in err
