"""classify on a lazily opened store: a lazy result whose ``.compute()`` is the eager one."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from toyanalysis import testing
from toyanalysis.geometry import (
    classify,
    concat_blocks,
    invalid_checkpoints,
    iter_classify,
    to_records,
    write,
)
from toyanalysis.params import ClassifyParams
from toyanalysis.store import open_analysis, open_store, save_analysis
from toyanalysis.superposition import measures


def trajectory(steps=12, instances=3, seed=0):
    """A store Dataset whose instances pass through a few tegum products."""
    rng = np.random.default_rng(seed)
    shapes = [("pentagon", "digon"), ("digon", "digon", "dedicated"), ("triangle", "dedicated")]
    W = np.zeros((steps, instances, 4, 9))
    for s in range(steps):
        for i in range(instances):
            blocks = shapes[(i + s // 4) % len(shapes)]
            n_live = sum(testing.polytope(b).shape[1] for b in blocks)
            tegum = testing.tegum(*blocks, n_hidden=4, dead=9 - n_live)
            W[s, i] = testing.perturb(testing.rotate(tegum, rng), 0.02, rng)
    return testing.as_dataset(
        W,
        steps=np.arange(steps) * 10,
        density=np.linspace(0.05, 0.5, instances)[:, None] * np.ones(9),
        sweep={"base_density": np.linspace(0.05, 0.5, instances)},
        seed=np.zeros(instances, dtype=np.int64),
        loss=rng.random((steps, instances)),
    )


@pytest.fixture
def store(tmp_path):
    ds = trajectory()
    W = ds["W"].values
    W[5, 1, 0, 2] = np.nan  # one checkpoint with non-finite weights
    ds["W"] = (ds["W"].dims, W)
    path = tmp_path / "run.zarr"
    # write_store refuses non-finite weights; a store written by another tool may have them
    ds.chunk({"step": 4}).to_zarr(path, zarr_format=3, consolidated=False)
    return path, ds


def is_lazy(result: xr.Dataset) -> bool:
    return all(result[name].chunks is not None for name in result.data_vars)


def test_a_lazy_store_gives_a_lazy_result_equal_to_the_eager_one(store):
    path, ds = store
    lazy = classify(open_store(path))
    assert is_lazy(lazy)
    eager = classify(ds)
    assert not is_lazy(eager)
    xr.testing.assert_identical(lazy.compute(), eager)
    assert lazy.attrs == eager.attrs


def test_a_dask_chunked_store_in_small_chunks_gives_the_same(store):
    _, ds = store
    chunked = ds.chunk({"step": 2})
    lazy = classify(chunked, overlap_tol=0.2, steps=[0, 50, 60, 110], instances=[1, 2])
    assert is_lazy(lazy)
    eager = classify(ds, overlap_tol=0.2, steps=[0, 50, 60, 110], instances=[1, 2])
    xr.testing.assert_identical(lazy.compute(), eager)


def test_invalid_checkpoints_are_marked_lazily_too(store):
    path, _ = store
    result = classify(open_store(path)).compute()
    assert result["summary"].values[5, 1] == "invalid (non-finite weights)"
    assert set(result["kind"].values[5, 1].tolist()) == {"invalid"}
    assert (result["component"].values[5, 1] == -1).all()
    assert np.isnan(result["norm"].values[5, 1]).all()
    assert np.isnan(result["dimensions_per_feature"].values[5, 1])
    assert (result["config_n_features"].values[5, 1] == 0).all()
    assert result["summary"].values[5, 0] != "invalid (non-finite weights)"
    assert invalid_checkpoints(result) == (1, (50, 1))


def test_measures_are_merged_from_superposition(store):
    _, ds = store
    result = classify(ds.isel(step=slice(0, 4)))
    expected = measures(ds.isel(step=slice(0, 4)))
    for name in ("norm", "dimensionality", "interference", "dimensions_per_feature"):
        np.testing.assert_array_equal(result[name].values, expected[name].values, err_msg=name)


def test_config_has_one_slot_per_feature(store):
    _, ds = store
    result = classify(ds)
    assert result.sizes["config"] == ds.sizes["feature"]
    used = result["config_n_features"].values > 0
    assert (result["config_kind"].values[~used] == "").all()
    assert np.isnan(result["config_fit"].values[~used]).all()
    n_components = result["component"].values.max(axis=-1) + 1
    np.testing.assert_array_equal(used.sum(axis=-1), n_components)


def test_params_are_stored_whole_and_read_back(store):
    _, ds = store
    params = ClassifyParams(rank_tol=0.3, min_fit=0.5)
    result = classify(ds, params, overlap_tol=0.2)
    assert ClassifyParams.from_json(result.attrs["params"]) == params.replace(overlap_tol=0.2)
    assert result.attrs["overlap_tol"] == 0.2 and result.attrs["rank_tol"] == 0.3


def test_iter_classify_blocks_join_to_the_whole(store):
    _, ds = store
    pieces = list(iter_classify(ds, block_bytes=1))
    assert [p.sizes["step"] for p in pieces] == [1] * ds.sizes["step"]
    xr.testing.assert_identical(concat_blocks(pieces), classify(ds))


def test_write_streams_json_in_blocks_with_the_invalid_count(store, tmp_path):
    import json

    path, ds = store
    out = tmp_path / "out.json"
    steps = []
    written = write(
        classify(open_store(path).chunk({"step": 3})), out, "json", progress=steps.append
    )
    assert sum(steps) == ds.sizes["step"]
    assert (written.invalid, written.first_invalid) == (1, (50, 1))
    assert json.loads(out.read_text()) == to_records(classify(ds))


def test_a_saved_last_step_keeps_the_store_a_datatree(store):
    path, _ = store
    result = classify(open_store(path), steps="last").compute()
    save_analysis(path, result, "classify")
    tree = xr.open_datatree(path, engine="zarr", consolidated=False)
    assert tree["analysis/classify"].sizes["classify_step"] == 1
    assert tree.sizes["step"] == 12
    xr.testing.assert_identical(open_analysis(path, "classify").compute(), result)
