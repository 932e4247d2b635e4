"""The shape of the code itself: short functions, no private names across modules.

Every function (and method) of the library and the command line is under 60
lines, and no module imports an underscore name from another module: what
modules share is public, and a private module (``_labels``) exposes public
names.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "toyanalysis").rglob("*.py")) + sorted(
    (ROOT / "cli" / "toyanalysis_cli").rglob("*.py")
)
MAX_LINES = 60


def _ids(paths):
    return [str(p.relative_to(ROOT)) for p in paths]


@pytest.mark.parametrize("path", SOURCES, ids=_ids(SOURCES))
def test_functions_are_short(path):
    tree = ast.parse(path.read_text())
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines, line {node.lineno})"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 >= MAX_LINES
    ]
    assert not long, f"functions of {MAX_LINES} lines or more: {', '.join(long)}"


@pytest.mark.parametrize("path", SOURCES, ids=_ids(SOURCES))
def test_no_private_names_imported_from_other_modules(path):
    tree = ast.parse(path.read_text())
    private = [
        f"{node.module}.{alias.name} (line {node.lineno})"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
        if alias.name.startswith("_") and alias.name != "__version__"
    ]
    assert not private, f"private names imported: {', '.join(private)}"
