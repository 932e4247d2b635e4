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

Each family is also a record, :class:`ModelFamily`, saying what the analyses
need to know about it without string tests: its parameters, whether its inputs
are signed, whether its hidden basis is privileged (neurons can be read), and
which matrix holds the feature directions. ``torch`` is imported only when a
model is run, so reading these records is cheap.

>>> family("abs").privileged, family("abs").signed_inputs, family("linear").privileged
(True, True, False)
>>> [f.name for f in FAMILIES.values() if f.privileged]
['hidden_relu', 'abs']
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal, overload

import numpy as np

from toyanalysis.config import MODELS, RunConfig
from toyanalysis.errors import ConfigError

if TYPE_CHECKING:
    import torch

Params = dict[str, "torch.Tensor"]


@dataclass(frozen=True)
class ModelFamily:
    """One model family: what it computes and what the analyses may assume of it.

    ``hidden_relu``: a ReLU on the hidden layer (the basis is privileged);
    ``output_relu``: a ReLU on the output; ``tied``: the output reads hidden
    space through ``Wᵀ`` (else through its own ``W_out``); ``signed_inputs``:
    inputs are uniform on [-1, 1] and the target is ``|x|``;
    ``neuron_sign``: which input weights drive a neuron (``positive`` when a
    ReLU keeps only positive pre-activations of non-negative inputs, ``both``
    when inputs are signed); ``directions``: the matrix whose columns are the
    feature directions in hidden space (always ``W``, the input matrix).
    """

    name: str
    hidden_relu: bool
    output_relu: bool
    tied: bool
    signed_inputs: bool
    description: str
    directions: str = "W"

    @property
    def privileged(self) -> bool:
        """Whether hidden units are neurons (a nonlinearity acts on them one by one)."""
        return self.hidden_relu

    @property
    def neuron_sign(self) -> str | None:
        if not self.privileged:
            return None
        return "both" if self.signed_inputs else "positive"

    @property
    def parameters(self) -> tuple[str, ...]:
        return ("W", "b") if self.tied else ("W", "W_out", "b")


FAMILIES: Mapping[str, ModelFamily] = MappingProxyType(
    {
        f.name: f
        for f in (
            ModelFamily("relu_output", False, True, True, False, "x' = ReLU(WᵀW x + b)"),
            ModelFamily("linear", False, False, True, False, "x' = WᵀW x + b"),
            ModelFamily("hidden_relu", True, True, True, False, "x' = ReLU(Wᵀ ReLU(W x) + b)"),
            ModelFamily("abs", True, True, False, True, "y' = ReLU(W_out ReLU(W x) + b), y = |x|"),
        )
    }
)
assert tuple(FAMILIES) == MODELS


def family(model: str | ModelFamily) -> ModelFamily:
    """The record of a model family, by name (a record is returned as it is)."""
    if isinstance(model, ModelFamily):
        return model
    found = FAMILIES.get(model)
    if found is None:
        raise ConfigError(f"unknown model {model!r} (models: {', '.join(FAMILIES)})")
    return found


def init_params(config: RunConfig) -> Params:
    """Xavier-normal weights, zero bias, each instance from its own seed.

    ``init="per_instance"`` (default) uses each instance's own fan-in and
    fan-out, std = sqrt(2 / (n + m)). ``init="notebook"`` reproduces the
    public notebook, which calls ``xavier_normal_`` on the whole
    ``[instance, feature, hidden]`` tensor so that torch counts the instances
    into the fan-out: std = sqrt(2 / (n·m + instances·m)).
    """
    import torch

    from toyanalysis.data import INIT_STREAM, generators

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
    if not family(config.model).tied:
        params["W_out"] = draw((n, m))
    params["b"] = torch.zeros(count, n)
    return params


def target(model: str | ModelFamily, x: torch.Tensor) -> torch.Tensor:
    return x.abs() if family(model).signed_inputs else x


def forward(model: str | ModelFamily, params: Params, x: torch.Tensor) -> torch.Tensor:
    """The model's output for ``x (instance, feature, batch)``: plain and differentiable."""
    import torch

    f = family(model)
    W, b = params["W"], params["b"][:, :, None]
    h = torch.bmm(W, x)
    if f.hidden_relu:
        h = torch.relu(h)
    out = torch.bmm(W.transpose(1, 2) if f.tied else params["W_out"], h) + b
    return torch.relu(out) if f.output_relu else out


def loss(
    model: str | ModelFamily, params: Params, x: torch.Tensor, importance: torch.Tensor
) -> torch.Tensor:
    """Loss per instance: the mean over batch and features of ``I_i (y_i − y'_i)²``."""
    err = forward(model, params, x) - target(model, x)
    return (importance[:, :, None] * err.square()).mean(dim=(1, 2))


def _buffer(
    workspace: dict[str, torch.Tensor] | None, name: str, shape: tuple[int, ...], like: torch.Tensor
) -> torch.Tensor | None:
    """A reusable ``(instance, ·, batch)`` buffer from ``workspace`` (None: let torch allocate)."""
    if workspace is None:
        return None
    buf = workspace.get(name)
    if buf is None or buf.shape != shape or buf.dtype != like.dtype or buf.device != like.device:
        buf = workspace[name] = like.new_empty(shape)
    return buf


@overload
def loss_and_grads(
    model: str | ModelFamily,
    params: Params,
    x: torch.Tensor,
    importance: torch.Tensor,
    *,
    workspace: dict[str, torch.Tensor] | None = None,
    need_loss: Literal[True] = True,
) -> tuple[torch.Tensor, Params]: ...


@overload
def loss_and_grads(
    model: str | ModelFamily,
    params: Params,
    x: torch.Tensor,
    importance: torch.Tensor,
    *,
    workspace: dict[str, torch.Tensor] | None = None,
    need_loss: Literal[False],
) -> tuple[None, Params]: ...


@overload
def loss_and_grads(
    model: str | ModelFamily,
    params: Params,
    x: torch.Tensor,
    importance: torch.Tensor,
    *,
    workspace: dict[str, torch.Tensor] | None = None,
    need_loss: bool,
) -> tuple[torch.Tensor | None, Params]: ...


def loss_and_grads(
    model: str | ModelFamily,
    params: Params,
    x: torch.Tensor,
    importance: torch.Tensor,
    *,
    workspace: dict[str, torch.Tensor] | None = None,
    need_loss: bool = True,
) -> tuple[torch.Tensor | None, Params]:
    """Loss per instance and the gradients of the summed loss, written out by hand.

    ``x`` is ``(instance, feature, batch)``: with the batch last, every product
    is a batched matrix product with a long inner or outer axis, which is
    several times faster on CPU than the ``(instance, batch, feature)`` layout.
    The element-wise work on the big ``(instance, feature, batch)`` tensors is
    four passes (ReLU, error, masked gradient, sums); the importance weights
    and the ``2 / (batch · features)`` factor are applied to the small weight
    matrices instead. ``workspace`` (a dict kept by the caller between calls)
    holds the big intermediates, so that a training loop does not allocate
    (and page-fault) them afresh every step. ``need_loss=False`` returns no
    loss (None) and skips two of those passes: the trainer needs the loss only
    on the steps it records.
    """
    import torch

    f = family(model)
    W, b = params["W"], params["b"]
    count, n, batch = x.shape
    m = W.shape[1]
    pre = torch.bmm(W, x, out=_buffer(workspace, "pre", (count, m, batch), x))
    h = torch.relu(pre) if f.hidden_relu else pre
    W_read = W.transpose(1, 2) if f.tied else params["W_out"]
    out = _buffer(workspace, "out", (count, n, batch), x)
    z = torch.baddbmm(b[:, :, None], W_read, h, out=out)
    if f.output_relu and need_loss:
        z.relu_()  # z now holds the output, positive exactly where the pre-activation is
    err = torch.sub(z, x.abs() if f.signed_inputs else x, out=_buffer(workspace, "err", z.shape, x))
    scale = importance * (2.0 / (batch * n))  # d loss / d output = scale * err
    loss_value = None
    if need_loss:
        norms = torch.linalg.vector_norm(err, dim=2)
        loss_value = (norms.square_() * importance).mean(dim=1) / batch
    if f.output_relu:  # zero where the output's pre-activation is not positive
        err = torch.ops.aten.threshold_backward.grad_input(err, z, 0.0, grad_input=err)
    grads = {"b": err.sum(dim=2).mul_(scale)}
    W_back = W_read.transpose(1, 2) * scale[:, None, :]  # (instance, hidden, feature)
    dh = torch.bmm(W_back, err)
    if f.hidden_relu:
        dh = torch.ops.aten.threshold_backward.grad_input(dh, pre, 0.0, grad_input=dh)
    if not f.tied:
        grads["W_out"] = torch.bmm(err, h.transpose(1, 2)).mul_(scale[:, :, None])
        grads["W"] = torch.bmm(dh, x.transpose(1, 2))
        return loss_value, grads
    # W appears twice: in h = W x and in z = Wᵀ h
    grad_W = torch.bmm(h, err.transpose(1, 2)).mul_(scale[:, None, :])
    grads["W"] = grad_W.baddbmm_(dh, x.transpose(1, 2))
    return loss_value, grads
