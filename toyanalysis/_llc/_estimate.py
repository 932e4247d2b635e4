"""The estimator: SGLD localised at every selected checkpoint, all chains as one batch."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from jaxtyping import Float

from toyanalysis._checks import shape_checked
from toyanalysis._labels import carried_coords, select
from toyanalysis._llc._params import LLCParams
from toyanalysis.config import RunConfig
from toyanalysis.errors import ConfigError, LLCWarning, StoreError

if TYPE_CHECKING:
    import torch
    import xarray as xr

__all__ = ["LLCWarning", "llc", "run_config", "summarise_chains"]


def run_config(ds: xr.Dataset) -> RunConfig:
    """The store's run config, or a one-line error saying how to attach one."""
    text = ds.attrs.get("config")
    if not text:
        raise ConfigError(
            "the store has no run config (attrs['config']), so its loss is unknown: attach one "
            "with `toyanalysis ingest --config FILE` or `--preset NAME`"
        )
    config = RunConfig.from_json(text)
    if config.n_features != ds.sizes["feature"] or config.n_instances != ds.sizes["instance"]:
        raise ConfigError(
            f"the store's config has {config.n_instances} instances of {config.n_features} "
            f"features but its weights have {ds.sizes['instance']} of {ds.sizes['feature']}"
        )
    return config


def _weights(ds: xr.Dataset, config: RunConfig) -> dict[str, np.ndarray]:
    """The parameters of the selection as ``(step, instance, ...)`` float32 arrays."""
    from toyanalysis.models import family

    names = family(config.model).parameters
    missing = [n for n in names if n != "b" and n not in ds.data_vars]
    if missing:
        raise StoreError(f"a {config.model} model needs variable {missing[0]}, not in the store")
    out = {n: np.asarray(ds[n].values, dtype=np.float32) for n in names if n in ds.data_vars}
    if "b" not in out:  # the store format allows b to be left out: it was zero
        out["b"] = np.zeros((ds.sizes["step"], ds.sizes["instance"], ds.sizes["feature"]), "f4")
    return out


def _block_rows(weights: dict[str, np.ndarray], params: LLCParams) -> int:
    """How many chains fit the memory budget: about 12 batch-sized buffers per row."""
    n = weights["b"].shape[-1]
    m = weights["W"].shape[-2]
    per_row = 4 * params.batch_size * (8 * n + 4 * m) + 4 * 8 * params.draws
    return max(1, int(params.block_mb * 2**20 // per_row))


def _run_blocks(
    ds: xr.Dataset,
    config: RunConfig,
    full: np.ndarray,
    params: LLCParams,
    device: torch.device,
) -> tuple[np.ndarray, np.ndarray]:
    """Sampled losses ``(row, draw)`` and reference losses ``(row,)`` of every chain.

    Rows are ``(step, instance, chain)`` flattened; ``full`` is each selected
    instance's position in the run config; blocks of rows fit ``block_mb``.
    """
    import torch

    from toyanalysis._llc._sgld import RowSampler, sgld_block
    from toyanalysis.models import family

    weights = _weights(ds, config)
    S, n_inst, C = ds.sizes["step"], ds.sizes["instance"], params.chains
    rows = np.arange(S * n_inst * C)
    step_of, inst_of = rows // (n_inst * C), (rows // C) % n_inst
    importance = config.instance_importance()[full]
    density = config.instance_density()[full]
    size = _block_rows(weights, params)
    losses, references = [], []
    for block, start in enumerate(range(0, rows.size, size)):
        s, i = step_of[start : start + size], inst_of[start : start + size]
        w_star = {
            k: torch.as_tensor(v[s, i], device=device).contiguous() for k, v in weights.items()
        }
        gen = torch.Generator(device=device)
        gen.manual_seed(params.seed * 1_000_003 + block)
        sampler = RowSampler(config, density[i], gen, device)
        imp = torch.as_tensor(importance[i], dtype=torch.float32, device=device)
        traces = sgld_block(family(config.model), w_star, imp, sampler, params, gen)
        losses.append(traces.loss)
        references.append(traces.reference)
    return np.concatenate(losses), np.concatenate(references)


@shape_checked
def summarise_chains(
    chain_llc: Float[np.ndarray, "*batch chain"],
    mean_loss: Float[np.ndarray, "*batch chain"],
    reference: Float[np.ndarray, "*batch chain"],
    params: LLCParams,
) -> dict[str, np.ndarray]:
    """λ̂ over the kept chains (last axis), its standard error and the diagnostics.

    A chain *diverged* when its λ̂ is not finite or its mean sampled loss is more
    than ``divergence_tol`` of ``L(w*)`` below it; those chains are dropped.

    >>> p = LLCParams(chains=3)
    >>> out = summarise_chains(np.array([[7.0, 8.0, -90.0]]), np.array([[1.1, 1.1, 0.5]]),
    ...                        np.ones((1, 3)), p)
    >>> out["llc"].tolist(), out["n_divergent"].tolist()
    ([7.5], [1])
    """
    divergent = ~np.isfinite(chain_llc) | (
        reference - mean_loss > params.divergence_tol * reference
    )
    kept = np.where(divergent, np.nan, chain_llc)
    count = (~divergent).sum(axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all chains dropped: NaN, flagged
        estimate = np.nanmean(kept, axis=-1)
        spread = np.nanstd(kept, axis=-1, ddof=1)
    se = np.where(count >= 2, spread / np.sqrt(np.maximum(count, 1)), np.nan)
    unreliable = (count == 0) | (estimate < 0) | (se > params.disagree_tol * np.abs(estimate))
    return {
        "llc": estimate,
        "llc_se": se,
        "divergent": divergent,
        "n_divergent": divergent.sum(axis=-1),
        "unreliable": unreliable,
    }


def _result(
    ds: xr.Dataset, params: LLCParams, losses: np.ndarray, references: np.ndarray
) -> xr.Dataset:
    import xarray as xr

    S, n_inst, C = ds.sizes["step"], ds.sizes["instance"], params.chains
    trace = losses.reshape(S, n_inst, C, params.draws)
    reference = references.reshape(S, n_inst, C)
    nbeta = params.inverse_temperature()
    mean_loss = trace.mean(axis=-1)
    chain_llc = nbeta * (mean_loss - reference)
    summary = summarise_chains(chain_llc, mean_loss, reference, params)
    sic, si = ("step", "instance", "chain"), ("step", "instance")
    data = {
        "llc": (si, summary["llc"]),
        "llc_se": (si, summary["llc_se"]),
        "init_loss": (si, reference.mean(axis=-1)),
        "n_divergent": (si, summary["n_divergent"]),
        "unreliable": (si, summary["unreliable"]),
        "chain_llc": (sic, chain_llc),
        "divergent": (sic, summary["divergent"]),
        "reference_loss": (sic, reference),
        "loss_trace": ((*sic, "draw"), trace.astype(np.float32)),
    }
    coords: dict[str, Any] = {"step": ds["step"].values, "instance": ds["instance"].values}
    coords.update({k: c.compute() for k, c in carried_coords(ds).items() if c.dims})
    coords.update(chain=np.arange(C), draw=np.arange(params.draws))
    attrs = {"params": params.to_json(), "nbeta": nbeta, "model": ds.attrs.get("model", "")}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _warn(result: xr.Dataset) -> None:
    bad = int(result["unreliable"].sum())
    dropped = int(result["n_divergent"].sum())
    if not bad and not dropped:
        return
    where = np.argwhere(result["unreliable"].values)
    first = ""
    if where.size:
        s, i = where[0]
        first = (
            f"; first at step {result['step'].values[s]}, instance "
            f"{result['instance'].values[i]} (λ̂ = {float(result['llc'].values[s, i]):.3g})"
        )
    warnings.warn(
        f"llc: {bad} of {result['llc'].size} estimates unreliable (negative, or chains disagree), "
        f"{dropped} divergent chains dropped{first}",
        LLCWarning,
        stacklevel=3,
    )


def llc(
    ds: xr.Dataset,
    params: LLCParams | None = None,
    *,
    steps: Any = None,
    instances: Any = None,
    device: str = "cpu",
    **changes: Any,
) -> xr.Dataset:
    """The local learning coefficient λ̂ of every selected checkpoint (``docs/llc.md``).

    SGLD localised at each checkpoint ``w*`` (``params.chains`` chains each,
    all checkpoints and chains run as one batch of independent models);
    ``λ̂ = nβ·(mean sampled loss − L(w*))`` with the model's own
    importance-weighted loss on fresh batches of the store's data
    (``attrs["config"]``). ``steps``/``instances`` select as
    :func:`toyanalysis.select` does; keywords change fields of ``params``.

    Returns ``llc``, ``llc_se``, ``init_loss``, ``n_divergent``, ``unreliable``
    ``(step, instance)``; ``chain_llc``, ``divergent``, ``reference_loss``
    ``(step, instance, chain)``; ``loss_trace (step, instance, chain, draw)``.
    Warns (:class:`LLCWarning`, one line) when some estimate is unreliable.
    """
    import torch

    params = LLCParams.resolve(params, changes)
    config = run_config(ds)
    positions = {label: k for k, label in enumerate(ds["instance"].values.tolist())}
    chosen = select(ds, steps=steps, instances=instances)
    full = np.array([positions[i] for i in chosen["instance"].values.tolist()], dtype=np.int64)
    try:
        target = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"unknown device {device!r} (cpu, cuda, cuda:N)") from None
    if target.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for, but CUDA is not available here")
    losses, references = _run_blocks(chosen, config, full, params, target)
    result = _result(chosen, params, losses, references)
    _warn(result)
    return result
