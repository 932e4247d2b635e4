"""Weights with known answers, for testing analyses (like ``xarray.testing``).

The geometry of superposition has exact answers for hand-built weights: a
pentagon's features each have dimensionality 2/5, two orthogonal digons are
two digons and not a square, and none of this changes under a rotation of
hidden space or a permutation of the features. This module builds such
weights, independently of :mod:`toyanalysis.geometry`'s own templates:

- :func:`polytope` — unit feature directions of a named configuration,
  ``(d, k)``: ``dedicated``, ``digon``, ``triangle``, ``square`` (two
  orthogonal digons), ``pentagon``, ``hexagon``, ``heptagon``, ``octagon``,
  ``tetrahedron``, ``square_antiprism``, ``octahedron`` (three orthogonal
  digons);
- :func:`tegum` — blocks placed in mutually orthogonal subspaces, with dead
  (zero) features after them; :func:`tegum_kinds` — the expected kind of
  every feature of such a tegum;
- :func:`random_rotation`, :func:`rotate`, :func:`permute`, :func:`perturb`,
  :func:`rescale` — the transformations the analyses must be robust to;
- :func:`as_dataset` — a store-shaped :class:`xarray.Dataset` around weights.

>>> W = tegum("pentagon", "digon", dead=1, n_hidden=4)
>>> W.shape
(4, 8)
>>> tegum_kinds("pentagon", "digon", dead=1)
['pentagon', 'pentagon', 'pentagon', 'pentagon', 'pentagon', 'digon', 'digon', 'unlearned']
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from toyanalysis.errors import ConfigError

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "POLYTOPES",
    "as_dataset",
    "permute",
    "perturb",
    "polytope",
    "random_rotation",
    "rescale",
    "rotate",
    "tegum",
    "tegum_kinds",
]


def _ngon(k: int, phase: float = 0.0) -> np.ndarray:
    # built from complex roots of unity (the library uses cos/sin of angles)
    roots = np.exp(2j * np.pi * np.arange(k) / k + 1j * phase)
    return np.stack([roots.real, roots.imag])


def _tetrahedron() -> np.ndarray:
    # alternate corners of a cube
    corners = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=float)
    return corners.T / math.sqrt(3)


def _square_antiprism() -> np.ndarray:
    # rows: x, y, z; two squares twisted by 45 degrees, z = ±1/sqrt(3) (a tight frame)
    z = 1 / math.sqrt(3)
    radius = math.sqrt(2 / 3)
    top = _ngon(4) * radius
    bottom = _ngon(4, math.pi / 4) * radius
    return np.vstack([np.hstack([top, bottom]), np.r_[np.full(4, z), np.full(4, -z)]])


def _digons(count: int) -> np.ndarray:
    V = np.zeros((count, 2 * count))
    for i in range(count):
        V[i, 2 * i], V[i, 2 * i + 1] = 1.0, -1.0
    return V


# name -> (builder, kinds of its features as classify names them)
POLYTOPES: dict[str, tuple[Any, tuple[str, ...]]] = {
    "dedicated": (lambda: np.ones((1, 1)), ("dedicated",)),
    "digon": (lambda: _digons(1), ("digon",) * 2),
    "triangle": (lambda: _ngon(3), ("triangle",) * 3),
    "square": (lambda: _digons(2), ("digon",) * 4),
    "pentagon": (lambda: _ngon(5), ("pentagon",) * 5),
    "hexagon": (lambda: _ngon(6), ("hexagon",) * 6),
    "heptagon": (lambda: _ngon(7), ("heptagon",) * 7),
    "octagon": (lambda: _ngon(8), ("octagon",) * 8),
    "tetrahedron": (_tetrahedron, ("tetrahedron",) * 4),
    "square_antiprism": (_square_antiprism, ("square_antiprism",) * 8),
    "octahedron": (lambda: _digons(3), ("digon",) * 6),
}


def polytope(name: str) -> np.ndarray:
    """Unit feature directions of a named configuration, ``(d, k)``.

    >>> polytope("digon")
    array([[ 1., -1.]])
    >>> polytope("octahedron").shape
    (3, 6)
    """
    if name not in POLYTOPES:
        raise ConfigError(f"unknown polytope {name!r} (known: {', '.join(POLYTOPES)})")
    return POLYTOPES[name][0]()


def _block(block: Any) -> np.ndarray:
    if isinstance(block, str):
        return polytope(block)
    array = np.asarray(block, dtype=np.float64)
    if array.ndim != 2:
        raise ConfigError(
            f"a tegum block must be a name or a (dims, features) array, got {array.shape}"
        )
    return array


def tegum(*blocks: Any, n_hidden: int | None = None, dead: int = 0) -> np.ndarray:
    """Blocks in mutually orthogonal subspaces, then ``dead`` zero features: ``(m, n)``.

    Blocks are polytope names or ``(dims, features)`` arrays; block ``b``
    occupies the hidden coordinates after those of blocks ``0..b-1``.
    ``n_hidden`` (default: just enough) pads with unused dimensions.

    >>> tegum("digon", "digon")
    array([[ 1., -1.,  0.,  0.],
           [ 0.,  0.,  1., -1.]])
    """
    arrays = [_block(b) for b in blocks]
    dims = sum(a.shape[0] for a in arrays)
    m = dims if n_hidden is None else int(n_hidden)
    if m < dims or m < 1:
        raise ConfigError(f"the blocks need {dims} hidden dimensions, n_hidden is {n_hidden}")
    n = sum(a.shape[1] for a in arrays) + int(dead)
    W = np.zeros((m, n))
    row = col = 0
    for a in arrays:
        W[row : row + a.shape[0], col : col + a.shape[1]] = a
        row += a.shape[0]
        col += a.shape[1]
    return W


def tegum_kinds(*blocks: str, dead: int = 0) -> list[str]:
    """The kind ``classify`` should give each feature of ``tegum(*blocks, dead=dead)``."""
    kinds: list[str] = []
    for name in blocks:
        if name not in POLYTOPES:
            raise ConfigError(f"unknown polytope {name!r} (known: {', '.join(POLYTOPES)})")
        kinds.extend(POLYTOPES[name][1])
    return kinds + ["unlearned"] * int(dead)


def random_rotation(m: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """A Haar-random orthogonal ``m x m`` matrix (rotations and reflections).

    >>> R = random_rotation(4, 0)
    >>> bool(np.allclose(R @ R.T, np.eye(4)))
    True
    """
    rng = np.random.default_rng(rng)
    q, r = np.linalg.qr(rng.standard_normal((m, m)))
    return q * np.sign(np.diag(r))


def rotate(W: np.ndarray, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """``R @ W`` for a random orthogonal ``R`` over the hidden axis (second to last)."""
    W = np.asarray(W, dtype=np.float64)
    return random_rotation(W.shape[-2], rng) @ W


def permute(
    W: np.ndarray, rng: np.random.Generator | int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle the features (last axis): returns ``(W[..., perm], perm)``.

    Feature ``j`` of the result is feature ``perm[j]`` of the input, so
    expected per-feature answers permute as ``answers[perm]``.
    """
    W = np.asarray(W)
    perm = np.random.default_rng(rng).permutation(W.shape[-1])
    return W[..., perm], perm


def perturb(
    W: np.ndarray, noise: float, rng: np.random.Generator | int | None = None
) -> np.ndarray:
    """Add i.i.d. Gaussian noise of standard deviation ``noise / sqrt(m)`` per entry.

    Each feature vector then moves by about ``noise`` in norm, whatever ``m``.
    Zero (dead) features receive the same noise, so they end with norm about
    ``noise`` rather than exactly 0.
    """
    W = np.asarray(W, dtype=np.float64)
    rng = np.random.default_rng(rng)
    return W + rng.standard_normal(W.shape) * (noise / math.sqrt(W.shape[-2]))


def rescale(
    W: np.ndarray,
    low: float = 0.7,
    high: float = 1.3,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Multiply each feature's vector by a random factor in ``[low, high]``."""
    W = np.asarray(W, dtype=np.float64)
    rng = np.random.default_rng(rng)
    factors = rng.uniform(low, high, size=(*W.shape[:-2], 1, W.shape[-1]))
    return W * factors


def _per_feature(value: Any, name: str, n_inst: int, n: int) -> np.ndarray:
    """A number, ``(feature,)`` or ``(instance, feature)`` values as an ``(instance, feature)`` array."""
    array = (
        np.broadcast_to(np.asarray(value, dtype=np.float64), (n_inst, n))
        if np.ndim(value) < 2
        else np.asarray(value, dtype=np.float64)
    )
    if array.shape != (n_inst, n):
        raise ConfigError(f"{name} has shape {array.shape}, expected ({n_inst}, {n})")
    return np.array(array)


def _instance_labels(
    seed: Any, sweep: dict[str, Any] | None, n_inst: int
) -> dict[str, tuple[str, np.ndarray]]:
    """The per-instance coordinates: ``seed`` and the sweep labels."""
    coords: dict[str, tuple[str, np.ndarray]] = {}
    if seed is not None:
        seeds = np.broadcast_to(np.asarray(seed, dtype=np.int64), (n_inst,)).copy()
        coords["seed"] = ("instance", seeds)
    for name, values in (sweep or {}).items():
        values = np.asarray(values)
        if values.shape != (n_inst,):
            raise ConfigError(
                f"sweep label {name!r} has shape {values.shape}, expected ({n_inst},)"
            )
        coords[name] = ("instance", values)
    return coords


def _weights4(W: Any) -> np.ndarray:
    W = np.asarray(W, dtype=np.float32)
    if W.ndim < 2 or W.ndim > 4:
        raise ConfigError(f"W must have 2 to 4 dims, got shape {W.shape}")
    return W.reshape((1,) * (4 - W.ndim) + W.shape)


def as_dataset(
    W: Any,
    *,
    steps: Any = None,
    density: Any = None,
    importance: Any = None,
    sweep: dict[str, Any] | None = None,
    seed: Any = None,
    loss: Any = None,
    model: str = "relu_output",
) -> xr.Dataset:
    """A store-shaped Dataset around ``W`` (``(hidden, feature)`` up to ``(step, instance, hidden, feature)``).

    ``steps`` labels the step axis (default 0, 1, ...); ``density`` and
    ``importance`` are numbers, per-feature ``(feature,)`` or per-instance
    ``(instance, feature)`` arrays (importance defaults to 1, density is left
    out unless given); ``sweep`` maps sweep-label names to per-instance
    values (recorded in ``attrs["sweep"]``); ``seed`` gives per-instance seeds;
    ``loss`` is ``(step, instance)``.

    >>> ds = as_dataset(polytope("pentagon"), density=0.05, sweep={"base_density": [0.05]})
    >>> dict(ds.sizes), ds.attrs["sweep"]
    ({'step': 1, 'instance': 1, 'hidden': 2, 'feature': 5}, ['base_density'])
    """
    import xarray as xr

    W = _weights4(W)
    S, n_inst, m, n = W.shape
    step = np.arange(S, dtype=np.int64) if steps is None else np.asarray(steps, dtype=np.int64)
    if step.shape != (S,):
        raise ConfigError(f"steps has shape {step.shape}, W has {S} steps")
    if_ = ("instance", "feature")
    coords: dict[str, Any] = {
        "step": step,
        "instance": np.arange(n_inst, dtype=np.int64),
        "hidden": np.arange(m, dtype=np.int64),
        "feature": np.arange(n, dtype=np.int64),
        "importance": (
            if_,
            _per_feature(1.0 if importance is None else importance, "importance", n_inst, n),
        ),
    }
    if density is not None:
        coords["density"] = (if_, _per_feature(density, "density", n_inst, n))
    coords.update(_instance_labels(seed, sweep, n_inst))
    data: dict[str, Any] = {"W": (("step", "instance", "hidden", "feature"), W)}
    if loss is not None:
        data["loss"] = (("step", "instance"), np.asarray(loss, dtype=np.float32).reshape(S, n_inst))
    return xr.Dataset(
        data, coords=coords, attrs={"model": model, "sweep": list((sweep or {}).keys())}
    )
