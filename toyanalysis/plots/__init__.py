"""The paper's pictures for any store, interactive over training steps (HoloViews, bokeh).

Every view takes a store Dataset (:func:`toyanalysis.open_store`, or a path
to a store), an optional :class:`~toyanalysis.params.PlotParams` (what it
shows: ``max_frames``, ``max_instances`` and the classify thresholds; given
whole or by name, ``norms(ds, max_instances=2)``), the selection to show
(``steps``, ``instances``), and returns a HoloViews object. Where the
trajectory has several recorded steps the object has a ``step`` slider: a
:class:`~holoviews.HoloMap` over at most ``max_frames`` steps (evenly spaced,
first and last included), or with ``dynamic=True`` a
:class:`~holoviews.DynamicMap` that reads each step from the store only when
it is shown (for large stores, in a live notebook). Stores with many
instances show one panel per instance, at most ``max_instances`` of them
(evenly spaced; pick others with ``instances=``).

The views (section names from Elhage et al., 2022), by subject:

- weights (``_weights``): :func:`directions` — the columns ``W_i`` as vectors
  in the plane (``m = 2`` only), coloured by importance; :func:`gram` —
  ``WᵀW`` as a heatmap for any ``m``, beside the bias ``b``; :func:`norms` —
  per-feature norm ``‖W_i‖`` as bars coloured by interference
  ``Σ_{j≠i} (Ŵ_i·W_j)²``, features in decreasing importance with a line after
  the top ``m`` (the "basic results" view);
- dimensionality (``_dimensionality``): :func:`dimensionality` — dimensions
  per feature ``D*`` against ``1/(1−S) = 1/density`` (log axis) across
  instances, with each feature's ``D_i`` and reference lines at 1, 3/4, 2/3,
  1/2, 2/5, 3/8;
- geometry (``_graph``): :func:`overlap_graph` — the feature-overlap graph of
  a checkpoint; each connected component drawn as the projection of its unit
  directions onto its two main axes, coloured by configuration;
- phases (``_phases``): :func:`loss_curves` — loss per instance (log axis)
  with the geometry transitions of :func:`toyanalysis.phase_changes.phases`
  marked; :func:`phase_diagram` — what one extra feature does (unlearned,
  superposed, dedicated) over a sweep of importance × density;
- local learning coefficient (``_llc``): :func:`llc_curves` — loss and λ̂ ±
  se per instance over training from a :func:`toyanalysis.llc` result (or
  the store's saved ``analysis/llc``), unreliable and divergent estimates
  left out and counted, transitions of a phases result marked;
- neurons (``_neurons``): :func:`neuron_bars` — per-neuron stacked bars of
  ``|W[h, i]|``, one colour per feature, negative weights below the axis
  (privileged basis).

>>> import holoviews as hv
>>> import numpy as np
>>> from toyanalysis import testing
>>> ds = testing.as_dataset(testing.polytope("pentagon"), importance=0.9 ** np.arange(5))
>>> type(directions(ds)).__name__
'Overlay'
>>> fig = hv.render(norms(ds))   # a bokeh figure

The package imports HoloViews (and registers its bokeh backend) on import;
``import toyanalysis`` does not import it.
"""

from __future__ import annotations

from toyanalysis.params import PlotParams
from toyanalysis.plots._common import (
    FEATURE_COLORS,
    KIND_COLORS,
    MAX_FRAMES,
    MAX_INSTANCES,
    PANEL,
    PlotError,
    frame_steps,
    instance_title,
    intake,
    pick_instances,
)
from toyanalysis.plots._dimensionality import REFERENCE_FRACTIONS, dimensionality
from toyanalysis.plots._graph import overlap_graph
from toyanalysis.plots._llc import llc_curves, saved_llc, store_path
from toyanalysis.plots._neurons import neuron_bars
from toyanalysis.plots._phases import PHASE_COLORS, loss_curves, phase_diagram
from toyanalysis.plots._weights import directions, gram, norms

__all__ = [
    "FEATURE_COLORS",
    "KIND_COLORS",
    "MAX_FRAMES",
    "MAX_INSTANCES",
    "PANEL",
    "PHASE_COLORS",
    "REFERENCE_FRACTIONS",
    "PlotError",
    "PlotParams",
    "dimensionality",
    "directions",
    "frame_steps",
    "gram",
    "instance_title",
    "intake",
    "llc_curves",
    "loss_curves",
    "neuron_bars",
    "norms",
    "overlap_graph",
    "phase_diagram",
    "pick_instances",
    "saved_llc",
    "store_path",
]
