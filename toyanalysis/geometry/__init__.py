"""Which geometric configuration is each feature in?

With sparse features a toy model places several features in the same
subspace, and the arrangements it finds are regular polytopes: antipodal
pairs (digons), triangles, pentagons, tetrahedra, square antiprisms. Larger
arrangements are *tegum products*: polytopes in mutually orthogonal
subspaces (an octahedron is three orthogonal digons).

The classification of one checkpoint (``W``, hidden x feature) goes:

1. **Represented features**: ``‖W_i‖ > norm_threshold`` (default 0.5).
   The others are ``unlearned``.
2. **Overlap graph**: the represented features are nodes, with an edge where
   ``|Ŵ_i · Ŵ_j| > overlap_tol`` (default 0.15). Its connected components are
   the tegum factors. Two orthogonal digons are two components, never a
   square; an octahedron is three digons. Components that are no registered
   shape (and named ones that noise joined) are split into the shapes they
   hold at thresholds up to ``split_max_tol`` (default 0.3; docs/classify.md).
3. **Rank**: a component of ``k`` features spans ``d`` dimensions, the number
   of singular values of its unit directions ``Ŵ_C`` that are at least
   ``rank_tol`` (default 0.2; ``rank_tol_many``, 0.25, for three or more
   features) times the largest.
4. **Match**: the component is compared with every shape of the registry
   (:class:`ShapeRegistry`, :data:`BUILTIN_SHAPES` by default) with the same
   ``k`` and ``d``. The comparison uses only the component's Gram matrix, so
   it is invariant to rotations (and reflections) of hidden space, and it
   compares the *sorted* pairwise angles ``arccos(Ŵ_i·Ŵ_j)`` with the
   template's, so it is invariant to the order of the features.
   ``fit = max(0, 1 - rms angle error / 45°)``: 1 for a perfect polytope, 0.9
   for angles off by 4.5° on average. The best template wins if its fit is
   at least ``min_fit`` (default 0.25); otherwise, or when no template has
   that ``k`` and ``d``, the component is ``other`` (reported with its ``k``
   and ``d``).

The thresholds are one :class:`~toyanalysis.params.ClassifyParams`. The
matrix used is always the store's ``W`` (for the ``abs`` model its input
matrix ``W1``, whose columns are the feature directions in hidden space).

The package holds one concept per module: ``_shapes`` (the immutable
registry), ``_components`` (union-find and the networkx reference),
``_kernel`` (one stack of matrices → fixed-size labels), ``_lift``
(:func:`classify`: the kernel lifted with :func:`xarray.apply_ufunc`, lazy on
lazy stores, the measures of :mod:`toyanalysis.superposition` merged in) and
``_tables`` (records, frames, the summary table, streaming writers).
Definitions, defaults and schemas are in ``docs/classify.md``.

>>> import numpy as np
>>> angles = 2 * np.pi * np.arange(5) / 5
>>> W = np.stack([np.cos(angles), np.sin(angles)])          # a pentagon in 2-D
>>> result = classify(W)
>>> str(result["summary"].item())
'pentagon'
>>> result["kind"].values.ravel().tolist()
['pentagon', 'pentagon', 'pentagon', 'pentagon', 'pentagon']
"""

from __future__ import annotations

from toyanalysis.geometry._kernel import classify_kernel
from toyanalysis.geometry._lift import (
    classify,
    concat_blocks,
    iter_blocks,
    iter_classify,
    overlap_graph,
)
from toyanalysis.geometry._shapes import (
    BUILTIN_SHAPES,
    INVALID,
    OTHER,
    UNLEARNED,
    Shape,
    ShapeRegistry,
)
from toyanalysis.geometry._tables import (
    FORMATS,
    Written,
    invalid_checkpoints,
    table,
    to_frame,
    to_records,
    write,
)
from toyanalysis.params import ClassifyParams

__all__ = [
    "BUILTIN_SHAPES",
    "DEFAULT_MIN_FIT",
    "DEFAULT_NORM_THRESHOLD",
    "DEFAULT_OVERLAP_TOL",
    "DEFAULT_RANK_TOL",
    "FORMATS",
    "INVALID",
    "OTHER",
    "UNLEARNED",
    "Configuration",
    "Shape",
    "ShapeRegistry",
    "Written",
    "classify",
    "classify_kernel",
    "concat_blocks",
    "configurations",
    "invalid_checkpoints",
    "iter_blocks",
    "iter_classify",
    "overlap_graph",
    "table",
    "to_frame",
    "to_records",
    "write",
]

Configuration = Shape  # the name it had before shapes were values

_DEFAULTS = ClassifyParams()
# The defaults, read from ClassifyParams (where they are written).
DEFAULT_NORM_THRESHOLD = _DEFAULTS.norm_threshold
DEFAULT_OVERLAP_TOL = _DEFAULTS.overlap_tol
DEFAULT_RANK_TOL = _DEFAULTS.rank_tol
DEFAULT_MIN_FIT = _DEFAULTS.min_fit


def configurations(shapes: ShapeRegistry | None = None) -> tuple[Shape, ...]:
    """The shapes of ``shapes`` (default :data:`BUILTIN_SHAPES`), in order.

    >>> [(c.name, c.n_features, c.n_dims) for c in configurations()][:3]
    [('dedicated', 1, 1), ('digon', 2, 1), ('triangle', 3, 2)]
    """
    return tuple(BUILTIN_SHAPES if shapes is None else shapes)
