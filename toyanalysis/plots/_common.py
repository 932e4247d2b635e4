"""What every view shares: intake, which steps and instances it shows, titles, frames, colours.

A view takes a store (a Dataset, or a path to one) and a :class:`PlotParams`
(``max_frames``, ``max_instances`` and the classify thresholds), plus the
selection it shows (``steps``, ``instances``). The helpers here turn those into
the steps and instances drawn and wrap one element per step into a
``HoloMap``/``DynamicMap``; the views by subject live in the modules beside
this one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import holoviews as hv
import holoviews.plotting.bokeh  # registers the bokeh backend and its options
import numpy as np
import xarray as xr

from toyanalysis._labels import as_store, select_instances, select_steps, sweep_names
from toyanalysis.errors import ConfigError, PlotError
from toyanalysis.params import PlotParams

__all__ = [
    "FEATURE_COLORS",
    "KIND_COLORS",
    "MAX_FRAMES",
    "MAX_INSTANCES",
    "PANEL",
    "Panels",
    "PlotError",
    "PlotParams",
    "frame_steps",
    "framewise",
    "instance_title",
    "intake",
    "layout",
    "matrix",
    "panels",
    "per_step",
    "pick_instances",
    "range_steps",
    "resolve",
]

hv.Store.set_current_backend("bokeh")

MAX_FRAMES = PlotParams().max_frames
MAX_INSTANCES = PlotParams().max_instances
PANEL = 220  # frame width and height of one panel, in pixels

# one colour per configuration kind; other kinds get a colour from CYCLE
KIND_COLORS = {
    "dedicated": "#1f77b4",
    "digon": "#ff7f0e",
    "triangle": "#2ca02c",
    "tetrahedron": "#d62728",
    "pentagon": "#9467bd",
    "hexagon": "#8c564b",
    "square_antiprism": "#e377c2",
    "other": "#7f7f7f",
    "unlearned": "#c7c7c7",
}
CYCLE = ("#17becf", "#bcbd22", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5")
FEATURE_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#c7c7c7",
    "#dbdb8d",
    "#9edae5",
)


def resolve(params: PlotParams | None, changes: dict[str, Any]) -> PlotParams:
    """The view's :class:`PlotParams`: ``params`` (or the defaults) with keyword ``changes``."""
    try:
        return PlotParams.resolve(params, changes)
    except ConfigError as err:
        raise PlotError(str(err)) from None


def intake(ds: Any) -> xr.Dataset:
    """A store-shaped Dataset from a store Dataset, a path to a store, ``W`` or an array.

    The argument is never modified (:func:`toyanalysis._labels.as_store`).
    """
    if isinstance(ds, (str, os.PathLike)):
        from toyanalysis.store import open_store

        return open_store(ds)
    if isinstance(ds, xr.Dataset) and "W" not in ds.data_vars:
        raise PlotError(f"dataset has no variable W (variables: {sorted(map(str, ds.data_vars))})")
    if not isinstance(ds, (xr.Dataset, xr.DataArray, np.ndarray)):
        raise PlotError(f"expected a store Dataset or a path, got {type(ds).__name__}")
    try:
        return as_store(ds)
    except ConfigError as err:
        raise PlotError(str(err)) from None


def _evenly(values: np.ndarray, most: int) -> np.ndarray:
    """At most ``most`` of ``values``, evenly spaced, first and last included."""
    if values.size <= most:
        return values
    index = np.unique(np.round(np.linspace(0, values.size - 1, most)).astype(int))
    return values[index]


def frame_steps(
    ds: xr.Dataset, steps: Sequence[int] | str | None = None, max_frames: int = MAX_FRAMES
) -> np.ndarray:
    """The step values a view shows: ``steps`` (values, ``"last"`` or ``"all"``) or evenly spaced.

    By default at most ``max_frames`` recorded steps, evenly spaced over the
    recorded ones, always with the first and the last.

    >>> from toyanalysis import testing
    >>> ds = testing.as_dataset(np.zeros((101, 1, 2, 3)), steps=np.arange(101) * 10)
    >>> frame_steps(ds, max_frames=5).tolist()
    [0, 250, 500, 750, 1000]
    >>> frame_steps(ds, "last").tolist()
    [1000]
    """
    if steps is not None:
        try:
            chosen = select_steps(ds, steps)
        except ConfigError as err:
            raise PlotError(str(err)) from None
        return np.atleast_1d(np.asarray(chosen["step"].values, dtype=np.int64))
    if max_frames < 1:
        raise PlotError(f"max_frames must be >= 1, got {max_frames}")
    return _evenly(np.asarray(ds["step"].values, dtype=np.int64), max_frames)


def pick_instances(ds: xr.Dataset, instances: Any, max_instances: int) -> list[Any]:
    """The instance labels a view shows: ``instances``, or at most ``max_instances`` evenly spaced."""
    if instances is not None:
        try:
            return select_instances(ds, instances)["instance"].values.tolist()
        except ConfigError as err:
            raise PlotError(str(err)) from None
    return _evenly(np.asarray(ds["instance"].values), max_instances).tolist()


def _format(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.3g}"
    return str(value)


def instance_title(ds: xr.Dataset, instance: Any) -> str:
    """A short label for one instance: its sweep labels, else ``instance N``.

    >>> from toyanalysis import testing
    >>> ds = testing.as_dataset(np.zeros((2, 2, 3)), sweep={"base_density": [1.0, 0.05]})
    >>> instance_title(ds, 1)
    'base_density=0.05'
    """
    sweep = sweep_names(ds)
    parts = [f"{name}={_format(ds[name].sel(instance=instance).values.item())}" for name in sweep]
    if "seed" in ds.coords and ds["seed"].dims == ("instance",) and ds.sizes["instance"] > 1:
        seeds = ds["seed"].values
        if np.unique(seeds).size > 1 and sweep:
            parts.append(f"seed={ds['seed'].sel(instance=instance).values.item()}")
    return ", ".join(parts) if parts else f"instance {instance}"


def per_step(
    build: Callable[[xr.Dataset], Any],
    source: xr.Dataset,
    steps: np.ndarray,
    dynamic: bool,
) -> Any:
    """One element per step: the element itself, a HoloMap, or a DynamicMap over ``step``."""
    if dynamic:

        def callback(step: int) -> Any:
            return build(source.sel(step=step).load())

        kdim = hv.Dimension("step", values=[int(s) for s in steps])
        return framewise(hv.DynamicMap(callback, kdims=[kdim]))
    loaded = source.sel(step=steps).load()
    if len(steps) == 1:
        return build(loaded.isel(step=0))
    frames = {int(s): build(loaded.isel(step=k)) for k, s in enumerate(steps)}
    return framewise(hv.HoloMap(frames, kdims=["step"]))


def framewise(obj: Any) -> Any:
    """Ranges per frame: the views fix their axes and colour ranges themselves.

    HoloViews otherwise recomputes the ranges over every frame each time a frame
    is shown, which makes stepping through F frames cost O(F²).
    """
    kinds = ("Overlay", "Image", "Rectangles", "Segments", "Points", "Curve", "Scatter", "Labels")
    return obj.opts({kind: {"framewise": True} for kind in kinds})


def layout(items: list[Any], cols: int) -> Any:
    """One panel as itself, several as a Layout of ``cols`` columns."""
    if len(items) == 1:
        return items[0]
    return hv.Layout(items).cols(cols)


class Panels(NamedTuple):
    """What a view shows: its instances, their variables, their titles, and the steps."""

    chosen: list[Any]
    source: xr.Dataset
    titles: dict[Any, str]
    shown: np.ndarray


def panels(
    ds: xr.Dataset,
    variables: Sequence[str],
    params: PlotParams,
    *,
    instances: Any = None,
    steps: Sequence[int] | str | None = None,
    max_instances: int | None = None,
) -> Panels:
    """The instances (``max_instances`` overrides the params'), ``variables`` and steps shown."""
    most = params.max_instances if max_instances is None else max_instances
    chosen = pick_instances(ds, instances, most)
    keep = [v for v in variables if v in ds.data_vars]
    source = ds[keep].sel(instance=chosen)
    titles = {inst: instance_title(ds, inst) for inst in chosen}
    return Panels(chosen, source, titles, frame_steps(ds, steps, params.max_frames))


def range_steps(shown: np.ndarray, dynamic: bool) -> np.ndarray:
    """The steps that fix a view's axis and colour ranges (a DynamicMap loads only the last)."""
    return shown[-1:] if dynamic else shown


def matrix(frame: xr.Dataset, name: str = "W") -> np.ndarray:
    """One instance's ``name`` at one step as a float64 ``(hidden, feature)`` array."""
    return np.asarray(frame[name].transpose("hidden", "feature").values, dtype=np.float64)
