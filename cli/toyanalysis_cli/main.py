"""Entry point of the ``toyanalysis`` command.

Each command lives in a module of its own and only parses, calls one public
function of the library, and prints. Heavy libraries (torch, xarray, zarr,
holoviews) are imported inside the commands so that ``--help`` stays fast.
"""

from __future__ import annotations

import os

import click

from toyanalysis import __version__
from toyanalysis_cli import analysis, dynamics, llc, neurons, report
from toyanalysis_cli import run as run_commands
from toyanalysis_cli._common import Group

# Every command module exposes a list ``COMMANDS``; none imports a heavy or
# optional library at import time, so a missing extra fails only its command,
# with one line naming the extra (``_common.Group``).
_COMMAND_MODULES = (run_commands, analysis, dynamics, neurons, llc, report)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="toyanalysis")
def main() -> None:
    """Study superposition in toy models: train, keep every checkpoint, classify geometry."""


for _module in _COMMAND_MODULES:
    for _command in _module.COMMANDS:
        main.add_command(_command)


def run() -> None:
    """The ``toyanalysis`` executable: one BLAS thread, then the command line.

    The matrices here are small: one BLAS thread is faster, and on 2 shared
    cores a second thread made classify 2-3x slower. Set here, before NumPy is
    first imported (commands import it lazily), and only for the executable:
    importing this module changes nothing.
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    main()


if __name__ == "__main__":
    run()
