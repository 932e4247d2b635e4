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
drives, writes
    Feature ``i`` drives neuron ``h`` (``drives[h, i]``: the neuron *reads*
    ``i``) when the neuron is not dead and
    ``drive[h, i] ≥ feature_fraction × maxⱼ drive[h, j]`` (default 0.3). The
    neuron *writes* output ``j`` (``writes[h, j]``) by the same rule on its
    output drives, the sign rule applied to ``W_out[j, h]`` (``abs``:
    ``|W_out[j, h]|``; ``hidden_relu`` is tied, ``W_out = Wᵀ``, so it writes
    exactly what it reads). ``top_feature``/``top_output``: the strongest of
    each; ``in_sign``/``out_sign``: the sign of the weight there; ``agrees``:
    ``top_output == top_feature`` with ``out_sign > 0``.
label
    ``dead`` when ``strength < dead_threshold`` (default 0.1; for ``abs`` also
    when the output weights ``‖W_out[:, h]‖ < dead_threshold``: the neuron
    reads but writes nothing); ``monosemantic`` when ``score ≤ mono_threshold``
    (default 1.5), it writes one output only and ``agrees``; ``crossed`` when
    the same holds but it writes another feature's output (or writes its own
    with a negative weight); ``polysemantic`` otherwise (several inputs, or
    several outputs).
feature_label
    How each feature is computed. A neuron is *clean* for ``i`` when it reads
    only ``i`` and writes only ``i``'s output, with a positive weight. ``none``:
    no neuron reads ``i``; ``shared``: a neuron reading ``i`` is not clean for
    it; otherwise, for signed inputs (``abs``, target ``|x|``), ``pair`` when
    its clean neurons read it with both signs (one fires for ``x > 0``, one for
    ``x < 0``) and ``one-sided`` when with one sign only (a broken pair: the
    other half of ``|x|`` is a constant); for unsigned inputs
    (``hidden_relu``) ``dedicated`` (one sign is the whole input range).
monosemantic_fraction, clean_fraction
    Per instance: monosemantic neurons / neurons that are not dead (NaN when
    all are dead); features labelled ``pair`` or ``dedicated`` / all features.
    ``dead_fraction`` is dead neurons / all neurons; the counts of each
    neuron and feature label.

Expected (paper, section "Superposition in a privileged basis"): dense
inputs give monosemantic neurons, sparser inputs polysemantic ones; the
``|x|`` model with n=3, m=6 uses a pair of neurons per feature, one for
``x > 0`` and one for ``x < 0``, each monosemantic. A pair whose two
neurons share a sign is not: the per-feature label says so.

>>> import numpy as np, xarray as xr
>>> W = np.array([[[[1.0, 0.0, 0.0], [0.0, 0.9, 0.8], [0.0, 0.0, 0.0]]]], np.float32)
>>> ds = xr.Dataset({"W": (("step", "instance", "hidden", "feature"), W)},
...                 attrs={"model": "hidden_relu"})
>>> result = neurons(ds)
>>> result["label"].values[0, 0].tolist()
['monosemantic', 'polysemantic', 'dead']
>>> float(result["monosemantic_fraction"][0, 0]), result["feature_label"].values[0, 0].tolist()
(0.5, ['dedicated', 'shared', 'shared'])
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
from toyanalysis._neurons import FEATURE_LABELS, NEURON_LABELS, drive, lift, participation
from toyanalysis.errors import ConfigError, StoreError
from toyanalysis.models import FAMILIES, ModelFamily
from toyanalysis.params import NeuronParams

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FEATURE_LABELS",
    "LABELS",
    "SIGN_RULES",
    "NeuronParams",
    "drive",
    "feature_frame",
    "instance_frame",
    "neuron_frame",
    "neuron_records",
    "neuron_text",
    "neurons",
    "output_scale",
    "participation",
    "resolve_model",
]

# the sign rules NeuronParams admits (defined there, once)
SIGN_RULES = next(opt.choices for path, _, opt in NeuronParams.options() if path == ("sign",))
LABELS = NEURON_LABELS
FULL = ("step", "instance", "hidden", "feature")
INSTANCE_KEYS = (
    "monosemantic_fraction",
    "dead_fraction",
    "n_monosemantic",
    "n_polysemantic",
    "n_crossed",
    "n_dead",
    "clean_fraction",
    *(f"n_{name.replace('-', '_')}" for name in FEATURE_LABELS),
)

# the per-neuron and per-feature variables a record reads
RECORD_VARIABLES = (
    "weight",
    "out_weight",
    "drive",
    "drives",
    "label",
    "score",
    "strength",
    "in_sign",
    "out_drive",
    "writes",
    "out_score",
    "top_output",
    "out_sign",
    "agrees",
    "feature_label",
    "n_positive",
    "n_negative",
    "n_foreign",
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
    - per (neuron, feature): ``drive``, ``drives`` (``h`` reads ``i``),
      ``out_drive``, ``writes`` (``h`` writes ``i``'s output), ``clean``;
    - per neuron: ``strength``, ``score``, ``label``, ``top_feature``,
      ``n_features``, ``out_score``, ``top_output``, ``in_sign``,
      ``out_sign``, ``agrees``;
    - per feature: ``n_neurons``, ``feature_label``, ``n_positive``,
      ``n_negative``, ``n_writers``, ``n_foreign``;
    - per instance: ``monosemantic_fraction``, ``dead_fraction``,
      ``clean_fraction`` and the counts of each label (``n_monosemantic``,
      ..., ``n_pair``, ..., ``n_none``); definitions in the module docstring.

    attrs: ``model``, ``sign`` (the rule used), the thresholds, ``sweep`` and
    ``params`` (the :class:`NeuronParams` as JSON).

    >>> import numpy as np, xarray as xr
    >>> W = np.zeros((1, 1, 6, 3), np.float32)          # |x| with n=3, m=6: a pair per feature
    >>> for i in range(3):
    ...     W[0, 0, 2 * i, i], W[0, 0, 2 * i + 1, i] = 1.0, -1.0
    >>> W_out = np.abs(np.swapaxes(W, -1, -2))
    >>> dims = ("step", "instance", "hidden", "feature")
    >>> out_dims = ("step", "instance", "feature", "hidden")
    >>> r = neurons(xr.Dataset({"W": (dims, W), "W_out": (out_dims, W_out)}, attrs={"model": "abs"}))
    >>> r["top_feature"].values[0, 0].tolist(), r["feature_label"].values[0, 0].tolist()
    ([0, 0, 1, 1, 2, 2], ['pair', 'pair', 'pair'])
    >>> W[0, 0, 1, 0] = 1.0          # a broken pair: neuron 1 fires for x > 0 too, like neuron 0
    >>> r = neurons(xr.Dataset({"W": (dims, W), "W_out": (out_dims, W_out)}, attrs={"model": "abs"}))
    >>> r["feature_label"].values[0, 0].tolist(), float(r["clean_fraction"][0, 0])
    (['one-sided', 'pair', 'pair'], 0.6666666666666666)
    """
    params = NeuronParams.resolve(params, changes)
    ds = as_store(ds, "neurons input")
    family = resolve_model(ds, model)
    rule = family.neuron_sign if params.sign == "auto" else params.sign
    ds, W, W_out = _weights(ds, family, steps)
    scale = None if W_out is None else output_scale(ds)
    outputs = lift(W, W_out, _kernel_params(params, family, str(rule)), scale)
    return _assemble(ds, W, W_out, outputs, params, family, str(rule))


def _kernel_params(params: NeuronParams, family: ModelFamily, rule: str) -> dict[str, Any]:
    """What the kernels take: the thresholds, the sign rule, whether inputs are signed."""
    return {
        "dead_threshold": params.dead_threshold,
        "mono_threshold": params.mono_threshold,
        "feature_fraction": params.feature_fraction,
        "sign": rule,
        "signed": family.signed_inputs,
    }


def output_scale(ds: xr.Dataset) -> xr.DataArray:
    """``√(I_j / maxᵢ Iᵢ)`` per (instance, feature): how much a write into output ``j`` weighs.

    The loss weighs output ``j`` by its importance ``I_j``, so a write ``w``
    into it costs ``I_j w²``; the output drives of an untied model are
    ``|W_out[j, h]|`` times this. All ones when the store has no
    ``importance``.
    """
    if "importance" not in ds.variables:
        return xr.DataArray(np.ones(ds.sizes["feature"]), dims=("feature",))
    importance = ds["importance"].reset_coords(drop=True)
    importance = importance.drop_vars([c for c in importance.coords], errors="ignore")
    peak = importance.max("feature")
    return np.sqrt(importance / xr.where(peak > 0, peak, 1.0)).astype(np.float64)


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


def _strongest(values: np.ndarray, chosen: np.ndarray, order: np.ndarray) -> list[int]:
    """The chosen indices, strongest first (``order``: argsort of ``-values``)."""
    return [int(i) for i in order if chosen[i]]


def _neuron_row(r: dict[str, np.ndarray], k: int, h: int, ids: list[Any]) -> dict[str, Any]:
    """The record of neuron ``h`` of instance ``k`` (``r``: the step's arrays; ``ids``: feature ids)."""
    reads = _strongest(r["drive"][k, h], r["drives"][k, h], r["order"][k, h])
    writes = _strongest(r["out_drive"][k, h], r["writes"][k, h], r["out_order"][k, h])
    top_out = int(r["top_output"][k, h])
    return {
        "label": str(r["label"][k, h]),
        "score": json_scalar(round(float(r["score"][k, h]), 6)),
        "strength": json_scalar(round(float(r["strength"][k, h]), 6)),
        "features": [ids[i] for i in reads],
        "weights": [round(float(r["weight"][k, h, i]), 6) for i in reads],
        "in_sign": int(r["in_sign"][k, h]),
        "out_score": json_scalar(round(float(r["out_score"][k, h]), 6)),
        "output": None if top_out < 0 else ids[top_out],
        "out_sign": int(r["out_sign"][k, h]),
        "outputs": [ids[i] for i in writes],
        "out_weights": [round(float(r["out"][k, h, i]), 6) for i in writes],
        "agrees": bool(r["agrees"][k, h]),
    }


def _feature_rows(
    r: dict[str, np.ndarray], k: int, ids: list[Any], neuron_ids: list[Any]
) -> list[dict[str, Any]]:
    """Per feature of instance ``k``: its label, the neurons reading it and writing its output."""
    return [
        {
            "feature": ids[i],
            "label": str(r["feature_label"][k, i]),
            "neurons": [neuron_ids[h] for h in np.flatnonzero(r["drives"][k, :, i])],
            "n_positive": int(r["n_positive"][k, i]),
            "n_negative": int(r["n_negative"][k, i]),
            "writers": [neuron_ids[h] for h in np.flatnonzero(r["writes"][k, :, i])],
            "n_foreign": int(r["n_foreign"][k, i]),
        }
        for i in range(len(ids))
    ]


def _step_records(
    r: xr.Dataset, step: Any, names: list[str], result: xr.Dataset
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The neuron and instance records of one step (``r``: the result at that step, loaded)."""
    feature_ids = [json_scalar(f) for f in result["feature"].values]
    neuron_ids = [json_scalar(h) for h in result["hidden"].values]
    arrays = {str(name): r[name].values for name in r.data_vars}
    arrays["out"] = arrays.get("out_weight", arrays["weight"])
    arrays["order"] = np.argsort(-arrays["drive"], axis=-1, kind="stable")
    arrays["out_order"] = np.argsort(-arrays["out_drive"], axis=-1, kind="stable")
    neuron_rows, instance_rows = [], []
    for k, instance in enumerate(r["instance"].values.tolist()):
        head = {
            "step": step,
            "instance": instance,
            "coords": {name: json_scalar(result[name].values[k]) for name in names},
        }
        for h, neuron in enumerate(neuron_ids):
            neuron_rows.append({**head, "neuron": neuron, **_neuron_row(arrays, k, h, feature_ids)})
        instance_rows.append(
            {
                **head,
                **{key: json_scalar(arrays[key][k]) for key in INSTANCE_KEYS},
                "feature_neurons": _feature_rows(arrays, k, feature_ids, neuron_ids),
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
    keep = [name for name in RECORD_VARIABLES if name in result.data_vars] + list(INSTANCE_KEYS)
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


def _joined(values: list[Any], sep: str = " ") -> str:
    return sep.join(map(str, values))


def neuron_frame(result: xr.Dataset) -> pd.DataFrame:
    """One row per (step, instance, neuron): the tidy form (what ``--format csv`` writes).

    Columns ``step``, ``instance``, the sweep labels and seed, ``neuron``,
    ``label``, ``score``, ``strength``, ``features`` and ``weights``
    (space-separated, strongest first), ``in_sign``, ``out_score``,
    ``output``, ``out_sign``, ``outputs`` and ``out_weights`` (space-separated,
    strongest first), ``agrees``, and the instance's ``monosemantic_fraction``
    and ``clean_fraction``.
    """
    import pandas as pd

    records = neuron_records(result)
    fractions = {
        (row["step"], row["instance"]): {
            key: row[key] for key in ("monosemantic_fraction", "clean_fraction")
        }
        for row in records["instances"]
    }
    plain = ("neuron", "label", "score", "strength")
    out = ("in_sign", "out_score", "output", "out_sign")
    rows = [
        {
            **_flat(row),
            **{key: row[key] for key in plain},
            "features": _joined(row["features"]),
            "weights": _joined(row["weights"]),
            **{key: row[key] for key in out},
            "outputs": _joined(row["outputs"]),
            "out_weights": _joined(row["out_weights"]),
            "agrees": row["agrees"],
            **fractions[(row["step"], row["instance"])],
        }
        for row in records["neurons"]
    ]
    return pd.DataFrame(rows)


def _feature_table(records: dict[str, Any], sep: str = " ") -> list[dict[str, Any]]:
    """The per-feature rows; lists joined by ``sep`` (``","`` for text, where none is ``-``)."""
    empty = "-" if sep == "," else ""
    return [
        {
            **_flat(row),
            "feature": entry["feature"],
            "label": entry["label"],
            "neurons": _joined(entry["neurons"], sep) or empty,
            "n_positive": entry["n_positive"],
            "n_negative": entry["n_negative"],
            "writers": _joined(entry["writers"], sep) or empty,
            "n_foreign": entry["n_foreign"],
        }
        for row in records["instances"]
        for entry in row["feature_neurons"]
    ]


def feature_frame(result: xr.Dataset) -> pd.DataFrame:
    """One row per (step, instance, feature): how the neurons compute it.

    Columns ``step``, ``instance``, the sweep labels and seed, ``feature``,
    ``label`` (``pair``, ``dedicated``, ``one-sided``, ``shared``, ``none``),
    ``neurons`` (those reading it, space-separated), ``n_positive`` and
    ``n_negative`` (of them, by the sign they read it with), ``writers``
    (neurons writing its output) and ``n_foreign`` (writers not reading it).
    """
    import pandas as pd

    return pd.DataFrame(_feature_table(neuron_records(result)))


def instance_frame(result: xr.Dataset) -> pd.DataFrame:
    """One row per (step, instance): the sweep labels and seed, the fractions and counts."""
    import pandas as pd

    records = neuron_records(result)
    return pd.DataFrame(
        [{**_flat(row), **{k: row[k] for k in INSTANCE_KEYS}} for row in records["instances"]]
    )


def _summary_keys(model: str) -> list[str]:
    """The per-instance columns of the text: the feature labels this family can have."""
    absent = {"n_dedicated"} if FAMILIES[model].signed_inputs else {"n_pair", "n_one_sided"}
    return [k for k in INSTANCE_KEYS if k != "dead_fraction" and k not in absent]


def neuron_text(result: xr.Dataset) -> str:
    """A readable report: one row per (instance, neuron), one per (instance, feature), one per instance.

    The ``step`` column is left out when the result has one step (the title
    names it); scores and strengths are rounded to 3 digits, the features a
    neuron reads (``features``, signed by the weight: ``-2`` reads feature 2
    with a negative weight) and the outputs it writes (``outputs``, signed the
    same way) joined by commas, ``-`` for none.
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
            "features": _signed(row["features"], row["weights"]),
            "outputs": _signed(row["outputs"], row["out_weights"]),
            "agrees": row["agrees"],
        }
        for row in records["neurons"]
    ]
    keys = _summary_keys(records["model"])
    summary = [{**_flat(row), **{k: row[k] for k in keys}} for row in records["instances"]]
    features = _feature_table(records, ",")
    at = f"step {steps[0]}" if one else describe_steps(steps)
    title = f"neurons at {at} ({records['model']}, sign={records['sign']})"
    return "\n\n".join(
        [
            _text(title, neurons_, drop),
            _text("per feature", features, drop),
            _text("per instance", summary, drop),
        ]
    )


def _signed(ids: list[Any], weights: list[float]) -> str:
    """``+1,-2``: feature 1 with a positive weight, 2 with a negative one; ``-`` for none."""
    return ",".join(f"{'-' if w < 0 else '+'}{i}" for i, w in zip(ids, weights, strict=True)) or "-"


def _text(title: str, rows: list[dict[str, Any]], drop: list[str]) -> str:
    import pandas as pd

    body = pd.DataFrame(rows).drop(columns=drop).to_string(index=False) if rows else "(none)"
    return f"{title}\n{body}"
