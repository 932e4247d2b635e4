"""The hyperparameters of the LLC estimator, as one checked parameter object."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from toyanalysis.params import Params, option

__all__ = ["LLCParams"]


@dataclass(frozen=True, kw_only=True)
class LLCParams(Params):
    """Hyperparameters of :func:`toyanalysis.llc` (definitions and defaults in ``docs/llc.md``).

    SGLD at ``w*``: ``w ← w − ε/2·(nβ ∇L_batch(w) + γ (w − w*)) + N(0, ε)``;
    ``λ̂ = nβ·(mean sampled loss − L(w*))``.

    >>> p = LLCParams(n=10_000)
    >>> round(p.inverse_temperature(), 1)
    1085.7
    >>> LLCParams.from_json(p.to_json()) == p
    True
    """

    analysis: ClassVar[str] = "llc"

    epsilon: float = option(
        1e-5,
        float,
        "SGLD step size ε (the injected noise has variance ε).",
        low=0.0,
        low_open=True,
        high=math.inf,
    )
    gamma: float = option(
        100.0,
        float,
        "Localisation strength γ: the pull of each chain back to the checkpoint w*.",
        low=0.0,
        high=math.inf,
    )
    n: int = option(
        1_000_000,
        int,
        "Dataset size n of the tempered posterior (sets nβ; batches are drawn fresh).",
        low=2,
    )
    nbeta: float | None = option(
        None,
        float,
        "Inverse temperature nβ (default n / log n, the standard choice).",
        optional=True,
        low=0.0,
        low_open=True,
        high=math.inf,
    )
    batch_size: int = option(64, int, "Samples per SGLD step, drawn fresh each step.", low=1)
    chains: int = option(4, int, "Independent SGLD chains per checkpoint.", low=1)
    burn_in: int = option(300, int, "SGLD steps discarded before the draws.", low=0)
    draws: int = option(1500, int, "SGLD steps whose sampled loss enters λ̂.", low=1)
    gradient: str = option(
        "control-variate",
        str,
        "control-variate: ∇L_B(w) − ∇L_B(w*) + mean ∇L_B(w*) (less batch noise); plain: ∇L_B(w).",
        choices=("control-variate", "plain"),
    )
    seed: int = option(0, int, "Seed of the chains' noise and batches.", low=0)
    divergence_tol: float = option(
        0.05,
        float,
        "A chain whose mean sampled loss is this fraction below L(w*) diverged.",
        low=0.0,
        low_open=True,
        high=math.inf,
    )
    disagree_tol: float = option(
        0.25,
        float,
        "Warn when the standard error across chains exceeds this fraction of |λ̂|.",
        low=0.0,
        low_open=True,
        high=math.inf,
    )
    block_mb: float = option(
        256.0,
        float,
        "Memory budget (MiB) of one block of models run together.",
        low=0.0,
        low_open=True,
        high=math.inf,
    )

    def inverse_temperature(self) -> float:
        """nβ: the given value, else ``n / log n``."""
        return self.nbeta if self.nbeta is not None else self.n / math.log(self.n)
