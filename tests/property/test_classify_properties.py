"""Round trips and invariances of classify's values: its parameters, its shapes, its saved result."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toyanalysis import testing
from toyanalysis.errors import ConfigError
from toyanalysis.geometry import BUILTIN_SHAPES, ShapeRegistry, classify
from toyanalysis.params import ClassifyParams
from toyanalysis.store import open_analysis, save_analysis, write_store

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

unit = st.floats(min_value=0.0, max_value=1.0, exclude_max=True, allow_nan=False)
params = st.builds(
    ClassifyParams,
    norm_threshold=st.floats(min_value=0.0, max_value=2.0, allow_nan=False),
    overlap_tol=unit,
    rank_tol=unit,
    min_fit=st.floats(min_value=0.0, max_value=1.0, allow_nan=False),
)
seeds = st.integers(0, 2**32 - 1)
# new shapes: irregular planar fans and 3-D configurations no built-in matches
new_shapes = st.sampled_from(
    [
        np.array([[1.0, 0.6, -0.2], [0.0, 0.8, 0.98]]),
        np.array([[1.0, 0.0, 0.6, 0.5], [0.0, 1.0, 0.8, -0.5], [0.3, 0.4, 0.0, 0.7]]),
        np.array([[x, y, z] for x in (1, -1) for y in (1, -1) for z in (1, -1)], float).T,
    ]
)


@SETTINGS
@given(params, seeds)
def test_the_result_reads_back_to_the_params_that_made_it(p, seed):
    W = testing.rotate(testing.tegum("pentagon", "digon", dead=1), seed)
    result = classify(W, p)
    assert ClassifyParams.from_json(result.attrs["params"]) == p
    assert ShapeRegistry.from_json(result.attrs["shapes"]) == BUILTIN_SHAPES


@SETTINGS
@given(new_shapes, seeds, st.floats(0.5, 2.0))
def test_a_shape_is_the_same_whatever_rotation_scale_order_and_embedding(vectors, seed, scale):
    rng = np.random.default_rng(seed)
    base = BUILTIN_SHAPES.with_shape("new", vectors)
    embedded = np.vstack([vectors, np.zeros((2, vectors.shape[1]))])
    moved, _ = testing.permute(testing.rotate(embedded * scale, rng), rng)
    other = BUILTIN_SHAPES.with_shape("new", moved)
    a, b = base["new"], other["new"]
    assert (a.n_features, a.n_dims) == (b.n_features, b.n_dims)
    np.testing.assert_allclose(a.angles, b.angles, atol=1e-9)
    with pytest.raises(ConfigError, match="same as 'new'"):
        base.with_shape("again", moved)


@SETTINGS
@given(new_shapes, seeds)
def test_adding_a_shape_makes_a_new_registry_and_round_trips(vectors, seed):
    before = BUILTIN_SHAPES.to_json()
    shapes = BUILTIN_SHAPES.with_shape("new", vectors, description="made up")
    assert BUILTIN_SHAPES.to_json() == before and "new" not in BUILTIN_SHAPES
    assert shapes.names == (*BUILTIN_SHAPES.names, "new")
    assert ShapeRegistry.from_json(shapes.to_json()) == shapes
    assert shapes.without("new") == BUILTIN_SHAPES
    # the new template matches itself, disguised, and changes no built-in's answer
    W, _ = testing.permute(
        testing.rotate(np.vstack([vectors, np.zeros((1, vectors.shape[1]))]), seed), seed
    )
    assert str(classify(W, shapes=shapes)["summary"].item()) == "new"
    pentagon = testing.rotate(testing.tegum("pentagon", "digon"), seed)
    xr.testing.assert_equal(classify(pentagon, shapes=shapes)["kind"], classify(pentagon)["kind"])


@SETTINGS
@given(seeds, st.sampled_from(["last", "all", [0, 20]]))
def test_a_saved_result_reads_back_equal(seed, steps):
    rng = np.random.default_rng(seed)
    W = np.stack(
        [
            np.stack(
                [testing.rotate(testing.tegum("triangle", "digon", dead=2), rng) for _ in range(2)]
            )
            for _ in range(3)
        ]
    )
    ds = testing.as_dataset(W, steps=[0, 10, 20], sweep={"base_density": [0.1, 0.2]}, seed=[1, 2])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run.zarr"
        write_store(path, ds)
        result = classify(ds, steps=steps)
        save_analysis(path, result, "classify")
        xr.testing.assert_identical(open_analysis(path, "classify").compute(), result)
        tree = xr.open_datatree(path, engine="zarr", consolidated=False)
        assert tree.sizes["step"] == 3
