"""Per-neuron stacked bars of the input weights (a privileged hidden basis)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import holoviews as hv
import numpy as np
import xarray as xr

from toyanalysis._labels import model_of
from toyanalysis.models import FAMILIES
from toyanalysis.plots._common import (
    FEATURE_COLORS,
    PANEL,
    PlotError,
    PlotParams,
    intake,
    layout,
    matrix,
    panels,
    per_step,
    range_steps,
    resolve,
)

__all__ = ["neuron_bars"]


def _stacks(W: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bottom and top of each ``(hidden, feature)`` bar: positives stacked up, negatives down."""
    up = np.where(W > 0, W, 0)
    down = np.where(W < 0, -W, 0)
    top_up = np.cumsum(up, axis=1)
    top_down = np.cumsum(down, axis=1)
    weight = W.ravel()
    y0 = np.where(weight >= 0, (top_up - up).ravel(), -(top_down - down).ravel())
    y1 = np.where(weight >= 0, top_up.ravel(), -top_down.ravel())
    return weight, y0, y1


def _bars_frame(W: np.ndarray, features: np.ndarray, style: dict[str, Any]) -> Any:
    m, n = W.shape
    colors = np.array([FEATURE_COLORS[k % len(FEATURE_COLORS)] for k in range(n)], dtype=object)
    weight, y0, y1 = _stacks(W)
    neuron = np.repeat(np.arange(m), n)
    keep = weight != 0
    bars = hv.Rectangles(
        (
            neuron[keep] - 0.4,
            y0[keep],
            neuron[keep] + 0.4,
            y1[keep],
            np.tile(features, m)[keep],
            weight[keep],
            np.tile(colors, m)[keep],
        ),
        kdims=["neuron0", "weight0", "neuron1", "weight1"],
        vdims=["feature", "weight", "color"],
    ).opts(color="color", line_color="white", line_width=0.5, tools=["hover"])
    axis = hv.HLine(0).opts(color="black", line_width=1)
    return (bars * axis).opts(
        hv.opts.Overlay(
            title=style["title"],
            xlim=(-0.6, m - 0.4),
            ylim=style["ylim"],
            xticks=[(h, str(h)) for h in range(m)],
            xlabel="neuron",
            ylabel="|W[h, i]| (negative below)",
            frame_width=max(PANEL, 18 * m),
            frame_height=PANEL,
        )
    )


def _check_privileged(ds: xr.Dataset) -> None:
    model = model_of(ds)
    if not model.privileged:
        names = " or ".join(f.name for f in FAMILIES.values() if f.privileged)
        raise PlotError(
            f"neuron_bars needs a privileged basis (model {names}), "
            f"the store's model is {model.name!r}"
        )


def neuron_bars(
    ds: Any,
    params: PlotParams | None = None,
    *,
    steps: Sequence[int] | str | None = None,
    instances: Sequence[Any] | None = None,
    dynamic: bool = False,
    **changes: Any,
) -> Any:
    """Per-neuron stacked bars of ``|W[h, i]|``, one colour per feature, negatives below the axis.

    For a privileged basis (``hidden_relu``: the tied ``W``; ``abs``: the
    input matrix ``W₁``), where each hidden dimension is a neuron. A neuron
    with one colour is monosemantic; several colours, polysemantic. Other
    models raise :class:`PlotError` (their hidden basis means nothing).

    >>> from toyanalysis import testing
    >>> ds = testing.as_dataset(np.eye(3, 4) - 0.5 * np.eye(3, 4, 1), model="hidden_relu")
    >>> [type(e).__name__ for e in neuron_bars(ds)]
    ['Rectangles', 'HLine']
    """
    params = resolve(params, changes)
    ds = intake(ds)
    _check_privileged(ds)
    chosen, source, titles, shown = panels(ds, ["W"], params, instances=instances, steps=steps)
    features = ds["feature"].values
    sample = np.asarray(source["W"].sel(step=range_steps(shown, dynamic)).values)
    pos = np.where(sample > 0, sample, 0).sum(axis=-1)
    neg = np.where(sample < 0, -sample, 0).sum(axis=-1)
    ylim = (-1.05 * max(float(neg.max()), 0.1), 1.05 * max(float(pos.max()), 0.1))
    items = []
    for inst in chosen:
        style = {"title": titles[inst], "ylim": ylim}

        def build(frame: xr.Dataset, inst: Any = inst, st: Any = style) -> Any:
            return _bars_frame(matrix(frame.sel(instance=inst)), features, st)

        items.append(per_step(build, source, shown, dynamic))
    return layout(items, cols=3)
