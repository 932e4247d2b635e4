"""Local minima (issue 11, point 7): seeds stuck above their cell's best, and best-of-k."""

from __future__ import annotations

import json

import numpy as np
import pytest

import toyanalysis as ta
from toyanalysis import testing
from toyanalysis._minima import MinimaParams, annotate, best_of, cells, local_minima
from toyanalysis.errors import ConfigError
from toyanalysis.geometry import classify
from toyanalysis.store import write_store

# 3 cells (x = 0, 1, 2) x 3 seeds; cell 1's seeds 4 and 5 are 50% and 1% above its best
LOSS = [[1.0, 1.0, 1.0, 2.0, 3.0, 2.02, 0.5, 0.4, 0.45]]


def _cells_store(loss=LOSS, x=(0, 0, 0, 1, 1, 1, 2, 2, 2)):
    steps = len(loss)
    W = np.stack([np.stack([testing.tegum("digon")] * len(x))] * steps)
    return testing.as_dataset(W, sweep={"x": list(x)}, loss=loss)


def test_known_gaps_and_stuck():
    m = local_minima(_cells_store(), loss="stored", loss_records=1)
    assert m["cell"].values.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert m["best_instance"].values.tolist() == [0, 0, 0, 3, 3, 3, 7, 7, 7]
    np.testing.assert_allclose(m["gap"].values, [0, 0, 0, 0, 0.5, 0.01, 0.25, 0, 0.125], rtol=1e-5)
    assert m["stuck"].values.tolist() == [False] * 4 + [True, False, True, False, True]
    assert m.attrs["loss_source"] == "store" and m.attrs["comparable"]
    assert m["n_seeds"].values.tolist() == [3] * 9
    looser = local_minima(_cells_store(), MinimaParams(stuck_gap=0.3, loss="stored"))
    assert looser["stuck"].values.tolist() == [False] * 4 + [True] + [False] * 4


def test_stored_loss_is_averaged_over_the_last_records():
    loss = np.array([[9.0, 1.0], [1.0, 1.5], [1.0, 1.5]])  # 3 steps, one cell of 2 seeds
    ds = _cells_store(loss=loss, x=(0, 0))
    m = local_minima(ds, loss="stored", loss_records=2)
    np.testing.assert_allclose(m["gap"].values, [0.0, 0.5], rtol=1e-5)
    assert local_minima(ds, loss="stored", step=0)["stuck"].values.tolist() == [True, False]


def test_one_seed_per_cell_compares_nothing():
    ds = _cells_store(loss=[[1.0, 2.0, 3.0]], x=(0, 1, 2))
    m = local_minima(ds, loss="stored")
    assert not m["stuck"].values.any() and not m.attrs["comparable"]
    assert "nothing to compare" in m.attrs["note"]
    with pytest.raises(ConfigError, match=r"^best_of: every cell has one seed"):
        best_of(ds, loss="stored")


def test_no_loss_at_all():
    W = np.stack([testing.tegum("digon")] * 2)[None]
    m = local_minima(testing.as_dataset(W, sweep={"x": [0, 0]}))
    assert m.attrs["loss_source"] == "none" and not m["stuck"].values.any()
    with pytest.raises(ConfigError, match="no loss"):
        best_of(testing.as_dataset(W, sweep={"x": [0, 0]}))


def test_best_of_k():
    ds = _cells_store()
    assert best_of(ds, loss="stored")["instance"].values.tolist() == [0, 3, 7]
    two = best_of(ds, 2, loss="stored")
    assert two["instance"].values.tolist() == [0, 1, 3, 5, 7, 8]
    assert two.attrs["best_of"] == 2 and two.attrs["loss_source"] == "store"
    assert best_of(ds, 5, loss="stored").sizes["instance"] == 9
    with pytest.raises(ConfigError, match="k must be an integer"):
        best_of(ds, 0, loss="stored")


def test_cells_follow_density_rows_without_a_sweep():
    W = np.stack([testing.tegum("digon")] * 4)[None]
    ds = testing.as_dataset(W, density=np.array([[0.1, 0.1]] * 2 + [[0.5, 0.5]] * 2))
    assert cells(ds)[0].tolist() == [0, 0, 1, 1]


def test_annotate_adds_instance_coords_to_classify():
    ds = _cells_store()
    m = local_minima(ds, loss="stored", loss_records=1)
    result = annotate(classify(ds.sel(instance=[4, 5])), m)
    assert result["stuck"].values.tolist() == [True, False]
    assert ta.local_minima is local_minima and ta.best_of is best_of


def test_bad_params_are_one_line():
    with pytest.raises(ConfigError, match="stuck_gap must be"):
        MinimaParams(stuck_gap=-1)
    assert MinimaParams.from_json(MinimaParams(stuck_gap=0.1).to_json()).stuck_gap == 0.1


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The nonuniform preset (13 cells x 3 seeds), trained briefly: it has a config."""
    path = tmp_path_factory.mktemp("minima") / "nonuniform.zarr"
    ta.train(ta.preset("nonuniform").override(steps=300, record="every:100"), path)
    return path


def test_expected_loss_path(trained):
    ds = ta.open_store(trained)
    m = local_minima(ds)
    assert m.attrs["loss_source"] == "exact" and m.attrs["comparable"]
    finite = np.isfinite(m["loss"].values)
    assert finite.all() and (m["gap"].values >= 0).all()
    assert (m["gap"].values[m["instance"].values == m["best_instance"].values] == 0).all()
    some = local_minima(ds, instances=[0, 1, 2, 3])
    assert some["cell"].values.tolist() == [0, 0, 0, 1] and some["n_seeds"].values[-1] == 1


def _json(cli, *args):
    result = cli("classify", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return result.stdout


def test_cli_default_output_is_unchanged_and_flags_add(cli, trained):
    plain = _json(cli, trained)
    assert plain == _json(cli, trained, "--stuck-gap", "0.5")  # parameters alone change nothing
    assert "stuck" not in plain
    flagged = json.loads(_json(cli, trained, "--flag-minima"))
    assert all(isinstance(r["coords"]["stuck"], bool) for r in flagged)
    expected = local_minima(ta.open_store(trained))["stuck"].values.tolist()
    assert [r["coords"]["stuck"] for r in flagged] == expected
    best = json.loads(_json(cli, trained, "--best-of"))
    chosen = best_of(ta.open_store(trained))["instance"].values.tolist()
    assert [r["instance"] for r in best] == chosen and len(chosen) == 13
    table = cli("classify", trained, "--flag-minima", "--stuck-gap", "0.01")
    assert table.exit_code == 0 and "stuck" in table.stdout.splitlines()[0]


def test_cli_refuses_best_of_with_one_seed_per_cell(cli, tmp_path):
    path = tmp_path / "one.zarr"
    write_store(path, _cells_store(loss=[[1.0, 2.0, 3.0]], x=(0, 1, 2)))
    result = cli("classify", path, "--best-of")
    assert result.exit_code == 1
    assert "best_of: every cell has one seed" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
