from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from toyanalysis import open_store


def test_train_info_presets_round_trip(cli, tmp_path):
    out = tmp_path / "run.zarr"
    result = cli(
        "train",
        "--preset",
        "intro",
        "-o",
        out,
        "--steps",
        "120",
        "--record",
        "every:40",
        "--set",
        "batch_size=128",
        "--seed",
        "2",
    )
    assert result.exit_code == 0, result.output
    assert "training intro" in result.stderr and result.stdout == ""
    ds = open_store(out)
    assert ds["step"].values.tolist() == [0, 40, 80, 120]
    np.testing.assert_array_equal(ds["seed"].values, 2)
    info = cli("info", out, "--format", "json")
    assert info.exit_code == 0
    assert json.loads(info.stdout)["sizes"]["instance"] == 10
    table = cli("info", out)
    assert "relu_output" in table.stdout and "complete" in table.stdout
    listing = cli("presets")
    assert listing.stdout.splitlines()[0].startswith("intro ")
    assert len(listing.stdout.splitlines()) == 18


def test_train_from_toml_and_resume_flag(cli, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(
        'preset = "abs-small"\nrecord = "every:10"\n[train]\nsteps = 20\nbatch_size = 64\n'
    )
    out = tmp_path / "abs.zarr"
    assert cli("train", "--config", config, "-o", out).exit_code == 0
    assert open_store(out).attrs["model"] == "abs"
    again = cli("train", "--config", config, "-o", out, "--resume")
    assert again.exit_code == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--preset", "nope", "-o", "{tmp}/x.zarr"], "unknown preset 'nope'"),
        (["train", "-o", "{tmp}/x.zarr"], "exactly one of --preset"),
        (["train", "--preset", "intro", "-o", "{tmp}/x.zarr", "--set", "lr"], "FIELD=VALUE"),
        (
            ["train", "--preset", "intro", "-o", "{tmp}/x.zarr", "--set", "colour=1"],
            "unknown config field",
        ),
        (
            ["train", "--preset", "intro", "-o", "{tmp}/x.zarr", "--record", "often"],
            "bad record schedule",
        ),
        (["train", "--config", "{tmp}/none.toml", "-o", "{tmp}/x.zarr"], "no such config file"),
        (["train", "--preset", "intro", "-o", "{tmp}/x.zarr", "--resume"], "no such store"),
        (["info", "{tmp}/missing.zarr"], "no such store"),
        (["info", "{tmp}"], "not a Zarr store"),
        (["ingest", "{tmp}/none.pt", "-o", "{tmp}/x.zarr"], "no such file"),
    ],
)
def test_bad_input_gives_one_line_and_non_zero_exit(cli, tmp_path, args, message):
    result = cli(*[a.format(tmp=tmp_path) for a in args])
    assert result.exit_code != 0
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert [line for line in result.stderr.splitlines() if line.startswith("Error:")] == [
        line for line in result.stderr.splitlines() if "Error" in line
    ]
    assert len([line for line in result.stderr.splitlines() if line.startswith("Error:")]) == 1


def test_existing_output_needs_overwrite(cli, tmp_path):
    out = tmp_path / "run.zarr"
    args = ["train", "--preset", "intro", "-o", out, "--steps", "5", "--set", "batch_size=8"]
    assert cli(*args).exit_code == 0
    again = cli(*args)
    assert again.exit_code == 1 and "already exists (pass --overwrite" in again.stderr
    assert cli(*args, "--overwrite").exit_code == 0


def test_console_script_help_and_version():
    out = subprocess.run(
        [sys.executable, "-m", "toyanalysis_cli.main", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "0.1.0" in out.stdout
    for command in ("train", "info", "presets", "ingest"):
        help_ = subprocess.run(
            [sys.executable, "-m", "toyanalysis_cli.main", command, "--help"],
            capture_output=True,
            text=True,
        )
        assert help_.returncode == 0 and "Usage:" in help_.stdout
