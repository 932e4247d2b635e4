"""The expected loss of checkpoints (toyanalysis.evaluation.expected_loss): exact over activity
patterns and importance-sampled, against Monte Carlo and the closed forms that exist."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from toyanalysis import models
from toyanalysis.config import FeatureSet, RunConfig, SweepAxis
from toyanalysis.data import Sampler
from toyanalysis.errors import ConfigError, StoreError
from toyanalysis.evaluation import activity_patterns, expected_loss, quadrature

SETS = (
    FeatureSet(kind="correlated", features=(0, 1)),
    FeatureSet(kind="anticorrelated", features=(2, 3)),
)
# every model and every data mode of toyanalysis.data
CASES = {
    "relu_output": RunConfig(n_features=3, n_hidden=2, density=0.3, importance=0.8),
    "linear": RunConfig(n_features=3, n_hidden=2, model="linear", density=0.5),
    "hidden_relu": RunConfig(n_features=4, n_hidden=2, model="hidden_relu", density=0.4),
    "abs": RunConfig(n_features=3, n_hidden=4, model="abs", density=0.5),
    "one_hot": RunConfig(n_features=6, n_hidden=2, one_hot=True),
    "sets": RunConfig(n_features=4, n_hidden=2, density=0.2, sets=SETS),
}


def store(config, params, steps=(0,)):
    """A store-shaped Dataset of ``params`` (``name: (step, instance, ...)``) with its config."""
    import xarray as xr

    dims = {"W": ("hidden", "feature"), "W_out": ("feature", "hidden"), "b": ("feature",)}
    data = {k: (("step", "instance", *dims[k]), np.asarray(v)) for k, v in params.items()}
    coords = {
        "step": np.asarray(steps),
        "instance": np.arange(config.n_instances),
        "feature": np.arange(config.n_features),
    }
    return xr.Dataset(data, coords=coords, attrs={"config": config.to_json()})


def random_store(config, seed=0, steps=2):
    """``steps`` random checkpoints (initialisations of other seeds, biases shifted)."""
    drawn = [models.init_params(config.override(seed=seed + s)) for s in range(steps)]
    params = {k: np.stack([p[k].numpy() for p in drawn]) for k in drawn[0]}
    params["b"] = params["b"] + 0.1
    return store(config, params, steps=range(steps))


def monte_carlo(ds, config, samples=1 << 18):
    """Plain Monte Carlo mean and standard error ``(step, instance)`` from the training sampler."""
    x = Sampler(config.override(seed=99), batch_size=samples).sample()
    importance = torch.tensor(config.instance_importance(), dtype=torch.float32)
    means, errors = [], []
    for t in range(ds.sizes["step"]):
        params = {k: torch.tensor(ds[k].values[t]) for k in ("W", "b", "W_out") if k in ds}
        err = models.forward(config.model, params, x) - models.target(config.model, x)
        per = (importance[:, :, None] * err.square()).mean(dim=1).double().numpy()
        means.append(per.mean(axis=1))
        errors.append(per.std(axis=1) / np.sqrt(samples))
    return np.array(means), np.array(errors)


@pytest.mark.parametrize("case", sorted(CASES))
def test_exact_agrees_with_monte_carlo_and_the_sampled_estimator(case):
    config = CASES[case]
    ds = random_store(config)
    exact = expected_loss(ds, method="exact")
    assert exact.attrs["method"] == "exact" and exact["loss"].dims == ("step", "instance")
    mc, se = monte_carlo(ds, config)
    assert np.all(np.abs(exact["loss"].values - mc) < 4.5 * se + 1e-6)
    assert float(exact["error"].max()) < 1e-3 * float(exact["loss"].min())
    sampled = expected_loss(ds, method="sampled", samples=1 << 16)
    z = np.abs(sampled["loss"].values - exact["loss"].values) / sampled["error"].values
    assert sampled.attrs["method"] == "sampled" and float(z.max()) < 4.5


def test_patterns_of_every_data_mode():
    masks, p = activity_patterns(CASES["sets"])
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    # correlated pair together; the anticorrelated pair never both
    assert all(m[0] == m[1] and not (m[2] and m[3]) for m in masks) and len(masks) == 6
    masks, p = activity_patterns(CASES["one_hot"])
    assert masks.sum(axis=1).tolist() == [1] * 6 and np.allclose(p, 1 / 6)
    with pytest.raises(ConfigError, match="activity patterns"):
        activity_patterns(RunConfig(n_features=20, n_hidden=2), max_patterns=1000)
    nodes, weights = quadrature(3, signed=True)
    assert nodes.min() < 0 < nodes.max() and np.isclose(weights @ np.abs(nodes), 0.5)


def test_linear_model_closed_form():
    config = RunConfig(n_features=3, n_hidden=2, model="linear", density=0.3, seeds=2)
    ds = random_store(config, steps=1)
    W, b = ds["W"].values[0].astype(np.float64), ds["b"].values[0].astype(np.float64)
    p = 0.3
    second = np.full((3, 3), p * p / 4) + np.eye(3) * (p / 3 - p * p / 4)  # E[x xᵀ]
    closed = []
    for k in range(2):
        A = np.eye(3) - W[k].T @ W[k]  # err = A x - b
        closed.append(
            np.mean(np.diag(A @ second @ A.T) - 2 * b[k] * (A @ np.full(3, p / 2)) + b[k] ** 2)
        )
    np.testing.assert_allclose(expected_loss(ds)["loss"].values[0], closed, rtol=1e-5)


def test_two_features_in_one_dimension_closed_forms():
    """n=2, m=1: feature 0 dedicated (feature 1 unlearned, its bias its mean) against the
    antipodal pair, whose errors are min(x0, x1) when both are active."""
    densities, ratio = (0.02, 0.1, 0.3, 0.6, 0.9), 0.5
    config = RunConfig(
        n_features=2,
        n_hidden=1,
        importance=(1.0, ratio),
        sweep=(SweepAxis(name="p", target="density", values=densities),),
        seeds=2,
    )
    p = np.repeat(densities, 2)
    W = np.tile(np.array([[[1.0, 0.0]], [[1.0, -1.0]]], dtype=np.float32), (5, 1, 1))
    b = np.zeros((10, 2), dtype=np.float32)
    b[0::2, 1] = p[0::2] / 2
    result = expected_loss(store(config, {"W": W[None], "b": b[None]}))
    loss, error = result["loss"].values[0], result["error"].values[0]
    dedicated = ratio * (p / 3 - p * p / 4) / 2
    antipodal = p * p * (1 + ratio) / 6 / 2
    np.testing.assert_allclose(loss[0::2], dedicated[0::2], rtol=1e-5)
    # the kink min(x0, x1) crosses the panels diagonally: the error estimate covers it
    np.testing.assert_allclose(loss[1::2], antipodal[1::2], rtol=1e-3)
    assert (np.abs(loss - np.where(W[:, 0, 1] < 0, antipodal, dedicated)) <= error + 1e-9).all()
    # the regions: antipodal wins exactly where its closed form does
    assert ((loss[1::2] < loss[0::2]) == (antipodal < dedicated)[0::2]).all()


def _kgon_loss(theta, k, nodes, weights):
    """Reference loss of a k-gon of radius r (bias b) and 6 - k dead features (bias c), n=6,
    m=2, one-hot data: a plain torch sum over the active feature, quadrature over its value."""
    r, b, c = theta
    angle = torch.arange(k, dtype=torch.float64) * 2 * torch.pi / k
    W = torch.cat([torch.stack([angle.cos(), angle.sin()]) * r, torch.zeros(2, 6 - k)], dim=1)
    bias = torch.cat([b.expand(k), c.expand(6 - k)])
    total = torch.zeros((), dtype=torch.float64)
    for i in range(6):
        out = torch.relu((W.T @ W)[:, i : i + 1] * nodes[None] + bias[:, None])
        target = torch.zeros_like(out)
        target[i] = nodes
        total = total + ((out - target) ** 2).mean(dim=0) @ weights / 6
    return total


def _critical(k):
    nodes, weights = (torch.tensor(v) for v in quadrature(256, signed=False))
    theta = torch.tensor([1.0, 0.0, 0.05], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [theta], max_iter=200, tolerance_grad=1e-12, line_search_fn="strong_wolfe"
    )

    def closure():
        opt.zero_grad()
        value = _kgon_loss(theta, k, nodes, weights)
        value.backward()
        return value

    for _ in range(3):
        opt.step(closure)
    return theta.detach().numpy()


def test_one_hot_k_gons_of_chen_et_al():
    """The 6-gon, 5+ and 4++ critical points of n=6, m=2 one-hot data (Chen et al. 2023):
    found by minimising over (radius, biases); the exact loss there is stationary and
    (times n: their loss sums over features) 0.04819 / 0.06180 / 0.09722."""
    config = RunConfig(n_features=6, n_hidden=2, one_hot=True, seeds=7)
    expected = {6: 0.04819, 5: 0.06180, 4: 0.09722}
    h = 1e-3
    for k, value in expected.items():
        r, b, c = _critical(k)
        shifts = [(0, 0, 0), (h, 0, 0), (-h, 0, 0), (0, h, 0), (0, -h, 0), (0, 0, h), (0, 0, -h)]
        W, bias = [], []
        for dr, db, dc in shifts:
            angle = np.arange(k) * 2 * np.pi / k
            cols = np.stack([np.cos(angle), np.sin(angle)]) * (r + dr)
            W.append(np.concatenate([cols, np.zeros((2, 6 - k))], axis=1))
            bias.append(np.r_[np.full(k, b + db), np.full(6 - k, c + dc)])
        params = {"W": np.array(W, np.float32)[None], "b": np.array(bias, np.float32)[None]}
        loss = expected_loss(store(config, params), points=4096)["loss"].values[0]
        assert round(6 * loss[0], 5) == value
        # stationary: the loss changes by O(h²) along each direction (4++ sits on a kink of
        # the bias, where the second derivative jumps), and a minimum along each
        assert np.abs(loss[1:] - loss[0]).max() / h < 1e-3
        assert (loss[1:] >= loss[0] - 1e-8).all()


def test_auto_chooses_and_errors():
    ds = random_store(RunConfig(n_features=20, n_hidden=2, density=0.05), steps=1)
    assert expected_loss(ds, samples=4096).attrs["method"] == "sampled"
    assert expected_loss(random_store(CASES["one_hot"], steps=1)).attrs["method"] == "exact"
    with pytest.raises(ConfigError, match="method"):
        expected_loss(ds, method="quadrature")
    with pytest.raises(StoreError, match="config"):
        expected_loss(ds.assign_attrs(config=None).drop_attrs())
