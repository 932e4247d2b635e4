"""``toyanalysis report``: one self-contained HTML page with the plots that apply to a store.

The command calls :func:`toyanalysis.report.write_report` with a
:class:`toyanalysis.params.ReportParams` made from its options. The page
needs no server and no network (bokeh is inlined); step sliders work offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from toyanalysis.params import ReportParams
from toyanalysis_cli._common import open_checked, replacing
from toyanalysis_cli._params import params_from, params_options

# The report's defaults, read from ReportParams (importing it does not import HoloViews).
MAX_FRAMES = ReportParams().max_frames
MAX_INSTANCES = ReportParams().max_instances


@click.command("report")
@click.argument("store", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The HTML file to write.",
)
@params_options(ReportParams)
@click.option("--title", default=None, help="Page title (default: the store's path).")
def report(store: Path, output: Path, title: str | None, **options: Any) -> None:
    """Write an HTML report of STORE: loss, geometry, dimensionality, neurons, phase diagram.

    \b
    Example:
      toyanalysis report intro.zarr -o intro.html
    """
    from toyanalysis.report import write_report

    params = params_from(ReportParams, options)
    open_checked(store)

    def progress(name: str) -> None:
        click.echo(f"rendering {name}", err=True)

    with replacing(output) as target:  # atomic, as every result file (docs/commands.md)
        write_report(store, target, params, title=title, progress=progress)
    click.echo(f"wrote {output}", err=True)


COMMANDS = [report]
