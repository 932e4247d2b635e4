"""The tidy event tables of a :func:`~toyanalysis.phases` result, and what is read from them.

A phases result has one flat dim per event kind (``phase``, ``transition``,
``drop``, ``plateau``, ``jump``); along it, ``<kind>_instance`` says whose
event a row is and the steps are coordinates too. The JSON records
(:func:`phase_records`), the tidy frame (:func:`phase_events`), the text
tables (:func:`phase_tables`) and the per-instance view
(:func:`for_instance`) are each read straight from those tables.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

import numpy as np

from toyanalysis._labels import carried_coords, instance_coords, json_number, json_scalar
from toyanalysis._phases._timeline import fraction_text
from toyanalysis.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

__all__ = [
    "KINDS",
    "event_counts",
    "events_dataset",
    "for_instance",
    "has_llc",
    "phase_document",
    "phase_events",
    "phase_records",
    "phase_tables",
    "phase_text",
]

KINDS = ("phase", "transition", "drop", "plateau", "jump")
_PLURAL = {k: f"{k}s" for k in KINDS}

# kind -> (row key, variable, dtype or None for the instance/feature label's, is a coordinate)
_SCHEMA: dict[str, list[tuple[str, str, Any, bool]]] = {
    "phase": [
        ("start", "phase_start", np.int64, True),
        ("end", "phase_end", np.int64, True),
        ("summary", "phase_summary", str, False),
        ("records", "phase_records", np.int64, False),
    ],
    "transition": [
        ("step", "transition_step", np.int64, True),
        ("from", "transition_from", str, False),
        ("to", "transition_to", str, False),
        ("label_step", "transition_label_step", np.int64, False),
        ("loss_before", "loss_before", np.float64, False),
        ("loss_after", "loss_after", np.float64, False),
    ],
    "drop": [
        ("step", "drop_step", np.int64, True),
        ("size", "drop_size", np.float64, False),
        ("change", "drop_change", np.float64, False),
        ("loss_before", "drop_loss_before", np.float64, False),
        ("loss_after", "drop_loss_after", np.float64, False),
        ("window", "drop_window", np.int64, False),
        ("transition", "drop_transition", np.int64, False),
    ],
    "plateau": [
        ("start", "plateau_start", np.int64, True),
        ("end", "plateau_end", np.int64, True),
        ("loss", "plateau_loss", np.float64, False),
    ],
    "jump": [
        ("feature", "jump_feature", None, True),
        ("step", "jump_step", np.int64, True),
        ("from", "jump_from", np.float64, False),
        ("to", "jump_to", np.float64, False),
    ],
}


# --------------------------------------------------------------------------- building


def _table(
    kind: str, rows: list[dict[str, Any]], labels: list[Any], cls: xr.Dataset
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The variables and coordinates of one event kind."""
    data: dict[str, Any] = {}
    coords: dict[str, Any] = {
        f"{kind}_instance": (kind, np.array(labels, dtype=cls["instance"].dtype))
    }
    for key, name, dtype, is_coord in _SCHEMA[kind]:
        dtype = cls["feature"].dtype if dtype is None else dtype
        values = np.array([row[key] for row in rows], dtype=dtype)
        (coords if is_coord else data)[name] = (kind, values)
    return data, coords


def events_dataset(
    cls: xr.Dataset, found: list[dict[str, Any]], summary: np.ndarray, loss: np.ndarray | None
) -> xr.Dataset:
    """The result of :func:`~toyanalysis.phases` from the events of every instance."""
    import xarray as xr

    si = ("step", "instance")
    data: dict[str, Any] = {
        "summary": (si, summary),
        "phase_index": (si, np.stack([f["phase_index"] for f in found], axis=1)),
    }
    if loss is not None:
        nan = np.full(len(cls["step"]), np.nan)
        change = [nan if f["change"] is None else f["change"] for f in found]
        data["loss"] = (si, loss)
        data["loss_change"] = (si, np.stack(change, axis=1))
    coords: dict[str, Any] = {d: cls[d].values for d in ("step", "instance", "feature")}
    coords.update({k: c.compute() for k, c in carried_coords(cls).items() if c.dims})
    per_kind = _per_kind(cls, found)
    for kind in KINDS:
        rows, labels = per_kind[kind]
        table, table_coords = _table(kind, rows, labels, cls)
        data.update(table)
        coords.update(table_coords)
    data["drop_features"] = (("drop", "feature"), _drop_features(per_kind["drop"][0], cls))
    return xr.Dataset(data, coords=coords)


def _per_kind(cls: xr.Dataset, found: list[dict[str, Any]]) -> dict[str, tuple[list, list]]:
    """Per kind: the rows of every instance, and the instance label of each row."""
    steps = np.asarray(cls["step"].values, dtype=np.int64)
    features = cls["feature"].values
    out: dict[str, tuple[list, list]] = {kind: ([], []) for kind in KINDS}
    for label, f in zip(cls["instance"].values, found):
        jumps = [{**j, "feature": features[i]} for i, per in enumerate(f["jumps"]) for j in per]
        per = {
            "phase": [
                {"start": steps[a], "end": steps[b], "summary": str(c), "records": b - a + 1}
                for a, b, c in f["phases"]
            ],
            "transition": f["transitions"],
            "drop": f["drops"],
            "plateau": f["plateaus"],
            "jump": sorted(jumps, key=lambda j: (j["step"], str(j["feature"]))),
        }
        for kind in KINDS:
            out[kind][0].extend(per[kind])
            out[kind][1].extend([label] * len(per[kind]))
    return out


def _drop_features(rows: list[dict[str, Any]], cls: xr.Dataset) -> np.ndarray:
    out = np.zeros((len(rows), cls.sizes["feature"]), dtype=bool)
    for j, row in enumerate(rows):
        out[j, row["features"]] = True
    return out


# --------------------------------------------------------------------------- reading


def _groups(result: xr.Dataset, kind: str) -> dict[Any, list[int]]:
    """Row indices of each instance's events of one kind, in table order."""
    groups: dict[Any, list[int]] = {}
    for i, label in enumerate(result[f"{kind}_instance"].values.tolist()):
        groups.setdefault(label, []).append(i)
    return groups


def for_instance(result: xr.Dataset, instance: Any) -> xr.Dataset:
    """One instance of a phases result: its records and its rows of every event table.

    ``drop_transition`` counts the instance's own transitions, so it indexes
    the ``transition`` dim of the selection.
    """
    if instance not in result["instance"].values.tolist():
        have = result["instance"].values.tolist()
        raise ConfigError(f"instance {instance!r} is not in the result (instances: {have})")
    out = result.sel(instance=instance)
    for kind in KINDS:
        rows = np.flatnonzero(result[f"{kind}_instance"].values == instance)
        out = out.isel({kind: rows})
    return out


def event_counts(result: xr.Dataset) -> xr.Dataset:
    """How many events of each kind each instance has: ``n_phases (instance)``, ...,
    ``n_jumps (instance, feature)``."""
    import xarray as xr

    labels = result["instance"].values.tolist()
    data: dict[str, Any] = {}
    for kind in KINDS[:-1]:
        groups = _groups(result, kind)
        data[f"n_{_PLURAL[kind]}"] = ("instance", [len(groups.get(k, [])) for k in labels])
    features = result["feature"].values.tolist()
    jumps = np.zeros((len(labels), len(features)), dtype=np.int64)
    inst, feat = result["jump_instance"].values.tolist(), result["jump_feature"].values.tolist()
    for i, f in zip(inst, feat):
        jumps[labels.index(i), features.index(f)] += 1
    data["n_jumps"] = (("instance", "feature"), jumps)
    return xr.Dataset(data, coords={"instance": labels, "feature": features})


def _column(result: xr.Dataset, name: Hashable) -> np.ndarray:
    return np.asarray(result[name].values)


def _instance_records(result: xr.Dataset, k: int, label: Any, groups: dict[str, Any]) -> dict:
    """The JSON record of one instance (schema in :func:`phase_records`)."""
    coords = {name: json_scalar(values[k]) for name, values in instance_coords(result).items()}
    rows = {kind: groups[kind].get(label, []) for kind in KINDS}
    transitions = [_transition_record(result, i) for i in rows["transition"]]
    phases = [_phase_record(result, i) for i in rows["phase"]]
    return {
        "instance": json_scalar(result["instance"].values[k]),
        "coords": coords,
        "phases": phases,
        "transitions": transitions,
        "loss_drops": [_drop_record(result, i, transitions) for i in rows["drop"]],
        "plateaus": [
            {
                "start_step": int(result["plateau_start"].values[i]),
                "end_step": int(result["plateau_end"].values[i]),
                "loss": json_scalar(float(result["plateau_loss"].values[i])),
            }
            for i in rows["plateau"]
        ],
        "feature_jumps": [
            {
                "feature": json_scalar(result["jump_feature"].values[i]),
                "step": int(result["jump_step"].values[i]),
                "from": fraction_text(float(result["jump_from"].values[i])),
                "to": fraction_text(float(result["jump_to"].values[i])),
            }
            for i in rows["jump"]
        ],
    }


# the λ̂ columns of a result joined with an llc result: (record key, variable)
LLC_PHASE = (("llc", "phase_llc"), ("llc_se", "phase_llc_se"))
LLC_TRANSITION = (
    ("llc_before", "llc_before"),
    ("llc_after", "llc_after"),
    ("delta_llc", "delta_llc"),
    ("delta_llc_se", "delta_llc_se"),
)


def has_llc(result: xr.Dataset) -> bool:
    """Whether ``result`` was joined with an llc result (``phases(..., llc=...)``)."""
    return "phase_llc" in result.data_vars


def _llc_values(result: xr.Dataset, i: int, columns: tuple[tuple[str, str], ...]) -> dict:
    if not has_llc(result):
        return {}
    return {key: json_number(float(result[name].values[i])) for key, name in columns}


def _phase_record(result: xr.Dataset, i: int) -> dict[str, Any]:
    return {
        "start_step": int(result["phase_start"].values[i]),
        "end_step": int(result["phase_end"].values[i]),
        "records": int(result["phase_records"].values[i]),
        "summary": str(result["phase_summary"].values[i]),
        **_llc_values(result, i, LLC_PHASE),
    }


def _transition_record(result: xr.Dataset, i: int) -> dict[str, Any]:
    return {
        "step": int(result["transition_step"].values[i]),
        "from": str(result["transition_from"].values[i]),
        "to": str(result["transition_to"].values[i]),
        "label_step": int(result["transition_label_step"].values[i]),
        "loss_before": json_scalar(float(result["loss_before"].values[i])),
        "loss_after": json_scalar(float(result["loss_after"].values[i])),
        **_llc_values(result, i, LLC_TRANSITION),
    }


def _drop_record(result: xr.Dataset, i: int, transitions: list[dict[str, Any]]) -> dict:
    index = int(result["drop_transition"].values[i])
    features = result["feature"].values
    return {
        "step": int(result["drop_step"].values[i]),
        "size": json_scalar(float(result["drop_size"].values[i])),
        "change": json_scalar(float(result["drop_change"].values[i])),
        "loss_before": json_scalar(float(result["drop_loss_before"].values[i])),
        "loss_after": json_scalar(float(result["drop_loss_after"].values[i])),
        "window": int(result["drop_window"].values[i]),
        "transition": None
        if index < 0
        else {key: transitions[index][key] for key in ("step", "from", "to")},
        "features": [
            json_scalar(features[f]) for f in np.flatnonzero(result["drop_features"].values[i])
        ],
    }


def phase_records(result: xr.Dataset) -> list[dict[str, Any]]:
    """The JSON form of a :func:`~toyanalysis.phases` result: one record per instance.

    Each record: ``instance``, ``coords``, ``phases`` (``start_step``,
    ``end_step``, ``records``, ``summary``), ``transitions`` (``step``,
    ``from``, ``to``, ``loss_before``, ``loss_after``), ``loss_drops``
    (``step``, ``size``, ``change``, ``loss_before``, ``loss_after``,
    ``transition``: the coinciding transition as ``{step, from, to}`` or
    null, ``features``: features whose dimensionality jumps in its window),
    ``plateaus`` (``start_step``, ``end_step``, ``loss``) and
    ``feature_jumps`` (``feature``, ``step``, ``from``, ``to``, fractions as
    text such as ``"1/2"``). A result joined with an llc result
    (``phases(..., llc=...)``) adds ``llc``/``llc_se`` to each phase and
    ``llc_before``, ``llc_after``, ``delta_llc``, ``delta_llc_se`` to each
    transition (null where unknown).
    """
    groups = {kind: _groups(result, kind) for kind in KINDS}
    return [
        _instance_records(result, k, label, groups)
        for k, label in enumerate(result["instance"].values.tolist())
    ]


SETTINGS = (
    "min_records",
    "min_steps",
    "loss_window",
    "min_drop",
    "noise_factor",
    "fraction_tol",
    "loss_source",
    "norm_threshold",
    "overlap_tol",
)


def phase_document(result: xr.Dataset) -> dict[str, Any]:
    """``{"settings": ..., "instances": phase_records(result)}``: the JSON of ``toyanalysis phases``."""
    return {
        "settings": {k: json_scalar(result.attrs.get(k)) for k in SETTINGS},
        "instances": phase_records(result),
    }


# --------------------------------------------------------------------------- frames


def _positions(result: xr.Dataset, kind: str) -> np.ndarray:
    """The position along ``instance`` of each event of ``kind``."""
    labels = result["instance"].values.tolist()
    rows = result[f"{kind}_instance"].values.tolist()
    return np.array([labels.index(r) for r in rows], dtype=np.int64)


def _base(result: xr.Dataset, kind: str) -> pd.DataFrame:
    """One row per event of ``kind``: ``instance`` and the instance's coordinates."""
    import pandas as pd

    position = _positions(result, kind)
    frame = pd.DataFrame({"instance": [json_scalar(v) for v in result[f"{kind}_instance"].values]})
    for name, values in instance_coords(result).items():
        frame[name] = [json_scalar(values[p]) for p in position]
    return frame


def _nullable(values: np.ndarray) -> list[Any]:
    return [json_scalar(float(v)) for v in values]


def _transition_steps(result: xr.Dataset) -> list[Any]:
    """The step of each drop's coinciding transition (None when none)."""
    groups = _groups(result, "transition")
    steps = result["transition_step"].values
    out: list[Any] = []
    for label, index in zip(
        result["drop_instance"].values.tolist(), result["drop_transition"].values.tolist()
    ):
        out.append(None if index < 0 else int(steps[groups[label][index]]))
    return out


def _llc_columns(result: xr.Dataset, columns: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """The λ̂ columns of one kind's rows (none when the result has no λ̂)."""
    if not has_llc(result):
        return {}
    return {key: [json_number(x) for x in _column(result, name)] for key, name in columns}


def _event_columns(result: xr.Dataset, kind: str) -> dict[str, Any]:
    """The columns of one kind's rows in :func:`phase_events`."""
    names = [n for n in result.data_vars if result[n].dims[:1] == (kind,)]
    names += [n for n, c in result.coords.items() if c.dims == (kind,)]
    v = {str(n): _column(result, n) for n in names}
    if kind == "phase":
        return {
            "step": v["phase_start"],
            "end_step": v["phase_end"],
            "summary": v["phase_summary"],
            **_llc_columns(result, LLC_PHASE),
        }
    if kind == "transition":
        return {
            "step": v["transition_step"],
            "from": v["transition_from"],
            "to": v["transition_to"],
            "loss_before": _nullable(v["loss_before"]),
            "loss_after": _nullable(v["loss_after"]),
            **_llc_columns(result, LLC_TRANSITION),
        }
    if kind == "drop":
        return {
            "step": v["drop_step"],
            "size": _nullable(v["drop_size"]),
            "loss_before": _nullable(v["drop_loss_before"]),
            "loss_after": _nullable(v["drop_loss_after"]),
            "transition_step": _transition_steps(result),
        }
    if kind == "plateau":
        return {
            "step": v["plateau_start"],
            "end_step": v["plateau_end"],
            "loss_after": _nullable(v["plateau_loss"]),
        }
    return {
        "feature": [json_scalar(f) for f in v["jump_feature"]],
        "step": v["jump_step"],
        "from": [fraction_text(float(x)) for x in v["jump_from"]],
        "to": [fraction_text(float(x)) for x in v["jump_to"]],
    }


EVENT_NAMES = {
    "phase": "phase",
    "transition": "transition",
    "drop": "loss_drop",
    "plateau": "plateau",
    "jump": "feature_jump",
}
EVENT_COLUMNS = (
    "event",
    "step",
    "end_step",
    "summary",
    "from",
    "to",
    "feature",
    "loss_before",
    "loss_after",
    "size",
    "transition_step",
)


def phase_events(result: xr.Dataset) -> pd.DataFrame:
    """A tidy table of a :func:`~toyanalysis.phases` result: one row per phase, transition,
    drop, plateau or jump.

    Columns: ``instance``, the instance coordinates, ``event`` (``phase``,
    ``transition``, ``loss_drop``, ``plateau``, ``feature_jump``), ``step``,
    ``end_step``, ``summary``, ``from``, ``to``, ``feature``, ``loss_before``,
    ``loss_after``, ``size``, ``transition_step`` (empty where they do not
    apply). Rows go instance by instance, each in the order of the kinds.
    A result joined with an llc result adds, last, ``llc``, ``llc_se`` (phase
    rows) and ``llc_before``, ``llc_after``, ``delta_llc``, ``delta_llc_se``
    (transition rows).
    """
    import pandas as pd

    frames = []
    for number, kind in enumerate(KINDS):
        frame = _base(result, kind)
        order = _positions(result, kind) * len(KINDS) + number
        frame = frame.assign(event=EVENT_NAMES[kind], **_event_columns(result, kind), _order=order)
        frames.append(frame)
    joined = pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
    joined = joined.sort_values("_order", kind="stable").drop(columns="_order")
    trailing = [key for key, _ in LLC_PHASE + LLC_TRANSITION] if has_llc(result) else []
    for column in (*EVENT_COLUMNS, *trailing):
        if column not in joined:
            joined[column] = None
    leading = [c for c in joined.columns if c not in (*EVENT_COLUMNS, *trailing)]
    return joined[leading + list(EVENT_COLUMNS) + trailing].reset_index(drop=True)


def _short(values: Any) -> list[Any]:
    return [round(v, 6) if isinstance(v, float) else v for v in values]


def phase_tables(result: xr.Dataset) -> list[tuple[str, pd.DataFrame]]:
    """The four readable tables of a phases result: phases, transitions, loss drops and
    feature dimensionality jumps (what ``toyanalysis phases`` prints); with λ̂
    joined, the phases gain ``llc``/``llc_se`` and the transitions ``llc_before``,
    ``llc_after``, ``delta_llc``, ``delta_llc_se``."""
    phases_ = _base(result, "phase").assign(
        start=_column(result, "phase_start"),
        end=_column(result, "phase_end"),
        summary=_column(result, "phase_summary"),
        **{k: _short(v) for k, v in _llc_columns(result, LLC_PHASE).items()},
    )
    t = _event_columns(result, "transition")
    transitions = _base(result, "transition").assign(
        step=t["step"],
        **{"from": t["from"], "to": t["to"]},
        loss_before=_short(t["loss_before"]),
        loss_after=_short(t["loss_after"]),
        **{k: _short(v) for k, v in _llc_columns(result, LLC_TRANSITION).items()},
    )
    jumps = _base(result, "jump").assign(**_event_columns(result, "jump"))
    return [
        ("phases", phases_),
        ("transitions", transitions),
        ("loss drops", _drop_table(result)),
        ("feature dimensionality jumps", jumps),
    ]


def _drop_table(result: xr.Dataset) -> pd.DataFrame:
    groups = _groups(result, "transition")
    targets = []
    for label, index in zip(
        result["drop_instance"].values.tolist(), result["drop_transition"].values.tolist()
    ):
        i = groups[label][index] if index >= 0 else -1
        step, to = _column(result, "transition_step"), _column(result, "transition_to")
        targets.append("-" if i < 0 else f"{step[i]}: -> {to[i]}")
    features = result["feature"].values
    return _base(result, "drop").assign(
        step=_column(result, "drop_step"),
        size=_short(_nullable(_column(result, "drop_size"))),
        decades=[round(float(c), 3) for c in _column(result, "drop_change")],
        transition=targets,
        features=[
            ",".join(str(json_scalar(features[f])) for f in np.flatnonzero(row)) or "-"
            for row in _column(result, "drop_features")
        ],
    )


def phase_text(result: xr.Dataset) -> str:
    """:func:`phase_tables` as text: titled tables, one after the other."""
    parts = []
    for title, frame in phase_tables(result):
        body = frame.to_string(index=False) if len(frame) else "(none)"
        parts.append(f"{title}\n{body}")
    return "\n\n".join(parts)
