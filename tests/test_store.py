from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from toyanalysis.errors import StoreError
from toyanalysis.store import describe, open_analysis, open_store, save_analysis, write_store


def _foreign(tmp_path, dims=("step", "instance", "hidden", "feature"), shape=(3, 2, 2, 5), **extra):
    W = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    ds = xr.Dataset({"W": (dims, W), **extra})
    path = tmp_path / "foreign.zarr"
    ds.to_zarr(path, zarr_format=3, consolidated=False)
    return path


def test_a_store_with_only_W_gets_documented_defaults(tmp_path):
    ds = open_store(_foreign(tmp_path))
    assert ds["W"].dims == ("step", "instance", "hidden", "feature")
    assert ds["step"].values.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(ds["importance"].values, np.ones((2, 5)))
    assert ds.attrs["model"] == "relu_output" and ds.attrs["sweep"] == []


def test_dims_in_another_order_are_transposed(tmp_path):
    path = _foreign(tmp_path, dims=("instance", "step", "feature", "hidden"), shape=(2, 3, 5, 2))
    ds = open_store(path)
    assert ds["W"].shape == (3, 2, 2, 5)
    raw = xr.open_zarr(path, consolidated=False)
    np.testing.assert_array_equal(ds["W"].values[1, 0, :, 4], raw["W"].values[0, 1, 4, :])


def _touch(path):
    path.write_text("x")
    return path


def _mkdir(path):
    path.mkdir()
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing.zarr", "no such store"),
        (lambda p: _touch(p / "file.txt"), "not a Zarr store"),
        (lambda p: _mkdir(p / "empty"), "not a Zarr store"),
        (
            lambda p: _foreign(p, dims=("step", "instance", "feature"), shape=(3, 2, 5)),
            "W has dims",
        ),
    ],
)
def test_bad_stores_give_one_line_errors(tmp_path, make, message):
    with pytest.raises(StoreError, match=message) as info:
        open_store(make(tmp_path))
    assert "\n" not in str(info.value)


def test_corrupt_metadata_is_reported(tmp_path):
    path = _foreign(tmp_path)
    (path / "W" / "zarr.json").write_text("{not json")
    with pytest.raises(StoreError, match="cannot open"):
        open_store(path)


def test_store_without_W_is_refused(tmp_path):
    path = tmp_path / "x.zarr"
    xr.Dataset({"V": (("a",), np.zeros(3))}).to_zarr(path, zarr_format=3, consolidated=False)
    with pytest.raises(StoreError, match="no variable W"):
        open_store(path)


def test_nans_are_found_by_describe_and_refused_by_write_store(tmp_path):
    W = np.ones((2, 1, 2, 3), np.float32)
    W[1, 0, 0, 2] = np.nan
    path = _foreign(tmp_path, shape=(2, 1, 2, 3))
    ds = xr.open_zarr(path, consolidated=False).load()
    ds["W"].values[:] = W
    ds.to_zarr(tmp_path / "nan.zarr", zarr_format=3, consolidated=False)
    with pytest.raises(StoreError, match=r"NaN or inf values \(first at step=1, instance=0"):
        describe(tmp_path / "nan.zarr")
    with pytest.raises(StoreError, match="NaN"):
        write_store(tmp_path / "out.zarr", ds)
    assert not (tmp_path / "out.zarr").exists()


def test_write_store_round_trips_and_analysis_groups_sit_beside(tmp_path):
    W = np.random.default_rng(1).normal(size=(4, 3, 2, 5)).astype(np.float32)
    ds = xr.Dataset(
        {"W": (("step", "instance", "hidden", "feature"), W)}, coords={"step": [0, 5, 10, 20]}
    )
    path = tmp_path / "run.zarr"
    write_store(path, ds)
    back = open_store(path)
    np.testing.assert_array_equal(back["W"].values, W)
    assert back["step"].values.tolist() == [0, 5, 10, 20]
    result = xr.Dataset({"summary": (("instance",), np.array(["digon", "pentagon", "x"]))})
    save_analysis(path, result, "classify")
    assert open_analysis(path, "classify")["summary"].values.tolist() == ["digon", "pentagon", "x"]
    assert set(open_store(path).data_vars) == {"W"}


def test_describe_summarises_a_trained_store(intro_store):
    info = describe(intro_store)
    assert info["model"] == "relu_output" and info["config"] == "intro"
    assert info["sizes"] == {"step": 5, "instance": 10, "feature": 5, "hidden": 2}
    assert info["status"] == "complete"
