"""The phases, phase-diagram and neurons commands: formats, stdout/stderr, errors."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from toyanalysis import testing
from toyanalysis.phase_changes import LABELS
from toyanalysis.store import open_analysis, write_store


@pytest.fixture
def forced_store(tmp_path):
    """n=4, m=2: two digons for 10 records, then a triangle + 1 unlearned; loss drops 5x."""
    rng = np.random.default_rng(0)
    square, triangle = testing.tegum("digon", "digon"), testing.tegum("triangle", dead=1)
    W = np.stack([testing.rotate(square if t < 10 else triangle, rng) for t in range(20)])[:, None]
    loss = np.where(np.arange(20) < 10, 1e-2, 2e-3)[:, None]
    path = tmp_path / "forced.zarr"
    write_store(path, testing.as_dataset(W, steps=np.arange(20) * 100, loss=loss, seed=[3]))
    return path


@pytest.fixture
def grid_store(tmp_path):
    """n=2, m=1 over two cells of a sweep: the extra feature 1 unlearned, then superposed."""
    unlearned, digon = testing.tegum("dedicated", dead=1), testing.polytope("digon")
    W = np.stack([unlearned] * 3 + [digon] * 3)[None]
    importance = np.ones((6, 2))
    importance[:, 1] = [0.1] * 3 + [0.2] * 3
    path = tmp_path / "grid.zarr"
    ds = testing.as_dataset(
        W,
        importance=importance,
        sweep={"extra_importance": importance[:, 1]},
        loss=[[0.1, 0.2, 0.3, 0.1, 0.2, 0.3]],
    )
    write_store(path, ds)
    return path


@pytest.fixture
def neuron_store(tmp_path):
    """hidden_relu, m=3, n=4: a monosemantic, a polysemantic and a dead neuron."""
    W = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.9, 0.9, -0.5], [0.0, 0.0, 0.0, 0.0]])
    path = tmp_path / "neurons.zarr"
    write_store(path, testing.as_dataset(W, model="hidden_relu", sweep={"base_density": [0.1]}))
    return path


# --- neurons ------------------------------------------------------------------------------------
def test_neurons_json(cli, neuron_store):
    result = cli("neurons", neuron_store, "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["model"] == "hidden_relu" and data["sign"] == "positive"
    rows = {row["neuron"]: row for row in data["neurons"]}
    assert [rows[h]["label"] for h in range(3)] == ["monosemantic", "polysemantic", "dead"]
    assert rows[1]["features"] == [1, 2] and rows[1]["score"] == pytest.approx(2.0)
    assert rows[2]["score"] is None and rows[2]["features"] == []
    assert rows[0]["coords"] == {"base_density": 0.1}
    (instance,) = data["instances"]
    assert instance["monosemantic_fraction"] == pytest.approx(0.5)
    carriers = {entry["feature"]: entry["neurons"] for entry in instance["feature_neurons"]}
    assert carriers == {0: [0], 1: [1], 2: [1], 3: []}


def test_neurons_table_and_csv(cli, neuron_store, tmp_path):
    table = cli("neurons", neuron_store)
    assert table.exit_code == 0
    assert "per instance" in table.stdout and "polysemantic" in table.stdout
    csv = cli("neurons", neuron_store, "--format", "csv")
    frame = pd.read_csv(io.StringIO(csv.stdout))
    assert frame["label"].tolist() == ["monosemantic", "polysemantic", "dead"]
    assert set(frame["monosemantic_fraction"]) == {0.5}
    out = tmp_path / "n.csv"
    written = cli("neurons", neuron_store, "--format", "csv", "-o", out)
    assert written.stdout == "" and f"wrote {out}" in written.stderr
    assert pd.read_csv(out).shape[0] == 3


def test_neurons_options_and_save(cli, neuron_store):
    both = json.loads(cli("neurons", neuron_store, "--format", "json", "--sign", "both").stdout)
    assert both["neurons"][1]["features"] == [1, 2, 3]
    saved = cli("neurons", neuron_store, "--save", "--format", "json")
    assert "saved" in saved.stderr
    assert set(open_analysis(neuron_store, "neurons")["label"].values.ravel()) == {
        "monosemantic",
        "polysemantic",
        "dead",
    }


def test_neurons_errors_are_one_line(cli, forced_store, tmp_path):
    result = cli("neurons", forced_store)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: neurons need a privileged basis")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert cli("neurons", forced_store, "--model", "hidden_relu").exit_code == 0
    missing = cli("neurons", tmp_path / "nope.zarr")
    assert missing.exit_code == 1 and "no such store" in missing.stderr
    bad_step = cli("neurons", forced_store, "--model", "hidden_relu", "--step", "5")
    assert bad_step.exit_code == 1 and "step 5 is not recorded" in bad_step.stderr
    bad_threshold = cli("neurons", forced_store, "--model", "hidden_relu", "--mono-threshold", "0")
    assert bad_threshold.exit_code == 1 and "mono_threshold" in bad_threshold.stderr


def test_neurons_options_are_made_from_neuron_params(cli, neuron_store):
    from toyanalysis.params import NeuronParams

    help_text = cli("neurons", "--help").stdout
    for path, _, _ in NeuronParams.options():
        flag = "--" + path[-1].replace("_", "-")
        assert flag in help_text, flag
    bad = cli("neurons", neuron_store, "--feature-fraction", "2")
    assert bad.exit_code == 1 and "(--feature-fraction)" in bad.stderr
    strict = json.loads(
        cli("neurons", neuron_store, "--format", "json", "--mono-threshold", "2.5").stdout
    )
    assert [row["label"] for row in strict["neurons"]] == ["monosemantic", "monosemantic", "dead"]
    assert strict["thresholds"]["mono_threshold"] == 2.5


def test_saved_neurons_keep_the_store_a_datatree(cli, tmp_path):
    import warnings

    import xarray as xr

    from toyanalysis import testing

    W = np.stack([np.eye(2, 3), np.ones((2, 3))])[:, None]  # 2 steps; --save keeps the last
    path = tmp_path / "two.zarr"
    write_store(path, testing.as_dataset(W, steps=[0, 10], model="hidden_relu"))
    assert cli("neurons", path, "--save").exit_code == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # no consolidated metadata
        tree = xr.open_datatree(path, engine="zarr")
    assert "analysis" in tree.children
    saved = open_analysis(path, "neurons")
    assert saved["step"].values.tolist() == [10]
    assert saved["label"].values.ravel().tolist() == ["polysemantic", "polysemantic"]


def test_neurons_and_report_commands_import_light():
    import subprocess
    import sys

    code = (
        "import sys, toyanalysis_cli.neurons, toyanalysis_cli.report\n"
        "print(sorted(m for m in ('torch', 'xarray', 'holoviews', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- phases ---------------------------------------------------------------------------------------
def test_phases_json(cli, forced_store):
    result = cli("phases", forced_store, "--format", "json", "--loss-window", "3")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert (
        data["settings"]["loss_window"] == 3
        and data["settings"]["loss_source"] == "store (no config)"
    )
    (record,) = data["instances"]
    assert record["instance"] == 0 and record["coords"] == {"seed": 3}
    assert [p["start_step"] for p in record["phases"]] == [0, 1000]
    assert [p["end_step"] for p in record["phases"]] == [900, 1900]
    (transition,) = record["transitions"]
    assert transition["step"] == 1000
    assert "digon" in transition["from"] and "triangle" in transition["to"]
    assert transition["loss_before"] == pytest.approx(1e-2) and transition[
        "loss_after"
    ] == pytest.approx(2e-3)
    (drop,) = record["loss_drops"]
    assert drop["step"] == 1000 and drop["size"] == pytest.approx(8e-3)
    assert drop["transition"] == {"step": 1000, "from": transition["from"], "to": transition["to"]}
    assert sorted(j["to"] for j in record["feature_jumps"]) == [
        "2/3",
        "2/3",
        "2/3",
    ]  # the dropped feature: none


def test_phases_table_csv_and_save(cli, forced_store):
    table = cli("phases", forced_store, "--loss-window", "3")
    assert table.exit_code == 0
    for title in ("phases", "transitions", "loss drops", "feature dimensionality jumps"):
        assert title in table.stdout
    frame = pd.read_csv(io.StringIO(cli("phases", forced_store, "--format", "csv").stdout))
    assert frame.loc[frame["event"] == "transition", "step"].tolist() == [1000]
    assert (frame["instance"] == 0).all()
    saved = cli("phases", forced_store, "--save", "--format", "json")
    assert saved.exit_code == 0 and "saved" in saved.stderr
    assert int(open_analysis(forced_store, "phases")["transition_step"].values[0]) == 1000


def test_phases_flicker_option_and_errors(cli, forced_store):
    # with a minimum of 11 records no configuration lasts long enough: one phase
    data = json.loads(cli("phases", forced_store, "--format", "json", "--min-records", "11").stdout)
    assert len(data["instances"][0]["phases"]) == 1
    bad = cli("phases", forced_store, "--instance", "4")
    assert bad.exit_code == 1 and bad.stderr.startswith("Error: instance 4")
    no_config = cli("phases", forced_store, "--eval-loss", "100")
    assert no_config.exit_code == 1 and "config" in no_config.stderr
    usage = cli("phases", forced_store, "--min-records", "0")
    assert usage.exit_code == 2


# --- phase-diagram ------------------------------------------------------------------------------------
def test_phase_diagram_json(cli, grid_store):
    result = cli("phase-diagram", grid_store, "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["axes"] == ["extra_importance"] and data["feature"] == 1
    cells = {cell["extra_importance"]: cell for cell in data["cells"]}
    assert cells[0.1]["label"] == "unlearned" and cells[0.2]["label"] == "superposed"
    assert cells[0.1]["n_seeds"] == 3 and cells[0.1]["majority_label"] == "unlearned"
    assert cells[0.1]["best_instance"] is not None and 0 < cells[0.1]["agreement"] <= 1.0
    assert sum(cells[0.1][f"fraction_{label}"] for label in LABELS) == pytest.approx(1.0)
    labels = [b for b in data["boundaries"] if b["kind"] == "label"]
    assert labels == [
        {
            "axis": "extra_importance",
            "kind": "label",
            "at": {},
            "lower": 0.1,
            "upper": 0.2,
            "position": pytest.approx(np.sqrt(0.02)),
            "from": "unlearned",
            "to": "superposed",
        }
    ]


def test_phase_diagram_table_csv_and_errors(cli, grid_store):
    table = cli("phase-diagram", grid_store)
    assert table.exit_code == 0 and "boundaries" in table.stdout and "superposed" in table.stdout
    frame = pd.read_csv(io.StringIO(cli("phase-diagram", grid_store, "--format", "csv").stdout))
    assert frame["label"].tolist() == ["unlearned", "superposed"]
    bad_axis = cli("phase-diagram", grid_store, "--axis", "nope")
    assert bad_axis.exit_code == 1 and "'nope' is not a 1-D instance coordinate" in bad_axis.stderr
    bad_feature = cli("phase-diagram", grid_store, "--feature", "9")
    assert bad_feature.exit_code == 1 and "feature 9" in bad_feature.stderr
    chosen = json.loads(
        cli("phase-diagram", grid_store, "--format", "json", "--feature", "0").stdout
    )
    assert chosen["feature"] == 0 and chosen["feature_rule"] == "given"


def test_commands_on_a_trained_preset(cli, tmp_path):
    """abs-small trained briefly: every command runs on a real store."""
    from toyanalysis import preset, train

    path = tmp_path / "abs.zarr"
    train(preset("abs-small").override(steps=3000, record="every:500", seeds=2), path)
    neurons = json.loads(cli("neurons", path, "--format", "json").stdout)
    # Issue 12: this run's seed 1 is the broken |x| solution (feature 0 read by two
    # neurons of the same sign, loss ~0.02); reading only W1, the old code called every
    # neuron monosemantic. Seed 0 converged to the clean pairs; seed 1 must not pass.
    by_instance = {inst["instance"]: inst for inst in neurons["instances"]}
    clean, broken = by_instance[0], by_instance[1]
    labels = {i: {r["label"] for r in neurons["neurons"] if r["instance"] == i} for i in (0, 1)}
    assert labels[0] == {"monosemantic"}
    assert all(
        entry["label"] == "pair" and len(entry["neurons"]) == 2
        for entry in clean["feature_neurons"]
    )
    feature0 = broken["feature_neurons"][0]
    assert feature0["label"] != "pair" and feature0["n_positive"] * feature0["n_negative"] == 0
    assert broken["monosemantic_fraction"] < 1 and broken["clean_fraction"] < 1
    phases = cli("phases", path, "--format", "json", "--eval-loss", "1024")
    assert phases.exit_code == 0, phases.stderr
    assert len(json.loads(phases.stdout)["instances"]) == 2
    diagram = cli("phase-diagram", path, "--axis", "seed")
    assert diagram.exit_code == 0, diagram.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["phases"],
        ["neurons", "--model", "hidden_relu"],
        ["phase-diagram", "--axis", "instance"],
        ["report", "-o", "{tmp}/r.html"],
    ],
)
def test_nan_weights_are_refused_in_one_line(cli, tmp_path, args):
    import numpy as np

    from toyanalysis import testing

    W = np.ones((2, 2, 2, 3), np.float32)
    W[1, 0, 1, 2] = np.inf
    path = tmp_path / "nan.zarr"
    testing.as_dataset(W, steps=[0, 5]).to_zarr(path, zarr_format=3, consolidated=False)
    command, *rest = args
    result = cli(command, path, *[a.format(tmp=tmp_path) for a in rest])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: {path}: variable W has NaN or inf values (first at step=5, instance=0)"
    )
    assert not (tmp_path / "r.html").exists()
