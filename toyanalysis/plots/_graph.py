"""The feature-overlap graph of a checkpoint, each component drawn in its own plane."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import holoviews as hv
import numpy as np
import xarray as xr

from toyanalysis.plots._common import (
    CYCLE,
    KIND_COLORS,
    PANEL,
    PlotParams,
    frame_steps,
    instance_title,
    intake,
    matrix,
    per_step,
    pick_instances,
    resolve,
)
from toyanalysis.superposition import feature_norms, gram, unit_directions

__all__ = ["graph_positions", "kind_color", "overlap_graph"]


def kind_color(kind: str) -> str:
    """The colour of a configuration kind (:data:`KIND_COLORS`, else one from a cycle)."""
    if kind in KIND_COLORS:
        return KIND_COLORS[kind]
    return CYCLE[sum(map(ord, kind)) % len(CYCLE)]


def _project(U: np.ndarray, members: np.ndarray) -> np.ndarray:
    """``members``' unit directions on their two main axes, scaled into the unit square."""
    _, s, vt = np.linalg.svd(U[:, members], full_matrices=False)
    coords = (vt[:2] * s[:2, None]).T  # (k, <=2)
    if coords.shape[1] == 1:
        coords = np.hstack([coords, np.zeros_like(coords)])
    scale = np.abs(coords).max()
    return coords / (scale if scale > 0 else 1.0)


def graph_positions(W: np.ndarray, component: np.ndarray) -> np.ndarray:
    """Node positions: each component projected onto its two main axes, in a grid of cells."""
    pos = np.zeros((W.shape[1], 2))
    U = unit_directions(W)
    labels = sorted(set(component[component >= 0].tolist()))
    per_row = max(1, int(np.ceil(np.sqrt(len(labels) + 1))))
    for cell, c in enumerate(labels):
        members = np.flatnonzero(component == c)
        centre = np.array([3.0 * (cell % per_row), -3.0 * (cell // per_row)])
        pos[members] = centre if members.size == 1 else centre + _project(U, members)
    rows = int(np.ceil((len(labels)) / per_row)) if labels else 0
    for k, f in enumerate(np.flatnonzero(component < 0)):
        pos[f] = (0.6 * k - 1.0, -3.0 * rows - 0.5)
    return pos


def _graph_elements(W: np.ndarray, r: xr.Dataset, features: np.ndarray, tol: float) -> list[Any]:
    """Edges (positive, negative overlaps), nodes and their labels of one checkpoint."""
    component = np.asarray(r["component"].values, dtype=np.int64)
    kind = np.asarray(r["kind"].values).astype(str)
    pos = graph_positions(W, component)
    G = gram(W)
    learned = component >= 0
    src, dst = np.nonzero(np.triu((np.abs(G) > tol) & learned[:, None] & learned[None, :], 1))
    overlap = G[src, dst]
    node_color = np.array([kind_color(k) for k in kind], dtype=object)
    edges = [
        hv.Segments(
            (pos[src[sel], 0], pos[src[sel], 1], pos[dst[sel], 0], pos[dst[sel], 1]),
            kdims=["x", "y", "x1", "y1"],
        ).opts(color=color, line_width=2, alpha=0.8)
        for sel, color in ((overlap > 0, "#ff7f0e"), (overlap < 0, "#1f77b4"))
    ]
    nodes = hv.Points(
        (pos[:, 0], pos[:, 1], features, kind, node_color, feature_norms(W)),
        kdims=["x", "y"],
        vdims=["feature", "kind", "color", "norm"],
    ).opts(color="color", size=14, line_color="black", tools=["hover"])
    text = hv.Labels(
        (pos[:, 0], pos[:, 1] + 0.3, [str(f) for f in features]),
        kdims=["x", "y"],
        vdims=["text"],
    ).opts(text_font_size="8pt")
    return [*edges, nodes, text, pos]


def _graph_frame(W: np.ndarray, r: xr.Dataset, features: np.ndarray, tol: float, title: str) -> Any:
    *elements, pos = _graph_elements(W, r, features, tol)
    low, high = pos.min(axis=0) - 0.8, pos.max(axis=0) + 0.8
    overlay = elements[0] * elements[1] * elements[2] * elements[3]
    return overlay.opts(
        hv.opts.Overlay(
            title=f"{title}: {r['summary'].values}",
            xaxis=None,
            yaxis=None,
            xlim=(float(low[0]), float(high[0])),
            ylim=(float(low[1]), float(high[1])),
            frame_width=2 * PANEL,
            frame_height=2 * PANEL,
        )
    )


def overlap_graph(
    ds: Any,
    params: PlotParams | None = None,
    *,
    instance: Any = None,
    steps: Sequence[int] | str | None = "last",
    **changes: Any,
) -> Any:
    """The feature-overlap graph of one instance (by default at the last step).

    Nodes are features (unlearned ones grey, in a row at the bottom), edges
    join represented features with ``|Ŵ_i·Ŵ_j| > overlap_tol`` (orange for a
    positive overlap, blue for a negative one). Each connected component (a
    tegum factor) is drawn in its own cell as the projection of its unit
    directions onto their two main axes, and coloured by the configuration
    :func:`toyanalysis.classify` gives it with ``params.classify``
    (``overlap_tol=0.2`` and the other classify thresholds may be given by
    name). ``steps="all"`` or a list of steps adds a step slider.

    >>> from toyanalysis import testing
    >>> g = overlap_graph(testing.as_dataset(testing.tegum("pentagon", "digon", dead=1)))
    >>> [type(e).__name__ for e in g]
    ['Segments', 'Segments', 'Points', 'Labels']
    """
    import toyanalysis

    params = resolve(params, changes)
    ds = intake(ds)
    inst = ds["instance"].values[0] if instance is None else instance
    chosen = pick_instances(ds, [inst], 1)
    shown = frame_steps(ds, steps, params.max_frames)
    result = toyanalysis.classify(
        ds, steps=shown.tolist(), instances=chosen, **params.classify.to_dict()
    )
    features = ds["feature"].values
    title = instance_title(ds, chosen[0])
    tol = params.classify.overlap_tol

    def build(frame: xr.Dataset) -> Any:
        r = result.sel(step=int(frame["step"].values)).isel(instance=0)
        return _graph_frame(matrix(frame), r, features, tol, title)

    return per_step(build, ds[["W"]].sel(instance=chosen[0]), shown, dynamic=False)
