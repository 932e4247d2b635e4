"""Kernels on one timeline: flicker collapse, loss changes, drops, plateaus, fractions.

Written label-free, on plain NumPy arrays: a timeline is a sequence of
records (one per recorded step). :func:`loss_changes` and :func:`snap` have
fixed-size outputs and take any leading batch axes (``*batch record``), so
one call serves every instance; :func:`collapse`, :func:`drops` and
:func:`plateaus` return a varying number of events per timeline and run on
one timeline at a time (the definitions are in ``docs/phases.md``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np
from jaxtyping import Float, Int

from toyanalysis._checks import shape_checked
from toyanalysis.errors import ConfigError

__all__ = [
    "change_point",
    "collapse",
    "drops",
    "fraction_text",
    "fractions",
    "geometry_onsets",
    "loss_changes",
    "noise",
    "noise_before",
    "plateaus",
    "snap",
    "snap_held",
    "window_means",
]


def _runs(labels: Sequence[Any]) -> list[tuple[int, int, Any]]:
    """Maximal runs of equal labels: ``(first, last, label)``."""
    runs: list[tuple[int, int, Any]] = []
    start = 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            runs.append((start, i - 1, labels[start]))
            start = i
    return runs


def _stable(
    runs: list[tuple[int, int, Any]], steps: np.ndarray, min_records: int, min_steps: int
) -> list[bool]:
    """Whether each run is long enough (records and steps) to start a phase."""
    n = len(steps)
    last_gap = int(steps[-1] - steps[-2]) if n > 1 else 1

    def lasts(first: int, last: int) -> int:
        end = int(steps[last + 1]) if last + 1 < n else int(steps[-1]) + last_gap
        return end - int(steps[first])

    return [(b - a + 1 >= min_records) and lasts(a, b) >= min_steps for a, b, _ in runs]


def collapse(
    labels: Sequence[Any],
    steps: Sequence[int] | np.ndarray,
    *,
    min_records: int = 3,
    min_steps: int = 0,
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
    at = np.asarray(steps, dtype=np.int64)
    n = len(labels)
    if n == 0:
        return []
    if len(at) != n:
        raise ConfigError(f"collapse: {n} labels but {len(at)} steps")
    runs = _runs(labels)
    stable = _stable(runs, at, min_records, min_steps)
    if not any(stable):
        longest = max(runs, key=lambda r: (r[1] - r[0], -r[0]))
        return [(0, n - 1, longest[2])]
    phases: list[list[Any]] = []
    pending: int | None = None
    for (first, last, label), ok in zip(runs, stable):
        if ok and phases and phases[-1][2] == label:
            phases[-1][1] = last
        elif ok:
            phases.append([first if pending is None else pending, last, label])
            pending = None
        elif phases:
            phases[-1][1] = last
        elif pending is None:
            pending = first
    return [(int(a), int(b), c) for a, b, c in phases]


@shape_checked
def window_means(
    values: Float[np.ndarray, "*batch record"], w: int
) -> tuple[Float[np.ndarray, "*batch record"], Float[np.ndarray, "*batch record"]]:
    """Means of ``values[..., t-w:t]`` and ``values[..., t:t+w]`` for every ``t`` (truncated, NaN-aware)."""
    n = values.shape[-1]
    finite = np.isfinite(values)
    zero = np.zeros((*values.shape[:-1], 1))
    csum = np.concatenate([zero, np.cumsum(np.where(finite, values, 0.0), axis=-1)], axis=-1)
    ccount = np.concatenate([zero, np.cumsum(finite, axis=-1)], axis=-1)
    t = np.arange(n)
    lo, hi = np.maximum(t - w, 0), np.minimum(t + w, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        before = (csum[..., t] - csum[..., lo]) / (ccount[..., t] - ccount[..., lo])
        after = (csum[..., hi] - csum[..., t]) / (ccount[..., hi] - ccount[..., t])
    return before, after


@shape_checked
def loss_changes(
    loss: Float[np.ndarray, "*batch record"], w: int
) -> tuple[
    Float[np.ndarray, "*batch record"],
    Float[np.ndarray, "*batch record"],
    Float[np.ndarray, "*batch record"],
]:
    """``(change, before, after)`` per record: the log10 fall of the mean loss across record ``t``.

    ``change[..., t]`` is NaN where either window of ``w`` records is incomplete.

    >>> change, _, _ = loss_changes(np.array([1.0] * 4 + [0.1] * 4), 2)
    >>> change.round(3).tolist()
    [nan, nan, 0.0, 0.26, 1.0, 0.74, 0.0, nan]
    """
    loss = np.asarray(loss, dtype=np.float64)
    before, after = window_means(loss, w)
    n = loss.shape[-1]
    t = np.arange(n)
    full = (t >= w) & (t + w <= n)
    largest = np.where(np.isnan(loss), -np.inf, np.abs(loss)).max(axis=-1, initial=-np.inf)
    scale = np.where(np.isfinite(loss).any(axis=-1), largest, 1.0)[..., None]
    eps = 1e-12 * np.maximum(scale, 1e-30)
    with np.errstate(invalid="ignore", divide="ignore"):
        change = np.log10((before + eps) / (after + eps))
    change = np.where(full & np.isfinite(change), change, np.nan)
    return change, before, after


@shape_checked
def noise(change: Float[np.ndarray, " record"]) -> float:
    """The robust standard deviation of the change: 1.4826 × its median absolute deviation."""
    valid = change[np.isfinite(change)]
    if valid.size < 3:
        return 0.0
    return float(1.4826 * np.median(np.abs(valid - np.median(valid))))


@shape_checked
def noise_before(
    change: Float[np.ndarray, " record"], w: int, span: int
) -> Float[np.ndarray, " record"]:
    """Per record ``t``: the robust noise (:func:`noise`) of the change over the ``span``
    records before its windows (``t - 2w - span .. t - 2w``), so that a drop is judged against
    the plateau before it (for early records: of the first ``span / 2`` known records),
    never above the noise of the whole timeline (a descent before a drop is no plateau)."""
    known = np.flatnonzero(np.isfinite(change))
    out = np.full(len(change), noise(change))
    if known.size == 0:
        return out
    for t in range(len(change)):
        # early records: the first span/2 known records stand for the plateau before
        lo, hi = max(0, t - 2 * w - span), max(t - 2 * w, int(known[0]) + span // 2)
        part = change[lo:hi]
        if np.isfinite(part).sum() >= 3:
            out[t] = min(out[t], noise(part))
    return out


@shape_checked
def drops(change: Float[np.ndarray, " record"], w: int, threshold: Any) -> list[int]:
    """Records where the change reaches ``threshold`` (a number, or one per record), is the
    largest within ``w`` records,
    and stands out: it exceeds the change ``w`` records before and after (where known) by at
    least half the threshold. A steady descent (constant change) has no drops; a decelerating
    one has a single drop where it is steepest. Equal neighbours: the earliest wins.
    """
    values = np.nan_to_num(change, nan=-np.inf)
    n = len(values)
    limits = np.broadcast_to(np.asarray(threshold, dtype=np.float64), (n,))
    chosen = []
    for t in range(n):
        threshold = float(limits[t])
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


def _flat_runs(flat: np.ndarray, w: int, found: list[int]) -> list[list[int]]:
    """Runs of flat records, merged across gaps of at most ``w`` records without a drop."""
    runs: list[list[int]] = []
    t, n = 0, len(flat)
    while t < n:
        if not flat[t]:
            t += 1
            continue
        start = t
        while t < n and flat[t]:
            t += 1
        gap_ok = runs and start - runs[-1][1] - 1 <= w
        if gap_ok and not any(runs[-1][1] < d <= start for d in found):
            runs[-1][1] = t - 1
        else:
            runs.append([start, t - 1])
    return [r for r in runs if r[1] - r[0] + 1 >= w]


@shape_checked
def plateaus(
    change: Float[np.ndarray, " record"], w: int, threshold: Any, found: list[int]
) -> list[tuple[int, int]]:
    """Spans of records where the loss level holds, as ``(first, last)`` record.

    Records whose change is below half the threshold in size are *flat*;
    runs of flat records separated by at most ``w`` records and no drop
    (``found``) are merged; runs of at least ``w`` records are plateaus,
    extended by ``w`` records on each side (the windows that saw them flat)
    without reaching past a drop or into the next plateau.
    """
    flat = np.isfinite(change) & (np.abs(change) < np.asarray(threshold) / 2)
    n = len(change)
    runs = _flat_runs(flat, w, found)
    out: list[tuple[int, int]] = []
    for k, (a, b) in enumerate(runs):
        lo, hi = max(0, a - w), min(n - 1, b + w - 1)
        lo = max([lo, *[d for d in found if d <= a]])
        hi = min([hi, *[d - 1 for d in found if d > b]])
        if out:
            lo = max(lo, out[-1][1] + 1)
        if k + 1 < len(runs):
            hi = min(hi, runs[k + 1][0] - 1)
        out.append((lo, hi))
    return out


def fraction_text(value: float) -> str:
    """``0.4 -> '2/5'``, ``1.0 -> '1'``, ``0.0 -> '0'``; '' for NaN."""
    if not np.isfinite(value):
        return ""
    return str(Fraction(float(value)).limit_denominator(64))


def fractions(shapes: Any = None) -> Float[np.ndarray, " fraction"]:
    """The dimensionality fractions ``d/k`` of the configurations of ``shapes`` (a
    :class:`~toyanalysis.geometry.ShapeRegistry`; default the built-in ones), and 0, sorted.

    >>> [fraction_text(f) for f in fractions()][:4]
    ['0', '1/4', '2/7', '1/3']
    """
    from toyanalysis.geometry import configurations

    values = {Fraction(c.n_dims, c.n_features) for c in configurations(shapes)} | {Fraction(0)}
    return np.array(sorted(float(v) for v in values))


@shape_checked
def snap(
    dimensionality: Float[np.ndarray, "*batch"], table: Float[np.ndarray, " fraction"], tol: float
) -> Float[np.ndarray, "*batch"]:
    """The nearest fraction of ``table`` where within ``tol``, else NaN."""
    d = np.asarray(dimensionality, dtype=np.float64)
    nearest = table[np.argmin(np.abs(d[..., None] - table), axis=-1)]
    return np.where(np.abs(d - nearest) <= tol, nearest, np.nan)


def run_steps(
    segments: list[tuple[int, int, Any]], steps: Int[np.ndarray, " record"]
) -> list[dict[str, Any]]:
    """``from → to`` at the first step of each segment after the first."""
    return [
        {"step": int(steps[first]), "from": old, "to": new}
        for (_, _, old), (first, _, new) in itertools.pairwise(segments)
    ]


@shape_checked
def snap_held(
    dimensionality: Float[np.ndarray, " record"], table: Float[np.ndarray, " fraction"], tol: float
) -> Float[np.ndarray, " record"]:
    """:func:`snap` with hysteresis: the first fraction within ``tol``, then a change only to
    another fraction within ``tol`` that is nearer than the current one by ``tol`` or more
    (the current one is held in between); a record is the held fraction where it lies
    within ``tol`` of it, else NaN; NaN records (unrepresented features) reset the state.

    >>> table = np.array([1 / 3, 3 / 8])
    >>> [fraction_text(v) for v in snap_held(np.array([0.34, 0.352, 0.364, 0.373]), table, 0.02)]
    ['1/3', '1/3', '', '3/8']
    """
    out = np.full(len(dimensionality), np.nan)
    state = np.nan
    for t, d in enumerate(dimensionality):
        if not np.isfinite(d):
            state = np.nan
            continue
        distance = np.abs(table - d)
        nearest = table[int(np.argmin(distance))]
        gap = float(distance.min())
        switch = nearest != state and gap <= tol and abs(d - state) - gap >= tol
        if (np.isnan(state) and gap <= tol) or switch:
            state = nearest
        if abs(d - state) <= tol:  # a record counts for the fraction it is near
            out[t] = state
    return out


@shape_checked
def change_point(values: Float[np.ndarray, " record"]) -> int:
    """The split ``t`` (1 .. n-1) of ``values`` into ``[:t]`` and ``[t:]`` with the least
    squared deviation from the two means: where a level changes.

    >>> change_point(np.array([3.0, 3.1, 2.9, 3.0, 0.1, 0.0, 3.0, 0.0, 0.1]))
    4
    """
    n = len(values)
    csum = np.cumsum(values)
    csq = np.cumsum(values**2)
    t = np.arange(1, n)
    left = csq[t - 1] - csum[t - 1] ** 2 / t
    right = (csq[-1] - csq[t - 1]) - (csum[-1] - csum[t - 1]) ** 2 / (n - t)
    return int(t[np.argmin(left + right)])


def geometry_onsets(
    segments: list[tuple[int, int, Any]],
    gram: Float[np.ndarray, "record feature feature"],
    steps: Int[np.ndarray, " record"],
    min_records: int = 3,
) -> list[tuple[int, int, Any]]:
    """Phases moved to where the geometry changes (labels as given, boundaries moved).

    A label changes when overlaps finally pass a tolerance, which can lag the change of
    the weights. Each boundary moves to the record where the Gram matrix approaches the
    new phase's settled geometry (its Gram matrix at the phase's last record): the best
    single step of that distance (:func:`change_point`), searched after the previous
    boundary's label record and up to this one's (a label lags the weights, it does not
    lead them), so one flickering record does not move it. A phase left
    with fewer than ``min_records`` records is absorbed by the next (an intermediate label
    passed on the way); equal neighbours merge.
    """
    if len(segments) < 2:
        return list(segments)
    labels = [seg[0] for seg in segments] + [len(steps)]
    moved = [0]
    for j in range(1, len(segments)):
        lo, hi = labels[j - 1] + 1, labels[j] + 1  # the label lags the weights, never leads
        distance = np.linalg.norm(gram[lo - 1 : hi] - gram[segments[j][1]], axis=(1, 2))
        moved.append(lo - 1 + change_point(distance) if distance.size > 1 else labels[j])
    bounds = np.maximum.accumulate([*moved, len(steps)])
    kept = [
        [int(bounds[j]), int(bounds[j + 1]) - 1, seg[2]]
        for j, seg in enumerate(segments)
        if bounds[j + 1] > bounds[j]
    ]
    # a moved phase shorter than min_records is absorbed: the next phase starts where it did
    k = 1
    while k < len(kept) - 1:
        if kept[k][1] - kept[k][0] + 1 < min_records:
            kept[k + 1][0] = kept[k][0]
            del kept[k]
        else:
            k += 1
    out: list[list[Any]] = []
    for seg in kept:
        if out and out[-1][2] == seg[2]:
            out[-1][1] = seg[1]
        else:
            out.append(seg)
    return [(int(a), int(z), c) for a, z, c in out]
