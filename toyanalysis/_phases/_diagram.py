"""Phase diagrams over sweeps: what one extra feature does in each cell of seeds."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from toyanalysis._labels import json_scalar
from toyanalysis._phases._inputs import (
    classification_for,
    compared_loss,
    intake,
    threshold_attrs,
)
from toyanalysis.errors import ConfigError
from toyanalysis.params import ClassifyParams, DiagramParams

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

__all__ = [
    "LABELS",
    "diagram_cells",
    "diagram_grid",
    "diagram_records",
    "diagram_text",
    "phase_diagram",
]

UNLEARNED, SUPERPOSED, DEDICATED = "unlearned", "superposed", "dedicated"
LABELS = (UNLEARNED, SUPERPOSED, DEDICATED)
SEED_RULE = (
    "the lowest-loss seed's label and configuration (the majority of the seeds when there is "
    "no loss); agreement: the fraction of seeds with them; outcomes: the fraction of seeds per "
    "label and configuration with the gap of its best loss to the cell's best"
)
CELL_VARS = (
    "label",
    "agreement",
    "configuration",
    "configuration_agreement",
    "n_seeds",
    "best_instance",
    "loss",
    "loss_error",
    "majority_label",
    "outcome_fraction",
    "outcome_gap",
)


def phase_diagram(
    ds: xr.Dataset,
    params: DiagramParams | None = None,
    *,
    classification: xr.Dataset | None = None,
    axes: Sequence[str] | None = None,
    feature: Any = None,
    step: int | None = None,
    **changes: Any,
) -> xr.Dataset:
    """Label each cell of a sweep by what its extra feature does and by its configuration.

    ``params``: a :class:`~toyanalysis.params.DiagramParams` (the defaults
    when None), changed by keyword by leaf name (``loss_records=5``,
    ``loss="stored"``, ``norm_threshold=0.4``). ``axes``: the sweep
    coordinates (1-D ``instance`` coords; default ``ds.attrs["sweep"]``).
    Instances sharing all axis values are the seeds of one cell.
    ``feature``: the extra feature's label (default: the one feature whose
    importance or density varies across instances on its own, else the
    last). ``step``: the recorded step to judge (default the last). Seeds are
    ranked by the expected loss (``params.loss``; the mean of the last
    ``loss_records`` stored losses where the store has no config): a cell's
    ``label`` and ``configuration`` are its lowest-loss seed's (the optimum
    found), ``outcome_fraction`` / ``outcome_gap`` say how often each label
    came out and how much worse its best seed is (what training from random
    init finds); boundaries follow the optimal labels. Without any loss the
    majority of the seeds decides. Returns a Dataset with dims ``cell``,
    ``boundary``, ``outcome``, ``instance`` (``docs/phases.md``);
    :func:`diagram_grid` puts it on the grid.

    >>> import numpy as np
    >>> from toyanalysis import testing
    >>> dedicated, digon = testing.tegum("dedicated", dead=1), testing.tegum("digon")
    >>> W = np.stack([dedicated] * 3 + [digon] * 3)[None]  # 2 cells x 3 seeds, n=2, m=1
    >>> ds = testing.as_dataset(W, sweep={"density_x": [1.0] * 3 + [0.1] * 3})
    >>> r = phase_diagram(ds, feature=1)
    >>> r["label"].values.tolist(), round(float(r["boundary_position"][0]), 3)
    (['superposed', 'unlearned'], 0.316)
    """
    params = DiagramParams.resolve(params, changes)
    ds = intake(ds)
    axis_names = _axes(ds, axes)
    chosen = int(ds["step"].values[-1]) if step is None else int(step)
    cls, made_with = classification_for(
        ds, classification, params.classify, steps=[chosen], who="phase_diagram"
    )
    cls = cls.isel(step=0)
    f, how = _extra_feature(ds, feature)
    loss, source = _seed_loss(ds, cls, chosen, params)
    result = _diagram(cls, ds, axis_names, _extra_labels(cls, f), loss)
    result.attrs.update(
        _attrs(params, made_with, axis_names, json_scalar(cls["feature"].values[f]), how, chosen)
    )
    result.attrs.update(has_loss=loss is not None, loss_source=source)
    return result


def _seed_loss(
    ds: xr.Dataset, cls: xr.Dataset, step: int, params: DiagramParams
) -> tuple[tuple[np.ndarray, np.ndarray] | None, str]:
    """The loss seeds are ranked by and its error ``(instance,)`` at ``step``; its source."""
    loss, error, source = compared_loss(ds, cls.expand_dims("step"), params.loss, params.eval_loss)
    if source.startswith("store"):  # the training loss: averaged over the last records
        mean = _final_loss(ds, step, params.loss_records, cls)
        return (None if mean is None else (mean, np.full(len(mean), np.nan))), source
    if loss is None:
        return None, source
    return (loss[0], np.full(loss.shape[1], np.nan) if error is None else error[0]), source


def _attrs(
    params: DiagramParams,
    made_with: ClassifyParams | None,
    axis_names: list[str],
    feature: Any,
    how: str,
    step: int,
) -> dict[str, Any]:
    stored = params if made_with is None else params.replace(classify=made_with)
    return {
        "analysis": "phase_diagram",
        "axes": list(axis_names),
        "feature": feature,
        "feature_rule": how,
        "step": step,
        "loss_records": params.loss_records,
        "seed_rule": SEED_RULE,
        **threshold_attrs(made_with),
        "params": stored.to_json(),
    }


def _axes(ds: xr.Dataset, axes: Sequence[str] | None) -> list[str]:
    names = list(axes) if axes is not None else list(ds.attrs.get("sweep", []) or [])
    if not names:
        raise ConfigError(
            "no sweep coordinates: the store's attrs['sweep'] is empty; name them with axes="
        )
    for name in names:
        if name not in ds.coords or ds[name].dims != ("instance",):
            have = [
                str(c) for c, v in ds.coords.items() if v.dims == ("instance",) and c != "instance"
            ]
            raise ConfigError(
                f"sweep axis {name!r} is not a 1-D instance coordinate (have: {', '.join(have) or 'none'})"
            )
        if not np.issubdtype(ds[name].dtype, np.number):
            raise ConfigError(f"sweep axis {name!r} is not numeric (dtype {ds[name].dtype})")
    if len(set(names)) != len(names):
        raise ConfigError(f"sweep axes repeat: {names}")
    return names


def _singled(ds: xr.Dataset) -> set[int]:
    """Features whose importance or density column varies across instances on its own."""
    singled: set[int] = set()
    for name in ("importance", "density"):
        if name not in ds.coords:
            continue
        values = np.asarray(ds[name].transpose("instance", "feature").values, dtype=np.float64)
        for f in range(values.shape[1]):
            column = values[:, f]
            varies = not np.allclose(column, column[0])
            shared = any(
                np.allclose(column, values[:, g]) for g in range(values.shape[1]) if g != f
            )
            if varies and not shared:
                singled.add(f)
    return singled


def _extra_feature(ds: xr.Dataset, feature: Any) -> tuple[int, str]:
    """Index of the extra feature and how it was chosen."""
    labels = ds["feature"].values.tolist()
    if feature is not None:
        if feature not in labels:
            raise ConfigError(
                f"feature {feature!r} is not in the store (features: {labels[0]}..{labels[-1]})"
            )
        return labels.index(feature), "given"
    singled = _singled(ds)
    if len(singled) > 1:
        names = ", ".join(str(labels[f]) for f in sorted(singled))
        raise ConfigError(
            f"several features ({names}) have their own importance/density sweep; choose one with feature="
        )
    if singled:
        return singled.pop(), "varies across instances"
    return len(labels) - 1, "last feature (no feature varies on its own)"


def _extra_labels(cls: xr.Dataset, f: int) -> np.ndarray:
    """``unlearned`` / ``superposed`` / ``dedicated`` per instance for feature index ``f``.

    A represented feature is superposed when other features share its
    component of the overlap graph, dedicated when it is alone in it.
    """
    component = np.asarray(cls["component"].transpose("instance", "feature").values, np.int64)
    kind = cls["kind"].transpose("instance", "feature").values[:, f].astype(str)
    out = np.empty(len(component), dtype=object)
    for k, c in enumerate(component[:, f]):
        if c < 0:
            out[k] = str(kind[k])
        else:
            out[k] = SUPERPOSED if (component[k] == c).sum() >= 2 else DEDICATED
    return out.astype(str)


def _final_loss(source: xr.Dataset, step: int, records: int, cls: xr.Dataset) -> np.ndarray | None:
    if "loss" not in source.data_vars:
        return None
    loss = source["loss"].sel(step=source["step"] <= step).isel(step=slice(-records, None))
    loss = loss.sel(instance=cls["instance"].values)
    values = np.asarray(loss.transpose("step", "instance").values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(values).all(axis=0), values.mean(axis=0), np.nan)


def _majority(labels: list[str]) -> tuple[str, int]:
    """Most common label; ties go to the label of the earliest entry (best loss first)."""
    counts = Counter(labels)
    top = max(counts.values())
    return next(label for label in labels if counts[label] == top), top


def _gaps(values: list[str], ranked: list[int], loss: np.ndarray, best: float) -> dict[str, Any]:
    """Per distinct value: the fraction of seeds with it and the relative gap of its best
    seed's loss to the cell's best (NaN without a loss)."""
    out = {}
    for value in dict.fromkeys(values):  # in loss order
        first = ranked[values.index(value)]
        with np.errstate(invalid="ignore", divide="ignore"):
            gap = (loss[first] - best) / best if best > 0 else loss[first] - best
        out[value] = (values.count(value) / len(values), float(gap))
    return out


def _cell(
    members: list[int], labels: np.ndarray, configs: np.ndarray, loss: np.ndarray
) -> dict[str, Any]:
    """One cell: the lowest-loss seed's labels (majority without a loss) and the outcomes."""
    # rank by loss, missing loss last (worst); stable in instance order
    ranked = sorted(members, key=lambda k: (not np.isfinite(loss[k]), np.nan_to_num(loss[k])))
    has_loss = bool(np.isfinite(loss[ranked[0]]))
    cell_labels, cell_configs = [labels[k] for k in ranked], [configs[k] for k in ranked]
    majority, _ = _majority(cell_labels)
    label = cell_labels[0] if has_loss else majority
    config = cell_configs[0] if has_loss else _majority(cell_configs)[0]
    best = float(loss[ranked[0]])
    outcomes = _gaps(cell_labels, ranked, loss, best)
    return {
        "label": label,
        "agreement": cell_labels.count(label) / len(ranked),
        "configuration": config,
        "configuration_agreement": cell_configs.count(config) / len(ranked),
        "n_seeds": len(members),
        "best": ranked[0] if has_loss else -1,
        "loss": best,
        "majority_label": majority,
        "outcome_fraction": [outcomes.get(x, (0.0, np.nan))[0] for x in LABELS],
        "outcome_gap": [outcomes.get(x, (0.0, np.nan))[1] for x in LABELS],
    }


def _diagram(
    cls: xr.Dataset,
    ds: xr.Dataset,
    axis_names: list[str],
    labels: np.ndarray,
    loss: tuple[np.ndarray, np.ndarray] | None,
) -> xr.Dataset:
    import xarray as xr

    instances = cls["instance"].values
    values = np.stack(
        [np.asarray(ds[a].sel(instance=instances).values, np.float64) for a in axis_names], axis=1
    )  # (instance, axis)
    keys, cell_of = np.unique(values, axis=0, return_inverse=True)
    cell_of = np.asarray(cell_of).reshape(-1)
    configs = cls["summary"].values.astype(str)
    nan = np.full(len(labels), np.nan)
    inst_loss, inst_error = loss if loss is not None else (nan, nan)
    rows = []
    for c in range(len(keys)):
        row = _cell(np.flatnonzero(cell_of == c).tolist(), labels, configs, inst_loss)
        row["best_instance"] = instances[row["best"]] if row["best"] >= 0 else -1
        row["loss_error"] = inst_error[row["best"]] if row["best"] >= 0 else np.nan
        rows.append(row)
    data = _cell_vars(rows)
    data.update(_boundary_vars(_boundaries(keys, axis_names, rows)))
    data.update(
        instance_label=("instance", labels),
        instance_configuration=("instance", configs),
        instance_loss=("instance", inst_loss),
        instance_loss_error=("instance", inst_error),
        cell_index=("instance", cell_of.astype(np.int64)),
    )
    coords: dict[str, Any] = {"cell": np.arange(len(keys)), "instance": instances}
    coords.update({name: ("cell", keys[:, j]) for j, name in enumerate(axis_names)})
    coords["outcome"] = list(LABELS)
    if "seed" in cls.coords and cls["seed"].dims == ("instance",):
        coords["seed"] = ("instance", np.asarray(cls["seed"].values))
    return xr.Dataset(data, coords=coords)


def _cell_vars(rows: list[dict[str, Any]]) -> dict[str, Any]:
    dtypes = {"label": str, "configuration": str, "majority_label": str, "n_seeds": np.int64}
    out = {}
    for name in CELL_VARS:
        values = [row[name] for row in rows]
        dtype = None if name == "best_instance" else dtypes.get(name, np.float64)
        dims = ("cell", "outcome") if name.startswith("outcome_") else ("cell",)
        out[name] = (dims, np.array(values, dtype=dtype))
    return out


def _boundary_vars(rows: list[dict[str, Any]]) -> dict[str, Any]:
    keys = {"axis": str, "kind": str, "lower": np.float64, "upper": np.float64}
    keys.update({"position": np.float64, "from": str, "to": str})
    keys.update({"cell_lower": np.int64, "cell_upper": np.int64})
    return {
        f"boundary_{key}": (("boundary",), np.array([r[key] for r in rows], dtype=dtype))
        for key, dtype in keys.items()
    }


def _boundaries(
    keys: np.ndarray, axis_names: list[str], cells: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Neighbouring cells along each axis (other axes equal) whose label or configuration differ."""
    rows = []
    for j, axis in enumerate(axis_names):
        others = [i for i in range(keys.shape[1]) if i != j]
        groups: dict[tuple[float, ...], list[int]] = {}
        for c in range(len(keys)):
            groups.setdefault(tuple(keys[c, others]), []).append(c)
        for line in groups.values():
            line = sorted(line, key=lambda c: keys[c, j])
            for a, b in itertools.pairwise(line):
                lower, upper = float(keys[a, j]), float(keys[b, j])
                position = (
                    math.sqrt(lower * upper) if lower > 0 and upper > 0 else (lower + upper) / 2
                )
                for kind in ("label", "configuration"):
                    if cells[a][kind] != cells[b][kind]:
                        rows.append(
                            {
                                "axis": axis,
                                "kind": kind,
                                "lower": lower,
                                "upper": upper,
                                "position": position,
                                "from": cells[a][kind],
                                "to": cells[b][kind],
                                "cell_lower": a,
                                "cell_upper": b,
                            }
                        )
    return rows


# --------------------------------------------------------------------------- reading


def _cell_record(result: xr.Dataset, c: int, axes: list[str]) -> dict[str, Any]:
    """One cell as a flat record (also a row of :func:`diagram_cells`)."""
    best = result["best_instance"].values[c]
    row = {
        **{a: json_scalar(result[a].values[c]) for a in axes},
        "label": str(result["label"].values[c]),
        "agreement": json_scalar(float(result["agreement"].values[c])),
        "n_seeds": int(result["n_seeds"].values[c]),
        "best_instance": None if best == -1 else json_scalar(best),
        "configuration": str(result["configuration"].values[c]),
        "configuration_agreement": json_scalar(float(result["configuration_agreement"].values[c])),
        "loss": json_scalar(float(result["loss"].values[c])),
        "loss_error": json_scalar(float(result["loss_error"].values[c])),
        "majority_label": str(result["majority_label"].values[c]),
    }
    for j, label in enumerate(result["outcome"].values.tolist()):
        row[f"fraction_{label}"] = json_scalar(float(result["outcome_fraction"].values[c, j]))
        row[f"gap_{label}"] = json_scalar(float(result["outcome_gap"].values[c, j]))
    return row


def _configurations(result: xr.Dataset, c: int) -> list[dict[str, Any]]:
    """The configurations a cell's seeds found: fraction of seeds and best loss's gap."""
    members = np.flatnonzero(result["cell_index"].values == c)
    loss = np.asarray(result["instance_loss"].values, dtype=np.float64)[members]
    configs = result["instance_configuration"].values.astype(str)[members]
    order = np.argsort(np.where(np.isfinite(loss), loss, np.inf), kind="stable")
    ranked = [configs[k] for k in order]
    gaps = _gaps(ranked, order.tolist(), loss, float(loss[order[0]]))
    return [
        {"configuration": k, "fraction": json_scalar(f), "gap": json_scalar(g)}
        for k, (f, g) in gaps.items()
    ]


def _boundary_record(result: xr.Dataset, b: int, axes: list[str]) -> dict[str, Any]:
    axis = str(result["boundary_axis"].values[b])
    lower_cell = int(result["boundary_cell_lower"].values[b])
    return {
        "axis": axis,
        "kind": str(result["boundary_kind"].values[b]),
        "at": {a: json_scalar(result[a].values[lower_cell]) for a in axes if a != axis},
        "lower": json_scalar(float(result["boundary_lower"].values[b])),
        "upper": json_scalar(float(result["boundary_upper"].values[b])),
        "position": json_scalar(float(result["boundary_position"].values[b])),
        "from": str(result["boundary_from"].values[b]),
        "to": str(result["boundary_to"].values[b]),
    }


def diagram_records(result: xr.Dataset) -> dict[str, Any]:
    """The JSON form of a :func:`phase_diagram` result.

    ``axes``, ``feature``, ``feature_rule``, ``step``, ``loss_records``,
    ``loss_source``, ``seed_rule``; ``cells`` (each: the axis values by name,
    ``label``, ``agreement``, ``n_seeds``, ``best_instance`` (or null),
    ``configuration``, ``configuration_agreement``, ``loss``, ``loss_error``,
    ``majority_label``, ``fraction_<label>`` and ``gap_<label>`` per label,
    and ``configurations``: each found configuration's ``fraction`` and ``gap``) and
    ``boundaries`` (each: ``axis``, ``kind``, ``at`` (the other axes'
    values), ``lower``, ``upper``, ``position``, ``from``, ``to``).
    """
    axes = list(result.attrs["axes"])
    keys = ("feature", "feature_rule", "step", "loss_records", "loss_source", "seed_rule")
    return {
        "axes": axes,
        **{key: json_scalar(result.attrs[key]) for key in keys},
        "cells": [
            {**_cell_record(result, c, axes), "configurations": _configurations(result, c)}
            for c in range(result.sizes["cell"])
        ],
        "boundaries": [_boundary_record(result, b, axes) for b in range(result.sizes["boundary"])],
    }


def diagram_cells(result: xr.Dataset) -> pd.DataFrame:
    """The cells of a :func:`phase_diagram` result as a tidy table (``--format csv``)."""
    import pandas as pd

    axes = list(result.attrs["axes"])
    return pd.DataFrame([_cell_record(result, c, axes) for c in range(result.sizes["cell"])])


def diagram_grid(result: xr.Dataset) -> xr.Dataset:
    """The per-cell variables of a :func:`phase_diagram` result on the sweep grid.

    One dim per sweep axis (its sorted distinct values); a combination of
    axis values that no cell has is missing (NaN).

    >>> import numpy as np
    >>> from toyanalysis import testing
    >>> W = np.stack([testing.polytope("triangle")] * 4)
    >>> ds = testing.as_dataset(W, sweep={"x": [1.0, 1.0, 2.0, 2.0], "y": [1.0, 2.0, 1.0, 2.0]})
    >>> grid = diagram_grid(phase_diagram(ds))
    >>> dict(grid.sizes), grid["label"].sel(x=2.0, y=1.0).item()
    ({'x': 2, 'y': 2, 'outcome': 3}, 'superposed')
    """
    axes = [str(a) for a in result.attrs["axes"]]
    cells = result[[name for name in CELL_VARS if name in result.data_vars]]
    cells = cells.drop_vars([c for c in cells.coords if c not in (*axes, "cell", "outcome")])
    if len(axes) == 1:
        return cells.swap_dims(cell=axes[0]).drop_vars("cell").sortby(axes[0])
    grid = cells.drop_vars("cell").set_index(cell=axes).unstack("cell")
    return grid.sortby(axes)


def _short(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value


def _grid_text(cells: pd.DataFrame, axes: list[str]) -> str:
    if len(axes) != 2:
        shown = [*axes, "label", "agreement", "n_seeds", "majority_label", "configuration"]
        return cells[shown].to_string(index=False)
    cells = cells.assign(
        cell=cells["label"] + cells["agreement"].map(lambda a: "" if a == 1 else f" ({a:.2f})")
    )
    grid = cells.pivot(index=axes[1], columns=axes[0], values="cell")
    grid.columns = [f"{c:.4g}" for c in grid.columns]
    grid.index = [f"{i:.4g}" for i in grid.index]
    return f"rows: {axes[1]}, columns: {axes[0]}\n{grid.to_string()}"


def diagram_text(result: xr.Dataset) -> str:
    """A readable :func:`phase_diagram` result: the grid (two axes) or the cells, then the
    boundaries (what ``toyanalysis phase-diagram`` prints)."""
    import pandas as pd

    records = diagram_records(result)
    head = (
        f"feature {records['feature']} ({records['feature_rule']}) at step {records['step']}; "
        f"{records['seed_rule']}"
    )
    body = _grid_text(pd.DataFrame(records["cells"]), records["axes"])
    rows = [
        {
            "axis": b["axis"],
            "kind": b["kind"],
            **{f"at {k}": _short(v) for k, v in b["at"].items()},
            "between": f"{b['lower']:.4g} .. {b['upper']:.4g}",
            "position": _short(b["position"]),
            "from": b["from"],
            "to": b["to"],
        }
        for b in records["boundaries"]
    ]
    bounds = pd.DataFrame(rows).to_string(index=False) if rows else "(none)"
    return f"{head}\n\n{body}\n\nboundaries\n{bounds}"
