"""The local learning coefficient: known answers, the batched SGLD, diagnostics, the command.

The known answers are the k-gon critical points of the one-hot model of Chen,
Lau, Mendel, Wei and Murfet (2023), built by hand from the closed-form loss
(``toyanalysis._llc._points``): first that they are critical points with the
stated number of quadratic directions (2λ), then that SGLD at the documented
defaults finds λ within 10%.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import xarray as xr

import toyanalysis as ta
from toyanalysis._llc import (
    KNOWN_POINTS,
    LLCParams,
    LLCWarning,
    gon_loss,
    gon_norm_bias,
    gon_weights,
    known_point_store,
    llc_by_phase,
)
from toyanalysis.errors import ConfigError
from toyanalysis.models import loss_and_grads


def _quadrature(n: int, per_feature: int) -> torch.Tensor:
    """One-hot inputs on a midpoint grid of t: the batch mean is the exact expected loss."""
    t = (torch.arange(per_feature, dtype=torch.float64) + 0.5) / per_feature
    x = torch.zeros(1, n, n * per_feature, dtype=torch.float64)
    for i in range(n):
        x[0, i, i * per_feature : (i + 1) * per_feature] = t
    return x


def _exact(point, flat: torch.Tensor, x: torch.Tensor) -> tuple[float, torch.Tensor]:
    n = point.n_features
    params = {"W": flat[: 2 * n].reshape(1, 2, n), "b": flat[2 * n :].reshape(1, n)}
    value, grads = loss_and_grads("relu_output", params, x, torch.ones(1, n, dtype=x.dtype))
    return float(value), torch.cat([grads["W"].reshape(-1), grads["b"].reshape(-1)])


def _flat(point, angle: float = 0.0) -> torch.Tensor:
    W, b = gon_weights(point, angle)
    return torch.tensor(np.concatenate([W.ravel(), b]), dtype=torch.float64)


@pytest.mark.parametrize("name", list(KNOWN_POINTS))
def test_known_points_are_critical_with_2_lambda_quadratic_directions(name):
    point = KNOWN_POINTS[name]
    x = _quadrature(point.n_features, 50_000)
    w = _flat(point)
    value, grad = _exact(point, w, x)
    a, b = gon_norm_bias(point.k)
    dead = {"negative": -1.0, "positive": 1 / (2 * point.n_features), "none": 0.0}
    assert value == pytest.approx(
        gon_loss(point.n_features, point.k, a, b, dead[point.dead_bias]), rel=1e-6
    )
    assert float(grad.abs().max()) < 1e-6  # a critical point of the exact loss
    h = 1e-4  # Hessian by central differences of the exact gradient
    rows = [
        (_exact(point, w + h * e, x)[1] - _exact(point, w - h * e, x)[1]) / (2 * h)
        for e in torch.eye(w.numel(), dtype=w.dtype)
    ]
    eigenvalues = torch.linalg.eigvalsh((torch.stack(rows) + torch.stack(rows).T) / 2)
    assert float(eigenvalues.min()) > -1e-4  # a minimum, not a saddle
    assert int((eigenvalues > 1e-3).sum()) == 2 * point.llc  # the rest are below 1e-4


def test_gon_norm_bias_minimises_the_closed_form():
    for k in (5, 6):
        a, b = gon_norm_bias(k)
        best = gon_loss(6, k, a, b, -1.0)
        for da, db in [(1e-3, 0), (-1e-3, 0), (0, 1e-3), (0, -1e-3)]:
            assert gon_loss(6, k, a + da, b + db, -1.0) > best


@pytest.mark.parametrize("names", [["5-gon", "5+", "6-gon"], ["pentagon-5"]])
def test_llc_of_known_points_within_10_percent_at_the_defaults(names):
    result = ta.llc(known_point_store(names, instances=3))
    per_point = result["chain_llc"].isel(step=0).groupby("point").mean(...)
    for name in names:
        measured, expected = float(per_point.sel(point=name)), KNOWN_POINTS[name].llc
        assert measured == pytest.approx(expected, rel=0.10), (name, measured)
    assert not result["unreliable"].any()
    assert int(result["n_divergent"].sum()) == 0


def test_result_layout_and_params_round_trip():
    ds = known_point_store("6-gon", instances=2)
    result = ta.llc(ds, chains=3, burn_in=10, draws=20, block_mb=0.01)  # several blocks
    assert result["llc"].dims == ("step", "instance")
    assert result["loss_trace"].dims == ("step", "instance", "chain", "draw")
    assert result["loss_trace"].shape == (1, 2, 3, 20)
    params = LLCParams.from_json(result.attrs["params"])
    assert params == LLCParams(chains=3, burn_in=10, draws=20, block_mb=0.01)
    assert result.attrs["nbeta"] == pytest.approx(1e6 / math.log(1e6))
    nbeta = result.attrs["nbeta"]
    chain = nbeta * (result["loss_trace"].astype(float).mean("draw") - result["reference_loss"])
    np.testing.assert_allclose(chain, result["chain_llc"], rtol=1e-5, atol=1e-3)
    assert ds.attrs["model"] == "relu_output" and "llc" not in ds  # input untouched


def test_nbeta_default_and_override():
    assert LLCParams(n=1000).inverse_temperature() == pytest.approx(1000 / math.log(1000))
    assert LLCParams(nbeta=50.0).inverse_temperature() == 50.0
    with pytest.raises(ConfigError, match="epsilon"):
        LLCParams(epsilon=0.0)


def test_divergent_chains_are_flagged_dropped_and_counted():
    ds = known_point_store("5-gon")
    with pytest.warns(LLCWarning, match="divergent chains dropped"):
        result = ta.llc(ds, epsilon=0.5, chains=3, burn_in=5, draws=20)
    assert int(result["n_divergent"].sum()) == 3
    assert bool(result["unreliable"].all()) and np.isnan(result["llc"]).all()


def test_a_saddle_drifts_down_and_is_flagged():
    # the 6-gon shrunk towards the origin is not a critical point: SGLD finds lower loss
    ds = known_point_store("6-gon")
    ds["W"] = ds["W"] * 0.7
    with pytest.warns(LLCWarning):
        result = ta.llc(ds, chains=2, burn_in=0, draws=200, gamma=1.0)
    assert bool(result["divergent"].all()) and bool(result["unreliable"].all())


def test_a_store_without_config_is_refused():
    ds = known_point_store("5-gon")
    del ds.attrs["config"]
    with pytest.raises(ConfigError, match="toyanalysis ingest --config"):
        ta.llc(ds)


@pytest.mark.parametrize(
    "config",
    [
        ta.RunConfig(n_features=6, n_hidden=2, one_hot=True),
        ta.RunConfig(n_features=4, n_hidden=2, density=0.3, model="abs"),
        ta.RunConfig(
            n_features=4,
            n_hidden=2,
            density=0.2,
            sets=(
                ta.FeatureSet(kind="correlated", features=(0, 1)),
                ta.FeatureSet(kind="anticorrelated", features=(2, 3)),
            ),
        ),
    ],
)
def test_row_sampler_draws_the_run_distribution(config):
    from toyanalysis._llc._sgld import RowSampler
    from toyanalysis.data import Sampler

    reference = Sampler(config, batch_size=40_000).sample()[0].numpy()
    gen = torch.Generator().manual_seed(1)
    density = config.instance_density()[[0, 0]]
    ours = RowSampler(config, density, gen, torch.device("cpu")).sample(40_000).numpy()
    for rows in ours:
        np.testing.assert_allclose((rows != 0).mean(1), (reference != 0).mean(1), atol=0.01)
        np.testing.assert_allclose(np.abs(rows).mean(1), np.abs(reference).mean(1), atol=0.01)
        np.testing.assert_allclose(rows.mean(1), reference.mean(1), atol=0.01)
        together = lambda x: ((x[0] != 0) & (x[1] != 0)).mean()  # noqa: E731
        assert together(rows) == pytest.approx(together(reference), abs=0.01)


@pytest.fixture(scope="module")
def onehot_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("llc") / "onehot.zarr"
    config = ta.preset("onehot-6-2").override(steps=200, record="every:100", seeds=2)
    ta.train(config, path)
    return path


def test_trained_store_selection_and_save(onehot_store, cli):
    result = cli(
        "llc",
        onehot_store,
        "--step",
        "100",
        "--step",
        "200",
        "--instance",
        "1",
        "--draws",
        "30",
        "--burn-in",
        "5",
        "--chains",
        "2",
        "--save",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [(r["step"], r["instance"]) for r in doc["estimates"]] == [(100, 1), (200, 1)]
    assert doc["params"]["draws"] == 30 and doc["nbeta"] > 0
    saved = xr.open_zarr(onehot_store / "analysis" / "llc", consolidated=False)
    assert saved["llc"].shape == (2, 1) and saved["loss_trace"].shape == (2, 1, 2, 30)
    from toyanalysis.store import open_analysis

    assert open_analysis(onehot_store, "llc")["chain_llc"].dims == ("step", "instance", "chain")
    tree = xr.open_datatree(onehot_store, engine="zarr", consolidated=False)
    assert tree["analysis/llc"]["llc"].shape == (2, 1)


def test_cli_csv_and_one_line_errors(onehot_store, cli, tmp_path):
    out = tmp_path / "llc.csv"
    result = cli(
        "llc",
        onehot_store,
        "--step",
        "200",
        "--draws",
        "10",
        "--burn-in",
        "0",
        "--format",
        "csv",
        "-o",
        out,
    )
    assert result.exit_code == 0
    header = out.read_text().splitlines()[0].split(",")
    assert header[:2] == ["step", "instance"] and {"llc", "llc_se", "unreliable"} <= set(header)
    for args, message in [
        (("--step", "150"), "step 150 is not recorded"),
        (("--gamma", "-1"), "(--gamma)"),
        (("--gradient", "exact"), "exact"),
    ]:
        bad = cli("llc", onehot_store, *args)
        assert bad.exit_code != 0 and message in bad.output + bad.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu_statistically():
    ds = known_point_store("6-gon", instances=2)
    gpu = ta.llc(ds, device="cuda", chains=8)
    cpu = ta.llc(ds, chains=8)
    assert float(gpu["llc"].mean()) == pytest.approx(float(cpu["llc"].mean()), rel=0.1)


def test_llc_by_phase_on_a_constructed_case():
    steps = np.array([0, 100, 200, 300, 400, 500])
    phase_index = np.array([[0, 0], [0, 0], [-1, 0], [1, 1], [1, 1], [1, 1]])
    phases = xr.Dataset(
        {
            "phase_index": (("step", "instance"), phase_index),
            "phase_summary": ("phase", ["4-gon", "5-gon", "4-gon", "6-gon"]),
        },
        coords={
            "step": steps,
            "instance": [0, 1],
            "phase_instance": ("phase", [0, 0, 1, 1]),
            "phase_start": ("phase", [0, 300, 0, 300]),
            "phase_end": ("phase", [100, 500, 200, 500]),
            "transition_instance": ("transition", [0, 1]),
            "transition_step": ("transition", [300, 300]),
        },
    )
    llc = np.array([[5.0, 6.0], [5.5, 6.0], [6.0, 6.0], [7.0, 8.5], [7.2, 8.5], [np.nan, 8.5]])
    estimates = xr.Dataset(
        {
            "llc": (("step", "instance"), llc),
            "llc_se": (("step", "instance"), np.full((6, 2), 0.1)),
        },
        coords={"step": steps, "instance": [0, 1]},
    )
    joined = llc_by_phase(phases, estimates)
    np.testing.assert_allclose(joined["phase_llc"], [5.25, 7.1, 6.0, 8.5])
    np.testing.assert_array_equal(joined["phase_llc_records"], [2, 2, 3, 3])
    np.testing.assert_allclose(joined["delta_llc"], [7.1 - 5.25, 2.5])
    np.testing.assert_allclose(joined["delta_llc_se"][1], math.hypot(0.1 / 3**0.5, 0.1 / 3**0.5))
    with pytest.raises(ConfigError, match="not a step"):
        llc_by_phase(phases, estimates.assign_coords(step=steps + 1))
