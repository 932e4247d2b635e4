"""Helpers shared by the commands: error handling and result output.

Results go to stdout (or ``-o FILE``); progress and messages go to stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from toyanalysis.errors import ToyAnalysisError


class UserError(click.ClickException):
    """A one-line error for the user; exit status 1."""

    exit_code = 1


def fail(message: str) -> UserError:
    return UserError(message)


class Group(click.Group):
    """A click group that turns library errors into one clean line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ToyAnalysisError as err:
            raise UserError(str(err)) from None
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


FORMATS_TABLE = ("table", "json", "csv")


def format_option(choices: Sequence[str] = FORMATS_TABLE, default: str = "table") -> Callable:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(list(choices)),
        default=default,
        show_default=True,
        help="Output format: a readable table, JSON (schema in docs/), or a tidy table.",
    )


def output_option() -> Callable:
    return click.option(
        "-o",
        "--output",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Write the result to this file instead of stdout.",
    )


def classifier_options(command: Callable) -> Callable:
    """``--norm-threshold`` and ``--overlap-tol`` (None: classify's defaults)."""
    command = click.option(
        "--overlap-tol",
        type=float,
        default=None,
        help="Classifier: overlap graph edge threshold (classify's default).",
    )(command)
    return click.option(
        "--norm-threshold",
        type=float,
        default=None,
        help="Classifier: a feature is represented above this norm (classify's default).",
    )(command)


def save_option(name: str) -> Callable:
    return click.option(
        "--save", is_flag=True, help=f"Also write the result into STORE under analysis/{name}."
    )


def save_result(store: Path, result: Any, name: str) -> None:
    """Write an analysis result into the store (group ``analysis/<name>``) and say where."""
    from toyanalysis.store import save_analysis

    group = save_analysis(store, result, name)
    click.echo(f"saved {store}/{group}", err=True)


def write_text(text: str, output: Path | None) -> None:
    """Write text to the output file, or to stdout."""
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    try:
        output.write_text(text if text.endswith("\n") else text + "\n")
    except OSError as err:
        raise fail(f"cannot write {output}: {err.strerror}") from None
    click.echo(f"wrote {output}", err=True)


def write_json(obj: Any, output: Path | None) -> None:
    write_text(json.dumps(obj, indent=2, allow_nan=False, default=_json_default), output)


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_frame(frame: Any, fmt: str, output: Path | None) -> None:
    """Write a pandas DataFrame as ``table``, ``csv`` or ``parquet``."""
    if fmt == "csv":
        write_text(frame.to_csv(index=False), output)
    elif fmt == "parquet":
        if output is None:
            raise fail("--format parquet needs -o FILE (parquet is binary)")
        try:
            frame.to_parquet(output, index=False)
        except ImportError:
            raise fail("--format parquet needs pyarrow: pip install 'toyanalysis[io]'") from None
        click.echo(f"wrote {output}", err=True)
    else:
        write_text(frame.to_string(index=False), output)


def open_checked(store: Path) -> Any:
    """Open a store, refusing NaN or inf weights with one line naming where they are."""
    from toyanalysis.store import check_finite, open_store

    ds = open_store(store)
    check_finite(ds, str(store))
    return ds
