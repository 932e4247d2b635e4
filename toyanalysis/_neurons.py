"""The neuron kernels, written for ``(..., hidden, feature)``, and their lift over a store.

:func:`drive`, :func:`participation`, :func:`neuron_kernel` and
:func:`instance_counts` are plain NumPy on arrays with the matrix axes last and
any leading axes; their outputs have fixed sizes (per neuron, per feature, per
matrix), so :func:`lift` runs them with one ``xr.apply_ufunc(...,
dask="parallelized")``: eagerly on NumPy-backed weights, lazily and chunk by
chunk (bounded memory) on a dask-backed store.

>>> W = np.array([[[1.0, 0.0], [0.9, 0.8]]])
>>> arrays = neuron_kernel(W, dead_threshold=0.1, mono_threshold=1.5, feature_fraction=0.3, sign="positive")
>>> arrays[4].tolist()   # label
[['monosemantic', 'polysemantic']]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from jaxtyping import Bool, Float, Int, Shaped

from toyanalysis._checks import shape_checked
from toyanalysis.errors import ConfigError, StoreError

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "LABEL_DTYPE",
    "OUTPUTS",
    "drive",
    "instance_counts",
    "lift",
    "neuron_kernel",
    "participation",
]

LABEL_DTYPE = "<U12"  # the longest label, "monosemantic"/"polysemantic"

# every output of the lifted kernel: name, core dims (after step, instance), dtype
OUTPUTS: tuple[tuple[str, tuple[str, ...], Any], ...] = (
    ("drive", ("hidden", "feature"), np.float64),
    ("drives", ("hidden", "feature"), np.bool_),
    ("strength", ("hidden",), np.float64),
    ("score", ("hidden",), np.float64),
    ("label", ("hidden",), LABEL_DTYPE),
    ("top_feature", ("hidden",), np.int64),
    ("n_features", ("hidden",), np.int64),
    ("n_neurons", ("feature",), np.int64),
    ("monosemantic_fraction", (), np.float64),
    ("dead_fraction", (), np.float64),
    ("n_monosemantic", (), np.int64),
    ("n_polysemantic", (), np.int64),
    ("n_dead", (), np.int64),
)


@shape_checked
def drive(
    W: Float[np.ndarray, "*batch hidden feature"], sign: str
) -> Float[np.ndarray, "*batch hidden feature"]:
    """Drive of each feature on each neuron from weights ``W (..., hidden, feature)``.

    >>> W = np.array([[0.5, -2.0]])
    >>> drive(W, "positive").tolist(), drive(W, "both").tolist()
    ([[0.5, 0.0]], [[0.5, 2.0]])
    """
    if sign == "positive":
        return np.maximum(W, 0.0)
    if sign == "both":
        return np.abs(W)
    raise ConfigError(f"sign must be 'positive' or 'both', got {sign!r}")


@shape_checked
def participation(d: Float[np.ndarray, "*batch feature"]) -> Float[np.ndarray, "*batch"]:
    """Effective number of features ``(Σ d²)² / Σ d⁴`` over the last axis; NaN where all are 0.

    >>> participation(np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])).tolist()
    [1.0, 2.0, nan]
    """
    d = np.asarray(d, dtype=np.float64)
    sq = np.square(d)
    total = sq.sum(axis=-1)
    fourth = np.square(sq).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(
            np.where(fourth > 0, np.square(total) / np.where(fourth > 0, fourth, 1.0), np.nan)
        )


@shape_checked
def neuron_kernel(
    W: Float[np.ndarray, "*batch hidden feature"],
    W_out: Float[np.ndarray, "*batch feature hidden"] | None = None,
    *,
    dead_threshold: float,
    mono_threshold: float,
    feature_fraction: float,
    sign: str,
) -> tuple[
    Float[np.ndarray, "*batch hidden feature"],
    Bool[np.ndarray, "*batch hidden feature"],
    Float[np.ndarray, "*batch hidden"],
    Float[np.ndarray, "*batch hidden"],
    Shaped[np.ndarray, "*batch hidden"],
    Int[np.ndarray, "*batch hidden"],
    Int[np.ndarray, "*batch hidden"],
    Int[np.ndarray, "*batch feature"],
]:
    """Per neuron of ``W (..., hidden, feature)``: drive, drives, strength, score, label, ...

    Returns ``drive``, ``drives`` (..., hidden, feature); ``strength``,
    ``score``, ``label``, ``top_feature``, ``n_features`` (..., hidden); and
    ``n_neurons`` (..., feature) (definitions in ``docs/neurons.md``). With
    ``W_out (..., feature, hidden)`` a neuron that writes nothing is dead too.
    """
    d = drive(np.asarray(W, dtype=np.float64), sign)
    strength = np.sqrt(np.square(d).sum(axis=-1))
    dead = strength < dead_threshold
    if W_out is not None:
        out_norm = np.sqrt(np.square(np.asarray(W_out, dtype=np.float64)).sum(axis=-2))
        dead |= out_norm < dead_threshold
    score = np.where(dead, np.nan, participation(d))
    label = np.where(
        dead, "dead", np.where(score <= mono_threshold, "monosemantic", "polysemantic")
    )
    top = d.max(axis=-1, keepdims=True)
    drives = (d >= feature_fraction * top) & (d > 0) & ~dead[..., None]
    top_feature = np.where(dead, -1, np.argmax(d, axis=-1)).astype(np.int64)
    return (
        d,
        drives,
        strength,
        score,
        label.astype(LABEL_DTYPE),
        top_feature,
        drives.sum(axis=-1).astype(np.int64),
        drives.sum(axis=-2).astype(np.int64),
    )


@shape_checked
def instance_counts(
    label: Shaped[np.ndarray, "*batch hidden"],
) -> tuple[
    Float[np.ndarray, "*batch"],
    Float[np.ndarray, "*batch"],
    Int[np.ndarray, "*batch"],
    Int[np.ndarray, "*batch"],
    Int[np.ndarray, "*batch"],
]:
    """Per matrix: monosemantic fraction (of neurons not dead), dead fraction and the counts."""
    n_dead = (label == "dead").sum(axis=-1).astype(np.int64)
    n_mono = (label == "monosemantic").sum(axis=-1).astype(np.int64)
    n_poly = (label == "polysemantic").sum(axis=-1).astype(np.int64)
    alive = n_mono + n_poly
    with np.errstate(divide="ignore", invalid="ignore"):
        mono_fraction = np.where(alive > 0, n_mono / np.where(alive > 0, alive, 1), np.nan)
    dead_fraction = np.asarray(n_dead / label.shape[-1], dtype=np.float64)
    return np.asarray(mono_fraction, dtype=np.float64), dead_fraction, n_mono, n_poly, n_dead


def _checked_kernel(
    W: np.ndarray, W_out: np.ndarray | None = None, *, shape: tuple[int, ...], **params: Any
) -> tuple[np.ndarray, ...]:
    """The kernel on one block, refusing NaN or inf weights (``shape``: of the whole ``W``)."""
    for name, array in (("W", W), ("W_out", W_out)):
        if array is not None and not np.all(np.isfinite(array)):
            raise StoreError(f"neurons: {name} has NaN or inf values (W shape {shape})")
    per_neuron = neuron_kernel(W, W_out, **params)
    return (*per_neuron, *instance_counts(per_neuron[4]))


def lift(
    W: xr.DataArray, W_out: xr.DataArray | None, params: dict[str, Any]
) -> dict[str, xr.DataArray]:
    """Every :data:`OUTPUTS` variable of ``W (step, instance, hidden, feature)``, by name.

    ``params``: the kernel's thresholds and sign rule. Lazy when ``W`` is
    dask-backed (its ``hidden`` and ``feature`` chunks are merged, the other
    chunks kept), eager otherwise.
    """
    import xarray as xr

    args = [W] + ([] if W_out is None else [W_out])
    if W.chunks is not None:
        args = [a.chunk({"hidden": -1, "feature": -1}) for a in args]
    outputs = xr.apply_ufunc(
        _checked_kernel,
        *args,
        input_core_dims=[["hidden", "feature"], ["feature", "hidden"]][: len(args)],
        output_core_dims=[list(dims) for _, dims, _ in OUTPUTS],
        output_dtypes=[dtype for _, _, dtype in OUTPUTS],
        kwargs={**params, "shape": tuple(W.shape)},
        dask="parallelized",
    )
    return {name: out for (name, _, _), out in zip(OUTPUTS, outputs, strict=True)}
