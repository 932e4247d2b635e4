"""Critical points whose learning coefficient is known, built from closed forms.

Chen, Lau, Mendel, Wei and Murfet (2023) study ``x' = ReLU(WᵀW x + b)`` on
one-hot data (one feature ``i`` active per sample, value ``t ~ U[0, 1]``),
``n = 6`` features in ``m = 2`` dimensions. Its critical points are regular
k-gons: ``k`` columns of ``W`` of norm ``r`` at angles ``2πj/k`` sharing a bias
``b < 0``, the other ``n − k`` columns zero with a "dead" bias each.

**The loss in closed form.** With ``a = r²``, ``t₀ = −b/a`` and ``c_j =
cos(2πj/k)``, a sample of a k-gon feature ``i`` costs, on average over ``t``,

    f(a, b) = t₀³/3 + ∫_{t₀}^1 ((1−a)t − b)² dt
              + Σ_{j: a c_j + b > 0} ∫_{max(0, −b/(a c_j))}^1 (a c_j t + b)² dt

(its own output is cut to 0 below ``t₀``; a neighbour at angle ``2πj/k``
interferes once ``t a c_j + b > 0``), each integral a cubic in its limits. A
dead feature ``d`` with bias ``β_d`` outputs ``ρ_d = ReLU(β_d)`` always, so it
costs ``E(t − ρ_d)²`` when active and ``ρ_d²`` when another feature is. The
toolkit's loss averages over features as well: ``L = (k f + Σ_d (E(t−ρ_d)² +
(n−1) ρ_d²)) / n²``. ``ρ = 1/(2n)`` minimises a positive dead bias's part
(``1/12`` for ``n = 6``: the "5+" point); a negative dead bias is flat (any
value below 0; −1 here). :func:`gon_norm_bias` minimises ``f`` over ``(a,
b)`` by Newton's method on the closed form.

Counting the directions in which the loss rises quadratically (all but the
rotation of the plane, and, for a negative dead bias, the dead column and its
bias) gives the learning coefficient ``λ = d_eff/2``: 7 for the 5-gon (15 − 1
directions), 8.5 for the 5+ (18 − 1) and the 6-gon (18 − 1), and 7 for the
pentagon with ``n = 5`` (15 − 1).

>>> a, b = gon_norm_bias(5)
>>> round(a, 4), round(b, 4)
(1.37, -0.2823)
>>> round(gon_loss(6, 5, a, b, -1.0), 6), round(gon_loss(6, 5, a, b, 1 / 12), 6)
(0.011457, 0.0103)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from toyanalysis.config import RunConfig, TrainConfig
from toyanalysis.errors import ConfigError

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "KNOWN_POINTS",
    "KnownPoint",
    "gon_loss",
    "gon_norm_bias",
    "gon_weights",
    "known_point_store",
]

WEIGHTS = ("step", "instance", "hidden", "feature")


@dataclass(frozen=True)
class KnownPoint:
    """A k-gon critical point of the one-hot model with its learning coefficient."""

    name: str
    n_features: int
    k: int
    dead_bias: str  # "negative", "positive" or "none" (no dead feature)
    llc: float


KNOWN_POINTS = {
    p.name: p
    for p in (
        KnownPoint("5-gon", 6, 5, "negative", 7.0),
        KnownPoint("5+", 6, 5, "positive", 8.5),
        KnownPoint("6-gon", 6, 6, "none", 8.5),
        KnownPoint("pentagon-5", 5, 5, "none", 7.0),
    )
}


def _square_integral(alpha: float, beta: float, lower: float) -> float:
    """``∫_lower^1 (α t + β)² dt``, expanded so that α = 0 needs no care."""
    return alpha**2 * (1 - lower**3) / 3 + alpha * beta * (1 - lower**2) + beta**2 * (1 - lower)


def _gon_feature_loss(k: int, a: float, b: float) -> float:
    """``f(a, b)``: the mean cost of a sample of one k-gon feature (``b <= 0``)."""
    t0 = min(1.0, max(0.0, -b / a))
    total = t0**3 / 3 + _square_integral(1 - a, -b, t0)
    for j in range(1, k):
        c = math.cos(2 * math.pi * j / k)
        if c > 1e-12 and a * c + b > 0:
            total += _square_integral(a * c, b, max(0.0, -b / (a * c)))
    return total


def gon_loss(n: int, k: int, norm_sq: float, bias: float, dead_bias: float) -> float:
    """The toolkit's loss (mean over features) of a k-gon with ``‖W_i‖² = norm_sq``."""
    rho = max(dead_bias, 0.0)
    dead = (n - k) * (1 / 3 - rho + rho**2 + (n - 1) * rho**2)
    return (k * _gon_feature_loss(k, norm_sq, bias) + dead) / n**2


def gon_norm_bias(k: int, steps: int = 60) -> tuple[float, float]:
    """``(r², b)`` minimising the closed-form loss of a k-gon (Newton's method)."""
    p = np.array([1.0, -0.1 if k > 4 else 0.0])
    if k <= 4:  # no neighbour interferes: a = 1, b = 0 is exact
        return 1.0, 0.0
    h = 1e-5
    for _ in range(steps):
        grad, hess = np.zeros(2), np.zeros((2, 2))
        for i in range(2):
            e = np.eye(2)[i] * h
            grad[i] = (_f(k, p + e) - _f(k, p - e)) / (2 * h)
            for j in range(2):
                d = np.eye(2)[j] * h
                hess[i, j] = (
                    _f(k, p + e + d) - _f(k, p + e - d) - _f(k, p - e + d) + _f(k, p - e - d)
                ) / (4 * h * h)
        p = p - np.linalg.solve(hess, grad)
    return float(p[0]), float(p[1])


def _f(k: int, p: np.ndarray) -> float:
    return _gon_feature_loss(k, float(p[0]), float(p[1]))


def gon_weights(point: KnownPoint, angle: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``W (hidden=2, feature)`` and ``b (feature)`` of a known point, rotated by ``angle``."""
    n, k = point.n_features, point.k
    a, b = gon_norm_bias(k)
    theta = angle + 2 * np.pi * np.arange(k) / k
    W = np.zeros((2, n))
    W[0, :k], W[1, :k] = math.sqrt(a) * np.cos(theta), math.sqrt(a) * np.sin(theta)
    dead = {"negative": -1.0, "positive": 1 / (2 * n), "none": 0.0}[point.dead_bias]
    bias = np.full(n, dead)
    bias[:k] = b
    return W, bias


def known_point_store(names: str | Sequence[str], instances: int = 1) -> xr.Dataset:
    """A one-step store of the known points ``names`` (all of one ``n``), config attached.

    Each point fills ``instances`` instances, rotated by evenly spaced angles;
    the ``point`` and ``known_llc`` coordinates say which point and its λ.

    >>> ds = known_point_store(["5-gon", "6-gon"], instances=2)
    >>> ds["point"].values.tolist(), ds["known_llc"].values.tolist()
    (['5-gon', '5-gon', '6-gon', '6-gon'], [7.0, 7.0, 8.5, 8.5])
    """
    import xarray as xr

    points = [KNOWN_POINTS[name] for name in ([names] if isinstance(names, str) else names)]
    n = {p.n_features for p in points}
    if len(n) != 1:
        raise ConfigError(f"known points of different sizes in one store: {sorted(n)} features")
    pairs, labels = [], []
    for point in points:
        angles = np.linspace(0, 2 * np.pi / point.k, instances, endpoint=False)
        pairs += [gon_weights(point, angle) for angle in angles]
        labels += [point] * instances
    config = RunConfig(
        name="known-points",
        description="hand-built k-gon critical points of known λ",
        n_features=n.pop(),
        n_hidden=2,
        one_hot=True,
        seeds=len(pairs),
        train=TrainConfig(steps=1),
        record="all",
    )
    return xr.Dataset(
        {
            "W": (WEIGHTS, np.stack([w for w, _ in pairs])[None].astype(np.float32)),
            "b": ((*WEIGHTS[:2], "feature"), np.stack([b for _, b in pairs])[None].astype("f4")),
        },
        coords={
            "step": [0],
            "instance": np.arange(len(pairs)),
            "point": ("instance", np.array([p.name for p in labels], dtype=object)),
            "known_llc": ("instance", np.array([p.llc for p in labels])),
        },
        attrs={"model": "relu_output", "config": config.to_json()},
    )
