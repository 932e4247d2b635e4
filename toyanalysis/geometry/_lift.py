"""``classify``: the kernel lifted over steps and instances with :func:`xarray.apply_ufunc`.

The weights are rechunked along ``step`` so one task's working set (Gram
matrices and friends) stays within a budget; on a lazily opened store the
result is lazy and computed chunk by chunk, on NumPy input it is computed at
once (in chunks too when it is large). The measures come from
:func:`toyanalysis.superposition.measures` and are merged into the result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from toyanalysis._labels import as_store, carried_coords, select
from toyanalysis.errors import ConfigError, StoreError
from toyanalysis.geometry._kernel import (
    BLOCK_BYTES,
    Vocabulary,
    classify_kernel,
    work_dtype,
    working_bytes,
)
from toyanalysis.geometry._shapes import BUILTIN_SHAPES, ShapeRegistry
from toyanalysis.params import ClassifyParams
from toyanalysis.superposition import feature_norms, gram, measures

if TYPE_CHECKING:
    import networkx as nx
    import xarray as xr

__all__ = [
    "TASK_BYTES",
    "bias_rule",
    "chunk_sizes",
    "classify",
    "concat_blocks",
    "iter_blocks",
    "iter_classify",
    "overlap_graph",
]

# Bytes of weights and results one dask task holds (the kernel bounds its working set).
TASK_BYTES = 16 * 2**20

_GEOMETRY = (
    "kind",
    "component",
    "config_kind",
    "config_n_features",
    "config_n_dims",
    "config_fit",
    "config_angle_error",
    "config_worst_pair",
    "fraction",
    "agrees",
    "summary",
)
_MEASURES = ("norm", "dimensionality", "interference", "dimensions_per_feature")
_ORDER = ("kind", "component", *_MEASURES, "fraction", "agrees", "summary", *_GEOMETRY[2:8])


def _split(sizes: tuple[int, ...], steps: int) -> tuple[int, ...]:
    """Each store chunk split into near-equal pieces of at most ``steps`` (none straddles two)."""
    out: list[int] = []
    for size in sizes:
        pieces = -(-size // steps)
        out.extend(size // pieces + (i < size % pieces) for i in range(pieces))
    return tuple(out)


def chunk_sizes(ds: xr.Dataset, task_bytes: int = TASK_BYTES) -> tuple[int | tuple[int, ...], int]:
    """Steps and instances one task classifies: about ``task_bytes`` of weights and results.

    A store chunked along ``step`` keeps its chunks when they fit, else each is
    split into near-equal pieces within it (reading part of a chunk
    decompresses all of it, so a task never straddles two); all instances go
    together unless one step of them is over the budget. The kernel bounds its
    own working set inside a task.
    """
    n, m, n_inst = ds.sizes["feature"], ds.sizes["hidden"], max(1, ds.sizes["instance"])
    itemsize = np.dtype(work_dtype(ds["W"].dtype)).itemsize
    # weights, then the results: two string and four numeric labels, three measures per feature
    per_checkpoint = max(1, m * n * itemsize + n * (2 * 4 * 16 + 4 * 8 + 3 * itemsize))
    if per_checkpoint * n_inst > task_bytes:
        return 1, max(1, task_bytes // per_checkpoint)
    steps = task_bytes // (per_checkpoint * n_inst)
    chunks = ds["W"].chunks
    if chunks is None:
        return steps, n_inst
    return _split(chunks[ds["W"].get_axis_num("step")], steps), n_inst


def _weights(ds: xr.Dataset, block: tuple[Any, int], lazy: bool) -> xr.DataArray:
    """``W`` as (step, instance, hidden, feature) in the work dtype, chunked when lazy."""
    W = ds["W"].transpose("step", "instance", "hidden", "feature")
    W = W.astype(work_dtype(W.dtype))
    if lazy:
        W = W.chunk({"step": block[0], "instance": block[1], "hidden": -1, "feature": -1})
    return W


def _kernel_alive(W: np.ndarray, alive: np.ndarray, **kwargs: Any) -> tuple[np.ndarray, ...]:
    return classify_kernel(W, alive=alive, **kwargs)


def bias_rule(ds: xr.Dataset, W: xr.DataArray) -> tuple[xr.DataArray | None, str]:
    """Which features' outputs can be non-zero for inputs in the data's range, and the rule.

    With an output ReLU, feature ``i``'s output is ``ReLU(b_i + (M h)_i)``: it can
    fire only when the largest value of ``b_i + (M h)_i`` over the inputs is
    positive. ``relu_output`` (``x`` in [0, 1]): ``b_i + Σ_j max(0, (WᵀW)_ij)``,
    exact. ``hidden_relu`` and ``abs``: ``h_k = ReLU(W x)_k`` is at most
    ``Σ_j max(0, W_kj)`` (``Σ_j |W_kj|`` for the signed inputs of ``abs``), so
    ``b_i + Σ_k max(0, Out_ik) · max h_k`` bounds it (``Out`` is ``Wᵀ``, or
    ``W_out``). ``linear`` has no output ReLU: the norm rule alone.
    """
    import xarray as xr

    from toyanalysis.models import FAMILIES

    model = FAMILIES.get(str(ds.attrs.get("model", "relu_output")), FAMILIES["relu_output"])
    if not model.output_relu:
        return None, f"norm only ({model.name} has no output ReLU)"
    if "b" not in ds.data_vars:
        return None, "norm only (the store has no b)"
    b = ds["b"].transpose("step", "instance", "feature").astype(W.dtype)
    if model.hidden_relu:
        reach = abs(W) if model.signed_inputs else W.clip(min=0)
        h_max = reach.sum("feature")
        out = W if model.tied else ds["W_out"].astype(W.dtype)
        bound = b + (out.clip(min=0) * h_max).sum("hidden")
        rule = f"norm and bias ({model.name}: b_i + Σ_k max(0, Out_ik) max_x ReLU(Wx)_k > 0)"
    else:
        M = xr.dot(W, W.rename(feature="other"), dim="hidden")  # a matmul, not a broadcast
        bound = b + (abs(M) if model.signed_inputs else M.clip(min=0)).sum("other")
        rule = f"norm and bias ({model.name}: b_i + Σ_j max(0, (WᵀW)_ij) > 0)"
    return (bound > 0).transpose("step", "instance", "feature"), rule


def _geometry(
    W: xr.DataArray,
    alive: xr.DataArray,
    params: ClassifyParams,
    shapes: ShapeRegistry,
    block_bytes: int,
) -> xr.Dataset:
    import xarray as xr

    names = Vocabulary(tuple(shapes)).names
    fit = W.dtype
    out = xr.apply_ufunc(
        _kernel_alive,
        W,
        alive,
        kwargs={"params": params, "shapes": shapes, "block_bytes": block_bytes},
        input_core_dims=[["hidden", "feature"], ["feature"]],
        output_core_dims=[
            *(["feature"], ["feature"], *[["config"]] * 5, ["config", "pair"]),
            *(["feature", "ratio"], ["feature"], []),
        ],
        dask="parallelized",
        output_dtypes=[
            *(names.dtype, np.int32, names.dtype, np.int32, np.int32),
            *(fit, fit, np.int32, np.int32, bool, object),
        ],
        dask_gufunc_kwargs={"output_sizes": {"config": W.sizes["feature"], "pair": 2, "ratio": 2}},
    )
    return xr.Dataset(dict(zip(_GEOMETRY, out, strict=True)))


def _attrs(ds: xr.Dataset, params: ClassifyParams, shapes: ShapeRegistry) -> dict[str, Any]:
    return {
        "norm_threshold": params.norm_threshold,
        "overlap_tol": params.overlap_tol,
        "split_max_tol": params.split_max_tol,
        "split_step": params.split_step,
        "split_lone_tol": params.split_lone_tol,
        "rank_tol": params.rank_tol,
        "rank_tol_many": params.rank_tol_many,
        "min_fit": params.min_fit,
        "max_angle_error": params.max_angle_error,
        "parallel_cos": params.parallel_cos,
        "dedicated_min_dimensionality": params.dedicated_min_dimensionality,
        "dimensionality_tol": params.dimensionality_tol,
        "matrix": "W",
        "model": str(ds.attrs.get("model", "relu_output")),
        "sweep": [str(s) for s in ds.attrs.get("sweep", [])],
        "configurations": list(shapes.names),
        "params": params.to_json(),
        "shapes": shapes.to_json(),
    }


def _lazy_result(
    ds: xr.Dataset,
    params: ClassifyParams,
    shapes: ShapeRegistry,
    block: tuple[Any, int],
    lazy: bool,
    block_bytes: int = BLOCK_BYTES,
) -> xr.Dataset:
    """The classification of the whole (selected) store; lazy when ``lazy``."""
    import xarray as xr

    W = _weights(ds, block, lazy)
    alive, rule = bias_rule(ds, W)
    if alive is None:
        alive = xr.ones_like(W.isel(hidden=0, drop=True), dtype=bool)
    if lazy:
        alive = alive.chunk({"step": block[0], "instance": block[1], "feature": -1})
    geometry = _geometry(W, alive, params, shapes, block_bytes)
    finite = xr.apply_ufunc(np.isfinite, W, dask="allowed").all(["hidden", "feature"])
    measured = measures(W).where(finite)
    result = xr.merge([geometry, measured], compat="override", join="override")
    result = result[list(_ORDER)].drop_vars(
        [c for c in result.coords if c not in ("step", "instance", "feature")]
    )
    if "loss" in ds.data_vars and set(ds["loss"].dims) == {"step", "instance"}:
        result["loss"] = ds["loss"].transpose("step", "instance")
    for name in result.data_vars:
        result[name].attrs = {}
    coords: dict[str, Any] = {d: ds[d].values for d in ("step", "instance", "feature")}
    coords.update(config=np.arange(ds.sizes["feature"]), **carried_coords(ds))
    result = result.assign_coords(coords)
    result.attrs = _attrs(ds, params, shapes)
    result.attrs["represented"] = rule
    return result


def _prepared(
    ds: Any, params: ClassifyParams | None, steps: Any, instances: Any, changes: dict[str, Any]
) -> tuple[xr.Dataset, ClassifyParams]:
    params = ClassifyParams.resolve(params, changes)
    ds = select(as_store(ds), steps=steps, instances=instances)
    if ds.sizes["step"] == 0:
        raise StoreError("nothing to classify: the selection has no steps")
    return ds, params


def _registry(shapes: ShapeRegistry | None) -> ShapeRegistry:
    if shapes is None:
        return BUILTIN_SHAPES
    if not isinstance(shapes, ShapeRegistry):
        raise ConfigError(f"shapes must be a ShapeRegistry, got {type(shapes).__name__}")
    return shapes


def classify(
    ds: Any,
    params: ClassifyParams | None = None,
    *,
    steps: Any = None,
    instances: Any = None,
    shapes: ShapeRegistry | None = None,
    **changes: Any,
) -> xr.Dataset:
    """Classify the geometry of every feature at every checkpoint and instance.

    ``ds`` is a store Dataset (``toyanalysis.open_store``), its ``W``, or a
    NumPy array ``(hidden, feature)``, ``(instance, hidden, feature)`` or
    ``(step, instance, hidden, feature)``. ``params`` is a
    :class:`~toyanalysis.params.ClassifyParams` (default: its defaults), and
    keyword ``changes`` replace its fields (``classify(W, overlap_tol=0.2)``).
    ``steps``: ``None``/``"all"``, ``"last"``, or step numbers; ``instances``:
    instance labels (default all). ``shapes``: the templates to match
    (default :data:`BUILTIN_SHAPES`).

    Returns a Dataset with dims ``(step, instance, feature, config)``:
    ``kind``, ``component`` (the index along ``config`` of the feature's
    configuration, -1 for unlearned), ``norm``, ``dimensionality``,
    ``interference`` per feature; ``dimensions_per_feature`` and ``summary``
    per checkpoint; ``config_kind``, ``config_n_features``, ``config_n_dims``,
    ``config_fit``, ``config_angle_error`` (the worst pairwise angle error in
    degrees against the best template) and ``config_worst_pair`` (the two
    features it is at, dim ``pair``; -1 when none) per configuration slot;
    ``fraction`` (each feature's nearest shape fraction as ``(d, k)`` along
    ``ratio``, 0 0 when none within ``dimensionality_tol``) and ``agrees`` (its
    configuration's ``d/k`` is that fraction) (``config`` has one slot per feature;
    slots past the checkpoint's components are padded with ``""``, 0, 0, NaN;
    components are ordered by decreasing size, then smallest feature); the
    input's step, instance and feature coordinates, ``loss`` when the store
    has it; in ``attrs`` the thresholds, ``params`` (JSON) and ``shapes``
    (the templates, JSON). When ``ds`` is lazy (dask) so is the result.

    >>> from toyanalysis import testing
    >>> W = testing.tegum("digon", "digon", "dedicated", dead=1)   # 5 features in 3-D
    >>> str(classify(W)["summary"].item())
    '2 digon + 1 dedicated + 1 unlearned'
    """
    ds, params = _prepared(ds, params, steps, instances, changes)
    registry = _registry(shapes)
    block = chunk_sizes(ds)
    if ds["W"].chunks is not None:
        return _lazy_result(ds, params, registry, block, lazy=True)
    steps, n_inst = block
    if isinstance(steps, int) and ds.sizes["step"] <= steps and ds.sizes["instance"] <= n_inst:
        return _lazy_result(ds, params, registry, block, lazy=False)
    return _lazy_result(ds, params, registry, block, lazy=True).compute()


def iter_classify(
    ds: Any,
    params: ClassifyParams | None = None,
    *,
    steps: Any = None,
    instances: Any = None,
    shapes: ShapeRegistry | None = None,
    block_bytes: int = BLOCK_BYTES,
    progress: Callable[[int], None] | None = None,
    **changes: Any,
) -> Iterator[xr.Dataset]:
    """:func:`classify`, computed one block of steps at a time (memory bounded by ``block_bytes``).

    The options and the selection are checked at the call, before anything is
    yielded; ``progress`` is called with the number of steps of each block.
    :func:`concat_blocks` joins the blocks.

    >>> from toyanalysis import testing
    >>> W = np.stack([testing.tegum("digon", "dedicated")] * 3)[:, None]   # 3 steps
    >>> [dict(b.sizes)["step"] for b in iter_classify(W, block_bytes=1)]
    [1, 1, 1]
    """
    ds, params = _prepared(ds, params, steps, instances, changes)
    per_step = working_bytes(ds.sizes["hidden"], ds.sizes["feature"], 8) * ds.sizes["instance"]
    steps = max(1, block_bytes // max(1, per_step))
    block = (steps, max(1, ds.sizes["instance"]))
    result = _lazy_result(ds, params, _registry(shapes), block, True, block_bytes)
    return iter_blocks(result, steps, progress)


def iter_blocks(
    result: xr.Dataset, block: int | None = None, progress: Callable[[int], None] | None = None
) -> Iterator[xr.Dataset]:
    """The computed blocks of ``block`` steps of a (lazy) result; default its step chunks."""
    if block is None:
        chunks = result.chunksizes.get("step")
        block = max(chunks) if chunks else result.sizes["step"]
    for start in range(0, result.sizes["step"], max(1, block)):
        out = result.isel(step=slice(start, start + block)).compute()
        yield out
        if progress is not None:
            progress(out.sizes["step"])


def concat_blocks(blocks: Any) -> xr.Dataset:
    """Join the blocks of :func:`iter_classify` along ``step``."""
    import xarray as xr

    blocks = list(blocks)
    if not blocks:
        raise StoreError("nothing to classify: the selection has no steps")
    if len(blocks) == 1:
        return blocks[0]
    return xr.concat(
        blocks,
        dim="step",
        data_vars="minimal",
        coords="minimal",
        compat="override",
        join="override",
    )


def overlap_graph(W: Any, params: ClassifyParams | None = None, **changes: Any) -> nx.Graph:
    """The overlap graph of one checkpoint, as a :class:`networkx.Graph`.

    Nodes are the represented features (``‖W_i‖ > norm_threshold``) with a
    ``norm`` attribute; an edge joins ``i`` and ``j`` when
    ``|Ŵ_i · Ŵ_j| > overlap_tol``, with the signed ``overlap`` and
    ``weight = |overlap|``. Its connected components are the tegum factors.

    >>> import numpy as np
    >>> W = np.array([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0]])  # two orthogonal digons
    >>> g = overlap_graph(W)
    >>> sorted(map(sorted, __import__("networkx").connected_components(g)))
    [[0, 1], [2, 3]]
    """
    import networkx as nx

    params = ClassifyParams.resolve(params, changes)
    W = _single_matrix(W)
    norms = feature_norms(W)
    G = gram(W)
    represented = norms > params.norm_threshold
    graph = nx.Graph()
    for i in np.flatnonzero(represented).tolist():
        graph.add_node(i, norm=float(norms[i]))
    mask = (np.abs(G) > params.overlap_tol) & represented[:, None] & represented[None, :]
    for i, j in zip(*np.nonzero(np.triu(mask, 1)), strict=True):
        graph.add_edge(int(i), int(j), overlap=float(G[i, j]), weight=float(abs(G[i, j])))
    return graph


def _single_matrix(W: Any) -> np.ndarray:
    import xarray as xr

    if isinstance(W, xr.Dataset):
        W = W["W"]
    if isinstance(W, xr.DataArray):
        extra = [d for d in W.dims if d not in ("hidden", "feature") and W.sizes[d] > 1]
        if extra:
            raise ConfigError(
                f"overlap_graph takes one checkpoint; select one along {extra} (shape {W.shape})"
            )
        W = W.squeeze([d for d in W.dims if d not in ("hidden", "feature")])
        W = W.transpose("hidden", "feature").values
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2:
        raise ConfigError(f"overlap_graph takes one (hidden, feature) matrix, got shape {W.shape}")
    return W
