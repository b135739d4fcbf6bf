"""The inverse package's import graph, read from the source: no import circle (imports
inside functions count too) and no module importing another one's private names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: package folder -> import name (the folders are mapped onto the ``graded`` package)
PACKAGES = {"inverse": "graded.inverse", "graded": "graded", "cli": "graded.cli", "fem": "graded.fem"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT)
    parts = [PACKAGES[rel.parts[0]], *rel.parts[1:]]
    parts[-1] = parts[-1][:-3]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts).replace("graded.graded", "graded")


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every import in a file, relative imports resolved."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((mod, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out.extend((a.name, []) for a in node.names)
    return out


def _inverse_graph() -> dict[str, set[str]]:
    files = sorted((ROOT / "inverse").glob("*.py"))
    mods = {_module_name(p): p for p in files}
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for target, names in _imports(p):
            for cand in [target] + [f"{target}.{n}" for n in names]:
                if cand in mods and cand != m and cand != "graded.inverse":
                    graph[m].add(cand)
    return graph


def test_no_import_circle_in_the_inverse_package():
    graph = _inverse_graph()
    assert "graded.inverse.oracle" in graph and graph["graded.inverse.design"]  # the graph was read
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                pytest.fail("import circle: " + " -> ".join(path + [m, n]))
            if n not in state:
                visit(n, path + [m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])


def test_the_pieces_sit_below_design_and_evaluate():
    """design and evaluate use the same public pieces; neither imports the other, and the
    FE oracle and the metrics import nothing of the inverse package's upper layers."""
    graph = _inverse_graph()
    assert "graded.inverse.evaluate" not in graph["graded.inverse.design"]
    assert "graded.inverse.design" not in graph["graded.inverse.evaluate"]
    for piece in ("draw", "select", "refine", "oracle"):
        assert f"graded.inverse.{piece}" in graph["graded.inverse.evaluate"] | graph["graded.inverse.design"]
    assert graph["graded.inverse.oracle"] <= {"graded.inverse.sampling"}


@pytest.mark.parametrize("folder", ["inverse", "cli"])
def test_no_module_imports_a_private_name_of_another(folder):
    bad = []
    for p in sorted((ROOT / folder).glob("*.py")):
        for mod, names in _imports(p):
            bad += [f"{p.relative_to(ROOT)}: from {mod} import {n}" for n in names
                    if n.startswith("_") and not n.startswith("__")]
            if any(part.startswith("_") and not part.startswith("__") for part in mod.split(".")):
                bad.append(f"{p.relative_to(ROOT)}: import {mod}")
    assert not bad, bad
