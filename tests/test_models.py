from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from toyanalysis import models
from toyanalysis.config import RunConfig
from toyanalysis.data import Sampler
from toyanalysis.training import _Adam

MODELS = ["relu_output", "linear", "hidden_relu", "abs"]


def _config(model: str, **kw) -> RunConfig:
    return RunConfig(model=model, n_features=6, n_hidden=3, importance=0.8, density=0.4, **kw)


@pytest.mark.parametrize("model", MODELS)
def test_hand_written_gradients_match_autograd(model):
    config = _config(model, seeds=3)
    params = {k: v.double() for k, v in models.init_params(config).items()}
    params["b"] = torch.randn_like(params["b"]) * 0.1  # make every ReLU branch matter
    x = Sampler(config, batch_size=64).sample().double()
    importance = torch.tensor(config.instance_importance())
    loss, grads = models.loss_and_grads(model, params, x, importance)
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    reference = models.loss(model, leaves, x, importance)
    reference.sum().backward()
    torch.testing.assert_close(loss, reference.detach())
    assert set(grads) == set(leaves)
    for name, leaf in leaves.items():
        torch.testing.assert_close(grads[name], leaf.grad, msg=f"gradient of {name}")


def test_adam_matches_torch_adamw_and_adam():
    for optimizer, cls in (("adamw", torch.optim.AdamW), ("adam", torch.optim.Adam)):
        torch.manual_seed(0)
        p = {"W": torch.randn(2, 3, 4), "b": torch.randn(2, 4)}
        ref = {k: v.clone().requires_grad_(True) for k, v in p.items()}
        ours = _Adam(p, decoupled=optimizer == "adamw", weight_decay=0.01)
        theirs = cls(list(ref.values()), lr=1e-2, weight_decay=0.01)
        for _ in range(5):
            grads = {k: torch.randn_like(v) for k, v in p.items()}
            for k, leaf in ref.items():
                leaf.grad = grads[k].clone()
            theirs.step()
            ours.step(p, grads, 1e-2)
        for k in p:
            torch.testing.assert_close(p[k], ref[k].detach(), rtol=1e-5, atol=1e-6)


def test_init_scales_per_instance_and_like_the_notebook():
    base = RunConfig(n_features=400, n_hidden=30, seeds=20)
    per_instance = models.init_params(base)["W"]
    notebook = models.init_params(base.override(init="notebook"))["W"]
    assert per_instance.std().item() == pytest.approx(math.sqrt(2 / 430), rel=0.02)
    assert notebook.std().item() == pytest.approx(math.sqrt(2 / (400 * 30 + 20 * 30)), rel=0.02)
    assert torch.all(models.init_params(base)["b"] == 0)


def test_an_instance_does_not_depend_on_how_many_share_its_run():
    alone = RunConfig(n_features=5, n_hidden=2, density=0.1)
    crowd = alone.override(seeds=4)
    np.testing.assert_array_equal(
        models.init_params(alone)["W"][0], models.init_params(crowd)["W"][0]
    )
    np.testing.assert_array_equal(Sampler(alone).sample()[0], Sampler(crowd).sample()[0])
    assert not torch.equal(models.init_params(crowd)["W"][0], models.init_params(crowd)["W"][1])
