"""The rebuilt phases layer: parameter objects passed whole, tidy event tables, the diagram grid,
the library's readers (records, frames, text) and the commands that only call them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from toyanalysis import testing
from toyanalysis._phases._timeline import snap
from toyanalysis.errors import ConfigError
from toyanalysis.geometry import classify
from toyanalysis.params import ClassifyParams, DiagramParams, PhaseParams
from toyanalysis.phase_changes import (
    KINDS,
    diagram_cells,
    diagram_grid,
    diagram_records,
    diagram_text,
    event_counts,
    for_instance,
    loss_changes,
    phase_diagram,
    phase_document,
    phase_events,
    phase_records,
    phase_text,
    phases,
)
from toyanalysis.store import open_analysis, write_store


def two_instances(records: int = 30, change_at: tuple[int, int] = (10, 20)) -> xr.Dataset:
    """Two instances whose geometry changes (square -> triangle) at different records."""
    rng = np.random.default_rng(0)
    square, triangle = testing.tegum("digon", "digon"), testing.tegum("triangle", dead=1)
    W = np.stack(
        [
            [testing.rotate(triangle if t >= c else square, rng) for c in change_at]
            for t in range(records)
        ]
    )
    loss = np.stack([np.where(np.arange(records) < c, 1e-2, 2e-3) for c in change_at], axis=1)
    return testing.as_dataset(W, steps=np.arange(records) * 10, loss=loss, seed=[5, 6])


# --------------------------------------------------------------------------- parameters


def test_params_pass_whole_and_are_stored_in_attrs():
    ds = two_instances()
    params = PhaseParams(loss_window=3, min_records=2, classify=ClassifyParams(overlap_tol=0.2))
    result = phases(ds, params)
    assert PhaseParams.from_json(result.attrs["params"]) == params
    same = phases(ds, loss_window=3, min_records=2, overlap_tol=0.2)
    assert same.attrs["params"] == result.attrs["params"]
    xr.testing.assert_identical(same, result)
    assert result.attrs["overlap_tol"] == 0.2 and result.attrs["loss_window"] == 3
    # a changed leaf on top of a params object
    assert PhaseParams.from_json(phases(ds, params, min_drop=0.1).attrs["params"]).min_drop == 0.1


def test_a_given_classification_keeps_its_own_thresholds():
    ds = two_instances()
    cls = classify(ds, overlap_tol=0.2)
    result = phases(ds, classification=cls, loss_window=3)
    assert PhaseParams.from_json(result.attrs["params"]).classify == ClassifyParams(overlap_tol=0.2)
    with pytest.raises(ConfigError, match="apply only when phases computes the classification"):
        phases(ds, classification=cls, overlap_tol=0.3)
    with pytest.raises(ConfigError, match="params must be a PhaseParams"):
        phases(ds, DiagramParams())
    with pytest.raises(ConfigError, match="has no parameter 'eval_batch'"):
        phases(ds, eval_batch=100)


def test_diagram_params_in_attrs_and_library_errors_name_no_flags():
    W = np.stack([testing.polytope("triangle")] * 4)
    ds = testing.as_dataset(W, sweep={"x": [1.0, 1.0, 2.0, 2.0]})
    params = DiagramParams(loss_records=2, classify=ClassifyParams(norm_threshold=0.4))
    result = phase_diagram(ds, params)
    assert DiagramParams.from_json(result.attrs["params"]) == params
    assert result.attrs["norm_threshold"] == 0.4
    with pytest.raises(ConfigError) as err:
        phase_diagram(testing.as_dataset(W))
    assert "--" not in str(err.value) and "axes=" in str(err.value)


# --------------------------------------------------------------------------- event tables


def test_event_tables_are_flat_with_instance_and_step_coordinates():
    ds = two_instances()
    result = phases(ds, loss_window=3)
    for kind in KINDS:
        assert result[f"{kind}_instance"].dims == (kind,)
    assert result["transition_step"].dims == ("transition",)
    assert "transition_step" in result.coords and "phase_start" in result.coords
    assert not [name for name in result.data_vars if str(name).startswith("n_")]
    # no padding: every row is an event of a real instance
    assert result["transition_instance"].values.tolist() == [0, 1]
    assert result["transition_step"].values.tolist() == [100, 200]
    assert (result["phase_start"].values >= 0).all() and (result["phase_summary"] != "").all()
    counts = event_counts(result)
    assert counts["n_transitions"].values.tolist() == [1, 1]
    assert counts["n_phases"].values.tolist() == [2, 2]
    assert int(counts["n_jumps"].sum()) == result.sizes["jump"]


def test_for_instance_keeps_the_rows_of_one_instance():
    result = phases(two_instances(), loss_window=3)
    one = for_instance(result, 1)
    assert one["transition_step"].values.tolist() == [200]
    assert one["drop_step"].values.tolist() == [200]
    assert one["drop_transition"].values.tolist() == [0]  # indexes the selection's transitions
    assert one["phase_start"].values.tolist() == [0, 200]
    assert set(one["jump_instance"].values.tolist()) == {1}
    assert int(one["seed"]) == 6
    with pytest.raises(ConfigError, match="instance 7 is not in the result"):
        for_instance(result, 7)


def test_records_frames_and_text_come_from_the_same_tables():
    result = phases(two_instances(), loss_window=3)
    records = phase_records(result)
    assert [r["instance"] for r in records] == [0, 1]
    assert [r["coords"] for r in records] == [{"seed": 5}, {"seed": 6}]
    events = phase_events(result)
    for kind, event, key in [
        ("phase", "phase", "phases"),
        ("transition", "transition", "transitions"),
        ("drop", "loss_drop", "loss_drops"),
        ("plateau", "plateau", "plateaus"),
        ("jump", "feature_jump", "feature_jumps"),
    ]:
        assert (events["event"] == event).sum() == result.sizes[kind]
        assert sum(len(r[key]) for r in records) == result.sizes[kind]
    assert events["instance"].tolist() == sorted(events["instance"].tolist())
    drops = events[events["event"] == "loss_drop"]
    assert drops["transition_step"].tolist() == [100, 200]
    document = phase_document(result)
    assert document["instances"] == records and document["settings"]["loss_window"] == 3
    text = phase_text(result)
    for title in ("phases", "transitions", "loss drops", "feature dimensionality jumps"):
        assert f"{title}\n" in text
    assert "100: -> " in text  # a drop names its transition


def test_loss_changes_of_a_batch_are_those_of_each_timeline():
    rng = np.random.default_rng(3)
    loss = rng.lognormal(size=(3, 40))
    loss[1, :5] = np.nan
    batch = loss_changes(loss, 4)
    for k in range(3):
        for got, want in zip(batch, loss_changes(loss[k], 4)):
            np.testing.assert_array_equal(got[k], want)


def test_timeline_kernels_are_shape_checked_under_the_tests():
    from jaxtyping import TypeCheckError

    with pytest.raises(TypeCheckError, match="loss"):
        loss_changes(np.arange(10), 2)  # integers, not a float timeline
    with pytest.raises(TypeCheckError):
        snap(np.zeros(3), np.zeros((2, 2)), 0.1)  # the table of fractions is 1-D


# --------------------------------------------------------------------------- diagram grid


def sweep_grid(drop_cell: bool = False) -> xr.Dataset:
    """n=2, m=1 on a 2 x 3 grid of (x, y), 2 seeds each: feature 1 superposed when y > 1."""
    digon, dead = testing.polytope("digon"), testing.tegum("dedicated", dead=1)
    xs, ys = [], []
    W = []
    for x in (1.0, 10.0):
        for y in (0.5, 2.0, 8.0):
            if drop_cell and (x, y) == (10.0, 8.0):
                continue
            for _ in range(2):
                xs.append(x)
                ys.append(y)
                W.append(digon if y > 1 else dead)
    importance = np.ones((len(xs), 2))
    importance[:, 1] = xs
    return testing.as_dataset(np.stack(W), importance=importance, sweep={"x": xs, "y": ys})


def test_diagram_grid_unstacks_the_cells_onto_the_sweep_axes():
    result = phase_diagram(sweep_grid(), feature=1)
    grid = diagram_grid(result)
    assert dict(grid.sizes) == {"x": 2, "y": 3, "outcome": 3}
    assert grid["x"].values.tolist() == [1.0, 10.0] and grid["y"].values.tolist() == [0.5, 2.0, 8.0]
    labels = grid["label"].transpose("x", "y").values.tolist()
    assert labels == [["unlearned", "superposed", "superposed"]] * 2
    assert (grid["n_seeds"] == 2).all() and (grid["agreement"] == 1.0).all()
    for c in range(result.sizes["cell"]):
        x, y = float(result["x"][c]), float(result["y"][c])
        assert grid["configuration"].sel(x=x, y=y).item() == str(result["configuration"][c].item())


def test_diagram_grid_leaves_missing_cells_empty_and_takes_one_axis():
    grid = diagram_grid(phase_diagram(sweep_grid(drop_cell=True), feature=1))
    assert dict(grid.sizes) == {"x": 2, "y": 3, "outcome": 3}
    assert np.isnan(float(grid["agreement"].sel(x=10.0, y=8.0)))
    assert grid["label"].sel(x=10.0, y=2.0).item() == "superposed"
    one = diagram_grid(phase_diagram(sweep_grid(), axes=["y"], feature=1))
    assert one["label"].dims == ("y",) and one["label"].values.tolist() == [
        "unlearned",
        "superposed",
        "superposed",
    ]


def test_diagram_readers_agree():
    result = phase_diagram(sweep_grid(), feature=1)
    records = diagram_records(result)
    cells = diagram_cells(result)
    assert cells["label"].tolist() == [c["label"] for c in records["cells"]]
    assert list(cells.columns[:2]) == ["x", "y"]
    text = diagram_text(result)
    assert text.startswith("feature 1 (given) at step 0") and "rows: y, columns: x" in text
    assert "boundaries" in text


# --------------------------------------------------------------------------- commands


@pytest.fixture
def stores(tmp_path):
    path = tmp_path / "two.zarr"
    write_store(path, two_instances())
    grid = tmp_path / "grid.zarr"
    write_store(grid, sweep_grid())
    return path, grid


def cli(*args):
    from toyanalysis_cli.main import main

    return CliRunner().invoke(main, [str(a) for a in args])


def test_every_parameter_reaches_the_commands(stores):
    path, grid = stores
    saved = cli(
        "phases", path, "--rank-tol", "0.3", "--min-fit", "0.4", "--loss-window", "3", "--save"
    )
    assert saved.exit_code == 0, saved.output
    params = PhaseParams.from_json(open_analysis(path, "phases").attrs["params"])
    assert params.classify.rank_tol == 0.3 and params.classify.min_fit == 0.4
    assert params.loss_window == 3
    diagram = cli("phase-diagram", grid, "--feature", "1", "--rank-tol", "0.3", "--save")
    assert diagram.exit_code == 0, diagram.output
    stored = DiagramParams.from_json(open_analysis(grid, "phase_diagram").attrs["params"])
    assert stored.classify.rank_tol == 0.3
    help_text = cli("phases", "--help").output
    for flag in ("--min-fit", "--rank-tol", "--eval-loss", "--norm-threshold", "--fraction-tol"):
        assert flag in help_text


def test_commands_print_what_the_library_gives(stores):
    from toyanalysis.store import open_store

    path, grid = stores
    result = phases(open_store(path), loss_window=3)
    table = cli("phases", path, "--loss-window", "3")
    assert table.exit_code == 0 and table.output.strip() == phase_text(result).strip()
    data = json.loads(cli("phases", path, "--loss-window", "3", "--format", "json").output)
    assert data["instances"] == json.loads(json.dumps(phase_records(result)))
    text = cli("phase-diagram", grid, "--feature", "1").output
    assert text.strip() == diagram_text(phase_diagram(open_store(grid), feature=1)).strip()
    no_axes = cli("phase-diagram", path)
    assert no_axes.exit_code == 1 and "(--axis NAME)" in no_axes.output
    bad = cli("phases", path, "--fraction-tol", "0.7")
    assert bad.exit_code == 1 and "fraction_tol" in bad.output and "--fraction-tol" in bad.output


def test_jump_fractions_follow_the_shapes_the_classification_matched():
    from toyanalysis.geometry import BUILTIN_SHAPES

    ds = two_instances()
    default = phases(ds, loss_window=3)
    assert "2/3" in default.attrs["fractions"]
    assert np.isclose(default["jump_to"].values, 2 / 3).any()
    no_triangle = classify(ds, shapes=BUILTIN_SHAPES.without("triangle"))
    result = phases(ds, classification=no_triangle, loss_window=3)
    assert "2/3" not in result.attrs["fractions"] and "1/2" in result.attrs["fractions"]
    assert not np.isclose(result["jump_to"].values, 2 / 3).any()
    # the dropped feature is no longer represented: no jump 1/2 -> 0 (represented only)
    assert not np.isclose(result["jump_to"].values, 0.0).any()


def test_a_store_opened_lazily_gives_the_eager_answer():
    from pathlib import Path

    from toyanalysis.store import open_store

    path = Path(__file__).parent / "golden" / "stores" / "dynamics.zarr"
    lazy, eager = open_store(path), open_store(path).load()
    xr.testing.assert_identical(phases(lazy), phases(eager))
