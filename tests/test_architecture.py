"""The package's structure is enforced, not described: layers, no cycles, no private imports.

* `lint-imports` (``make lint``) checks the layers contract of pyproject.toml; a test plants an
  upward import in a copy of the package and sees the contract refuse it.
* No import cycle among ``forensic`` modules, counting imports inside functions (a cycle
  hidden in a function body is still a cycle).
* No module imports an underscore name from another module.
* The spec's table of journal entry kinds is the one `forensic.records.KINDS` generates.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from forensic.records import KINDS, kind_table

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "forensic"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Every forensic module each module imports, anywhere in its body."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, node, path.name == "__init__.py")
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            for target in targets:
                # The longest known module the target names (an attribute import names its
                # module).
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and target.startswith("forensic"):
                    edges.add(target)
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def _is_package_of(parent: str, child: str) -> bool:
    return child.startswith(parent + ".")


def test_no_import_cycles_among_forensic_modules() -> None:
    graph = _imports(_modules())
    # A package's __init__ importing its own submodules (re-exports) is not a cycle of design.
    pruned = {m: {t for t in ts if not _is_package_of(m, t)} for m, ts in graph.items()}
    assert _cycles(pruned) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {
        "forensic.a": {"forensic.b"},
        "forensic.b": {"forensic.c"},
        "forensic.c": {"forensic.a"},
    }
    assert _cycles(graph) == [["forensic.a", "forensic.b", "forensic.c"]]


def test_no_import_of_an_underscore_name_from_another_module() -> None:
    offenders = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("forensic"):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        offenders.append(f"{name}: from {node.module} import {alias.name}")
            if isinstance(node, ast.Import | ast.ImportFrom):
                modules = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                )
                for module in modules:
                    if module.startswith("forensic") and any(
                        p.startswith("_") for p in module.split(".")
                    ):
                        offenders.append(f"{name}: imports private module {module}")
    assert offenders == []


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "lint-imports"
    return subprocess.run(
        [str(exe), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(root), "PATH": str(Path(sys.executable).parent)},
    )


@pytest.mark.parametrize(
    ("module", "planted"),
    [
        # The verifier reaching up into the report builder.
        ("forensic/verify.py", "import forensic.report.build\n"),
        # The case store reaching up into the pipeline.
        ("forensic/store.py", "from forensic.pipeline import steps\n"),
        # The operation framework reaching up into a lane.
        ("forensic/ops/framework.py", "import forensic.classical.denoise\n"),
    ],
)
def test_lint_imports_refuses_a_planted_upward_import(
    tmp_path: Path, module: str, planted: str
) -> None:
    copy = tmp_path / "tree"
    copy.mkdir()
    shutil.copytree(PACKAGE, copy / "forensic", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    assert _lint_imports(copy).returncode == 0, "the unmodified copy must pass"
    target = copy / module
    target.write_text(target.read_text("utf-8") + "\n" + planted, "utf-8")
    result = _lint_imports(copy)
    assert result.returncode != 0
    assert "Layers" in result.stdout
    assert "BROKEN" in result.stdout


def test_the_spec_kind_table_is_generated_from_records() -> None:
    spec = (ROOT / "docs" / "spec.md").read_text("utf-8")
    assert kind_table() in spec, "docs/spec.md's kind table is stale: python -m forensic.records"
    for kind in KINDS:
        assert f"`{kind.name}`" in spec
