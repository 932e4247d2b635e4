"""Commands about change: phases over training and phase diagrams over sweeps.

Each command opens a store, calls one library function
(:func:`toyanalysis.phase_changes.phases`, :func:`toyanalysis.phase_changes.phase_diagram`)
and prints the result as a table, JSON (schema in ``docs/phases.md``) or CSV.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from toyanalysis_cli._common import (
    classifier_options,
    format_option,
    open_checked,
    output_option,
    save_option,
    save_result,
    write_frame,
    write_json,
    write_text,
)


# --- shared helpers ------------------------------------------------------------------------
def frame(rows: list[dict[str, Any]]) -> Any:
    import pandas as pd

    return pd.DataFrame(rows)


def write_blocks(blocks: list[tuple[str, list[dict[str, Any]]]], output: Path | None) -> None:
    """Titled tables, one after the other, as readable text."""
    parts = []
    for title, rows in blocks:
        body = frame(rows).to_string(index=False) if rows else "(none)"
        parts.append(f"{title}\n{body}")
    write_text("\n\n".join(parts), output)


def _short(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value


# --- phases ----------------------------------------------------------------------------------
@click.command(name="phases")
@click.argument("store", type=click.Path(path_type=Path))
@click.option(
    "--instance",
    "instances",
    type=int,
    multiple=True,
    help="Only these instances (repeat the option; default all).",
)
@click.option(
    "--min-records",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="A configuration must hold this many records to start a phase.",
)
@click.option(
    "--min-steps",
    type=click.IntRange(min=0),
    default=None,
    help="... and last this many steps (default: 1% of the recorded span).",
)
@click.option(
    "--loss-window",
    type=click.IntRange(min=1),
    default=None,
    help="Records on each side when comparing loss levels (default: records/50, >= 2).",
)
@click.option(
    "--min-drop",
    type=float,
    default=0.05,
    show_default=True,
    help="Smallest loss drop reported, in decades (log10).",
)
@click.option(
    "--noise-factor",
    type=float,
    default=4.0,
    show_default=True,
    help="A drop must also exceed this many robust standard deviations of the loss noise.",
)
@click.option(
    "--fraction-tol",
    type=float,
    default=0.02,
    show_default=True,
    help="Snap a feature's dimensionality to a fraction d/k within this distance.",
)
@click.option(
    "--eval-loss",
    "eval_batch",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Use the loss on one fixed batch of N samples instead of the noisy training loss.",
)
@classifier_options
@save_option("phases")
@format_option()
@output_option()
def phases_command(
    store: Path,
    instances: tuple[int, ...],
    min_records: int,
    min_steps: int | None,
    loss_window: int | None,
    min_drop: float,
    noise_factor: float,
    fraction_tol: float,
    eval_batch: int | None,
    norm_threshold: float | None,
    overlap_tol: float | None,
    save: bool,
    fmt: str,
    output: Path | None,
) -> None:
    """Phases and transitions of each instance's geometry over training, with loss drops."""
    from toyanalysis.phase_changes import phase_events, phase_records, phases

    result = phases(
        open_checked(store),
        instances=list(instances) or None,
        norm_threshold=norm_threshold,
        overlap_tol=overlap_tol,
        min_records=min_records,
        min_steps=min_steps,
        loss_window=loss_window,
        min_drop=min_drop,
        noise_factor=noise_factor,
        fraction_tol=fraction_tol,
        eval_batch=eval_batch,
    )
    if save:
        save_result(store, result, "phases")
    if fmt == "csv":
        write_frame(phase_events(result), "csv", output)
        return
    records = phase_records(result)
    if fmt == "json":
        settings = (
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
        write_json(
            {
                "store": str(store),
                "settings": {k: result.attrs.get(k) for k in settings},
                "instances": records,
            },
            output,
        )
        return
    write_blocks(_phase_tables(records), output)


def _phase_tables(records: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    phase_rows, transition_rows, drop_rows, jump_rows = [], [], [], []
    for record in records:
        base = {"instance": record["instance"], **record["coords"]}
        for p in record["phases"]:
            phase_rows.append(
                {**base, "start": p["start_step"], "end": p["end_step"], "summary": p["summary"]}
            )
        for t in record["transitions"]:
            transition_rows.append(
                {
                    **base,
                    "step": t["step"],
                    "from": t["from"],
                    "to": t["to"],
                    "loss_before": _short(t["loss_before"]),
                    "loss_after": _short(t["loss_after"]),
                }
            )
        for d in record["loss_drops"]:
            transition = d["transition"]
            drop_rows.append(
                {
                    **base,
                    "step": d["step"],
                    "size": _short(d["size"]),
                    "decades": round(d["change"], 3),
                    "transition": "-"
                    if transition is None
                    else f"{transition['step']}: -> {transition['to']}",
                    "features": ",".join(map(str, d["features"])) or "-",
                }
            )
        for j in record["feature_jumps"]:
            jump_rows.append(
                {
                    **base,
                    "feature": j["feature"],
                    "step": j["step"],
                    "from": j["from"],
                    "to": j["to"],
                }
            )
    return [
        ("phases", phase_rows),
        ("transitions", transition_rows),
        ("loss drops", drop_rows),
        ("feature dimensionality jumps", jump_rows),
    ]


# --- phase diagram -------------------------------------------------------------------------------
@click.command(name="phase-diagram")
@click.argument("store", type=click.Path(path_type=Path))
@click.option(
    "--axis",
    "axes",
    multiple=True,
    metavar="NAME",
    help="Sweep coordinate (repeat for 2-D; default: the store's sweep axes).",
)
@click.option(
    "--feature",
    type=int,
    default=None,
    help="The extra feature (default: the one whose importance/density varies alone, else the last).",
)
@click.option("--step", type=int, default=None, help="Recorded step to judge (default: the last).")
@click.option(
    "--loss-records",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Seeds are ranked by their mean loss over this many last records.",
)
@classifier_options
@click.option(
    "--eval-loss",
    "eval_batch",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Rank seeds by the loss on one fixed batch of N samples (less noisy).",
)
@save_option("phase_diagram")
@format_option()
@output_option()
def phase_diagram_command(
    store: Path,
    axes: tuple[str, ...],
    feature: int | None,
    step: int | None,
    loss_records: int,
    norm_threshold: float | None,
    overlap_tol: float | None,
    eval_batch: int | None,
    save: bool,
    fmt: str,
    output: Path | None,
) -> None:
    """What an extra feature does in each cell of a sweep (unlearned, superposed, dedicated)."""
    from toyanalysis.phase_changes import diagram_records, phase_diagram

    result = phase_diagram(
        open_checked(store),
        axes=list(axes) or None,
        feature=feature,
        step=step,
        loss_records=loss_records,
        eval_batch=eval_batch,
        norm_threshold=norm_threshold,
        overlap_tol=overlap_tol,
    )
    if save:
        save_result(store, result, "phase_diagram")
    records = diagram_records(result)
    if fmt == "json":
        write_json({"store": str(store), **records}, output)
        return
    if fmt == "csv":
        write_frame(frame(records["cells"]), "csv", output)
        return
    write_text(_diagram_text(records), output)


def _diagram_text(records: dict[str, Any]) -> str:
    axes = records["axes"]
    cells = frame(records["cells"])
    head = (
        f"feature {records['feature']} ({records['feature_rule']}) at step {records['step']}; "
        f"{records['seed_rule']}"
    )
    if len(axes) == 2:
        cells["cell"] = cells["label"] + cells["agreement"].map(
            lambda a: "" if a == 1 else f" ({a:.2f})"
        )
        grid = cells.pivot(index=axes[1], columns=axes[0], values="cell")
        grid.columns = [f"{c:.4g}" for c in grid.columns]
        grid.index = [f"{i:.4g}" for i in grid.index]
        body = f"rows: {axes[1]}, columns: {axes[0]}\n{grid.to_string()}"
    else:
        shown = [*axes, "label", "agreement", "n_seeds", "n_used", "configuration"]
        body = cells[shown].to_string(index=False)
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
    bounds = frame(rows).to_string(index=False) if rows else "(none)"
    return f"{head}\n\n{body}\n\nboundaries\n{bounds}"


COMMANDS = [phases_command, phase_diagram_command]
