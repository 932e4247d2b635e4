"""``ds.tms``: the analyses as methods of a store Dataset.

A thin façade over the public functions, for notebooks:

>>> import numpy as np, toyanalysis
>>> angles = 2 * np.pi * np.arange(5) / 5
>>> ds = toyanalysis.testing.as_dataset(np.stack([np.cos(angles), np.sin(angles)])[None, None])
>>> str(ds.tms.classify()["summary"].item()), ds.tms.model.name, ds.tms.sweep
('pentagon', 'relu_output', [])

It is registered when ``toyanalysis`` is imported after xarray, or when any of
its public names is first used, so ``import toyanalysis`` itself stays cheap.
Each method takes the same arguments as the function it names.
"""

from __future__ import annotations

from typing import Any

import xarray as xr

from toyanalysis._labels import instance_coords, model_of, select, sweep_names
from toyanalysis.models import ModelFamily

__all__ = ["TmsAccessor"]


@xr.register_dataset_accessor("tms")
class TmsAccessor:
    """Methods of a store Dataset (``ds.tms.classify()``, ``ds.tms.select(...)``, ...)."""

    def __init__(self, ds: xr.Dataset) -> None:
        self._ds = ds

    @property
    def model(self) -> ModelFamily:
        """The store's model family (``attrs["model"]``)."""
        return model_of(self._ds)

    @property
    def sweep(self) -> list[str]:
        """The store's sweep coordinate names."""
        return sweep_names(self._ds)

    def instance_coords(self) -> dict[str, Any]:
        """The instances' coordinates, sweep labels first."""
        return instance_coords(self._ds)

    def select(self, *, steps: Any = None, instances: Any = None) -> xr.Dataset:
        """The selected steps and instances (as :func:`toyanalysis.select`)."""
        return select(self._ds, steps=steps, instances=instances)

    def measures(self) -> xr.Dataset:
        from toyanalysis.superposition import measures

        return measures(self._ds)

    def classify(self, *args: Any, **kwargs: Any) -> xr.Dataset:
        from toyanalysis import classify

        return classify(self._ds, *args, **kwargs)

    def phases(self, *args: Any, **kwargs: Any) -> xr.Dataset:
        from toyanalysis import phases

        return phases(self._ds, *args, **kwargs)

    def phase_diagram(self, *args: Any, **kwargs: Any) -> xr.Dataset:
        from toyanalysis import phase_diagram

        return phase_diagram(self._ds, *args, **kwargs)

    def neurons(self, *args: Any, **kwargs: Any) -> xr.Dataset:
        from toyanalysis import neurons

        return neurons(self._ds, *args, **kwargs)
