"""The λ̂ view: loss and the local learning coefficient over training, transitions marked.

:func:`llc_curves` draws two panels sharing the step axis: the loss per
instance (log axis) and λ̂ ± its standard error per instance, from a
:func:`toyanalysis.llc` result (given, or the store's saved ``analysis/llc``
group). Estimates that are unreliable (negative, or chains that disagree) or
whose every chain diverged are left out of the λ̂ panel, and its title says
how many. With a :func:`toyanalysis.phases` result, each geometry transition
is a cross on the loss curve and a dashed line on the λ̂ panel, with Δλ̂
(:func:`toyanalysis.llc_by_phase`) in the hover.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import holoviews as hv
import numpy as np
import xarray as xr

from toyanalysis.errors import ConfigError, StoreError
from toyanalysis.plots._common import (
    FEATURE_COLORS,
    MAX_INSTANCES,
    PANEL,
    PlotError,
    PlotParams,
    instance_title,
    intake,
    pick_instances,
    resolve,
)

__all__ = ["LLC_DIM", "Marks", "llc_curves", "saved_llc", "store_path"]

LLC_DIM = hv.Dimension("llc", label="λ̂")
BORDER = 70  # pixels left of both frames, so that their step axes line up


def store_path(ds: Any) -> str | None:
    """The path of the store behind ``ds`` (a path, or a Dataset opened from one), else None."""
    if isinstance(ds, (str, os.PathLike)):
        return os.fspath(ds)
    if isinstance(ds, xr.Dataset):
        source = ds.encoding.get("source")
        return str(source) if source else None
    return None


def saved_llc(ds: Any) -> xr.Dataset | None:
    """The store's saved ``analysis/llc`` group (``toyanalysis llc --save``), or None."""
    from toyanalysis.store import open_analysis

    path = store_path(ds)
    if path is None:
        return None
    try:
        return open_analysis(path, "llc")
    except StoreError:
        return None


def _estimates(ds: Any, llc: xr.Dataset | None) -> xr.Dataset:
    """The llc result to draw: ``llc``, else the store's saved one; checked."""
    if llc is None:
        llc = saved_llc(ds)
        if llc is None:
            raise PlotError(
                "llc_curves needs an llc result (llc=) or a store with a saved analysis/llc "
                "group (`toyanalysis llc STORE --save`)"
            )
    if not isinstance(llc, xr.Dataset) or "llc" not in llc.data_vars:
        raise PlotError("llc= must be a toyanalysis.llc result (a Dataset with variable llc)")
    if set(llc["llc"].dims) != {"step", "instance"}:
        raise PlotError(
            f"the llc result's llc has dims {llc['llc'].dims}, expected (step, instance)"
        )
    return llc


def _table(estimates: xr.Dataset, name: str, fill: Any) -> np.ndarray:
    """``name (step, instance)`` of the llc result, or ``fill`` where it has none."""
    if name not in estimates.data_vars:
        return np.full((estimates.sizes["step"], estimates.sizes["instance"]), fill)
    return np.asarray(estimates[name].transpose("step", "instance").values)


def _kept(estimates: xr.Dataset) -> tuple[np.ndarray, str]:
    """Which estimates are drawn (finite and reliable), and the sentence saying what is not."""
    value = _table(estimates, "llc", np.nan).astype(np.float64)
    unreliable = _table(estimates, "unreliable", False).astype(bool)
    diverged = ~np.isfinite(value)
    dropped = unreliable & ~diverged
    kept = ~diverged & ~unreliable
    total = value.size
    if kept.all():
        return kept, f"all {total} estimates reliable"
    parts = []
    if dropped.any():
        parts.append(f"{int(dropped.sum())} unreliable")
    if diverged.any():
        parts.append(f"{int(diverged.sum())} all chains divergent")
    return kept, f"left out: {', '.join(parts)}, of {total}"


class Marks(NamedTuple):
    """The chosen instances' transitions: instance, step, from, to, Δλ̂ and its se."""

    instance: list[Any]
    step: np.ndarray
    old: list[str]
    new: list[str]
    delta: np.ndarray
    delta_se: np.ndarray

    @classmethod
    def none(cls) -> Marks:
        return cls([], np.zeros(0, np.int64), [], [], np.zeros(0), np.zeros(0))


def _deltas(phases: xr.Dataset, estimates: xr.Dataset, chosen: list[Any]) -> tuple[Any, Any]:
    """Δλ̂ and its se per row of the phases' ``transition`` table (NaN where unknown).

    The phases' λ̂ are the means of their reliable estimates: those the plot draws.
    """
    from toyanalysis._llc import llc_by_phase

    rows = phases.sizes.get("transition", 0)
    nan = np.full(rows, np.nan)
    needed = ("phase_index", "phase_instance", "phase_start")
    if not rows or any(n not in phases.variables for n in needed):
        return nan, nan
    have = set(phases["instance"].values.tolist())
    inside = [i for i in chosen if i in have]
    steps = [s for s in estimates["step"].values.tolist() if s in set(phases["step"].values)]
    if not inside or not steps:
        return nan, nan
    kept = estimates.sel(instance=inside, step=steps)
    if "unreliable" in kept.data_vars:  # Δλ̂ from the estimates drawn, as the plot shows them
        kept = kept.assign(llc=kept["llc"].where(~kept["unreliable"].astype(bool)))
    try:
        joined = llc_by_phase(phases, kept)
    except (ConfigError, KeyError):
        return nan, nan
    return joined["delta_llc"].values, joined["delta_llc_se"].values


def _marks(phases: xr.Dataset | None, estimates: xr.Dataset, chosen: list[Any]) -> Marks | None:
    """The transitions of ``phases`` for the chosen instances; None without a phases result."""
    if phases is None:
        return None
    for name in ("transition_instance", "transition_step"):
        if name not in phases.variables:
            raise PlotError(f"phases= must be a toyanalysis.phases result (it has no {name})")
    delta, delta_se = _deltas(phases, estimates, chosen)
    rows = phases.sizes.get("transition", 0)
    blank = np.full(rows, "", dtype=object)
    old = phases["transition_from"].values if "transition_from" in phases else blank
    new = phases["transition_to"].values if "transition_to" in phases else blank
    wanted = set(chosen)
    table = zip(
        phases["transition_instance"].values.tolist(),
        phases["transition_step"].values.tolist(),
        old,
        new,
        delta,
        delta_se,
    )
    picked = [row for row in table if row[0] in wanted]
    if not picked:
        return Marks.none()
    inst, step, o, n, d, se = zip(*picked, strict=True)
    return Marks(
        list(inst),
        np.asarray(step, np.int64),
        [str(x) for x in o],
        [str(x) for x in n],
        np.asarray(d, np.float64),
        np.asarray(se, np.float64),
    )


def _align(plot: Any, element: Any) -> None:
    """A fixed border left of the frame: the two panels' step axes line up."""
    plot.state.min_border_left = BORDER


def _color(k: int) -> str:
    return FEATURE_COLORS[k % len(FEATURE_COLORS)]


def _loss_table(
    store: xr.Dataset, estimates: xr.Dataset, chosen: list[Any]
) -> tuple[np.ndarray, np.ndarray, str]:
    """Steps, loss ``(step, instance)`` and its label: the store's loss, else the chains' L(w*)."""
    if "loss" in store.data_vars:
        missing = [i for i in chosen if i not in set(store["instance"].values.tolist())]
        if missing:
            raise PlotError(f"instance {missing[0]} of the llc result is not in the store")
        loss = store["loss"].sel(instance=chosen).transpose("step", "instance").values
        return np.asarray(store["step"].values, np.int64), np.asarray(loss, np.float64), "loss"
    if "init_loss" not in estimates.data_vars:
        raise PlotError("llc_curves needs the store's loss or the llc result's init_loss")
    loss = _table(estimates.sel(instance=chosen), "init_loss", np.nan).astype(np.float64)
    return np.asarray(estimates["step"].values, np.int64), loss, "L(w*) (the store has no loss)"


def _crosses(
    marks: Marks, steps: np.ndarray, loss: np.ndarray, chosen: list[Any], titles: Any
) -> Any:
    """A cross on the loss curve at each transition, with the geometries and Δλ̂ in the hover."""
    position = {inst: k for k, inst in enumerate(chosen)}
    index = {int(s): k for k, s in enumerate(steps)}
    rows = [
        (int(s), float(loss[index[int(s)], position[i]]), o, n, titles[i], d, e)
        for i, s, o, n, d, e in zip(*marks, strict=True)
        if int(s) in index
    ]
    columns: list[Any] = list(zip(*rows, strict=True)) if rows else [[]] * 7
    return hv.Scatter(
        tuple(np.asarray(c) for c in columns),
        kdims=["step"],
        vdims=["loss", "from", "to", "instance", "delta_llc", "delta_llc_se"],
        label="transition",
    ).opts(marker="x", size=12, color="black", line_width=2, tools=["hover"])


def _loss_panel(
    store: xr.Dataset,
    estimates: xr.Dataset,
    chosen: list[Any],
    marks: Marks | None,
    titles: Any,
    xlim: Any,
) -> Any:
    steps, loss, label = _loss_table(store, estimates, chosen)
    elements: list[Any] = [
        hv.Curve(
            (steps, loss[:, k]),
            kdims=["step"],
            vdims=[hv.Dimension("loss", label=label)],
            label=titles[inst],
        ).opts(color=_color(k), line_width=1.5, tools=["hover"])
        for k, inst in enumerate(chosen)
    ]
    elements.append(_crosses(marks or Marks.none(), steps, loss, chosen, titles))
    finite = loss[np.isfinite(loss) & (loss > 0)]
    ylim = (float(finite.min()) / 1.5, float(finite.max()) * 1.5) if finite.size else (None, None)
    marked = "× = change of geometry" if marks is not None else "no phases given: none marked"
    return hv.Overlay(elements).opts(
        hv.opts.Overlay(
            logy=True,
            ylim=ylim,
            title=f"{label} per instance ({marked})",
            xlim=xlim,
            hooks=[_align],
            frame_width=3 * PANEL,
            frame_height=PANEL,
            legend_position="right",
            show_legend=len(chosen) <= MAX_INSTANCES,
        )
    )


def _llc_panel(
    estimates: xr.Dataset, chosen: list[Any], marks: Marks | None, titles: Any, xlim: Any
) -> Any:
    shown = estimates.sel(instance=chosen)
    kept, note = _kept(shown)
    steps = np.asarray(shown["step"].values, np.int64)
    value = np.where(kept, _table(shown, "llc", np.nan).astype(np.float64), np.nan)
    se = _table(shown, "llc_se", np.nan).astype(np.float64)
    elements: list[Any] = []
    for k, inst in enumerate(chosen):
        data = (steps, value[:, k])
        style = dict(color=_color(k), tools=["hover"])
        elements.append(hv.Curve(data, "step", LLC_DIM, label=titles[inst]).opts(**style))
        elements.append(hv.Scatter(data, "step", LLC_DIM, label=titles[inst]).opts(size=5, **style))
    bars = np.isfinite(value) & np.isfinite(se)
    column = np.broadcast_to(steps[:, None], value.shape)
    elements.append(
        hv.ErrorBars((column[bars], value[bars], se[bars]), "step", [LLC_DIM, "llc_se"]).opts(
            color="black", alpha=0.5
        )
    )
    if marks is not None and marks.step.size:
        lines = np.unique(marks.step).astype(np.float64)
        elements.append(
            hv.VLines(lines, kdims=["step"]).opts(color="black", line_dash="dashed", alpha=0.5)
        )
    return hv.Overlay(elements).opts(
        hv.opts.Overlay(
            title=f"λ̂ ± se ({note})",
            xlim=xlim,
            hooks=[_align],
            frame_width=3 * PANEL,
            frame_height=PANEL,
            ylabel="λ̂",
            show_legend=False,
        )
    )


def llc_curves(
    ds: Any,
    params: PlotParams | None = None,
    *,
    llc: xr.Dataset | None = None,
    phases: xr.Dataset | None = None,
    instances: Sequence[Any] | None = None,
    **changes: Any,
) -> Any:
    """Loss (top, log axis) and λ̂ ± se (bottom) per instance over training, transitions marked.

    ``llc`` is a :func:`toyanalysis.llc` result; by default the store's saved
    ``analysis/llc`` group (``toyanalysis llc STORE --save``; ``ds`` a path or
    a Dataset opened from one). Instances are the llc result's, at most
    ``max_instances`` evenly spaced (``instances=`` picks them). Unreliable
    estimates and those whose every chain diverged are left out of the λ̂
    panel; its title counts them. ``phases`` (a :func:`toyanalysis.phases`
    result) marks each transition: a cross on the loss (hover for the
    geometries and Δλ̂ ± se) and a dashed line on λ̂. No slider: x is the step.

    >>> from toyanalysis import testing
    >>> ds = testing.as_dataset(np.zeros((3, 1, 2, 3)), steps=[0, 1, 2], loss=[[3.0], [2.0], [1.0]])
    >>> est = xr.Dataset({"llc": (("step", "instance"), [[1.0], [2.0], [np.nan]])},
    ...                  coords={"step": [0, 1, 2], "instance": [0]})
    >>> llc_curves(ds, llc=est).values()[1].opts.get().kwargs["title"]
    'λ̂ ± se (left out: 1 all chains divergent, of 3)'
    """
    params = resolve(params, changes)
    store = intake(ds)
    estimates = _estimates(ds, llc)
    chosen = pick_instances(estimates, instances, params.max_instances)
    have = set(store["instance"].values.tolist())
    titles = {i: instance_title(store, i) if i in have else f"instance {i}" for i in chosen}
    marks = _marks(phases, estimates, chosen)
    every = np.concatenate([store["step"].values, estimates["step"].values]).astype(np.float64)
    xlim = (float(every.min()), float(every.max()))
    panels = [
        _loss_panel(store, estimates, chosen, marks, titles, xlim),
        _llc_panel(estimates, chosen, marks, titles, xlim),
    ]
    return hv.Layout(panels).cols(1)
