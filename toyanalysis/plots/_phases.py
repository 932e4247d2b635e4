"""Views of phase results: loss curves with the geometry transitions, the phase diagram."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import holoviews as hv
import numpy as np
import xarray as xr

from toyanalysis.plots._common import (
    MAX_INSTANCES,
    PANEL,
    PlotError,
    PlotParams,
    frame_steps,
    framewise,
    instance_title,
    intake,
    pick_instances,
    resolve,
)

__all__ = ["PHASE_COLORS", "loss_curves", "phase_diagram"]

PHASE_COLORS = {"unlearned": "#d9d9d9", "superposed": "#fdae61", "dedicated": "#2c7bb6"}


# --------------------------------------------------------------------------- loss curves


def loss_curves(
    ds: Any,
    params: PlotParams | None = None,
    *,
    phases: xr.Dataset | None = None,
    instances: Sequence[Any] | None = None,
    mark_transitions: bool = True,
    **changes: Any,
) -> Any:
    """Training loss per instance (log axis), geometry transitions marked with crosses.

    ``phases`` is a :func:`toyanalysis.phase_changes.phases` result to reuse; by
    default it is computed from the store (every recorded step). Hover a
    cross for the configurations before and after. The x axis is the step,
    so this view has no slider.

    >>> from toyanalysis import testing
    >>> W = np.stack([testing.tegum("digon", "digon")] * 5 + [testing.tegum("digon", "dedicated", dead=1)] * 5)
    >>> ds = testing.as_dataset(W[:, None], steps=np.arange(10) * 100, loss=np.linspace(1, 0.1, 10))
    >>> [type(e).__name__ for e in loss_curves(ds)]
    ['Curve', 'Scatter']
    """
    params = resolve(params, changes)
    ds = intake(ds)
    if "loss" not in ds.data_vars:
        raise PlotError("loss_curves needs the store's loss variable, and this store has none")
    chosen = pick_instances(ds, instances, params.max_instances)
    loss = np.asarray(
        ds["loss"].sel(instance=chosen).transpose("step", "instance").values, dtype=np.float64
    )
    steps = np.asarray(ds["step"].values, dtype=np.int64)
    elements: list[Any] = [
        hv.Curve(
            (steps, loss[:, k]), kdims=["step"], vdims=["loss"], label=instance_title(ds, inst)
        ).opts(line_width=1.5, tools=["hover"])
        for k, inst in enumerate(chosen)
    ]
    if mark_transitions:
        elements.append(_transition_marks(ds, chosen, loss, steps, phases, params))
    finite = loss[np.isfinite(loss) & (loss > 0)]
    ylim = (float(finite.min()) / 1.5, float(finite.max()) * 1.5) if finite.size else (None, None)
    return hv.Overlay(elements).opts(
        hv.opts.Overlay(
            logy=True,
            ylim=ylim,
            title="loss per instance (× = change of geometry)",
            frame_width=3 * PANEL,
            frame_height=PANEL + 60,
            legend_position="right",
            show_legend=len(chosen) <= MAX_INSTANCES,
        )
    )


def _transition_marks(
    ds: xr.Dataset,
    chosen: list[Any],
    loss: np.ndarray,
    steps: np.ndarray,
    result: xr.Dataset | None,
    params: PlotParams,
) -> Any:
    """Crosses at each transition of the chosen instances (the flat ``transition`` table)."""
    from toyanalysis.params import PhaseParams
    from toyanalysis.phase_changes import phases as compute_phases

    if result is None:
        result = compute_phases(ds, PhaseParams(classify=params.classify), instances=chosen)
    position = {inst: k for k, inst in enumerate(chosen)}
    step_index = {int(s): k for k, s in enumerate(steps)}
    table = zip(
        result["transition_instance"].values.tolist(),
        result["transition_step"].values.tolist(),
        result["transition_from"].values,
        result["transition_to"].values,
    )
    rows: list[tuple[int, float, str, str, str]] = []
    for inst, step, old, new in sorted(table, key=lambda row: position.get(row[0], -1)):
        if inst not in position or step not in step_index:
            continue
        loss_at = float(loss[step_index[step], position[inst]])
        rows.append((step, loss_at, str(old), str(new), instance_title(ds, inst)))
    columns: list[Any] = list(zip(*rows, strict=True)) if rows else [[], [], [], [], []]
    return hv.Scatter(
        tuple(np.asarray(c) for c in columns),
        kdims=["step"],
        vdims=["loss", "from", "to", "instance"],
        label="transition",
    ).opts(marker="x", size=12, color="black", line_width=2, tools=["hover"])


# --------------------------------------------------------------------------- phase diagram


def _edges(values: np.ndarray, log: bool) -> np.ndarray:
    """Cell edges around sorted distinct values (geometric midpoints on a log axis)."""
    if values.size == 1:
        v = values[0]
        return np.array([v / 2, v * 2]) if log else np.array([v - 0.5, v + 0.5])
    if log:
        lv = np.log(values)
        mid = (lv[1:] + lv[:-1]) / 2
        return np.exp(
            np.concatenate([[lv[0] - (mid[0] - lv[0])], mid, [lv[-1] + (lv[-1] - mid[-1])]])
        )
    mid = (values[1:] + values[:-1]) / 2
    return np.concatenate(
        [[values[0] - (mid[0] - values[0])], mid, [values[-1] + (values[-1] - mid[-1])]]
    )


def _diagram_axes(axes: list[str]) -> tuple[str, str | None]:
    """Density-like axis on x (as in the paper), the other on y."""
    if len(axes) == 1:
        return axes[0], None
    if len(axes) != 2:
        raise PlotError(f"phase_diagram draws one or two sweep axes, the result has {axes}")
    x, y = axes
    if "density" in y and "density" not in x:
        x, y = y, x
    return x, y


def _cells(result: xr.Dataset, name: str | None, n: int) -> tuple[Any, ...]:
    """One axis of the grid: values, whether logarithmic, cell edges, and each cell's index."""
    if name is None:
        return np.zeros(n), False, np.array([0.0, 1.0]), np.zeros(n, int)
    values = np.asarray(result[name].values, dtype=np.float64)
    distinct = np.unique(values)
    log = bool(np.all(distinct > 0)) and distinct.size > 1
    return values, log, _edges(distinct, log), np.searchsorted(distinct, values)


def _diagram_layers(result: xr.Dataset, xname: str, yname: str | None) -> tuple[list[Any], Any]:
    n = result[xname].size
    xv, logx, xe, xi = _cells(result, xname, n)
    yv, logy, ye, yi = _cells(result, yname, n)
    labels = np.asarray(result["label"].values).astype(str)
    configs = np.asarray(result["configuration"].values).astype(str)
    agreement = np.asarray(result["agreement"].values, dtype=np.float64)
    layers = []
    for label, color in PHASE_COLORS.items():
        sel = labels == label
        data = (xe[xi[sel]], ye[yi[sel]], xe[xi[sel] + 1], ye[yi[sel] + 1])
        layers.append(
            hv.Rectangles(
                (*data, xv[sel], yv[sel], configs[sel], agreement[sel]),
                kdims=[xname, yname or "y", "x1", "y1"],
                vdims=["x_value", "y_value", "configuration", "agreement"],
                label=label,
            ).opts(color=color, line_color="white", tools=["hover"])
        )
    frame = dict(
        logx=logx,
        logy=logy,
        xlim=(float(xe[0]), float(xe[-1])),
        ylim=(float(ye[0]), float(ye[-1])),
    )
    return layers, frame


def _diagram_element(result: xr.Dataset) -> Any:
    axes = [str(a) for a in result.attrs.get("axes", [])]
    xname, yname = _diagram_axes(axes)
    layers, frame = _diagram_layers(result, xname, yname)
    feature = result.attrs.get("feature", "?")
    step = result.attrs.get("step", "?")
    return hv.Overlay(layers).opts(
        hv.opts.Overlay(
            **frame,
            xlabel=xname,
            ylabel=yname or "",
            yaxis=None if yname is None else "left",
            title=f"feature {feature} at step {step}",
            frame_width=2 * PANEL,
            frame_height=2 * PANEL if yname is not None else 60,
            legend_position="right",
        )
    )


def phase_diagram(
    ds: Any,
    params: PlotParams | None = None,
    *,
    axes: Sequence[str] | None = None,
    feature: Any = None,
    steps: Sequence[int] | str | None = "last",
    **changes: Any,
) -> Any:
    """What one extra feature does over a sweep (importance × density): a coloured grid.

    ``ds`` is a store with a sweep (``attrs["sweep"]``) or a
    :func:`toyanalysis.phase_changes.phase_diagram` result. Each cell is coloured
    by its label — ``unlearned`` (grey), ``superposed`` (orange),
    ``dedicated`` (blue) — of its lowest-loss seed; hover for the
    configuration and the fraction of seeds that found it. Positive axes are logarithmic,
    density on x. From a store, ``steps="all"`` (or a list) adds a step slider
    (the diagram recomputed at each step).

    >>> from toyanalysis import testing
    >>> dedicated, digon = testing.tegum("dedicated", dead=1), testing.tegum("digon")
    >>> W = np.stack([dedicated] * 3 + [digon] * 3)[None]
    >>> ds = testing.as_dataset(W, sweep={"density_x": [1.0] * 3 + [0.1] * 3})
    >>> [e.label for e in phase_diagram(ds, feature=1)]
    ['unlearned', 'superposed', 'dedicated']
    """
    from toyanalysis.params import DiagramParams
    from toyanalysis.phase_changes import phase_diagram as compute_diagram

    params = resolve(params, changes)
    diagram_params = DiagramParams(classify=params.classify)
    if isinstance(ds, xr.Dataset) and ds.attrs.get("analysis") == "phase_diagram":
        return _diagram_element(ds)
    ds = intake(ds)
    shown = frame_steps(ds, steps, params.max_frames)

    def build(step: int) -> Any:
        result = compute_diagram(ds, diagram_params, axes=axes, feature=feature, step=step)
        return _diagram_element(result)

    if len(shown) == 1:
        return build(int(shown[0]))
    return framewise(hv.HoloMap({int(s): build(int(s)) for s in shown}, kdims=["step"]))
