"""λ̂ joined with the phases over training: λ̂ per phase, Δλ̂ per transition."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from toyanalysis.errors import ConfigError

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["llc_by_phase"]


def _phase_ordinals(phases: xr.Dataset) -> np.ndarray:
    """Each row of the ``phase`` dim's number among its instance's phases (0, 1, …)."""
    instance = phases["phase_instance"].values
    start = phases["phase_start"].values
    ordinal = np.zeros(instance.size, dtype=np.int64)
    for label in np.unique(instance):
        rows = np.flatnonzero(instance == label)
        ordinal[rows[np.argsort(start[rows], kind="stable")]] = np.arange(rows.size)
    return ordinal


def _phase_means(
    phases: xr.Dataset, estimates: xr.Dataset
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean λ̂, its standard error and the number of estimates, per row of ``phase``."""
    chosen = phases["phase_index"].sel(step=estimates["step"], instance=estimates["instance"])
    index = chosen.transpose("step", "instance").values
    value = estimates["llc"].transpose("step", "instance").values
    se = estimates["llc_se"].transpose("step", "instance").values
    columns = {label: k for k, label in enumerate(estimates["instance"].values.tolist())}
    ordinal = _phase_ordinals(phases)
    out = np.full((3, ordinal.size), np.nan)
    for row, (label, p) in enumerate(zip(phases["phase_instance"].values.tolist(), ordinal)):
        if label not in columns:
            continue
        col = columns[label]
        inside = (index[:, col] == p) & np.isfinite(value[:, col])
        count = int(inside.sum())
        out[2, row] = count
        if count:
            out[0, row] = value[inside, col].mean()
            out[1, row] = np.sqrt(np.nansum(se[inside, col] ** 2)) / count
    return out[0], out[1], out[2]


def _neighbours(phases: xr.Dataset, ordinal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each transition, the ``phase`` rows of the phase before it and after it (−1: none)."""
    rows = {(i, p): r for r, (i, p) in enumerate(zip(phases["phase_instance"].values, ordinal))}
    steps = phases["step"].values
    before, after = [], []
    for label, step in zip(phases["transition_instance"].values, phases["transition_step"].values):
        index = phases["phase_index"].sel(instance=label).values
        earlier = index[(steps < step) & (index >= 0)]
        later = index[(steps >= step) & (index >= 0)]
        before.append(rows.get((label, earlier[-1]), -1) if earlier.size else -1)
        after.append(rows.get((label, later[0]), -1) if later.size else -1)
    return np.array(before, dtype=np.int64), np.array(after, dtype=np.int64)


def llc_by_phase(phases: xr.Dataset, estimates: xr.Dataset) -> xr.Dataset:
    """λ̂ per phase and Δλ̂ per transition, from a phases result and an llc result.

    ``phases`` is a :func:`toyanalysis.phases` result (its ``phase_index
    (step, instance)``, the ``phase`` rows with ``phase_instance``/
    ``phase_start``, the ``transition`` rows with ``transition_instance``/
    ``transition_step``); ``estimates`` is a :func:`toyanalysis.llc` result
    on some of the same steps and instances. A phase's λ̂ is the mean of the
    estimates at its records; a transition's Δλ̂ is the λ̂ of the phase after
    it minus that of the phase before it (NaN where either has no estimate).
    """
    import xarray as xr

    missing = sorted(set(estimates["step"].values.tolist()) - set(phases["step"].values.tolist()))
    if missing:
        raise ConfigError(f"llc step {missing[0]} is not a step of the phases result")
    value, se, count = _phase_means(phases, estimates)
    before, after = _neighbours(phases, _phase_ordinals(phases))

    def pick(array: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return np.where(rows >= 0, array[np.maximum(rows, 0)] if array.size else np.nan, np.nan)

    keep = [
        c for c in ("phase_instance", "phase_start", "phase_end", "phase_summary") if c in phases
    ]
    keep += [c for c in ("transition_instance", "transition_step") if c in phases]
    return xr.Dataset(
        {
            "phase_llc": ("phase", value),
            "phase_llc_se": ("phase", se),
            "phase_llc_records": ("phase", count.astype(np.int64)),
            "llc_before": ("transition", pick(value, before)),
            "llc_after": ("transition", pick(value, after)),
            "delta_llc": ("transition", pick(value, after) - pick(value, before)),
            "delta_llc_se": ("transition", np.hypot(pick(se, after), pick(se, before))),
        },
        coords={c: phases[c] for c in keep},
        attrs={"params": estimates.attrs.get("params", "")},
    )
