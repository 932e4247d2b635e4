"""Neurons of a privileged basis: which features drive each one, and how many.

In the tied models (``relu_output``, ``linear``) only ``WᵀW`` matters, so a
hidden dimension means nothing by itself. With a ReLU on the hidden layer
(``hidden_relu``: ``h = ReLU(W x)``; ``abs``: ``h = ReLU(W₁ x)``) the basis is
*privileged*: neuron ``h`` fires for the inputs its weight row ``W[h, :]``
responds to, and we can ask whether it answers to one feature
(*monosemantic*) or several (*polysemantic*).

Definitions (all thresholds are keyword arguments, recorded in the result's
attrs):

drive
    How strongly feature ``i`` can raise neuron ``h``'s pre-activation.
    ``hidden_relu`` inputs are never negative, so only positive weights drive
    a neuron (a negative weight only inhibits it): ``drive = max(W[h, i], 0)``.
    ``abs`` inputs are signed (``x ∈ [−1, 1]``), so either sign drives it:
    ``drive = |W[h, i]|``. ``sign="positive"`` or ``"both"`` forces a rule.
strength
    ``‖drive[h, :]‖``, the Euclidean norm of the neuron's drive.
score
    The effective number of features driving the neuron, the participation
    ratio of its squared drives, ``(Σᵢ dᵢ²)² / Σᵢ dᵢ⁴``. It is 1 when one
    feature drives the neuron, k when k features drive it equally, and lies
    in ``[1, n]``. NaN for dead neurons.
label
    ``dead`` when ``strength < dead_threshold`` (default 0.1; for ``abs`` also
    when the output weights ``‖W_out[:, h]‖ < dead_threshold``: the neuron
    reads but writes nothing); otherwise ``monosemantic`` when
    ``score ≤ mono_threshold`` (default 1.5: a second feature would need
    about half the top feature's weight to cross it) and ``polysemantic``
    above.
drives
    Feature ``i`` drives neuron ``h`` (``drives[h, i]``) when the neuron is
    not dead and ``drive[h, i] ≥ feature_fraction × maxⱼ drive[h, j]``
    (default 0.3). The same relation read per feature gives the neurons that
    carry it (``n_neurons``).
monosemantic_fraction
    Per instance: monosemantic neurons / neurons that are not dead (NaN when
    all are dead). ``dead_fraction`` is dead neurons / all neurons.

Expected (paper, section "Superposition in a privileged basis"): dense
inputs give monosemantic neurons, sparser inputs polysemantic ones; the
``|x|`` model with n=3, m=6 uses a pair of neurons per feature, one for
``x > 0`` and one for ``x < 0``, each monosemantic.

>>> import numpy as np, xarray as xr
>>> W = np.array([[[[1.0, 0.0, 0.0], [0.0, 0.9, 0.8], [0.0, 0.0, 0.0]]]], np.float32)
>>> ds = xr.Dataset({"W": (("step", "instance", "hidden", "feature"), W)},
...                 attrs={"model": "hidden_relu"})
>>> result = neurons(ds)
>>> result["label"].values[0, 0].tolist()
['monosemantic', 'polysemantic', 'dead']
>>> float(result["monosemantic_fraction"][0, 0])
0.5
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from toyanalysis.errors import ConfigError, StoreError
from toyanalysis.geometry import _scalar, _select_steps
from toyanalysis.store import normalize

PRIVILEGED_MODELS = ("hidden_relu", "abs")
SIGN_RULES = ("auto", "positive", "both")
LABELS = ("monosemantic", "polysemantic", "dead")
# the sign rule "auto" picks per model: which weights can raise a neuron
_AUTO_SIGN = {"hidden_relu": "positive", "abs": "both"}


@dataclass(frozen=True, kw_only=True)
class NeuronThresholds:
    """The thresholds behind the neuron labels (see the module docstring)."""

    dead_threshold: float = 0.1
    mono_threshold: float = 1.5
    feature_fraction: float = 0.3
    sign: str = "auto"

    def __post_init__(self) -> None:
        if not (np.isfinite(self.dead_threshold) and self.dead_threshold >= 0):
            raise ConfigError(f"dead_threshold must be >= 0, got {self.dead_threshold}")
        if not (np.isfinite(self.mono_threshold) and self.mono_threshold >= 1):
            raise ConfigError(
                f"mono_threshold must be >= 1 (a score is never below 1), got {self.mono_threshold}"
            )
        if not (0 < self.feature_fraction <= 1):
            raise ConfigError(f"feature_fraction must be in (0, 1], got {self.feature_fraction}")
        if self.sign not in SIGN_RULES:
            raise ConfigError(f"sign must be one of {SIGN_RULES}, got {self.sign!r}")


# --- kernels: matrix axes last, any leading axes ---------------------------------
def drive(W: np.ndarray, sign: str) -> np.ndarray:
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


def participation(d: np.ndarray) -> np.ndarray:
    """Effective number of features ``(Σ d²)² / Σ d⁴`` over the last axis; NaN where all are 0.

    >>> participation(np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])).tolist()
    [1.0, 2.0, nan]
    """
    d = np.asarray(d, dtype=np.float64)
    sq = np.square(d)
    total = sq.sum(axis=-1)
    fourth = np.square(sq).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(fourth > 0, np.square(total) / np.where(fourth > 0, fourth, 1.0), np.nan)


def _neuron_kernel(
    W: np.ndarray, out_norm: np.ndarray | None, t: NeuronThresholds, sign: str
) -> dict[str, np.ndarray]:
    """All per-neuron quantities for ``W (..., hidden, feature)``; plain numpy."""
    d = drive(np.asarray(W, dtype=np.float64), sign)
    strength = np.sqrt(np.square(d).sum(axis=-1))
    dead = strength < t.dead_threshold
    if out_norm is not None:
        dead |= out_norm < t.dead_threshold
    score = np.where(dead, np.nan, participation(d))
    label = np.where(
        dead, "dead", np.where(score <= t.mono_threshold, "monosemantic", "polysemantic")
    )
    top = d.max(axis=-1, keepdims=True)
    drives = (d >= t.feature_fraction * top) & (d > 0) & ~dead[..., None]
    return {"drive": d, "strength": strength, "score": score, "label": label, "drives": drives}


# --- the xarray layer ------------------------------------------------------------
def _the_store_has(recorded: np.ndarray) -> str:
    return f"; the store has {recorded.size} steps from {recorded[0]} to {recorded[-1]}"


def resolve_model(ds: xr.Dataset, model: str | None) -> str:
    """The model family to analyse: ``model`` if given, else ``ds.attrs["model"]``."""
    chosen = model if model is not None else ds.attrs.get("model", "relu_output")
    if chosen not in PRIVILEGED_MODELS:
        source = "model" if model is not None else "the store's attrs['model']"
        raise ConfigError(
            f"neurons need a privileged basis (model hidden_relu or abs), but {source} is "
            f"{chosen!r}; pass model= (--model) if the store's model is wrong"
        )
    return chosen


def neurons(
    ds: xr.Dataset,
    *,
    steps: Sequence[int] | None = None,
    model: str | None = None,
    dead_threshold: float = 0.1,
    mono_threshold: float = 1.5,
    feature_fraction: float = 0.3,
    sign: str = "auto",
) -> xr.Dataset:
    """Per neuron: the features driving it, its polysemanticity score and label.

    ``ds`` is a store Dataset (``W (step, instance, hidden, feature)``; ``W_out``
    for ``abs``). ``steps`` selects recorded steps by value (default: all).
    Returns a Dataset with dims ``(step, instance, hidden, feature)``:

    - ``weight``, ``drive`` ``(step, instance, hidden, feature)``: the input
      weights ``W[h, i]`` and the drive (see the module docstring);
      ``out_weight`` (``abs`` only): the output weights ``W_out[i, h]``;
    - ``drives (step, instance, hidden, feature)`` bool;
    - ``strength``, ``score``, ``label``, ``top_feature``, ``n_features``
      ``(step, instance, hidden)``;
    - ``n_neurons (step, instance, feature)``: neurons each feature drives;
    - ``monosemantic_fraction``, ``dead_fraction``, ``n_monosemantic``,
      ``n_polysemantic``, ``n_dead`` ``(step, instance)``.

    >>> import numpy as np, xarray as xr
    >>> W = np.zeros((1, 1, 6, 3), np.float32)          # |x| with n=3, m=6: a pair per feature
    >>> for i in range(3):
    ...     W[0, 0, 2 * i, i], W[0, 0, 2 * i + 1, i] = 1.0, -1.0
    >>> W_out = np.abs(np.swapaxes(W, -1, -2))
    >>> dims = ("step", "instance", "hidden", "feature")
    >>> out_dims = ("step", "instance", "feature", "hidden")
    >>> ds = xr.Dataset({"W": (dims, W), "W_out": (out_dims, W_out)}, attrs={"model": "abs"})
    >>> r = neurons(ds)
    >>> r["top_feature"].values[0, 0].tolist(), float(r["monosemantic_fraction"][0, 0])
    ([0, 0, 1, 1, 2, 2], 1.0)
    """
    thresholds = NeuronThresholds(
        dead_threshold=dead_threshold,
        mono_threshold=mono_threshold,
        feature_fraction=feature_fraction,
        sign=sign,
    )
    ds = normalize(ds.copy(), "neurons input")
    chosen = resolve_model(ds, model)
    rule = _AUTO_SIGN[chosen] if sign == "auto" else sign
    if chosen == "abs" and "W_out" not in ds.data_vars:
        raise StoreError(
            "neurons: model abs needs the output weights W_out (step, instance, feature, hidden)"
        )
    ds = _select_steps(ds, steps, _the_store_has)
    W = ds["W"].transpose("step", "instance", "hidden", "feature")
    W_out = (
        ds["W_out"].transpose("step", "instance", "feature", "hidden") if chosen == "abs" else None
    )
    parts: list[dict[str, np.ndarray]] = []
    out_parts: list[np.ndarray] = []
    # read and convert in blocks of steps: bounded temporaries (the result keeps every step)
    block = max(1, int(4_000_000 // max(1, W.isel(step=0).size)))
    for start in range(0, W.sizes["step"], block):
        w = np.asarray(W.isel(step=slice(start, start + block)).values, dtype=np.float64)
        out_norm = None
        if W_out is not None:
            wo = np.asarray(W_out.isel(step=slice(start, start + block)).values, dtype=np.float64)
            out_parts.append(wo)
            out_norm = np.sqrt(np.square(wo).sum(axis=-2))  # over features -> (..., hidden)
        if not np.all(np.isfinite(w)) or (
            out_norm is not None and not np.all(np.isfinite(out_norm))
        ):
            name = "W" if not np.all(np.isfinite(w)) else "W_out"
            raise StoreError(f"neurons: {name} has NaN or inf values (W shape {tuple(W.shape)})")
        part = _neuron_kernel(w, out_norm, thresholds, rule)
        part["weight"] = w
        parts.append(part)
    cat = {key: np.concatenate([p[key] for p in parts], axis=0) for key in parts[0]}
    return _assemble(ds, cat, out_parts, thresholds, chosen, rule)


def _assemble(
    ds: xr.Dataset,
    cat: dict[str, np.ndarray],
    out_parts: list[np.ndarray],
    t: NeuronThresholds,
    model: str,
    rule: str,
) -> xr.Dataset:
    full = ("step", "instance", "hidden", "feature")
    per_neuron = ("step", "instance", "hidden")
    per_instance = ("step", "instance")
    label = cat["label"]
    dead = label == "dead"
    drives = cat["drives"]
    d = cat["drive"]
    top = np.where(dead, -1, np.argmax(d, axis=-1))
    n_dead = dead.sum(axis=-1)
    n_mono = (label == "monosemantic").sum(axis=-1)
    n_poly = (label == "polysemantic").sum(axis=-1)
    alive = n_mono + n_poly
    with np.errstate(divide="ignore", invalid="ignore"):
        mono_fraction = np.where(alive > 0, n_mono / np.where(alive > 0, alive, 1), np.nan)
    data: dict[str, tuple] = {
        "weight": (full, cat["weight"]),
        "drive": (full, d),
        "drives": (full, drives),
        "strength": (per_neuron, cat["strength"]),
        "score": (per_neuron, cat["score"]),
        "label": (per_neuron, label.astype(str)),
        "top_feature": (per_neuron, top.astype(np.int64)),
        "n_features": (per_neuron, drives.sum(axis=-1).astype(np.int64)),
        "n_neurons": (("step", "instance", "feature"), drives.sum(axis=-2).astype(np.int64)),
        "monosemantic_fraction": (per_instance, mono_fraction),
        "dead_fraction": (per_instance, n_dead / label.shape[-1]),
        "n_monosemantic": (per_instance, n_mono.astype(np.int64)),
        "n_polysemantic": (per_instance, n_poly.astype(np.int64)),
        "n_dead": (per_instance, n_dead.astype(np.int64)),
    }
    if out_parts:
        data["out_weight"] = (full, np.swapaxes(np.concatenate(out_parts, axis=0), -1, -2))
    coords = {name: c.compute() for name, c in ds.coords.items() if set(c.dims) <= set(full)}
    attrs = {
        "analysis": "neurons",
        "model": model,
        "sign": rule,
        "dead_threshold": t.dead_threshold,
        "mono_threshold": t.mono_threshold,
        "feature_fraction": t.feature_fraction,
        "sweep": list(ds.attrs.get("sweep", [])),
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)


# --- records (the JSON form; schema in docs/neurons.md) -----------------------------------------
def neuron_records(result: xr.Dataset) -> dict[str, Any]:
    """The JSON form of a :func:`neurons` result.

    ``model``, ``sign``, ``thresholds``; ``neurons``: one record per (step,
    instance, neuron) with ``step``, ``instance``, ``coords`` (sweep labels,
    seed), ``neuron``, ``label``, ``score`` (null when dead), ``strength``,
    ``features`` (the features driving it, strongest first) and their
    ``weights``; ``instances``: one record per (step, instance) with
    ``monosemantic_fraction``, ``dead_fraction``, the counts, and
    ``feature_neurons`` (feature -> the neurons it drives, as a list of
    ``{feature, neurons}``).

    >>> W = np.array([[[[0.0, 1.0], [0.8, 0.7]]]])
    >>> ds = xr.Dataset({"W": (("step", "instance", "hidden", "feature"), W)}, attrs={"model": "abs"})
    >>> ds["W_out"] = ds["W"].rename(hidden="h", feature="hidden").rename(h="feature")
    >>> [(n["neuron"], n["label"], n["features"]) for n in neuron_records(neurons(ds))["neurons"]]
    [(0, 'monosemantic', [1]), (1, 'polysemantic', [0, 1])]
    """
    sweep = [s for s in result.attrs.get("sweep", []) if s in result.coords]
    names = sweep + (
        ["seed"] if "seed" in result.coords and result["seed"].dims == ("instance",) else []
    )
    feature_ids = [_scalar(f) for f in result["feature"].values]
    neuron_ids = [_scalar(h) for h in result["hidden"].values]
    order = np.argsort(-result["drive"].values, axis=-1, kind="stable")
    neuron_rows, instance_rows = [], []
    for s, step in enumerate(result["step"].values.tolist()):
        r = result.isel(step=s)
        weight, drives = r["weight"].values, r["drives"].values
        label, score, strength = r["label"].values, r["score"].values, r["strength"].values
        for k, instance in enumerate(r["instance"].values.tolist()):
            coords = {name: _scalar(result[name].values[k]) for name in names}
            for h, neuron in enumerate(neuron_ids):
                chosen = [int(i) for i in order[s, k, h] if drives[k, h, i]]
                neuron_rows.append(
                    {
                        "step": step,
                        "instance": instance,
                        "coords": coords,
                        "neuron": neuron,
                        "label": str(label[k, h]),
                        "score": _scalar(round(float(score[k, h]), 6)),
                        "strength": _scalar(round(float(strength[k, h]), 6)),
                        "features": [feature_ids[i] for i in chosen],
                        "weights": [round(float(weight[k, h, i]), 6) for i in chosen],
                    }
                )
            instance_rows.append(
                {
                    "step": step,
                    "instance": instance,
                    "coords": coords,
                    **{
                        key: _scalar(r[key].values[k])
                        for key in (
                            "monosemantic_fraction",
                            "dead_fraction",
                            "n_monosemantic",
                            "n_polysemantic",
                            "n_dead",
                        )
                    },
                    "feature_neurons": [
                        {
                            "feature": feature_ids[i],
                            "neurons": [neuron_ids[h] for h in np.flatnonzero(drives[k, :, i])],
                        }
                        for i in range(len(feature_ids))
                    ],
                }
            )
    return {
        "model": result.attrs["model"],
        "sign": result.attrs["sign"],
        "thresholds": {
            key: result.attrs[key]
            for key in ("dead_threshold", "mono_threshold", "feature_fraction")
        },
        "neurons": neuron_rows,
        "instances": instance_rows,
    }
