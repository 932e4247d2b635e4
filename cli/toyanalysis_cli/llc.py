"""The ``llc`` command: the local learning coefficient of every selected checkpoint.

It opens a store, calls :func:`toyanalysis.llc` with the options made from
:class:`~toyanalysis._llc.LLCParams`, and prints a table, JSON (schema in
``docs/llc.md``) or CSV; ``--save`` also writes the result into the store.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import click

from toyanalysis._llc import LLCParams
from toyanalysis_cli._common import (
    format_option,
    open_checked,
    output_option,
    save_option,
    save_result,
    write_frame,
    write_json,
)
from toyanalysis_cli._params import params_from, params_options


@click.command(name="llc")
@click.argument("store", type=click.Path(path_type=Path))
@click.option(
    "--step",
    "steps",
    type=int,
    multiple=True,
    help="Recorded step to estimate at (repeatable; default: every recorded step).",
)
@click.option(
    "--instance",
    "instances",
    type=int,
    multiple=True,
    help="Instance label to estimate (repeatable; default: every instance).",
)
@click.option(
    "--device",
    default="cpu",
    show_default=True,
    help="Torch device for the chains: cpu, cuda or cuda:N.",
)
@params_options(LLCParams)
@save_option("llc")
@format_option()
@output_option()
def llc_command(
    store: Path,
    steps: tuple[int, ...],
    instances: tuple[int, ...],
    device: str,
    save: bool,
    fmt: str,
    output: Path | None,
    **options: Any,
) -> None:
    """Local learning coefficient λ̂ of each checkpoint, by SGLD (docs/llc.md)."""
    from toyanalysis._llc import llc, llc_frame, llc_records

    params = params_from(LLCParams, options)
    ds = open_checked(store)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = llc(
            ds,
            params,
            steps=list(steps) or None,
            instances=list(instances) or None,
            device=device,
        )
    for warning in caught:
        click.echo(f"warning: {warning.message}", err=True)
    if save:
        save_result(store, result, "llc")
    if fmt == "json":
        write_json({"store": str(store), **llc_records(result)}, output)
        return
    frame = llc_frame(result)
    if fmt == "table":
        frame = frame.round({"llc": 3, "llc_se": 3, "init_loss": 6})
    write_frame(frame, fmt, output)


COMMANDS = [llc_command]
