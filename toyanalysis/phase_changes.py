"""Phase changes: over training (:func:`phases`) and over sweeps (:func:`phase_diagram`).

A toy model's features settle into a geometry (a *configuration*, summarised
by :func:`toyanalysis.classify` as e.g. ``"2 digon + 1 dedicated"``). The
paper's two "phase change" results ask when that geometry changes:

**Over training** (section "Superposition and learning dynamics"): the loss
shows plateaus separated by sudden drops, and each drop is a change of
geometry. :func:`phases` turns an instance's per-step classification into
*phases* (a configuration held over a span of steps) and *transitions*
(``from → to`` at a step), ignoring *flicker* (configurations held too
briefly); alongside it finds the loss's plateaus and drops, which transition
each drop coincides with, and, per feature, the steps at which its
dimensionality ``D_i`` jumps between fractions (1 → 1/2 → 2/5 …).

**Over importance and sparsity** (section "Superposition as a phase
change"): sweeps with several seeds per cell. :func:`phase_diagram` labels
each cell by what happens to one *extra* feature — ``unlearned``,
``superposed`` or ``dedicated`` — and by its configuration summary, each the
lowest-loss seed's (with the fraction of seeds per outcome and their loss
gaps), and reports where the optimal labels change along each axis.

Models are compared by their expected loss under the run's data
(:func:`toyanalysis.evaluation.expected_loss`: exact over activity patterns
for small n, importance-sampled with a standard error for large n), the
stored training loss only where a store has no config.

Both take their parameters whole (:class:`~toyanalysis.params.PhaseParams`,
:class:`~toyanalysis.params.DiagramParams`, or keyword changes by leaf name)
and store them in ``attrs["params"]``. Results are tidy: one flat dim per
event kind (``phase``, ``transition``, ``drop``, ``plateau``, ``jump``) with
the instance and the steps as coordinates; :func:`phase_records` /
:func:`diagram_records` give the JSON, :func:`phase_events` /
:func:`diagram_cells` the tidy frames, :func:`phase_text` /
:func:`diagram_text` the readable text, :func:`for_instance` one instance and
:func:`diagram_grid` the diagram on the sweep grid. Definitions and schemas
are in ``docs/phases.md``; the expected loss of saved checkpoints is
:func:`toyanalysis.evaluation.expected_loss`, their loss on a fixed batch
:func:`toyanalysis.evaluation.evaluation_loss`.

>>> import numpy as np
>>> from toyanalysis import testing
>>> W = np.stack([testing.tegum("digon", "digon")] * 5 + [testing.tegum("digon", "dedicated", dead=1)] * 5)
>>> result = phases(testing.as_dataset(W[:, None], steps=np.arange(10) * 100))
>>> result["phase_summary"].values.tolist()
['2 digon', '1 digon + 1 dedicated + 1 unlearned']
>>> int(result["transition_step"][0]), int(result["transition_instance"][0])
(500, 0)
"""

from __future__ import annotations

from toyanalysis._phases._diagram import (
    LABELS,
    diagram_cells,
    diagram_grid,
    diagram_records,
    diagram_text,
    phase_diagram,
)
from toyanalysis._phases._events import (
    KINDS,
    event_counts,
    for_instance,
    phase_document,
    phase_events,
    phase_records,
    phase_tables,
    phase_text,
)
from toyanalysis._phases._timeline import collapse, fraction_text, loss_changes
from toyanalysis._phases._training import phases
from toyanalysis.evaluation import evaluation_loss, expected_loss
from toyanalysis.params import DiagramParams, PhaseParams

__all__ = [
    "KINDS",
    "LABELS",
    "DiagramParams",
    "PhaseParams",
    "collapse",
    "diagram_cells",
    "diagram_grid",
    "diagram_records",
    "diagram_text",
    "evaluation_loss",
    "event_counts",
    "expected_loss",
    "for_instance",
    "fraction_text",
    "loss_changes",
    "phase_diagram",
    "phase_document",
    "phase_events",
    "phase_records",
    "phase_tables",
    "phase_text",
    "phases",
]
