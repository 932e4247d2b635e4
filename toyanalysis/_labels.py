"""Label bookkeeping, in one place: intake, selection, coordinates, JSON scalars.

Every analysis takes "a store" in the same forms (a store Dataset, its ``W``,
or a NumPy array), selects steps and instances the same way, lists an
instance's coordinates in the same order (sweep labels first), and writes
numbers into JSON the same way. This module is that shared layer; nothing in
it knows Zarr (``store``) or any analysis.

>>> import numpy as np
>>> ds = as_store(np.zeros((3, 2, 2, 5)))          # (step, instance, hidden, feature)
>>> select(ds, steps="last", instances=[1])["W"].shape
(1, 1, 2, 5)
>>> json_number(np.float32(0.1)), json_scalar(np.int64(3)), json_number(float("nan"))
(0.1, 3, None)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from toyanalysis.errors import ConfigError, StoreError

if TYPE_CHECKING:
    import xarray as xr

    from toyanalysis.models import ModelFamily

__all__ = [
    "WEIGHT_DIMS",
    "as_store",
    "carried_coords",
    "describe_steps",
    "feature_coords",
    "instance_coords",
    "json_number",
    "json_scalar",
    "model_of",
    "select",
    "select_instances",
    "select_steps",
    "sweep_names",
]

WEIGHT_DIMS = ("step", "instance", "hidden", "feature")


# --------------------------------------------------------------------------- intake


def as_store(data: Any, name: str = "dataset") -> xr.Dataset:
    """A store-shaped Dataset from a store Dataset, a ``W`` DataArray or a NumPy array.

    Arrays may be ``(hidden, feature)``, ``(instance, hidden, feature)`` or
    ``(step, instance, hidden, feature)``; missing ``step``/``instance`` dims
    are added with length 1. The result is checked against the store format
    (``docs/store-format.md``) and its optional parts filled in; the input is
    never modified.
    """
    import xarray as xr

    if isinstance(data, xr.Dataset):
        if "W" not in data.data_vars:
            found = ", ".join(map(str, data.data_vars)) or "none"
            raise StoreError(f"{name}: no variable W (found: {found})")
        ds = data.copy()
    elif isinstance(data, xr.DataArray):
        ds = data.to_dataset(name="W")
    else:
        ds = xr.Dataset({"W": _array_dims(data)})
    W = ds["W"]
    unknown = [d for d in W.dims if d not in WEIGHT_DIMS]
    if unknown or "hidden" not in W.dims or "feature" not in W.dims:
        raise StoreError(f"{name}: variable W has dims {W.dims}, expected {WEIGHT_DIMS}")
    for dim in ("step", "instance"):
        if dim not in W.dims:
            ds = ds.expand_dims(dim)
    from toyanalysis.store import normalize

    return normalize(ds, name)


def _array_dims(data: Any) -> tuple[tuple[str, ...], np.ndarray]:
    array = np.asarray(data)
    if array.ndim < 2 or array.ndim > 4 or not np.issubdtype(array.dtype, np.number):
        raise ConfigError(
            "W must be a numeric (hidden, feature), (instance, hidden, feature) or "
            f"(step, instance, hidden, feature) array, got shape {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    return WEIGHT_DIMS[4 - array.ndim :], array


def model_of(ds: xr.Dataset, given: str | None = None) -> ModelFamily:
    """The model family of a store: ``given`` if not None, else ``attrs["model"]``."""
    from toyanalysis.models import family

    return family(given if given is not None else ds.attrs.get("model", "relu_output"))


def sweep_names(ds: xr.Dataset) -> list[str]:
    """The store's sweep coordinates (``attrs["sweep"]``) that it has, in order."""
    sweep = ds.attrs.get("sweep", []) or []
    if isinstance(sweep, str):
        sweep = [sweep]
    return [str(s) for s in sweep if s in ds.coords]


# --------------------------------------------------------------------------- selection


def describe_steps(steps: np.ndarray) -> str:
    """``steps 0, 100, 200`` or ``40 steps 0..3900 every 100``."""
    if steps.size == 0:
        return "no steps"
    if steps.size <= 6:
        return f"steps {', '.join(map(str, steps.tolist()))}"
    gaps = np.unique(np.diff(steps))
    every = f" every {gaps[0]}" if gaps.size == 1 else ""
    return f"{steps.size} steps {steps[0]}..{steps[-1]}{every}"


def _the_store_has(recorded: np.ndarray) -> str:
    return f" (the store has {describe_steps(recorded)})"


def select_steps(
    ds: xr.Dataset, steps: Any, recorded: Callable[[np.ndarray], str] = _the_store_has
) -> xr.Dataset:
    """``steps``: None or "all" (every step), "last", or step numbers (one or several).

    A step that is not recorded raises "step S is not recorded" followed by
    ``recorded(the recorded steps)``.
    """
    available = ds["step"].values
    if steps is None or (isinstance(steps, str) and steps == "all"):
        return ds
    if isinstance(steps, str) and steps == "last":
        return ds.isel(step=[-1]) if available.size else ds
    wanted = [steps] if np.ndim(steps) == 0 else list(steps)
    try:
        wanted = [int(s) for s in wanted]
    except (TypeError, ValueError):
        raise ConfigError(f"steps must be 'last', 'all' or step numbers, got {steps!r}") from None
    have = set(available.tolist())
    missing = [s for s in wanted if s not in have]
    if missing:
        raise ConfigError(f"step {missing[0]} is not recorded{recorded(available)}")
    return ds.sel(step=wanted)


def select_instances(ds: xr.Dataset, instances: Any) -> xr.Dataset:
    """``instances``: None (all) or instance labels (one or several)."""
    if instances is None:
        return ds
    wanted = [instances] if np.ndim(instances) == 0 else list(instances)
    labels = ds["instance"].values.tolist()
    try:
        wanted = [type(labels[0])(i) if labels else i for i in wanted]
    except (TypeError, ValueError):
        raise ConfigError(f"instances must be instance labels, got {instances!r}") from None
    have = set(labels)
    missing = [i for i in wanted if i not in have]
    if missing:
        described = f"{labels[0]}..{labels[-1]}" if labels else "none"
        raise ConfigError(f"instance {missing[0]} is not in the store (instances: {described})")
    return ds.sel(instance=wanted)


def select(ds: xr.Dataset, *, steps: Any = None, instances: Any = None) -> xr.Dataset:
    """The checkpoints ``steps`` (see :func:`select_steps`) of ``instances`` (labels)."""
    return select_instances(select_steps(ds, steps), instances)


# --------------------------------------------------------------------------- coordinates


def instance_coords(ds: xr.Dataset) -> dict[str, np.ndarray]:
    """1-D instance coordinates: the sweep labels first, then seed and the rest by name."""
    sweep = [s for s in sweep_names(ds) if ds[s].dims == ("instance",)]
    rest = sorted(
        str(name)
        for name, c in ds.coords.items()
        if c.dims == ("instance",) and name != "instance" and name not in sweep
    )
    return {name: np.asarray(ds[name].values) for name in sweep + rest}


def feature_coords(ds: xr.Dataset) -> dict[str, np.ndarray]:
    """(instance, feature) coordinates such as density and importance, as (I, n) arrays."""
    names = sorted(str(n) for n, c in ds.coords.items() if set(c.dims) == {"instance", "feature"})
    return {name: np.asarray(ds[name].transpose("instance", "feature").values) for name in names}


def carried_coords(ds: xr.Dataset) -> dict[str, xr.DataArray]:
    """Coordinates that describe steps, instances or features (not hidden units)."""
    keep = {}
    for name, coord in ds.coords.items():
        if name in ("step", "instance", "feature") or "hidden" in coord.dims:
            continue
        if set(coord.dims) <= {"step", "instance", "feature"}:
            keep[str(name)] = coord
    return keep


# --------------------------------------------------------------------------- JSON


def json_scalar(value: Any) -> Any:
    """A JSON value: NumPy scalars as Python ones, a non-finite float as null."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_number(value: Any) -> float | None:
    """A JSON number: null when not finite; float32 values keep their short form."""
    value = float(str(value)) if isinstance(value, np.float32) else float(value)
    return value if math.isfinite(value) else None
