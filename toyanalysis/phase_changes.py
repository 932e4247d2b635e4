"""Phase changes: over training (:func:`phases`) and over sweeps (:func:`phase_diagram`).

A toy model's features settle into a geometry (a *configuration*, summarised
by :func:`toyanalysis.geometry.classify` as e.g. ``"2 digon + 1 dedicated"``).
The paper's two "phase change" results ask when that geometry changes:

**Over training** (section "Superposition and learning dynamics"): the loss
shows plateaus separated by sudden drops, and each drop is a change of
geometry. :func:`phases` turns an instance's per-step classification into
*phases* (a configuration held over a span of steps) and *transitions*
(``from → to`` at a step), ignoring *flicker*: a configuration held for fewer
than ``min_records`` recorded steps, or for fewer than ``min_steps`` optimiser
steps (default: 1% of the recorded span), does not start a phase; its records
join the phase before it (or, at the very start, the phase after it). Alongside
it finds the loss's plateaus and drops, and which transition each drop
coincides with. Per feature, it reports the steps at which the feature's
dimensionality ``D_i`` jumps between fractions (1 → 1/2 → 2/5 …).

**Over importance and sparsity** (section "Superposition as a phase
change"): sweeps with several seeds per cell. :func:`phase_diagram` labels
each cell by what happens to one *extra* feature — ``unlearned`` (norm below
the classifier's ``norm_threshold``), ``superposed`` (represented, and its
component of the overlap graph has two or more features: it shares
dimensions) or ``dedicated`` (represented, alone in its component: a
dimension of its own) — and by its configuration summary, each by majority
over the cell's seeds, and reports where the labels change along each axis.

Loss drops (all on the store's recorded training loss, which is one batch
per step and noisy): with a window of ``w`` records (``loss_window``; default
``max(2, records // 50)``), the *change* at record ``t`` is
``log10(mean(loss[t-w:t]) / mean(loss[t:t+w]))`` (decades; positive when the
loss falls). Its noise ``σ`` is estimated robustly (1.4826 × the median
absolute deviation over all records). A *drop* is a local maximum of the
change (no larger one within ``w`` records) that reaches
``threshold = max(min_drop, noise_factor × σ)`` (defaults 0.05 decades, a
11% fall, and 4) and stands out: it exceeds the change ``w`` records before
and after it (where defined) by at least half the threshold, so a steady
descent has no drops and a decelerating one a single drop. Its step is the
first record after it, its size ``mean before − mean after``. A *plateau*
is a run of at least ``w`` records whose change stays below half the
threshold in size (runs interrupted by at most ``w`` records and no drop are
merged), extended by the window on both sides but never past a drop or into
the next plateau. A drop
*coincides* with the transition nearest to it within its window (records
``t − w`` to ``t + w − 1``), or with none.

Feature dimensionality jumps: at each record ``D_i`` is snapped to the
nearest fraction ``d/k`` of a registered configuration (and 0) when within
``fraction_tol`` (default 0.02); records in between are skipped. The snapped
timeline is collapsed with the same flicker rule, and each change is a jump.

>>> import numpy as np
>>> from toyanalysis import testing
>>> W = np.stack([testing.tegum("digon", "digon")] * 5 + [testing.tegum("digon", "dedicated", dead=1)] * 5)
>>> result = phases(testing.as_dataset(W[:, None], steps=np.arange(10) * 100))
>>> result["phase_summary"].values[0].tolist()
['2 digon', '1 digon + 1 dedicated + 1 unlearned']
>>> int(result["transition_step"][0, 0])
500
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from toyanalysis.errors import ConfigError, StoreError
from toyanalysis.geometry import _given_thresholds, _scalar, _select_steps

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

__all__ = [
    "LABELS",
    "PhaseParams",
    "collapse",
    "diagram_records",
    "evaluation_loss",
    "fraction_text",
    "loss_changes",
    "phase_diagram",
    "phase_events",
    "phase_records",
    "phases",
]

UNLEARNED, SUPERPOSED, DEDICATED = "unlearned", "superposed", "dedicated"
LABELS = (UNLEARNED, SUPERPOSED, DEDICATED)


@dataclass(frozen=True, kw_only=True)
class PhaseParams:
    """Thresholds of :func:`phases` (described in the module docstring)."""

    min_records: int = 3
    min_steps: int | None = None
    loss_window: int | None = None
    min_drop: float = 0.05
    noise_factor: float = 4.0
    fraction_tol: float = 0.02

    def __post_init__(self) -> None:
        if self.min_records < 1:
            raise ConfigError(f"min_records must be >= 1, got {self.min_records}")
        if self.min_steps is not None and self.min_steps < 0:
            raise ConfigError(f"min_steps must be >= 0, got {self.min_steps}")
        if self.loss_window is not None and self.loss_window < 1:
            raise ConfigError(f"loss_window must be >= 1, got {self.loss_window}")
        if not (math.isfinite(self.min_drop) and self.min_drop > 0):
            raise ConfigError(f"min_drop must be > 0 (decades of loss), got {self.min_drop}")
        if not (math.isfinite(self.noise_factor) and self.noise_factor >= 0):
            raise ConfigError(f"noise_factor must be >= 0, got {self.noise_factor}")
        if not (0 <= self.fraction_tol < 0.5):
            raise ConfigError(f"fraction_tol must be in [0, 0.5), got {self.fraction_tol}")


# --- kernels on one timeline ------------------------------------------------------------
def collapse(
    labels: Sequence[Any], steps: Sequence[int], *, min_records: int = 3, min_steps: int = 0
) -> list[tuple[int, int, Any]]:
    """Phases of a timeline: ``(first record, last record, label)``, flicker absorbed.

    A run of equal labels starts a phase only if it has at least
    ``min_records`` records and lasts at least ``min_steps`` steps (until the
    next run starts; the last run until the last record plus one spacing).
    Other runs join the phase before them (at the start: the one after). If
    no run qualifies, the longest run's label covers the whole timeline.

    >>> collapse(list("AAAABAAACCCC"), range(12))
    [(0, 7, 'A'), (8, 11, 'C')]
    >>> collapse(list("AAABBCCC"), range(8), min_records=3)
    [(0, 4, 'A'), (5, 7, 'C')]
    """
    steps = np.asarray(steps, dtype=np.int64)
    n = len(labels)
    if n == 0:
        return []
    if len(steps) != n:
        raise ConfigError(f"collapse: {n} labels but {len(steps)} steps")
    runs: list[tuple[int, int, Any]] = []
    start = 0
    for i in range(1, n + 1):
        if i == n or labels[i] != labels[start]:
            runs.append((start, i - 1, labels[start]))
            start = i
    last_gap = int(steps[-1] - steps[-2]) if n > 1 else 1

    def lasts(run: tuple[int, int, Any]) -> int:
        first, last, _ = run
        end = int(steps[last + 1]) if last + 1 < n else int(steps[-1]) + last_gap
        return end - int(steps[first])

    stable = [(r[1] - r[0] + 1 >= min_records) and lasts(r) >= min_steps for r in runs]
    if not any(stable):
        longest = max(runs, key=lambda r: (r[1] - r[0], -r[0]))
        return [(0, n - 1, longest[2])]
    phases_: list[list[Any]] = []
    pending_start: int | None = None
    for run, ok in zip(runs, stable):
        first, last, label = run
        if ok:
            if phases_ and phases_[-1][2] == label:
                phases_[-1][1] = last
            else:
                begin = first if pending_start is None else pending_start
                phases_.append([begin, last, label])
                pending_start = None
        elif phases_:
            phases_[-1][1] = last
        elif pending_start is None:
            pending_start = first
    return [(int(a), int(b), c) for a, b, c in phases_]


def _window_means(values: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Means of ``values[t-w:t]`` and ``values[t:t+w]`` for every ``t`` (truncated, NaN-aware)."""
    n = len(values)
    finite = np.isfinite(values)
    csum = np.concatenate([[0.0], np.cumsum(np.where(finite, values, 0.0))])
    ccount = np.concatenate([[0], np.cumsum(finite)])
    t = np.arange(n)
    lo, hi = np.maximum(t - w, 0), np.minimum(t + w, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        before = (csum[t] - csum[lo]) / (ccount[t] - ccount[lo])
        after = (csum[hi] - csum[t]) / (ccount[hi] - ccount[t])
    return before, after


def loss_changes(loss: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(change, before, after)`` per record: the log10 fall of the mean loss across record ``t``.

    ``change[t]`` is NaN where either window of ``w`` records is incomplete.

    >>> change, _, _ = loss_changes(np.array([1.0] * 4 + [0.1] * 4), 2)
    >>> change.round(3).tolist()
    [nan, nan, 0.0, 0.26, 1.0, 0.74, 0.0, nan]
    """
    loss = np.asarray(loss, dtype=np.float64)
    before, after = _window_means(loss, w)
    n = len(loss)
    t = np.arange(n)
    full = (t >= w) & (t + w <= n)
    scale = np.nanmax(np.abs(loss)) if np.isfinite(loss).any() else 1.0
    eps = 1e-12 * max(scale, 1e-30)
    with np.errstate(invalid="ignore", divide="ignore"):
        change = np.log10((before + eps) / (after + eps))
    change = np.where(full & np.isfinite(change), change, np.nan)
    return change, before, after


def _drops(change: np.ndarray, w: int, threshold: float) -> list[int]:
    """Records where the change reaches ``threshold``, is the largest within ``w`` records,
    and stands out: it exceeds the change ``w`` records before and after (where known) by at
    least half the threshold. A steady descent (constant change) has no drops; a decelerating
    one has a single drop where it is steepest. Equal neighbours: the earliest wins.
    """
    values = np.nan_to_num(change, nan=-np.inf)
    n = len(values)
    chosen = []
    for t in range(n):
        if not values[t] >= threshold:
            continue
        lo, hi = max(0, t - w + 1), min(n, t + w)
        if values[t] < values[lo:hi].max() or (values[lo:t] == values[t]).any():
            continue
        sides = [change[u] for u in (t - w, t + w) if 0 <= u < n and np.isfinite(change[u])]
        if sides and values[t] - max(sides) < threshold / 2:
            continue
        chosen.append(t)
    return chosen


def _plateaus(
    change: np.ndarray, w: int, threshold: float, drops: list[int]
) -> list[tuple[int, int]]:
    """Spans of records where the loss level holds, as ``(first, last)`` record.

    Records whose change is below half the threshold in size are *flat*;
    runs of flat records separated by at most ``w`` records and no drop are
    merged; runs of at least ``w`` records are plateaus, extended by ``w``
    records on each side (the windows that saw them flat) without reaching
    past a drop or into the next plateau.
    """
    flat = np.isfinite(change) & (np.abs(change) < threshold / 2)
    n = len(change)
    runs: list[list[int]] = []
    t = 0
    while t < n:
        if not flat[t]:
            t += 1
            continue
        start = t
        while t < n and flat[t]:
            t += 1
        if (
            runs
            and start - runs[-1][1] - 1 <= w
            and not any(runs[-1][1] < d <= start for d in drops)
        ):
            runs[-1][1] = t - 1
        else:
            runs.append([start, t - 1])
    runs = [r for r in runs if r[1] - r[0] + 1 >= w]
    out: list[tuple[int, int]] = []
    for k, (a, b) in enumerate(runs):
        lo, hi = max(0, a - w), min(n - 1, b + w - 1)
        lo = max([lo, *[d for d in drops if d <= a]])
        hi = min([hi, *[d - 1 for d in drops if d > b]])
        if out:
            lo = max(lo, out[-1][1] + 1)
        if k + 1 < len(runs):
            hi = min(hi, runs[k + 1][0] - 1)
        out.append((lo, hi))
    return out


def _noise(change: np.ndarray) -> float:
    valid = change[np.isfinite(change)]
    if valid.size < 3:
        return 0.0
    return float(1.4826 * np.median(np.abs(valid - np.median(valid))))


def fraction_text(value: float) -> str:
    """``0.4 -> '2/5'``, ``1.0 -> '1'``, ``0.0 -> '0'``; '' for NaN."""
    if not np.isfinite(value):
        return ""
    return str(Fraction(float(value)).limit_denominator(64))


def _fractions() -> np.ndarray:
    from toyanalysis.geometry import configurations

    values = {Fraction(c.n_dims, c.n_features) for c in configurations()} | {Fraction(0)}
    return np.array(sorted(float(v) for v in values))


def _snap(dimensionality: np.ndarray, fractions: np.ndarray, tol: float) -> np.ndarray:
    """Nearest fraction where within ``tol``, else NaN."""
    d = np.asarray(dimensionality, dtype=np.float64)
    nearest = fractions[np.argmin(np.abs(d[..., None] - fractions), axis=-1)]
    return np.where(np.abs(d - nearest) <= tol, nearest, np.nan)


# --- inputs ---------------------------------------------------------------------------------
def _classification(
    ds: xr.Dataset,
    classification: xr.Dataset | None,
    steps: Any,
    instances: Any,
    thresholds: dict[str, float],
) -> xr.Dataset:
    """The classify result to work on: given, ``ds`` itself if it is one, or computed."""
    if classification is None and "summary" in ds.data_vars:
        classification = ds
    if classification is None:
        from toyanalysis.geometry import classify

        return classify(ds, steps=steps, instances=instances, **thresholds)
    missing = [v for v in ("summary", "component", "dimensionality") if v not in classification]
    if missing:
        raise StoreError(
            f"classification has no variable {missing[0]}: pass the result of toyanalysis.classify"
        )
    if thresholds:
        raise ConfigError(
            "norm_threshold/overlap_tol apply only when phases computes the classification"
        )
    out = _select_steps(classification, steps, _have)
    if instances is not None:
        wanted = [instances] if np.ndim(instances) == 0 else list(instances)
        missing_inst = [i for i in wanted if i not in set(out["instance"].values.tolist())]
        if missing_inst:
            raise ConfigError(f"instance {missing_inst[0]} is not in the classification")
        out = out.sel(instance=wanted)
    return out


def _have(recorded: np.ndarray) -> str:
    return f" (have {recorded.size} steps, {recorded[0]}..{recorded[-1]})"


def evaluation_loss(
    ds: xr.Dataset, *, batch_size: int = 16384, seed: int = 1_000_003
) -> xr.DataArray:
    """The loss of every recorded checkpoint on one fixed batch: ``(step, instance)``.

    The store's ``loss`` is the training loss of one fresh batch per step,
    whose noise can hide the drops :func:`phases` looks for. This draws one
    batch of ``batch_size`` samples per instance from the run's own data
    distribution (``ds.attrs["config"]``, with the data seeds shifted by
    ``seed`` so the batch is not a training batch) and evaluates every
    recorded ``W``, ``b`` (and ``W_out``) on it. Samples are drawn in chunks,
    so memory stays bounded.
    """
    if "config" not in ds.attrs:
        raise StoreError(
            "evaluation loss needs the run's config (attrs['config']); this store has none"
        )
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    import torch

    from toyanalysis.config import RunConfig
    from toyanalysis.data import Sampler

    config = RunConfig.from_json(ds.attrs["config"])
    config = config.override(seed=config.train.seed + int(seed))
    names = [name for name in ("W", "b", "W_out") if name in ds.data_vars]
    if "b" not in names:
        raise StoreError("evaluation loss needs the biases b (step, instance, feature)")
    if ds.sizes["instance"] != config.n_instances or ds.sizes["feature"] != config.n_features:
        raise StoreError(
            f"the store's config describes {config.n_instances} instances x {config.n_features} "
            f"features, the weights have {ds.sizes['instance']} x {ds.sizes['feature']}"
        )
    importance = torch.tensor(config.instance_importance(), dtype=torch.float32)
    chunk = int(max(1, min(batch_size, 2**22 // max(1, config.n_instances * config.n_features))))
    sizes = [chunk] * (batch_size // chunk) + ([batch_size % chunk] if batch_size % chunk else [])
    total = np.zeros((ds.sizes["step"], ds.sizes["instance"]))
    samplers = {size: Sampler(config, batch_size=size) for size in set(sizes)}
    batches = []
    for size in sizes:
        batches.append((size, samplers[size].sample().clone()))
    per_step = sum(ds[name].isel(step=0).size for name in names)
    block = max(1, 2**22 // max(1, per_step))
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: one thread is fastest on a shared machine
    try:
        _evaluate(ds, names, block, batches, config.model, importance, total)
    finally:
        torch.set_num_threads(previous_threads)
    import xarray as xr

    return xr.DataArray(
        total / batch_size,
        dims=("step", "instance"),
        coords={"step": ds["step"].values, "instance": ds["instance"].values},
        name="loss",
        attrs={"description": f"loss on one fixed batch of {batch_size} samples per instance"},
    )


def _evaluate(
    ds: xr.Dataset,
    names: list[str],
    block: int,
    batches: list[tuple[int, Any]],
    model: str,
    importance: Any,
    total: np.ndarray,
) -> None:
    """Accumulate ``size × loss`` of every recorded checkpoint on every batch into ``total``."""
    import torch

    from toyanalysis import models

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


def _loss_source(loss: np.ndarray | None, eval_batch: int | None) -> str:
    if loss is None:
        return "none"
    return "store" if eval_batch is None else f"eval:{eval_batch}"


def _loss(ds: xr.Dataset, cls: xr.Dataset) -> np.ndarray | None:
    """Loss ``(step, instance)`` aligned with the classification, or None."""
    source = ds if "loss" in ds.data_vars else cls if "loss" in cls.data_vars else None
    if source is None:
        return None
    for dim in ("step", "instance"):
        missing = set(cls[dim].values.tolist()) - set(source[dim].values.tolist())
        if missing:
            raise StoreError(
                f"the classification has {dim} {min(missing)}, which the store's loss does not"
            )
    loss = source["loss"].sel(step=cls["step"].values, instance=cls["instance"].values)
    return np.asarray(loss.transpose("step", "instance").values, dtype=np.float64)


# --- phases over training -------------------------------------------------------------------
def phases(
    ds: xr.Dataset,
    *,
    classification: xr.Dataset | None = None,
    steps: Any = None,
    instances: Any = None,
    norm_threshold: float | None = None,
    overlap_tol: float | None = None,
    min_records: int = 3,
    min_steps: int | None = None,
    loss_window: int | None = None,
    min_drop: float = 0.05,
    noise_factor: float = 4.0,
    fraction_tol: float = 0.02,
    eval_batch: int | None = None,
) -> xr.Dataset:
    """Phases, transitions, loss plateaus and drops, and dimensionality jumps per instance.

    ``ds`` is a store Dataset (or a :func:`~toyanalysis.geometry.classify`
    result); ``classification`` a classify result to reuse (else it is
    computed with ``norm_threshold``/``overlap_tol``, classify's defaults when
    None). ``steps``/``instances`` select as in classify. The loss is the
    store's ``loss`` (loss results are empty without it), or with
    ``eval_batch=N`` the less noisy :func:`evaluation_loss` on a fixed batch
    of N samples.

    Returns a Dataset (padded per instance; pads are -1, "" or NaN):

    - ``summary``, ``phase_index`` ``(step, instance)``: the classification
      and the phase each record belongs to; ``loss``, ``loss_change``
      ``(step, instance)`` when there is a loss;
    - ``phase_start``, ``phase_end``, ``phase_summary``, ``phase_records``
      ``(instance, phase)``; ``n_phases (instance)``;
    - ``transition_step``, ``transition_from``, ``transition_to``,
      ``loss_before``, ``loss_after`` ``(instance, transition)``;
    - ``drop_step``, ``drop_size``, ``drop_change`` (decades),
      ``drop_loss_before``, ``drop_loss_after``, ``drop_transition`` (index
      into ``transition`` or -1) ``(instance, drop)``; ``drop_features
      (instance, drop, feature)``: the features whose dimensionality jumps
      within the drop's window;
    - ``plateau_start``, ``plateau_end``, ``plateau_loss`` ``(instance, plateau)``;
    - ``jump_step``, ``jump_from``, ``jump_to`` ``(instance, feature, jump)``
      (fractions as numbers), ``n_jumps (instance, feature)``.
    """
    params = PhaseParams(
        min_records=min_records,
        min_steps=min_steps,
        loss_window=loss_window,
        min_drop=min_drop,
        noise_factor=noise_factor,
        fraction_tol=fraction_tol,
    )
    ds = _as_store(ds)
    cls = _classification(
        ds, classification, steps, instances, _given_thresholds(norm_threshold, overlap_tol)
    )
    cls = cls.transpose("step", "instance", "feature", ...)
    step_values = np.asarray(cls["step"].values, dtype=np.int64)
    n_records = len(step_values)
    span = int(step_values[-1] - step_values[0]) if n_records else 0
    min_steps_used = params.min_steps if params.min_steps is not None else span // 100
    w = params.loss_window if params.loss_window is not None else max(2, n_records // 50)
    summary = cls["summary"].values.astype(str)
    dims_values = cls["dimensionality"].values
    if eval_batch is not None:
        if "W" not in ds.data_vars:
            raise ConfigError("eval_batch needs the store's weights, not only a classification")
        full = evaluation_loss(ds.sel(step=cls["step"].values), batch_size=eval_batch)
        loss = np.asarray(
            full.sel(instance=cls["instance"].values).transpose("step", "instance").values
        )
    else:
        loss = _loss(ds, cls)
    resolved = _Resolved(params=params, min_steps=min_steps_used, window=w, fractions=_fractions())
    per_instance = [
        _instance_phases(
            summary[:, k],
            dims_values[:, k],
            None if loss is None else loss[:, k],
            step_values,
            resolved,
        )
        for k in range(cls.sizes["instance"])
    ]
    result = _phases_dataset(cls, per_instance, summary, loss, step_values)
    result.attrs.update(
        {
            "analysis": "phases",
            "min_records": params.min_records,
            "min_steps": int(min_steps_used),
            "loss_window": int(w),
            "min_drop": params.min_drop,
            "noise_factor": params.noise_factor,
            "fraction_tol": params.fraction_tol,
            "fractions": [fraction_text(f) for f in resolved.fractions],
            "has_loss": loss is not None,
            "loss_source": _loss_source(loss, eval_batch),
            "sweep": list(cls.attrs.get("sweep", ds.attrs.get("sweep", []))),
            **{
                k: v
                for k, v in cls.attrs.items()
                if k in ("norm_threshold", "overlap_tol", "rank_tol", "min_fit")
            },
        }
    )
    return result


def _as_store(ds: Any) -> xr.Dataset:
    import xarray as xr

    if not isinstance(ds, xr.Dataset):
        raise ConfigError(
            f"expected an xarray Dataset (a store or a classify result), got {type(ds).__name__}"
        )
    if "W" in ds.data_vars:
        from toyanalysis.store import normalize

        return normalize(ds.copy(), "dataset")
    if "summary" not in ds.data_vars:
        raise StoreError("dataset has neither weights W nor a classification summary")
    return ds


@dataclass(frozen=True)
class _Resolved:
    """The thresholds of one :func:`phases` call with the run-dependent defaults filled in."""

    params: PhaseParams
    min_steps: int
    window: int
    fractions: np.ndarray


def _instance_phases(
    summary: np.ndarray,
    dimensionality: np.ndarray,
    loss: np.ndarray | None,
    steps: np.ndarray,
    r: _Resolved,
) -> dict[str, Any]:
    """Phases, transitions, drops, plateaus and jumps of one instance's timeline."""
    min_records, w = r.params.min_records, r.window
    found = collapse(list(summary), steps, min_records=min_records, min_steps=r.min_steps)
    phase_index = np.full(len(steps), -1, dtype=np.int64)
    for p, (first, last, _) in enumerate(found):
        phase_index[first : last + 1] = p
    out: dict[str, Any] = {"phases": found, "phase_index": phase_index}
    jumps = _feature_jumps(dimensionality, steps, r)
    if loss is None or not np.isfinite(loss).any():
        out.update(transitions=_transitions(found, steps, None, None), drops=[], plateaus=[])
        out["jumps"] = jumps
        return out
    change, before, after = loss_changes(loss, w)
    threshold = max(r.params.min_drop, r.params.noise_factor * _noise(change))
    drops = _drops(change, w, threshold)
    transitions = _transitions(found, steps, before, after)
    drop_rows = []
    for t in drops:
        lo, hi = steps[max(0, t - w)], steps[min(len(steps) - 1, t + w - 1)]
        near = [
            (abs(tr["step"] - int(steps[t])), j)
            for j, tr in enumerate(transitions)
            if lo <= tr["step"] <= hi
        ]
        drop_rows.append(
            {
                "step": int(steps[t]),
                "size": float(before[t] - after[t]),
                "change": float(change[t]),
                "loss_before": float(before[t]),
                "loss_after": float(after[t]),
                "transition": min(near)[1] if near else -1,
                "features": [
                    f for f, rows in enumerate(jumps) if any(lo <= j["step"] <= hi for j in rows)
                ],
            }
        )
    plateaus = [
        {"start": int(steps[a]), "end": int(steps[b]), "loss": float(np.nanmean(loss[a : b + 1]))}
        for a, b in _plateaus(change, w, threshold, drops)
    ]
    out.update(change=change, transitions=transitions, drops=drop_rows, plateaus=plateaus)
    out["jumps"] = jumps
    return out


def _transitions(
    found: list[tuple[int, int, Any]],
    steps: np.ndarray,
    before: np.ndarray | None,
    after: np.ndarray | None,
) -> list[dict[str, Any]]:
    """From one phase to the next, at the new phase's first record, with the loss around it."""
    rows = []
    for (_, _, old), (first, _, new) in itertools.pairwise(found):
        rows.append(
            {
                "step": int(steps[first]),
                "from": old,
                "to": new,
                "loss_before": math.nan if before is None else float(before[first]),
                "loss_after": math.nan if after is None else float(after[first]),
            }
        )
    return rows


def _feature_jumps(
    dimensionality: np.ndarray, steps: np.ndarray, r: _Resolved
) -> list[list[dict[str, Any]]]:
    """Per feature: the steps where its snapped dimensionality changes (flicker absorbed)."""
    snapped = _snap(dimensionality, r.fractions, r.params.fraction_tol)  # (step, feature)
    jumps = []
    for f in range(snapped.shape[1]):
        keep = np.isfinite(snapped[:, f])
        values, kept_steps = snapped[keep, f], steps[keep]
        segments = collapse(
            list(values), kept_steps, min_records=r.params.min_records, min_steps=r.min_steps
        )
        jumps.append(
            [
                {"step": int(kept_steps[first]), "from": old, "to": new}
                for (_, _, old), (first, _, new) in itertools.pairwise(segments)
            ]
        )
    return jumps


def _pad(rows_per_instance: list[list[Any]], key: str | None, fill: Any, dtype: Any) -> np.ndarray:
    size = max((len(r) for r in rows_per_instance), default=0)
    out = np.full((len(rows_per_instance), size), fill, dtype=dtype)
    for k, rows in enumerate(rows_per_instance):
        for j, row in enumerate(rows):
            out[k, j] = row if key is None else row[key]
    return out


def _phases_dataset(
    cls: xr.Dataset,
    found: list[dict[str, Any]],
    summary: np.ndarray,
    loss: np.ndarray | None,
    steps: np.ndarray,
) -> xr.Dataset:
    import xarray as xr

    si = ("step", "instance")
    data: dict[str, Any] = {
        "summary": (si, summary),
        "phase_index": (si, np.stack([f["phase_index"] for f in found], axis=1)),
    }
    if loss is not None:
        data["loss"] = (si, loss)
        data["loss_change"] = (
            si,
            np.stack([f.get("change", np.full(len(steps), np.nan)) for f in found], axis=1),
        )
    ph = [f["phases"] for f in found]
    ip = ("instance", "phase")
    data["phase_start"] = (
        ip,
        _pad([[int(steps[a]) for a, _, _ in p] for p in ph], None, -1, np.int64),
    )
    data["phase_end"] = (
        ip,
        _pad([[int(steps[b]) for _, b, _ in p] for p in ph], None, -1, np.int64),
    )
    data["phase_summary"] = (
        ip,
        _pad([[str(c) for _, _, c in p] for p in ph], None, "", object).astype(str),
    )
    data["phase_records"] = (
        ip,
        _pad([[b - a + 1 for a, b, _ in p] for p in ph], None, 0, np.int64),
    )
    data["n_phases"] = ("instance", np.array([len(p) for p in ph], dtype=np.int64))
    tr = [f["transitions"] for f in found]
    it = ("instance", "transition")
    data["transition_step"] = (it, _pad(tr, "step", -1, np.int64))
    data["transition_from"] = (it, _pad(tr, "from", "", object).astype(str))
    data["transition_to"] = (it, _pad(tr, "to", "", object).astype(str))
    data["loss_before"] = (it, _pad(tr, "loss_before", np.nan, np.float64))
    data["loss_after"] = (it, _pad(tr, "loss_after", np.nan, np.float64))
    data["n_transitions"] = ("instance", np.array([len(t) for t in tr], dtype=np.int64))
    dr = [f["drops"] for f in found]
    idr = ("instance", "drop")
    data["drop_step"] = (idr, _pad(dr, "step", -1, np.int64))
    for key in ("size", "change", "loss_before", "loss_after"):
        data[f"drop_{key}"] = (idr, _pad(dr, key, np.nan, np.float64))
    data["drop_transition"] = (idr, _pad(dr, "transition", -1, np.int64))
    drop_features = np.zeros(
        (len(found), max((len(d) for d in dr), default=0), cls.sizes["feature"]), dtype=bool
    )
    for k, rows in enumerate(dr):
        for j, row in enumerate(rows):
            drop_features[k, j, row["features"]] = True
    data["drop_features"] = (("instance", "drop", "feature"), drop_features)
    data["n_drops"] = ("instance", np.array([len(d) for d in dr], dtype=np.int64))
    pl = [f["plateaus"] for f in found]
    ipl = ("instance", "plateau")
    data["plateau_start"] = (ipl, _pad(pl, "start", -1, np.int64))
    data["plateau_end"] = (ipl, _pad(pl, "end", -1, np.int64))
    data["plateau_loss"] = (ipl, _pad(pl, "loss", np.nan, np.float64))
    data["n_plateaus"] = ("instance", np.array([len(p) for p in pl], dtype=np.int64))
    jumps = [f["jumps"] for f in found]  # [instance][feature] -> rows
    n_feat = cls.sizes["feature"]
    size = max((len(rows) for per in jumps for rows in per), default=0)
    jump_step = np.full((len(found), n_feat, size), -1, dtype=np.int64)
    jump_from = np.full((len(found), n_feat, size), np.nan)
    jump_to = np.full((len(found), n_feat, size), np.nan)
    for k, per in enumerate(jumps):
        for f, rows in enumerate(per):
            for j, row in enumerate(rows):
                jump_step[k, f, j], jump_from[k, f, j], jump_to[k, f, j] = (
                    row["step"],
                    row["from"],
                    row["to"],
                )
    ifj = ("instance", "feature", "jump")
    data["jump_step"] = (ifj, jump_step)
    data["jump_from"] = (ifj, jump_from)
    data["jump_to"] = (ifj, jump_to)
    data["n_jumps"] = (("instance", "feature"), (jump_step >= 0).sum(axis=-1))
    keep = ("step", "instance", "feature")
    coords = {
        name: c.compute() for name, c in cls.coords.items() if c.dims and set(c.dims) <= set(keep)
    }
    return xr.Dataset(data, coords=coords)


# --- phase diagrams over sweeps ---------------------------------------------------------------
def _extra_feature(ds: xr.Dataset, feature: Any) -> tuple[int, str]:
    """Index of the extra feature and how it was chosen."""
    labels = ds["feature"].values.tolist()
    if feature is not None:
        if feature not in labels:
            raise ConfigError(
                f"feature {feature!r} is not in the store (features: {labels[0]}..{labels[-1]})"
            )
        return labels.index(feature), "given"
    singled: set[int] = set()
    for name in ("importance", "density"):
        if name not in ds.coords:
            continue
        values = np.asarray(ds[name].transpose("instance", "feature").values, dtype=np.float64)
        for f in range(values.shape[1]):
            column = values[:, f]
            varies = not np.allclose(column, column[0])
            shared = any(
                np.allclose(column, values[:, g]) for g in range(values.shape[1]) if g != f
            )
            if varies and not shared:
                singled.add(f)
    if len(singled) > 1:
        names = ", ".join(str(labels[f]) for f in sorted(singled))
        raise ConfigError(
            f"several features ({names}) have their own importance/density sweep; choose one with feature="
        )
    if singled:
        return singled.pop(), "varies across instances"
    return len(labels) - 1, "last feature (no feature varies on its own)"


def _extra_labels(cls: xr.Dataset, f: int) -> np.ndarray:
    """``unlearned`` / ``superposed`` / ``dedicated`` per instance for feature index ``f`` (one step)."""
    component = np.asarray(cls["component"].isel(feature=f).values, dtype=np.int64)  # (instance,)
    sizes_var = cls["config_n_features"]
    comp_dim = next(d for d in sizes_var.dims if d not in ("step", "instance"))
    sizes = np.asarray(sizes_var.transpose("instance", comp_dim).values, dtype=np.int64)
    kind = cls["kind"].isel(feature=f).values.astype(str)
    out = np.empty(len(component), dtype=object)
    for k, c in enumerate(component):
        if c < 0:
            out[k] = UNLEARNED if kind[k] == UNLEARNED else str(kind[k])
        else:
            out[k] = SUPERPOSED if sizes[k, c] >= 2 else DEDICATED
    return out.astype(str)


def _majority(labels: list[str], order: list[int]) -> tuple[str, int]:
    """Most common label; ties go to the label of the earliest entry of ``order`` (best loss first)."""
    counts = Counter(labels)
    top = max(counts.values())
    tied = {label for label, c in counts.items() if c == top}
    for k in order:
        if labels[k] in tied:
            return labels[k], top
    raise AssertionError("unreachable")  # pragma: no cover


def phase_diagram(
    ds: xr.Dataset,
    *,
    classification: xr.Dataset | None = None,
    axes: Sequence[str] | None = None,
    feature: Any = None,
    step: int | None = None,
    loss_records: int = 3,
    norm_threshold: float | None = None,
    overlap_tol: float | None = None,
    eval_batch: int | None = None,
) -> xr.Dataset:
    """Label each cell of a sweep by what its extra feature does and by its configuration.

    ``axes``: the sweep coordinates (1-D ``instance`` coords; default
    ``ds.attrs["sweep"]``). Instances sharing all axis values are the seeds of
    one cell. ``feature``: the extra feature's label (default: the one
    feature whose importance or density varies across instances on its own,
    else the last). ``step``: the recorded step to judge (default the last).

    Seeds: when a cell has 3 or more and the store has a loss, the seed with
    the highest loss (mean over the last ``loss_records`` records up to
    ``step``; a missing loss counts as highest; with ``eval_batch=N``, the
    :func:`evaluation_loss` at ``step`` on N samples instead) is dropped; the label is the
    majority over the rest, ties going to the label of the lowest-loss seed.
    ``agreement`` is the fraction of the used seeds with the majority label.

    Returns a Dataset with dims ``cell``, ``boundary``, ``instance``:

    - per cell: one coordinate per axis, ``label``, ``agreement``,
      ``configuration``, ``configuration_agreement``, ``n_seeds``,
      ``n_used``, ``dropped_instance`` (-1 none), ``loss`` (mean of used);
    - per boundary (adjacent cells along one axis, other axes equal, whose
      label differs): ``boundary_axis``, ``boundary_kind`` (``label`` or
      ``configuration``), ``boundary_lower``, ``boundary_upper`` (axis values),
      ``boundary_position`` (their geometric mean when both are > 0, else the
      midpoint), ``boundary_from``, ``boundary_to``, ``boundary_cell_lower``,
      ``boundary_cell_upper``;
    - per instance: ``instance_label``, ``instance_configuration``,
      ``instance_loss``, ``cell_index``, ``used``.

    >>> import numpy as np
    >>> from toyanalysis import testing
    >>> dedicated, digon = testing.tegum("dedicated", dead=1), testing.tegum("digon")
    >>> W = np.stack([dedicated] * 3 + [digon] * 3)[None]  # 2 cells x 3 seeds, n=2, m=1
    >>> ds = testing.as_dataset(W, sweep={"density_x": [1.0] * 3 + [0.1] * 3})
    >>> r = phase_diagram(ds, feature=1)
    >>> r["label"].values.tolist(), round(float(r["boundary_position"][0]), 3)
    (['superposed', 'unlearned'], 0.316)
    """
    if not (isinstance(loss_records, int) and loss_records >= 1):
        raise ConfigError(f"loss_records must be an integer >= 1, got {loss_records!r}")
    ds = _as_store(ds)
    axis_names = _axes(ds, axes)
    chosen_step = int(ds["step"].values[-1]) if step is None else int(step)
    thresholds = _given_thresholds(norm_threshold, overlap_tol)
    cls = _classification(ds, classification, [chosen_step], None, thresholds)
    cls = cls.isel(step=0)
    f, how = _extra_feature(ds, feature)
    labels = _extra_labels(cls, f)
    configs = cls["summary"].values.astype(str)
    if eval_batch is not None:
        if "W" not in ds.data_vars:
            raise ConfigError("eval_batch needs the store's weights, not only a classification")
        evaluated = evaluation_loss(ds.sel(step=[chosen_step]), batch_size=eval_batch)
        loss = np.asarray(evaluated.isel(step=0).sel(instance=cls["instance"].values).values)
    else:
        loss = _final_loss(ds, chosen_step, loss_records, cls)
    source = _loss_source(loss, eval_batch)
    return _diagram(
        cls, ds, axis_names, labels, configs, loss, f, how, chosen_step, loss_records, source
    )


def _axes(ds: xr.Dataset, axes: Sequence[str] | None) -> list[str]:
    names = list(axes) if axes is not None else list(ds.attrs.get("sweep", []) or [])
    if not names:
        raise ConfigError(
            "no sweep coordinates: the store's attrs['sweep'] is empty; name them with axes= (--axis NAME)"
        )
    for name in names:
        if name not in ds.coords or ds[name].dims != ("instance",):
            have = [
                str(c) for c, v in ds.coords.items() if v.dims == ("instance",) and c != "instance"
            ]
            raise ConfigError(
                f"sweep axis {name!r} is not a 1-D instance coordinate (have: {', '.join(have) or 'none'})"
            )
        if not np.issubdtype(ds[name].dtype, np.number):
            raise ConfigError(f"sweep axis {name!r} is not numeric (dtype {ds[name].dtype})")
    if len(set(names)) != len(names):
        raise ConfigError(f"sweep axes repeat: {names}")
    return names


def _final_loss(source: xr.Dataset, step: int, records: int, cls: xr.Dataset) -> np.ndarray | None:
    if "loss" not in source.data_vars:
        return None
    loss = source["loss"].sel(step=source["step"] <= step).isel(step=slice(-records, None))
    loss = loss.sel(instance=cls["instance"].values)
    values = np.asarray(loss.transpose("step", "instance").values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(values).all(axis=0), values.mean(axis=0), np.nan)


def _diagram(
    cls: xr.Dataset,
    ds: xr.Dataset,
    axis_names: list[str],
    labels: np.ndarray,
    configs: np.ndarray,
    loss: np.ndarray | None,
    f: int,
    how: str,
    step: int,
    loss_records: int,
    loss_source: str,
) -> xr.Dataset:
    import xarray as xr

    values = np.stack(
        [
            np.asarray(ds[a].sel(instance=cls["instance"].values).values, dtype=np.float64)
            for a in axis_names
        ],
        axis=1,
    )  # (instance, axis)
    keys, cell_of = np.unique(values, axis=0, return_inverse=True)
    cell_of = np.asarray(cell_of).reshape(-1)
    n_cells = len(keys)
    inst_loss = loss if loss is not None else np.full(len(labels), np.nan)
    used = np.ones(len(labels), dtype=bool)
    cell_rows: dict[str, list[Any]] = {
        k: []
        for k in (
            "label",
            "agreement",
            "configuration",
            "configuration_agreement",
            "n_seeds",
            "n_used",
            "dropped_instance",
            "loss",
        )
    }
    instance_labels = cls["instance"].values
    for c in range(n_cells):
        members = np.flatnonzero(cell_of == c).tolist()
        # rank by loss, missing loss last (worst); stable in instance order
        ranked = sorted(
            members, key=lambda k: (not np.isfinite(inst_loss[k]), np.nan_to_num(inst_loss[k]))
        )
        dropped = -1
        if len(members) >= 3 and loss is not None:
            dropped = ranked[-1]
            used[dropped] = False
        kept = [k for k in ranked if k != dropped]
        lab, count = _majority([labels[k] for k in kept], list(range(len(kept))))
        conf, ccount = _majority([configs[k] for k in kept], list(range(len(kept))))
        cell_rows["label"].append(lab)
        cell_rows["agreement"].append(count / len(kept))
        cell_rows["configuration"].append(conf)
        cell_rows["configuration_agreement"].append(ccount / len(kept))
        cell_rows["n_seeds"].append(len(members))
        cell_rows["n_used"].append(len(kept))
        cell_rows["dropped_instance"].append(instance_labels[dropped] if dropped >= 0 else -1)
        kept_loss = inst_loss[kept]
        cell_rows["loss"].append(
            float(np.mean(kept_loss)) if np.isfinite(kept_loss).all() else np.nan
        )
    boundaries = _boundaries(keys, axis_names, cell_rows["label"], cell_rows["configuration"])
    data: dict[str, Any] = {
        "label": ("cell", np.array(cell_rows["label"], dtype=str)),
        "agreement": ("cell", np.array(cell_rows["agreement"], dtype=np.float64)),
        "configuration": ("cell", np.array(cell_rows["configuration"], dtype=str)),
        "configuration_agreement": (
            "cell",
            np.array(cell_rows["configuration_agreement"], dtype=np.float64),
        ),
        "n_seeds": ("cell", np.array(cell_rows["n_seeds"], dtype=np.int64)),
        "n_used": ("cell", np.array(cell_rows["n_used"], dtype=np.int64)),
        "dropped_instance": ("cell", np.array(cell_rows["dropped_instance"])),
        "loss": ("cell", np.array(cell_rows["loss"], dtype=np.float64)),
        "instance_label": ("instance", labels),
        "instance_configuration": ("instance", configs),
        "instance_loss": ("instance", inst_loss),
        "cell_index": ("instance", cell_of.astype(np.int64)),
        "used": ("instance", used),
    }
    b = ("boundary",)
    data["boundary_axis"] = (b, np.array([r["axis"] for r in boundaries], dtype=str))
    data["boundary_kind"] = (b, np.array([r["kind"] for r in boundaries], dtype=str))
    for key in ("lower", "upper", "position"):
        data[f"boundary_{key}"] = (b, np.array([r[key] for r in boundaries], dtype=np.float64))
    for key in ("from", "to"):
        data[f"boundary_{key}"] = (b, np.array([r[key] for r in boundaries], dtype=str))
    for key in ("cell_lower", "cell_upper"):
        data[f"boundary_{key}"] = (b, np.array([r[key] for r in boundaries], dtype=np.int64))
    coords: dict[str, Any] = {"cell": np.arange(n_cells), "instance": instance_labels}
    for j, name in enumerate(axis_names):
        coords[name] = ("cell", keys[:, j])
    if "seed" in cls.coords and cls["seed"].dims == ("instance",):
        coords["seed"] = ("instance", np.asarray(cls["seed"].values))
    feature_label = cls["feature"].values[f]
    attrs = {
        "analysis": "phase_diagram",
        "axes": list(axis_names),
        "feature": feature_label.item() if hasattr(feature_label, "item") else feature_label,
        "feature_rule": how,
        "step": int(step),
        "loss_records": int(loss_records),
        "loss_source": loss_source,
        "has_loss": loss is not None,
        "seed_rule": "drop the highest-loss seed when a cell has >= 3 and there is a loss; majority of the rest; "
        "ties go to the lowest-loss seed's label",
        **{
            k: v
            for k, v in cls.attrs.items()
            if k in ("norm_threshold", "overlap_tol", "rank_tol", "min_fit")
        },
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _boundaries(
    keys: np.ndarray, axis_names: list[str], labels: list[str], configs: list[str]
) -> list[dict[str, Any]]:
    rows = []
    n_axes = keys.shape[1]
    for j, axis in enumerate(axis_names):
        others = [i for i in range(n_axes) if i != j]
        groups: dict[tuple[float, ...], list[int]] = {}
        for c in range(len(keys)):
            groups.setdefault(tuple(keys[c, others]), []).append(c)
        for cells in groups.values():
            cells = sorted(cells, key=lambda c: keys[c, j])
            for a, b in itertools.pairwise(cells):
                lower, upper = float(keys[a, j]), float(keys[b, j])
                position = (
                    math.sqrt(lower * upper) if lower > 0 and upper > 0 else (lower + upper) / 2
                )
                for kind, names in (("label", labels), ("configuration", configs)):
                    if names[a] != names[b]:
                        rows.append(
                            {
                                "axis": axis,
                                "kind": kind,
                                "lower": lower,
                                "upper": upper,
                                "position": position,
                                "from": names[a],
                                "to": names[b],
                                "cell_lower": a,
                                "cell_upper": b,
                            }
                        )
    return rows


# --- records (the JSON forms; schemas in docs/phases.md) ---------------------------------------
def _instance_coords(result: xr.Dataset, k: int) -> dict[str, Any]:
    """The instance's 1-D coordinates (sweep labels first, then seed and the rest)."""
    sweep = [s for s in result.attrs.get("sweep", []) if s in result.coords]
    names = sweep + sorted(
        str(name)
        for name, c in result.coords.items()
        if c.dims == ("instance",) and name != "instance" and name not in sweep
    )
    return {name: _scalar(result[name].values[k]) for name in names}


def phase_records(result: xr.Dataset) -> list[dict[str, Any]]:
    """The JSON form of a :func:`phases` result: one record per instance.

    Each record: ``instance``, ``coords``, ``phases`` (``start_step``,
    ``end_step``, ``records``, ``summary``), ``transitions`` (``step``,
    ``from``, ``to``, ``loss_before``, ``loss_after``), ``loss_drops``
    (``step``, ``size``, ``change``, ``loss_before``, ``loss_after``,
    ``transition``: the coinciding transition as ``{step, from, to}`` or
    null, ``features``: features whose dimensionality jumps in its window),
    ``plateaus`` (``start_step``, ``end_step``, ``loss``) and
    ``feature_jumps`` (``feature``, ``step``, ``from``, ``to``, fractions as
    text such as ``"1/2"``).
    """
    features = result["feature"].values
    records = []
    for k, instance in enumerate(result["instance"].values):
        r = result.isel(instance=k)
        phases_ = [
            {
                "start_step": int(r["phase_start"][p]),
                "end_step": int(r["phase_end"][p]),
                "records": int(r["phase_records"][p]),
                "summary": str(r["phase_summary"].values[p]),
            }
            for p in range(int(r["n_phases"]))
        ]
        transitions = [
            {
                "step": int(r["transition_step"][j]),
                "from": str(r["transition_from"].values[j]),
                "to": str(r["transition_to"].values[j]),
                "loss_before": _scalar(float(r["loss_before"][j])),
                "loss_after": _scalar(float(r["loss_after"][j])),
            }
            for j in range(int(r["n_transitions"]))
        ]
        drops = []
        for j in range(int(r["n_drops"])):
            index = int(r["drop_transition"][j])
            drops.append(
                {
                    "step": int(r["drop_step"][j]),
                    "size": _scalar(float(r["drop_size"][j])),
                    "change": _scalar(float(r["drop_change"][j])),
                    "loss_before": _scalar(float(r["drop_loss_before"][j])),
                    "loss_after": _scalar(float(r["drop_loss_after"][j])),
                    "transition": None
                    if index < 0
                    else {key: transitions[index][key] for key in ("step", "from", "to")},
                    "features": [
                        _scalar(features[f]) for f in np.flatnonzero(r["drop_features"].values[j])
                    ],
                }
            )
        plateaus = [
            {
                "start_step": int(r["plateau_start"][j]),
                "end_step": int(r["plateau_end"][j]),
                "loss": _scalar(float(r["plateau_loss"][j])),
            }
            for j in range(int(r["n_plateaus"]))
        ]
        jumps = [
            {
                "feature": _scalar(features[f]),
                "step": int(r["jump_step"].values[f, j]),
                "from": fraction_text(float(r["jump_from"].values[f, j])),
                "to": fraction_text(float(r["jump_to"].values[f, j])),
            }
            for f in range(len(features))
            for j in range(int(r["n_jumps"].values[f]))
        ]
        jumps.sort(key=lambda row: (row["step"], str(row["feature"])))
        records.append(
            {
                "instance": _scalar(instance),
                "coords": _instance_coords(result, k),
                "phases": phases_,
                "transitions": transitions,
                "loss_drops": drops,
                "plateaus": plateaus,
                "feature_jumps": jumps,
            }
        )
    return records


def phase_events(result: xr.Dataset) -> pd.DataFrame:
    """A tidy table of a :func:`phases` result: one row per phase, transition, drop, plateau or jump.

    Columns: ``instance``, the instance coordinates, ``event`` (``phase``,
    ``transition``, ``loss_drop``, ``plateau``, ``feature_jump``), ``step``,
    ``end_step``, ``summary``, ``from``, ``to``, ``feature``, ``loss_before``,
    ``loss_after``, ``size``, ``transition_step`` (empty where they do not apply).
    """
    import pandas as pd

    rows = []
    for record in phase_records(result):
        base = {"instance": record["instance"], **record["coords"]}
        for p in record["phases"]:
            rows.append(
                {
                    **base,
                    "event": "phase",
                    "step": p["start_step"],
                    "end_step": p["end_step"],
                    "summary": p["summary"],
                }
            )
        for t in record["transitions"]:
            rows.append({**base, "event": "transition", **t})
        for d in record["loss_drops"]:
            rows.append(
                {
                    **base,
                    "event": "loss_drop",
                    "step": d["step"],
                    "size": d["size"],
                    "loss_before": d["loss_before"],
                    "loss_after": d["loss_after"],
                    "transition_step": None if d["transition"] is None else d["transition"]["step"],
                }
            )
        for p in record["plateaus"]:
            rows.append(
                {
                    **base,
                    "event": "plateau",
                    "step": p["start_step"],
                    "end_step": p["end_step"],
                    "loss_after": p["loss"],
                }
            )
        for j in record["feature_jumps"]:
            rows.append({**base, "event": "feature_jump", **j})
    columns = [
        "event",
        "step",
        "end_step",
        "summary",
        "from",
        "to",
        "feature",
        "loss_before",
        "loss_after",
        "size",
        "transition_step",
    ]
    frame = pd.DataFrame(rows)
    for column in columns:
        if column not in frame:
            frame[column] = None
    leading = [c for c in frame.columns if c not in columns]
    return frame[leading + columns]


def diagram_records(result: xr.Dataset) -> dict[str, Any]:
    """The JSON form of a :func:`phase_diagram` result.

    ``axes``, ``feature``, ``feature_rule``, ``step``, ``seed_rule``;
    ``cells`` (each: the axis values by name, ``label``, ``agreement``,
    ``n_seeds``, ``n_used``, ``dropped_instance`` (or null),
    ``configuration``, ``configuration_agreement``, ``loss``) and
    ``boundaries`` (each: ``axis``, ``kind``, ``at`` (the other axes' values),
    ``lower``, ``upper``, ``position``, ``from``, ``to``).
    """
    axes = list(result.attrs["axes"])
    cells = []
    for c in range(result.sizes["cell"]):
        dropped = result["dropped_instance"].values[c]
        cells.append(
            {
                **{a: _scalar(result[a].values[c]) for a in axes},
                "label": str(result["label"].values[c]),
                "agreement": _scalar(float(result["agreement"].values[c])),
                "n_seeds": int(result["n_seeds"].values[c]),
                "n_used": int(result["n_used"].values[c]),
                "dropped_instance": None
                if int(result["n_used"].values[c]) == int(result["n_seeds"].values[c])
                else _scalar(dropped),
                "configuration": str(result["configuration"].values[c]),
                "configuration_agreement": _scalar(
                    float(result["configuration_agreement"].values[c])
                ),
                "loss": _scalar(float(result["loss"].values[c])),
            }
        )
    boundaries = []
    for b in range(result.sizes["boundary"]):
        axis = str(result["boundary_axis"].values[b])
        lower_cell = int(result["boundary_cell_lower"].values[b])
        boundaries.append(
            {
                "axis": axis,
                "kind": str(result["boundary_kind"].values[b]),
                "at": {a: _scalar(result[a].values[lower_cell]) for a in axes if a != axis},
                "lower": _scalar(float(result["boundary_lower"].values[b])),
                "upper": _scalar(float(result["boundary_upper"].values[b])),
                "position": _scalar(float(result["boundary_position"].values[b])),
                "from": str(result["boundary_from"].values[b]),
                "to": str(result["boundary_to"].values[b]),
            }
        )
    keys = ("axes", "feature", "feature_rule", "step", "loss_records", "loss_source", "seed_rule")
    return {
        **{key: _scalar(result.attrs[key]) if key != "axes" else axes for key in keys},
        "cells": cells,
        "boundaries": boundaries,
    }
