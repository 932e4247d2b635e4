"""A classify result as records (JSON), tidy frames, the summary table, and files.

:func:`to_records` is the JSON form (schema in ``docs/classify.md``),
:func:`to_frame` the tidy table (one row per step, instance and feature),
:func:`table` the short table the command line prints (one row per instance
and step), and :func:`write` streams a (lazy) result to csv, json or parquet
block by block of steps, so memory does not grow with the trajectory.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from toyanalysis._labels import feature_coords, instance_coords, json_number, json_scalar
from toyanalysis.errors import ConfigError
from toyanalysis.geometry._kernel import INVALID_SUMMARY
from toyanalysis.geometry._lift import iter_blocks

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

__all__ = ["FORMATS", "Written", "invalid_checkpoints", "table", "to_frame", "to_records", "write"]

FORMATS = ("table", "json", "csv", "parquet")
# Bytes of output (result, frame, arrow table) one block of :func:`write` may hold.
_OUTPUT_BYTES = 32 * 2**20
# Bytes a row of the tidy table takes while it is written (frame and arrow copies).
_ROW_BYTES = 300


# --------------------------------------------------------------------------- frames


def _per_feature_config(result: xr.Dataset) -> dict[str, np.ndarray]:
    """Each feature's component size, dims and fit, ``(S, I, n)``; 0/0/NaN when unlearned."""
    component = result["component"].transpose("step", "instance", "feature").values
    index = np.maximum(component, 0).astype(np.int64)
    learned = component >= 0
    out = {}
    fills = {"config_n_features": 0, "config_n_dims": 0, "config_fit": np.nan}
    if "config_angle_error" in result.data_vars:
        fills["config_angle_error"] = np.nan
    for name, fill in fills.items():
        values = result[name].transpose("step", "instance", "config").values
        if values.shape[-1] == 0:
            out[name] = np.full(component.shape, fill, dtype=values.dtype)
            continue
        taken = np.take_along_axis(values, index, axis=-1)
        out[name] = np.where(learned, taken, fill)
    return out


def _sif(result: xr.Dataset, name: str) -> np.ndarray:
    return result[name].transpose("step", "instance", "feature").values.reshape(-1)


def _si(result: xr.Dataset, name: str) -> np.ndarray:
    return result[name].transpose("step", "instance").values.reshape(-1)


def to_frame(result: xr.Dataset) -> pd.DataFrame:
    """A tidy table of a :func:`classify` result: one row per (step, instance, feature).

    Columns: ``instance``, ``step``, ``feature``, the instance coordinates
    (sweep labels, ``seed``), the per-feature coordinates (``density``,
    ``importance``), ``kind``, ``component``, ``n_features``, ``n_dims``,
    ``fit`` and ``angle_error`` of the feature's configuration, ``norm``, ``dimensionality``,
    ``interference``, ``fraction`` (``"d/k"`` or empty), ``agrees``, ``dimensions_per_feature``, ``summary`` and ``loss``
    (when present).

    >>> from toyanalysis import testing
    >>> from toyanalysis.geometry import classify
    >>> frame = to_frame(classify(testing.tegum("triangle", dead=1)))
    >>> frame["kind"].tolist(), frame["n_dims"].tolist()
    (['triangle', 'triangle', 'triangle', 'unlearned'], [2, 2, 2, 0])
    """
    import pandas as pd

    S, n_inst, n = (result.sizes[d] for d in ("step", "instance", "feature"))
    columns: dict[str, Any] = {
        "instance": np.tile(np.repeat(result["instance"].values, n), S),
        "step": np.repeat(result["step"].values, n_inst * n),
        "feature": np.tile(result["feature"].values, S * n_inst),
    }
    for name, values in instance_coords(result).items():
        columns[name] = np.tile(np.repeat(values, n), S)
    for name, values in feature_coords(result).items():
        columns[name] = np.tile(values.reshape(n_inst * n), S)
    config = _per_feature_config(result)
    columns["kind"] = pd.Categorical(_sif(result, "kind"))
    columns["component"] = _sif(result, "component")
    for column, name in (("n_features", "config_n_features"), ("n_dims", "config_n_dims")):
        columns[column] = config[name].reshape(-1)
    columns["fit"] = config["config_fit"].reshape(-1)
    if "config_angle_error" in config:
        columns["angle_error"] = config["config_angle_error"].reshape(-1)
    for name in ("norm", "dimensionality", "interference"):
        columns[name] = _sif(result, name)
    if "fraction" in result.data_vars:
        fraction = result["fraction"].transpose("step", "instance", "feature", "ratio").values
        columns["fraction"] = fraction_text(fraction).reshape(-1)
        columns["agrees"] = _sif(result, "agrees")
    columns["dimensions_per_feature"] = np.repeat(_si(result, "dimensions_per_feature"), n)
    summary = pd.Categorical(_si(result, "summary").astype(str))
    columns["summary"] = pd.Categorical.from_codes(np.repeat(summary.codes, n), summary.categories)
    if "loss" in result.data_vars:
        columns["loss"] = np.repeat(_si(result, "loss"), n)
    return pd.DataFrame(columns)


# --------------------------------------------------------------------------- records


def _worst(r: dict[str, np.ndarray], s: int, i: int, c: int, features: list[Any]) -> dict[str, Any]:
    """``angle_error`` (degrees) and ``worst_pair`` (two features or null) of one slot."""
    if "config_angle_error" not in r:
        return {}
    pair = r["config_worst_pair"][s, i, c].tolist()
    return {
        "angle_error": json_number(r["config_angle_error"][s, i, c]),
        "worst_pair": [features[f] for f in pair] if min(pair) >= 0 else None,
    }


def _configurations(
    r: dict[str, np.ndarray], s: int, i: int, features: list[Any]
) -> list[dict[str, Any]]:
    members: dict[int, list[Any]] = {}
    for f, c in enumerate(r["component"][s, i].tolist()):
        if c >= 0:
            members.setdefault(c, []).append(features[f])
    n_features = r["config_n_features"][s, i]
    return [
        {
            "kind": str(r["config_kind"][s, i, c]),
            "features": members.get(c, []),
            "n_features": int(n_features[c]),
            "n_dims": int(r["config_n_dims"][s, i, c]),
            "fit": json_number(r["config_fit"][s, i, c]),
            **_worst(r, s, i, c, features),
        }
        for c in range(n_features.shape[-1])
        if n_features[c] > 0
    ]


def _evidence(r: dict[str, np.ndarray], s: int, i: int, f: int) -> dict[str, Any]:
    """``fraction`` (``"d/k"`` or null) and ``agrees`` of one feature."""
    if "fraction" not in r:
        return {}
    d, k = r["fraction"][s, i, f].tolist()
    return {"fraction": f"{d}/{k}" if k else None, "agrees": bool(r["agrees"][s, i, f])}


def fraction_text(fraction: np.ndarray) -> np.ndarray:
    """``"d/k"`` (or ``""`` for none) of ``(..., 2)`` fractions."""
    d, k = fraction[..., 0], fraction[..., 1]
    text = np.char.add(np.char.add(d.astype(str), "/"), k.astype(str))
    return np.where(k > 0, text, "")


def _features(
    r: dict[str, np.ndarray],
    s: int,
    i: int,
    features: list[Any],
    per_feature: dict[str, np.ndarray],
) -> list[dict[str, Any]]:
    out = []
    for f, label in enumerate(features):
        c = int(r["component"][s, i, f])
        entry = {
            "feature": label,
            "kind": str(r["kind"][s, i, f]),
            "configuration": c if c >= 0 else None,
            "norm": json_number(r["norm"][s, i, f]),
            "dimensionality": json_number(r["dimensionality"][s, i, f]),
            "interference": json_number(r["interference"][s, i, f]),
            **_evidence(r, s, i, f),
        }
        for name, values in per_feature.items():
            entry[name] = json_scalar(values[i, f])
        out.append(entry)
    return out


def to_records(result: xr.Dataset) -> list[dict[str, Any]]:
    """The JSON form of a :func:`classify` result: one record per (step, instance).

    Each record: ``step``, ``instance``, ``coords`` (the instance's sweep
    labels, seed, ...), ``summary``, ``dimensions_per_feature``, ``loss``
    (when present), ``configurations`` (each: ``kind``, ``features``,
    ``n_features``, ``n_dims``, ``fit``, ``angle_error``, ``worst_pair``) and ``features`` (each: ``feature``,
    ``norm``, ``dimensionality``, ``interference``, ``fraction``,
    ``agrees``, ``kind``, ``configuration`` (index into ``configurations`` or null), plus
    ``density``/``importance`` when known). Non-finite numbers become null.
    The schema is in ``docs/classify.md``.

    >>> from toyanalysis import testing
    >>> from toyanalysis.geometry import classify
    >>> record = to_records(classify(testing.polytope("digon")))[0]
    >>> record["summary"], record["configurations"][0]["features"]
    ('digon', [0, 1])
    """
    t = result.transpose("step", "instance", "feature", "config", ...)
    names = [n for n in t.data_vars if n != "loss"]
    r = {str(name): t[name].values for name in names}
    loss = t["loss"].values if "loss" in t.data_vars else None
    features = t["feature"].values.tolist()
    per_instance, per_feature = instance_coords(t), feature_coords(t)
    records = []
    for s, step in enumerate(t["step"].values.tolist()):
        for i, instance in enumerate(t["instance"].values.tolist()):
            record: dict[str, Any] = {
                "step": step,
                "instance": instance,
                "coords": {name: json_scalar(values[i]) for name, values in per_instance.items()},
                "summary": str(r["summary"][s, i]),
                "dimensions_per_feature": json_number(r["dimensions_per_feature"][s, i]),
            }
            if loss is not None:
                record["loss"] = json_number(loss[s, i])
            record["configurations"] = _configurations(r, s, i, features)
            record["features"] = _features(r, s, i, features, per_feature)
            records.append(record)
    return records


# --------------------------------------------------------------------------- the summary table


def _range_text(values: Any) -> str:
    values = np.asarray(values, dtype=float)
    if values.size == 0 or not np.isfinite(values).all():
        return "-"
    if np.allclose(values, values[0]):
        return f"{values[0]:.3g}"
    return f"{values[0]:.3g}..{values[-1]:.3g}"


def _table_row(r: xr.Dataset, s: int, i: int, labels: dict[str, np.ndarray]) -> dict[str, Any]:
    row: dict[str, Any] = {"instance": r["instance"].values[i]}
    for name, values in labels.items():
        value = values[i]
        row[name] = f"{value:.4g}" if isinstance(value, float | np.floating) else value
    for name in ("density", "importance"):
        if name in r.coords:
            row[name] = _range_text(r[name].isel(instance=i).values)
    row["step"] = r["step"].values[s]
    if "loss" in r.data_vars:
        row["loss"] = f"{float(r['loss'].values[s, i]):.4g}"
    dstar = float(r["dimensions_per_feature"].values[s, i])
    row["D*"] = f"{dstar:.3f}" if np.isfinite(dstar) else "inf"
    row["summary"] = str(r["summary"].values[s, i])
    fits = r["config_fit"].values[s, i]
    named = (fits == fits) & (r["config_n_features"].values[s, i] > 1)
    row["min fit"] = f"{np.min(fits[named]):.2f}" if named.any() else "-"
    return row


def table(result: xr.Dataset) -> pd.DataFrame:
    """One row per (instance, step): instance coordinates, D*, summary and the lowest fit.

    >>> from toyanalysis import testing
    >>> from toyanalysis.geometry import classify
    >>> table(classify(testing.tegum("pentagon")))[["summary", "min fit"]].values.tolist()
    [['pentagon', '1.00']]
    """
    import pandas as pd

    r = result.transpose("step", "instance", "feature", "config", ...).compute()
    labels = instance_coords(r)
    rows = [
        _table_row(r, s, i, labels)
        for i in range(r.sizes["instance"])
        for s in range(r.sizes["step"])
    ]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- files


@dataclass
class Written:
    """What :func:`write` wrote: rows, and the checkpoints with non-finite weights."""

    invalid: int = 0
    first_invalid: tuple[Any, Any] | None = None

    def count(self, block: xr.Dataset) -> None:
        count, first = invalid_checkpoints(block)
        self.invalid += count
        if self.first_invalid is None:
            self.first_invalid = first


def invalid_checkpoints(result: xr.Dataset) -> tuple[int, tuple[Any, Any] | None]:
    """How many checkpoints are ``invalid`` (non-finite weights), and the first ``(step, instance)``."""
    summary = result["summary"].transpose("step", "instance").values.astype(str)
    bad = summary == INVALID_SUMMARY
    if not bad.any():
        return 0, None
    s, i = np.argwhere(bad)[0]
    return int(bad.sum()), (result["step"].values[s].item(), result["instance"].values[i].item())


def _block_steps(result: xr.Dataset) -> int:
    """Steps computed at once by :func:`write`: whole chunks, output within ``_OUTPUT_BYTES``."""
    per_step = _ROW_BYTES * result.sizes["instance"] * max(1, result.sizes["feature"])
    steps = max(1, _OUTPUT_BYTES // max(1, per_step))
    chunks = result["summary"].chunks
    if not chunks:
        return result.sizes["step"]
    chunk = max(chunks[0])
    return max(chunk, steps - steps % chunk)


@contextmanager
def _opened(output: str | os.PathLike[str] | None, binary: bool = False) -> Iterator[IO[Any]]:
    if output is None:
        if binary:
            sys.stdout.flush()
            yield sys.stdout.buffer
            sys.stdout.buffer.flush()
        else:
            yield sys.stdout
        return
    with open(output, "wb" if binary else "w", encoding=None if binary else "utf-8") as fh:
        yield fh


def _write_csv(parts: Iterator[xr.Dataset], output: Any) -> None:
    """The tidy table as CSV (pyarrow's writer when installed: ~10x faster)."""
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv
    except ImportError:
        with _opened(output) as fh:
            for index, part in enumerate(parts):
                fh.write(to_frame(part).to_csv(index=False, header=index == 0, lineterminator="\n"))
        return
    options = pacsv.WriteOptions(quoting_style="needed", quoting_header="none")
    with _opened(output, binary=True) as fh:
        writer = schema = None
        try:
            for part in parts:
                arrow = pa.Table.from_pandas(to_frame(part), preserve_index=False)
                if writer is None:
                    schema = arrow.schema
                    writer = pacsv.CSVWriter(fh, schema, write_options=options)
                writer.write_table(arrow if arrow.schema == schema else arrow.cast(schema))
        finally:
            if writer is not None:
                writer.close()


def _write_json(parts: Iterator[xr.Dataset], output: Any) -> None:
    with _opened(output) as fh:
        fh.write("[")
        first = True
        for part in parts:
            for record in to_records(part):
                fh.write("\n  " if first else ",\n  ")
                fh.write(json.dumps(record, allow_nan=False))
                first = False
        fh.write("\n]\n")


def _write_parquet(parts: Iterator[xr.Dataset], output: Any) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = schema = None
    try:
        for part in parts:
            frame = to_frame(part)
            for name in ("kind", "summary"):
                frame[name] = frame[name].astype(str)
            arrow = pa.Table.from_pandas(frame, preserve_index=False, schema=schema)
            if writer is None:
                schema = arrow.schema
                writer = pq.ParquetWriter(output, schema)
            writer.write_table(arrow)
    finally:
        if writer is not None:
            writer.close()


def _check_format(fmt: str, output: Any) -> None:
    if fmt not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "parquet":
        if output is None:
            raise ConfigError("parquet output needs a file (parquet is binary)")
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ConfigError(
                "parquet output needs pyarrow: pip install 'toyanalysis[io]'"
            ) from None


def write(
    result: xr.Dataset,
    output: str | os.PathLike[str] | None,
    fmt: str = "csv",
    *,
    progress: Callable[[int], None] | None = None,
) -> Written:
    """Write a :func:`classify` result to ``output`` (a path; None: stdout) as ``fmt``.

    ``fmt``: ``csv`` or ``parquet`` (the tidy :func:`to_frame` table), ``json``
    (:func:`to_records`) or ``table`` (:func:`table`). A lazy result is
    computed block by block of steps (whole chunks, a bounded amount of output
    at a time), so ``--step all`` on a long trajectory streams in bounded
    memory; ``progress`` is called with the steps of each block. Returns how
    many checkpoints were ``invalid`` (non-finite weights) and the first.
    An output that cannot be written raises :class:`OSError`.
    """
    _check_format(fmt, output)
    written = Written()

    def counted() -> Iterator[xr.Dataset]:
        for part in iter_blocks(result, _block_steps(result), progress):
            written.count(part)
            yield part

    if fmt == "table":
        frame = table(result)
        written.count(result)
        with _opened(output) as fh:
            fh.write(frame.to_string(index=False) + "\n")
    else:
        writers = {"csv": _write_csv, "json": _write_json, "parquet": _write_parquet}
        writers[fmt](counted(), None if output is None else Path(output))
    return written
