"""Entry point of the ``toyanalysis`` command.

Each command lives in a module of its own and only parses, calls one public
function of the library, and prints. Heavy libraries (torch, xarray, zarr,
holoviews) are imported inside the commands so that ``--help`` stays fast.
"""

from __future__ import annotations

import importlib
import os

# The matrices here are small: one BLAS thread is faster, and on 2 shared cores a
# second thread made classify 2-3x slower. Set before NumPy is first imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import click

from toyanalysis import __version__
from toyanalysis_cli._common import Group

# Modules that define commands; each exposes a list ``COMMANDS``.
_COMMAND_MODULES = (
    "toyanalysis_cli.run",
    "toyanalysis_cli.analysis",
    "toyanalysis_cli.dynamics",
    "toyanalysis_cli.neurons",
    "toyanalysis_cli.llc",
    "toyanalysis_cli.report",
)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="toyanalysis")
def main() -> None:
    """Study superposition in toy models: train, keep every checkpoint, classify geometry."""


for _name in _COMMAND_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as _err:
        if _err.name != _name:
            raise
        continue
    for _command in _module.COMMANDS:
        main.add_command(_command)


if __name__ == "__main__":
    main()
