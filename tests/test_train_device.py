"""Devices, the torch (device) data stream, and the speed paths of the trainer (issue 13).

Everything here runs on the CPU; the tests marked ``gpu`` need CUDA and are
skipped without it. The torch stream is the one used on a GPU; on the CPU it
is exercised by asking for it explicitly.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from toyanalysis import RunConfig, models, open_store, train, training
from toyanalysis.data import Sampler
from toyanalysis.errors import ConfigError, StoreError
from toyanalysis.training import _Adam

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")


def _small(**kw) -> RunConfig:
    base = RunConfig(n_features=5, n_hidden=2, density=0.3)
    return base.override(steps=120, record="every:40", batch_size=256, **kw)


@pytest.mark.parametrize("stream", ["numpy", "torch"])
def test_an_instance_does_not_depend_on_how_many_share_its_run_or_the_shard(stream):
    alone = _small(seed=2)
    crowd = _small(seeds=4)  # instances 2 and 3 of the crowd are the shard's 0 and 1
    shard = _small(seed=2, seeds=2)
    a, c, s = (Sampler(cfg, stream=stream) for cfg in (alone, crowd, shard))
    for _ in range(3):
        xa, xc, xs = a.sample(), c.sample(), s.sample()
        np.testing.assert_array_equal(xa[0], xc[2])
        np.testing.assert_array_equal(xs, xc[2:])


def test_torch_stream_is_deterministic_resumable_and_has_the_density():
    config = _small(seeds=3).override(batch_size=4096)
    a, b = Sampler(config, stream="torch"), Sampler(config, stream="torch")
    np.testing.assert_array_equal(a.sample(), b.sample())
    state = a.state()
    first = a.sample().clone()
    fresh = Sampler(config, stream="torch")
    fresh.set_state(state)
    np.testing.assert_array_equal(fresh.sample(), first)
    x = first.numpy()
    active = x > 0
    assert abs(active.mean() - 0.3) < 0.01
    assert abs(x[active].mean() - 0.5) < 0.01 and x.max() < 1.0


def test_sampling_into_a_reused_buffer_gives_the_same_batches():
    config = _small(seeds=2)
    a, b = Sampler(config), Sampler(config)
    buffer = torch.empty(2, 5, 256)
    for _ in range(3):
        np.testing.assert_array_equal(a.sample(out=buffer), b.sample())


def test_instances_train_the_same_alone_in_a_crowd_and_in_a_shard(tmp_path):
    alone = train(_small(seed=2), tmp_path / "alone.zarr")
    crowd = train(_small(seeds=4), tmp_path / "crowd.zarr")
    shard = train(_small(seed=2, seeds=2), tmp_path / "shard.zarr")
    np.testing.assert_array_equal(alone["W"].values[:, 0], crowd["W"].values[:, 2])
    np.testing.assert_array_equal(shard["W"].values, crowd["W"].values[:, 2:])
    np.testing.assert_array_equal(shard["loss"].values, crowd["loss"].values[:, 2:])


def test_adam_by_passes_matches_the_fused_kernel_used_on_gpus():
    torch.manual_seed(0)
    p = {"W": torch.randn(2, 3, 4), "b": torch.randn(2, 4)}
    fused, passes = _Adam(p, True, 0.01), _Adam(p, True, 0.01)
    assert passes.fused is None  # on the CPU
    fused.fused = torch._fused_adamw_
    pf = {k: v.clone() for k, v in p.items()}
    pp = {k: v.clone() for k, v in p.items()}
    for _ in range(5):
        grads = {k: torch.randn_like(v) for k, v in p.items()}
        fused.step(pf, grads, 1e-2)
        passes.step(pp, grads, 1e-2)
    for k in p:
        torch.testing.assert_close(pf[k], pp[k], rtol=1e-5, atol=1e-6)


def test_loss_and_grads_with_a_workspace_equals_without():
    config = _small(seeds=2, model="abs")
    params = models.init_params(config)
    importance = torch.tensor(config.instance_importance(), dtype=torch.float32)
    x = Sampler(config).sample()
    workspace: dict[str, torch.Tensor] = {}
    for _ in range(2):
        loss, grads = models.loss_and_grads("abs", params, x, importance, workspace=workspace)
    ref_loss, ref_grads = models.loss_and_grads("abs", params, x, importance)
    torch.testing.assert_close(loss, ref_loss)
    for name, grad in grads.items():
        torch.testing.assert_close(grad, ref_grads[name])


@pytest.mark.parametrize("model", ["relu_output", "linear", "hidden_relu", "abs"])
def test_gradients_are_the_same_bits_whether_or_not_the_loss_is_asked_for(model):
    config = _small(seeds=2, model=model)
    params = models.init_params(config)
    params["b"] = torch.randn_like(params["b"]) * 0.1
    importance = torch.tensor(config.instance_importance(), dtype=torch.float32)
    x = Sampler(config).sample()
    loss, with_loss = models.loss_and_grads(model, params, x, importance)
    none, without = models.loss_and_grads(model, params, x, importance, need_loss=False)
    assert none is None and loss.shape == (2,)
    for name, grad in with_loss.items():
        assert torch.equal(grad, without[name]), name


def test_device_cpu_is_the_default_and_unknown_devices_are_refused(tmp_path):
    config = _small()
    a = train(config, tmp_path / "a.zarr")
    b = train(config, tmp_path / "b.zarr", device="cpu")
    np.testing.assert_array_equal(a["W"].values, b["W"].values)
    with pytest.raises(ConfigError, match="device"):
        train(config, tmp_path / "c.zarr", device="tpu")
    if not CUDA:
        with pytest.raises(ConfigError, match="not available"):
            train(config, tmp_path / "d.zarr", device="cuda")
    assert training.resolve_device("auto").type in ("cpu", "cuda", "mps")


def _cut_and_resume(tmp_path, monkeypatch, config, device="cpu"):
    """Train in full; train again, stopped at step 70; resume; return (full, resumed)."""
    full = train(config, tmp_path / "full.zarr", device=device)

    class Stop(Exception):
        pass

    real, calls = models.loss_and_grads, iter(range(10**6))

    def failing(*args, **kwargs):
        if next(calls) == 70:
            raise Stop
        return real(*args, **kwargs)

    path = tmp_path / "cut.zarr"
    monkeypatch.setattr(models, "loss_and_grads", failing)
    with pytest.raises(Stop):
        train(config, path, flush_seconds=0.0, device=device)
    monkeypatch.setattr(models, "loss_and_grads", real)
    assert open_store(path).sizes["step"] == 2  # steps 0 and 40 committed
    return full, train(config, path, resume=True, device=device)


def test_the_torch_stream_resumes_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr(training, "Sampler", functools.partial(Sampler, stream="torch"))
    full, resumed = _cut_and_resume(tmp_path, monkeypatch, _small(seeds=2))
    np.testing.assert_array_equal(resumed["W"].values, full["W"].values)
    np.testing.assert_array_equal(resumed["loss"].values, full["loss"].values)


def test_a_run_begun_on_one_stream_is_not_resumed_on_the_other(tmp_path, monkeypatch):
    config = _small(seeds=2)
    path = tmp_path / "cut.zarr"
    real, calls = models.loss_and_grads, iter(range(10**6))

    def failing(*args, **kwargs):
        if next(calls) == 70:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(models, "loss_and_grads", failing)
    with pytest.raises(KeyboardInterrupt):
        train(config, path, flush_seconds=0.0)
    monkeypatch.setattr(models, "loss_and_grads", real)
    monkeypatch.setattr(training, "Sampler", functools.partial(Sampler, stream="torch"))
    with pytest.raises(StoreError, match="CPU"):
        train(config, path, resume=True)


def test_the_cli_takes_a_device(cli, tmp_path):
    out = tmp_path / "run.zarr"
    args = ["train", "--preset", "intro", "--steps", "20", "--record", "every:10", "-o", out]
    result = cli(*args, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert open_store(out).sizes["step"] == 3
    assert cli(*args, "--device", "tpu").exit_code == 2


@pytest.mark.gpu
@needs_cuda
def test_gpu_same_seed_same_weights_and_exact_resume(tmp_path, monkeypatch):
    config = _small(seeds=3)
    a = train(config, tmp_path / "a.zarr", device="cuda")
    b = train(config, tmp_path / "b.zarr", device="cuda")
    np.testing.assert_array_equal(a["W"].values, b["W"].values)
    assert a["loss"].values[-1].mean() < a["loss"].values[0].mean()
    full, resumed = _cut_and_resume(tmp_path / "r", monkeypatch, config, device="cuda")
    np.testing.assert_array_equal(resumed["W"].values, full["W"].values)


@pytest.mark.gpu
@needs_cuda
def test_gpu_sampler_draws_on_the_device_per_instance():
    alone, crowd = _small(seed=1), _small(seeds=3)
    a, c = Sampler(alone, device="cuda"), Sampler(crowd, device="cuda")
    xa, xc = a.sample(), c.sample()
    assert xa.device.type == "cuda"
    torch.testing.assert_close(xa[0], xc[1], rtol=0, atol=0)
