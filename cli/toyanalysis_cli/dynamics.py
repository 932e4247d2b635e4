"""Commands about change: phases over training and phase diagrams over sweeps.

Each command parses, opens the store, calls one library function
(:func:`toyanalysis.phases`, :func:`toyanalysis.phase_diagram`) and prints the
result with the library's own readers: text, JSON (schema in
``docs/phases.md``) or a tidy CSV table. Their parameter options are made from
:class:`~toyanalysis.params.PhaseParams` and
:class:`~toyanalysis.params.DiagramParams`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from toyanalysis.errors import ConfigError
from toyanalysis.params import DiagramParams, PhaseParams
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


# --- shared helpers (also used by the neurons command) ---------------------------------------
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
    "--llc",
    "with_llc",
    is_flag=True,
    help="Join the saved λ̂ (toyanalysis llc STORE --save): λ̂ per phase, Δλ̂ per transition.",
)
@params_options(PhaseParams)
@save_option("phases")
@format_option()
@output_option()
def phases_command(
    store: Path,
    instances: tuple[int, ...],
    with_llc: bool,
    save: bool,
    fmt: str,
    output: Path | None,
    **options: Any,
) -> None:
    """Phases and transitions of each instance's geometry over training, with loss drops."""
    from toyanalysis.phase_changes import phase_document, phase_events, phase_text, phases

    params = params_from(PhaseParams, options)
    ds = open_checked(store)
    estimates = _saved_llc(store) if with_llc else None
    result = phases(ds, params, instances=list(instances) or None, llc=estimates)
    if save:
        save_result(store, result, "phases")
    if fmt == "csv":
        write_frame(phase_events(result), "csv", output)
    elif fmt == "json":
        write_json({"store": str(store), **phase_document(result)}, output)
    else:
        write_text(phase_text(result), output)


def _saved_llc(store: Path) -> Any:
    """The store's saved ``analysis/llc``; one line saying how to make it when there is none."""
    from toyanalysis.errors import StoreError
    from toyanalysis.store import open_analysis

    try:
        return open_analysis(store, "llc")
    except StoreError:
        raise ConfigError(
            f"{store}: no saved llc result; run `toyanalysis llc {store} --save` first"
        ) from None


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
@params_options(DiagramParams)
@save_option("phase_diagram")
@format_option()
@output_option()
def phase_diagram_command(
    store: Path,
    axes: tuple[str, ...],
    feature: int | None,
    step: int | None,
    save: bool,
    fmt: str,
    output: Path | None,
    **options: Any,
) -> None:
    """What an extra feature does in each cell of a sweep (unlearned, superposed, dedicated)."""
    from toyanalysis.phase_changes import (
        diagram_cells,
        diagram_records,
        diagram_text,
        phase_diagram,
    )

    params = params_from(DiagramParams, options)
    try:
        result = phase_diagram(
            open_checked(store), params, axes=list(axes) or None, feature=feature, step=step
        )
    except ConfigError as err:
        raise _with_hint(err) from None
    if save:
        save_result(store, result, "phase_diagram")
    if fmt == "json":
        write_json({"store": str(store), **diagram_records(result)}, output)
    elif fmt == "csv":
        write_frame(diagram_cells(result), "csv", output)
    else:
        write_text(diagram_text(result), output)


def _with_hint(err: ConfigError) -> ConfigError:
    """A library error about the sweep axes, with the option that names them."""
    return ConfigError(f"{err} (--axis NAME)") if "axes=" in str(err) else err


COMMANDS = [phases_command, phase_diagram_command]
