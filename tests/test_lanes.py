"""The two lanes never mix: the classical package cannot reach the generative lane or torch.

import-linter (``make lint``) checks the import graph; this test also reads the source, so it
holds before `forensic.generative` exists, and it checks what is loaded at run time.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

CLASSICAL = Path(__file__).resolve().parents[1] / "forensic" / "classical"
FORBIDDEN = ("torch", "forensic.generative")


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names]
    return names


@pytest.mark.parametrize("path", sorted(CLASSICAL.glob("*.py")), ids=lambda p: p.name)
def test_classical_source_imports_nothing_generative(path: Path) -> None:
    bad = [n for n in _imports(path) for f in FORBIDDEN if n == f or n.startswith(f + ".")]
    assert not bad, f"{path.name} imports {bad}"
    assert "importlib" not in path.read_text(), "no dynamic imports in the classical lane"


def test_the_source_check_can_fail(tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("from forensic.generative import models\nimport torch.nn\n")
    assert _imports(sneaky) == [
        "forensic.generative", "forensic.generative.models", "torch.nn"
    ]  # fmt: skip


def test_running_every_classical_operation_loads_no_torch() -> None:
    code = (
        "import sys\n"
        "from forensic.classical import registry\n"
        "from tests.classical_cases import params_for, sample_images\n"
        "img = sample_images()['rgb8']\n"
        "for name, op in registry().items():\n"
        "    op.run(img, params_for(name))\n"
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith(('torch.', 'forensic.generative'))]\n"
        "assert not bad, bad\n"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
