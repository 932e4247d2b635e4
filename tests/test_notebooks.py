"""The notebooks in docs/notebooks/ run top to bottom (they are the library's tour).

Each jupytext ``py:percent`` file is converted to a notebook in a temporary
directory and executed with a fresh kernel; any cell that raises fails the test.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "docs" / "notebooks").glob("*.py"))


def test_there_are_notebooks():
    names = {p.stem for p in NOTEBOOKS}
    assert {"quick_tour", "uniform_geometry", "phase_changes"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("source", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(source, tmp_path, monkeypatch):
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")

    notebook = jupytext.read(source)
    root = Path(__file__).parent.parent
    env_path = os.pathsep.join([str(root), str(root / "cli"), os.environ.get("PYTHONPATH", "")])
    monkeypatch.setenv("PYTHONPATH", env_path)  # the kernel imports the working tree
    client = nbclient.NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert errors == []
