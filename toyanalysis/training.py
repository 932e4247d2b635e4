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
import shutil
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
from toyanalysis.errors import ConfigError, StoreError, StoreIOError

BETAS, EPS = (0.9, 0.999), 1e-8
#: Recorded weights are written (committed) at least this often, in seconds of training.
FLUSH_SECONDS = 2.0
_clock = time.monotonic  # replaced by tests to step time deterministically
#: Blosc/zstd shrinks weight trajectories about 1.25 times (for the disk-space check).
COMPRESSION = 1.25


class _Adam:
    """Adam/AdamW over dicts of batched tensors, matching ``torch.optim.AdamW``.

    On a GPU, torch's fused kernel (``_fused_adamw_``) updates every parameter
    in one launch. On the CPU the update is torch's ``_foreach`` passes, one
    call per pass for all parameters: the fused CPU kernel rounds an element
    differently depending on where it falls in the vectorised loop, so an
    instance's weights would depend on how many instances share the run.
    """

    def __init__(self, params: models.Params, decoupled: bool, weight_decay: float) -> None:
        self.decoupled, self.weight_decay = decoupled, weight_decay
        self.m = {k: torch.zeros_like(v) for k, v in params.items()}
        self.v = {k: torch.zeros_like(v) for k, v in params.items()}
        self.t = 0
        first = next(iter(params.values()))
        fused = getattr(torch, "_fused_adamw_" if decoupled else "_fused_adam_", None)
        self.fused = fused if first.device.type != "cpu" else None
        self._steps = [torch.zeros((), device=first.device) for _ in params]

    def step(self, params: models.Params, grads: models.Params, lr: float) -> None:
        self.t += 1
        if self.fused is not None:
            names = list(params)
            for counter in self._steps:
                counter.fill_(self.t)
            self.fused(
                [params[k] for k in names],
                [grads[k] for k in names],
                [self.m[k] for k in names],
                [self.v[k] for k in names],
                [],
                self._steps,
                lr=lr,
                beta1=BETAS[0],
                beta2=BETAS[1],
                weight_decay=self.weight_decay,
                eps=EPS,
                amsgrad=False,
                maximize=False,
            )
            return
        self._step_by_passes(params, grads, lr)

    def _step_by_passes(self, params: models.Params, grads: models.Params, lr: float) -> None:
        b1, b2 = BETAS
        bias1, bias2 = 1 - b1**self.t, 1 - b2**self.t
        names = list(params)
        p = [params[k] for k in names]
        g = [grads[k] for k in names]
        m = [self.m[k] for k in names]
        v = [self.v[k] for k in names]
        if self.weight_decay:
            if self.decoupled:
                torch._foreach_mul_(p, 1 - lr * self.weight_decay)
            else:
                g = list(torch._foreach_add(g, p, alpha=self.weight_decay))
        torch._foreach_lerp_(m, g, 1 - b1)
        torch._foreach_mul_(v, b2)
        torch._foreach_addcmul_(v, g, g, value=1 - b2)
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, math.sqrt(bias2))
        torch._foreach_add_(denom, EPS)
        torch._foreach_addcdiv_(p, m, denom, value=-lr / bias1)

    def state(self) -> dict[str, Any]:
        return {"t": self.t, "m": _numpy(self.m), "v": _numpy(self.v)}

    def load(self, state: dict[str, Any]) -> None:
        self.t = int(state["t"])
        device = self._steps[0].device
        self.m = _tensors(state["m"], device)
        self.v = _tensors(state["v"], device)


def _numpy(params: models.Params) -> dict[str, np.ndarray]:
    return {k: _host(v) for k, v in params.items()}


def _host(value: torch.Tensor) -> np.ndarray:
    """A host copy of ``value`` (one copy, from any device)."""
    if value.device.type == "cpu":
        return value.numpy().copy()
    return value.cpu().numpy()


def _tensors(arrays: dict[str, np.ndarray], device: torch.device | None = None) -> models.Params:
    return {k: torch.from_numpy(np.array(v)).to(device) for k, v in arrays.items()}


def resolve_device(device: str | torch.device = "cpu") -> torch.device:
    """``cpu``, ``cuda[:k]``, ``mps``, or ``auto`` (the first of cuda, mps, cpu available)."""
    if str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ConfigError(f"unknown device {device!r} (cpu, cuda, mps or auto)") from error
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": getattr(torch.backends, "mps", None) is not None
        and torch.backends.mps.is_available(),
    }
    if not available.get(resolved.type, False):
        raise ConfigError(f"device {resolved} is not available here (cpu, cuda, mps or auto)")
    return resolved


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
    attrs = store.base_attrs(config.model, config.to_json(), list(labels), store.new_run_id())
    return xr.Dataset(data, coords=coords, attrs=attrs)


def train(
    config: RunConfig,
    path: str | os.PathLike[str],
    *,
    resume: bool = False,
    overwrite: bool = False,
    threads: int = 1,
    flush_seconds: float = FLUSH_SECONDS,
    progress: Callable[[int, int], None] | None = None,
    break_lock: bool = False,
    device: str | torch.device = "cpu",
) -> xr.Dataset:
    """Train the run described by ``config`` into the store at ``path``; return it opened.

    ``resume=True`` continues an interrupted run in ``path`` (which must have
    been made with the same config); a complete store is returned at once,
    untouched. ``threads`` sets torch's intra-op threads (1 is fastest for
    small models on a busy 2-core machine). ``progress(done, total)`` is
    called about every second. What was recorded is written (committed) at
    least every ``flush_seconds`` of training. The store's writer lock is held
    throughout; ``break_lock`` removes a stale lock file first. ``device``:
    ``cpu`` (default), ``cuda``, ``mps`` or ``auto``; off the CPU the data are
    drawn on the device by torch (another stream than the CPU's: see
    docs/guide.md), and ``resume`` must run on the same kind of device.
    """
    path = Path(path)
    check_resources(config, path, disk=not resume)
    if resume and _finished(path, config):
        return store.open_store(path)
    on = resolve_device(device)
    params = {k: v.to(on) for k, v in models.init_params(config).items()}
    opt = _Adam(params, config.train.optimizer == "adamw", config.train.weight_decay)
    sampler = Sampler(config, device=on)
    layout = template(config)
    run_id: str | None = str(layout.attrs[store.RUN_ID])
    with store.StoreLock(path, "train", run_id=run_id, break_lock=break_lock):
        start = committed = 0
        fresh = not resume
        if resume:
            state = _resume(path, config, params, opt, sampler)
            if state is None:  # no store yet: its creation was cut short
                fresh = True
            elif isinstance(state, str):  # "complete"
                return store.open_store(path)
            else:
                start, committed, run_id = state
        if fresh:
            store.create_trajectory(path, layout, overwrite=overwrite)
        begin = (start, committed, run_id)
        _run(config, path, (params, opt, sampler), layout, begin, threads, flush_seconds, progress)
    return store.open_store(path)


def _run(
    config: RunConfig,
    path: Path,
    state: tuple[models.Params, _Adam, Sampler],
    layout: xr.Dataset,
    begin: tuple[int, int, str | None],
    threads: int,
    flush_seconds: float,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Train from ``begin = (step, committed records, run id)``, lock held; close the writer."""
    params, opt, sampler = state
    start, committed, run_id = begin
    chunk = store.step_chunk(layout)
    writer = store.TrajectoryWriter(path, committed, run_id)
    on = params["W"].device
    importance = torch.tensor(config.instance_importance(), dtype=torch.float32, device=on)
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
            config.record_steps(),
            start,
            committed,
            chunk,
            flush_seconds,
            progress,
        )
        complete = True
    finally:
        torch.set_num_threads(previous_threads)
        try:
            writer.close(complete)
        except Exception:
            if complete:
                raise
            # an error in the loop is the one to report; the writer's is secondary


def check_resources(config: RunConfig, path: Path, *, disk: bool = True) -> None:
    """Refuse, before anything is written, a run that cannot fit in memory (or on ``disk``)."""
    count, n, m = config.n_instances, config.n_features, config.n_hidden
    batch = config.train.batch_size
    gates = len(config.sets) + (1 if config.one_hot else 0)
    weights = count * (m * n * (2 if config.model == "abs" else 1) + n)
    # parameters, gradients, two moments, the snapshot and the record copies
    needed = 8 * 4 * weights
    # a batch: raw draws and uniforms, the inputs, and the forward and backward intermediates
    needed += count * batch * (8 * (n + gates) + 4 * 4 * n + 4 * 3 * m)
    needed += 4 * count * n * 8  # importance and density tables
    record = 4 * (weights + count)
    needed += (
        3 * store.records_per_chunk(record) * record
    )  # the record buffer and two queued blocks
    memory = store.available_memory()
    if memory is not None and needed > memory:
        raise ConfigError(
            f"{config.name}: training needs about {store.format_bytes(needed)} of memory "
            f"(batch_size {batch} x {count} instances x {n} features, {m} hidden); "
            f"{store.format_bytes(memory)} is available: lower batch_size or the sizes"
        )
    if not disk:
        return
    on_disk = len(config.record_steps()) * record / COMPRESSION
    folder = next((p for p in (path.parent, *path.parents) if p.is_dir()), None)
    if folder is not None:
        try:
            free = shutil.disk_usage(folder).free
        except OSError:
            return
        if on_disk > free:
            raise StoreIOError(
                f"{path}: the run records {len(config.record_steps())} checkpoints, about "
                f"{store.format_bytes(on_disk)} on disk, but {folder} has "
                f"{store.format_bytes(free)} free: record fewer steps (--record)"
            )


def _finished(path: Path, config: RunConfig) -> bool:
    """Whether ``path`` holds this config's run, complete (read-only; refuses another config)."""
    if not path.is_dir():
        return False
    progress = store.read_progress(path)
    if progress is None or not progress["complete"]:
        return False
    _check_same_config(path, store.open_store(path, allow_empty=True), config)
    return True


def _check_same_config(path: Path, ds: xr.Dataset, config: RunConfig) -> None:
    stored = ds.attrs.get("config")
    if stored is None:
        raise StoreError(
            f"{path}: has no config; it was not written by the trainer and cannot be resumed"
        )
    if RunConfig.from_json(stored) != config:
        raise ConfigError(f"{path}: was trained with a different config; resume needs the same one")


def _snapshot_spec(params: models.Params) -> dict[str, tuple[tuple[int, ...], str]]:
    spec = {}
    for prefix in ("params", "adam_m", "adam_v"):
        for name, value in params.items():
            spec[f"{prefix}.{name}"] = (tuple(value.shape), "float32")
    return spec


def _snapshot(
    t: int, params: models.Params, opt: _Adam, generator_state: list[dict[str, Any]]
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """What resuming at step ``t`` needs: arrays, and a JSON record (no pickle)."""
    arrays = {f"params.{k}": v for k, v in _numpy(params).items()}
    state = opt.state()
    arrays.update({f"adam_m.{k}": v for k, v in state["m"].items()})
    arrays.update({f"adam_v.{k}": v for k, v in state["v"].items()})
    sampler = [
        {"bit_generator": "torch", "draws": int(s["draws"])}
        if s["bit_generator"] == "torch"
        else {
            "bit_generator": s["bit_generator"],
            "state": [int(x) for x in s["state"]["state"]],
            "has_uint32": int(s["has_uint32"]),
            "uinteger": int(s["uinteger"]),
        }
        for s in generator_state
    ]
    return arrays, {"step": int(t), "adam_t": int(state["t"]), "sampler": sampler}


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_sampler(path: Path, states: Any, count: int, stream: str) -> list[dict[str, Any]]:
    if not isinstance(states, list) or len(states) != count:
        raise store.snapshot_error(path, f"sampler holds no list of {count} generator states")
    kinds = {s.get("bit_generator") if isinstance(s, dict) else None for s in states}
    if stream == "torch" or kinds == {"torch"}:
        return _check_torch_sampler(path, states, stream)
    out = []
    for s in states:
        ok = (
            isinstance(s, dict)
            and s.get("bit_generator") == "SFC64"
            and isinstance(s.get("state"), list)
            and len(s["state"]) == 4
            and all(_whole(x) and 0 <= x < 2**64 for x in s["state"])
            and s.get("has_uint32") in (0, 1)
            and _whole(s.get("uinteger"))
            and 0 <= s["uinteger"] < 2**32
        )
        if not ok:
            raise store.snapshot_error(path, "a generator state is malformed")
        out.append(
            {
                "bit_generator": "SFC64",
                "state": {"state": np.array(s["state"], dtype=np.uint64)},
                "has_uint32": s["has_uint32"],
                "uinteger": s["uinteger"],
            }
        )
    return out


def _check_torch_sampler(path: Path, states: list[Any], stream: str) -> list[dict[str, Any]]:
    """The torch (device) stream's state: the number of batches drawn, the same for all."""
    if stream != "torch":
        raise store.snapshot_error(
            path, "it was made on another device (torch's generators); resume on that device"
        )
    ok = all(
        isinstance(s, dict)
        and s.get("bit_generator") == "torch"
        and _whole(s.get("draws"))
        and s["draws"] >= 0
        for s in states
    )
    if not ok or len({s["draws"] for s in states}) != 1:
        if any(isinstance(s, dict) and s.get("bit_generator") == "SFC64" for s in states):
            raise store.snapshot_error(
                path, "it was made on the CPU (NumPy's generators); resume it on the CPU"
            )
        raise store.snapshot_error(path, "a generator state is malformed")
    return [{"bit_generator": "torch", "draws": int(s["draws"])} for s in states]


def _check_snapshot_counts(
    path: Path, meta: dict[str, Any], config: RunConfig, run_id: str | None, committed: int
) -> tuple[int, int, int]:
    """The snapshot's (step, committed records, adam t), checked against the store."""
    total = len(config.record_steps())
    record_at = config.record_steps().tolist()
    step: Any = meta.get("step")
    done: Any = meta.get("committed")
    adam_t: Any = meta.get("adam_t")
    if not (_whole(step) and _whole(done) and _whole(adam_t)):
        raise store.snapshot_error(path, "step, committed or adam_t is not a whole number")
    if meta.get(store.RUN_ID) != run_id:
        raise store.snapshot_error(path, "it belongs to another run (run id differs)")
    if not (1 <= done <= total and 0 <= step <= config.train.steps and adam_t == step):
        raise store.snapshot_error(path, f"step {step} / committed {done} out of range")
    if record_at[done - 1] > step or (done < total and record_at[done] < step):
        raise store.snapshot_error(path, f"step {step} does not follow record {done}")
    if done < committed:
        raise store.snapshot_error(path, f"older ({done} records) than the store ({committed})")
    return step, done, adam_t


def _resume(
    path: Path, config: RunConfig, params: models.Params, opt: _Adam, sampler: Sampler
) -> tuple[int, int, str | None] | str | None:
    """Load the store's snapshot into the state; finish a commit or completion cut short.

    Returns ``(step, committed, run_id)`` to continue from, ``"complete"``, or
    None when there is no store but a creation that was cut short (start anew).
    Called with the lock held.
    """
    if not os.path.lexists(path):
        if store.creation_was_cut(path):
            return None
        raise StoreError(f"{path}: no such store")
    ds = store.open_store(path, allow_empty=True)
    _check_same_config(path, ds, config)
    progress = store.read_progress(path)
    if progress is None:
        raise StoreError(f"{path}: has no progress record; it was not written by the trainer")
    if progress["complete"]:
        return "complete"
    total = len(config.record_steps())
    run_id = store.store_run_id(path)
    loaded = store.read_snapshot(path, _snapshot_spec(params))
    committed = progress["committed"]
    if loaded is None:
        if committed == total:  # killed after removing the snapshot, before marking complete
            store.set_committed(path, total, complete=True)
            return "complete"
        if committed:
            raise store.snapshot_error(path, f"missing, though {committed} records are committed")
        return 0, 0, run_id
    arrays, meta = loaded
    step, done, adam_t = _check_snapshot_counts(path, meta, config, run_id, committed)
    states = _check_sampler(path, meta.get("sampler"), config.n_instances, sampler.stream)
    if done > committed:  # killed after the snapshot, before the count: finish that commit
        store.set_committed(path, done, complete=False)
    if done == total:  # killed after the last commit, before marking complete
        store.remove_snapshot(path)
        store.set_committed(path, total, complete=True)
        return "complete"
    device = params["W"].device
    params.update(_tensors({k: arrays[f"params.{k}"] for k in params}, device))
    opt.load(
        {
            "t": adam_t,
            "m": {k: arrays[f"adam_m.{k}"] for k in params},
            "v": {k: arrays[f"adam_v.{k}"] for k in params},
        }
    )
    sampler.set_state(states)
    return step, done, run_id


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
    last_flush = last_report = _clock()
    x: torch.Tensor | None = None
    workspace: dict[str, torch.Tensor] = {}

    def flush(t: int, generator_state: list[dict[str, Any]]) -> None:
        nonlocal block_start, buffer, last_flush
        block: dict[str, np.ndarray] = {}
        if buffer:
            block = {name: np.stack([p[name] for p, _ in buffer]) for name in params}
            block["loss"] = np.stack([loss_ for _, loss_ in buffer])
        arrays, meta = _snapshot(t, params, opt, generator_state)
        writer.put(block_start, block, arrays, meta)
        block_start, buffer, last_flush = next_index, [], _clock()

    for t in range(start, total + 1):
        if t > start and (flush_seconds <= 0 or _clock() - last_flush > flush_seconds):
            # a flush on time: what is buffered, and a snapshot at the start of step t
            flush(t, sampler.state())
        recording = next_index < len(record_at) and t == record_at[next_index]
        full = recording and ((next_index + 1) % chunk == 0 or next_index + 1 == len(record_at))
        if full:
            generator_state = sampler.state()
        x = sampler.sample(out=x)  # the batch and the intermediates reuse their memory
        loss, grads = models.loss_and_grads(
            model, params, x, importance, workspace=workspace, need_loss=recording
        )
        if loss is not None:  # a recorded step
            buffer.append((_numpy(params), _host(loss)))
            next_index += 1
            if full:
                flush(t, generator_state)
        if t < total:
            opt.step(params, grads, train_cfg.learning_rate(t))
        if progress is not None and (now := _clock()) - last_report > 1.0:
            progress(t, total)
            last_report = now
    if progress is not None:
        progress(total, total)
