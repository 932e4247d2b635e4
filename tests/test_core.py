"""The analysis core: parameter objects, label bookkeeping, model records, ds.tms."""

from __future__ import annotations

import json

import click
import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner
from toyanalysis_cli._params import params_from, params_options

from toyanalysis import _labels, testing
from toyanalysis.errors import ConfigError, StoreError
from toyanalysis.models import FAMILIES, family
from toyanalysis.params import (
    ClassifyParams,
    DiagramParams,
    NeuronParams,
    Params,
    PhaseParams,
    PlotParams,
)

ALL_PARAMS = (ClassifyParams, PhaseParams, DiagramParams, NeuronParams, PlotParams)


# --------------------------------------------------------------------------- parameters


@pytest.mark.parametrize("cls", ALL_PARAMS)
def test_defaults_round_trip_through_json(cls):
    params = cls()
    again = cls.from_json(params.to_json())
    assert again == params and type(again) is cls
    assert json.loads(params.to_json()) == params.to_dict()


@pytest.mark.parametrize(
    ("cls", "changes", "message"),
    [
        (ClassifyParams, {"overlap_tol": 1.0}, r"overlap_tol must be a number in \[0.0, 1.0\)"),
        (ClassifyParams, {"norm_threshold": -0.1}, "norm_threshold must be a number"),
        (ClassifyParams, {"min_fit": 1.5}, r"min_fit must be a number in \[0.0, 1.0\]"),
        (ClassifyParams, {"rank_tol": float("nan")}, "rank_tol"),
        (ClassifyParams, {"overlap_tol": "0.2"}, "overlap_tol must be a number"),
        (PhaseParams, {"min_records": 0}, "min_records must be an integer >= 1"),
        (PhaseParams, {"min_records": 2.5}, "min_records must be an integer"),
        (PhaseParams, {"min_drop": 0.0}, r"min_drop must be a number > 0.0"),
        (PhaseParams, {"eval_loss": 0}, "eval_loss must be an integer >= 1"),
        (PhaseParams, {"fraction_tol": True}, "fraction_tol must be a number"),
        (NeuronParams, {"sign": "up"}, "sign must be one of auto, positive, both"),
        (
            NeuronParams,
            {"feature_fraction": 0},
            r"feature_fraction must be a number in \(0.0, 1.0\]",
        ),
        (PlotParams, {"max_frames": 0}, "max_frames must be an integer >= 1"),
    ],
)
def test_bad_values_are_one_line_errors(cls, changes, message):
    with pytest.raises(ConfigError, match=message) as info:
        cls(**changes)
    assert "\n" not in str(info.value)


def test_boundaries_that_are_allowed():
    assert ClassifyParams(min_fit=1.0).min_fit == 1.0
    assert ClassifyParams(norm_threshold=0).norm_threshold == 0.0
    assert NeuronParams(feature_fraction=1).feature_fraction == 1.0
    assert PhaseParams(min_steps=None, eval_loss=None).min_steps is None
    assert isinstance(PhaseParams(min_records=4.0).min_records, int)


def test_nested_parameters_and_resolve():
    p = PhaseParams.resolve(None, {"overlap_tol": 0.3, "min_drop": 0.1})
    assert p.classify == ClassifyParams(overlap_tol=0.3) and p.min_drop == 0.1
    q = PhaseParams.resolve(p, {"norm_threshold": 0.4})
    assert q.classify.overlap_tol == 0.3 and q.classify.norm_threshold == 0.4 and q.min_drop == 0.1
    assert PhaseParams.resolve(p, {}) is p
    assert PhaseParams(classify={"overlap_tol": 0.2}).classify.overlap_tol == 0.2
    with pytest.raises(ConfigError, match="PhaseParams has no parameter 'overlap'"):
        PhaseParams.resolve(None, {"overlap": 0.3})
    with pytest.raises(ConfigError, match="params must be a PhaseParams"):
        PhaseParams.resolve(ClassifyParams(), {})  # type: ignore[arg-type]


def test_unknown_or_malformed_json_is_refused():
    with pytest.raises(ConfigError, match="no parameter 'gamma'"):
        ClassifyParams.from_json('{"gamma": 1}')
    with pytest.raises(ConfigError, match="not valid JSON"):
        ClassifyParams.from_json("{")
    with pytest.raises(ConfigError, match="JSON object"):
        ClassifyParams.from_json("[1]")


def test_parameters_are_frozen():
    params = ClassifyParams()
    with pytest.raises(AttributeError):
        params.overlap_tol = 0.3  # type: ignore[misc]
    assert params.replace(overlap_tol=0.3).overlap_tol == 0.3 and params.overlap_tol == 0.15


def test_every_leaf_is_listed_once_with_its_default():
    for cls in ALL_PARAMS:
        names = [path[-1] for path, _, _ in cls.options()]
        assert len(names) == len(set(names)), cls
        flat = cls().to_dict()
        for path, default, _ in cls.options():
            value = flat
            for key in path:
                value = value[key]
            assert value == default


# --------------------------------------------------------------------------- CLI options


def _command(cls: type[Params]):
    @click.command()
    @params_options(cls)
    def show(**kwargs):
        click.echo(params_from(cls, kwargs).to_json())

    return show


@pytest.mark.parametrize("cls", ALL_PARAMS)
def test_every_parameter_is_an_option(cls):
    result = CliRunner().invoke(_command(cls), ["--help"])
    for path, _, _ in cls.options():
        assert "--" + path[-1].replace("_", "-") in result.output
    assert json.loads(CliRunner().invoke(_command(cls), []).output) == cls().to_dict()


def test_options_build_the_object_and_name_the_flag():
    runner = CliRunner()
    out = runner.invoke(_command(PhaseParams), ["--overlap-tol", "0.3", "--min-records", "5"])
    assert json.loads(out.output)["classify"]["overlap_tol"] == 0.3
    bad = runner.invoke(_command(PhaseParams), ["--min-fit", "2"])
    assert bad.exit_code == 1
    assert "min_fit must be a number in [0.0, 1.0], got 2.0 (--min-fit)" in bad.output
    choice = runner.invoke(_command(NeuronParams), ["--sign", "up"])
    assert choice.exit_code == 2 and "'up' is not one of" in choice.output


# --------------------------------------------------------------------------- labels


def test_as_store_never_modifies_its_input():
    W = np.random.default_rng(0).normal(size=(2, 3, 4, 2))  # (step, instance, feature, hidden)
    ds = xr.Dataset(
        {"W": (("step", "instance", "feature", "hidden"), W)}, attrs={"sweep": ["gone"]}
    )
    before = ds.copy(deep=True)
    out = _labels.as_store(ds)
    assert out["W"].dims == _labels.WEIGHT_DIMS
    assert ds["W"].dims == ("step", "instance", "feature", "hidden")
    xr.testing.assert_identical(ds, before)
    assert ds.attrs == {"sweep": ["gone"]} and out.attrs["sweep"] == []


def test_as_store_from_arrays():
    one = _labels.as_store(testing.polytope("pentagon"))
    assert dict(one.sizes) == {"step": 1, "instance": 1, "hidden": 2, "feature": 5}
    assert one["importance"].values.tolist() == [[1.0] * 5]
    assert _labels.as_store(np.ones((3, 2, 4), dtype=int))["W"].dtype == np.float64
    with pytest.raises(ConfigError, match=r"got shape \(5,\)"):
        _labels.as_store(np.ones(5))
    with pytest.raises(StoreError, match="no variable W"):
        _labels.as_store(xr.Dataset({"V": ("x", [1.0])}))
    with pytest.raises(StoreError, match="variable W has dims"):
        _labels.as_store(xr.DataArray(np.ones((2, 2)), dims=("a", "feature")))


def test_select_steps_and_instances():
    ds = testing.as_dataset(np.zeros((3, 4, 2, 5)), steps=[0, 100, 200])
    assert _labels.select(ds, steps="last")["step"].values.tolist() == [200]
    assert _labels.select(ds, steps=[100, 0], instances=[3, 1])["instance"].values.tolist() == [
        3,
        1,
    ]
    assert _labels.select(ds, steps=100)["step"].values.tolist() == [100]
    assert _labels.select(ds) is ds
    with pytest.raises(
        ConfigError, match=r"step 150 is not recorded \(the store has steps 0, 100, 200\)"
    ):
        _labels.select(ds, steps=[150])
    with pytest.raises(ConfigError, match=r"instance 7 is not in the store \(instances: 0..3\)"):
        _labels.select(ds, instances=7)
    with pytest.raises(ConfigError, match="steps must be 'last', 'all' or step numbers"):
        _labels.select(ds, steps="first")


def test_describe_steps():
    assert _labels.describe_steps(np.array([], dtype=int)) == "no steps"
    assert _labels.describe_steps(np.arange(0, 4000, 100)) == "40 steps 0..3900 every 100"
    assert _labels.describe_steps(np.array([0, 1, 5, 9, 20, 30, 50])) == "7 steps 0..50"


def test_instance_coords_put_the_sweep_first():
    ds = testing.as_dataset(
        np.zeros((3, 2, 4)), sweep={"zeta": [1.0, 2.0, 3.0], "alpha": [0, 0, 1]}, seed=[5, 6, 7]
    )
    assert list(_labels.instance_coords(ds)) == ["zeta", "alpha", "seed"]
    assert _labels.sweep_names(ds) == ["zeta", "alpha"]
    assert list(_labels.feature_coords(ds)) == ["importance"]


def test_json_scalars():
    assert _labels.json_number(np.float32(0.1)) == 0.1
    assert _labels.json_number(np.inf) is None
    assert _labels.json_scalar(np.bool_(True)) is True
    assert _labels.json_scalar(float("nan")) is None
    assert _labels.json_scalar("x") == "x"


# --------------------------------------------------------------------------- model families


def test_model_families_are_records():
    assert tuple(FAMILIES) == ("relu_output", "linear", "hidden_relu", "abs")
    assert [f.name for f in FAMILIES.values() if f.privileged] == ["hidden_relu", "abs"]
    assert family("abs").parameters == ("W", "W_out", "b")
    assert family("hidden_relu").neuron_sign == "positive" and family("abs").neuron_sign == "both"
    assert family("linear").neuron_sign is None and not family("linear").output_relu
    assert family(family("abs")) is family("abs")
    with pytest.raises(ConfigError, match="unknown model 'mlp'"):
        family("mlp")
    ds = testing.as_dataset(np.zeros((2, 3)), model="abs")
    assert _labels.model_of(ds).name == "abs" and _labels.model_of(ds, "linear").name == "linear"


# --------------------------------------------------------------------------- accessor


def test_accessor_is_a_facade_over_the_functions():
    import toyanalysis as ta

    W = testing.tegum("digon", "dedicated", dead=1)
    ds = testing.as_dataset(W, sweep={"base_density": [0.1]})
    assert ds.tms.sweep == ["base_density"] and ds.tms.model.name == "relu_output"
    assert list(ds.tms.instance_coords()) == ["base_density"]
    xr.testing.assert_identical(ds.tms.classify(), ta.classify(ds))
    xr.testing.assert_identical(ds.tms.measures(), ta.measures(ds))
    assert ds.tms.select(steps="last").sizes["step"] == 1


def test_import_stays_light():
    import subprocess
    import sys

    code = "import sys, toyanalysis; print(sorted(m for m in ('torch', 'xarray', 'holoviews', 'dask') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
