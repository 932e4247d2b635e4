"""Measures against answers known by hand: norms, interference, D*, D_i, overlaps."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from toyanalysis import testing
from toyanalysis.superposition import (
    MeasureError,
    dimensions_per_feature,
    feature_dimensionality,
    feature_norms,
    gram,
    interference,
    measures,
    overlap,
)

# (name, features k, dims d): every feature of a regular configuration has D_i = d/k
POLYTOPES = [
    ("dedicated", 1, 1),
    ("digon", 2, 1),
    ("triangle", 3, 2),
    ("pentagon", 5, 2),
    ("hexagon", 6, 2),
    ("heptagon", 7, 2),
    ("octagon", 8, 2),
    ("tetrahedron", 4, 3),
    ("square_antiprism", 8, 3),
]


def _reference(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Interference and D_i with explicit loops, straight from the definitions."""
    n = W.shape[1]
    inter = np.zeros(n)
    dims = np.zeros(n)
    for i in range(n):
        norm = np.linalg.norm(W[:, i])
        if norm == 0:
            continue
        unit = W[:, i] / norm
        total = 0.0
        for j in range(n):
            term = float(unit @ W[:, j]) ** 2
            total += term
            if j != i:
                inter[i] += term
        dims[i] = norm**2 / total
    return inter, dims


@pytest.mark.parametrize(("name", "k", "d"), POLYTOPES)
def test_dimensionality_of_polytopes_is_d_over_k(name, k, d):
    W = testing.rotate(testing.tegum(name, n_hidden=d + 3), rng=k)
    np.testing.assert_allclose(feature_dimensionality(W), d / k, atol=1e-12)
    np.testing.assert_allclose(feature_norms(W), 1.0)


def test_tegum_dimensionalities_and_dead_features():
    W = testing.tegum("pentagon", "tetrahedron", "digon", "dedicated", dead=3)
    expected = [2 / 5] * 5 + [3 / 4] * 4 + [1 / 2] * 2 + [1.0] + [0.0] * 3
    np.testing.assert_allclose(feature_dimensionality(W), expected, atol=1e-12)
    assert not np.isnan(feature_dimensionality(W)).any()


def test_interference_and_dimensionality_match_loops():
    rng = np.random.default_rng(3)
    W = rng.standard_normal((4, 9))
    W[:, 2] = 0
    inter, dims = _reference(W)
    np.testing.assert_allclose(interference(W), inter, rtol=1e-12)
    np.testing.assert_allclose(feature_dimensionality(W), dims, rtol=1e-12)


def test_interference_scales_with_the_other_norms():
    # Ŵ_0 · W_1 = 2 cos 60° = 1; feature 1 sees (Ŵ_1 · W_0)² = (cos 60°)² = 1/4
    W = np.array([[1.0, 2 * np.cos(np.pi / 3)], [0.0, 2 * np.sin(np.pi / 3)]])
    np.testing.assert_allclose(interference(W), [1.0, 0.25])


def test_dimensions_per_feature():
    assert dimensions_per_feature(testing.tegum("pentagon")) == pytest.approx(2 / 5)
    assert dimensions_per_feature(testing.tegum("digon", "dedicated", dead=4)) == pytest.approx(
        2 / 3
    )
    assert dimensions_per_feature(np.eye(3, 3) * 2) == pytest.approx(0.25)
    assert dimensions_per_feature(np.zeros((2, 3))) == np.inf


def test_gram_of_unit_directions_with_zero_rows():
    W = np.array([[3.0, 0.0, -2.0], [0.0, 0.0, 0.0]])
    G = gram(W)
    np.testing.assert_allclose(G, [[1, 0, -1], [0, 0, 0], [-1, 0, 1]])


def test_kernels_take_leading_batch_axes():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((3, 2, 5, 7))
    for b in np.ndindex(3, 2):
        np.testing.assert_allclose(feature_dimensionality(W)[b], feature_dimensionality(W[b]))
        np.testing.assert_allclose(gram(W)[b], gram(W[b]))
        np.testing.assert_allclose(dimensions_per_feature(W)[b], dimensions_per_feature(W[b]))


def test_large_batches_use_the_looped_matmul_consistently():
    rng = np.random.default_rng(1)
    W = rng.standard_normal((2, 6, 80))  # n >= 64 takes the looped path
    np.testing.assert_allclose(gram(W)[1], gram(W[1]), atol=1e-12)


def test_bad_shape_raises_one_line():
    with pytest.raises(MeasureError, match=r"\(\.\.\., hidden, feature\)"):
        feature_norms(np.ones(3))


def _dataset(steps=4, instances=3, seed=0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((steps, instances, 3, 6))
    return testing.as_dataset(W, density=0.1, sweep={"base_density": np.arange(instances) * 0.1})


def test_measures_dataset_matches_kernels():
    ds = _dataset()
    out = measures(ds)
    assert set(out.data_vars) == {
        "norm",
        "interference",
        "dimensionality",
        "dimensions_per_feature",
    }
    assert out["norm"].dims == ("step", "instance", "feature")
    assert out["dimensions_per_feature"].dims == ("step", "instance")
    assert "base_density" in out.coords and "density" in out.coords
    assert "hidden" not in out.dims
    W = ds["W"].values
    np.testing.assert_allclose(out["dimensionality"].values, feature_dimensionality(W), rtol=1e-5)
    np.testing.assert_allclose(out["interference"].values, interference(W), rtol=1e-5)


def test_measures_stay_lazy_on_dask_input():
    ds = _dataset(steps=6).chunk({"step": 2})
    out = measures(ds)
    assert out["norm"].chunks is not None  # not computed yet
    eager = measures(ds.compute())
    xr.testing.assert_allclose(out.compute(), eager)


def test_overlap_dataarray():
    ds = testing.as_dataset(testing.tegum("digon", "dedicated"))
    out = overlap(ds)
    assert out.dims == ("step", "instance", "feature", "feature_j")
    np.testing.assert_allclose(out.values[0, 0], [[1, -1, 0], [-1, 1, 0], [0, 0, 1]])
    lazy = overlap(ds.chunk({"step": 1}))
    assert lazy.chunks is not None
    np.testing.assert_allclose(lazy.values, out.values)
