"""The loss of saved checkpoints on one fixed batch (toyanalysis.evaluation)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from toyanalysis import testing
from toyanalysis.errors import ConfigError, StoreError
from toyanalysis.evaluation import evaluation_loss
from toyanalysis.store import open_store

STORE = Path(__file__).parent / "golden" / "stores" / "dynamics.zarr"


def test_one_fixed_batch_per_instance_for_every_checkpoint():
    ds = open_store(STORE).isel(step=[0, -1])
    loss = evaluation_loss(ds, batch_size=512)
    assert loss.dims == ("step", "instance") and loss.shape == (2, ds.sizes["instance"])
    assert loss["step"].values.tolist() == ds["step"].values.tolist()
    assert bool((loss > 0).all()) and bool((loss[-1] < loss[0]).all())  # training lowered it
    np.testing.assert_array_equal(evaluation_loss(ds, batch_size=512).values, loss.values)
    other = evaluation_loss(ds, batch_size=512, seed=7)
    assert not np.array_equal(other.values, loss.values)  # another batch
    # one checkpoint's loss does not depend on which others are evaluated with it
    alone = evaluation_loss(ds.isel(step=[1]), batch_size=512)
    np.testing.assert_allclose(alone.values[0], loss.values[1], rtol=1e-6)


def test_evaluation_loss_errors():
    ds = open_store(STORE).isel(step=[-1])
    with pytest.raises(ConfigError, match="batch_size"):
        evaluation_loss(ds, batch_size=0)
    with pytest.raises(StoreError, match="describes 4 instances"):
        evaluation_loss(ds.isel(instance=[0]), batch_size=16)
    with pytest.raises(StoreError, match="biases b"):
        evaluation_loss(ds.drop_vars("b"), batch_size=16)
    with pytest.raises(StoreError, match="config"):
        evaluation_loss(testing.as_dataset(testing.polytope("digon")), batch_size=16)


def test_a_batch_that_cannot_fit_in_memory_is_refused_with_its_size(intro_store):
    from toyanalysis import open_store
    from toyanalysis.errors import ConfigError
    from toyanalysis.evaluation import evaluation_loss

    with pytest.raises(
        ConfigError, match=r"fixed batch of 1,000,000,000,000 samples .* needs .* of memory"
    ):
        evaluation_loss(open_store(intro_store), batch_size=10**12)
