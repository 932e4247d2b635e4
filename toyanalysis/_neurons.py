"""The neuron kernels, written for ``(..., hidden, feature)``, and their lift over a store.

:func:`drive`, :func:`participation`, :func:`reading`, :func:`neuron_kernel`
(what each neuron reads and writes), :func:`feature_kernel` (how each feature
is computed) and :func:`instance_counts` are plain NumPy on arrays with the matrix axes last and
any leading axes; their outputs have fixed sizes (per neuron, per feature, per
matrix), so :func:`lift` runs them with one ``xr.apply_ufunc(...,
dask="parallelized")``: eagerly on NumPy-backed weights, lazily and chunk by
chunk (bounded memory) on a dask-backed store.

>>> W = np.array([[[1.0, 0.0], [0.9, 0.8]]])
>>> arrays = neuron_kernel(W, dead_threshold=0.1, mono_threshold=1.5, feature_fraction=0.3, sign="positive")
>>> arrays["label"].tolist()
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
    "FEATURE_LABELS",
    "LABEL_DTYPE",
    "NEURON_LABELS",
    "OUTPUTS",
    "drive",
    "feature_kernel",
    "instance_counts",
    "lift",
    "neuron_kernel",
    "participation",
    "reading",
]

NEURON_LABELS = ("monosemantic", "polysemantic", "crossed", "dead")
LABEL_DTYPE = "<U12"  # the longest label, "monosemantic"/"polysemantic"
# how each feature is computed (definitions in docs/neurons.md)
FEATURE_LABELS = ("pair", "dedicated", "one-sided", "shared", "none")
FEATURE_DTYPE = "<U9"  # the longest, "dedicated"/"one-sided"

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
    ("out_drive", ("hidden", "feature"), np.float64),
    ("writes", ("hidden", "feature"), np.bool_),
    ("out_score", ("hidden",), np.float64),
    ("top_output", ("hidden",), np.int64),
    ("in_sign", ("hidden",), np.int64),
    ("out_sign", ("hidden",), np.int64),
    ("agrees", ("hidden",), np.bool_),
    ("clean", ("hidden", "feature"), np.bool_),
    ("feature_label", ("feature",), FEATURE_DTYPE),
    ("n_positive", ("feature",), np.int64),
    ("n_negative", ("feature",), np.int64),
    ("n_writers", ("feature",), np.int64),
    ("n_foreign", ("feature",), np.int64),
    ("monosemantic_fraction", (), np.float64),
    ("dead_fraction", (), np.float64),
    ("n_monosemantic", (), np.int64),
    ("n_polysemantic", (), np.int64),
    ("n_crossed", (), np.int64),
    ("n_dead", (), np.int64),
    ("clean_fraction", (), np.float64),
    *((f"n_{name.replace('-', '_')}", (), np.int64) for name in FEATURE_LABELS),
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
def reading(
    d: Float[np.ndarray, "*batch hidden feature"],
    dead: Bool[np.ndarray, "*batch hidden"],
    fraction: float,
) -> tuple[Bool[np.ndarray, "*batch hidden feature"], Int[np.ndarray, "*batch hidden"]]:
    """Which features each neuron reads (or writes) and the strongest one (-1 when none).

    Feature ``i`` counts when ``d[h, i] ≥ fraction × maxⱼ d[h, j] > 0`` and the
    neuron is not dead. The same rule serves the input drives and the output
    drives.

    >>> chosen, top = reading(np.array([[0.2, 1.0, 0.4], [0.0, 0.0, 0.0]]), np.array([False, True]), 0.3)
    >>> chosen.tolist(), top.tolist()
    ([[False, True, True], [False, False, False]], [1, -1])
    """
    top = d.max(axis=-1, keepdims=True)
    chosen = (d >= fraction * top) & (d > 0) & ~dead[..., None]
    none = dead | (top[..., 0] <= 0)
    return chosen, np.where(none, -1, np.argmax(d, axis=-1)).astype(np.int64)


def _sign_at(M: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``sign(M[..., h, index[..., h]])``, 0 where ``index`` is -1."""
    picked = np.take_along_axis(M, np.maximum(index, 0)[..., None], axis=-1)[..., 0]
    return np.where(index < 0, 0, np.sign(picked)).astype(np.int64)


@shape_checked
def neuron_kernel(
    W: Float[np.ndarray, "*batch hidden feature"],
    W_out: Float[np.ndarray, "*batch feature hidden"] | None = None,
    out_scale: Float[np.ndarray, "#*batch feature"] | None = None,
    *,
    dead_threshold: float,
    mono_threshold: float,
    feature_fraction: float,
    sign: str,
) -> dict[str, np.ndarray]:
    """Per neuron of ``W (..., hidden, feature)``: what it reads, what it writes, its label.

    ``W_out (..., feature, hidden)``: the output matrix (``None`` when tied:
    ``W_out = Wᵀ``); ``out_scale (..., feature)`` weighs the output drives
    (``√(I_j / max I)``). Returns the per-neuron :data:`OUTPUTS` by name
    (definitions in ``docs/neurons.md``).

    >>> W = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> r = neuron_kernel(W, np.array([[0.0, 1.0], [1.0, 0.0]]), dead_threshold=0.1,
    ...                   mono_threshold=1.5, feature_fraction=0.3, sign="both")
    >>> r["label"].tolist(), r["top_output"].tolist()    # each reads one feature, writes the other
    (['crossed', 'crossed'], [1, 0])
    """
    W = np.asarray(W, dtype=np.float64)
    out = W if W_out is None else np.swapaxes(np.asarray(W_out, dtype=np.float64), -1, -2)
    d, o = drive(W, sign), drive(out, sign)
    if out_scale is not None:
        o = o * np.asarray(out_scale, dtype=np.float64)[..., None, :]
    strength = np.sqrt(np.square(d).sum(axis=-1))
    dead = strength < dead_threshold
    if W_out is not None:
        dead |= np.sqrt(np.square(out).sum(axis=-1)) < dead_threshold
    drives, top_feature = reading(d, dead, feature_fraction)
    writes, top_output = reading(o, dead, feature_fraction)
    score = np.where(dead, np.nan, participation(d))
    out_score = np.where(dead, np.nan, participation(o))
    out_sign = _sign_at(out, top_output)
    agrees = ~dead & (top_feature == top_output) & (out_sign > 0)
    mono = (score <= mono_threshold) & (out_score <= mono_threshold)
    label = np.where(mono, np.where(agrees, "monosemantic", "crossed"), "polysemantic")
    return {
        "drive": d,
        "drives": drives,
        "strength": strength,
        "score": score,
        "label": np.where(dead, "dead", label).astype(LABEL_DTYPE),
        "top_feature": top_feature,
        "n_features": drives.sum(axis=-1).astype(np.int64),
        "n_neurons": drives.sum(axis=-2).astype(np.int64),
        "out_drive": o,
        "writes": writes,
        "out_score": out_score,
        "top_output": top_output,
        "in_sign": _sign_at(W, top_feature),
        "out_sign": out_sign,
        "agrees": agrees,
        "out": out,
    }


@shape_checked
def feature_kernel(
    W: Float[np.ndarray, "*batch hidden feature"],
    out: Float[np.ndarray, "*batch hidden feature"],
    drives: Bool[np.ndarray, "*batch hidden feature"],
    writes: Bool[np.ndarray, "*batch hidden feature"],
    signed: bool,
) -> dict[str, np.ndarray]:
    """Per feature: how the neurons compute it (``pair``, ``dedicated``, ``one-sided``, ``shared``, ``none``).

    ``out[h, i]`` is neuron ``h``'s output weight into feature ``i``'s output
    (``W_out[i, h]``); ``drives``/``writes``: what each neuron reads and
    writes (:func:`reading`). A neuron is *clean* for ``i`` when it reads only
    ``i`` and writes only ``i``'s output, with a positive weight. A feature is
    ``none`` when no neuron reads it; ``shared`` when a neuron reading it is
    not clean for it; else ``pair`` (``signed``: clean neurons of both input
    signs), ``one-sided`` (``signed``: of one sign), or ``dedicated``
    (unsigned inputs: one sign is the whole input range). ``n_foreign``:
    neurons writing ``i``'s output without reading ``i``.

    >>> W = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, -1.0]])   # a pair for 0; 1 one-sided
    >>> r = feature_kernel(W, np.abs(W), W != 0, W != 0, signed=True)
    >>> r["feature_label"].tolist(), r["n_positive"].tolist(), r["n_negative"].tolist()
    (['pair', 'one-sided'], [1, 0], [1, 1])
    """
    only_one = (drives.sum(axis=-1) == 1) & (writes.sum(axis=-1) == 1)
    clean = drives & writes & only_one[..., None] & (out > 0)
    shared = (drives & ~clean).any(axis=-2)
    positive = (drives & (W > 0)).sum(axis=-2).astype(np.int64)
    negative = (drives & (W < 0)).sum(axis=-2).astype(np.int64)
    if signed:
        whole = np.where((positive > 0) & (negative > 0), "pair", "one-sided")
    else:
        whole = np.full(positive.shape, "dedicated")
    label = np.where(~drives.any(axis=-2), "none", np.where(shared, "shared", whole))
    return {
        "clean": clean,
        "feature_label": label.astype(FEATURE_DTYPE),
        "n_positive": positive,
        "n_negative": negative,
        "n_writers": writes.sum(axis=-2).astype(np.int64),
        "n_foreign": (writes & ~drives).sum(axis=-2).astype(np.int64),
    }


@shape_checked
def instance_counts(
    label: Shaped[np.ndarray, "*batch hidden"],
    feature_label: Shaped[np.ndarray, "*batch feature"],
) -> dict[str, np.ndarray]:
    """Per matrix: the neuron label fractions and counts, the feature label counts.

    ``monosemantic_fraction``: monosemantic / neurons not dead (NaN when all
    are dead); ``clean_fraction``: features labelled ``pair`` or ``dedicated``
    / all features.
    """
    counts = {f"n_{name}": (label == name).sum(axis=-1).astype(np.int64) for name in NEURON_LABELS}
    alive = label.shape[-1] - counts["n_dead"]
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(
            alive > 0, counts["n_monosemantic"] / np.where(alive > 0, alive, 1), np.nan
        )
    per_feature = {
        f"n_{name.replace('-', '_')}": (feature_label == name).sum(axis=-1).astype(np.int64)
        for name in FEATURE_LABELS
    }
    clean = (per_feature["n_pair"] + per_feature["n_dedicated"]) / feature_label.shape[-1]
    return {
        "monosemantic_fraction": np.asarray(fraction, dtype=np.float64),
        "dead_fraction": np.asarray(counts["n_dead"] / label.shape[-1], dtype=np.float64),
        **counts,
        "clean_fraction": np.asarray(clean, dtype=np.float64),
        **per_feature,
    }


def _checked_kernel(
    W: np.ndarray,
    W_out: np.ndarray | None = None,
    out_scale: np.ndarray | None = None,
    *,
    shape: tuple[int, ...],
    signed: bool,
    **params: Any,
) -> tuple[np.ndarray, ...]:
    """The kernels on one block, refusing NaN or inf weights (``shape``: of the whole ``W``)."""
    for name, array in (("W", W), ("W_out", W_out)):
        if array is not None and not np.all(np.isfinite(array)):
            raise StoreError(f"neurons: {name} has NaN or inf values (W shape {shape})")
    per_neuron = neuron_kernel(W, W_out, out_scale, **params)
    per_feature = feature_kernel(
        np.asarray(W, np.float64),
        per_neuron["out"],
        per_neuron["drives"],
        per_neuron["writes"],
        signed,
    )
    counts = instance_counts(per_neuron["label"], per_feature["feature_label"])
    everything = {**per_neuron, **per_feature, **counts}
    return tuple(everything[name] for name, _, _ in OUTPUTS)


def lift(
    W: xr.DataArray,
    W_out: xr.DataArray | None,
    params: dict[str, Any],
    out_scale: xr.DataArray | None = None,
) -> dict[str, xr.DataArray]:
    """Every :data:`OUTPUTS` variable of ``W (step, instance, hidden, feature)``, by name.

    ``params``: the kernel's thresholds, sign rule and ``signed`` (the
    family's inputs are signed: pairs are needed); ``out_scale (instance,
    feature)``: the output drives' weights (with ``W_out`` only). Lazy when ``W`` is
    dask-backed (its ``hidden`` and ``feature`` chunks are merged, the other
    chunks kept), eager otherwise.
    """
    import xarray as xr

    args = [W] + ([] if W_out is None else [W_out])
    args += [] if W_out is None or out_scale is None else [out_scale]
    if W.chunks is not None:
        args = [a.chunk({d: -1 for d in ("hidden", "feature") if d in a.dims}) for a in args]
    outputs = xr.apply_ufunc(
        _checked_kernel,
        *args,
        input_core_dims=[["hidden", "feature"], ["feature", "hidden"], ["feature"]][: len(args)],
        output_core_dims=[list(dims) for _, dims, _ in OUTPUTS],
        output_dtypes=[dtype for _, _, dtype in OUTPUTS],
        kwargs={**params, "shape": tuple(W.shape)},
        dask="parallelized",
    )
    return {name: out for (name, _, _), out in zip(OUTPUTS, outputs, strict=True)}
