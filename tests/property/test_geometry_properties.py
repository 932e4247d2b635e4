"""Invariance properties of the measures and the classification (Hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toyanalysis import testing
from toyanalysis.geometry import classify
from toyanalysis.geometry._components import components_batched, components_reference, unique_rows
from toyanalysis.superposition import feature_dimensionality, feature_norms, gram, interference

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# blocks with the hidden dims they use
BLOCKS = {
    "dedicated": 1,
    "digon": 1,
    "triangle": 2,
    "pentagon": 2,
    "hexagon": 2,
    "heptagon": 2,
    "octagon": 2,
    "tetrahedron": 3,
    "square_antiprism": 3,
    "square": 2,
    "octahedron": 3,
}


@st.composite
def tegums(draw, max_dims=12):
    """A tegum product of random blocks that fits in at most ``max_dims`` dims, with dead features."""
    names = draw(st.lists(st.sampled_from(sorted(BLOCKS)), min_size=1, max_size=6))
    chosen, used = [], 0
    for name in names:
        if used + BLOCKS[name] <= max_dims:
            chosen.append(name)
            used += BLOCKS[name]
    m = draw(st.integers(used, max_dims))
    dead = draw(st.integers(0, 4))
    return chosen, testing.tegum(*chosen, n_hidden=m, dead=dead), dead


seeds = st.integers(0, 2**32 - 1)


@SETTINGS
@given(tegums(), seeds, st.floats(0.0, 0.03), st.floats(0.7, 1.0), st.floats(1.0, 1.4))
def test_random_tegums_are_labelled_whatever_the_disguise(case, seed, noise, low, high):
    """Rotation, permutation, rescaling and noise of trained-model size keep every label."""
    names, W, dead = case
    rng = np.random.default_rng(seed)
    expected = np.array(testing.tegum_kinds(*names, dead=dead))
    W = testing.rescale(testing.rotate(W, rng), low, high, rng)
    W = testing.perturb(W, noise, rng)
    W, perm = testing.permute(W, rng)
    result = classify(W)
    assert result["kind"].values.reshape(-1).tolist() == expected[perm].tolist()


@SETTINGS
@given(tegums(max_dims=8), seeds)
def test_classification_is_invariant_to_rotation_and_order(case, seed):
    """Same kinds, fits and D_i after R W P, feature for feature (up to the permutation)."""
    _, W, _ = case
    rng = np.random.default_rng(seed)
    W = testing.perturb(W, 0.05, rng)  # a generic, irregular configuration
    base = classify(W)
    moved, perm = testing.permute(testing.rotate(W, rng), rng)
    other = classify(moved)
    np.testing.assert_array_equal(
        other["kind"].values.reshape(-1), base["kind"].values.reshape(-1)[perm]
    )
    np.testing.assert_allclose(
        other["dimensionality"].values.reshape(-1),
        base["dimensionality"].values.reshape(-1)[perm],
        rtol=1e-9,
        atol=1e-12,
    )
    assert str(other["summary"].item()) == str(base["summary"].item())
    fits = np.sort(np.nan_to_num(base["config_fit"].values.reshape(-1), nan=-1))
    moved_fits = np.sort(np.nan_to_num(other["config_fit"].values.reshape(-1), nan=-1))
    np.testing.assert_allclose(moved_fits, fits, atol=1e-9)


@SETTINGS
@given(st.integers(1, 8), st.integers(1, 12), seeds)
def test_measures_are_invariant_to_rotation_and_equivariant_to_order(m, n, seed):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((m, n)) * rng.uniform(0, 2, size=n)
    R = testing.random_rotation(m, rng)
    perm = rng.permutation(n)
    moved = (R @ W)[:, perm]
    for kernel in (feature_norms, interference, feature_dimensionality):
        np.testing.assert_allclose(kernel(moved), kernel(W)[perm], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gram(moved), gram(W)[np.ix_(perm, perm)], atol=1e-12)
    dims = feature_dimensionality(W)
    assert np.all((dims >= 0) & (dims <= 1 + 1e-12))


@SETTINGS
@given(st.integers(1, 25), st.floats(0.0, 0.4), seeds)
def test_fast_components_equal_networkx_components(n, density, seed):
    rng = np.random.default_rng(seed)
    adjacency = rng.random((5, n, n)) < density
    adjacency |= adjacency.transpose(0, 2, 1)
    represented = rng.random((5, n)) < 0.85
    fast = components_batched(adjacency, represented)
    for p in range(5):
        np.testing.assert_array_equal(fast[p], components_reference(adjacency[p], represented[p]))


@SETTINGS
@given(st.lists(st.binary(min_size=0, max_size=6), min_size=1, max_size=40))
def test_unique_rows_is_exact(rows):
    width = 6
    array = np.array([list(r.ljust(width, b"\0")) for r in rows], dtype=np.uint8)
    first, inverse = unique_rows(array)
    np.testing.assert_array_equal(array[first][inverse], array)
    assert len({bytes(r) for r in array}) == len(first)
