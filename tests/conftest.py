"""Shared fixtures: small configs, trained stores, and a CLI runner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def small_config():
    from toyanalysis import preset

    return preset("intro").override(steps=300, record="every:50", batch_size=256)


@pytest.fixture(scope="session")
def intro_store(tmp_path_factory) -> Path:
    """The intro preset trained briefly (read-only for tests)."""
    from toyanalysis import preset, train

    path = tmp_path_factory.mktemp("stores") / "intro.zarr"
    train(preset("intro").override(steps=400, record="every:100"), path)
    return path


@pytest.fixture
def cli():
    """Run the command line in-process: cli(args...) -> click Result (stderr kept apart)."""
    from click.testing import CliRunner
    from toyanalysis_cli.main import main

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(
            main, [str(a) for a in args], catch_exceptions=False, prog_name="toyanalysis"
        )

    return invoke
