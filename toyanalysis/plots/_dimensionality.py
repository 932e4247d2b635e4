"""Dimensions per feature across a density sweep: ``D*`` and each ``D_i`` against ``1/(1−S)``."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import holoviews as hv
import numpy as np
import xarray as xr

from toyanalysis.plots._common import (
    PANEL,
    PlotError,
    PlotParams,
    intake,
    panels,
    per_step,
    resolve,
)
from toyanalysis.superposition import dimensions_per_feature, feature_dimensionality

__all__ = ["REFERENCE_FRACTIONS", "dimensionality"]

# D_i of the paper's configurations: dedicated, tetrahedron, triangle, digon, pentagon, antiprism
REFERENCE_FRACTIONS = (
    Fraction(1),
    Fraction(3, 4),
    Fraction(2, 3),
    Fraction(1, 2),
    Fraction(2, 5),
    Fraction(3, 8),
)


def _references(xlim: tuple[float, float]) -> Any:
    """Dashed lines at the reference fractions, labelled at the right edge."""
    fractions = np.array([float(f) for f in REFERENCE_FRACTIONS])
    lines = hv.HLines(fractions).opts(color="grey", line_dash="dashed", line_width=1)
    texts = hv.Labels(
        (
            np.full(fractions.size, xlim[1] / 1.15),
            fractions + 0.025,
            [str(f) for f in REFERENCE_FRACTIONS],
        ),
        kdims=["x", "y"],
        vdims=["text"],
    ).opts(text_color="grey", text_font_size="9pt", text_align="right")
    return lines * texts


def _density(ds: xr.Dataset, chosen: list[Any]) -> np.ndarray:
    if "density" not in ds.coords:
        raise PlotError(
            "dimensionality plots D* against 1/density, but the store has no density coordinate"
        )
    density = np.asarray(
        ds["density"].sel(instance=chosen).transpose("instance", "feature").values, np.float64
    )
    if np.any(density <= 0):
        raise PlotError("dimensionality needs densities > 0 (1/density is the x axis)")
    return density


def _dimensionality_frame(W: np.ndarray, axes: dict[str, Any]) -> Any:
    x_feature, x_instance = axes["x_feature"], axes["x_instance"]
    order = np.argsort(x_instance, kind="stable")
    dstar = dimensions_per_feature(W)
    dstar = np.where(np.isfinite(dstar), dstar, np.nan)
    labels = axes["labels"]
    curve = hv.Curve(
        (x_instance[order], dstar[order], labels[order]),
        kdims=["1/(1-S)"],
        vdims=["D*", "instance"],
    ).opts(color="black", line_width=2, tools=["hover"])
    scatter = hv.Scatter(
        (
            x_feature.ravel(),
            feature_dimensionality(W).ravel(),
            axes["features"].ravel(),
            np.repeat(labels, x_feature.shape[1]),
        ),
        kdims=["1/(1-S)"],
        vdims=["D_i", "feature", "instance"],
    ).opts(color="#1f77b4", alpha=0.5, size=5, tools=["hover"])
    return (axes["references"] * curve * scatter).opts(
        hv.opts.Overlay(
            logx=True,
            xlim=axes["xlim"],
            ylim=(0, 1.1),
            xlabel="1/(1−S)  (1/density)",
            ylabel="dimensions per feature",
            title="D* and D_i across the sweep",
            frame_width=2 * PANEL,
            frame_height=PANEL + 40,
        )
    )


def dimensionality(
    ds: Any,
    params: PlotParams | None = None,
    *,
    steps: Sequence[int] | str | None = None,
    instances: Sequence[Any] | None = None,
    dynamic: bool = False,
    **changes: Any,
) -> Any:
    """``D* = m/‖W‖_F²`` against ``1/(1−S)`` (log axis) across instances, with each ``D_i``.

    Each instance sits at ``1/density`` (its mean feature density); each
    feature's dimensionality at ``1/density_i``. Dashed reference lines mark
    the fractions 1, 3/4, 2/3, 1/2, 2/5 and 3/8 where ``D_i`` clusters.
    Needs the ``density`` coordinate (a density sweep). Every instance is
    shown (``max_instances`` does not apply: the instances are the x axis).

    >>> from toyanalysis import testing
    >>> W = np.stack([testing.tegum("digon", "dedicated"), testing.tegum("pentagon")[:, :3]])
    >>> ds = testing.as_dataset(W, density=[[1.0] * 3, [0.1] * 3])
    >>> [type(e).__name__ for e in dimensionality(ds)]
    ['HLines', 'Labels', 'Curve', 'Scatter']
    """
    params = resolve(params, changes)
    ds = intake(ds)
    if "density" not in ds.coords:
        _density(ds, [])
    chosen, source, titles, shown = panels(
        ds, ["W"], params, instances=instances, steps=steps, max_instances=ds.sizes["instance"]
    )
    density = _density(ds, chosen)
    x_feature = 1.0 / density
    xlim = (float(x_feature.min()) / 1.5, float(x_feature.max()) * 1.5)
    axes = {
        "labels": np.array([titles[i] for i in chosen], dtype=object),
        "features": np.broadcast_to(ds["feature"].values, x_feature.shape),
        "references": _references(xlim),
        "xlim": xlim,
        "x_feature": x_feature,
        "x_instance": 1.0 / density.mean(axis=1),
    }

    def build(frame: xr.Dataset) -> Any:
        W = np.asarray(
            frame["W"].transpose("instance", "hidden", "feature").values, dtype=np.float64
        )
        return _dimensionality_frame(W, axes)

    return per_step(build, source, shown, dynamic)
