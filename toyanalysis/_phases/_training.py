"""Phases over training: per instance, the timeline kernels on its records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from toyanalysis._phases._events import events_dataset
from toyanalysis._phases._inputs import (
    classification_for,
    compared_loss,
    intake,
    shapes_of,
    threshold_attrs,
)
from toyanalysis._phases._timeline import (
    collapse,
    drops,
    fraction_text,
    fractions,
    geometry_onsets,
    loss_changes,
    noise,
    noise_before,
    plateaus,
    run_steps,
    snap_held,
)
from toyanalysis.params import PhaseParams

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["phases"]


@dataclass(frozen=True)
class Resolved:
    """The thresholds of one :func:`phases` call with the run-dependent defaults filled in."""

    params: PhaseParams
    min_steps: int
    window: int
    fractions: np.ndarray

    @classmethod
    def of(cls, params: PhaseParams, steps: np.ndarray, shapes: Any = None) -> Resolved:
        """``min_steps`` and ``loss_window`` for these steps; the fractions of ``shapes``."""
        span = int(steps[-1] - steps[0]) if len(steps) else 0
        min_steps = params.min_steps if params.min_steps is not None else span // 100
        window = params.loss_window if params.loss_window is not None else max(2, len(steps) // 50)
        table = fractions(shapes)
        return cls(params=params, min_steps=min_steps, window=window, fractions=table)


def phases(
    ds: xr.Dataset,
    params: PhaseParams | None = None,
    *,
    classification: xr.Dataset | None = None,
    steps: Any = None,
    instances: Any = None,
    llc: Any = None,
    **changes: Any,
) -> xr.Dataset:
    """Phases, transitions, loss plateaus and drops, and dimensionality jumps per instance.

    ``ds`` is a store Dataset (or a :func:`~toyanalysis.classify` result);
    ``params`` a :class:`~toyanalysis.params.PhaseParams` (the defaults when
    None), changed by keyword by leaf name (``min_records=5``,
    ``overlap_tol=0.2``, ``loss="stored"``). ``classification``: a classify
    result to reuse (else it is computed with ``params.classify``).
    ``steps``/``instances`` select as in classify. The loss (``params.loss``)
    is by default the expected loss of every record
    (:func:`~toyanalysis.evaluation.expected_loss`, exact for small n, with
    its error in ``loss_error``), the store's ``loss`` where the store has no
    config (``attrs["loss_source"]`` says which; loss results are empty
    without any), or with ``eval_loss=N`` the loss on a fixed batch.

    Returns a Dataset of tidy event tables (schema in ``docs/phases.md``):
    ``summary``, ``phase_index``, ``loss``, ``loss_change`` per ``(step,
    instance)``, and one flat dim per event kind (``phase``, ``transition``,
    ``drop``, ``plateau``, ``jump``) with the instance (``phase_instance``,
    ...) and steps as coordinates. ``attrs["params"]`` is the parameter object
    as JSON.

    ``llc``: an llc result, ``True``/``"saved"`` (the store's saved ``analysis/llc``) or
    None; its reliable estimates at these steps and instances give ``phase_llc``,
    ``phase_llc_se``, ``phase_llc_records`` per phase and ``llc_before``, ``llc_after``,
    ``delta_llc``, ``delta_llc_se`` per transition (:func:`join_llc`).
    """
    params = PhaseParams.resolve(params, changes)
    estimates = _llc_input(ds, llc)
    ds = intake(ds)
    cls, made_with = classification_for(
        ds, classification, params.classify, steps=steps, instances=instances
    )
    cls = cls.transpose("step", "instance", "feature", ...)
    step_values = np.asarray(cls["step"].values, dtype=np.int64)
    r = Resolved.of(params, step_values, shapes_of(cls))
    loss, error, source = compared_loss(ds, cls, params.loss, params.eval_loss)
    summary = cls["summary"].values.astype(str)
    threshold = (made_with or params.classify).norm_threshold
    represented = np.asarray(cls["norm"].values) > threshold
    dimensionality = np.where(represented, cls["dimensionality"].values, np.nan)
    gram = _weights(ds, cls)
    found = _all_instances(summary, dimensionality, loss, step_values, r, gram)
    result = events_dataset(cls, found, summary, loss)
    if error is not None:
        result["loss_error"] = (("step", "instance"), error)
    stored = params if made_with is None else params.replace(classify=made_with)
    result.attrs.update(_attrs(r, stored, loss, cls, ds, made_with))
    result.attrs["loss_source"] = source
    return result if estimates is None else join_llc(result, estimates)


def _llc_input(ds: Any, llc: Any) -> xr.Dataset | None:
    """The llc result ``phases(..., llc=)`` asks for: given, the store's saved one, or None."""
    import xarray as xr

    from toyanalysis.errors import ConfigError, StoreError
    from toyanalysis.store import open_analysis

    if llc is None or llc is False:
        return None
    if isinstance(llc, xr.Dataset):
        return llc
    if llc is not True and llc != "saved":
        raise ConfigError(f"llc= must be an llc result, True or 'saved', got {llc!r}")
    source = ds.encoding.get("source") if isinstance(ds, xr.Dataset) else None
    if not source:
        raise ConfigError("llc=True reads the saved llc result: open the store from its path")
    try:
        return open_analysis(source, "llc")
    except StoreError:
        raise ConfigError(
            f"{source}: no saved llc result; run `toyanalysis llc {source} --save` first"
        ) from None


LLC_VARIABLES = (
    "phase_llc",
    "phase_llc_se",
    "phase_llc_records",
    "llc_before",
    "llc_after",
    "delta_llc",
    "delta_llc_se",
)


def join_llc(result: xr.Dataset, estimates: xr.Dataset) -> xr.Dataset:
    """``result`` with λ̂ per phase and Δλ̂ per transition from the llc result ``estimates``.

    The estimates are cut to the result's steps and instances (an error when
    none is left) and the unreliable ones masked before the join.
    """
    from toyanalysis._llc import llc_by_phase
    from toyanalysis.errors import ConfigError

    for name in ("llc", "llc_se", "step", "instance"):
        if name not in estimates.variables:
            raise ConfigError(f"llc= must be a toyanalysis.llc result (it has no {name})")
    steps = set(result["step"].values.tolist())
    have = set(result["instance"].values.tolist())
    kept_steps = [s for s in estimates["step"].values.tolist() if s in steps]
    kept_instances = [i for i in estimates["instance"].values.tolist() if i in have]
    if not kept_steps or not kept_instances:
        raise ConfigError("the llc result has no step and instance of the phases result")
    kept = estimates.sel(step=kept_steps, instance=kept_instances)
    if "unreliable" in kept.data_vars:
        kept = kept.assign(llc=kept["llc"].where(~kept["unreliable"].astype(bool)))
    joined = llc_by_phase(result, kept.load())
    out = result.assign({name: joined[name].variable for name in LLC_VARIABLES})
    out.attrs["llc_joined"] = True
    return out


def _attrs(
    r: Resolved,
    stored: PhaseParams,
    loss: np.ndarray | None,
    cls: xr.Dataset,
    ds: xr.Dataset,
    made_with: Any,
) -> dict[str, Any]:
    p = r.params
    return {
        "analysis": "phases",
        "min_records": p.min_records,
        "min_steps": int(r.min_steps),
        "loss_window": int(r.window),
        "min_drop": p.min_drop,
        "noise_factor": p.noise_factor,
        "fraction_tol": p.fraction_tol,
        "fractions": [fraction_text(f) for f in r.fractions],
        "has_loss": loss is not None,
        "sweep": list(cls.attrs.get("sweep", ds.attrs.get("sweep", []))),
        **threshold_attrs(made_with),
        "params": stored.to_json(),
    }


def _weights(ds: xr.Dataset, cls: xr.Dataset) -> np.ndarray | None:
    """The weights ``W (step, instance, hidden, feature)`` at the classified records, if any."""
    if "W" not in ds.data_vars:
        return None
    W = ds["W"].sel(step=cls["step"].values, instance=cls["instance"].values)
    return np.asarray(W.transpose("step", "instance", "hidden", "feature").values, np.float64)


def _all_instances(
    summary: np.ndarray,
    dimensionality: np.ndarray,
    loss: np.ndarray | None,
    steps: np.ndarray,
    r: Resolved,
    weights: np.ndarray | None,
) -> list[dict[str, Any]]:
    """The events of every instance; the loss change computed for all of them at once."""
    n_instances = summary.shape[1]
    windows: list[tuple[np.ndarray, np.ndarray, np.ndarray] | None] = [None] * n_instances
    if loss is not None:
        change, before, after = loss_changes(loss.T, r.window)  # (instance, step)
        for k in range(n_instances):
            if np.isfinite(loss[:, k]).any():
                windows[k] = (change[k], before[k], after[k])
    found = []
    for k in range(n_instances):
        gram = None if weights is None else np.einsum("shi,shj->sij", weights[:, k], weights[:, k])
        events = _instance_events(
            summary[:, k], dimensionality[:, k], loss, k, windows[k], steps, r, gram
        )
        found.append(events)
    return found


def _instance_events(
    summary: np.ndarray,
    dimensionality: np.ndarray,
    loss: np.ndarray | None,
    k: int,
    window: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    steps: np.ndarray,
    r: Resolved,
    gram: np.ndarray | None = None,
) -> dict[str, Any]:
    """Phases, transitions, drops, plateaus and jumps of one instance's timeline."""
    labelled = collapse(
        list(summary), steps, min_records=r.params.min_records, min_steps=r.min_steps
    )
    found = (
        labelled
        if gram is None
        else geometry_onsets(labelled, gram, steps, min_records=r.params.min_records)
    )
    phase_index = np.full(len(steps), -1, dtype=np.int64)
    for p, (first, last, _) in enumerate(found):
        phase_index[first : last + 1] = p
    jumps = _feature_jumps(dimensionality, steps, r)
    out: dict[str, Any] = {"phases": found, "phase_index": phase_index, "jumps": jumps}
    out["transitions"] = _transitions(found, steps, window)
    _label_steps(out["transitions"], found, labelled, steps)
    out["change"] = None if window is None else window[0]
    out["drops"], out["plateaus"] = [], []
    if window is not None and loss is not None:
        out["drops"], out["plateaus"] = _loss_events(
            loss[:, k], window, steps, r, out["transitions"], jumps
        )
    return out


def _label_steps(
    rows: list[dict[str, Any]],
    found: list[tuple[int, int, Any]],
    labelled: list[tuple[int, int, Any]],
    steps: np.ndarray,
) -> None:
    """Each transition's ``label_step``: where classify's label first became the new one
    after the phase before it began (the unmoved boundary)."""
    for row, (_, _, new), (before, _, _) in zip(rows, found[1:], found):
        firsts = [a for a, _, label in labelled if label == new and a > before]
        row["label_step"] = int(steps[firsts[0]]) if firsts else row["step"]


def _scaled_drops(
    loss: np.ndarray, window: tuple[np.ndarray, np.ndarray, np.ndarray], r: Resolved
) -> tuple[list[tuple[int, int, tuple[np.ndarray, ...]]], np.ndarray]:
    """Drops at windows ``w, 2w, 4w, ...`` (while 4 windows fit): ``(record, window, (change,
    before, after))``, a wider window's drop kept only away from the drops already found;
    and the base window's threshold. Each is judged against the noise of the plateau
    before it (10 windows; at the wider windows at least the noise of the whole timeline),
    so a slow fall after a quiet plateau is found at its scale."""
    found: list[tuple[int, int, tuple[np.ndarray, ...]]] = []
    w, base = r.window, None
    while True:
        scaled = window if w == r.window else loss_changes(loss, w)
        noise_level = noise_before(scaled[0], w, 10 * w)
        if w > r.window:  # overlapping wide windows: not below the timeline's own noise
            noise_level = np.maximum(noise_level, noise(scaled[0]))
        threshold = np.maximum(r.params.min_drop, r.params.noise_factor * noise_level)
        base = threshold if base is None else base
        for t in drops(scaled[0], w, threshold):
            if all(abs(t - u) > max(w, v) for u, v, _ in found):
                found.append((t, w, scaled))
        w *= 2
        if 4 * w > len(loss):
            return sorted(found, key=lambda d: d[0]), base


def _loss_events(
    loss: np.ndarray,
    window: tuple[np.ndarray, np.ndarray, np.ndarray],
    steps: np.ndarray,
    r: Resolved,
    transitions: list[dict[str, Any]],
    jumps: list[list[dict[str, Any]]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The drops (with their coinciding transition and jumping features) and the plateaus."""
    found, threshold = _scaled_drops(loss, window, r)
    rows = []
    for t, w, (change, before, after) in found:
        lo, hi = steps[max(0, t - w)], steps[min(len(steps) - 1, t + w - 1)]
        near = [
            (abs(tr["step"] - int(steps[t])), j)
            for j, tr in enumerate(transitions)
            if lo <= tr["step"] <= hi
        ]
        rows.append(
            {
                "step": int(steps[t]),
                "size": float(before[t] - after[t]),
                "change": float(change[t]),
                "loss_before": float(before[t]),
                "loss_after": float(after[t]),
                "window": int(w),
                "transition": min(near)[1] if near else -1,
                "features": [
                    f for f, per in enumerate(jumps) if any(lo <= j["step"] <= hi for j in per)
                ],
            }
        )
    base = [t for t, w, _ in found if w == r.window]
    flat = [
        {"start": int(steps[a]), "end": int(steps[b]), "loss": float(np.nanmean(loss[a : b + 1]))}
        for a, b in plateaus(window[0], r.window, threshold, base)
    ]
    return rows, flat


def _transitions(
    found: list[tuple[int, int, Any]],
    steps: np.ndarray,
    window: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
) -> list[dict[str, Any]]:
    """From one phase to the next, at the new phase's first record, with the loss around it."""
    rows = run_steps(found, steps)
    for row, (first, _, _) in zip(rows, found[1:]):
        row["loss_before"] = np.nan if window is None else float(window[1][first])
        row["loss_after"] = np.nan if window is None else float(window[2][first])
    return rows


def _feature_jumps(
    dimensionality: np.ndarray, steps: np.ndarray, r: Resolved
) -> list[list[dict[str, Any]]]:
    """Per feature: the steps where its held fraction (:func:`snap_held`; NaN where the
    feature is not represented) changes, flicker absorbed."""
    values = np.asarray(dimensionality, dtype=np.float64)
    jumps = []
    for f in range(values.shape[1]):
        held = snap_held(values[:, f], r.fractions, r.params.fraction_tol)
        keep = np.isfinite(held)
        kept_steps = steps[keep]
        segments = collapse(
            list(held[keep]), kept_steps, min_records=r.params.min_records, min_steps=r.min_steps
        )
        jumps.append(run_steps(segments, kept_steps))
    return jumps
