from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr

from toyanalysis import RunConfig, models, open_store, preset, train
from toyanalysis.errors import ConfigError, StoreError
from toyanalysis.store import read_progress

MODELS = ["relu_output", "linear", "hidden_relu", "abs"]


@pytest.mark.parametrize("model", MODELS)
def test_every_model_trains_into_a_store_with_the_documented_layout(tmp_path, model):
    config = RunConfig(
        model=model,
        n_features=4,
        n_hidden=3,
        importance=0.9,
        density=0.5,
        seeds=2,
        record="every:20",
    ).override(steps=60, batch_size=128)
    ds = train(config, tmp_path / "run.zarr")
    assert ds["W"].dims == ("step", "instance", "hidden", "feature")
    assert ds["W"].shape == (4, 2, 3, 4) and ds["W"].dtype == np.float32
    assert ds["b"].dims == ("step", "instance", "feature")
    assert ds["loss"].dims == ("step", "instance")
    assert ("W_out" in ds) == (model == "abs")
    if model == "abs":
        assert ds["W_out"].dims == ("step", "instance", "feature", "hidden")
    assert ds["step"].values.tolist() == [0, 20, 40, 60]
    assert ds["step"].dtype == np.int64
    np.testing.assert_allclose(ds["importance"].values, config.instance_importance())
    np.testing.assert_allclose(ds["density"].values, config.instance_density())
    np.testing.assert_array_equal(ds["seed"].values, [0, 1])
    assert ds.attrs["model"] == model and ds.attrs["toyanalysis_format"] == 1
    assert RunConfig.from_json(ds.attrs["config"]) == config
    assert np.all(np.isfinite(ds["W"].values))
    # plain xarray reads it too
    plain = xr.open_zarr(tmp_path / "run.zarr", consolidated=False)
    assert plain.sizes["step"] == 4


def test_training_lowers_the_loss_and_same_seed_gives_identical_weights(tmp_path):
    config = preset("intro").override(steps=300, record="every:100", batch_size=256)
    a = train(config, tmp_path / "a.zarr")
    b = train(config, tmp_path / "b.zarr")
    np.testing.assert_array_equal(a["W"].values, b["W"].values)
    loss = a["loss"].values
    assert np.all(loss[-1] < loss[0])
    c = train(config.override(seed=1), tmp_path / "c.zarr")
    assert not np.array_equal(a["W"].values[-1], c["W"].values[-1])


def test_sweep_labels_become_instance_coordinates(tmp_path):
    ds = train(preset("phase-2-1").override(steps=10, batch_size=64), tmp_path / "p.zarr")
    assert ds.attrs["sweep"] == ["extra_importance", "base_density"]
    assert ds["extra_importance"].dims == ("instance",)
    np.testing.assert_allclose(ds["importance"].values[:, 1], ds["extra_importance"].values)


def test_interrupted_run_resumes_to_the_same_weights(tmp_path, small_config, monkeypatch):
    full = train(small_config, tmp_path / "full.zarr")

    class Stop(Exception):
        pass

    real = models.loss_and_grads
    calls = iter(range(10**6))

    def failing(*args, **kwargs):
        if next(calls) == 170:
            raise Stop
        return real(*args, **kwargs)

    path = tmp_path / "cut.zarr"
    monkeypatch.setattr(models, "loss_and_grads", failing)
    with pytest.raises(Stop):
        train(small_config, path, flush_seconds=0.0)
    monkeypatch.setattr(models, "loss_and_grads", real)
    partial = open_store(path)
    assert partial.sizes["step"] == 4  # steps 0, 50, 100, 150 were committed
    np.testing.assert_array_equal(partial["W"].values, full["W"].values[:4])
    assert read_progress(path)["complete"] is False
    resumed = train(small_config, path, resume=True)
    np.testing.assert_array_equal(resumed["W"].values, full["W"].values)
    np.testing.assert_array_equal(resumed["loss"].values, full["loss"].values)
    assert read_progress(path)["complete"] is True


def test_killed_process_leaves_an_openable_store_that_resumes_exactly(tmp_path):
    config = preset("intro").override(steps=4000, record="every:20", batch_size=512)
    full = train(config, tmp_path / "full.zarr")
    path = tmp_path / "killed.zarr"
    script = (
        "import sys; from toyanalysis import RunConfig, train\n"
        "train(RunConfig.from_json(sys.argv[1]), sys.argv[2], flush_seconds=0.05)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, config.to_json(), str(path)])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        progress = read_progress(path) if path.exists() else None
        if progress and progress.get("committed", 0) >= 20:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    progress = read_progress(path)
    assert progress is not None and not progress["complete"], (
        "the run finished before it was killed"
    )
    partial = open_store(path)
    n = partial.sizes["step"]
    assert n >= 20
    np.testing.assert_array_equal(partial["W"].values, full["W"].values[:n])
    resumed = train(config, path, resume=True)
    np.testing.assert_array_equal(resumed["W"].values, full["W"].values)


def test_resume_refuses_a_different_config(tmp_path, small_config):
    path = tmp_path / "run.zarr"
    train(small_config, path)
    with pytest.raises(ConfigError, match="different config"):
        train(small_config.override(lr=0.01), path, resume=True)


def test_existing_output_is_not_overwritten_without_asking(tmp_path, small_config):
    path = tmp_path / "run.zarr"
    train(small_config, path)
    with pytest.raises(StoreError, match="already exists"):
        train(small_config, path)
    train(small_config, path, overwrite=True)
    precious = tmp_path / "notes"
    precious.mkdir()
    (precious / "thesis.tex").write_text("keep me")
    with pytest.raises(StoreError, match="not a Zarr store; refusing"):
        train(small_config, precious, overwrite=True)
    assert (precious / "thesis.tex").read_text() == "keep me"
