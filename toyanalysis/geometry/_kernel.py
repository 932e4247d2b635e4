"""The classification kernel: one stack of weight matrices in, fixed-size labels out.

:func:`classify_kernel` takes ``W`` shaped ``(..., hidden, feature)`` and returns,
per checkpoint, the kind and component of each feature, the kind, size, rank
and fit of each configuration (``config`` axis of length ``feature``: a
checkpoint has at most that many components; unused slots are padded with
``""``, 0, 0, NaN) and the one-line summary. Its outputs have sizes fixed by the
input's, so :func:`xarray.apply_ufunc` lifts it over steps and instances and
dask runs it chunk by chunk (``_lift``).

Inside, the work is batched: norms, Gram matrices, adjacency and ranks in
NumPy over the whole stack; connected components once per distinct adjacency
pattern (trajectories repeat them); summaries once per distinct count of
configurations. Each call keeps its own caches, so calls share no state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from jaxtyping import Bool, Float, Int, Shaped

from toyanalysis._checks import shape_checked
from toyanalysis.geometry._components import components_batched, unique_rows
from toyanalysis.geometry._shapes import INVALID, OTHER, UNLEARNED, Shape, ShapeRegistry, fits
from toyanalysis.params import ClassifyParams
from toyanalysis.superposition import feature_norms, matmul_tn, unit_directions

__all__ = [
    "BLOCK_BYTES",
    "INVALID_SUMMARY",
    "Vocabulary",
    "classify_kernel",
    "shape_fractions",
    "work_dtype",
    "working_bytes",
]

INVALID_SUMMARY = f"{INVALID} (non-finite weights)"


def work_dtype(dtype: Any) -> type:
    """float32 for float32/float16 weights, float64 otherwise."""
    return np.float32 if np.dtype(dtype) in (np.float32, np.float16) else np.float64


@dataclass(frozen=True)
class Vocabulary:
    """Names of kinds: the shapes, then other, unlearned, invalid and padding."""

    shapes: tuple[Shape, ...]

    @property
    def names(self) -> np.ndarray:
        return np.array([s.name for s in self.shapes] + [OTHER, UNLEARNED, INVALID, ""])

    @property
    def other(self) -> int:
        return len(self.shapes)

    @property
    def unlearned(self) -> int:
        return len(self.shapes) + 1

    @property
    def invalid(self) -> int:
        return len(self.shapes) + 2

    @property
    def pad(self) -> int:
        return len(self.shapes) + 3


def shape_fractions(shapes: ShapeRegistry) -> list[tuple[int, int]]:
    """The distinct ``d/k`` of the registered shapes, in lowest terms, as ``(d, k)``."""
    out = {
        (
            s.n_dims // math.gcd(s.n_dims, s.n_features),
            s.n_features // math.gcd(s.n_dims, s.n_features),
        )
        for s in shapes
    }
    return sorted(out, key=lambda f: -f[0] / f[1])


def _dimensionality(G: np.ndarray, norms: np.ndarray) -> np.ndarray:
    """``D_i = ‖W_i‖² / Σ_j (Ŵ_i·W_j)²`` over all features, learned or not; 0 for a zero feature."""
    squared = norms.astype(G.dtype) ** 2
    total = np.einsum("bij,bj->bi", G * G, squared)
    return np.divide(squared, total, out=np.zeros_like(total), where=total > 0)


@dataclass
class _Match:
    """The best template of ``N`` components: code, fit, worst angle error (°) and its pair."""

    kind: np.ndarray
    fit: np.ndarray
    error: np.ndarray
    pair_a: np.ndarray
    pair_b: np.ndarray

    @classmethod
    def empty(cls, N: int, other: int) -> _Match:
        return cls(
            kind=np.full(N, other, dtype=np.int64),
            fit=np.full(N, np.nan),
            error=np.full(N, np.nan),
            pair_a=np.full(N, -1, dtype=np.int64),
            pair_b=np.full(N, -1, dtype=np.int64),
        )


@dataclass
class _Block:
    """Integer codes of a block of ``B`` checkpoints (``C`` = the most components)."""

    component: np.ndarray  # (B, n) int, -1 unlearned
    kind: np.ndarray  # (B, n) codes into the vocabulary
    config_kind: np.ndarray  # (B, C) codes
    config_n_features: np.ndarray  # (B, C)
    config_n_dims: np.ndarray  # (B, C)
    config_fit: np.ndarray  # (B, C)
    config_angle_error: np.ndarray  # (B, C) degrees
    config_worst_pair: np.ndarray  # (B, C, 2) feature indices, -1 none
    fraction: np.ndarray  # (B, n, 2) nearest (d, k), 0 none
    agrees: np.ndarray  # (B, n) bool
    summary: np.ndarray  # (B,) object (str)


class _Classifier:
    """Classifies one stack of checkpoints, remembering components of seen adjacency patterns."""

    def __init__(self, params: ClassifyParams, shapes: ShapeRegistry) -> None:
        self.params = params
        self.vocab = Vocabulary(tuple(shapes))
        self._patterns: dict[bytes, np.ndarray] = {}
        self._pattern_bytes = 0
        self._summaries: dict[bytes, str] = {}
        self._other_terms: dict[tuple[int, int], int] = {}
        self.fractions = shape_fractions(shapes)

    def _labels(self, adjacency: np.ndarray, represented: np.ndarray) -> np.ndarray:
        """Component labels, computed once per distinct (represented, adjacency) pattern."""
        B = represented.shape[0]
        keys = np.concatenate(
            [np.packbits(represented, axis=-1), np.packbits(adjacency.reshape(B, -1), axis=-1)],
            axis=-1,
        )
        first, inverse = unique_rows(keys)
        raw = [keys[row].tobytes() for row in first]
        missing = [u for u, key in enumerate(raw) if key not in self._patterns]
        if missing:
            rows = first[missing]
            labels = components_batched(adjacency[rows], represented[rows])
            if self._pattern_bytes > _CACHE_BYTES:
                self._patterns = {key: self._patterns[key] for key in raw if key in self._patterns}
                self._pattern_bytes = 0
            for u, row in zip(missing, labels, strict=True):
                self._patterns[raw[u]] = row
                self._pattern_bytes += len(raw[u]) + row.nbytes
        table = np.stack([self._patterns[key] for key in raw])
        return table[inverse]

    def classify(self, W: np.ndarray, alive: np.ndarray) -> _Block:
        """``W`` is ``(B, hidden, feature)``, float32 or float64, with finite entries;
        ``alive`` ``(B, feature)`` says which features' outputs can be non-zero."""
        p = self.params
        n = W.shape[-1]
        norms = feature_norms(W)
        units = unit_directions(W, norms)
        G = matmul_tn(units, units)
        represented = (norms > p.norm_threshold) & alive
        adjacency = np.abs(G) > p.overlap_tol
        adjacency &= represented[:, :, None]
        adjacency &= represented[:, None, :]
        diag = np.arange(n)
        adjacency[:, diag, diag] = False
        labels = self._labels(adjacency, represented)
        del adjacency
        D = _dimensionality(G, norms)
        configured = self._configurations(G, units, labels, D)
        split = self._split(G, units, labels, D, configured[1])
        if split is not None:
            labels = split
            configured = self._configurations(G, units, labels, D)
        sizes, config_kind, config_dims, matches = configured
        C = sizes.shape[1]
        feature_kind = np.where(
            labels >= 0,
            np.take_along_axis(config_kind, np.maximum(labels, 0), axis=1)
            if C
            else self.vocab.unlearned,
            self.vocab.unlearned,
        )
        summary = self._summaries_for(config_kind, sizes, config_dims, n - represented.sum(axis=1))
        fraction, agrees = self._evidence(D, labels, sizes, config_dims)
        return _Block(
            labels,
            feature_kind,
            config_kind,
            sizes,
            config_dims,
            matches.fit,
            matches.error,
            np.stack([matches.pair_a, matches.pair_b], axis=-1),
            fraction,
            agrees,
            summary,
        )

    def _group_codes(
        self, labels: np.ndarray, config_kind: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each feature's component kind code and component size, ``(B, n)`` each."""
        if not config_kind.shape[1]:
            zero = np.zeros(labels.shape, dtype=np.int64)
            return zero + self.vocab.pad, zero
        index = np.maximum(labels, 0)
        sizes = np.zeros(config_kind.shape, dtype=np.int64)
        rows, cols = np.nonzero(labels >= 0)
        np.add.at(sizes, (rows, labels[rows, cols]), 1)
        kind = np.take_along_axis(config_kind, index, axis=1)
        return kind, np.where(labels >= 0, np.take_along_axis(sizes, index, axis=1), 0)

    def _split(
        self,
        G: np.ndarray,
        units: np.ndarray,
        labels: np.ndarray,
        D: np.ndarray,
        config_kind: np.ndarray,
    ) -> np.ndarray | None:
        """Tegum factors inside components, or None when no component splits.

        Components of two or more features that are ``other``, and named ones
        of three or more, are regrouped at overlap thresholds rising by
        ``split_step`` up to ``split_max_tol``. In an ``other`` component the
        groups of two or more features that are registered shapes are kept as
        components and leave the graph (with their noise edges); what is left
        stays one group (a lone feature left is ``dedicated`` by the usual
        rule); it falls apart into lone features only at ``split_lone_tol``
        or below (a triangle lifted into a cone, overlaps 0.29, stays). A named component is replaced only when all its groups are
        registered shapes (a triangle and a dedicated feature joined by noise
        look like a poor tetrahedron).
        """
        p = self.params
        kind, size = self._group_codes(labels, config_kind)
        was_named = (kind < self.vocab.other) & (size >= 3)
        todo = (labels >= 0) & (size >= 2) & ((kind == self.vocab.other) | was_named)
        steps = math.floor((p.split_max_tol - p.overlap_tol) / p.split_step + 1e-9)
        if not todo.any() or steps < 1:
            return None
        ids = labels.astype(np.int64)
        changed = np.zeros(labels.shape[0], dtype=bool)
        for level in range(1, steps + 1):
            tol = p.overlap_tol + level * p.split_step
            rows, sub, named = self._regroup(G, units, D, labels, todo, was_named, tol)
            if rows.size:
                r, c = np.nonzero(named)
                ids[rows[r], c] = level * labels.shape[1] + sub[r, c]
                changed[rows[r]] = True
                todo[rows] &= ~named
        return _canonical(ids, changed, labels) if changed.any() else None

    def _regroup(
        self,
        G: np.ndarray,
        units: np.ndarray,
        D: np.ndarray,
        labels: np.ndarray,
        todo: np.ndarray,
        was_named: np.ndarray,
        tol: float,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Components of the ``todo`` features at overlap ``tol`` in the checkpoints where
        one splits: ``(rows, their labels, which features they settle)``."""
        n = labels.shape[1]
        rows = np.flatnonzero(todo.any(axis=1))
        alive = todo[rows]
        if not rows.size:
            return rows, np.zeros((0, n), dtype=np.int64), alive
        adjacency = np.abs(G[rows]) > tol
        adjacency &= alive[:, :, None] & alive[:, None, :]
        adjacency[:, np.arange(n), np.arange(n)] = False
        sub = self._labels(adjacency, alive)
        whole = np.where(alive, labels[rows], -1)
        _, sub_size = self._group_codes(sub, np.zeros((len(rows), n), dtype=np.int64))
        _, whole_size = self._group_codes(whole, np.zeros((len(rows), n), dtype=np.int64))
        split = alive & (sub_size < whole_size)
        keep = split.any(axis=1)
        rows, sub, alive, whole, split = (
            rows[keep],
            sub[keep],
            alive[keep],
            whole[keep],
            split[keep],
        )
        if not rows.size:
            return rows, sub, split
        kind, size = self._group_codes(
            sub, self._configurations(G[rows], units[rows], sub, D[rows])[1]
        )
        shaped = split & (kind < self.vocab.other)
        # a component is replaced whole only when every one of its groups is a shape
        unshaped = np.zeros((len(rows), n + 1), dtype=np.int64)
        r, c = np.nonzero(~shaped & alive)
        np.add.at(unshaped, (r, whole[r, c]), 1)
        whole_ok = np.take_along_axis(unshaped, np.maximum(whole, 0), axis=1) == 0
        lone_ok = tol <= self.params.split_lone_tol + 1e-12
        named = np.where(
            was_named[rows], shaped & whole_ok, shaped & ((size >= 2) | (whole_ok & lone_ok))
        )
        return rows, sub, named

    def _evidence(
        self, D: np.ndarray, labels: np.ndarray, sizes: np.ndarray, dims: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each feature's nearest registered fraction ``(d, k)`` (0, 0: none within
        ``dimensionality_tol``) and whether its configuration's ``d/k`` is that value."""
        B, n = labels.shape
        fraction = np.zeros((B, n, 2), dtype=np.int64)
        agrees = np.zeros((B, n), dtype=bool)
        if not self.fractions:
            return fraction, agrees
        table = np.array(self.fractions, dtype=np.int64)
        values = table[:, 0] / table[:, 1]
        distance = np.abs(D[..., None] - values)
        nearest = distance.argmin(axis=-1)
        close = np.take_along_axis(distance, nearest[..., None], axis=-1)[..., 0]
        close = close <= self.params.dimensionality_tol
        fraction[close] = table[nearest[close]]
        if sizes.shape[1]:
            index = np.maximum(labels, 0)
            k = np.take_along_axis(sizes, index, axis=1)
            d = np.take_along_axis(dims, index, axis=1)
            agrees = close & (labels >= 0) & (d * fraction[..., 1] == k * fraction[..., 0])
        return fraction, agrees

    def _configurations(
        self, G: np.ndarray, units: np.ndarray, labels: np.ndarray, D: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, _Match]:
        """Size, kind code, rank and template match of each component, ``(B, C)`` each."""
        B, n = labels.shape
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
        config = _Match.empty(B * C, self.vocab.pad)
        grid = np.arange(B * C).reshape(B, C)
        by_size: dict[int, list[int]] = {}
        for index, shape in enumerate(self.vocab.shapes):
            by_size.setdefault(shape.n_features, []).append(index)
        for k in np.unique(sizes[sizes > 0]).tolist():
            b, c = np.nonzero(sizes == k)
            members = order[b[:, None], starts[b, c][:, None] + np.arange(k)]
            dims, match = self._match(G, units, b, members, by_size.get(k, []))
            if k == 1:  # a dimension of its own only when nothing else, learned or not, is in it
                alone = D[b, members[:, 0]] >= self.params.dedicated_min_dimensionality
                match.kind[~alone] = self.vocab.other
            config_kind[b, c] = match.kind
            config_dims[b, c] = dims
            at = grid[b, c]
            for name in ("fit", "error", "pair_a", "pair_b"):
                getattr(config, name)[at] = getattr(match, name)
        for name in ("fit", "error", "pair_a", "pair_b"):
            setattr(config, name, getattr(config, name).reshape(B, C))
        return sizes, config_kind, config_dims, config

    def _match(
        self,
        G: np.ndarray,
        units: np.ndarray,
        b: np.ndarray,
        members: np.ndarray,
        candidates: list[int],
    ) -> tuple[np.ndarray, _Match]:
        """Rank and template match of ``N`` components of the same size ``k``."""
        p = self.params
        N, k = members.shape
        m = units.shape[1]
        sub = (
            G[b[:, None, None], members[:, :, None], members[:, None, :]]
            if k <= m or candidates
            else None
        )
        if sub is not None and k <= m:
            eig = np.linalg.eigvalsh(sub)
        else:
            U = units[b[:, None, None], np.arange(m)[None, :, None], members[:, None, :]]
            eig = np.linalg.eigvalsh(np.matmul(U, np.swapaxes(U, -1, -2)))
        tol = p.rank_tol if k < 3 else p.rank_tol_many
        dims = (eig >= (tol**2) * eig[:, -1:]).sum(axis=1)
        match = _Match.empty(N, self.vocab.other)
        if candidates and sub is not None:
            self._score(match, sub, dims, members, candidates)
        return dims, match

    def _score(
        self,
        match: _Match,
        sub: np.ndarray,
        dims: np.ndarray,
        members: np.ndarray,
        candidates: list[int],
    ) -> None:
        """Fill ``match`` with the best-fitting template of each component, named if it qualifies.

        A template qualifies when its fit is at least ``min_fit``, every sorted
        pairwise angle is within ``max_angle_error`` degrees of the template's,
        and the component has no twin pair (``cos > parallel_cos``: two features
        pointing the same way) unless the template has one too.
        """
        p = self.params
        N, k = members.shape
        iu = np.triu_indices(k, 1)
        pair_cos = sub[:, iu[0], iu[1]]
        order = np.argsort(pair_cos, axis=1, kind="stable")
        cosines = np.clip(np.take_along_axis(pair_cos, order, axis=1), -1, 1)
        degrees = np.degrees(np.arccos(cosines))
        best = np.full(N, -1.0)
        for index in candidates:
            shape = self.vocab.shapes[index]
            rows = np.flatnonzero(dims == shape.n_dims)
            if rows.size == 0:
                continue
            f = fits(cosines[rows], shape)
            error = np.abs(degrees[rows] - np.degrees(shape.angles))
            worst = error.argmax(axis=1) if k > 1 else np.zeros(rows.size, dtype=np.int64)
            better = f > best[rows]
            r = rows[better]
            best[r] = f[better]
            match.fit[r] = f[better]
            match.error[r] = error[better, worst[better]] if k > 1 else 0.0
            if k > 1:
                pair = order[r, worst[better]]
                match.pair_a[r] = members[r, iu[0][pair]]
                match.pair_b[r] = members[r, iu[1][pair]]
            ok = (f[better] >= p.min_fit) & (match.error[r] <= p.max_angle_error)
            if k > 1:
                template_cos = shape.gram[np.triu_indices(k, 1)]
                if not (template_cos > p.parallel_cos).any():
                    ok &= cosines[r, -1] <= p.parallel_cos
            match.kind[r] = np.where(ok, index, self.vocab.other)

    def _other_codes(self, sizes: np.ndarray, dims: np.ndarray, is_other: np.ndarray) -> list[int]:
        """Summary term codes of ``other`` components, one per distinct ``(k, d)``."""
        pairs = list(zip(sizes[is_other].tolist(), dims[is_other].tolist(), strict=True))
        for kd in pairs:
            self._other_terms.setdefault(kd, len(self.vocab.shapes) + len(self._other_terms))
        return [self._other_terms[kd] for kd in pairs]

    def _summaries_for(
        self,
        config_kind: np.ndarray,
        sizes: np.ndarray,
        dims: np.ndarray,
        unlearned: np.ndarray,
    ) -> np.ndarray:
        """One-line summaries, once per distinct count vector."""
        B = config_kind.shape[0]
        n_named = len(self.vocab.shapes)
        real = sizes > 0
        term = config_kind.copy()
        is_other = real & (config_kind == self.vocab.other)
        if is_other.any():
            term[is_other] = self._other_codes(sizes, dims, is_other)
        lookup = {v: kd for kd, v in self._other_terms.items()}
        n_terms = n_named + len(self._other_terms)
        counts = np.zeros((B, n_terms + 1), dtype=np.int64)
        rows, cols = np.nonzero(real)
        np.add.at(counts, (rows, term[rows, cols]), 1)
        counts[:, n_terms] = unlearned
        first, inverse = unique_rows(counts)
        texts = []
        for row in counts[first]:
            key = row.tobytes()
            text = self._summaries.get(key)
            if text is None:
                text = self._summary_text(row, lookup)
                self._summaries[key] = text
            texts.append(text)
        if not B:
            return np.array([], dtype=object)
        return np.array(texts, dtype=object)[inverse.reshape(-1)]

    def _summary_text(self, counts: np.ndarray, other_terms: Mapping[int, tuple[int, int]]) -> str:
        n_named = len(self.vocab.shapes)
        terms = []
        for code in np.flatnonzero(counts[:-1]).tolist():
            if code < n_named:
                shape = self.vocab.shapes[code]
                terms.append((shape.n_features, shape.n_dims, code, shape.name))
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


def _canonical(ids: np.ndarray, changed: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Group ids relabelled 0, 1, ... by decreasing size, then smallest feature, in the
    ``changed`` rows (the others keep ``labels``); -1 stays -1."""
    out = labels.copy()
    for row in np.flatnonzero(changed).tolist():
        values, first, counts = np.unique(ids[row], return_index=True, return_counts=True)
        keep = values >= 0
        values, first, counts = values[keep], first[keep], counts[keep]
        order = np.lexsort((first, -counts))
        rank = np.empty(len(values), dtype=np.int64)
        rank[order] = np.arange(len(values))
        out[row] = np.where(ids[row] >= 0, rank[np.searchsorted(values, ids[row])], -1)
    return out


# Working memory one sub-block of checkpoints may use inside the kernel (Gram matrices
# and friends); dask runs one kernel per core at once.
BLOCK_BYTES = 32 * 2**20
# Distinct adjacency patterns remembered across sub-blocks before the cache is reset.
_CACHE_BYTES = 64 * 2**20


def working_bytes(m: int, n: int, itemsize: int) -> int:
    """Bytes one checkpoint of ``m`` hidden dims and ``n`` features holds while classified."""
    return itemsize * (5 * n * n + 8 * m * n) + 8 * 24 * n + 64


@dataclass
class _Outputs:
    """The kernel's outputs for ``B`` checkpoints, as codes, filled sub-block by sub-block."""

    kind: np.ndarray
    component: np.ndarray
    config_kind: np.ndarray
    config_n_features: np.ndarray
    config_n_dims: np.ndarray
    config_fit: np.ndarray
    config_angle_error: np.ndarray
    config_worst_pair: np.ndarray
    fraction: np.ndarray
    agrees: np.ndarray
    summary: np.ndarray

    @classmethod
    def empty(cls, B: int, n: int, vocab: Vocabulary, dtype: Any) -> _Outputs:
        return cls(
            kind=np.full((B, n), vocab.unlearned, dtype=np.int64),
            component=np.full((B, n), -1, dtype=np.int32),
            config_kind=np.full((B, n), vocab.pad, dtype=np.int64),
            config_n_features=np.zeros((B, n), dtype=np.int32),
            config_n_dims=np.zeros((B, n), dtype=np.int32),
            config_fit=np.full((B, n), np.nan, dtype=dtype),
            config_angle_error=np.full((B, n), np.nan, dtype=dtype),
            config_worst_pair=np.full((B, n, 2), -1, dtype=np.int32),
            fraction=np.zeros((B, n, 2), dtype=np.int32),
            agrees=np.zeros((B, n), dtype=bool),
            summary=np.empty(B, dtype=object),
        )

    def shaped(self, batch: tuple[int, ...], names: np.ndarray) -> Any:
        """The outputs in the kernel's order, codes as names, shaped ``(*batch, ...)``."""
        n = self.kind.shape[1]
        return (
            names[self.kind].reshape(*batch, n),
            self.component.reshape(*batch, n),
            names[self.config_kind].reshape(*batch, n),
            self.config_n_features.reshape(*batch, n),
            self.config_n_dims.reshape(*batch, n),
            self.config_fit.reshape(*batch, n),
            self.config_angle_error.reshape(*batch, n),
            self.config_worst_pair.reshape(*batch, n, 2),
            self.fraction.reshape(*batch, n, 2),
            self.agrees.reshape(*batch, n),
            self.summary.reshape(batch),
        )

    def fill(self, start: int, block: _Block) -> None:
        rows = slice(start, start + block.kind.shape[0])
        C = block.config_kind.shape[1]
        self.kind[rows] = block.kind
        self.component[rows] = block.component
        self.config_kind[rows, :C] = block.config_kind
        self.config_n_features[rows, :C] = block.config_n_features
        self.config_n_dims[rows, :C] = block.config_n_dims
        self.config_fit[rows, :C] = block.config_fit
        self.config_angle_error[rows, :C] = block.config_angle_error
        self.config_worst_pair[rows, :C] = block.config_worst_pair
        self.fraction[rows] = block.fraction
        self.agrees[rows] = block.agrees
        self.summary[rows] = block.summary


def _mark_invalid(block: _Block, bad: np.ndarray, vocab: Vocabulary) -> None:
    """Checkpoints with non-finite weights: every feature ``invalid``, no configurations."""
    block.kind[bad] = vocab.invalid
    block.component[bad] = -1
    block.config_kind[bad] = vocab.pad
    block.config_n_features[bad] = 0
    block.config_n_dims[bad] = 0
    block.config_fit[bad] = np.nan
    block.config_angle_error[bad] = np.nan
    block.config_worst_pair[bad] = -1
    block.fraction[bad] = 0
    block.agrees[bad] = False
    block.summary[bad] = INVALID_SUMMARY


def _classify_block(classifier: _Classifier, W: np.ndarray, alive: np.ndarray) -> _Block:
    """One sub-block, non-finite checkpoints marked invalid."""
    finite = np.isfinite(W).all(axis=(1, 2))
    if finite.all():
        return classifier.classify(W, alive)
    block = classifier.classify(np.where(finite[:, None, None], W, 0), alive)
    _mark_invalid(block, ~finite, classifier.vocab)
    return block


@shape_checked
def classify_kernel(
    W: Float[np.ndarray, "*batch hidden feature"],
    params: ClassifyParams,
    shapes: ShapeRegistry,
    block_bytes: int = BLOCK_BYTES,
    alive: Bool[np.ndarray, "*batch feature"] | None = None,
) -> tuple[
    Shaped[np.ndarray, "*batch feature"],
    Int[np.ndarray, "*batch feature"],
    Shaped[np.ndarray, "*batch feature"],
    Int[np.ndarray, "*batch feature"],
    Int[np.ndarray, "*batch feature"],
    Float[np.ndarray, "*batch feature"],
    Float[np.ndarray, "*batch feature"],
    Int[np.ndarray, "*batch feature pair"],
    Int[np.ndarray, "*batch feature pair"],
    Bool[np.ndarray, "*batch feature"],
    Shaped[np.ndarray, "*batch"],
]:
    """Classify every checkpoint of ``W``: kind, component, and per configuration slot
    kind, n_features, n_dims, fit, worst angle error (degrees) and the pair
    of features it is at (``(..., feature, 2)``, -1 when none), each feature's
    nearest fraction ``(d, k)`` (``(..., feature, 2)``, 0 when none) and whether
    its configuration agrees with it, then the summary (see the module docstring).

    Sub-blocks keep the working set within ``block_bytes`` and share the
    caches of adjacency patterns and summaries, so memory is bounded whatever the size of ``W``. Features not
    ``alive`` (default: all are; the bias rule) are ``unlearned``.

    >>> from toyanalysis import testing
    >>> from toyanalysis.geometry import BUILTIN_SHAPES
    >>> out = classify_kernel(testing.tegum("digon", dead=1), ClassifyParams(), BUILTIN_SHAPES)
    >>> out[0].tolist(), out[2].tolist(), str(out[10])
    (['digon', 'digon', 'unlearned'], ['digon', '', ''], '1 digon + 1 unlearned')
    """
    batch, (m, n) = W.shape[:-2], W.shape[-2:]
    dtype = work_dtype(W.dtype)
    B = int(np.prod(batch))
    flat: np.ndarray = np.asarray(W).reshape(B, m, n)
    able = np.ones((B, n), dtype=bool) if alive is None else np.asarray(alive).reshape(B, n)
    classifier = _Classifier(params, shapes)
    out = _Outputs.empty(B, n, classifier.vocab, dtype)
    rows = max(1, block_bytes // working_bytes(m, n, np.dtype(dtype).itemsize))
    for start in range(0, B, rows):
        block: np.ndarray = np.asarray(flat[start : start + rows], dtype=dtype)
        out.fill(start, _classify_block(classifier, block, able[start : start + rows]))
    return out.shaped(batch, classifier.vocab.names)
