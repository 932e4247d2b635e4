"""The paper's pictures for any store, interactive over training steps (HoloViews, bokeh).

Every function takes a store Dataset (:func:`toyanalysis.open_store`, or a
path to a store) and returns a HoloViews object. Where the trajectory has
several recorded steps the object has a ``step`` slider: a
:class:`~holoviews.HoloMap` over at most ``max_frames`` steps (evenly spaced,
first and last included), or with ``dynamic=True`` a
:class:`~holoviews.DynamicMap` that reads each step from the store only when
it is shown (for large stores, in a live notebook). Stores with many
instances show one panel per instance, at most ``max_instances`` of them
(evenly spaced; pick others with ``instances=``).

The views (section names from Elhage et al., 2022):

- :func:`directions` — the columns ``W_i`` as vectors in the plane (``m = 2``
  only), coloured by importance: pentagons, antipodal pairs, dropped features;
- :func:`gram` — ``WᵀW`` as a heatmap for any ``m``, side by side with the
  bias ``b``;
- :func:`norms` — per-feature norm ``‖W_i‖`` as bars coloured by interference
  ``Σ_{j≠i} (Ŵ_i·W_j)²`` (black: a dimension of its own; yellow: in
  superposition), features in decreasing importance with a line after the
  top ``m`` (the "basic results" view);
- :func:`dimensionality` — dimensions per feature ``D*`` against
  ``1/(1−S) = 1/density`` (log axis) across instances, with each feature's
  dimensionality ``D_i`` and reference lines at 1, 3/4, 2/3, 1/2, 2/5, 3/8;
- :func:`overlap_graph` — the feature-overlap graph of a checkpoint; each
  connected component is drawn as the projection of its unit directions onto
  its two main axes (a pentagon looks like one), coloured by configuration;
- :func:`loss_curves` — loss per instance (log axis) with the geometry
  transitions of :func:`toyanalysis.phase_changes.phases` marked;
- :func:`phase_diagram` — what one extra feature does (unlearned, superposed,
  dedicated) over a sweep of importance × density
  (:func:`toyanalysis.phase_changes.phase_diagram`);
- :func:`neuron_bars` — per-neuron stacked bars of ``|W[h, i]|``, one colour
  per feature, negative weights below the axis (privileged basis).

>>> import holoviews as hv
>>> from toyanalysis import testing
>>> ds = testing.as_dataset(testing.polytope("pentagon"), importance=0.9 ** np.arange(5))
>>> type(directions(ds)).__name__
'Overlay'
>>> fig = hv.render(norms(ds))   # a bokeh figure

The module imports HoloViews (and registers its bokeh backend) on import;
``import toyanalysis`` does not import this module.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

import holoviews as hv
import holoviews.plotting.bokeh  # registers the bokeh backend and its options
import numpy as np
import xarray as xr

from toyanalysis.errors import ToyAnalysisError
from toyanalysis.superposition import (
    dimensions_per_feature,
    feature_dimensionality,
    feature_norms,
    interference,
    unit_directions,
)
from toyanalysis.superposition import gram as _gram

__all__ = [
    "REFERENCE_FRACTIONS",
    "PlotError",
    "dimensionality",
    "directions",
    "frame_steps",
    "gram",
    "loss_curves",
    "neuron_bars",
    "norms",
    "overlap_graph",
    "phase_diagram",
]

hv.Store.set_current_backend("bokeh")

# D_i of the paper's configurations: dedicated, tetrahedron, triangle, digon, pentagon, antiprism
REFERENCE_FRACTIONS = (
    Fraction(1),
    Fraction(3, 4),
    Fraction(2, 3),
    Fraction(1, 2),
    Fraction(2, 5),
    Fraction(3, 8),
)
MAX_FRAMES = 50
MAX_INSTANCES = 12
PANEL = 220  # frame width and height of one panel, in pixels

# one colour per configuration kind; other kinds get a colour from the cycle below
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
_CYCLE = ("#17becf", "#bcbd22", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5")
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
PHASE_COLORS = {"unlearned": "#d9d9d9", "superposed": "#fdae61", "dedicated": "#2c7bb6"}


class PlotError(ToyAnalysisError, ValueError):
    """A view does not apply to this store (wrong model, missing variable, bad selection)."""


# --------------------------------------------------------------------------- selection helpers


def _as_store(ds: Any) -> xr.Dataset:
    if isinstance(ds, (str, os.PathLike)):
        from toyanalysis.store import open_store

        return open_store(ds)
    if not isinstance(ds, xr.Dataset):
        raise PlotError(f"expected a store Dataset or a path, got {type(ds).__name__}")
    if "W" not in ds.data_vars:
        raise PlotError(f"dataset has no variable W (variables: {sorted(map(str, ds.data_vars))})")
    from toyanalysis.store import normalize

    return normalize(ds.copy(), "dataset")


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
    recorded = np.asarray(ds["step"].values, dtype=np.int64)
    if isinstance(steps, str):
        if steps == "last":
            return recorded[-1:]
        if steps == "all":
            return recorded
        raise PlotError(f"steps must be step values, 'last' or 'all', got {steps!r}")
    if steps is not None:
        wanted = np.atleast_1d(np.asarray(steps, dtype=np.int64))
        missing = np.setdiff1d(wanted, recorded)
        if missing.size:
            raise PlotError(
                f"steps {missing[:5].tolist()} are not recorded "
                f"(recorded: {recorded[0]}..{recorded[-1]}, {recorded.size} steps)"
            )
        return wanted
    if max_frames < 1:
        raise PlotError(f"max_frames must be >= 1, got {max_frames}")
    if recorded.size <= max_frames:
        return recorded
    index = np.unique(np.round(np.linspace(0, recorded.size - 1, max_frames)).astype(int))
    return recorded[index]


def _pick_instances(
    ds: xr.Dataset, instances: Sequence[Any] | Any | None, max_instances: int
) -> list[Any]:
    labels = ds["instance"].values
    if instances is not None:
        wanted = list(np.atleast_1d(np.asarray(instances)))
        missing = [w for w in wanted if w not in set(labels.tolist())]
        if missing:
            raise PlotError(
                f"instances {missing[:5]} are not in the store "
                f"(instances: {labels[0]}..{labels[-1]}, {labels.size} of them)"
            )
        return wanted
    if labels.size <= max_instances:
        return labels.tolist()
    index = np.unique(np.round(np.linspace(0, labels.size - 1, max_instances)).astype(int))
    return labels[index].tolist()


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
    sweep = [s for s in ds.attrs.get("sweep", []) or [] if s in ds.coords]
    parts = [f"{name}={_format(ds[name].sel(instance=instance).values.item())}" for name in sweep]
    if "seed" in ds.coords and ds["seed"].dims == ("instance",) and ds.sizes["instance"] > 1:
        seeds = ds["seed"].values
        if np.unique(seeds).size > 1 and sweep:
            parts.append(f"seed={ds['seed'].sel(instance=instance).values.item()}")
    return ", ".join(parts) if parts else f"instance {instance}"


def _per_step(
    build: Callable[[xr.Dataset], hv.core.Dimensioned],
    source: xr.Dataset,
    steps: np.ndarray,
    dynamic: bool,
) -> Any:
    """One element per step: the element itself, a HoloMap, or a DynamicMap over ``step``."""
    if dynamic:

        def callback(step: int) -> Any:
            return build(source.sel(step=step).load())

        kdim = hv.Dimension("step", values=[int(s) for s in steps])
        return _framewise(hv.DynamicMap(callback, kdims=[kdim]))
    loaded = source.sel(step=steps).load()
    if len(steps) == 1:
        return build(loaded.isel(step=0))
    frames = {int(s): build(loaded.isel(step=k)) for k, s in enumerate(steps)}
    return _framewise(hv.HoloMap(frames, kdims=["step"]))


def _framewise(obj: Any) -> Any:
    """Ranges per frame: the views fix their axes and colour ranges themselves.

    HoloViews otherwise recomputes the ranges over every frame each time a frame
    is shown, which makes stepping through F frames cost O(F²).
    """
    kinds = ("Overlay", "Image", "Rectangles", "Segments", "Points", "Curve", "Scatter", "Labels")
    return obj.opts({kind: {"framewise": True} for kind in kinds})


def _layout(panels: list[Any], cols: int) -> Any:
    if len(panels) == 1:
        return panels[0]
    return hv.Layout(panels).cols(cols)


def _panels(
    ds: xr.Dataset,
    variables: Sequence[str],
    instances: Sequence[Any] | Any | None,
    steps: Sequence[int] | str | None,
    max_frames: int,
    max_instances: int,
) -> tuple[list[Any], xr.Dataset, dict[Any, str], np.ndarray]:
    """What a view shows: its instances, their ``variables``, their titles, and the steps."""
    chosen = _pick_instances(ds, instances, max_instances)
    keep = [v for v in variables if v in ds.data_vars]
    source = ds[keep].sel(instance=chosen)
    titles = {inst: instance_title(ds, inst) for inst in chosen}
    return chosen, source, titles, frame_steps(ds, steps, max_frames)


def _range_steps(shown: np.ndarray, dynamic: bool) -> np.ndarray:
    """The steps that fix a view's axis and colour ranges (a DynamicMap loads only the last)."""
    return shown[-1:] if dynamic else shown


def _matrix(frame: xr.Dataset, name: str = "W") -> np.ndarray:
    return np.asarray(frame[name].transpose("hidden", "feature").values, dtype=np.float64)


# --------------------------------------------------------------------------- directions (m = 2)


def directions(
    ds: Any,
    *,
    steps: Sequence[int] | str | None = None,
    instances: Sequence[Any] | None = None,
    max_frames: int = MAX_FRAMES,
    max_instances: int = MAX_INSTANCES,
    dynamic: bool = False,
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
    ds = _as_store(ds)
    if ds.sizes["hidden"] != 2:
        raise PlotError(
            f"directions needs m = 2 hidden dimensions, the store has m = {ds.sizes['hidden']} "
            "(use gram() for any m)"
        )
    chosen, source, titles, shown = _panels(ds, ["W"], instances, steps, max_frames, max_instances)
    reach = _max_norm(source.sel(step=_range_steps(shown, dynamic)))
    lim = (-1.1 * reach, 1.1 * reach)
    imp = ds["importance"].sel(instance=chosen)
    clim = (float(imp.min()), float(imp.max()) if float(imp.max()) > float(imp.min()) else 1.0)
    panels = []
    for inst in chosen:
        importance = np.asarray(ds["importance"].sel(instance=inst).values, dtype=np.float64)
        features = ds["feature"].values

        def build(frame: xr.Dataset, importance=importance, features=features, inst=inst) -> Any:
            W = _matrix(frame.sel(instance=inst))
            norm = np.sqrt((W * W).sum(axis=0))
            zeros = np.zeros_like(W[0])
            vdims = ["importance", "feature", "norm"]
            segments = hv.Segments(
                (zeros, zeros, W[0], W[1], importance, features, norm),
                kdims=["x", "y", "x1", "y1"],
                vdims=vdims,
            ).opts(color="importance", cmap="viridis", clim=clim, line_width=3)
            tips = hv.Points(
                (W[0], W[1], importance, features, norm), kdims=["x", "y"], vdims=vdims
            ).opts(
                color="importance",
                cmap="viridis",
                clim=clim,
                size=7,
                tools=["hover"],
                colorbar=False,
            )
            return (segments * tips).opts(
                hv.opts.Overlay(
                    title=titles[inst],
                    xlim=lim,
                    ylim=lim,
                    frame_width=PANEL,
                    frame_height=PANEL,
                    xlabel="hidden 0",
                    ylabel="hidden 1",
                )
            )

        panels.append(_per_step(build, source, shown, dynamic))
    return _layout(panels, cols=4)


def _max_norm(source: xr.Dataset) -> float:
    W = np.asarray(source["W"].values, dtype=np.float64)
    norms = np.sqrt((W * W).sum(axis=source["W"].get_axis_num("hidden")))
    value = float(np.nanmax(norms)) if norms.size else 1.0
    return max(value, 1.0) if np.isfinite(value) else 1.0


# --------------------------------------------------------------------------- WᵀW and the bias


def gram(
    ds: Any,
    *,
    steps: Sequence[int] | str | None = None,
    instances: Sequence[Any] | None = None,
    max_frames: int = MAX_FRAMES,
    max_instances: int = MAX_INSTANCES,
    dynamic: bool = False,
) -> Any:
    """``WᵀW`` as a heatmap (feature × feature, feature 0 at the top) beside the bias ``b``.

    Colours are symmetric around 0 (red positive, blue negative). For any
    ``m``; without ``b`` in the store only the heatmap is shown.

    >>> from toyanalysis import testing
    >>> layout = gram(testing.as_dataset(testing.tegum("digon", "dedicated")))
    >>> type(layout).__name__
    'Image'
    """
    ds = _as_store(ds)
    chosen, source, titles, shown = _panels(
        ds, ["W", "b"], instances, steps, max_frames, max_instances
    )
    sample = source.sel(step=_range_steps(shown, dynamic))
    W = np.asarray(sample["W"].values, dtype=np.float64)
    wtw_max = float(np.nanmax(np.abs(np.einsum("...hi,...hi->...i", W, W)))) if W.size else 1.0
    wtw_lim = max(wtw_max, 1e-6)
    has_bias = "b" in source.data_vars
    b_lim = max(float(np.nanmax(np.abs(sample["b"].values))), 1e-6) if has_bias else 1.0
    features = ds["feature"].values
    n = features.size
    ticks = _feature_ticks(features)
    panels = []
    for inst in chosen:

        def build_wtw(frame: xr.Dataset, inst=inst) -> Any:
            Wi = _matrix(frame.sel(instance=inst))
            # rows of an Image run from the top (largest y) down
            return hv.Image(
                (Wi.T @ Wi)[::-1],
                bounds=(-0.5, -0.5, n - 0.5, n - 0.5),
                kdims=["feature_j", "feature_i"],
                vdims=["WtW"],
            ).opts(
                cmap="RdBu_r",
                clim=(-wtw_lim, wtw_lim),
                invert_yaxis=True,
                frame_width=PANEL,
                frame_height=PANEL,
                colorbar=True,
                title=f"WᵀW  {titles[inst]}",
                xticks=ticks,
                yticks=ticks,
                tools=["hover"],
                xlabel="feature",
                ylabel="feature",
            )

        panels.append(_per_step(build_wtw, source, shown, dynamic))
        if has_bias:

            def build_b(frame: xr.Dataset, inst=inst) -> Any:
                b = np.asarray(frame["b"].sel(instance=inst).values, dtype=np.float64)
                return hv.Image(
                    b[::-1, None],
                    bounds=(-0.5, -0.5, 0.5, n - 0.5),
                    kdims=["bias", "feature_i"],
                    vdims=["b"],
                ).opts(
                    cmap="RdBu_r",
                    clim=(-b_lim, b_lim),
                    invert_yaxis=True,
                    frame_width=40,
                    frame_height=PANEL,
                    xaxis=None,
                    yticks=ticks,
                    title="b",
                    tools=["hover"],
                    ylabel="feature",
                )

            panels.append(_per_step(build_b, source, shown, dynamic))
    return _layout(panels, cols=4)


def _feature_ticks(features: np.ndarray, most: int = 20) -> list[tuple[int, str]]:
    n = features.size
    every = max(1, int(np.ceil(n / most)))
    return [(k, str(features[k])) for k in range(0, n, every)]


# --------------------------------------------------------------------------- norms


def norms(
    ds: Any,
    *,
    steps: Sequence[int] | str | None = None,
    instances: Sequence[Any] | None = None,
    max_frames: int = MAX_FRAMES,
    max_instances: int = MAX_INSTANCES,
    dynamic: bool = False,
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
    ds = _as_store(ds)
    chosen, source, titles, shown = _panels(ds, ["W"], instances, steps, max_frames, max_instances)
    reach = _max_norm(source.sel(step=_range_steps(shown, dynamic)))
    m = ds.sizes["hidden"]
    features = ds["feature"].values
    panels = []
    for inst in chosen:
        importance = np.asarray(ds["importance"].sel(instance=inst).values, dtype=np.float64)
        order = np.argsort(-importance, kind="stable")  # rank -> feature index
        ticks = [(r, str(features[f])) for r, f in enumerate(order)]
        ticks = ticks[:: max(1, int(np.ceil(len(ticks) / 25)))]
        rank = np.arange(order.size)

        def build(
            frame: xr.Dataset, inst=inst, order=order, rank=rank, ticks=ticks, importance=importance
        ) -> Any:
            W = _matrix(frame.sel(instance=inst))[:, order]
            norm = feature_norms(W)
            inter = interference(W)
            bars = hv.Rectangles(
                (
                    np.zeros_like(norm),
                    rank - 0.4,
                    norm,
                    rank + 0.4,
                    inter,
                    features[order],
                    norm,
                    importance[order],
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
            split = hv.HLine(m - 0.5).opts(color="black", line_dash="dashed", line_width=1)
            return (bars * split).opts(
                hv.opts.Overlay(
                    title=titles[inst],
                    invert_yaxis=True,
                    xlim=(0, 1.05 * reach),
                    ylim=(-0.6, order.size - 0.4),
                    yticks=ticks,
                    xlabel="‖W_i‖",
                    ylabel="feature (by importance)",
                    frame_width=PANEL,
                    frame_height=max(PANEL, min(600, 12 * order.size)),
                )
            )

        panels.append(_per_step(build, source, shown, dynamic))
    return _layout(panels, cols=4)


# --------------------------------------------------------------------------- dimensionality


def dimensionality(
    ds: Any,
    *,
    steps: Sequence[int] | str | None = None,
    instances: Sequence[Any] | None = None,
    max_frames: int = MAX_FRAMES,
    dynamic: bool = False,
) -> Any:
    """``D* = m/‖W‖_F²`` against ``1/(1−S)`` (log axis) across instances, with each ``D_i``.

    Each instance sits at ``1/density`` (its mean feature density); each
    feature's dimensionality at ``1/density_i``. Dashed reference lines mark
    the fractions 1, 3/4, 2/3, 1/2, 2/5 and 3/8 where ``D_i`` clusters.
    Needs the ``density`` coordinate (a density sweep).

    >>> from toyanalysis import testing
    >>> W = np.stack([testing.tegum("digon", "dedicated"), testing.tegum("pentagon")[:, :3]])
    >>> ds = testing.as_dataset(W, density=[[1.0] * 3, [0.1] * 3])
    >>> [type(e).__name__ for e in dimensionality(ds)]
    ['HLines', 'Labels', 'Curve', 'Scatter']
    """
    ds = _as_store(ds)
    if "density" not in ds.coords:
        raise PlotError(
            "dimensionality plots D* against 1/density, but the store has no density coordinate"
        )
    chosen, source, titles, shown = _panels(
        ds, ["W"], instances, steps, max_frames, max_instances=ds.sizes["instance"]
    )
    density = np.asarray(
        ds["density"].sel(instance=chosen).transpose("instance", "feature").values, np.float64
    )
    if np.any(density <= 0):
        raise PlotError("dimensionality needs densities > 0 (1/density is the x axis)")
    x_feature = 1.0 / density
    x_instance = 1.0 / density.mean(axis=1)
    order = np.argsort(x_instance, kind="stable")
    features = np.broadcast_to(ds["feature"].values, density.shape)
    labels = np.array([titles[i] for i in chosen], dtype=object)
    xmin, xmax = float(x_feature.min()), float(x_feature.max())
    xlim = (xmin / 1.5, xmax * 1.5)
    fractions = np.array([float(f) for f in REFERENCE_FRACTIONS])
    references = hv.HLines(fractions).opts(color="grey", line_dash="dashed", line_width=1)
    texts = hv.Labels(
        (
            np.full(fractions.size, xlim[1] / 1.15),
            fractions + 0.025,
            [str(f) for f in REFERENCE_FRACTIONS],
        ),
        kdims=["x", "y"],
        vdims=["text"],
    ).opts(text_color="grey", text_font_size="9pt", text_align="right")

    def build(frame: xr.Dataset) -> Any:
        W = np.asarray(
            frame["W"].transpose("instance", "hidden", "feature").values, dtype=np.float64
        )
        dstar = dimensions_per_feature(W)
        dstar = np.where(np.isfinite(dstar), dstar, np.nan)
        d_i = feature_dimensionality(W)
        curve = hv.Curve(
            (x_instance[order], dstar[order], labels[order]),
            kdims=["1/(1-S)"],
            vdims=["D*", "instance"],
        ).opts(color="black", line_width=2, tools=["hover"])
        scatter = hv.Scatter(
            (
                x_feature.ravel(),
                d_i.ravel(),
                features.ravel(),
                np.repeat(labels, density.shape[1]),
            ),
            kdims=["1/(1-S)"],
            vdims=["D_i", "feature", "instance"],
        ).opts(color="#1f77b4", alpha=0.5, size=5, tools=["hover"])
        return (references * texts * curve * scatter).opts(
            hv.opts.Overlay(
                logx=True,
                xlim=xlim,
                ylim=(0, 1.1),
                xlabel="1/(1−S)  (1/density)",
                ylabel="dimensions per feature",
                title="D* and D_i across the sweep",
                frame_width=2 * PANEL,
                frame_height=PANEL + 40,
            )
        )

    return _per_step(build, source, shown, dynamic)


# --------------------------------------------------------------------------- overlap graph


def _kind_color(kind: str) -> str:
    if kind in KIND_COLORS:
        return KIND_COLORS[kind]
    return _CYCLE[sum(map(ord, kind)) % len(_CYCLE)]


def _graph_positions(W: np.ndarray, component: np.ndarray) -> np.ndarray:
    """Node positions: each component projected onto its two main axes, in a grid of cells."""
    n = W.shape[1]
    pos = np.zeros((n, 2))
    U = unit_directions(W)
    labels = sorted(set(component[component >= 0].tolist()))
    per_row = max(1, int(np.ceil(np.sqrt(len(labels) + 1))))
    for cell, c in enumerate(labels):
        members = np.flatnonzero(component == c)
        centre = np.array([3.0 * (cell % per_row), -3.0 * (cell // per_row)])
        block = U[:, members]
        if members.size == 1:
            pos[members] = centre
            continue
        _, s, vt = np.linalg.svd(block, full_matrices=False)
        coords = (vt[:2] * s[:2, None]).T  # (k, <=2)
        if coords.shape[1] == 1:
            coords = np.hstack([coords, np.zeros_like(coords)])
        scale = np.abs(coords).max()
        pos[members] = centre + coords / (scale if scale > 0 else 1.0)
    dead = np.flatnonzero(component < 0)
    rows = int(np.ceil((len(labels)) / per_row)) if labels else 0
    for k, f in enumerate(dead):
        pos[f] = (0.6 * k - 1.0, -3.0 * rows - 0.5)
    return pos


def overlap_graph(
    ds: Any,
    *,
    instance: Any = None,
    steps: Sequence[int] | str | None = "last",
    max_frames: int = MAX_FRAMES,
    norm_threshold: float | None = None,
    overlap_tol: float | None = None,
) -> Any:
    """The feature-overlap graph of one instance (by default at the last step).

    Nodes are features (unlearned ones grey, in a row at the bottom), edges
    join represented features with ``|Ŵ_i·Ŵ_j| > overlap_tol`` (orange for a
    positive overlap, blue for a negative one; width ``|overlap|``). Each
    connected component (a tegum factor) is drawn in its own cell as the
    projection of its unit directions onto their two main axes, and coloured
    by the configuration :func:`toyanalysis.geometry.classify` gives it.
    ``steps="all"`` or a list of steps adds a step slider.

    >>> from toyanalysis import testing
    >>> g = overlap_graph(testing.as_dataset(testing.tegum("pentagon", "digon", dead=1)))
    >>> [type(e).__name__ for e in g]
    ['Segments', 'Segments', 'Points', 'Labels']
    """
    from toyanalysis import geometry

    ds = _as_store(ds)
    inst = ds["instance"].values[0] if instance is None else instance
    chosen = _pick_instances(ds, [inst], 1)
    shown = frame_steps(ds, steps, max_frames)
    options = geometry._given_thresholds(norm_threshold, overlap_tol)
    tol = options.get("overlap_tol", geometry.DEFAULT_OVERLAP_TOL)
    result = geometry.classify(ds, steps=shown.tolist(), instances=chosen, **options)
    source = ds[["W"]].sel(instance=chosen[0])
    features = ds["feature"].values
    title = instance_title(ds, chosen[0])

    def build(frame: xr.Dataset) -> Any:
        step = int(frame["step"].values)
        W = _matrix(frame)
        r = result.sel(step=step).isel(instance=0)
        component = np.asarray(r["component"].values, dtype=np.int64)
        kind = np.asarray(r["kind"].values).astype(str)
        pos = _graph_positions(W, component)
        G = _gram(W)
        learned = component >= 0
        src, dst = np.nonzero(np.triu((np.abs(G) > tol) & learned[:, None] & learned[None, :], 1))
        overlap = G[src, dst]
        norm = feature_norms(W)
        node_color = np.array([_kind_color(k) for k in kind], dtype=object)
        edges = [
            hv.Segments(
                (pos[src[sel], 0], pos[src[sel], 1], pos[dst[sel], 0], pos[dst[sel], 1]),
                kdims=["x", "y", "x1", "y1"],
            ).opts(color=color, line_width=2, alpha=0.8)
            for sel, color in ((overlap > 0, "#ff7f0e"), (overlap < 0, "#1f77b4"))
        ]
        nodes = hv.Points(
            (pos[:, 0], pos[:, 1], features, kind, node_color, norm),
            kdims=["x", "y"],
            vdims=["feature", "kind", "color", "norm"],
        ).opts(color="color", size=14, line_color="black", tools=["hover"])
        text = hv.Labels(
            (pos[:, 0], pos[:, 1] + 0.3, [str(f) for f in features]),
            kdims=["x", "y"],
            vdims=["text"],
        ).opts(text_font_size="8pt")
        summary = str(r["summary"].values)
        low, high = pos.min(axis=0) - 0.8, pos.max(axis=0) + 0.8
        return (edges[0] * edges[1] * nodes * text).opts(
            hv.opts.Overlay(
                title=f"{title}: {summary}",
                xaxis=None,
                yaxis=None,
                xlim=(float(low[0]), float(high[0])),
                ylim=(float(low[1]), float(high[1])),
                frame_width=2 * PANEL,
                frame_height=2 * PANEL,
            )
        )

    return _per_step(build, source, shown, dynamic=False)


# --------------------------------------------------------------------------- loss curves


def loss_curves(
    ds: Any,
    *,
    phases: xr.Dataset | None = None,
    instances: Sequence[Any] | None = None,
    max_instances: int = MAX_INSTANCES,
    mark_transitions: bool = True,
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
    ds = _as_store(ds)
    if "loss" not in ds.data_vars:
        raise PlotError("loss_curves needs the store's loss variable, and this store has none")
    chosen = _pick_instances(ds, instances, max_instances)
    loss = np.asarray(
        ds["loss"].sel(instance=chosen).transpose("step", "instance").values, dtype=np.float64
    )
    steps = np.asarray(ds["step"].values, dtype=np.int64)
    elements: list[Any] = []
    for k, inst in enumerate(chosen):
        elements.append(
            hv.Curve(
                (steps, loss[:, k]), kdims=["step"], vdims=["loss"], label=instance_title(ds, inst)
            ).opts(line_width=1.5, tools=["hover"])
        )
    marks = _transition_marks(ds, chosen, loss, steps, phases) if mark_transitions else None
    if marks is not None:
        elements.append(marks)
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
) -> Any:
    from toyanalysis.phase_changes import phases as compute_phases

    if result is None:
        result = compute_phases(ds, instances=chosen)
    rows: list[tuple[int, float, str, str, str]] = []
    step_index = {int(s): k for k, s in enumerate(steps)}
    for k, inst in enumerate(chosen):
        if inst not in set(result["instance"].values.tolist()):
            continue
        r = result.sel(instance=inst)
        for t in range(r.sizes.get("transition", 0)):
            step = int(r["transition_step"].values[t])
            if step < 0 or step not in step_index:
                continue
            rows.append(
                (
                    step,
                    float(loss[step_index[step], k]),
                    str(r["transition_from"].values[t]),
                    str(r["transition_to"].values[t]),
                    instance_title(ds, inst),
                )
            )
    columns = list(zip(*rows, strict=True)) if rows else [[], [], [], [], []]
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


def _diagram_element(result: xr.Dataset) -> Any:
    axes = [str(a) for a in result.attrs.get("axes", [])]
    xname, yname = _diagram_axes(axes)
    xv = np.asarray(result[xname].values, dtype=np.float64)
    xs = np.unique(xv)
    logx = bool(np.all(xs > 0)) and xs.size > 1
    xe = _edges(xs, logx)
    xi = np.searchsorted(xs, xv)
    if yname is not None:
        yv = np.asarray(result[yname].values, dtype=np.float64)
        ys = np.unique(yv)
        logy = bool(np.all(ys > 0)) and ys.size > 1
        ye = _edges(ys, logy)
        yi = np.searchsorted(ys, yv)
    else:
        yv, logy, ye, yi = np.zeros_like(xv), False, np.array([0.0, 1.0]), np.zeros(xv.size, int)
    labels = np.asarray(result["label"].values).astype(str)
    configs = np.asarray(result["configuration"].values).astype(str)
    agreement = np.asarray(result["agreement"].values, dtype=np.float64)
    layers = []
    for label, color in PHASE_COLORS.items():
        sel = labels == label
        layers.append(
            hv.Rectangles(
                (
                    xe[xi[sel]],
                    ye[yi[sel]],
                    xe[xi[sel] + 1],
                    ye[yi[sel] + 1],
                    xv[sel],
                    yv[sel],
                    configs[sel],
                    agreement[sel],
                ),
                kdims=[xname, yname or "y", "x1", "y1"],
                vdims=["x_value", "y_value", "configuration", "agreement"],
                label=label,
            ).opts(color=color, line_color="white", tools=["hover"])
        )
    feature = result.attrs.get("feature", "?")
    step = result.attrs.get("step", "?")
    return hv.Overlay(layers).opts(
        hv.opts.Overlay(
            logx=logx,
            logy=logy,
            xlim=(float(xe[0]), float(xe[-1])),
            ylim=(float(ye[0]), float(ye[-1])),
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
    *,
    axes: Sequence[str] | None = None,
    feature: Any = None,
    steps: Sequence[int] | str | None = "last",
    max_frames: int = MAX_FRAMES,
) -> Any:
    """What one extra feature does over a sweep (importance × density): a coloured grid.

    ``ds`` is a store with a sweep (``attrs["sweep"]``) or a
    :func:`toyanalysis.phase_changes.phase_diagram` result. Each cell is coloured
    by its label — ``unlearned`` (grey), ``superposed`` (orange),
    ``dedicated`` (blue) — by majority over its seeds; hover for the
    configuration and the seeds' agreement. Positive axes are logarithmic,
    density on x. From a store, ``steps="all"`` (or a list) adds a step slider
    (the diagram recomputed at each step).

    >>> from toyanalysis import testing
    >>> dedicated, digon = testing.tegum("dedicated", dead=1), testing.tegum("digon")
    >>> W = np.stack([dedicated] * 3 + [digon] * 3)[None]
    >>> ds = testing.as_dataset(W, sweep={"density_x": [1.0] * 3 + [0.1] * 3})
    >>> [e.label for e in phase_diagram(ds, feature=1)]
    ['unlearned', 'superposed', 'dedicated']
    """
    from toyanalysis.phase_changes import phase_diagram as compute_diagram

    if isinstance(ds, xr.Dataset) and ds.attrs.get("analysis") == "phase_diagram":
        return _diagram_element(ds)
    ds = _as_store(ds)
    shown = frame_steps(ds, steps, max_frames)

    def build(step: int) -> Any:
        return _diagram_element(compute_diagram(ds, axes=axes, feature=feature, step=step))

    if len(shown) == 1:
        return build(int(shown[0]))
    return _framewise(hv.HoloMap({int(s): build(int(s)) for s in shown}, kdims=["step"]))


# --------------------------------------------------------------------------- neurons


def neuron_bars(
    ds: Any,
    *,
    steps: Sequence[int] | str | None = None,
    instances: Sequence[Any] | None = None,
    max_frames: int = MAX_FRAMES,
    max_instances: int = MAX_INSTANCES,
    dynamic: bool = False,
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
    ds = _as_store(ds)
    model = ds.attrs.get("model", "relu_output")
    if model not in ("hidden_relu", "abs"):
        raise PlotError(
            f"neuron_bars needs a privileged basis (model hidden_relu or abs), the store's model is {model!r}"
        )
    chosen, source, titles, shown = _panels(ds, ["W"], instances, steps, max_frames, max_instances)
    features = ds["feature"].values
    n, m = features.size, ds.sizes["hidden"]
    colors = np.array([FEATURE_COLORS[k % len(FEATURE_COLORS)] for k in range(n)], dtype=object)
    sample = np.asarray(source["W"].sel(step=_range_steps(shown, dynamic)).values)
    pos = np.where(sample > 0, sample, 0).sum(axis=-1)
    neg = np.where(sample < 0, -sample, 0).sum(axis=-1)
    ylim = (-1.05 * max(float(neg.max()), 0.1), 1.05 * max(float(pos.max()), 0.1))
    panels = []
    for inst in chosen:

        def build(frame: xr.Dataset, inst=inst) -> Any:
            W = _matrix(frame.sel(instance=inst))  # (hidden, feature)
            up = np.where(W > 0, W, 0)
            down = np.where(W < 0, -W, 0)
            top_up = np.cumsum(up, axis=1)
            top_down = np.cumsum(down, axis=1)
            neuron = np.repeat(np.arange(m), n)
            weight = W.ravel()
            y0 = np.where(weight >= 0, (top_up - up).ravel(), -(top_down - down).ravel())
            y1 = np.where(weight >= 0, top_up.ravel(), -top_down.ravel())
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
                    title=titles[inst],
                    xlim=(-0.6, m - 0.4),
                    ylim=ylim,
                    xticks=[(h, str(h)) for h in range(m)],
                    xlabel="neuron",
                    ylabel="|W[h, i]| (negative below)",
                    frame_width=max(PANEL, 18 * m),
                    frame_height=PANEL,
                )
            )

        panels.append(_per_step(build, source, shown, dynamic))
    return _layout(panels, cols=3)
