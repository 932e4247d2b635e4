"""Issue 11, point 3: tegum factors survive noise (seeded loops over many random draws).

Hand-built tegum products of the registered shapes in m = 20, randomly rotated
and permuted, each entry of W perturbed by eps * N(0, 1), columns renormalised.
A feature is right when its kind and the members of its component match the
construction.
"""

from __future__ import annotations

import numpy as np
import pytest

from toyanalysis import testing
from toyanalysis.geometry import BUILTIN_SHAPES, classify_kernel
from toyanalysis.params import ClassifyParams

M = 20
# name, hidden dimensions it takes
BLOCKS = [
    ("digon", 1),
    ("triangle", 2),
    ("pentagon", 2),
    ("tetrahedron", 3),
    ("square_antiprism", 3),
    ("dedicated", 1),
]


def random_tegum(rng: np.random.Generator) -> list[str]:
    """Random blocks filling up to M dimensions (stopping early now and then)."""
    blocks: list[str] = []
    used = 0
    while True:
        fits = [b for b in BLOCKS if used + b[1] <= M]
        if not fits:
            return blocks
        name, dims = fits[rng.integers(len(fits))]
        blocks.append(name)
        used += dims
        if rng.random() < 0.08:
            return blocks


def right_features(rng: np.random.Generator, eps: float, params: ClassifyParams) -> np.ndarray:
    """One draw: which features get their kind and their component's members right."""
    blocks = random_tegum(rng)
    W = testing.tegum(*blocks, n_hidden=M)
    kinds = np.array(testing.tegum_kinds(*blocks))
    factor = np.concatenate([[i] * testing.polytope(b).shape[1] for i, b in enumerate(blocks)])
    W, perm = testing.permute(testing.rotate(W, rng), rng)
    W = W + eps * rng.standard_normal(W.shape)
    W /= np.linalg.norm(W, axis=0)
    out = classify_kernel(W, params, BUILTIN_SHAPES)
    kind, component = out[0], out[1]
    same_factor = factor[perm][:, None] == factor[perm][None, :]
    same_component = component[:, None] == component[None, :]
    return (kind == kinds[perm]) & (same_factor == same_component).all(axis=1)


def accuracy(eps: float, draws: int, seed: int, params: ClassifyParams) -> float:
    rng = np.random.default_rng(seed)
    right = np.concatenate([right_features(rng, eps, params) for _ in range(draws)])
    return float(right.mean())


@pytest.mark.parametrize("seed", [0, 1])
def test_every_feature_is_right_at_eps_003(seed):
    assert accuracy(0.03, 100, seed, ClassifyParams()) == 1.0


def test_most_features_are_right_at_eps_006():
    # 88.4 % over 4 seeds x 200 draws (docs/classify.md); issue 11 aims at 90 %
    assert accuracy(0.06, 200, 0, ClassifyParams()) >= 0.87


def test_clean_tegum_products_are_exact():
    assert accuracy(0.0, 50, 3, ClassifyParams()) == 1.0


def test_the_plain_threshold_rule_chains_factors_at_eps_006():
    # without the split (split_max_tol <= overlap_tol) the factors merge
    assert accuracy(0.06, 30, 0, ClassifyParams(split_max_tol=0.15, rank_tol_many=0.2)) < 0.2
