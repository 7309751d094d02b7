"""The seams between the packages, checked on the source (the import contracts are import-linter's, in
``pyproject.toml``; these check what an import contract cannot see).

``console/`` and ``gateway/`` reach the core only through its seams: they import only the modules that
define them, and they never touch a private part of a core object (``core._engine``, ``journal._writer``)
nor the engine's projection or directory (``engine.state``, ``engine.directory``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]

#: the dispatch modules that make up the core's seams, and the types the outer packages may name
SEAMS = {
    "dispatch.bus",  # the stream of durable entries
    "dispatch.clock",
    "dispatch.commands",  # people's commands, and the intake's requests and results
    "dispatch.core",  # the Core itself
    "dispatch.devices",  # what codecs produce
    "dispatch.entries",  # the typed record
    "dispatch.errors",
    "dispatch.intake",  # the one way in for alarms
    "dispatch.journal",  # Entry, and reading the record
    "dispatch.registry",  # the registry's record types
    "dispatch.scopes",  # who may see what: the reach the views filter by
    "dispatch.settings",
    "dispatch.storage",  # the disk's state, for the banner and /healthz
    "dispatch.triage",  # the alarm types
    "dispatch.views",  # every read
}
#: names of the core's insides, whatever object they are reached through
INSIDES = {"state", "directory", "supervision", "matcher", "available", "clinics"}


def problems(source: str, path: str) -> list[str]:
    """Every reach-in of one module, as ``path:line: what``."""
    tree = ast.parse(source)
    own = {  # private names this module defines itself (self._x = ..., def _x): its own business
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and node.attr.startswith("_")
    } | {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dispatch"):
            if node.module not in SEAMS:
                found.append(f"{path}:{node.lineno}: imports {node.module}, which is not one of the core's seams")
        elif isinstance(node, ast.Import):
            found += [f"{path}:{node.lineno}: imports {a.name}" for a in node.names if a.name.startswith("dispatch")]
        elif isinstance(node, ast.Attribute):
            base = ast.unparse(node.value)
            private = node.attr.startswith("_") and not node.attr.startswith("__")
            if private and base not in ("self", "cls") and node.attr not in own:
                found.append(f"{path}:{node.lineno}: {base}.{node.attr} is private to another module")
            elif node.attr in INSIDES and ("engine" in base or "core" in base):
                found.append(f"{path}:{node.lineno}: {base}.{node.attr} reaches into the core")
    return found


@pytest.mark.parametrize("package", ["console", "gateway"])
def test_the_outer_packages_use_only_the_cores_seams(package: str) -> None:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        found += problems(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert found == []


def test_the_check_sees_a_reach_in() -> None:
    bad = """
from dispatch.engine import Engine
from dispatch.views import Views

async def route(core, request):
    core.engine.state.dirty.add("c1")
    for elder in core.engine.directory.elders.values():
        pass
    await core._engine.tick()
    request.app.state.core  # Starlette's app.state is not the core's
"""
    assert sorted(p.split(": ", 1)[1] for p in problems(bad, "x.py")) == [
        "core._engine is private to another module",
        "core.engine.directory reaches into the core",
        "core.engine.state reaches into the core",
        "imports dispatch.engine, which is not one of the core's seams",
    ]
