"""The ``neurons`` command: what each neuron reads and writes, and how each feature is computed.

It opens a store, calls :func:`toyanalysis.polysemanticity.neurons` at one step
and prints the result with one library call: a readable table
(:func:`~toyanalysis.polysemanticity.neuron_text`), JSON
(:func:`~toyanalysis.polysemanticity.neuron_records`, schema in
``docs/neurons.md``) or CSV (:func:`~toyanalysis.polysemanticity.neuron_frame`).
The threshold options are made from :class:`toyanalysis.params.NeuronParams`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from toyanalysis.config import MODELS
from toyanalysis.params import NeuronParams
from toyanalysis_cli._common import (
    format_option,
    open_checked,
    output_option,
    save_option,
    save_result,
    write_frame,
    write_json,
    write_text,
)
from toyanalysis_cli._params import params_from, params_options


@click.command(name="neurons")
@click.argument("store", type=click.Path(path_type=Path))
@click.option(
    "--step", type=int, default=None, help="Recorded step to analyse (default: the last)."
)
@click.option(
    "--model",
    type=click.Choice(MODELS),
    default=None,
    help="Model family, if the store's attrs['model'] is missing or wrong "
    "(a family with a privileged basis; the others are refused).",
)
@params_options(NeuronParams)
@save_option("neurons")
@format_option()
@output_option()
def neurons_command(
    store: Path,
    step: int | None,
    model: str | None,
    save: bool,
    fmt: str,
    output: Path | None,
    **options: Any,
) -> None:
    """What each neuron of a privileged basis reads and writes, and how each feature is computed."""
    from toyanalysis.polysemanticity import neuron_frame, neuron_records, neuron_text, neurons

    params = params_from(NeuronParams, options)
    ds = open_checked(store)
    steps = "last" if step is None else [step]
    result = neurons(ds, params, steps=steps, model=model).compute()  # one step: small
    if save:
        save_result(store, result, "neurons")
    if fmt == "json":
        chosen = int(result["step"].values[0])
        write_json({"store": str(store), "step": chosen, **neuron_records(result)}, output)
    elif fmt == "csv":
        write_frame(neuron_frame(result), "csv", output)
    else:
        write_text(neuron_text(result), output)


COMMANDS = [neurons_command]
