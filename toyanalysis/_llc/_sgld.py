"""The SGLD kernel: many independent chains as one batch of models.

Every row of the batch is one chain of one checkpoint (of one instance): the
models' leading ``instance`` axis (:func:`toyanalysis.models.loss_and_grads`)
carries the flattened ``(step, instance, chain)`` rows, so one call moves every
chain one step. Each row draws its own fresh batches from its instance's data
distribution (:class:`RowSampler`), and the loss of the checkpoint ``w*`` is
taken on the same batch, so that the difference ``L_batch(w) − L_batch(w*)``
that λ̂ averages carries little of the batch noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float

from toyanalysis._checks import shape_checked
from toyanalysis._llc._params import LLCParams
from toyanalysis.config import RunConfig
from toyanalysis.models import ModelFamily, loss, loss_and_grads

__all__ = ["RowSampler", "Traces", "sgld_block"]


class RowSampler:
    """Fresh batches ``x (row, feature, batch)``, each row from its instance's distribution.

    The same distributions as :class:`toyanalysis.data.Sampler` (independent,
    correlated and anti-correlated features, one-hot data, signed inputs for
    ``abs``), drawn with torch on ``device`` so that rows need not be
    instances of the run.
    """

    def __init__(
        self,
        config: RunConfig,
        density: np.ndarray,
        generator: torch.Generator,
        device: torch.device,
    ) -> None:
        rows, n = density.shape
        self.shape, self.gen, self.device = (rows, n), generator, device
        self.signed, self.one_hot = config.model == "abs", config.one_hot
        groups = [(g.kind, list(g.features)) for g in config.sets]
        lo, hi = np.zeros_like(density), density.copy()
        gate, own = np.arange(n), np.ones(n, dtype=bool)
        for k, (kind, members) in enumerate(groups):
            gate[members] = n + k
            if kind == "correlated":
                own[members] = False
            else:
                cum = np.cumsum(density[:, members], axis=1)
                lo[:, members], hi[:, members] = cum - density[:, members], cum
        self.lo = torch.tensor(lo[:, :, None], dtype=torch.float32, device=device)
        self.hi = torch.tensor(hi[:, :, None], dtype=torch.float32, device=device)
        self.gate = torch.tensor(gate, device=device)
        self.own = torch.tensor(own, device=device)[:, None]
        self.n_gates = len(groups)

    @shape_checked
    def sample(self, batch: int) -> Float[torch.Tensor, "row feature batch"]:
        rows, n = self.shape
        if self.one_hot:  # one feature per sample, uniformly chosen, value U[0, 1]
            which = torch.randint(n, (rows, 1, batch), generator=self.gen, device=self.device)
            value = torch.rand((rows, 1, batch), generator=self.gen, device=self.device)
            x = torch.zeros((rows, n, batch), device=self.device)
            return x.scatter_(1, which, value)
        draws = torch.rand((rows, n + self.n_gates, batch), generator=self.gen, device=self.device)
        gates = draws[:, self.gate]
        active = (gates >= self.lo) & (gates < self.hi)
        value = torch.where(self.own, (gates - self.lo) / (self.hi - self.lo), draws[:, :n])
        if self.signed:
            value = value.mul_(2.0).sub_(1.0)
        return value.masked_fill_(~active, 0.0)


@dataclass(frozen=True)
class Traces:
    """What one block of chains leaves: per row, the sampled loss at every draw and
    the mean loss of ``w*`` on the same batches."""

    loss: np.ndarray  # (row, draw)
    reference: np.ndarray  # (row,)


def sgld_step(
    w: dict[str, torch.Tensor],
    grads: dict[str, torch.Tensor],
    w_star: dict[str, torch.Tensor],
    coefficients: tuple[float, float, float],
    generator: torch.Generator,
) -> None:
    """One SGLD update in place: ``w ← w − ε/2 (nβ g + γ (w − w*)) + √ε ξ``."""
    epsilon, nbeta, gamma = coefficients
    for name, value in w.items():
        drift = grads[name].mul_(nbeta).add_(value - w_star[name], alpha=gamma)
        noise = torch.randn(value.shape, generator=generator, device=value.device)
        value.add_(drift, alpha=-epsilon / 2).add_(noise, alpha=math.sqrt(epsilon))


@shape_checked
def sgld_block(
    model: ModelFamily,
    w_star: dict[str, torch.Tensor],
    importance: Float[torch.Tensor, "row feature"],
    sampler: RowSampler,
    params: LLCParams,
    generator: torch.Generator,
) -> Traces:
    """Run every row's chain from ``w*``: burn-in, then ``draws`` recorded steps.

    With ``gradient="control-variate"`` the gradient is ``∇L_B(w) − ∇L_B(w*) + ḡ*``,
    ``ḡ*`` the running mean of ``∇L_B(w*)`` over all batches so far: the same
    expectation as ``∇L_B(w)`` with far less batch noise near ``w*``.
    """
    w = {name: value.clone() for name, value in w_star.items()}
    coefficients = (params.epsilon, params.inverse_temperature(), params.gamma)
    rows = importance.shape[0]
    trace = torch.empty((params.draws, rows), dtype=torch.float64, device=importance.device)
    reference = torch.zeros(rows, dtype=torch.float64, device=importance.device)
    mean_star = {name: torch.zeros_like(value) for name, value in w_star.items()}
    for t in range(params.burn_in + params.draws):
        x = sampler.sample(params.batch_size)
        value, grads = loss_and_grads(model, w, x, importance)
        if params.gradient == "control-variate":
            star, star_grads = loss_and_grads(model, w_star, x, importance)
            for name, g in grads.items():
                mean_star[name].add_(star_grads[name] - mean_star[name], alpha=1 / (t + 1))
                g.sub_(star_grads[name]).add_(mean_star[name])
        elif t >= params.burn_in:
            star = loss(model, w_star, x, importance)
        if t >= params.burn_in:
            trace[t - params.burn_in] = value
            reference += star
        sgld_step(w, grads, w_star, coefficients, generator)
    reference /= params.draws
    return Traces(trace.T.cpu().numpy(), reference.cpu().numpy())
