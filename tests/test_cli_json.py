"""Every command's ``--json`` output parses and has the shape docs/cli-json.md documents,
errors included (one JSON object on standard output, with the exit code inside it)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from forensic import cli
from tests.conftest import PASSPHRASE
from tests.tsa_helpers import loopback_tsa, make_tsa_pki, policy_with_tsa

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli-json.md"
#: Scalars of the shape language (docs/cli-json.md, "Reading the shapes").
SCALARS: dict[str, Callable[[Any], bool]] = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "object": lambda v: isinstance(v, dict),
    "list": lambda v: isinstance(v, list),
    "any": lambda v: True,
}


def documented_shapes() -> dict[str, Any]:
    """``{command: shape}`` from the ```` ```json shape=COMMAND ```` blocks of the doc."""
    text = DOC.read_text("utf-8")
    blocks = re.findall(r"```json shape=\"([^\"]+)\"\n(.*?)```", text, flags=re.S)
    return {name: json.loads(body) for name, body in blocks}


def mismatches(value: Any, shape: Any, where: str = "$") -> list[str]:
    """Where ``value`` differs from ``shape``: ``"str|null"`` is a union of scalars; ``[S]``
    a list whose items are all S; ``{"k": S, "k?": S, "*": S}`` an object with key k, an
    optional key k, and (only with ``"*"``) any other keys."""
    if isinstance(shape, str):
        ok = any(SCALARS[s](value) for s in shape.split("|"))
        return [] if ok else [f"{where}: {json.dumps(value)[:60]} is not {shape}"]
    if isinstance(shape, list):
        if not isinstance(value, list):
            return [f"{where}: not a list"]
        return [m for i, v in enumerate(value) for m in mismatches(v, shape[0], f"{where}[{i}]")]
    if not isinstance(value, dict):
        return [f"{where}: not an object"]
    out = []
    keys = {k.rstrip("?"): s for k, s in shape.items() if k != "*"}
    for key, sub in shape.items():
        name = key.rstrip("?")
        if key == "*":
            continue
        if name not in value:
            if not key.endswith("?"):
                out.append(f"{where}: missing {name!r}")
            continue
        out += mismatches(value[name], sub, f"{where}.{name}")
    for key in value.keys() - keys.keys():
        if "*" in shape:
            out += mismatches(value[key], shape["*"], f"{where}.{key}")
        else:
            out.append(f"{where}: undocumented key {key!r}")
    return out


INPAINT = """
[recipe]
name = "fill"
[[steps]]
op = "generative.inpaint_telea"
x = 100
y = 100
width = 20
height = 20
"""
LEVELS = """
[recipe]
name = "lift"
[[steps]]
op = "levels"
gamma = 1.2
roi = [10, 20, 64, 48]
"""


def _call(args: list[str | Path]) -> tuple[int, str, str]:
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def cli_tsa() -> Iterator[tuple[str, str]]:
    """A time-stamping authority on loopback: (its URL, its root certificate as PEM)."""
    tsa = make_tsa_pki("CLI")
    with loopback_tsa(tsa) as url:
        yield url, tsa.root_pem


@pytest.fixture(scope="module")
def outputs(
    tmp_path_factory: pytest.TempPathFactory, media: Path, cli_tsa: tuple[str, str]
) -> dict[str, tuple[int, Any]]:
    """Every command run once with --json, in the order of a small investigative case:
    ``{name: (exit code, parsed stdout)}``."""
    tmp = tmp_path_factory.mktemp("cli-json")
    a, b = tmp / "keys-a", tmp / "keys-b"
    case = tmp / "missing" / "parents" / "case"  # case init makes the parent folders
    (tmp / "fill.toml").write_text(INPAINT)
    (tmp / "lift.toml").write_text(LEVELS)
    (tmp / "jobs.csv").write_text(f"case,exhibit,recipe\n{case},E1,dark-noisy\n")
    policy = Path(__file__).resolve().parents[1] / "policy.toml"
    stamped_policy = tmp / "tsa-policy.toml"
    stamped_policy.write_text(policy_with_tsa(policy.read_text("utf-8"), *cli_tsa))
    _unet_onnx(tmp / "unet.onnx")
    done: dict[str, tuple[int, Any]] = {}
    commands: list[tuple[str, list[str | Path]]] = [
        ("keys init", ["keys", "init", "--key-dir", a, "--name", "A Examiner"]),
        ("keys init (second)", ["keys", "init", "--key-dir", b, "--name", "B Examiner"]),
        ("keys show", ["keys", "show", "--key-dir", a]),
        ("keys export-public", ["keys", "export-public", "--key-dir", b, "--out", tmp / "b.pem"]),
        ("keys export-public (stdout)", ["keys", "export-public", "--key-dir", a]),
        (
            "case init",
            [
                "case",
                "init",
                case,
                "--case-id",
                "J-1",
                "--title",
                "T",
                "--key-dir",
                a,
                "--profile",
                "investigative",
            ],
        ),
        ("ingest", ["ingest", case, media / "camera_clean.png", "--key-dir", a]),
        ("enhance", ["enhance", case, "E1", "--recipe", tmp / "lift.toml", "--key-dir", a]),
        ("enhance (generative)", ["enhance", case, "E1", "--recipe", tmp / "fill.toml"]),
        ("batch", ["batch", tmp / "jobs.csv", "--workers", "1"]),
        (
            "case add-examiner",
            [
                "case",
                "add-examiner",
                case,
                "--public-key",
                tmp / "b.pem",
                "--name",
                "B Examiner",
                "--key-dir",
                a,
            ],
        ),
        ("cosign", ["cosign", case, "R2.1", "--key-dir", b]),
        ("export", ["export", case, "R1", "--format", "png", "--out", tmp / "new" / "R1"]),
        ("pki init", ["pki", "init", "--lab", "Lab", "--key-dir", a]),
        ("pki init (second)", ["pki", "init", "--lab", "Lab", "--key-dir", b]),
        ("pki bind", ["pki", "bind", case, "--key-dir", a]),
        ("pki bind (second)", ["pki", "bind", case, "--key-dir", b]),
        ("export --c2pa", ["export", case, "R2", "--c2pa", "--out", tmp / "c2pa" / "R2"]),
        ("report", ["report", case, "--out", tmp / "r.pdf", "--key-dir", a]),
        ("report sign", ["report", "sign", case, tmp / "r.pdf", "--out", tmp / "r2.pdf"]),
        ("bundle", ["bundle", case, tmp / "bundle.tar"]),
        ("verify bundle", ["verify", tmp / "bundle.tar"]),
        ("case recover", ["case", "recover", case, "--key-dir", a]),
        ("verify", ["verify", case]),
        ("verify report", ["verify", tmp / "r2.pdf", "--case", case]),
        ("case show", ["case", "show", case]),
        ("recipes", ["recipes"]),
        ("policy check", ["policy", "check", policy]),
        (
            "model approve",
            ["model", "approve", tmp / "unet.onnx", "--task", "inpainting", "--mask", "hole=1"],
        ),
        ("ops list", ["ops", "list"]),
        ("ops show", ["ops", "show", "levels"]),
        ("keys init (third)", ["keys", "init", "--key-dir", tmp / "keys-c", "--name", "C"]),
        ("keys upgrade", ["keys", "upgrade", "--key-dir", a]),
        ("keys rotate", ["keys", "rotate", case, "--new-key-dir", tmp / "keys-c", "--key-dir", b]),
        (
            "case revoke-key",
            ["case", "revoke-key", case, "FPR", "--reason", "test", "--key-dir", a],
        ),
        (
            "case init (timestamps)",
            [
                *["case", "init", tmp / "c-ts", "--case-id", "J-2", "--title", "T"],
                *["--key-dir", a, "--policy", stamped_policy],
            ],
        ),
        ("timestamp", ["timestamp", tmp / "c-ts"]),
        # failures: a ForensicError, a usage error, a report that does not verify
        ("error: forensic", ["case", "show", tmp / "no-such-case"]),
        ("error: verify fails", ["verify", tmp / "no-such-case"]),
        ("error: usage", ["case", "init", tmp / "c2"]),
        ("error: report exists", ["report", case, "--out", tmp / "r.pdf", "--key-dir", a]),
    ]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FORENSIC_PASSPHRASE", PASSPHRASE)
        mp.setenv("FORENSIC_KEY_DIR", str(a))
        mp.setenv("FORENSIC_NEW_PASSPHRASE", PASSPHRASE)
        for name, args in commands:
            if name == "report sign":
                args = [*args, "--key-dir", b]
            if name == "case revoke-key":  # the key rotated in just before
                fpr = done["keys init (third)"][1]["fingerprint"]
                args = [fpr if x == "FPR" else x for x in args]
            code, out, err = _call([*args, "--json"])
            try:
                done[name] = (code, json.loads(out))
            except json.JSONDecodeError:
                pytest.fail(f"{name}: stdout is not one JSON document: {out!r} (stderr {err!r})")
    return done


#: Which documented shape each output has (``ops list`` is a list of ``ops show``).
SHAPE_OF = {
    "keys init (second)": "keys init",
    "keys show": "keys init",
    "keys init (third)": "keys init",
    "keys export-public (stdout)": "keys export-public",
    "enhance (generative)": "enhance",
    "pki init (second)": "pki init",
    "pki bind (second)": "pki bind",
    "error: forensic": "error",
    "error: usage": "error",
    "error: report exists": "error",
    "error: verify fails": "verify",
    "case init (timestamps)": "case init",
}
SUCCESSES = 37


def _unet_onnx(path: Path) -> None:
    """The generative lane's small U-Net (random weights) as an ONNX file, for model approve."""
    import torch

    from forensic.generative.unet import tiny_unet, to_onnx

    example = (torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32))
    path.write_bytes(to_onnx(tiny_unet(1), example, ["image", "mask"]))


@pytest.mark.slow
def test_every_command_prints_its_documented_shape(outputs: dict[str, tuple[int, Any]]) -> None:
    shapes = documented_shapes()
    problems = []
    for name, (code, doc) in outputs.items():
        shape = shapes[SHAPE_OF.get(name, name)] if name != "ops list" else [shapes["ops show"]]
        problems += [f"{name}: {m}" for m in mismatches(doc, shape)]
        if not name.startswith("error"):
            assert code == 0, f"{name} exited {code}: {doc}"
    assert problems == []
    assert len([n for n in outputs if not n.startswith("error")]) == SUCCESSES
    # every documented shape is exercised
    assert set(shapes) <= {SHAPE_OF.get(n, n) for n in outputs} | {"ops show"}


@pytest.mark.slow
def test_errors_are_one_object_with_the_exit_code_inside(
    outputs: dict[str, tuple[int, Any]],
) -> None:
    code, doc = outputs["error: forensic"]
    assert (code, doc["ok"], doc["error"]["kind"]) == (2, False, "CaseError")
    assert doc["error"]["exit_code"] == code
    assert "no-such-case" in doc["error"]["message"]
    code, doc = outputs["error: usage"]
    assert (code, doc["error"]["kind"]) == (2, "UsageError")
    assert "--case-id" in doc["error"]["message"]
    code, doc = outputs["error: report exists"]
    assert (code, doc["error"]["kind"]) == (2, "InputError")
    assert "already exists" in doc["error"]["message"]
    assert doc["error"]["hint"]
    code, doc = outputs["error: verify fails"]
    assert (code, doc["ok"]) == (1, False)


@pytest.mark.slow
def test_the_approval_is_named_by_verify_and_parents_were_made(
    outputs: dict[str, tuple[int, Any]],
) -> None:
    _, verdict = outputs["verify report"]
    assert [a["examiner"] for a in verdict["approvals"]] == ["B Examiner"]
    _, made = outputs["case init"]
    assert Path(made["case"]).is_dir()
    assert Path(made["case"]).parent.name == "parents"
    _, exported = outputs["export"]
    assert exported["lossless"]
    assert exported["frames"] == 1


def test_an_internal_error_is_reported_as_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from forensic import api

    def broken() -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(api, "bundled_recipes", broken)
    code = cli.main(["recipes", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 70
    assert mismatches(doc, documented_shapes()["error"]) == []
    assert doc["error"]["kind"] == "InternalError"
    assert "boom" in doc["error"]["message"]


def test_the_shape_checker_catches_a_wrong_document() -> None:
    shape = {"a": "int", "b?": ["str"], "c": {"*": "bool"}}
    assert mismatches({"a": 1, "c": {"x": True}}, shape) == []
    assert mismatches({"a": "1", "c": {}}, shape) == ['$.a: "1" is not int']
    assert mismatches({"a": 1, "b": [2], "c": {}, "d": 0}, shape) == [
        "$.b[0]: 2 is not str",
        "$: undocumented key 'd'",
    ]


def test_option_help_has_no_stray_space_before_a_full_stop(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rich markup once ate "[default: ...]" from help texts, leaving "key ."."""
    monkeypatch.setenv("COLUMNS", "200")
    for args in (["keys", "show"], ["case", "init"], ["report", "issue"], ["enhance"]):
        assert cli.main([*args, "--help"]) == 0
        text = capsys.readouterr().out
        assert " ." not in text.replace("...", ""), text
        if args == ["keys", "show"]:
            assert "(default: ~/.config/forensic/keys)" in text
