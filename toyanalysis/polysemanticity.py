"""Neurons of a privileged basis: which features drive each one, and how many.

In the tied models (``relu_output``, ``linear``) only ``WᵀW`` matters, so a
hidden dimension means nothing by itself. With a ReLU on the hidden layer
(``hidden_relu``: ``h = ReLU(W x)``; ``abs``: ``h = ReLU(W₁ x)``) the basis is
*privileged*: neuron ``h`` fires for the inputs its weight row ``W[h, :]``
responds to, and we can ask whether it answers to one feature
(*monosemantic*) or several (*polysemantic*).

Definitions (the thresholds are the fields of :class:`~toyanalysis.params.NeuronParams`,
given whole or by name, and recorded in the result's attrs):

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
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from toyanalysis._labels import (
    as_store,
    describe_steps,
    json_scalar,
    model_of,
    select_steps,
    sweep_names,
)
from toyanalysis._neurons import drive, lift, participation
from toyanalysis.errors import ConfigError, StoreError
from toyanalysis.models import FAMILIES, ModelFamily
from toyanalysis.params import NeuronParams

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "LABELS",
    "SIGN_RULES",
    "NeuronParams",
    "drive",
    "instance_frame",
    "neuron_frame",
    "neuron_records",
    "neuron_text",
    "neurons",
    "participation",
    "resolve_model",
]

# the sign rules NeuronParams admits (defined there, once)
SIGN_RULES = next(opt.choices for path, _, opt in NeuronParams.options() if path == ("sign",))
LABELS = ("monosemantic", "polysemantic", "dead")
FULL = ("step", "instance", "hidden", "feature")
INSTANCE_KEYS = (
    "monosemantic_fraction",
    "dead_fraction",
    "n_monosemantic",
    "n_polysemantic",
    "n_dead",
)


def _the_store_has(recorded: np.ndarray) -> str:
    return f"; the store has {recorded.size} steps from {recorded[0]} to {recorded[-1]}"


def resolve_model(ds: xr.Dataset, model: str | None) -> ModelFamily:
    """The model family to analyse: ``model`` if given, else ``ds.attrs["model"]``; privileged."""
    try:
        chosen: ModelFamily | None = model_of(ds, model)
    except ConfigError:
        chosen = None
    if chosen is None or not chosen.privileged:
        name = chosen.name if chosen is not None else (model or ds.attrs.get("model"))
        source = "model" if model is not None else "the store's attrs['model']"
        privileged = " or ".join(f.name for f in FAMILIES.values() if f.privileged)
        raise ConfigError(
            f"neurons need a privileged basis (model {privileged}), but {source} is "
            f"{name!r}; pass model= if the store's model is wrong"
        )
    return chosen


def neurons(
    ds: Any,
    params: NeuronParams | None = None,
    *,
    steps: Sequence[int] | int | str | None = None,
    model: str | None = None,
    **changes: Any,
) -> xr.Dataset:
    """Per neuron: the features driving it, its polysemanticity score and label.

    ``ds`` is a store Dataset (``W (step, instance, hidden, feature)``; ``W_out``
    for ``abs``). ``params`` is a :class:`~toyanalysis.params.NeuronParams`
    (or its fields by name: ``neurons(ds, mono_threshold=1.7)``). ``steps``
    selects recorded steps by value, ``"last"`` or ``"all"`` (default: all).
    On a dask-backed store (``open_store``) the result is lazy and is
    computed chunk by chunk; ``.compute()`` gives the eager result.
    Returns a Dataset with dims ``(step, instance, hidden, feature)``:

    - ``weight (step, instance, hidden, feature)``: the store's ``W`` itself
      (not a copy; lazy on a dask-backed store); ``out_weight`` (``abs``
      only): the store's ``W_out[i, h]``, transposed the same way;
    - ``drive``, ``drives (step, instance, hidden, feature)``: the drive and
      whether feature ``i`` drives neuron ``h`` (see the module docstring);
    - ``strength``, ``score``, ``label``, ``top_feature``, ``n_features``
      ``(step, instance, hidden)``;
    - ``n_neurons (step, instance, feature)``: neurons each feature drives;
    - ``monosemantic_fraction``, ``dead_fraction``, ``n_monosemantic``,
      ``n_polysemantic``, ``n_dead`` ``(step, instance)``.

    attrs: ``model``, ``sign`` (the rule used), the thresholds, ``sweep`` and
    ``params`` (the :class:`NeuronParams` as JSON).

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
    params = NeuronParams.resolve(params, changes)
    ds = as_store(ds, "neurons input")
    family = resolve_model(ds, model)
    rule = family.neuron_sign if params.sign == "auto" else params.sign
    ds, W, W_out = _weights(ds, family, steps)
    kernel_params = {
        "dead_threshold": params.dead_threshold,
        "mono_threshold": params.mono_threshold,
        "feature_fraction": params.feature_fraction,
        "sign": rule,
    }
    outputs = lift(W, W_out, kernel_params)
    return _assemble(ds, W, W_out, outputs, params, family, str(rule))


def _weights(
    ds: xr.Dataset, family: ModelFamily, steps: Any
) -> tuple[xr.Dataset, xr.DataArray, xr.DataArray | None]:
    """The selected steps, and the weights the kernel reads: ``W`` and, if untied, ``W_out``."""
    if not family.tied and "W_out" not in ds.data_vars:
        raise StoreError(
            f"neurons: model {family.name} needs the output weights W_out "
            "(step, instance, feature, hidden)"
        )
    ds = select_steps(ds, steps, _the_store_has)
    W = ds["W"].transpose(*FULL)
    W_out = None if family.tied else ds["W_out"].transpose("step", "instance", "feature", "hidden")
    return ds, W, W_out


def _assemble(
    ds: xr.Dataset,
    W: xr.DataArray,
    W_out: xr.DataArray | None,
    outputs: dict[str, xr.DataArray],
    params: NeuronParams,
    family: ModelFamily,
    rule: str,
) -> xr.Dataset:
    data: dict[str, tuple[tuple[str, ...], Any]] = {"weight": (FULL, W.data)}
    data.update({name: (tuple(map(str, out.dims)), out.data) for name, out in outputs.items()})
    if W_out is not None:
        data["out_weight"] = (FULL, W_out.transpose(*FULL).data)
    coords = {name: c.compute() for name, c in ds.coords.items() if set(c.dims) <= set(FULL)}
    attrs = {
        "analysis": "neurons",
        "model": family.name,
        "sign": rule,
        "dead_threshold": params.dead_threshold,
        "mono_threshold": params.mono_threshold,
        "feature_fraction": params.feature_fraction,
        "sweep": list(ds.attrs.get("sweep", [])),
        "params": params.to_json(),
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)


# --- records (the JSON form; schema in docs/neurons.md) -----------------------------------------
def _coord_names(result: xr.Dataset) -> list[str]:
    """The instance labels a record carries: the sweep, then the seed."""
    seed = "seed" in result.coords and result["seed"].dims == ("instance",)
    return sweep_names(result) + (["seed"] if seed else [])


def _step_records(
    r: xr.Dataset, step: Any, names: list[str], result: xr.Dataset
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The neuron and instance records of one step (``r``: the result at that step, loaded)."""
    feature_ids = [json_scalar(f) for f in result["feature"].values]
    neuron_ids = [json_scalar(h) for h in result["hidden"].values]
    order = np.argsort(-r["drive"].values, axis=-1, kind="stable")
    weight, drives = r["weight"].values, r["drives"].values
    label, score, strength = r["label"].values, r["score"].values, r["strength"].values
    neuron_rows, instance_rows = [], []
    for k, instance in enumerate(r["instance"].values.tolist()):
        coords = {name: json_scalar(result[name].values[k]) for name in names}
        for h, neuron in enumerate(neuron_ids):
            chosen = [int(i) for i in order[k, h] if drives[k, h, i]]
            neuron_rows.append(
                {
                    "step": step,
                    "instance": instance,
                    "coords": coords,
                    "neuron": neuron,
                    "label": str(label[k, h]),
                    "score": json_scalar(round(float(score[k, h]), 6)),
                    "strength": json_scalar(round(float(strength[k, h]), 6)),
                    "features": [feature_ids[i] for i in chosen],
                    "weights": [round(float(weight[k, h, i]), 6) for i in chosen],
                }
            )
        carriers = [
            {
                "feature": feature_ids[i],
                "neurons": [neuron_ids[h] for h in np.flatnonzero(drives[k, :, i])],
            }
            for i in range(len(feature_ids))
        ]
        instance_rows.append(
            {
                "step": step,
                "instance": instance,
                "coords": coords,
                **{key: json_scalar(r[key].values[k]) for key in INSTANCE_KEYS},
                "feature_neurons": carriers,
            }
        )
    return neuron_rows, instance_rows


def _step_blocks(result: xr.Dataset) -> list[tuple[int, int]]:
    """Ranges of steps computed together: the chunks of a lazy result, else all at once."""
    chunks = result["drive"].chunks
    sizes = list(chunks[0]) if chunks is not None else [result.sizes["step"]]
    edges = np.cumsum([0, *sizes]).tolist()
    return list(pairwise(edges))


def neuron_records(result: xr.Dataset) -> dict[str, Any]:
    """The JSON form of a :func:`neurons` result (a lazy one is computed chunk by chunk).

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
    names = _coord_names(result)
    keep = ["weight", "drive", "drives", "label", "score", "strength", *INSTANCE_KEYS]
    steps = result["step"].values.tolist()
    neuron_rows: list[dict[str, Any]] = []
    instance_rows: list[dict[str, Any]] = []
    for start, stop in _step_blocks(result):
        block = result[keep].isel(step=slice(start, stop)).compute()
        for s in range(stop - start):
            rows, summaries = _step_records(block.isel(step=s), steps[start + s], names, result)
            neuron_rows += rows
            instance_rows += summaries
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


# --- tables ------------------------------------------------------------------------------------
def _flat(row: dict[str, Any]) -> dict[str, Any]:
    return {"step": row["step"], "instance": row["instance"], **row["coords"]}


def neuron_frame(result: xr.Dataset) -> pd.DataFrame:
    """One row per (step, instance, neuron): the tidy form (what ``--format csv`` writes).

    Columns ``step``, ``instance``, the sweep labels and seed, ``neuron``,
    ``label``, ``score``, ``strength``, ``features`` and ``weights``
    (space-separated, strongest first) and the instance's
    ``monosemantic_fraction``.
    """
    import pandas as pd

    records = neuron_records(result)
    fractions = {
        (row["step"], row["instance"]): row["monosemantic_fraction"] for row in records["instances"]
    }
    rows = [
        {
            **_flat(row),
            **{key: row[key] for key in ("neuron", "label", "score", "strength")},
            "features": " ".join(map(str, row["features"])),
            "weights": " ".join(map(str, row["weights"])),
            "monosemantic_fraction": fractions[(row["step"], row["instance"])],
        }
        for row in records["neurons"]
    ]
    return pd.DataFrame(rows)


def instance_frame(result: xr.Dataset) -> pd.DataFrame:
    """One row per (step, instance): the sweep labels and seed, the fractions and counts."""
    import pandas as pd

    records = neuron_records(result)
    return pd.DataFrame(
        [{**_flat(row), **{k: row[k] for k in INSTANCE_KEYS}} for row in records["instances"]]
    )


def neuron_text(result: xr.Dataset) -> str:
    """A readable report: one row per (instance, neuron), then one per instance.

    The ``step`` column is left out when the result has one step (the title
    names it); scores and strengths are rounded to 3 digits, the driving
    features joined by commas (``-`` for none).
    """
    records = neuron_records(result)
    steps = np.asarray(result["step"].values)
    one = steps.size == 1
    drop = ["step"] if one else []
    neurons_ = [
        {
            **_flat(row),
            "neuron": row["neuron"],
            "label": row["label"],
            "score": None if row["score"] is None else round(row["score"], 3),
            "strength": round(row["strength"], 3),
            "features": ",".join(map(str, row["features"])) or "-",
        }
        for row in records["neurons"]
    ]
    summary = [
        {**_flat(row), **{k: row[k] for k in INSTANCE_KEYS if k != "dead_fraction"}}
        for row in records["instances"]
    ]
    at = f"step {steps[0]}" if one else describe_steps(steps)
    title = f"neurons at {at} ({records['model']}, sign={records['sign']})"
    return f"{_text(title, neurons_, drop)}\n\n{_text('per instance', summary, drop)}"


def _text(title: str, rows: list[dict[str, Any]], drop: list[str]) -> str:
    import pandas as pd

    body = pd.DataFrame(rows).drop(columns=drop).to_string(index=False) if rows else "(none)"
    return f"{title}\n{body}"
