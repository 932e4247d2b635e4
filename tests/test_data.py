from __future__ import annotations

import numpy as np
import pytest

from toyanalysis.config import FeatureSet, RunConfig
from toyanalysis.data import Sampler


def _draw(config: RunConfig, batch: int = 20_000) -> np.ndarray:
    """Samples as (instance, sample, feature)."""
    return Sampler(config, batch_size=batch).sample().numpy().transpose(0, 2, 1)


def test_independent_features_have_their_density_and_uniform_values():
    density = (1.0, 0.5, 0.1, 0.02)
    x = _draw(RunConfig(n_features=4, n_hidden=2, density=density))[0]
    active = x != 0
    np.testing.assert_allclose(active.mean(0), density, atol=0.01)
    for i in range(4):
        values = x[active[:, i], i]
        assert values.min() >= 0 and values.max() < 1
        assert values.mean() == pytest.approx(0.5, abs=0.03)
    # independence: joint activity of features 1 and 2 factorises
    assert (active[:, 1] & active[:, 2]).mean() == pytest.approx(0.05, abs=0.01)


def test_correlated_sets_switch_on_together_with_independent_values():
    c = RunConfig(
        n_features=4,
        n_hidden=2,
        density=0.3,
        sets=(FeatureSet(kind="correlated", features=(0, 1)),),
    )
    x = _draw(c)[0]
    active = x != 0
    np.testing.assert_array_equal(active[:, 0], active[:, 1])
    assert active[:, 0].mean() == pytest.approx(0.3, abs=0.015)
    both = active[:, 0]
    assert abs(np.corrcoef(x[both, 0], x[both, 1])[0, 1]) < 0.05
    assert (active[:, 0] & active[:, 2]).mean() == pytest.approx(0.09, abs=0.01)


def test_anticorrelated_sets_have_at_most_one_active_member():
    c = RunConfig(
        n_features=4,
        n_hidden=2,
        density=(0.2, 0.3, 0.1, 0.1),
        sets=(FeatureSet(kind="anticorrelated", features=(0, 1)),),
    )
    x = _draw(c)[0]
    active = x != 0
    assert not np.any(active[:, 0] & active[:, 1])
    np.testing.assert_allclose(active.mean(0), (0.2, 0.3, 0.1, 0.1), atol=0.012)
    assert x[active[:, 1], 1].mean() == pytest.approx(0.5, abs=0.03)


def test_one_hot_has_exactly_one_active_feature():
    x = _draw(RunConfig(n_features=6, n_hidden=2, one_hot=True))[0]
    np.testing.assert_array_equal((x != 0).sum(1), 1)
    np.testing.assert_allclose((x != 0).mean(0), 1 / 6, atol=0.015)


def test_abs_inputs_are_signed_uniform():
    x = _draw(RunConfig(model="abs", n_features=3, n_hidden=6, density=0.5))[0]
    active = x != 0
    np.testing.assert_allclose(active.mean(0), 0.5, atol=0.015)
    values = x[active]
    assert values.min() >= -1 and values.max() < 1
    assert values.mean() == pytest.approx(0.0, abs=0.02)
    assert (values < 0).mean() == pytest.approx(0.5, abs=0.02)


def test_same_seed_same_samples_and_state_round_trip():
    c = RunConfig(n_features=5, n_hidden=2, density=0.2, seeds=2)
    a, b = Sampler(c), Sampler(c)
    np.testing.assert_array_equal(a.sample(), b.sample())
    state = a.state()
    first = a.sample().clone()
    a.set_state(state)
    np.testing.assert_array_equal(a.sample(), first)
