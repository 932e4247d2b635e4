"""The loss of saved checkpoints, evaluated again (torch).

The store's ``loss`` is the training loss of one fresh batch per step, whose
noise can hide the drops :func:`toyanalysis.phases` looks for.
:func:`evaluation_loss` evaluates every recorded checkpoint on one fixed batch
instead, drawn from the run's own data distribution.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from toyanalysis.errors import ConfigError, StoreError

if TYPE_CHECKING:
    import xarray as xr

    from toyanalysis.config import RunConfig

__all__ = ["evaluation_loss"]

_ELEMENTS = 2**22  # numbers per chunk of samples, and per block of checkpoints


def evaluation_loss(
    ds: xr.Dataset, *, batch_size: int = 16384, seed: int = 1_000_003
) -> xr.DataArray:
    """The loss of every recorded checkpoint on one fixed batch: ``(step, instance)``.

    This draws one batch of ``batch_size`` samples per instance from the run's
    data distribution (``ds.attrs["config"]``, with the data seeds shifted by
    ``seed`` so the batch is not a training batch) and evaluates every
    recorded ``W``, ``b`` (and ``W_out``) on it. Samples are drawn in chunks
    and checkpoints read in blocks, so memory stays bounded.
    """
    import torch
    import xarray as xr

    config = _config(ds, batch_size, seed)
    names = [name for name in ("W", "b", "W_out") if name in ds.data_vars]
    batches = _batches(config, batch_size)
    importance = torch.tensor(config.instance_importance(), dtype=torch.float32)
    total = np.zeros((ds.sizes["step"], ds.sizes["instance"]))
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: one thread is fastest on a shared machine
    try:
        _evaluate(ds, names, batches, config.model, importance, total)
    finally:
        torch.set_num_threads(previous_threads)
    return xr.DataArray(
        total / batch_size,
        dims=("step", "instance"),
        coords={"step": ds["step"].values, "instance": ds["instance"].values},
        name="loss",
        attrs={"description": f"loss on one fixed batch of {batch_size} samples per instance"},
    )


def _config(ds: xr.Dataset, batch_size: int, seed: int) -> RunConfig:
    """The run's config with the data seeds shifted, after checking it fits the weights."""
    if "config" not in ds.attrs:
        raise StoreError(
            "evaluation loss needs the run's config (attrs['config']); this store has none"
        )
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    from toyanalysis.config import RunConfig

    config = RunConfig.from_json(ds.attrs["config"])
    config = config.override(seed=config.train.seed + int(seed))
    if "b" not in ds.data_vars:
        raise StoreError("evaluation loss needs the biases b (step, instance, feature)")
    if ds.sizes["instance"] != config.n_instances or ds.sizes["feature"] != config.n_features:
        raise StoreError(
            f"the store's config describes {config.n_instances} instances x {config.n_features} "
            f"features, the weights have {ds.sizes['instance']} x {ds.sizes['feature']}"
        )
    return config


def _batches(config: RunConfig, batch_size: int) -> list[tuple[int, Any]]:
    """The fixed batch, as chunks ``(size, samples)`` of bounded size."""
    from toyanalysis.data import Sampler

    chunk = int(
        max(1, min(batch_size, _ELEMENTS // max(1, config.n_instances * config.n_features)))
    )
    sizes = [chunk] * (batch_size // chunk) + ([batch_size % chunk] if batch_size % chunk else [])
    samplers = {size: Sampler(config, batch_size=size) for size in set(sizes)}
    return [(size, samplers[size].sample().clone()) for size in sizes]


def _evaluate(
    ds: xr.Dataset,
    names: list[str],
    batches: list[tuple[int, Any]],
    model: str,
    importance: Any,
    total: np.ndarray,
) -> None:
    """Accumulate ``size × loss`` of every recorded checkpoint on every batch into ``total``."""
    import torch

    from toyanalysis import models

    per_step = sum(ds[name].isel(step=0).size for name in names)
    block = max(1, _ELEMENTS // max(1, per_step))
    with torch.no_grad():
        for start in range(0, ds.sizes["step"], block):
            loaded = {
                name: np.asarray(
                    ds[name].isel(step=slice(start, start + block)).values, dtype=np.float32
                )
                for name in names
            }
            for t in range(len(loaded["W"])):
                params = {name: torch.from_numpy(values[t]) for name, values in loaded.items()}
                for size, x in batches:
                    loss = models.loss(model, params, x, importance).numpy()
                    total[start + t] += size * loss
