"""Views of the weights themselves: directions in the plane, ``WᵀW`` with the bias, norms."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import holoviews as hv
import numpy as np
import xarray as xr

from toyanalysis.plots._common import (
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
from toyanalysis.superposition import feature_norms, interference

__all__ = ["directions", "gram", "max_norm", "norms"]


def max_norm(source: xr.Dataset) -> float:
    """The largest ``‖W_i‖`` in ``source`` (at least 1): a common axis range for all frames."""
    W = np.asarray(source["W"].values, dtype=np.float64)
    norms = np.sqrt((W * W).sum(axis=source["W"].get_axis_num("hidden")))
    value = float(np.nanmax(norms)) if norms.size else 1.0
    return max(value, 1.0) if np.isfinite(value) else 1.0


# --------------------------------------------------------------------------- directions (m = 2)


def _direction_frame(
    W: np.ndarray, importance: np.ndarray, features: np.ndarray, style: dict[str, Any]
) -> Any:
    norm = np.sqrt((W * W).sum(axis=0))
    zeros = np.zeros_like(W[0])
    vdims = ["importance", "feature", "norm"]
    colour = dict(color="importance", cmap="viridis", clim=style["clim"])
    segments = hv.Segments(
        (zeros, zeros, W[0], W[1], importance, features, norm),
        kdims=["x", "y", "x1", "y1"],
        vdims=vdims,
    ).opts(**colour, line_width=3)
    tips = hv.Points((W[0], W[1], importance, features, norm), kdims=["x", "y"], vdims=vdims).opts(
        **colour, size=7, tools=["hover"], colorbar=False
    )
    return (segments * tips).opts(
        hv.opts.Overlay(
            title=style["title"],
            xlim=style["lim"],
            ylim=style["lim"],
            frame_width=PANEL,
            frame_height=PANEL,
            xlabel="hidden 0",
            ylabel="hidden 1",
        )
    )


def directions(
    ds: Any,
    params: PlotParams | None = None,
    *,
    steps: Sequence[int] | str | None = None,
    instances: Sequence[Any] | None = None,
    dynamic: bool = False,
    **changes: Any,
) -> Any:
    """Feature directions ``W_i`` as vectors in the plane, coloured by importance (``m = 2``).

    One panel per instance (titled by its sweep labels), a step slider when
    several steps are shown. Raises :class:`PlotError` when ``m != 2``: use
    :func:`gram` for any ``m``.

    >>> from toyanalysis import testing
    >>> overlay = directions(testing.as_dataset(testing.polytope("pentagon")))
    >>> [type(e).__name__ for e in overlay]
    ['Segments', 'Points']
    """
    params = resolve(params, changes)
    ds = intake(ds)
    if ds.sizes["hidden"] != 2:
        raise PlotError(
            f"directions needs m = 2 hidden dimensions, the store has m = {ds.sizes['hidden']} "
            "(use gram() for any m)"
        )
    chosen, source, titles, shown = panels(ds, ["W"], params, instances=instances, steps=steps)
    reach = max_norm(source.sel(step=range_steps(shown, dynamic)))
    lim = (-1.1 * reach, 1.1 * reach)
    imp = ds["importance"].sel(instance=chosen)
    clim = (float(imp.min()), float(imp.max()) if float(imp.max()) > float(imp.min()) else 1.0)
    features = ds["feature"].values
    items = []
    for inst in chosen:
        importance = np.asarray(ds["importance"].sel(instance=inst).values, dtype=np.float64)
        style = {"clim": clim, "lim": lim, "title": titles[inst]}

        def build(
            frame: xr.Dataset, inst: Any = inst, imp: Any = importance, st: Any = style
        ) -> Any:
            return _direction_frame(matrix(frame.sel(instance=inst)), imp, features, st)

        items.append(per_step(build, source, shown, dynamic))
    return layout(items, cols=4)


# --------------------------------------------------------------------------- WᵀW and the bias


def _feature_ticks(features: np.ndarray, most: int = 20) -> list[tuple[int, str]]:
    n = features.size
    every = max(1, int(np.ceil(n / most)))
    return [(k, str(features[k])) for k in range(0, n, every)]


def _wtw_image(W: np.ndarray, lim: float, ticks: list[tuple[int, str]], title: str) -> Any:
    n = W.shape[1]
    # rows of an Image run from the top (largest y) down
    return hv.Image(
        (W.T @ W)[::-1],
        bounds=(-0.5, -0.5, n - 0.5, n - 0.5),
        kdims=["feature_j", "feature_i"],
        vdims=["WtW"],
    ).opts(
        cmap="RdBu_r",
        clim=(-lim, lim),
        invert_yaxis=True,
        frame_width=PANEL,
        frame_height=PANEL,
        colorbar=True,
        title=f"WᵀW  {title}",
        xticks=ticks,
        yticks=ticks,
        tools=["hover"],
        xlabel="feature",
        ylabel="feature",
    )


def _bias_image(b: np.ndarray, lim: float, ticks: list[tuple[int, str]]) -> Any:
    n = b.size
    return hv.Image(
        b[::-1, None],
        bounds=(-0.5, -0.5, 0.5, n - 0.5),
        kdims=["bias", "feature_i"],
        vdims=["b"],
    ).opts(
        cmap="RdBu_r",
        clim=(-lim, lim),
        invert_yaxis=True,
        frame_width=40,
        frame_height=PANEL,
        xaxis=None,
        yticks=ticks,
        title="b",
        tools=["hover"],
        ylabel="feature",
    )


def _gram_limits(sample: xr.Dataset) -> tuple[float, float]:
    """Symmetric colour limits of ``WᵀW`` and of ``b`` over the frames that fix the ranges."""
    W = np.asarray(sample["W"].values, dtype=np.float64)
    wtw_max = float(np.nanmax(np.abs(np.einsum("...hi,...hi->...i", W, W)))) if W.size else 1.0
    has_bias = "b" in sample.data_vars
    b_lim = max(float(np.nanmax(np.abs(sample["b"].values))), 1e-6) if has_bias else 1.0
    return max(wtw_max, 1e-6), b_lim


def gram(
    ds: Any,
    params: PlotParams | None = None,
    *,
    steps: Sequence[int] | str | None = None,
    instances: Sequence[Any] | None = None,
    dynamic: bool = False,
    **changes: Any,
) -> Any:
    """``WᵀW`` as a heatmap (feature × feature, feature 0 at the top) beside the bias ``b``.

    Colours are symmetric around 0 (red positive, blue negative). For any
    ``m``; without ``b`` in the store only the heatmap is shown.

    >>> from toyanalysis import testing
    >>> layout = gram(testing.as_dataset(testing.tegum("digon", "dedicated")))
    >>> type(layout).__name__
    'Image'
    """
    params = resolve(params, changes)
    ds = intake(ds)
    chosen, source, titles, shown = panels(ds, ["W", "b"], params, instances=instances, steps=steps)
    wtw_lim, b_lim = _gram_limits(source.sel(step=range_steps(shown, dynamic)))
    ticks = _feature_ticks(ds["feature"].values)
    items = []
    for inst in chosen:

        def build_wtw(frame: xr.Dataset, inst: Any = inst) -> Any:
            return _wtw_image(matrix(frame.sel(instance=inst)), wtw_lim, ticks, titles[inst])

        items.append(per_step(build_wtw, source, shown, dynamic))
        if "b" in source.data_vars:

            def build_b(frame: xr.Dataset, inst: Any = inst) -> Any:
                b = np.asarray(frame["b"].sel(instance=inst).values, dtype=np.float64)
                return _bias_image(b, b_lim, ticks)

            items.append(per_step(build_b, source, shown, dynamic))
    return layout(items, cols=4)


# --------------------------------------------------------------------------- norms


def _norm_frame(W: np.ndarray, importance: np.ndarray, features: np.ndarray, style: dict) -> Any:
    """Bars of ``‖W_i‖`` by importance rank (``W`` already in that order), coloured by interference."""
    norm = feature_norms(W)
    rank = np.arange(norm.size)
    bars = hv.Rectangles(
        (
            np.zeros_like(norm),
            rank - 0.4,
            norm,
            rank + 0.4,
            interference(W),
            features,
            norm,
            importance,
        ),
        kdims=["x0", "rank0", "x1", "rank1"],
        vdims=["interference", "feature", "norm", "importance"],
    ).opts(
        color="interference",
        cmap="plasma",
        clim=(0.0, 1.0),
        line_color=None,
        tools=["hover"],
        colorbar=True,
    )
    split = hv.HLine(W.shape[0] - 0.5).opts(color="black", line_dash="dashed", line_width=1)
    return (bars * split).opts(
        hv.opts.Overlay(
            title=style["title"],
            invert_yaxis=True,
            xlim=(0, 1.05 * style["reach"]),
            ylim=(-0.6, norm.size - 0.4),
            yticks=style["ticks"],
            xlabel="‖W_i‖",
            ylabel="feature (by importance)",
            frame_width=PANEL,
            frame_height=max(PANEL, min(600, 12 * norm.size)),
        )
    )


def norms(
    ds: Any,
    params: PlotParams | None = None,
    *,
    steps: Sequence[int] | str | None = None,
    instances: Sequence[Any] | None = None,
    dynamic: bool = False,
    **changes: Any,
) -> Any:
    """Per-feature norm ``‖W_i‖`` as bars coloured by interference, most important feature on top.

    The colour is the interference ``Σ_{j≠i} (Ŵ_i·W_j)²`` of
    :func:`toyanalysis.superposition.interference` on a 0–1 scale (values above 1
    get the top colour). A dashed line separates the ``m`` most important
    features from the rest: a linear model keeps exactly those.

    >>> from toyanalysis import testing
    >>> overlay = norms(testing.as_dataset(testing.tegum("digon", dead=1)))
    >>> [type(e).__name__ for e in overlay]
    ['Rectangles', 'HLine']
    """
    params = resolve(params, changes)
    ds = intake(ds)
    chosen, source, titles, shown = panels(ds, ["W"], params, instances=instances, steps=steps)
    reach = max_norm(source.sel(step=range_steps(shown, dynamic)))
    features = ds["feature"].values
    items = []
    for inst in chosen:
        importance = np.asarray(ds["importance"].sel(instance=inst).values, dtype=np.float64)
        order = np.argsort(-importance, kind="stable")  # rank -> feature index
        ticks = [(r, str(features[f])) for r, f in enumerate(order)]
        style = {"title": titles[inst], "reach": reach, "importance": importance[order]}
        style["ticks"] = ticks[:: max(1, int(np.ceil(len(ticks) / 25)))]

        def build(frame: xr.Dataset, inst: Any = inst, order: Any = order, st: Any = style) -> Any:
            W = matrix(frame.sel(instance=inst))[:, order]
            return _norm_frame(W, st["importance"], features[order], st)

        items.append(per_step(build, source, shown, dynamic))
    return layout(items, cols=4)
