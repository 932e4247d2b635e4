"""Property tests of neurons: the params a result records, invariances, lazy == eager."""

from __future__ import annotations

import numpy as np
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from toyanalysis.params import NeuronParams
from toyanalysis.polysemanticity import neuron_records, neurons

DIMS = ("step", "instance", "hidden", "feature")

neuron_params = st.builds(
    NeuronParams,
    dead_threshold=st.floats(min_value=0.0, max_value=2.0, allow_nan=False),
    mono_threshold=st.floats(min_value=1.0, max_value=6.0, allow_nan=False),
    feature_fraction=st.floats(min_value=1e-3, max_value=1.0, allow_nan=False),
    sign=st.sampled_from(["auto", "positive", "both"]),
)


def store(W: np.ndarray, model: str = "hidden_relu", W_out: np.ndarray | None = None) -> xr.Dataset:
    data = {"W": (DIMS, W)}
    if W_out is not None:
        data["W_out"] = (("step", "instance", "feature", "hidden"), W_out)
    return xr.Dataset(data, attrs={"model": model})


@settings(max_examples=15, deadline=None)
@given(params=neuron_params, seed=st.integers(0, 2**31 - 1))
def test_a_result_records_the_params_that_made_it(params, seed):
    W = np.random.default_rng(seed).standard_normal((1, 2, 3, 4))
    result = neurons(store(W), params)
    assert NeuronParams.from_json(result.attrs["params"]) == params
    assert result.attrs["mono_threshold"] == params.mono_threshold
    # by name or whole: the same call
    by_name = neurons(store(W), **params.to_dict())
    xr.testing.assert_identical(by_name, result)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), model=st.sampled_from(["hidden_relu", "abs"]))
def test_permuting_neurons_and_features_permutes_the_result(seed, model):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((2, 3, 5, 4))
    W_out = rng.standard_normal((2, 3, 4, 5)) if model == "abs" else None
    hp, fp = rng.permutation(5), rng.permutation(4)
    base = neurons(store(W, model, W_out))
    W_moved = W[:, :, hp][:, :, :, fp]
    out_moved = None if W_out is None else W_out[:, :, fp][:, :, :, hp]
    moved = neurons(store(W_moved, model, out_moved))
    for name in ("strength", "score"):  # sums in another order: equal to rounding
        np.testing.assert_allclose(moved[name].values, base[name].values[:, :, hp], rtol=1e-12)
    for name in ("label", "n_features"):
        np.testing.assert_array_equal(moved[name].values, base[name].values[:, :, hp])
    np.testing.assert_array_equal(moved["drives"].values, base["drives"].values[:, :, hp][..., fp])
    np.testing.assert_array_equal(moved["n_neurons"].values, base["n_neurons"].values[..., fp])
    for name in ("n_positive", "n_negative", "n_writers", "n_foreign", "feature_label"):
        np.testing.assert_array_equal(moved[name].values, base[name].values[..., fp])
    np.testing.assert_array_equal(moved["agrees"].values, base["agrees"].values[:, :, hp])
    for name in ("monosemantic_fraction", "n_monosemantic", "n_polysemantic", "n_dead"):
        np.testing.assert_array_equal(moved[name].values, base[name].values)
    for name in ("clean_fraction", "n_crossed", "n_pair", "n_one_sided", "n_shared", "n_none"):
        np.testing.assert_array_equal(moved[name].values, base[name].values)
    # the top feature follows the features (where it is unique)
    top = base["top_feature"].values[:, :, hp]
    where = np.argsort(fp)  # old feature index -> new one
    np.testing.assert_array_equal(moved["top_feature"].values, np.where(top < 0, -1, where[top]))


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), chunk=st.integers(1, 3))
def test_lazy_result_computes_to_the_eager_one(seed, chunk):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((4, 3, 5, 6)).astype(np.float32)
    W_out = rng.standard_normal((4, 3, 6, 5)).astype(np.float32)
    importance = rng.uniform(0.01, 1.0, (3, 6))  # the output drives are weighed by it
    ds = store(W, "abs", W_out).assign_coords(importance=(("instance", "feature"), importance))
    eager = neurons(ds)
    lazy = neurons(ds.chunk({"step": chunk, "instance": 2}))
    assert lazy["score"].chunks is not None and lazy["label"].chunks is not None
    xr.testing.assert_identical(lazy.compute(), eager)
    assert neuron_records(lazy) == neuron_records(eager)
