"""The loss of saved checkpoints, evaluated again (torch).

The store's ``loss`` is the training loss of one fresh batch per step, whose
noise can hide the drops :func:`toyanalysis.phases` looks for and decide
which seed of a phase-diagram cell looks best. :func:`expected_loss` gives the
expected loss of every recorded checkpoint under the run's data distribution:

- ``exact``: a sum over the *activity patterns* (which features are non-zero:
  every combination of independent features, correlated sets and members of
  anticorrelated sets, with its probability per instance) of the expected
  loss given the pattern, integrated over the active values by a composite
  3-point Gauss–Legendre rule per dimension (panels split at 0 for signed
  inputs). The integrand is a continuous piecewise quadratic (squared error of
  a piecewise-linear model), so panels no ReLU kink crosses are integrated
  exactly; ``error`` is the probability-weighted difference to the same rule
  with half the panels (a bound in practice: the rule's error falls as h³).
- ``sampled``: importance sampling for many features: each unit's activity
  probability is raised so that about ``target_active`` features are active
  per sample (so interference is sampled even when the data are sparse), the
  values are drawn as in training, every sample is weighted by its likelihood
  ratio, and ``error`` is the standard error of the weighted mean.

:func:`evaluation_loss` (the loss on one fixed batch) is kept for comparison.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from jaxtyping import Bool, Float

from toyanalysis._checks import shape_checked
from toyanalysis.errors import ConfigError, StoreError

if TYPE_CHECKING:
    import xarray as xr

    from toyanalysis.config import RunConfig

__all__ = ["activity_patterns", "evaluation_loss", "expected_loss", "quadrature"]

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
    _check_fits(config, batch_size)
    config = config.override(seed=config.train.seed + int(seed))
    if "b" not in ds.data_vars:
        raise StoreError("evaluation loss needs the biases b (step, instance, feature)")
    if ds.sizes["instance"] != config.n_instances or ds.sizes["feature"] != config.n_features:
        raise StoreError(
            f"the store's config describes {config.n_instances} instances x {config.n_features} "
            f"features, the weights have {ds.sizes['instance']} x {ds.sizes['feature']}"
        )
    return config


def _check_fits(config: RunConfig, batch_size: int) -> None:
    """The fixed batch is kept whole: refuse one that cannot fit in memory, saying its size."""
    from toyanalysis.store import available_memory, format_bytes

    needed = 4 * batch_size * config.n_instances * config.n_features
    memory = available_memory()
    if memory is not None and needed > memory:
        raise ConfigError(
            f"a fixed batch of {batch_size:,} samples for {config.n_instances} instances x "
            f"{config.n_features} features needs {format_bytes(needed)} of memory; "
            f"{format_bytes(memory)} is available"
        )


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


# --------------------------------------------------------------------------- expected loss

METHODS = ("auto", "exact", "sampled")
_GAUSS = 3  # nodes per panel: exact for the quadratic pieces of the squared error


def _units(config: RunConfig) -> list[tuple[list[tuple[int, ...]], np.ndarray]]:
    """The independent units of the data: per unit its options (the features each one
    activates; option 0 activates none) and their probabilities ``(instance, option)``."""
    density = config.instance_density()
    n = config.n_features
    groups = [(g.kind, tuple(g.features)) for g in config.sets]
    if config.one_hot:
        groups = [("anticorrelated", tuple(range(n)))]
    grouped = {f for _, members in groups for f in members}
    units: list[tuple[list[tuple[int, ...]], np.ndarray]] = []
    for f in range(n):
        if f not in grouped:
            units.append(([(), (f,)], np.stack([1 - density[:, f], density[:, f]], axis=1)))
    for kind, members in groups:
        d = density[:, list(members)]
        if kind == "correlated":
            units.append(([(), members], np.stack([1 - d[:, 0], d[:, 0]], axis=1)))
        else:
            off = 1 - d.sum(axis=1, keepdims=True)
            off = np.where(off < 1e-12, 0.0, off)  # one-hot: no sample is empty
            units.append(([(), *[(f,) for f in members]], np.concatenate([off, d], axis=1)))
    return units


@shape_checked
def activity_patterns(
    config: RunConfig, max_patterns: int = 1 << 14
) -> tuple[Bool[np.ndarray, "pattern feature"], Float[np.ndarray, "instance pattern"]]:
    """Every activity pattern of the data with non-zero probability for some instance:
    ``masks (pattern, feature)`` and ``probability (instance, pattern)`` (rows sum to 1).

    >>> from toyanalysis.config import RunConfig
    >>> masks, p = activity_patterns(RunConfig(n_features=2, n_hidden=1, density=0.1))
    >>> masks.astype(int).tolist(), p.round(3).tolist()
    ([[0, 0], [0, 1], [1, 0], [1, 1]], [[0.81, 0.09, 0.09, 0.01]])
    """
    units = _units(config)
    count = math.prod(len(options) for options, _ in units)
    if count > max_patterns:
        raise ConfigError(
            f"the data have {count} activity patterns, more than max_patterns={max_patterns}: "
            "use method='sampled'"
        )
    masks = np.zeros((1, config.n_features), dtype=bool)
    prob = np.ones((config.n_instances, 1))
    for options, p in units:
        option_masks = np.zeros((len(options), config.n_features), dtype=bool)
        for o, members in enumerate(options):
            option_masks[o, list(members)] = True
        masks = (masks[:, None, :] | option_masks[None, :, :]).reshape(-1, config.n_features)
        prob = (prob[:, :, None] * p[:, None, :]).reshape(config.n_instances, -1)
    keep = prob.max(axis=0) > 0
    return masks[keep], prob[:, keep]


def _panels(active: int, points: int) -> int:
    """Panels per dimension so that a pattern with ``active`` features has about ``points`` nodes."""
    if active == 0:
        return 1
    return int(max(1, min(256, math.floor(points ** (1.0 / active) / _GAUSS))))


@shape_checked
def quadrature(
    panels: int, signed: bool, gauss: int = _GAUSS
) -> tuple[Float[np.ndarray, " node"], Float[np.ndarray, " node"]]:
    """Nodes and weights of the composite Gauss–Legendre rule for ``E f(v)``, v ~ U[0, 1]
    (U[-1, 1] when ``signed``: the rule on [0, 1] mirrored, so 0 is a panel edge).

    >>> nodes, weights = quadrature(4, signed=False)
    >>> round(float(weights.sum()), 12), round(float(weights @ nodes**2), 12)
    (1.0, 0.333333333333)
    """
    x, w = np.polynomial.legendre.leggauss(gauss)
    edges = np.arange(panels)[:, None] / panels
    nodes = (edges + (x[None, :] + 1) / (2 * panels)).reshape(-1)
    weights = np.tile(w / (2 * panels), panels)
    if signed:
        return np.concatenate([-nodes[::-1], nodes]), np.concatenate([weights[::-1], weights]) / 2
    return nodes, weights


def _grid(mask: np.ndarray, panels: int, signed: bool, gauss: int) -> tuple[np.ndarray, np.ndarray]:
    """Tensor-product nodes ``(feature, point)`` (zero off the pattern) and weights ``(point,)``."""
    active = np.flatnonzero(mask)
    nodes, weights = quadrature(panels, signed, gauss)
    k = len(active)
    x = np.zeros((len(mask), len(nodes) ** k))
    if k == 0:
        return x[:, :1], np.ones(1)
    mesh = np.meshgrid(*([nodes] * k), indexing="ij")
    wmesh = np.meshgrid(*([weights] * k), indexing="ij")
    for j, f in enumerate(active):
        x[f] = mesh[j].reshape(-1)
    return x, np.prod([w.reshape(-1) for w in wmesh], axis=0)


def _exact_rule(
    masks: np.ndarray, points: int, signed: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All patterns' nodes ``(feature, point)``, the pattern of each point, and the fine and
    coarse weights of each point (a point of one rule has weight 0 in the other)."""
    xs, pattern, fine, coarse = [], [], [], []
    for p, mask in enumerate(masks):
        panels = _panels(int(mask.sum()), points)
        coarse_rule = (panels // 2, _GAUSS) if panels >= 2 else (1, _GAUSS - 1)
        for (count, gauss), is_fine in (((panels, _GAUSS), True), (coarse_rule, False)):
            x, w = _grid(mask, count, signed, gauss)
            xs.append(x)
            pattern.append(np.full(x.shape[1], p))
            fine.append(w if is_fine else np.zeros_like(w))
            coarse.append(np.zeros_like(w) if is_fine else w)
    return (
        np.concatenate(xs, axis=1),
        np.concatenate(pattern),
        np.concatenate(fine),
        np.concatenate(coarse),
    )


def exact_size(config: RunConfig, points: int = 2048) -> int:
    """How many quadrature nodes the exact loss of ``config`` evaluates per checkpoint
    (a huge number where the patterns are too many to list)."""
    if math.prod(len(options) for options, _ in _units(config)) > 1 << 14:
        return 1 << 62
    masks, _ = activity_patterns(config)
    signed = config.model == "abs"
    total = 0
    for mask in masks:
        k = int(mask.sum())
        panels = _panels(k, points)
        per_dim = _GAUSS * panels * (2 if signed else 1)
        total += per_dim**k
    return total


def _step_blocks(ds: xr.Dataset, names: list[str], per_point: int) -> Any:
    """Blocks of checkpoints ``(start, {name: (step, instance, ...) float32})`` of bounded size."""
    per_step = sum(ds[name].isel(step=0).size for name in names) + per_point
    block = max(1, _ELEMENTS // max(1, per_step))
    for start in range(0, ds.sizes["step"], block):
        yield (
            start,
            {
                name: np.asarray(
                    ds[name].isel(step=slice(start, start + block)).values, dtype=np.float32
                )
                for name in names
            },
        )


def _point_losses(model: str, loaded: dict[str, np.ndarray], x: Any, importance: Any) -> Any:
    """``I``-weighted squared error, mean over features, of every checkpoint of ``loaded``
    at every point of ``x`` (``(instance or 1, feature, point)``): ``(step, instance, point)``."""
    import torch

    from toyanalysis import models

    steps, count = loaded["W"].shape[:2]
    params = {
        name: torch.from_numpy(values).reshape(steps * count, *values.shape[2:])
        for name, values in loaded.items()
    }
    xb = x.expand(count, -1, -1) if x.shape[0] == 1 else x
    xb = xb.unsqueeze(0).expand(steps, -1, -1, -1).reshape(steps * count, *xb.shape[1:])
    err = models.forward(model, params, xb) - models.target(model, xb)
    weight = importance.repeat(steps, 1)[:, :, None]
    return (weight * err.square()).mean(dim=1).reshape(steps, count, -1)


def _store_config(ds: xr.Dataset) -> RunConfig:
    """The run's config, after checking it fits the weights."""
    return _config(ds, 1, 0)


def _exact(
    ds: xr.Dataset, config: RunConfig, names: list[str], points: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact loss and quadrature error ``(step, instance)``."""
    import torch

    masks, prob = activity_patterns(config)
    x, pattern, fine, coarse = _exact_rule(masks, points, config.model == "abs")
    importance = torch.tensor(config.instance_importance(), dtype=torch.float32)
    shape = (ds.sizes["step"], ds.sizes["instance"])
    loss, error = np.zeros(shape), np.zeros(shape)
    chunk = max(1, _ELEMENTS // max(1, config.n_instances * config.n_features))
    for start, loaded in _step_blocks(ds, names, chunk * config.n_instances):
        rows = slice(start, start + len(loaded["W"]))
        per_pattern = np.zeros((len(loaded["W"]), shape[1], len(masks)))
        for a in range(0, x.shape[1], chunk):
            b = min(a + chunk, x.shape[1])
            xt = torch.tensor(x[None, :, a:b], dtype=torch.float32)
            with torch.no_grad():
                value = _point_losses(config.model, loaded, xt, importance).double().numpy()
            weight = prob[:, pattern[a:b]] * fine[a:b]
            loss[rows] += np.einsum("sip,ip->si", value, weight)
            cut = np.flatnonzero(np.diff(pattern[a:b], prepend=-1))
            diff = np.add.reduceat(value * (fine[a:b] - coarse[a:b]), cut, axis=-1)
            per_pattern[:, :, pattern[a:b][cut]] += diff
        error[rows] = np.einsum("sip,ip->si", np.abs(per_pattern), prob)
    return loss, error


def _tilt(units: list[tuple[list[tuple[int, ...]], np.ndarray]], target: float) -> list[np.ndarray]:
    """Proposal probabilities per unit ``(instance, option)``: each unit's probability of
    being active scaled by one factor per instance (at most to ``max(p, 1/2)``) so that
    about ``target`` units are active per sample; the options of a unit keep their ratios."""
    on = np.stack([1 - p[:, 0] for _, p in units], axis=1)  # (instance, unit)
    cap = np.maximum(on, 0.5)
    want = np.maximum(on.sum(axis=1), np.minimum(target, cap.sum(axis=1)))
    lo, hi = np.zeros(len(on)), np.full(len(on), 1e6)
    for _ in range(60):  # bisection on log(factor)
        mid = np.sqrt(np.maximum(lo, 1.0) * hi)
        enough = np.minimum(mid[:, None] * on, cap).sum(axis=1) >= want
        hi, lo = np.where(enough, mid, hi), np.where(enough, lo, mid)
    q_on = np.minimum(hi[:, None] * on, cap)
    out = []
    for u, (_, p) in enumerate(units):
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.where(on[:, u] > 0, q_on[:, u] / on[:, u], 0.0)
        out.append(np.concatenate([1 - q_on[:, u : u + 1], p[:, 1:] * scale[:, None]], axis=1))
    return out


def _proposal_samples(
    config: RunConfig, samples: int, target: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Samples ``x (instance, feature, sample)`` from the tilted proposal and their
    likelihood ratios ``(instance, sample)``."""
    rng = np.random.default_rng([seed, config.train.seed])
    units = _units(config)
    proposal = _tilt(units, target)
    count, n = config.n_instances, config.n_features
    active = np.zeros((count, n, samples), dtype=bool)
    ratio = np.ones((count, samples))
    for (options, p), q in zip(units, proposal):
        cum = np.cumsum(q, axis=1)
        draw = rng.random((count, samples))
        chosen = np.minimum((draw[:, :, None] >= cum[:, None, :]).sum(axis=2), len(options) - 1)
        rows = np.arange(count)[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio *= np.where(q[rows, chosen] > 0, p[rows, chosen] / q[rows, chosen], 0.0)
        for o, members in enumerate(options[1:], start=1):
            active[:, list(members), :] |= (chosen == o)[:, None, :]
    values = rng.random((count, n, samples))
    if config.model == "abs":
        values = 2 * values - 1
    return np.where(active, values, 0.0), ratio


def _sampled(
    ds: xr.Dataset, config: RunConfig, names: list[str], samples: int, target: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Importance-sampled loss and its standard error ``(step, instance)``."""
    import torch

    x, ratio = _proposal_samples(config, samples, target, seed)
    importance = torch.tensor(config.instance_importance(), dtype=torch.float32)
    shape = (ds.sizes["step"], ds.sizes["instance"])
    total, squares = np.zeros(shape), np.zeros(shape)
    chunk = max(1, _ELEMENTS // max(1, config.n_instances * config.n_features))
    for start, loaded in _step_blocks(ds, names, chunk * config.n_instances):
        rows = slice(start, start + len(loaded["W"]))
        for a in range(0, samples, chunk):
            xt = torch.tensor(x[:, :, a : a + chunk], dtype=torch.float32)
            with torch.no_grad():
                value = _point_losses(config.model, loaded, xt, importance).double().numpy()
            weighted = value * ratio[None, :, a : a + chunk]
            total[rows] += weighted.sum(axis=-1)
            squares[rows] += np.square(weighted).sum(axis=-1)
    mean = total / samples
    variance = np.maximum(squares / samples - mean**2, 0.0) * samples / max(1, samples - 1)
    return mean, np.sqrt(variance / samples)


def expected_loss(
    ds: xr.Dataset,
    *,
    method: str = "auto",
    points: int = 2048,
    samples: int | None = None,
    target_active: float = 2.0,
    max_nodes: int = 1 << 18,
    seed: int = 1_000_003,
) -> xr.Dataset:
    """The expected loss of every recorded checkpoint under the run's data: ``loss`` and
    ``error`` ``(step, instance)``.

    ``method``: ``exact`` (patterns × quadrature; ``error`` is the quadrature error
    estimate, about ``points`` nodes per pattern), ``sampled`` (importance sampling with
    ``samples`` samples per instance (default 65,536, fewer for large models: at least
    4,096 and about 2²⁶ / (n·m)) and about ``target_active`` active features per
    sample; ``error`` is the standard error) or ``auto`` (exact when it needs at most
    ``max_nodes`` nodes per checkpoint, else sampled). ``attrs["method"]`` says which ran.
    Needs the store's config (``ds.attrs["config"]``) and its weights.
    """
    import xarray as xr

    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    config = _store_config(ds)
    names = [name for name in ("W", "b", "W_out") if name in ds.data_vars]
    if method == "auto":
        method = "exact" if exact_size(config, points) <= max_nodes else "sampled"
    if samples is None:
        size = config.n_features * config.n_hidden
        samples = int(min(65536, max(4096, 2**26 // size)))
    previous_threads = _threads(1)
    try:
        if method == "exact":
            loss, error = _exact(ds, config, names, points)
        else:
            loss, error = _sampled(ds, config, names, samples, target_active, seed)
    finally:
        _threads(previous_threads)
    dims, coords = (
        ("step", "instance"),
        {"step": ds["step"].values, "instance": ds["instance"].values},
    )
    what = "quadrature error estimate" if method == "exact" else "standard error"
    return xr.Dataset(
        {"loss": (dims, loss), "error": (dims, error, {"description": what})},
        coords=coords,
        attrs={"method": method, "points": points, "samples": samples},
    )


def _threads(count: int) -> int:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    return previous
