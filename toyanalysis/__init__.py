"""toyanalysis: superposition in toy models, from training to geometry.

Train many small models side by side, keep every checkpoint in a Zarr-backed
xarray store, and ask what shapes the features form, when those shapes change,
and which neurons are polysemantic.

Heavy modules are imported on first use, so ``import toyanalysis`` is cheap.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "RunConfig": "toyanalysis.config",
    "TrainConfig": "toyanalysis.config",
    "SweepAxis": "toyanalysis.config",
    "FeatureSet": "toyanalysis.config",
    "preset": "toyanalysis.presets",
    "list_presets": "toyanalysis.presets",
    "train": "toyanalysis.training",
    "open_store": "toyanalysis.store",
    "ingest": "toyanalysis.ingestion",
    "measures": "toyanalysis.superposition",
    "classify": "toyanalysis.geometry",
    "phases": "toyanalysis.phase_changes",
    "phase_diagram": "toyanalysis.phase_changes",
    "neurons": "toyanalysis.polysemanticity",
    "llc": "toyanalysis._llc",
    "llc_by_phase": "toyanalysis._llc",
    "ClassifyParams": "toyanalysis.params",
    "PhaseParams": "toyanalysis.params",
    "DiagramParams": "toyanalysis.params",
    "NeuronParams": "toyanalysis.params",
    "PlotParams": "toyanalysis.params",
    "LLCParams": "toyanalysis._llc",
    "ModelFamily": "toyanalysis.models",
    "family": "toyanalysis.models",
    "select": "toyanalysis._labels",
    "local_minima": "toyanalysis._minima",
    "best_of": "toyanalysis._minima",
    "MinimaParams": "toyanalysis._minima",
    "ToyAnalysisError": "toyanalysis.errors",
    "StoreError": "toyanalysis.errors",
    "ConfigError": "toyanalysis.errors",
}

# public submodules, imported on first use as attributes (toyanalysis.testing, ...)
_MODULES = ("testing", "plots", "report", "store", "params", "models", "accessor", "errors")

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None and name in _MODULES:
        return importlib.import_module(f"toyanalysis.{name}")
    if module is None:
        raise AttributeError(f"module 'toyanalysis' has no attribute {name!r}")
    importlib.import_module("toyanalysis.accessor")  # ds.tms, once xarray is loaded anyway
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if "xarray" in sys.modules:  # registering ds.tms costs nothing more then
    importlib.import_module("toyanalysis.accessor")
