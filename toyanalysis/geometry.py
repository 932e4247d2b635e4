"""Which geometric configuration is each feature in?

With sparse features a toy model places several features in the same
subspace, and the arrangements it finds are regular polytopes: antipodal
pairs (digons), triangles, pentagons, tetrahedra, square antiprisms. Larger
arrangements are *tegum products*: polytopes in mutually orthogonal
subspaces (an octahedron is three orthogonal digons).

The classification of one checkpoint (``W``, hidden x feature) goes:

1. **Represented features**: ``‖W_i‖ > norm_threshold`` (default 0.5).
   The others are ``unlearned``.
2. **Overlap graph**: the represented features are nodes, with an edge where
   ``|Ŵ_i · Ŵ_j| > overlap_tol`` (default 0.15). Its connected components are
   the tegum factors. Two orthogonal digons are two components, never a
   square; an octahedron is three digons.
3. **Rank**: a component of ``k`` features spans ``d`` dimensions, the number
   of singular values of its unit directions ``Ŵ_C`` that are at least
   ``rank_tol`` (default 0.2) times the largest.
4. **Match**: the component is compared with every registered configuration
   with the same ``k`` and ``d`` (:func:`configurations`). The comparison uses
   only the component's Gram matrix, so it is invariant to rotations (and
   reflections) of hidden space, and it compares the *sorted* pairwise angles
   ``arccos(Ŵ_i·Ŵ_j)`` with the template's, so it is invariant to the order of
   the features. ``fit = max(0, 1 - rms angle error / 45°)``: 1 for a perfect
   polytope, 0.9 for angles off by 4.5° on average. The best template wins
   if its fit is at least ``min_fit`` (default 0.25); otherwise, or when no
   template has that ``k`` and ``d``, the component is ``other`` (reported
   with its ``k`` and ``d``).

The matrix used is always the store's ``W``: the tied weights of the
``linear``, ``relu_output`` and ``hidden_relu`` (privileged basis) models,
and the input matrix ``W1`` of the ``abs`` model (its columns are the feature
directions in hidden space; ``W_out`` is not used).

:func:`classify` returns all of this as an :class:`xarray.Dataset` with dims
``(step, instance, feature, config)``; :func:`to_records` gives its JSON form
and :func:`to_frame` a tidy table. Definitions, defaults and schemas are in
``docs/classify.md``.

The work is batched: norms, Gram matrices, adjacency and ranks are computed
in NumPy over whole blocks of checkpoints; connected components are found
once per distinct adjacency pattern (trajectories repeat them); summaries once
per distinct count of configurations. The store is read block by block over
``step``, so memory stays bounded however long the trajectory.

>>> import numpy as np
>>> angles = 2 * np.pi * np.arange(5) / 5
>>> W = np.stack([np.cos(angles), np.sin(angles)])          # a pentagon in 2-D
>>> result = classify(W)
>>> str(result["summary"].item())
'pentagon'
>>> result["kind"].values.ravel().tolist()
['pentagon', 'pentagon', 'pentagon', 'pentagon', 'pentagon']
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from toyanalysis.errors import ConfigError, StoreError
from toyanalysis.superposition import (
    _dimensionality,
    _interference,
    _matmul_tn,
    dimensions_per_feature,
    feature_norms,
    gram,
    unit_directions,
)

if TYPE_CHECKING:
    import networkx as nx
    import pandas as pd
    import xarray as xr

__all__ = [
    "DEFAULT_MIN_FIT",
    "DEFAULT_NORM_THRESHOLD",
    "DEFAULT_OVERLAP_TOL",
    "DEFAULT_RANK_TOL",
    "Configuration",
    "classify",
    "concat_blocks",
    "configurations",
    "iter_classify",
    "overlap_graph",
    "register_configuration",
    "to_frame",
    "to_records",
    "unregister_configuration",
]

DEFAULT_NORM_THRESHOLD = 0.5
DEFAULT_OVERLAP_TOL = 0.15
DEFAULT_RANK_TOL = 0.2
DEFAULT_MIN_FIT = 0.25
# rms angle error (radians) at which the fit reaches 0
FIT_SCALE = math.pi / 4

UNLEARNED = "unlearned"
OTHER = "other"
INVALID = "invalid"  # a checkpoint whose weights are not finite
_RESERVED = (UNLEARNED, OTHER, INVALID, "")

# Working memory one block of checkpoints may use (Gram matrices and friends).
_BLOCK_BYTES = 128 * 2**20
# Distinct adjacency patterns remembered across blocks before the cache is reset.
_CACHE_BYTES = 64 * 2**20


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True, eq=False)
class Configuration:
    """A geometric configuration: ``k`` unit feature directions spanning ``d`` dimensions.

    ``vectors`` is ``(d, k)`` with unit columns. ``angles`` holds the sorted
    pairwise angles that components are compared with.
    """

    name: str
    vectors: np.ndarray
    description: str = ""
    angles: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        G = self.vectors.T @ self.vectors
        iu = np.triu_indices(self.n_features, 1)
        cosines = np.sort(np.clip(G[iu], -1, 1))
        object.__setattr__(self, "angles", np.arccos(cosines))

    @property
    def n_features(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def n_dims(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def gram(self) -> np.ndarray:
        return self.vectors.T @ self.vectors


_REGISTRY: dict[str, Configuration] = {}


def configurations() -> tuple[Configuration, ...]:
    """The registered configurations, in registration order.

    >>> [(c.name, c.n_features, c.n_dims) for c in configurations()][:3]
    [('dedicated', 1, 1), ('digon', 2, 1), ('triangle', 3, 2)]
    """
    return tuple(_REGISTRY.values())


def register_configuration(name: str, vectors: Any, *, description: str = "") -> Configuration:
    """Add a configuration that components can be matched against.

    ``vectors`` are the template's feature directions as columns (any
    dimension, any norm; they are normalised and expressed in the subspace
    they span). A template must be one connected configuration: a tegum
    product (orthogonal blocks) would never be one component, so register its
    factors instead. Names must be new.

    >>> import numpy as np
    >>> c = register_configuration("cross", [[1, 0.6], [0, 0.8]])
    >>> (c.n_features, c.n_dims)
    (2, 2)
    >>> unregister_configuration("cross")
    """
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_\-]*", name):
        raise ConfigError(f"configuration name must be a word like 'pentagon', got {name!r}")
    if name in _RESERVED:
        raise ConfigError(f"configuration name {name!r} is reserved")
    if name in _REGISTRY:
        raise ConfigError(f"configuration {name!r} is already registered")
    try:
        V = np.asarray(vectors, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"configuration {name!r}: vectors must be a numeric matrix") from None
    if V.ndim != 2 or V.shape[1] < 1 or not np.isfinite(V).all():
        raise ConfigError(
            f"configuration {name!r}: vectors must be a finite (dims, features) matrix, "
            f"got shape {V.shape}"
        )
    norms = np.linalg.norm(V, axis=0)
    if (norms == 0).any():
        raise ConfigError(f"configuration {name!r}: feature {int(np.argmin(norms))} is zero")
    V = V / norms
    # express the template in the subspace it spans: (d, k)
    _, s, vt = np.linalg.svd(V, full_matrices=False)
    d = int((s >= 1e-9 * s[0]).sum())
    V = s[:d, None] * vt[:d]
    V /= np.linalg.norm(V, axis=0)
    k = V.shape[1]
    if k > 1:
        adjacency = np.abs(V.T @ V) > 1e-6
        if _n_components(adjacency) > 1:
            raise ConfigError(
                f"configuration {name!r} has orthogonal blocks (a tegum product); "
                "register its factors instead"
            )
    for other in _REGISTRY.values():
        if other.n_features == k and other.n_dims == d and _template_fit(other, V) > 0.999:
            raise ConfigError(f"configuration {name!r} is the same as {other.name!r}")
    config = Configuration(name=name, vectors=V, description=description)
    _REGISTRY[name] = config
    return config


def unregister_configuration(name: str) -> None:
    """Remove a configuration from the registry (for experiments and tests)."""
    if name not in _REGISTRY:
        raise ConfigError(f"no configuration named {name!r} (have: {', '.join(_REGISTRY)})")
    del _REGISTRY[name]


def _n_components(adjacency: np.ndarray) -> int:
    labels = _components_reference(adjacency, np.ones(len(adjacency), dtype=bool))
    return int(labels.max()) + 1


def _template_fit(config: Configuration, V: np.ndarray) -> float:
    G = V.T @ V
    iu = np.triu_indices(V.shape[1], 1)
    fit = _fits(np.sort(G[iu])[None], config)
    return float(fit[0])


def _polygon(k: int) -> np.ndarray:
    angles = 2 * np.pi * np.arange(k) / k
    return np.stack([np.cos(angles), np.sin(angles)])


def _regular_simplex(k: int) -> np.ndarray:
    """``k`` unit vectors in ``k - 1`` dimensions with equal overlaps ``-1/(k-1)``."""
    centred = np.eye(k) - 1.0 / k
    return centred / np.linalg.norm(centred, axis=0)


def _square_antiprism() -> np.ndarray:
    """Two squares, twisted by 45°, at heights ±1/√3: a tight frame, so D_i = 3/8."""
    h = 1 / math.sqrt(3)
    r = math.sqrt(1 - h * h)
    top = [(r * math.cos(a), r * math.sin(a), h) for a in np.pi / 2 * np.arange(4)]
    bottom = [(r * math.cos(a), r * math.sin(a), -h) for a in np.pi / 2 * np.arange(4) + np.pi / 4]
    return np.array(top + bottom).T


def _register_builtins() -> None:
    builtins = [
        ("dedicated", np.ones((1, 1)), "a feature with a dimension of its own (1 in 1)"),
        ("digon", np.array([[1.0, -1.0]]), "an antipodal pair (2 in 1)"),
        ("triangle", _polygon(3), "3 features in a plane at 120°"),
        ("pentagon", _polygon(5), "5 features in a plane at 72°"),
        ("hexagon", _polygon(6), "6 features in a plane at 60°"),
        ("heptagon", _polygon(7), "7 features in a plane"),
        ("octagon", _polygon(8), "8 features in a plane at 45°"),
        ("tetrahedron", _regular_simplex(4), "4 features in 3-D with overlaps -1/3"),
        ("square_antiprism", _square_antiprism(), "8 features in 3-D (tight frame)"),
    ]
    for name, vectors, description in builtins:
        register_configuration(name, vectors, description=description)


# --------------------------------------------------------------------------- components


def _components_reference(adjacency: np.ndarray, represented: np.ndarray) -> np.ndarray:
    """Component labels with networkx: the plain reference for the fast path."""
    graph = _graph_from_adjacency(adjacency, represented)
    return _canonical_labels(graph, len(represented))


def _graph_from_adjacency(adjacency: np.ndarray, represented: np.ndarray) -> nx.Graph:
    import networkx as nx

    graph = nx.Graph()
    graph.add_nodes_from(np.flatnonzero(represented).tolist())
    i, j = np.nonzero(np.triu(adjacency & represented[:, None] & represented[None, :], 1))
    graph.add_edges_from(zip(i.tolist(), j.tolist(), strict=True))
    return graph


def _canonical_labels(graph: nx.Graph, n: int) -> np.ndarray:
    """Label components 0, 1, ... by decreasing size, then smallest feature; -1 elsewhere."""
    import networkx as nx

    components = sorted(
        (sorted(c) for c in nx.connected_components(graph)), key=lambda c: (-len(c), c[0])
    )
    labels = np.full(n, -1, dtype=np.int64)
    for index, members in enumerate(components):
        labels[members] = index
    return labels


def _components_batched(adjacency: np.ndarray, represented: np.ndarray) -> np.ndarray:
    """Canonical component labels for a stack of graphs at once: ``(P, n, n) -> (P, n)``.

    Hook-and-compress union-find on all edges of all graphs together (node
    ``i`` of graph ``p`` is ``p * n + i``): every round hooks the larger root
    of each edge under the smaller one, then compresses paths, until both
    ends of every edge share a root. Roots end as the smallest node of their
    component. Checked against networkx in the tests.
    """
    P, n = represented.shape
    mask = adjacency & represented[:, :, None] & represented[:, None, :]
    p, i, j = np.nonzero(np.triu(mask, 1) if n > 1 else mask[:, :0, :0])
    u = p * n + i
    v = p * n + j
    parent = np.arange(P * n)
    while u.size:
        ru, rv = parent[u], parent[v]
        pending = ru != rv
        if not pending.any():
            break
        ru, rv = ru[pending], rv[pending]
        np.minimum.at(parent, np.maximum(ru, rv), np.minimum(ru, rv))
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
    flat_rep = represented.ravel()
    sizes = np.bincount(parent[flat_rep], minlength=P * n)
    roots = np.flatnonzero((parent == np.arange(P * n)) & flat_rep)
    graph_of_root = roots // n
    order = np.lexsort((roots, -sizes[roots], graph_of_root))
    sorted_graphs = graph_of_root[order]
    first = np.searchsorted(sorted_graphs, sorted_graphs, side="left")
    component_of_root = np.full(P * n, -1, dtype=np.int64)
    component_of_root[roots[order]] = np.arange(len(order)) - first
    labels = np.where(flat_rep, component_of_root[parent], -1)
    return labels.reshape(P, n)


def overlap_graph(
    W: Any,
    *,
    norm_threshold: float = DEFAULT_NORM_THRESHOLD,
    overlap_tol: float = DEFAULT_OVERLAP_TOL,
) -> nx.Graph:
    """The overlap graph of one checkpoint, as a :class:`networkx.Graph`.

    Nodes are the represented features (``‖W_i‖ > norm_threshold``) with a
    ``norm`` attribute; an edge joins ``i`` and ``j`` when
    ``|Ŵ_i · Ŵ_j| > overlap_tol``, with the signed ``overlap`` and
    ``weight = |overlap|``. Its connected components are the tegum factors.

    >>> import numpy as np
    >>> W = np.array([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0]])  # two orthogonal digons
    >>> g = overlap_graph(W)
    >>> sorted(map(sorted, __import__("networkx").connected_components(g)))
    [[0, 1], [2, 3]]
    """
    import networkx as nx

    _check_thresholds(norm_threshold, overlap_tol, DEFAULT_RANK_TOL, DEFAULT_MIN_FIT)
    W = _single_matrix(W)
    norms = feature_norms(W)
    G = gram(W)
    represented = norms > norm_threshold
    graph = nx.Graph()
    for i in np.flatnonzero(represented).tolist():
        graph.add_node(i, norm=float(norms[i]))
    mask = (np.abs(G) > overlap_tol) & represented[:, None] & represented[None, :]
    for i, j in zip(*np.nonzero(np.triu(mask, 1)), strict=True):
        graph.add_edge(int(i), int(j), overlap=float(G[i, j]), weight=float(abs(G[i, j])))
    return graph


def _single_matrix(W: Any) -> np.ndarray:
    import xarray as xr

    if isinstance(W, xr.Dataset):
        W = W["W"]
    if isinstance(W, xr.DataArray):
        extra = [d for d in W.dims if d not in ("hidden", "feature") and W.sizes[d] > 1]
        if extra:
            raise ConfigError(
                f"overlap_graph takes one checkpoint; select one along {extra} (shape {W.shape})"
            )
        W = W.squeeze([d for d in W.dims if d not in ("hidden", "feature")])
        W = W.transpose("hidden", "feature").values
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2:
        raise ConfigError(f"overlap_graph takes one (hidden, feature) matrix, got shape {W.shape}")
    return W


# --------------------------------------------------------------------------- the batched kernel


def _unique_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a 2-D array: ``(first index of each, inverse)``.

    A dict over the rows' bytes: linear time, exact, and faster here than
    ``np.unique(axis=0)``, which sorts (0.7 s for 64,000 rows of 50 bytes).
    """
    raw = np.ascontiguousarray(rows).view(np.uint8).reshape(rows.shape[0], -1)
    index: dict[bytes, int] = {}
    first: list[int] = []
    inverse = np.empty(rows.shape[0], dtype=np.int64)
    for i, row in enumerate(raw):
        j = index.setdefault(row.tobytes(), len(first))
        if j == len(first):
            first.append(i)
        inverse[i] = j
    return np.array(first, dtype=np.int64), inverse


@dataclass
class _Vocabulary:
    """Names of kinds: the registry, then other, unlearned, invalid and padding."""

    names: list[str]
    configs: list[Configuration]

    @classmethod
    def current(cls) -> _Vocabulary:
        configs = list(_REGISTRY.values())
        return cls(
            names=[c.name for c in configs] + [OTHER, UNLEARNED, INVALID, ""], configs=configs
        )

    @property
    def other(self) -> int:
        return len(self.configs)

    @property
    def unlearned(self) -> int:
        return len(self.configs) + 1

    @property
    def invalid(self) -> int:
        return len(self.configs) + 2

    @property
    def pad(self) -> int:
        return len(self.configs) + 3


def _fits(sorted_cosines: np.ndarray, config: Configuration) -> np.ndarray:
    """``max(0, 1 - rms(sorted angles - template angles) / 45°)`` per row."""
    if sorted_cosines.shape[-1] == 0:
        return np.ones(sorted_cosines.shape[:-1])
    angles = np.arccos(np.clip(sorted_cosines, -1, 1))
    rms = np.sqrt(np.mean((angles - config.angles) ** 2, axis=-1))
    return np.clip(1 - rms / FIT_SCALE, 0, 1)


@dataclass
class _Block:
    """The classification of a block of checkpoints, flattened to ``B`` rows."""

    norm: np.ndarray  # (B, n)
    interference: np.ndarray  # (B, n)
    dimensionality: np.ndarray  # (B, n)
    dstar: np.ndarray  # (B,)
    component: np.ndarray  # (B, n) int, -1 unlearned
    kind: np.ndarray  # (B, n) int codes into the vocabulary
    config_kind: np.ndarray  # (B, C) int codes
    config_n_features: np.ndarray  # (B, C)
    config_n_dims: np.ndarray  # (B, C)
    config_fit: np.ndarray  # (B, C)
    summary: np.ndarray  # (B,) str


@dataclass(frozen=True, kw_only=True)
class _Params:
    norm_threshold: float
    overlap_tol: float
    rank_tol: float
    min_fit: float


class _Classifier:
    """Classifies blocks of checkpoints, remembering components of seen adjacency patterns."""

    def __init__(self, params: _Params) -> None:
        self.params = params
        self.vocab = _Vocabulary.current()
        self._patterns: dict[bytes, np.ndarray] = {}
        self._pattern_bytes = 0
        self._summaries: dict[bytes, str] = {}
        self._other_terms: dict[tuple[int, int], int] = {}

    # -- components of each checkpoint, once per distinct pattern
    def _labels(self, adjacency: np.ndarray, represented: np.ndarray) -> np.ndarray:
        B = represented.shape[0]
        keys = np.concatenate(
            [np.packbits(represented, axis=-1), np.packbits(adjacency.reshape(B, -1), axis=-1)],
            axis=-1,
        )
        first, inverse = _unique_rows(keys)
        raw = [keys[row].tobytes() for row in first]
        missing = [u for u, key in enumerate(raw) if key not in self._patterns]
        if missing:
            rows = first[missing]
            labels = _components_batched(adjacency[rows], represented[rows])
            if self._pattern_bytes > _CACHE_BYTES:
                self._patterns.clear()
                self._pattern_bytes = 0
            for u, row in zip(missing, labels, strict=True):
                self._patterns[raw[u]] = row
                self._pattern_bytes += len(raw[u]) + row.nbytes
        table = np.stack([self._patterns[key] for key in raw])
        return table[inverse]

    def classify(self, W: np.ndarray) -> _Block:
        """``W`` is ``(B, hidden, feature)``, float32 or float64, with finite entries."""
        p = self.params
        B, _, n = W.shape
        norms = feature_norms(W)
        units = unit_directions(W, norms)
        G = _matmul_tn(units, units)
        total = np.einsum("bij,bj->bi", G * G, norms * norms)
        interference = _interference(norms, total)
        dimensionality = _dimensionality(norms, total)
        dstar = dimensions_per_feature(W)

        represented = norms > p.norm_threshold
        adjacency = np.abs(G) > p.overlap_tol
        adjacency &= represented[:, :, None]
        adjacency &= represented[:, None, :]
        diag = np.arange(n)
        adjacency[:, diag, diag] = False
        labels = self._labels(adjacency, represented)
        del adjacency

        n_comp = labels.max(axis=1) + 1 if n else np.zeros(B, dtype=np.int64)
        C = int(n_comp.max()) if B else 0
        sizes = np.zeros((B, C), dtype=np.int64)
        rows, cols = np.nonzero(labels >= 0)
        np.add.at(sizes, (rows, labels[rows, cols]), 1)
        # features sorted by (component, index) per checkpoint, unlearned last
        order = np.argsort(np.where(labels >= 0, labels, n), axis=1, kind="stable")
        starts = np.cumsum(sizes, axis=1) - sizes

        config_kind = np.full((B, C), self.vocab.pad, dtype=np.int64)
        config_dims = np.zeros((B, C), dtype=np.int64)
        config_fit = np.full((B, C), np.nan)
        by_size: dict[int, list[int]] = {}
        for index, config in enumerate(self.vocab.configs):
            by_size.setdefault(config.n_features, []).append(index)
        for k in np.unique(sizes[sizes > 0]).tolist():
            b, c = np.nonzero(sizes == k)
            members = order[b[:, None], starts[b, c][:, None] + np.arange(k)]
            dims, fit, kind = self._match(G, units, b, members, by_size.get(k, []))
            config_kind[b, c] = kind
            config_dims[b, c] = dims
            config_fit[b, c] = fit

        feature_kind = np.where(
            labels >= 0,
            np.take_along_axis(config_kind, np.maximum(labels, 0), axis=1)
            if C
            else self.vocab.unlearned,
            self.vocab.unlearned,
        )
        summary = self._summaries_for(config_kind, sizes, config_dims, n - represented.sum(axis=1))
        return _Block(
            norm=norms,
            interference=interference,
            dimensionality=dimensionality,
            dstar=dstar,
            component=labels,
            kind=feature_kind,
            config_kind=config_kind,
            config_n_features=sizes,
            config_n_dims=config_dims,
            config_fit=config_fit,
            summary=summary,
        )

    def _match(
        self,
        G: np.ndarray,
        units: np.ndarray,
        b: np.ndarray,
        members: np.ndarray,
        candidates: list[int],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rank, fit and kind code of ``N`` components of the same size ``k``."""
        p = self.params
        N, k = members.shape
        m = units.shape[1]
        if k <= m or candidates:
            sub = G[b[:, None, None], members[:, :, None], members[:, None, :]]
        else:
            sub = None
        if sub is not None and k <= m:
            eig = np.linalg.eigvalsh(sub)
        else:
            U = units[b[:, None, None], np.arange(m)[None, :, None], members[:, None, :]]
            eig = np.linalg.eigvalsh(np.matmul(U, np.swapaxes(U, -1, -2)))
        top = eig[:, -1:]
        dims = (eig >= (p.rank_tol**2) * top).sum(axis=1)

        fit = np.full(N, np.nan)
        kind = np.full(N, self.vocab.other, dtype=np.int64)
        if candidates and sub is not None:
            iu = np.triu_indices(k, 1)
            cosines = np.sort(sub[:, iu[0], iu[1]], axis=1)
            best = np.full(N, -1.0)
            for index in candidates:
                config = self.vocab.configs[index]
                rows = np.flatnonzero(dims == config.n_dims)
                if rows.size == 0:
                    continue
                f = _fits(cosines[rows], config)
                better = f > best[rows]
                best[rows[better]] = f[better]
                kind[rows[better]] = index
            matched = best >= 0
            fit[matched] = best[matched]
            kind[matched & (best < p.min_fit)] = self.vocab.other
        return dims, fit, kind

    # -- one-line summaries, once per distinct count vector
    def _summaries_for(
        self,
        config_kind: np.ndarray,
        sizes: np.ndarray,
        dims: np.ndarray,
        unlearned: np.ndarray,
    ) -> np.ndarray:
        B = config_kind.shape[0]
        n_named = len(self.vocab.configs)
        real = sizes > 0
        term = config_kind.copy()
        is_other = real & (config_kind == self.vocab.other)
        if is_other.any():
            for kd in set(zip(sizes[is_other].tolist(), dims[is_other].tolist(), strict=True)):
                self._other_terms.setdefault(kd, n_named + len(self._other_terms))
            lookup = {v: kd for kd, v in self._other_terms.items()}
            codes = [
                self._other_terms[kd]
                for kd in zip(sizes[is_other].tolist(), dims[is_other].tolist(), strict=True)
            ]
            term[is_other] = codes
        else:
            lookup = {v: kd for kd, v in self._other_terms.items()}
        n_terms = n_named + len(self._other_terms)
        counts = np.zeros((B, n_terms + 1), dtype=np.int64)
        rows, cols = np.nonzero(real)
        np.add.at(counts, (rows, term[rows, cols]), 1)
        counts[:, n_terms] = unlearned
        first, inverse = _unique_rows(counts)
        texts = []
        for row in counts[first]:
            key = row.tobytes()
            text = self._summaries.get(key)
            if text is None:
                text = self._summary_text(row, lookup)
                self._summaries[key] = text
            texts.append(text)
        return (
            np.array(texts, dtype=object)[inverse.reshape(-1)] if B else np.array([], dtype=object)
        )

    def _summary_text(self, counts: np.ndarray, other_terms: Mapping[int, tuple[int, int]]) -> str:
        n_named = len(self.vocab.configs)
        terms = []
        for code in np.flatnonzero(counts[:-1]).tolist():
            if code < n_named:
                config = self.vocab.configs[code]
                terms.append((config.n_features, config.n_dims, code, config.name))
            else:
                k, d = other_terms[code]
                terms.append((k, d, code, f"{OTHER}({k} in {d})"))
        terms.sort(key=lambda t: (-t[0], -t[1], t[2]))
        parts = [(int(counts[t[2]]), t[3]) for t in terms]
        if counts[-1]:
            parts.append((int(counts[-1]), UNLEARNED))
        if len(parts) == 1 and parts[0][0] == 1:
            return parts[0][1]
        return " + ".join(f"{count} {name}" for count, name in parts)


# --------------------------------------------------------------------------- xarray layer


def _check_thresholds(
    norm_threshold: float, overlap_tol: float, rank_tol: float, min_fit: float
) -> None:
    checks = [
        ("norm_threshold", norm_threshold, 0.0, math.inf),
        ("overlap_tol", overlap_tol, 0.0, 1.0),
        ("rank_tol", rank_tol, 0.0, 1.0),
        ("min_fit", min_fit, 0.0, 1.0),
    ]
    for name, value, low, high in checks:
        try:
            ok = low <= float(value) < high or (name == "min_fit" and float(value) == 1.0)
        except (TypeError, ValueError):
            ok = False
        if not ok or not math.isfinite(float(value)):
            raise ConfigError(f"{name} must be a number in [{low}, {high}), got {value!r}")


def _given_thresholds(norm_threshold: float | None, overlap_tol: float | None) -> dict[str, float]:
    """The thresholds given (not None), as keyword arguments of :func:`classify`."""
    out = {}
    if norm_threshold is not None:
        out["norm_threshold"] = norm_threshold
    if overlap_tol is not None:
        out["overlap_tol"] = overlap_tol
    return out


def _as_dataset(data: Any) -> xr.Dataset:
    """A store-shaped Dataset from a store Dataset, a ``W`` DataArray or a NumPy array."""
    import xarray as xr

    if isinstance(data, xr.Dataset):
        if "W" not in data.data_vars:
            found = ", ".join(map(str, data.data_vars)) or "none"
            raise ConfigError(f"dataset has no variable W (variables: {found})")
        ds = data
    elif isinstance(data, xr.DataArray):
        ds = data.to_dataset(name="W")
    else:
        array = np.asarray(data)
        if array.ndim < 2 or array.ndim > 4 or not np.issubdtype(array.dtype, np.number):
            raise ConfigError(
                "W must be a numeric (hidden, feature), (instance, hidden, feature) or "
                f"(step, instance, hidden, feature) array, got shape {array.shape}"
            )
        dims = ("step", "instance", "hidden", "feature")[4 - array.ndim :]
        ds = xr.Dataset({"W": (dims, array)})
    W = ds["W"]
    unknown = [d for d in W.dims if d not in ("step", "instance", "hidden", "feature")]
    if unknown or "hidden" not in W.dims or "feature" not in W.dims:
        raise ConfigError(f"W must have dims (step, instance, hidden, feature), got {W.dims}")
    for dim in ("step", "instance"):
        if dim not in W.dims:
            ds = ds.expand_dims(dim)
    for dim in ("step", "instance", "feature"):
        if dim not in ds.coords:
            ds = ds.assign_coords({dim: np.arange(ds.sizes[dim], dtype=np.int64)})
    return ds


def _describe_steps(steps: np.ndarray) -> str:
    if steps.size == 0:
        return "no steps"
    if steps.size <= 6:
        return f"steps {', '.join(map(str, steps.tolist()))}"
    gaps = np.unique(np.diff(steps))
    every = f" every {gaps[0]}" if gaps.size == 1 else ""
    return f"{steps.size} steps {steps[0]}..{steps[-1]}{every}"


def _the_store_has(recorded: np.ndarray) -> str:
    return f" (the store has {_describe_steps(recorded)})"


def _select_steps(
    ds: xr.Dataset, steps: Any, recorded: Callable[[np.ndarray], str] = _the_store_has
) -> xr.Dataset:
    """``steps``: None or "all" (every step), "last", or step numbers (one or several).

    A step that is not recorded raises "step S is not recorded" followed by
    ``recorded(the recorded steps)``.
    """
    available = ds["step"].values
    if steps is None or (isinstance(steps, str) and steps == "all"):
        return ds
    if isinstance(steps, str) and steps == "last":
        return ds.isel(step=[-1]) if available.size else ds
    wanted = [steps] if np.ndim(steps) == 0 else list(steps)
    try:
        wanted = [int(s) for s in wanted]
    except (TypeError, ValueError):
        raise ConfigError(f"steps must be 'last', 'all' or step numbers, got {steps!r}") from None
    missing = [s for s in wanted if s not in set(available.tolist())]
    if missing:
        raise ConfigError(f"step {missing[0]} is not recorded{recorded(available)}")
    return ds.sel(step=wanted)


def _select(ds: xr.Dataset, steps: Any, instances: Any) -> xr.Dataset:
    ds = _select_steps(ds, steps)
    if instances is not None:
        wanted = [instances] if np.ndim(instances) == 0 else list(instances)
        labels = ds["instance"].values.tolist()
        try:
            wanted = [type(labels[0])(i) if labels else i for i in wanted]
        except (TypeError, ValueError):
            raise ConfigError(f"instances must be instance labels, got {instances!r}") from None
        missing = [i for i in wanted if i not in set(labels)]
        if missing:
            described = f"{labels[0]}..{labels[-1]}" if labels else "none"
            raise ConfigError(f"instance {missing[0]} is not in the store (instances: {described})")
        ds = ds.sel(instance=wanted)
    return ds


def _carried_coords(ds: xr.Dataset) -> dict[str, xr.DataArray]:
    """Coordinates that describe steps, instances or features (not hidden units)."""
    keep = {}
    for name, coord in ds.coords.items():
        if name in ("step", "instance", "feature") or "hidden" in coord.dims:
            continue
        if set(coord.dims) <= {"step", "instance", "feature"}:
            keep[str(name)] = coord
    return keep


def _block_sizes(ds: xr.Dataset, block_bytes: int, itemsize: int) -> tuple[int, int]:
    """Steps read from the store at once, and steps classified at once.

    A block of checkpoints holds a few ``(feature, feature)`` arrays per
    checkpoint; ``block_bytes`` bounds them. Reads cover whole store chunks
    (reading part of a chunk decompresses all of it), and are then classified
    in blocks.
    """
    n = ds.sizes["feature"]
    m = ds.sizes["hidden"]
    per_checkpoint = itemsize * (5 * n * n + 8 * m * n) + 8 * 24 * n + 64
    per_step = per_checkpoint * max(1, ds.sizes["instance"])
    block = max(1, block_bytes // per_step)
    chunks = ds["W"].chunks
    if chunks is None:
        return block, block
    store_chunk = max(chunks[ds["W"].get_axis_num("step")])
    if block >= store_chunk:
        block -= block % store_chunk
        return block, block
    return store_chunk, block


def iter_classify(
    ds: Any,
    *,
    norm_threshold: float = DEFAULT_NORM_THRESHOLD,
    overlap_tol: float = DEFAULT_OVERLAP_TOL,
    rank_tol: float = DEFAULT_RANK_TOL,
    min_fit: float = DEFAULT_MIN_FIT,
    steps: Any = None,
    instances: Any = None,
    progress: Callable[[int], None] | None = None,
    block_bytes: int = _BLOCK_BYTES,
) -> Iterator[xr.Dataset]:
    """:func:`classify`, one block of steps at a time (memory bounded by ``block_bytes``).

    Returns an iterator of Datasets with the same variables as
    :func:`classify`, each for consecutive steps; ``progress`` is called with
    the number of steps each block covered. The options and the selection are
    checked at the call, before anything is yielded. Use it to stream results
    of long trajectories to disk; :func:`concat_blocks` joins blocks.

    >>> from toyanalysis import testing
    >>> W = np.stack([testing.tegum("digon", "dedicated")] * 3)[:, None]   # 3 steps
    >>> [dict(b.sizes)["step"] for b in iter_classify(W, block_bytes=1)]
    [1, 1, 1]
    """
    _check_thresholds(norm_threshold, overlap_tol, rank_tol, min_fit)
    ds = _select(_as_dataset(ds), steps, instances)
    params = _Params(
        norm_threshold=float(norm_threshold),
        overlap_tol=float(overlap_tol),
        rank_tol=float(rank_tol),
        min_fit=float(min_fit),
    )
    classifier = _Classifier(params)
    W = ds["W"].transpose("step", "instance", "hidden", "feature")
    coords = _carried_coords(ds)
    loss = (
        ds["loss"].transpose("step", "instance")
        if "loss" in ds.data_vars and set(ds["loss"].dims) == {"step", "instance"}
        else None
    )
    attrs = {
        "norm_threshold": params.norm_threshold,
        "overlap_tol": params.overlap_tol,
        "rank_tol": params.rank_tol,
        "min_fit": params.min_fit,
        "matrix": "W",
        "model": str(ds.attrs.get("model", "relu_output")),
        "sweep": [str(s) for s in _sweep_names(ds)],
        "configurations": [c.name for c in classifier.vocab.configs],
    }
    work_dtype = np.float32 if W.dtype in (np.float32, np.float16) else np.float64
    sizes = _block_sizes(ds, block_bytes, np.dtype(work_dtype).itemsize)
    return _blocks(ds, W, classifier, sizes, work_dtype, coords, loss, attrs, progress)


def _blocks(
    ds: xr.Dataset,
    W: xr.DataArray,
    classifier: _Classifier,
    sizes: tuple[int, int],
    work_dtype: Any,
    coords: dict[str, xr.DataArray],
    loss: xr.DataArray | None,
    attrs: dict[str, Any],
    progress: Callable[[int], None] | None,
) -> Iterator[xr.Dataset]:
    import xarray as xr

    n_steps, n_inst = W.sizes["step"], W.sizes["instance"]
    fixed = {
        name: xr.Variable(c.dims, np.asarray(c.values))
        for name, c in coords.items()
        if "step" not in c.dims
    }
    by_step = {name: c for name, c in coords.items() if "step" in c.dims}
    labels = {d: ds[d].values for d in ("step", "instance", "feature")}
    read, block = sizes
    for window in range(0, n_steps, read):
        raw = np.asarray(W.isel(step=slice(window, window + read)).values, dtype=work_dtype)
        raw_loss = (
            np.asarray(loss.isel(step=slice(window, window + read)).values)
            if loss is not None
            else None
        )
        for offset in range(0, raw.shape[0], block):
            start = window + offset
            values = raw[offset : offset + block]
            S = values.shape[0]
            stop = start + S
            flat = values.reshape(S * n_inst, *values.shape[2:])
            finite = np.isfinite(flat).all(axis=(1, 2))
            if not finite.all():
                flat = np.where(finite[:, None, None], flat, 0)
            result = classifier.classify(flat)
            out = _block_dataset(result, finite, classifier.vocab, S, n_inst, work_dtype)
            stepped = {
                name: xr.Variable(c.dims, np.asarray(c.isel(step=slice(start, stop)).values))
                for name, c in by_step.items()
            }
            out = out.assign_coords(
                step=labels["step"][start:stop],
                instance=labels["instance"],
                feature=labels["feature"],
                **fixed,
                **stepped,
            )
            if raw_loss is not None:
                out["loss"] = (("step", "instance"), raw_loss[offset : offset + block])
            out.attrs.update(attrs)
            yield out
            if progress is not None:
                progress(S)


def _sweep_names(ds: xr.Dataset) -> list[str]:
    sweep = ds.attrs.get("sweep", [])
    if isinstance(sweep, str):
        sweep = [sweep]
    return [s for s in sweep if s in ds.coords]


def _block_dataset(
    block: _Block,
    finite: np.ndarray,
    vocab: _Vocabulary,
    S: int,
    n_inst: int,
    dtype: Any = np.float64,
) -> xr.Dataset:
    import xarray as xr

    names = np.array(vocab.names)
    n = block.norm.shape[1]
    kind = block.kind
    component = block.component
    norm, interference, dimensionality = block.norm, block.interference, block.dimensionality
    dstar, summary = block.dstar, block.summary
    config_kind, config_k, config_d, config_fit = (
        block.config_kind,
        block.config_n_features,
        block.config_n_dims,
        block.config_fit,
    )
    if not finite.all():
        bad = ~finite
        kind = np.where(bad[:, None], vocab.invalid, kind)
        component = np.where(bad[:, None], -1, component)
        norm, interference, dimensionality = (
            np.where(bad[:, None], np.nan, a) for a in (norm, interference, dimensionality)
        )
        dstar = np.where(bad, np.nan, dstar)
        summary = np.where(bad, f"{INVALID} (non-finite weights)", summary)
        config_kind = np.where(bad[:, None], vocab.pad, config_kind)
        config_k = np.where(bad[:, None], 0, config_k)
        config_d = np.where(bad[:, None], 0, config_d)
        config_fit = np.where(bad[:, None], np.nan, config_fit)
    C = config_kind.shape[1]
    sif = ("step", "instance", "feature")
    sic = ("step", "instance", "config")
    return xr.Dataset(
        {
            "kind": (sif, names[kind].reshape(S, n_inst, n)),
            "component": (sif, component.reshape(S, n_inst, n).astype(np.int32)),
            "norm": (sif, norm.reshape(S, n_inst, n).astype(dtype)),
            "dimensionality": (sif, dimensionality.reshape(S, n_inst, n).astype(dtype)),
            "interference": (sif, interference.reshape(S, n_inst, n).astype(dtype)),
            "dimensions_per_feature": (
                ("step", "instance"),
                dstar.reshape(S, n_inst).astype(dtype),
            ),
            "summary": (("step", "instance"), np.asarray(summary, dtype=str).reshape(S, n_inst)),
            "config_kind": (sic, names[config_kind].reshape(S, n_inst, C)),
            "config_n_features": (sic, config_k.reshape(S, n_inst, C).astype(np.int32)),
            "config_n_dims": (sic, config_d.reshape(S, n_inst, C).astype(np.int32)),
            "config_fit": (sic, config_fit.reshape(S, n_inst, C).astype(dtype)),
        },
        coords={"config": np.arange(C)},
    )


_PADDING = {"config_kind": "", "config_n_features": 0, "config_n_dims": 0, "config_fit": np.nan}


def _pad_components(ds: xr.Dataset, size: int) -> xr.Dataset:
    have = ds.sizes["config"]
    if have == size:
        return ds
    out = ds.copy()
    for name, fill in _PADDING.items():
        values = ds[name].values
        dtype = (
            values.dtype
            if name != "config_kind"
            else np.result_type(values.dtype, np.array([""]).dtype)
        )
        padded = np.full((*values.shape[:-1], size), fill, dtype=dtype)
        padded[..., :have] = values
        out = out.drop_vars(name)
        out[name] = (ds[name].dims, padded)
    out = out.assign_coords(config=np.arange(size))
    return out[list(ds.data_vars)]


def classify(
    ds: Any,
    *,
    norm_threshold: float = DEFAULT_NORM_THRESHOLD,
    overlap_tol: float = DEFAULT_OVERLAP_TOL,
    rank_tol: float = DEFAULT_RANK_TOL,
    min_fit: float = DEFAULT_MIN_FIT,
    steps: Any = None,
    instances: Any = None,
    progress: Callable[[int], None] | None = None,
) -> xr.Dataset:
    """Classify the geometry of every feature at every checkpoint and instance.

    ``ds`` is a store Dataset (``toyanalysis.open_store``), its ``W``, or a
    NumPy array ``(hidden, feature)``, ``(instance, hidden, feature)`` or
    ``(step, instance, hidden, feature)``. ``steps``: ``None``/``"all"``,
    ``"last"``, or step numbers; ``instances``: instance labels (default all).
    The thresholds are described in the module docstring and ``docs/classify.md``.

    Returns a Dataset with dims ``(step, instance, feature, config)``:
    ``kind``, ``component`` (the index along ``config`` of the feature's
    configuration, -1 for unlearned), ``norm``, ``dimensionality``,
    ``interference`` per feature; ``dimensions_per_feature`` and ``summary``
    per checkpoint; ``config_kind``, ``config_n_features``, ``config_n_dims``,
    ``config_fit`` per configuration (a connected component of the overlap
    graph; padded with ``""``, 0, 0, NaN; ordered by decreasing size, then
    smallest feature); the input's
    step, instance and feature coordinates (density, importance, seed, sweep
    labels), ``loss`` when the store has it, and the thresholds in ``attrs``.

    >>> import numpy as np
    >>> from toyanalysis import testing
    >>> W = testing.tegum("digon", "digon", "dedicated", dead=1)   # 5 features in 3-D
    >>> str(classify(W)["summary"].item())
    '2 digon + 1 dedicated + 1 unlearned'
    """
    return concat_blocks(
        iter_classify(
            ds,
            norm_threshold=norm_threshold,
            overlap_tol=overlap_tol,
            rank_tol=rank_tol,
            min_fit=min_fit,
            steps=steps,
            instances=instances,
            progress=progress,
        )
    )


def concat_blocks(blocks: Any) -> xr.Dataset:
    """Join the blocks of :func:`iter_classify` along ``step`` (padding ``config``)."""
    import xarray as xr

    blocks = list(blocks)
    if not blocks:
        raise StoreError("nothing to classify: the selection has no steps")
    if len(blocks) == 1:
        return blocks[0]
    size = max(b.sizes["config"] for b in blocks)
    blocks = [_pad_components(b, size) for b in blocks]
    return xr.concat(
        blocks,
        dim="step",
        data_vars="minimal",
        coords="minimal",
        compat="override",
        join="override",
    )


# --------------------------------------------------------------------------- tables and records


def _instance_columns(result: xr.Dataset) -> dict[str, np.ndarray]:
    """1-D instance coordinates (sweep labels first, then seed and the rest)."""
    sweep = [s for s in result.attrs.get("sweep", []) if s in result.coords]
    names = sweep + sorted(
        str(name)
        for name, c in result.coords.items()
        if c.dims == ("instance",) and name != "instance" and name not in sweep
    )
    return {name: result[name].values for name in names}


def _feature_columns(result: xr.Dataset) -> dict[str, np.ndarray]:
    """(instance, feature) coordinates such as density and importance, as (I, n) arrays, by name."""
    names = sorted(
        str(n) for n, c in result.coords.items() if set(c.dims) == {"instance", "feature"}
    )
    return {name: result[name].transpose("instance", "feature").values for name in names}


def _per_feature_config(result: xr.Dataset) -> dict[str, np.ndarray]:
    """Each feature's component size, dims and fit, ``(S, I, n)``; 0/0/NaN when unlearned."""
    component = result["component"].transpose("step", "instance", "feature").values
    index = np.maximum(component, 0).astype(np.int64)
    learned = component >= 0
    out = {}
    for name, fill in (("config_n_features", 0), ("config_n_dims", 0), ("config_fit", np.nan)):
        values = result[name].transpose("step", "instance", "config").values
        if values.shape[-1] == 0:
            out[name] = np.full(component.shape, fill, dtype=values.dtype)
            continue
        taken = np.take_along_axis(values, index, axis=-1)
        out[name] = np.where(learned, taken, fill)
    return out


def to_frame(result: xr.Dataset) -> pd.DataFrame:
    """A tidy table of a :func:`classify` result: one row per (step, instance, feature).

    Columns: ``instance``, ``step``, ``feature``, the instance coordinates
    (sweep labels, ``seed``), the per-feature coordinates (``density``,
    ``importance``), ``kind``, ``component``, ``n_features``, ``n_dims`` and
    ``fit`` of the feature's configuration, ``norm``, ``dimensionality``,
    ``interference``, ``dimensions_per_feature``, ``summary`` and ``loss``
    (when present).

    >>> from toyanalysis import testing
    >>> frame = to_frame(classify(testing.tegum("triangle", dead=1)))
    >>> frame["kind"].tolist(), frame["n_dims"].tolist()
    (['triangle', 'triangle', 'triangle', 'unlearned'], [2, 2, 2, 0])
    """
    import pandas as pd

    S, n_inst, n = (result.sizes[d] for d in ("step", "instance", "feature"))
    rows = S * n_inst * n

    def per_step(values: np.ndarray) -> np.ndarray:  # (S,) -> rows
        return np.repeat(values, n_inst * n)

    def per_instance(values: np.ndarray) -> np.ndarray:  # (n_inst,) -> rows
        return np.tile(np.repeat(values, n), S)

    def per_checkpoint(values: np.ndarray) -> np.ndarray:  # (S, n_inst) -> rows
        return np.repeat(values.reshape(S * n_inst), n)

    def per_feature(values: np.ndarray) -> np.ndarray:  # (S, n_inst, n) -> rows
        return values.reshape(rows)

    columns: dict[str, Any] = {
        "instance": per_instance(result["instance"].values),
        "step": per_step(result["step"].values),
        "feature": np.tile(result["feature"].values, S * n_inst),
    }
    for name, values in _instance_columns(result).items():
        columns[name] = per_instance(values)
    for name, values in _feature_columns(result).items():
        columns[name] = np.tile(values.reshape(n_inst * n), S)
    config = _per_feature_config(result)

    def sif(name: str) -> np.ndarray:
        return result[name].transpose("step", "instance", "feature").values

    columns["kind"] = pd.Categorical(per_feature(sif("kind")))
    columns["component"] = per_feature(sif("component"))
    columns["n_features"] = per_feature(config["config_n_features"])
    columns["n_dims"] = per_feature(config["config_n_dims"])
    columns["fit"] = per_feature(config["config_fit"])
    for name in ("norm", "dimensionality", "interference"):
        columns[name] = per_feature(sif(name))
    columns["dimensions_per_feature"] = per_checkpoint(
        result["dimensions_per_feature"].transpose("step", "instance").values
    )
    columns["summary"] = pd.Categorical(
        per_checkpoint(result["summary"].transpose("step", "instance").values)
    )
    if "loss" in result.data_vars:
        columns["loss"] = per_checkpoint(result["loss"].transpose("step", "instance").values)
    return pd.DataFrame(columns)


def _number(value: Any) -> float | None:
    """A JSON number: null when not finite; float32 values keep their short form."""
    value = float(str(value)) if isinstance(value, np.float32) else float(value)
    return value if math.isfinite(value) else None


def _scalar(value: Any) -> Any:
    """A JSON value: NumPy scalars as Python ones, a non-finite float as null."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_records(result: xr.Dataset) -> list[dict[str, Any]]:
    """The JSON form of a :func:`classify` result: one record per (step, instance).

    Each record: ``step``, ``instance``, ``coords`` (the instance's sweep
    labels, seed, ...), ``summary``, ``dimensions_per_feature``, ``loss``
    (when present), ``configurations`` (each: ``kind``, ``features``,
    ``n_features``, ``n_dims``, ``fit``) and ``features`` (each: ``feature``,
    ``norm``, ``dimensionality``, ``interference``, ``kind``,
    ``configuration`` (index into ``configurations`` or null), plus
    ``density``/``importance`` when known). Non-finite numbers become null.
    The schema is in ``docs/classify.md``.

    >>> from toyanalysis import testing
    >>> record = to_records(classify(testing.polytope("digon")))[0]
    >>> record["summary"], record["configurations"][0]["features"]
    ('digon', [0, 1])
    """
    r = result.transpose("step", "instance", "feature", "config")
    steps = r["step"].values
    instances = r["instance"].values
    features = r["feature"].values.tolist()
    instance_cols = _instance_columns(r)
    feature_cols = _feature_columns(r)
    kind = r["kind"].values
    component = r["component"].values
    norm, dim, inter = (r[v].values for v in ("norm", "dimensionality", "interference"))
    dstar, summary = r["dimensions_per_feature"].values, r["summary"].values
    loss = r["loss"].values if "loss" in r.data_vars else None
    ck, cn, cd, cf = (
        r[v].values for v in ("config_kind", "config_n_features", "config_n_dims", "config_fit")
    )
    records = []
    for s, step in enumerate(steps.tolist()):
        for i, instance in enumerate(instances.tolist()):
            members: dict[int, list[Any]] = {}
            for f, c in enumerate(component[s, i].tolist()):
                if c >= 0:
                    members.setdefault(c, []).append(features[f])
            configs = [
                {
                    "kind": str(ck[s, i, c]),
                    "features": members.get(c, []),
                    "n_features": int(cn[s, i, c]),
                    "n_dims": int(cd[s, i, c]),
                    "fit": _number(cf[s, i, c]),
                }
                for c in range(ck.shape[-1])
                if cn[s, i, c] > 0
            ]
            feats = []
            for f, label in enumerate(features):
                c = int(component[s, i, f])
                entry = {
                    "feature": label,
                    "kind": str(kind[s, i, f]),
                    "configuration": c if c >= 0 else None,
                    "norm": _number(norm[s, i, f]),
                    "dimensionality": _number(dim[s, i, f]),
                    "interference": _number(inter[s, i, f]),
                }
                for name, values in feature_cols.items():
                    entry[name] = _scalar(values[i, f])
                feats.append(entry)
            record: dict[str, Any] = {
                "step": step,
                "instance": instance,
                "coords": {name: _scalar(values[i]) for name, values in instance_cols.items()},
                "summary": str(summary[s, i]),
                "dimensions_per_feature": _number(dstar[s, i]),
            }
            if loss is not None:
                record["loss"] = _number(loss[s, i])
            record["configurations"] = configs
            record["features"] = feats
            records.append(record)
    return records


_register_builtins()
