"""The public surface: every top-level name resolves, whatever was imported before."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import types

import toyanalysis


def test_public_names_are_not_shadowed_by_submodules():
    for module in pkgutil.iter_modules(toyanalysis.__path__):
        importlib.import_module(f"toyanalysis.{module.name}")
    for name in toyanalysis.__all__:
        value = getattr(toyanalysis, name)
        assert not isinstance(value, types.ModuleType), f"toyanalysis.{name} is a module"
    assert callable(toyanalysis.train) and callable(toyanalysis.classify)


def test_import_is_light():
    code = "import sys, toyanalysis; print(sorted(m for m in ('torch', 'xarray', 'holoviews', 'bokeh', 'dask') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
