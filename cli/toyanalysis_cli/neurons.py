"""The ``neurons`` command: which features drive each neuron, and how polysemantic it is.

It opens a store, calls :func:`toyanalysis.polysemanticity.neurons` and prints
the result as a table, JSON (schema in ``docs/neurons.md``) or CSV.
"""

from __future__ import annotations

from pathlib import Path

import click

from toyanalysis_cli._common import (
    format_option,
    open_checked,
    output_option,
    save_option,
    save_result,
    write_frame,
    write_json,
)
from toyanalysis_cli.dynamics import frame, write_blocks

_MODELS = ("hidden_relu", "abs")


# --- neurons ---------------------------------------------------------------------------------------
@click.command(name="neurons")
@click.argument("store", type=click.Path(path_type=Path))
@click.option(
    "--step", type=int, default=None, help="Recorded step to analyse (default: the last)."
)
@click.option(
    "--model",
    type=click.Choice(_MODELS),
    default=None,
    help="Model family, if the store's attrs['model'] is missing or wrong.",
)
@click.option(
    "--dead-threshold",
    type=float,
    default=0.1,
    show_default=True,
    help="A neuron whose drive norm is below this is dead.",
)
@click.option(
    "--mono-threshold",
    type=float,
    default=1.5,
    show_default=True,
    help="Monosemantic when the effective number of features is at most this.",
)
@click.option(
    "--feature-fraction",
    type=float,
    default=0.3,
    show_default=True,
    help="A feature drives a neuron at this fraction of its largest drive or more.",
)
@click.option(
    "--sign",
    type=click.Choice(["auto", "positive", "both"]),
    default="auto",
    show_default=True,
    help="Which weights drive a neuron: positive (hidden_relu), both (abs).",
)
@save_option("neurons")
@format_option()
@output_option()
def neurons_command(
    store: Path,
    step: int | None,
    model: str | None,
    dead_threshold: float,
    mono_threshold: float,
    feature_fraction: float,
    sign: str,
    save: bool,
    fmt: str,
    output: Path | None,
) -> None:
    """Which features drive each neuron of a privileged basis, and how polysemantic it is."""
    from toyanalysis.polysemanticity import neuron_records, neurons

    ds = open_checked(store)
    chosen = int(ds["step"].values[-1]) if step is None else step
    result = neurons(
        ds,
        steps=[chosen],
        model=model,
        dead_threshold=dead_threshold,
        mono_threshold=mono_threshold,
        feature_fraction=feature_fraction,
        sign=sign,
    )
    if save:
        save_result(store, result, "neurons")
    records = neuron_records(result)
    if fmt == "json":
        write_json({"store": str(store), "step": chosen, **records}, output)
        return
    fractions = {row["instance"]: row["monosemantic_fraction"] for row in records["instances"]}
    rows = []
    for row in records["neurons"]:
        flat = {
            "instance": row["instance"],
            **row["coords"],
            "neuron": row["neuron"],
            "label": row["label"],
            "score": row["score"],
            "strength": row["strength"],
        }
        if fmt == "csv":
            flat.update(
                features=" ".join(map(str, row["features"])),
                weights=" ".join(map(str, row["weights"])),
                monosemantic_fraction=fractions[row["instance"]],
            )
        else:
            flat.update(
                score=None if row["score"] is None else round(row["score"], 3),
                strength=round(row["strength"], 3),
                features=",".join(map(str, row["features"])) or "-",
            )
        rows.append(flat)
    if fmt == "csv":
        write_frame(frame(rows), "csv", output)
        return
    summary = [
        {
            "instance": r["instance"],
            **r["coords"],
            **{
                k: r[k]
                for k in ("monosemantic_fraction", "n_monosemantic", "n_polysemantic", "n_dead")
            },
        }
        for r in records["instances"]
    ]
    write_blocks(
        [
            (f"neurons at step {chosen} ({records['model']}, sign={records['sign']})", rows),
            ("per instance", summary),
        ],
        output,
    )


COMMANDS = [neurons_command]
