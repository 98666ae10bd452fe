"""The layout's promises (DESIGN §1): every ``__all__`` is true, and only the Dagster layer imports Dagster."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import regime_platform

PACKAGE = Path(regime_platform.__file__).resolve().parent
DAGSTER_PACKAGES = ("defs", "cluster")  # the Dagster layer and the cluster entry point on top of it
DAGSTER_MODULES = ("definitions.py", "cli.py")  # the one entry point and the terminal commands


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    return ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)


def _declares_all(tree: ast.Module) -> bool:
    return any(isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign))
               and any(isinstance(t, ast.Name) and t.id == "__all__"
                       for t in (node.targets if isinstance(node, ast.Assign) else [node.target]))
               for node in tree.body)


SOURCES = sorted(PACKAGE.rglob("*.py"))
WITH_ALL = [_module_name(f) for f in SOURCES if _declares_all(ast.parse(f.read_text()))]


def test_modules_with_all_are_found():
    assert {"regime_platform.models", "regime_platform.storage", "regime_platform.labels",
            "regime_platform.figures"} <= set(WITH_ALL)


@pytest.mark.parametrize("name", WITH_ALL)
def test_every_name_in_all_resolves(name):
    module = importlib.import_module(name)
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"
    assert len(set(module.__all__)) == len(module.__all__), f"{name}.__all__ repeats a name"


def _dagster_imports(tree: ast.Module) -> list[str]:
    """Every import of dagster or a dagster_* package, function-local ones included."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [n for n in names if n.split(".")[0] == "dagster" or n.split(".")[0].startswith("dagster_")]
    return found


def test_only_the_dagster_layer_imports_dagster():
    offenders = {}
    for f in SOURCES:
        rel = f.relative_to(PACKAGE)
        if rel.parts[0] in DAGSTER_PACKAGES or (len(rel.parts) == 1 and rel.name in DAGSTER_MODULES):
            continue
        imports = _dagster_imports(ast.parse(f.read_text()))
        if imports:
            offenders[str(rel)] = imports
    assert not offenders, f"domain modules import Dagster (DESIGN §1: only defs/ does): {offenders}"


def test_the_dagster_check_sees_a_dagster_import():
    assert _dagster_imports(ast.parse("def f():\n    from dagster_duckdb import DuckDBResource\n")) == ["dagster_duckdb"]
    assert _dagster_imports(ast.parse("import dagster as dg")) == ["dagster"]
    assert _dagster_imports(ast.parse("import dagsterish\nfrom .dagster import x")) == []


# The one exception, and why: Dagster's instance storages are named by module path in dagster.yaml and have no public
# import, and the pool race (SQLite ignores the SELECT ... FOR UPDATE a slot claim relies on) has no public fix.
# test_instance_storage.py pins what the subclass relies on: it fails if a Dagster release changes it.
PRIVATE_ALLOWED = {"defs/event_log_storage.py": ["dagster._core.storage.event_log"]}


def test_no_module_imports_a_private_dagster_module():
    """Only Dagster's public API (``dagster``, ``dagster_duckdb``, …): a ``dagster._…`` module may change in any
    release."""
    private = {str(f.relative_to(PACKAGE)): [n for n in _dagster_imports(ast.parse(f.read_text()))
                                             if any(part.startswith("_") for part in n.split(".")[1:])]
               for f in SOURCES}
    assert {k: v for k, v in private.items() if v} == PRIVATE_ALLOWED, private
    assert _dagster_imports(ast.parse("from dagster._core.events import DagsterEventType")) == ["dagster._core.events"]


def test_loading_the_definitions_imports_neither_torch_nor_skops():
    """Every Dagster process (each run, each `dagster job execute` of `make run`, the UI's code server) loads the
    definitions; torch and skops' trusted-type scan were 3.8 s of an 8 s load and are needed only to fit or read a
    model (benchmarks/RESULTS.md: the daily increment)."""
    import os
    import subprocess
    import sys

    code = ("import sys; from regime_platform.definitions import defs; defs(); "
            "print(sorted(m for m in ('torch', 'skops.io', 'captum') if m in sys.modules))")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
