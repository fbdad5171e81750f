"""Imports between the stage packages point one way (DEVELOPERS.md: stages depend on core pieces, never
the reverse): the graph of `vitalstudy.<package>` -> `vitalstudy.<package>` imports has no cycle.
Imports inside functions count too: a lazy import is still a dependency."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import vitalstudy

SRC = Path(vitalstudy.__file__).parent


def package_imports(src: Path) -> dict[str, set[str]]:
    """package -> the other packages of `src` its modules import (top-level modules are left out)."""
    packages = {p.name for p in src.iterdir() if (p / "__init__.py").is_file()}
    edges: dict[str, set[str]] = {name: set() for name in packages}
    for name in packages:
        for path in (src / name).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                elif isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                else:
                    continue
                for module in modules:
                    parts = module.split(".")
                    if parts[0] == "vitalstudy" and len(parts) > 1 and parts[1] in packages - {name}:
                        edges[name].add(parts[1])
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph as a path (first node repeated at the end), or None."""
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]  # an open node is on the current path
            if nxt not in state and (cycle := visit(nxt, path + [nxt])):
                return cycle
        state[node] = "done"
        return None

    for start in sorted(edges):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_cycle_finder_finds_a_cycle_and_accepts_a_chain():
    assert find_cycle({"fv": {"references"}, "references": {"data", "fv"}, "data": set()}) == [
        "fv", "references", "fv"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"references": {"fv", "data"}, "fv": {"data"}, "data": set()}) is None


def test_the_parser_sees_module_level_and_lazy_imports(tmp_path):
    for name in ("low", "high"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / "high" / "a.py").write_text("def f():\n    from vitalstudy.low.x import y\n")
    (tmp_path / "low" / "b.py").write_text("import vitalstudy.high.a\nfrom vitalstudy.errors import E\n")
    assert package_imports(tmp_path) == {"high": {"low"}, "low": {"high"}}


# Cycles known and not yet broken, each with why: (package, the package it should not import). The test
# fails when a listed one is gone (remove it here) and on every cycle not listed.
KNOWN_CYCLES = {
    ("data", "models"): "data.classes looks a model up by name (classes_for -> models.registry.get_spec) and "
                        "takes nearest() from models.declarations; models.declarations reads data.classes",
}


def test_stage_packages_import_each_other_one_way_only():
    edges = package_imports(SRC)
    assert "fv" in edges["metrics"]  # the scan reads the real source (metrics measures FVs)
    for (package, other), why in KNOWN_CYCLES.items():
        assert other in edges[package] and package in edges[other], f"{package} <-> {other} is gone: drop it ({why})"
        edges[package].discard(other)
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle between packages: " + " -> ".join(cycle)


def test_generation_does_not_import_reference_selection():
    # fv reads references as files (their JSON records); targets and views are core modules both use
    assert "references" not in package_imports(SRC)["fv"]


def test_every_vitalstudy_module_named_in_an_import_exists():
    # lazy imports inside functions are not run by collection; a moved module must not leave one behind
    missing = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules = ([node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                       else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            missing += [f"{path.relative_to(SRC)}:{node.lineno}: {m}" for m in modules
                        if m.startswith("vitalstudy") and importlib.util.find_spec(m) is None]
    assert not missing, "imports of modules that do not exist:\n" + "\n".join(missing)
