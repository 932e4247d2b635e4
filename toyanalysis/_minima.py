"""Local minima: which seeds of a sweep cell are stuck well above the cell's best.

Instances sharing all sweep values (``attrs["sweep"]``, and their density and
importance rows) are the seeds of one cell, as in the phase diagram. Each is
compared with its cell's best by the expected loss at one step (the stored
training loss, averaged over the last ``loss_records`` records, where the
store has no config): the relative gap ``(loss - best) / best`` above
``stuck_gap`` marks it ``stuck``. :func:`best_of` keeps the best ``k`` seeds of
each cell (what the paper does: refit, keep the best). ``docs/classify.md``
("Local minima and best-of-k") has the definitions and the measurement behind
the default.

>>> import numpy as np
>>> from toyanalysis import testing
>>> W = np.stack([testing.tegum("digon")] * 4)[None]          # 2 cells x 2 seeds
>>> ds = testing.as_dataset(W, sweep={"x": [0, 0, 1, 1]}, loss=[[1.0, 1.5, 2.0, 2.02]])
>>> local_minima(ds, loss="stored")["stuck"].values.tolist()
[False, True, False, False]
>>> best_of(ds, loss="stored")["instance"].values.tolist()
[0, 2]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from toyanalysis._labels import as_store, select_instances, select_steps, sweep_names
from toyanalysis.errors import ConfigError
from toyanalysis.params import LOSSES, Params, option

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["MinimaParams", "annotate", "best_of", "cells", "local_minima"]

NOTHING_TO_COMPARE = "every cell has one seed: nothing to compare"


@dataclass(frozen=True, kw_only=True)
class MinimaParams(Params):
    """Parameters of :func:`local_minima` and :func:`best_of` (``docs/classify.md``)."""

    analysis: ClassVar[str] = "local_minima"

    stuck_gap: float = option(
        0.02,
        float,
        "A seed is stuck when its loss is more than this fraction above its cell's best.",
        low=0.0,
        low_open=True,
        high=math.inf,
    )
    loss: str = option(
        "expected",
        str,
        "Compare seeds by: expected (exact or sampled, from the store's config; the stored "
        "loss where it has none), exact, sampled, or stored (the training loss).",
        choices=LOSSES,
    )
    loss_records: int = option(
        3, int, "The stored loss is averaged over this many last records.", low=1
    )


def cells(ds: xr.Dataset) -> tuple[np.ndarray, list[str]]:
    """The cell of each instance ``(instance,)`` and the coordinates that define cells:
    the sweep coordinates, then the per-instance density and importance rows."""
    names = [s for s in sweep_names(ds) if ds[s].dims == ("instance",)]
    columns = [np.asarray(ds[s].values).astype(str) for s in names]
    for name in ("density", "importance"):
        if name in ds.coords and set(ds[name].dims) == {"instance", "feature"}:
            rows = np.asarray(ds[name].transpose("instance", "feature").values, np.float64)
            columns.append(np.array([np.array2string(r, precision=12) for r in rows]))
            names.append(name)
    keys = [tuple(c[i] for c in columns) for i in range(ds.sizes["instance"])]
    index: dict[tuple[Any, ...], int] = {}
    return np.array([index.setdefault(k, len(index)) for k in keys], dtype=np.int64), names


def _loss(ds: xr.Dataset, step: int, params: MinimaParams) -> tuple[np.ndarray, np.ndarray, str]:
    """The loss seeds are compared by and its error ``(instance,)`` at ``step``; its source."""
    from toyanalysis._phases._inputs import compared_loss

    at = select_steps(ds, [step])
    loss, error, source = compared_loss(ds, at, params.loss, None)
    n = ds.sizes["instance"]
    if loss is None:
        return np.full(n, np.nan), np.full(n, np.nan), source
    if source.startswith("store"):  # the training loss: averaged over the last records
        stored = (
            ds["loss"].sel(step=ds["step"] <= step).isel(step=slice(-params.loss_records, None))
        )
        values = np.asarray(stored.transpose("step", "instance").values, np.float64)
        with np.errstate(invalid="ignore"):
            mean = np.where(np.isfinite(values).all(axis=0), values.mean(axis=0), np.nan)
        return mean, np.full(n, np.nan), source
    return loss[0], (np.full(n, np.nan) if error is None else error[0]), source


def _per_cell(cell: np.ndarray, loss: np.ndarray) -> dict[str, np.ndarray]:
    """Per instance: its cell's best loss and best instance index, the gap, the seed count."""
    n = len(cell)
    best, best_index = np.full(n, np.nan), np.full(n, -1, dtype=np.int64)
    count = np.bincount(cell)[cell]
    for c in np.unique(cell):
        members = np.flatnonzero(cell == c)
        finite = members[np.isfinite(loss[members])]
        if finite.size:
            k = finite[np.argmin(loss[finite])]
            best[members], best_index[members] = loss[k], k
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = np.where(best > 0, (loss - best) / best, loss - best)
    return {"best_loss": best, "best_index": best_index, "gap": gap, "n_seeds": count}


def local_minima(
    ds: xr.Dataset,
    params: MinimaParams | None = None,
    *,
    step: int | None = None,
    instances: Any = None,
    **changes: Any,
) -> xr.Dataset:
    """Per instance: its ``cell``, the cell's ``best_loss`` and ``best_instance``, the
    relative ``gap`` ``(loss - best) / best`` and ``stuck`` (gap above ``stuck_gap``).

    ``params``: a :class:`MinimaParams` (defaults when None), changed by keyword
    (``stuck_gap=0.1``, ``loss="stored"``). ``step``: the recorded step judged
    (default the last). ``instances``: the labels compared (default all; the loss is
    evaluated on the whole store, cells and bests among these). ``attrs``:
    ``loss_source`` (``exact``/``sampled``: the expected loss; ``store``: the
    training loss; ``none``), ``comparable``
    (False when every cell has one seed or there is no loss: ``stuck`` is then
    all False and ``note`` says why), ``cell_coords``, ``step``, ``params``.
    """
    params = MinimaParams.resolve(params, changes)
    ds = as_store(ds)
    chosen = int(ds["step"].values[-1]) if step is None else int(step)
    loss, error, source = _loss(ds, chosen, params)
    if instances is not None:
        keep = np.isin(ds["instance"].values, select_instances(ds, instances)["instance"].values)
        ds, loss, error = ds.isel(instance=keep), loss[keep], error[keep]
    cell, names = cells(ds)
    per = _per_cell(cell, loss)
    comparable = bool((per["n_seeds"] > 1).any()) and bool(np.isfinite(loss).any())
    with np.errstate(invalid="ignore"):
        stuck = comparable & (per["gap"] > params.stuck_gap)
    result = _result(ds, cell, loss, error, per, stuck)
    result.attrs.update(
        analysis="local_minima",
        step=chosen,
        loss_source=source,
        comparable=comparable,
        cell_coords=names,
        params=params.to_json(),
    )
    if not comparable:
        result.attrs["note"] = (
            NOTHING_TO_COMPARE if not (per["n_seeds"] > 1).any() else "no loss to compare seeds by"
        )
    return result


def _result(
    ds: xr.Dataset,
    cell: np.ndarray,
    loss: np.ndarray,
    error: np.ndarray,
    per: dict[str, np.ndarray],
    stuck: np.ndarray,
) -> xr.Dataset:
    import xarray as xr

    instances = ds["instance"].values
    best_instance = np.where(per["best_index"] >= 0, instances[per["best_index"]], -1)
    dims = ("instance",)
    return xr.Dataset(
        {
            "cell": (dims, cell),
            "n_seeds": (dims, per["n_seeds"]),
            "loss": (dims, loss),
            "loss_error": (dims, error),
            "best_loss": (dims, per["best_loss"]),
            "best_instance": (dims, best_instance),
            "gap": (dims, per["gap"]),
            "stuck": (dims, np.asarray(stuck, dtype=bool)),
        },
        coords={"instance": instances, **_instance_coords(ds)},
    )


def _instance_coords(ds: xr.Dataset) -> dict[str, Any]:
    return {
        str(name): ("instance", np.asarray(c.values))
        for name, c in ds.coords.items()
        if c.dims == ("instance",) and name != "instance"
    }


def best_of(
    ds: xr.Dataset,
    k: int | None = None,
    params: MinimaParams | None = None,
    *,
    step: int | None = None,
    minima: xr.Dataset | None = None,
    **changes: Any,
) -> xr.Dataset:
    """The store with only the best ``k`` seeds (default 1) of each cell, lowest loss first
    within a cell, kept in instance order. ``minima``: a :func:`local_minima` result
    of ``ds`` to rank by (computed when None). A store whose cells all have one seed,
    or with no loss, is refused (:class:`~toyanalysis.errors.ConfigError`)."""
    count = 1 if k is None else k
    if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1:
        raise ConfigError(f"best_of: k must be an integer >= 1, got {k!r}")
    if minima is None:
        minima = local_minima(ds, params, step=step, **changes)
    if not minima.attrs.get("comparable", False):
        axes = ", ".join(minima.attrs.get("cell_coords", [])) or "no sweep coordinates"
        note = minima.attrs.get("note", NOTHING_TO_COMPARE)
        raise ConfigError(f"best_of: {note} (cells by {axes}); there is no best to choose")
    cell = minima["cell"].values
    loss = np.where(np.isfinite(minima["loss"].values), minima["loss"].values, np.inf)
    keep: list[int] = []
    for c in np.unique(cell):
        members = np.flatnonzero(cell == c)
        keep.extend(members[np.argsort(loss[members], kind="stable")][:count].tolist())
    chosen = minima["instance"].values[sorted(keep)]
    out = ds.sel(instance=chosen)
    out.attrs = {**ds.attrs, "best_of": int(count), "loss_source": minima.attrs["loss_source"]}
    return out


def annotate(result: xr.Dataset, minima: xr.Dataset) -> xr.Dataset:
    """``result`` (per instance, e.g. a classify result) with the instance coordinates
    ``stuck`` and ``loss_gap`` of ``minima`` (a :func:`local_minima` result)."""
    instances = result["instance"].values
    chosen = minima.sel(instance=instances)
    return result.assign_coords(
        stuck=("instance", np.asarray(chosen["stuck"].values, dtype=bool)),
        loss_gap=("instance", np.asarray(chosen["gap"].values, dtype=np.float64)),
    )
