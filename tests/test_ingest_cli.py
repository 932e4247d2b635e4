"""The ingest command: warnings as lines on stderr, refusals in one line, no traceback."""

from __future__ import annotations

import numpy as np
import torch
from ingest_helpers import normal


def _notebook_run(folder, steps=(0, 100, 200), instances=10):
    folder.mkdir()
    for step in steps:
        torch.save(
            {"W": torch.from_numpy(normal(instances, 5, 2)), "b_final": torch.zeros(instances, 5),
             "loss": torch.tensor(1.5)},
            folder / f"step_{step}.pt",
        )  # fmt: skip


def test_warnings_are_lines_on_stderr_and_eval_loss_works_with_a_preset(cli, tmp_path):
    _notebook_run(tmp_path / "ckpts")
    result = cli("ingest", tmp_path / "ckpts", "-o", tmp_path / "run.zarr", "--preset", "intro")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == (
        f"warning: {tmp_path / 'ckpts'}/step_0.pt and 2 more: loss is one number per checkpoint, "
        "not one per instance (e.g. the sum over the 10 instances): kept as run_loss (step), not as loss"
    )
    assert lines[-1].startswith(f"wrote {tmp_path / 'run.zarr'}: 3 steps x 10 instances, n=5, m=2")
    phases = cli("phases", tmp_path / "run.zarr", "--eval-loss", "128", "--format", "json")
    assert phases.exit_code == 0, phases.output


def test_config_file(cli, tmp_path):
    _notebook_run(tmp_path / "ckpts", instances=2)
    (tmp_path / "run.toml").write_text(
        'n_features = 5\nn_hidden = 2\nimportance = 0.8\nseeds = 2\nmodel = "linear"\n'
    )
    result = cli(
        "ingest", tmp_path / "ckpts", "-o", tmp_path / "run.zarr", "--config", tmp_path / "run.toml"
    )
    assert result.exit_code == 0, result.output
    info = cli("info", tmp_path / "run.zarr")
    assert "linear" in info.stdout


def test_refusals_are_one_line_without_traceback(cli, tmp_path):
    _notebook_run(tmp_path / "a")
    _notebook_run(tmp_path / "b")
    result = cli("ingest", tmp_path / "a", tmp_path / "b", "-o", tmp_path / "run.zarr")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: several checkpoints have step 0:")
    stacked = cli("ingest", tmp_path / "a", tmp_path / "b", "-o", tmp_path / "run.zarr", "--as-instances",
                  "--model", "relu_output", "--importance", "1")  # fmt: skip
    assert stacked.exit_code == 0, stacked.output
    assert "run_loss (one number per checkpoint of each SOURCE) cannot be split" in stacked.stderr


def test_pickles_need_allow_pickle(cli, tmp_path):
    torch.save(
        {"W": torch.zeros(3, 5, 2), "b_final": torch.zeros(3, 5), "cfg": np.dtype("f4")},
        tmp_path / "step_1.pt",
    )
    result = cli("ingest", tmp_path / "step_1.pt", "-o", tmp_path / "run.zarr")
    assert result.exit_code == 1
    assert result.stderr.rstrip().endswith("pass --allow-pickle if you trust this file")
    result = cli("ingest", tmp_path / "step_1.pt", "-o", tmp_path / "run.zarr", "--allow-pickle")
    assert result.exit_code == 0, result.output


def test_bad_option_values(cli, tmp_path):
    _notebook_run(tmp_path / "ckpts", steps=(5,))
    out = tmp_path / "run.zarr"
    assert cli("ingest", tmp_path / "ckpts", "-o", out, "--rename", "nothing").exit_code == 2
    both = cli("ingest", tmp_path / "ckpts", "-o", out, "--preset", "intro", "--config", "x.toml")
    assert both.exit_code == 2
    bad = cli("ingest", tmp_path / "ckpts", "-o", out, "--model", "mlp")
    assert bad.exit_code == 1 and "unknown model 'mlp'; use one of relu_output" in bad.stderr
