"""``toyanalysis report``: one self-contained HTML page with the plots that apply to a store.

The command calls :func:`toyanalysis.report.write_report`. The page needs no
server and no network (bokeh is inlined); step sliders work offline.
"""

from __future__ import annotations

from pathlib import Path

import click

from toyanalysis_cli._common import open_checked

# Same values as toyanalysis.report.MAX_FRAMES / MAX_INSTANCES (kept literal so
# --help does not import HoloViews; a test checks they agree).
MAX_FRAMES = 30
MAX_INSTANCES = 10


@click.command("report")
@click.argument("store", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The HTML file to write.",
)
@click.option(
    "--max-frames",
    type=click.IntRange(min=1),
    default=MAX_FRAMES,
    show_default=True,
    help="Most steps a view embeds for its slider (fewer for large models).",
)
@click.option(
    "--max-instances",
    type=click.IntRange(min=1),
    default=MAX_INSTANCES,
    show_default=True,
    help="Most instances shown as panels (evenly spaced over the sweep).",
)
@click.option("--title", default=None, help="Page title (default: the store's path).")
def report(
    store: Path, output: Path, max_frames: int, max_instances: int, title: str | None
) -> None:
    """Write an HTML report of STORE: loss, geometry, dimensionality, neurons, phase diagram.

    \b
    Example:
      toyanalysis report intro.zarr -o intro.html
    """
    from toyanalysis.report import write_report

    open_checked(store)

    def progress(name: str) -> None:
        click.echo(f"rendering {name}", err=True)

    path = write_report(
        store,
        output,
        title=title,
        max_frames=max_frames,
        max_instances=max_instances,
        progress=progress,
    )
    click.echo(f"wrote {path}", err=True)


COMMANDS = [report]
