"""The local learning coefficient (LLC) of every checkpoint, estimated by SGLD.

:func:`llc` estimates ``λ̂`` at each selected checkpoint of a store with SGLD
chains localised at the checkpoint, every chain of every checkpoint and
instance run as one batch of independent models; :class:`LLCParams` holds
its hyperparameters; :func:`llc_by_phase` joins the estimates with a
:func:`toyanalysis.phases` result (λ̂ per phase, Δλ̂ per transition);
:data:`KNOWN_POINTS` and :func:`known_point_store` give the hand-built
critical points of known λ the estimator is validated on. See ``docs/llc.md``.
"""

from __future__ import annotations

from toyanalysis._llc._estimate import LLCWarning, llc, run_config, summarise_chains
from toyanalysis._llc._join import llc_by_phase
from toyanalysis._llc._params import LLCParams
from toyanalysis._llc._points import (
    KNOWN_POINTS,
    KnownPoint,
    gon_loss,
    gon_norm_bias,
    gon_weights,
    known_point_store,
)
from toyanalysis._llc._records import llc_frame, llc_records

__all__ = [
    "KNOWN_POINTS",
    "KnownPoint",
    "LLCParams",
    "LLCWarning",
    "gon_loss",
    "gon_norm_bias",
    "gon_weights",
    "known_point_store",
    "llc",
    "llc_by_phase",
    "llc_frame",
    "llc_records",
    "run_config",
    "summarise_chains",
]
