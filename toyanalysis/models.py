"""The toy models, batched over an ``instance`` axis.

Every model is a set of parameter tensors with a leading ``instance`` axis;
each instance is an independent model. ``W`` is stored as
``(instance, hidden, feature)`` so that column ``W[k, :, i]`` is feature i's
direction in hidden space.

=============  =================================================  ===============
model          forward                                            parameters
=============  =================================================  ===============
relu_output    x' = ReLU(WᵀW x + b)                               W, b
linear         x' = WᵀW x + b                                     W, b
hidden_relu    h = ReLU(W x), x' = ReLU(Wᵀ h + b)                 W, b
abs            h = ReLU(W x), y' = ReLU(W_out h + b), y = |x|     W, W_out, b
=============  =================================================  ===============

The loss of an instance is the importance-weighted squared error averaged
over batch and features, ``mean_b,i I_i (y_i − y'_i)²``; the run minimises
the sum over instances. Gradients are written out by hand
(:func:`loss_and_grads`), which is several times faster than autograd for
models this small; :func:`forward` is the plain definition they are tested
against.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from toyanalysis.config import RunConfig
from toyanalysis.data import INIT_STREAM, generators

Params = dict[str, torch.Tensor]


def init_params(config: RunConfig) -> Params:
    """Xavier-normal weights, zero bias, each instance from its own seed.

    ``init="per_instance"`` (default) uses each instance's own fan-in and
    fan-out, std = sqrt(2 / (n + m)). ``init="notebook"`` reproduces the
    public notebook, which calls ``xavier_normal_`` on the whole
    ``[instance, feature, hidden]`` tensor so that torch counts the instances
    into the fan-out: std = sqrt(2 / (n·m + instances·m)).
    """
    n, m, count = config.n_features, config.n_hidden, config.n_instances
    if config.train.init == "notebook":
        std = math.sqrt(2.0 / (n * m + count * m))
    else:
        std = math.sqrt(2.0 / (n + m))
    gens = generators(config.instance_seeds(), INIT_STREAM)

    def draw(shape: tuple[int, ...]) -> torch.Tensor:
        out = np.stack([g.standard_normal(shape, dtype=np.float32) for g in gens])
        return torch.from_numpy(out * np.float32(std))

    params = {"W": draw((m, n))}
    if config.model == "abs":
        params["W_out"] = draw((n, m))
    params["b"] = torch.zeros(count, n)
    return params


def target(model: str, x: torch.Tensor) -> torch.Tensor:
    return x.abs() if model == "abs" else x


def forward(model: str, params: Params, x: torch.Tensor) -> torch.Tensor:
    """The model's output for ``x (instance, feature, batch)``: plain and differentiable."""
    W, b = params["W"], params["b"][:, :, None]
    h = torch.bmm(W, x)
    if model == "abs":
        return torch.relu(torch.bmm(params["W_out"], torch.relu(h)) + b)
    if model == "hidden_relu":
        h = torch.relu(h)
    out = torch.bmm(W.transpose(1, 2), h) + b
    return out if model == "linear" else torch.relu(out)


def loss(model: str, params: Params, x: torch.Tensor, importance: torch.Tensor) -> torch.Tensor:
    """Loss per instance: the mean over batch and features of ``I_i (y_i − y'_i)²``."""
    err = forward(model, params, x) - target(model, x)
    return (importance[:, :, None] * err.square()).mean(dim=(1, 2))


_relu_grad = torch.ops.aten.threshold_backward  # grad where input > 0, else 0


def loss_and_grads(
    model: str, params: Params, x: torch.Tensor, importance: torch.Tensor
) -> tuple[torch.Tensor, Params]:
    """Loss per instance and the gradients of the summed loss, written out by hand.

    ``x`` is ``(instance, feature, batch)``: with the batch last, every product
    is a batched matrix product with a long inner or outer axis, which is
    several times faster on CPU than the ``(instance, batch, feature)`` layout.
    """
    W, b = params["W"], params["b"][:, :, None]
    _, n, batch = x.shape
    pre = torch.bmm(W, x)  # (instance, hidden, batch)
    if model == "abs":
        W_out = params["W_out"]
        h = torch.relu(pre)
        z = torch.baddbmm(b, W_out, h)
        err = torch.relu(z) - x.abs()
    else:
        h = torch.relu(pre) if model == "hidden_relu" else pre
        z = torch.baddbmm(b, W.transpose(1, 2), h)
        err = (z if model == "linear" else torch.relu(z)) - x
    weighted = err * importance[:, :, None]
    loss_value = (weighted * err).mean(dim=(1, 2))
    dz = weighted.mul_(2.0 / (batch * n))
    if model != "linear":
        dz = _relu_grad(dz, z, 0.0)
    grads = {"b": dz.sum(dim=2)}
    if model == "abs":
        grads["W_out"] = torch.bmm(dz, h.transpose(1, 2))
        dpre = _relu_grad(torch.bmm(W_out.transpose(1, 2), dz), pre, 0.0)
        grads["W"] = torch.bmm(dpre, x.transpose(1, 2))
        return loss_value, grads
    dh = torch.bmm(W, dz)
    if model == "hidden_relu":
        dh = _relu_grad(dh, pre, 0.0)
    # W appears twice: in h = W x and in z = Wᵀ h
    grads["W"] = torch.baddbmm(torch.bmm(h, dz.transpose(1, 2)), dh, x.transpose(1, 2))
    return loss_value, grads
