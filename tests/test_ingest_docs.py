"""docs/ingest.md runs as written: its Python blocks, its commands and their exact output."""

from __future__ import annotations

import ast
import glob
import re
import shlex
from pathlib import Path

DOC = Path(__file__).parents[1] / "docs" / "ingest.md"


def _blocks(text: str) -> list[tuple[str, str]]:
    return re.findall(r"```(python|console)\n(.*?)```", text, flags=re.S)


def _commands(body: str) -> list[tuple[str, list[str]]]:
    """(command, expected output lines) for each ``$ command`` of a console block."""
    out: list[tuple[str, list[str]]] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            out.append((line[2:], []))
        else:
            out[-1][1].append(line)
    return out


def _run_python(body: str, namespace: dict) -> None:
    """Execute a block; an expression followed by ``# value`` must show that value."""
    lines = body.splitlines()
    for node in ast.parse(body).body:
        code = compile(ast.Module([node], []), str(DOC), "exec")
        line = lines[node.end_lineno - 1]
        if isinstance(node, ast.Expr) and "  # " in line:
            expected = line.split("  # ", 1)[1]
            assert repr(eval(ast.unparse(node), namespace)) == expected, line
        else:
            exec(code, namespace)


def _argv(command: str) -> list[str]:
    words = shlex.split(command)
    assert words[0] == "toyanalysis"
    return [w for word in words[1:] for w in (sorted(glob.glob(word)) if "*" in word else [word])]


def test_the_page_runs_as_written(tmp_path, monkeypatch, cli):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    blocks = _blocks(DOC.read_text())
    assert len(blocks) >= 12
    for kind, body in blocks:
        if kind == "python":
            _run_python(body, namespace)
            continue
        for command, expected in _commands(body):
            result = cli(*_argv(command))
            assert result.output.splitlines() == expected, command
            failed = bool(expected) and expected[-1].startswith("Error:")
            assert result.exit_code == (1 if failed else 0), command


def test_the_names_table_lists_every_known_name():
    from toyanalysis._ingest._names import KNOWN

    text = DOC.read_text().lower()
    for aliases in KNOWN.values():
        for alias in aliases:
            assert f"`{alias}`" in text, alias
