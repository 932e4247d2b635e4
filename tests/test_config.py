from __future__ import annotations

import re

import numpy as np
import pytest

from toyanalysis.config import FeatureSet, RunConfig, SweepAxis, TrainConfig, record_schedule
from toyanalysis.errors import ConfigError
from toyanalysis.presets import list_presets, preset

PRESET_NAMES = [
    "intro",
    "basic",
    "basic-linear",
    "basic-80",
    "uniform",
    "uniform-small",
    "nonuniform",
    "phase-2-1",
    "phase-3-2",
    "correlated-pairs",
    "anticorrelated-pairs",
    "correlated-3pairs",
    "correlated-sets",
    "dynamics",
    "privileged",
    "abs-small",
    "abs",
    "onehot-6-2",
]


def test_every_named_preset_exists_and_round_trips():
    assert list(list_presets()) == PRESET_NAMES
    for name in PRESET_NAMES:
        config = preset(name)
        assert RunConfig.from_json(config.to_json()) == config
        assert list_presets()[name]


def test_intro_matches_the_paper():
    c = preset("intro")
    assert (c.n_features, c.n_hidden, c.model) == (5, 2, "relu_output")
    np.testing.assert_allclose(c.instance_importance()[0], 0.9 ** np.arange(5))
    np.testing.assert_allclose(c.instance_density()[:, 0], 20.0 ** -np.linspace(0, 1, 10))
    t = c.train
    assert (t.steps, t.batch_size, t.lr, t.weight_decay, t.optimizer, t.schedule) == (
        10_000,
        1024,
        1e-3,
        0.01,
        "adamw",
        "constant",
    )


def test_sweep_grid_is_cartesian_with_seeds_innermost():
    c = preset("phase-2-1")
    assert c.n_instances == 10 * 10 * 3
    labels = c.instance_labels()
    assert set(labels) == {"extra_importance", "base_density"}
    np.testing.assert_array_equal(c.instance_seeds()[:6], [0, 1, 2, 0, 1, 2])
    imp, dens = c.instance_importance(), c.instance_density()
    np.testing.assert_allclose(imp[:, 1], labels["extra_importance"])
    np.testing.assert_allclose(imp[:, 0], 1.0)
    np.testing.assert_allclose(dens[:, 0], labels["base_density"])


def test_override_reaches_training_fields_and_rejects_unknown():
    c = preset("intro").override(steps=50, lr=0.01, n_hidden=3)
    assert (c.train.steps, c.train.lr, c.n_hidden) == (50, 0.01, 3)
    with pytest.raises(ConfigError, match="unknown config field 'stpes'"):
        preset("intro").override(stpes=5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_features=0, n_hidden=2), "n_features"),
        (dict(n_features=3, n_hidden=2, model="mlp"), "model must be one of"),
        (dict(n_features=3, n_hidden=2, density=1.5), "density must be in"),
        (dict(n_features=3, n_hidden=2, importance=(1.0, 2.0)), "importance has 2 values"),
        (dict(n_features=3, n_hidden=2, record="every:0"), "every:K"),
        (dict(n_features=3, n_hidden=2, record="sometimes"), "bad record schedule"),
        (
            dict(n_features=3, n_hidden=2, sets=(FeatureSet(kind="correlated", features=(0, 5)),)),
            "outside",
        ),
        (
            dict(
                n_features=3,
                n_hidden=2,
                density=0.6,
                sets=(FeatureSet(kind="anticorrelated", features=(0, 1)),),
            ),
            "sum to <= 1",
        ),
    ],
)
def test_invalid_configs_are_rejected_with_a_message(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig(**kwargs)


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(n_hidden="abc"), "n_hidden must be an integer, got 'abc'"),
        (dict(steps=1.5), "steps must be an integer, got 1.5"),
        (dict(seeds=True), "seeds must be an integer"),
        (dict(lr=True), "lr must be a number"),
        (dict(one_hot="yes"), "one_hot must be true or false"),
        (dict(importance=True), "importance must be a number or a list"),
        (dict(sweep=3), "sweep must be a list"),
        (dict(sets=[{"kind": "correlated"}]), "bad sets entry"),
        (dict(sets=[{"kind": "correlated", "features": ["a", 1]}]), "list of integers"),
        (dict(train={"steps": "x"}), "steps must be an integer"),
    ],
)
def test_wrong_types_are_config_errors_not_crashes(changes, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        preset("intro").override(**changes)


def test_override_accepts_tables_for_nested_fields():
    c = preset("intro").override(
        sweep=[{"name": "x", "target": "density", "values": [0.5, 0.1]}],
        sets=[{"kind": "correlated", "features": [0, 1]}],
    )
    assert c.n_instances == 2 and c.sets[0] == FeatureSet(kind="correlated", features=(0, 1))


def test_sweep_axis_names_cannot_shadow_store_coordinates():
    with pytest.raises(ConfigError, match="reserved"):
        SweepAxis(name="density", target="density", values=(1.0,))


def test_train_config_validation_and_schedules():
    with pytest.raises(ConfigError, match="optimizer"):
        TrainConfig(optimizer="sgd")
    t = TrainConfig(steps=100, schedule="linear", warmup=10)
    assert t.learning_rate(0) == pytest.approx(1e-3 * 0.1)
    assert t.learning_rate(50) == pytest.approx(1e-3 * 0.5)
    c = TrainConfig(steps=101, schedule="cosine")
    assert c.learning_rate(0) == pytest.approx(1e-3)
    assert c.learning_rate(100) == pytest.approx(0.0, abs=1e-12)


def test_record_schedules():
    assert record_schedule("every:3", 7).tolist() == [0, 3, 6, 7]
    assert record_schedule("all", 3).tolist() == [0, 1, 2, 3]
    log = record_schedule("log:10", 10_000)
    assert log[0] == 0 and log[-1] == 10_000 and np.all(np.diff(log) > 0)
    with pytest.raises(ConfigError, match=r"within 0\.\.10"):
        record_schedule("5,20", 10)


def test_toml_config_from_preset_with_overrides(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('preset = "intro"\nn_hidden = 3\n[train]\nsteps = 77\n')
    c = RunConfig.from_toml(str(path))
    assert (c.n_hidden, c.train.steps, c.train.lr, c.name) == (3, 77, 1e-3, "intro")
    path.write_text("n_features = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        RunConfig.from_toml(str(path))
