"""Commands about change: phases over training, phase diagrams over sweeps, and neurons.

Each command opens a store, calls one library function
(:func:`toyanalysis.phases.phases`, :func:`toyanalysis.phases.phase_diagram`,
:func:`toyanalysis.neurons.neurons`) and prints the result as a table, JSON
(schemas in ``docs/phases.md`` and ``docs/neurons.md``) or CSV.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from toyanalysis_cli._common import format_option, output_option, write_frame, write_json, write_text

_MODELS = ("hidden_relu", "abs")


# --- shared output helpers -----------------------------------------------------------
def _clean(value: Any) -> Any:
    """Plain JSON values: numpy scalars to Python, NaN to None."""
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _instance_labels(result: Any) -> list[str]:
    """Names of the 1-D instance coordinates worth showing: the sweep labels and the seed."""
    names = [name for name in result.attrs.get("sweep", []) if name in result.coords]
    if "seed" in result.coords and result["seed"].dims == ("instance",):
        names.append("seed")
    return names


def _labels_of(result: Any, k: int, names: list[str]) -> dict[str, Any]:
    return {name: _clean(result[name].values[k]) for name in names}


def _frame(rows: list[dict[str, Any]]) -> Any:
    import pandas as pd

    return pd.DataFrame(rows)


def _write_tables(blocks: list[tuple[str, list[dict[str, Any]]]], fmt: str, output: Path | None) -> None:
    """Several titled tables as one readable text (``table``) or the first as CSV."""
    if fmt == "csv":
        write_frame(_frame(blocks[0][1]), "csv", output)
        return
    parts = []
    for title, rows in blocks:
        body = _frame(rows).to_string(index=False) if rows else "(none)"
        parts.append(f"{title}\n{body}")
    write_text("\n\n".join(parts), output)


def _save(store: Path, result: Any, name: str) -> None:
    from toyanalysis.store import save_analysis

    group = save_analysis(store, result, name)
    click.echo(f"saved {store}/{group}", err=True)


def _open(store: Path) -> Any:
    from toyanalysis.store import open_store

    return open_store(store)


def _last_step(ds: Any, step: int | None) -> int:
    return int(ds["step"].values[-1]) if step is None else step


# --- neurons ---------------------------------------------------------------------------
def neuron_records(result: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows per (instance, neuron) and per instance, for the first step of a neurons result."""
    r = result.isel(step=0)
    names = _instance_labels(result)
    feature_ids = r["feature"].values
    neuron_ids = r["hidden"].values
    drive, drives = r["drive"].values, r["drives"].values
    neuron_rows, instance_rows = [], []
    for k, instance in enumerate(r["instance"].values):
        labels = _labels_of(result, k, names)
        for h, neuron in enumerate(neuron_ids):
            chosen = [int(i) for i in sorted(range(len(feature_ids)), key=lambda i: -drive[k, h, i]) if drives[k, h, i]]
            neuron_rows.append({
                "instance": _clean(instance),
                **labels,
                "neuron": _clean(neuron),
                "label": str(r["label"].values[k, h]),
                "score": _clean(round(float(r["score"].values[k, h]), 4)),
                "strength": _clean(round(float(r["strength"].values[k, h]), 4)),
                "features": [_clean(feature_ids[i]) for i in chosen],
                "weights": [round(float(r["weight"].values[k, h, i]), 4) for i in chosen],
            })
        carriers = {
            _clean(feature_ids[i]): [_clean(neuron_ids[h]) for h in range(len(neuron_ids)) if drives[k, h, i]]
            for i in range(len(feature_ids))
        }
        instance_rows.append({
            "instance": _clean(instance),
            **labels,
            "monosemantic_fraction": _clean(r["monosemantic_fraction"].values[k]),
            "dead_fraction": _clean(r["dead_fraction"].values[k]),
            "n_monosemantic": _clean(r["n_monosemantic"].values[k]),
            "n_polysemantic": _clean(r["n_polysemantic"].values[k]),
            "n_dead": _clean(r["n_dead"].values[k]),
            "feature_neurons": carriers,
        })
    return neuron_rows, instance_rows


@click.command(name="neurons")
@click.argument("store", type=click.Path(path_type=Path))
@click.option("--step", type=int, default=None, help="Recorded step to analyse (default: the last one).")
@click.option("--model", type=click.Choice(_MODELS), default=None,
              help="Model family, if the store's attrs['model'] is missing or wrong.")
@click.option("--dead-threshold", type=float, default=0.1, show_default=True,
              help="A neuron whose drive norm is below this is dead.")
@click.option("--mono-threshold", type=float, default=1.5, show_default=True,
              help="Monosemantic when the effective number of features is at most this.")
@click.option("--feature-fraction", type=float, default=0.3, show_default=True,
              help="A feature drives a neuron when its drive is at least this fraction of the neuron's largest.")
@click.option("--sign", type=click.Choice(["auto", "positive", "both"]), default="auto", show_default=True,
              help="Which weights drive a neuron: positive only (hidden_relu) or either sign (abs).")
@click.option("--save", is_flag=True, help="Also write the result into STORE under analysis/neurons.")
@format_option()
@output_option()
def neurons_command(store: Path, step: int | None, model: str | None, dead_threshold: float,
                    mono_threshold: float, feature_fraction: float, sign: str, save: bool,
                    fmt: str, output: Path | None) -> None:
    """Which features drive each neuron of a privileged basis, and how polysemantic it is."""
    from toyanalysis.neurons import neurons

    ds = _open(store)
    result = neurons(ds, steps=[_last_step(ds, step)], model=model, dead_threshold=dead_threshold,
                     mono_threshold=mono_threshold, feature_fraction=feature_fraction, sign=sign)
    if save:
        _save(store, result, "neurons")
    neuron_rows, instance_rows = neuron_records(result)
    if fmt == "json":
        write_json({
            "store": str(store),
            "step": _clean(result["step"].values[0]),
            "model": result.attrs["model"],
            "sign": result.attrs["sign"],
            "thresholds": {key: result.attrs[key] for key in ("dead_threshold", "mono_threshold", "feature_fraction")},
            "neurons": neuron_rows,
            "instances": instance_rows,
        }, output)
        return
    if fmt == "csv":
        fractions = {row["instance"]: row["monosemantic_fraction"] for row in instance_rows}
        rows = [{**row, "features": " ".join(map(str, row["features"])),
                 "weights": " ".join(map(str, row["weights"])),
                 "monosemantic_fraction": fractions[row["instance"]]} for row in neuron_rows]
        _write_tables([("neurons", rows)], fmt, output)
        return
    shown = [{**row, "features": ",".join(map(str, row["features"])) or "-"} for row in neuron_rows]
    for row in shown:
        row.pop("weights")
    summary = [{k: v for k, v in row.items() if k != "feature_neurons"} for row in instance_rows]
    _write_tables([(f"neurons at step {int(result['step'].values[0])}", shown), ("per instance", summary)],
                  fmt, output)


COMMANDS = [neurons_command]
