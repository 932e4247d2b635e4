"""``toyanalysis classify`` on stores built by hand."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import zarr
from toyanalysis_cli import analysis

from toyanalysis import geometry, testing
from toyanalysis.store import open_analysis, write_store

STEPS = [0, 100, 200, 300]


@pytest.fixture
def store(tmp_path):
    """3 instances x 4 steps x 6 features: a pentagon, two digons, two dedicated features."""
    rng = np.random.default_rng(0)
    shapes = [("pentagon",), ("digon", "digon"), ("dedicated", "dedicated")]
    dead = [1, 2, 4]
    W = np.stack(
        [
            np.stack(
                [
                    testing.rotate(testing.tegum(*shapes[i], dead=dead[i], n_hidden=2), rng)
                    for i in range(3)
                ]
            )
            for _ in STEPS
        ]
    )
    densities = np.array([0.05, 0.2, 1.0])
    ds = testing.as_dataset(
        W,
        steps=STEPS,
        density=densities[:, None] * np.ones(6),
        importance=0.9 ** np.arange(6),
        sweep={"base_density": densities},
        seed=[0, 0, 0],
        loss=rng.random((4, 3)),
    )
    path = tmp_path / "run.zarr"
    write_store(path, ds)
    return path


def test_default_is_a_table_of_the_last_step_with_sweep_coordinates(cli, store):
    result = cli("classify", store)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = lines[0].split()
    for column in ("instance", "base_density", "density", "importance", "step", "summary"):
        assert column in header
    assert len(lines) == 4  # header + one row per instance
    assert "1 pentagon + 1 unlearned" in lines[1] and "300" in lines[1] and "0.05" in lines[1]
    assert "2 digon + 2 unlearned" in lines[2]
    assert "2 dedicated + 4 unlearned" in lines[3]
    assert "1..0.59" in lines[1]  # importance 0.9^i over the features


def test_json_follows_the_documented_schema(cli, store):
    result = cli("classify", store, "--format", "json")
    assert result.exit_code == 0
    records = json.loads(result.stdout)
    assert [(r["step"], r["instance"]) for r in records] == [(300, 0), (300, 1), (300, 2)]
    first = records[0]
    assert first["summary"] == "1 pentagon + 1 unlearned"
    assert first["dimensions_per_feature"] == pytest.approx(0.4, abs=1e-5)
    assert first["coords"]["base_density"] == 0.05
    (config,) = first["configurations"]
    assert config["kind"] == "pentagon"
    assert config["features"] == [0, 1, 2, 3, 4]
    assert (config["n_features"], config["n_dims"]) == (5, 2)
    assert config["fit"] == pytest.approx(1.0, abs=1e-5)
    feature = first["features"][0]
    assert feature["kind"] == "pentagon"
    assert feature["dimensionality"] == pytest.approx(0.4, abs=1e-5)
    assert set(feature) >= {"feature", "norm", "dimensionality", "kind"}
    assert first["features"][5]["kind"] == "unlearned"


def test_step_all_streams_csv_with_a_progress_bar(cli, store):
    result = cli("classify", store, "--step", "all", "--format", "csv")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 1 + 4 * 3 * 6
    header = lines[0].split(",")
    assert header[:3] == ["instance", "step", "feature"]
    for column in ("base_density", "density", "importance", "kind", "n_features", "summary"):
        assert column in header
    assert "classifying" in result.stderr


def test_csv_and_parquet_agree_with_the_library(cli, store, tmp_path):
    out = tmp_path / "out.parquet"
    result = cli("classify", store, "--step", "all", "--format", "parquet", "-o", out)
    assert result.exit_code == 0
    frame = pd.read_parquet(out)
    from toyanalysis.store import open_store

    expected = geometry.to_frame(geometry.classify(open_store(store)))
    assert list(frame.columns) == list(expected.columns)
    assert frame["kind"].tolist() == expected["kind"].astype(str).tolist()
    np.testing.assert_allclose(frame["dimensionality"], expected["dimensionality"])
    csv = tmp_path / "out.csv"
    assert cli("classify", store, "--step", "all", "--format", "csv", "-o", csv).exit_code == 0
    from_csv = pd.read_csv(csv)
    assert from_csv["summary"].tolist() == expected["summary"].astype(str).tolist()
    np.testing.assert_allclose(from_csv["norm"], expected["norm"], rtol=1e-6)


def test_selected_steps_and_instances(cli, store):
    result = cli("classify", store, "--step", "100,200", "--instance", "1", "--format", "json")
    records = json.loads(result.stdout)
    assert [(r["step"], r["instance"]) for r in records] == [(100, 1), (200, 1)]
    result = cli("classify", store, "--instance", "0-1", "--format", "json")
    assert [r["instance"] for r in json.loads(result.stdout)] == [0, 1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--step", "150"], "step 150 is not recorded (the store has steps 0, 100, 200, 300)"),
        (["--instance", "7"], "instance 7 is not in the store (instances: 0..2)"),
        (["--overlap-tol", "1.5"], "overlap_tol must be a number in [0.0, 1.0)"),
        (["--format", "parquet"], "--format parquet needs -o FILE"),
    ],
)
def test_bad_options_give_one_line(cli, store, args, message):
    result = cli("classify", store, *args)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        line for line in result.stderr.strip().splitlines() if line.startswith("Error:")
    ]
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_unparseable_step_is_a_usage_error(cli, store):
    result = cli("classify", store, "--step", "latest")
    assert result.exit_code == 2
    assert "use last, all, or step numbers" in result.stderr


def test_missing_or_broken_store(cli, tmp_path):
    result = cli("classify", tmp_path / "nothing.zarr")
    assert result.exit_code == 1
    assert "no such store" in result.stderr
    (tmp_path / "plain").mkdir()
    result = cli("classify", tmp_path / "plain")
    assert result.exit_code == 1
    assert "not a Zarr store" in result.stderr


def _set_progress(path, **attrs):
    zarr.open_group(path, mode="r+").require_group("progress").attrs.update(attrs)


def test_empty_and_partial_stores_say_so(cli, store):
    _set_progress(store, committed=2, complete=False)
    result = cli("classify", store, "--format", "json")
    assert result.exit_code == 0
    assert "incomplete" in result.stderr and "2 recorded steps" in result.stderr
    assert [r["step"] for r in json.loads(result.stdout)] == [100] * 3
    _set_progress(store, committed=0, complete=False)
    result = cli("classify", store)
    assert result.exit_code == 1
    assert "no recorded steps" in result.stderr


def test_save_writes_the_result_into_the_store(cli, store):
    result = cli(
        "classify", store, "--step", "all", "--save", "--format", "json", "-o", "/dev/null"
    )
    assert result.exit_code == 0
    saved = open_analysis(store, "classify")
    assert saved.sizes["step"] == 4
    assert saved["summary"].values[-1].tolist() == [
        "1 pentagon + 1 unlearned",
        "2 digon + 2 unlearned",
        "2 dedicated + 4 unlearned",
    ]


def test_thresholds_reach_the_library(cli, store):
    result = cli("classify", store, "--norm-threshold", "1.5", "--format", "json")
    assert [r["summary"] for r in json.loads(result.stdout)] == ["6 unlearned"] * 3


def test_cli_defaults_are_the_library_defaults():
    from toyanalysis.params import ClassifyParams

    shown = {p.name: getattr(p, "show_default", None) for p in analysis.classify.params}
    defaults = ClassifyParams()
    assert shown["norm_threshold"] == str(geometry.DEFAULT_NORM_THRESHOLD)
    assert shown["overlap_tol"] == str(geometry.DEFAULT_OVERLAP_TOL)
    assert geometry.DEFAULT_NORM_THRESHOLD == defaults.norm_threshold
    assert geometry.DEFAULT_OVERLAP_TOL == defaults.overlap_tol
    for name in ("rank_tol", "min_fit"):  # every parameter is reachable from the command
        assert shown[name] == str(getattr(defaults, name))


def test_nan_weights_are_labelled_and_the_exit_status_says_so(cli, tmp_path):
    W = np.stack([testing.tegum("digon", "digon", dead=1)] * 2)[:, None]  # (step, instance, m, n)
    W = np.concatenate([W, W], axis=1).astype(np.float32)
    W[1, 1, 0, 0] = np.nan
    path = tmp_path / "nan.zarr"
    testing.as_dataset(W, steps=[0, 10]).to_zarr(path, zarr_format=3, consolidated=False)
    out = tmp_path / "out.csv"
    result = cli("classify", path, "--step", "all", "--format", "csv", "-o", out)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: {path}: 1 checkpoint(s) have NaN or inf weights (first at step=10, instance=1); "
        "they are labelled invalid in the output"
    )
    rows = pd.read_csv(out)
    assert len(rows) == 2 * 2 * 5  # every checkpoint is still written
    assert set(rows[(rows.step == 10) & (rows.instance == 1)]["kind"]) == {"invalid"}
    assert cli("classify", path, "--step", "0").exit_code == 0


def test_rank_tol_and_min_fit_reach_the_library(cli, store):
    from toyanalysis.store import open_store

    result = cli("classify", store, "--rank-tol", "0.5", "--min-fit", "0.9", "--format", "json")
    assert result.exit_code == 0, result.output
    expected = geometry.to_records(
        geometry.classify(open_store(store), steps="last", rank_tol=0.5, min_fit=0.9)
    )
    assert json.loads(result.stdout) == json.loads(json.dumps(expected))
    strict = cli("classify", store, "--min-fit", "1.0", "--format", "json")
    kinds = [c["kind"] for r in json.loads(strict.stdout) for c in r["configurations"]]
    assert "pentagon" not in kinds and "dedicated" in kinds  # float32 angles are never exact


def test_a_bad_parameter_names_the_flag(cli, store):
    result = cli("classify", store, "--rank-tol", "1.5")
    assert result.exit_code == 1
    assert "rank_tol must be a number in [0.0, 1.0), got 1.5 (--rank-tol)" in result.stderr
