"""Train many toy models side by side and stream their weights into a store.

>>> import tempfile, os
>>> from toyanalysis import preset, train
>>> path = os.path.join(tempfile.mkdtemp(), "intro.zarr")
>>> ds = train(preset("intro").override(steps=200, record="every:100"), path)
>>> ds["W"].dims, ds.sizes["step"]
(('step', 'instance', 'hidden', 'feature'), 3)

The loop samples a fresh batch for every instance, computes the loss and its
gradients by hand (:mod:`toyanalysis.models`), and applies AdamW (or Adam)
to all instances at once. Recorded weights are buffered and written in blocks
by a background thread. With the same config and seed the weights are
identical, and a run resumed after a crash (``resume=True``) ends with exactly
the weights of an uninterrupted one: each block's write is followed by a
snapshot of the parameters, optimiser moments and generator states.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from toyanalysis import models, store
from toyanalysis.config import RunConfig
from toyanalysis.data import Sampler
from toyanalysis.errors import ConfigError, StoreError

BETAS, EPS = (0.9, 0.999), 1e-8


class _Adam:
    """Adam/AdamW over dicts of batched tensors, matching ``torch.optim.AdamW``."""

    def __init__(self, params: models.Params, decoupled: bool, weight_decay: float) -> None:
        self.decoupled, self.weight_decay = decoupled, weight_decay
        self.m = {k: torch.zeros_like(v) for k, v in params.items()}
        self.v = {k: torch.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, params: models.Params, grads: models.Params, lr: float) -> None:
        self.t += 1
        b1, b2 = BETAS
        bias1, bias2 = 1 - b1**self.t, 1 - b2**self.t
        for name, p in params.items():
            g = grads[name]
            if self.weight_decay:
                if self.decoupled:
                    p.mul_(1 - lr * self.weight_decay)
                else:
                    g = g.add(p, alpha=self.weight_decay)
            m, v = self.m[name], self.v[name]
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (v.sqrt() / math.sqrt(bias2)).add_(EPS)
            p.addcdiv_(m, denom, value=-lr / bias1)

    def state(self) -> dict[str, Any]:
        return {"t": self.t, "m": _numpy(self.m), "v": _numpy(self.v)}

    def load(self, state: dict[str, Any]) -> None:
        self.t = int(state["t"])
        self.m = _tensors(state["m"])
        self.v = _tensors(state["v"])


def _numpy(params: models.Params) -> dict[str, np.ndarray]:
    return {k: v.numpy().copy() for k, v in params.items()}


def _tensors(arrays: dict[str, np.ndarray]) -> models.Params:
    return {k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}


def template(config: RunConfig) -> xr.Dataset:
    """The run's store as a lazy Dataset: its layout, coordinates and attrs, data all NaN.

    The data are dask arrays chunked along ``step`` (nothing is allocated), so
    :func:`toyanalysis.store.create_trajectory` can pre-allocate the store from it.
    """
    import dask.array as da

    steps = config.record_steps()
    count, n, m = config.n_instances, config.n_features, config.n_hidden
    shapes = {"W": (m, n), "b": (n,), "loss": ()}
    if config.model == "abs":
        shapes["W_out"] = (n, m)
    per_record = 4 * count * sum(math.prod(shape) for shape in shapes.values())
    chunk = store.records_per_chunk(per_record)
    data = {
        name: (
            store.DIMS[name],
            da.full(
                (len(steps), count, *shape), np.nan, dtype=np.float32, chunks=(chunk, count, *shape)
            ),
        )
        for name, shape in shapes.items()
    }
    coords: dict[str, Any] = {
        "step": steps,
        "instance": np.arange(count),
        "feature": np.arange(n),
        "hidden": np.arange(m),
        "density": (("instance", "feature"), config.instance_density()),
        "importance": (("instance", "feature"), config.instance_importance()),
        "seed": ("instance", config.instance_seeds()),
    }
    labels = config.instance_labels()
    coords.update({name: ("instance", values) for name, values in labels.items()})
    attrs = store.base_attrs(config.model, config.to_json(), list(labels))
    return xr.Dataset(data, coords=coords, attrs=attrs)


def train(
    config: RunConfig,
    path: str | os.PathLike[str],
    *,
    resume: bool = False,
    overwrite: bool = False,
    threads: int = 1,
    flush_seconds: float = 20.0,
    progress: Callable[[int, int], None] | None = None,
) -> xr.Dataset:
    """Train the run described by ``config`` into the store at ``path``; return it opened.

    ``resume=True`` continues an interrupted run in ``path`` (which must have
    been made with the same config). ``threads`` sets torch's intra-op
    threads (1 is fastest for small models on a busy 2-core machine).
    ``progress(done, total)`` is called about every second.
    """
    path = Path(path)
    steps = config.record_steps()
    params = models.init_params(config)
    opt = _Adam(params, config.train.optimizer == "adamw", config.train.weight_decay)
    sampler = Sampler(config)
    start, committed = 0, 0
    if resume:
        start, committed = _resume(path, config, params, opt, sampler)
        if committed == len(steps):
            return store.open_store(path)
    layout = template(config)
    if not resume:
        store.prepare_output(path, overwrite)
        store.create_trajectory(path, layout)
    chunk = store.step_chunk(layout)
    writer = store.TrajectoryWriter(path, committed)
    importance = torch.tensor(config.instance_importance(), dtype=torch.float32)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    complete = False
    try:
        _loop(
            config,
            params,
            opt,
            sampler,
            importance,
            writer,
            steps,
            start,
            committed,
            chunk,
            flush_seconds,
            progress,
        )
        complete = True
    finally:
        torch.set_num_threads(previous_threads)
        writer.close(complete)
    return store.open_store(path)


def _loop(
    config: RunConfig,
    params: models.Params,
    opt: _Adam,
    sampler: Sampler,
    importance: torch.Tensor,
    writer: store.TrajectoryWriter,
    steps: np.ndarray,
    start: int,
    committed: int,
    chunk: int,
    flush_seconds: float,
    progress: Callable[[int, int], None] | None,
) -> None:
    model, total, train_cfg = config.model, config.train.steps, config.train
    record_at = steps.tolist()
    next_index = committed  # index into record_at of the next record to take
    buffer: list[tuple[dict[str, np.ndarray], np.ndarray]] = []
    block_start = committed
    last_flush = last_report = time.monotonic()
    for t in range(start, total + 1):
        recording = next_index < len(record_at) and t == record_at[next_index]
        flush = False
        if recording:
            now = time.monotonic()
            end_of_chunk = (next_index + 1) % chunk == 0
            flush = (
                end_of_chunk or next_index + 1 == len(record_at) or now - last_flush > flush_seconds
            )
            if flush:
                generator_state = sampler.state()
        x = sampler.sample()
        loss, grads = models.loss_and_grads(model, params, x, importance)
        if recording:
            buffer.append((_numpy(params), loss.numpy().copy()))
            next_index += 1
            if flush:
                block = {name: np.stack([p[name] for p, _ in buffer]) for name in params}
                block["loss"] = np.stack([loss_ for _, loss_ in buffer])
                snapshot = {
                    "step": t,
                    "params": _numpy(params),
                    "optimizer": opt.state(),
                    "sampler": generator_state,
                    "committed": next_index,
                }
                writer.put(block_start, block, snapshot)
                block_start, buffer, last_flush = next_index, [], time.monotonic()
        if t < total:
            opt.step(params, grads, train_cfg.learning_rate(t))
        if progress is not None and (now := time.monotonic()) - last_report > 1.0:
            progress(t, total)
            last_report = now
    if progress is not None:
        progress(total, total)


def _resume(
    path: Path, config: RunConfig, params: models.Params, opt: _Adam, sampler: Sampler
) -> tuple[int, int]:
    ds = store.open_store(path, allow_empty=True)
    stored = ds.attrs.get("config")
    if stored is None:
        raise StoreError(
            f"{path}: has no config; it was not written by the trainer and cannot be resumed"
        )
    if RunConfig.from_json(stored) != config:
        raise ConfigError(f"{path}: was trained with a different config; resume needs the same one")
    snapshot = store.read_snapshot(path)
    if snapshot is None:  # nothing committed yet: start over in place
        return 0, 0
    params.update(_tensors(snapshot["params"]))
    opt.load(snapshot["optimizer"])
    sampler.set_state(snapshot["sampler"])
    return int(snapshot["step"]), int(snapshot["committed"])
