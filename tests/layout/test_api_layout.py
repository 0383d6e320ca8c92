"""The shape of api/app that the layer contracts (pyproject's import-linter section) do not
cover: no import cycle between any two modules, no importlib or lazy re-export, imports
at module level only (but for the entry point's choice of composition, named below), and
no module over 400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

APP = Path(__file__).resolve().parents[2] / "api" / "app"
MAX_LINES = 400
# `python -m app` imports only the composition it serves (app/__main__.py's docstring):
# the PostgreSQL-only service must not load the migration. No other import is deferred.
DEFERRED = {"app.__main__": ["app.main"]}
SOURCES = sorted(APP.rglob("*.py"))


def _module(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_the_sources_are_found() -> None:
    names = {_module(p) for p in SOURCES}
    assert {"app.main", "app.stores.ports", "app.migration.router"} <= names


def test_no_import_cycle_in_api_app() -> None:
    graph = grimp.build_graph("app")
    cycles = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            if graph.chain_exists(importer=imported, imported=importer):
                chain = graph.find_shortest_chain(importer=imported, imported=importer)
                cycles.append(f"{importer} -> {' -> '.join(chain or ())}")
    assert cycles == []


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


@pytest.mark.parametrize("path", SOURCES, ids=_module)
def test_no_importlib_and_no_lazy_reexport(path: Path) -> None:
    tree = _tree(path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "importlib"
                                                 for a in node.names):
            found.append(f"line {node.lineno}: import importlib")
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "importlib":
            found.append(f"line {node.lineno}: from importlib")
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            found.append(f"line {node.lineno}: __import__()")
    found += [f"line {n.lineno}: module-level __getattr__" for n in tree.body
              if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == "__getattr__"]
    assert found == []


@pytest.mark.parametrize("path", SOURCES, ids=_module)
def test_imports_only_at_module_level(path: Path) -> None:
    tree = _tree(path)
    top = {id(n) for n in tree.body}
    nested = [n for n in ast.walk(tree)
              if isinstance(n, ast.Import | ast.ImportFrom) and id(n) not in top]
    named = [n.module if isinstance(n, ast.ImportFrom) else n.names[0].name for n in nested]
    assert sorted(named) == DEFERRED.get(_module(path), []), [f"line {n.lineno}" for n in nested]


@pytest.mark.parametrize("path", SOURCES, ids=_module)
def test_module_is_at_most_400_lines(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(APP.parent)} has {lines} lines"
