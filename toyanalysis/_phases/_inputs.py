"""What phases and phase diagrams read: the store, the classification and the loss."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from toyanalysis._labels import as_store, select_steps
from toyanalysis.errors import ConfigError, StoreError
from toyanalysis.params import ClassifyParams

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "THRESHOLDS",
    "classification_for",
    "classify_params_of",
    "compared_loss",
    "evaluated_loss",
    "intake",
    "loss_source",
    "shapes_of",
    "store_loss",
    "threshold_attrs",
]

THRESHOLDS = ("norm_threshold", "overlap_tol", "rank_tol", "min_fit")


def intake(ds: Any) -> xr.Dataset:
    """A store (checked, not modified) or a classify result, as given."""
    import xarray as xr

    if not isinstance(ds, xr.Dataset):
        raise ConfigError(
            f"expected an xarray Dataset (a store or a classify result), got {type(ds).__name__}"
        )
    if "W" in ds.data_vars:
        return as_store(ds)
    if "summary" not in ds.data_vars:
        raise StoreError("dataset has neither weights W nor a classification summary")
    return ds


def classify_params_of(cls: xr.Dataset) -> ClassifyParams | None:
    """The thresholds a classification was made with, when its attrs say so."""
    text = cls.attrs.get("params")
    if isinstance(text, str):
        try:
            return ClassifyParams.from_json(text)
        except ConfigError:
            pass  # the params of another analysis (e.g. a phases result)
    legacy = {k: cls.attrs[k] for k in THRESHOLDS if k in cls.attrs}
    if not legacy:
        return None
    try:
        return ClassifyParams(**legacy)
    except (ConfigError, TypeError):
        return None


def shapes_of(cls: xr.Dataset) -> Any:
    """The shape templates a classification was matched against (None: unknown, the built-ins)."""
    text = cls.attrs.get("shapes")
    if not isinstance(text, str):
        return None
    from toyanalysis.geometry import ShapeRegistry

    try:
        return ShapeRegistry.from_json(text)
    except ConfigError:
        return None


def _have(recorded: np.ndarray) -> str:
    return f" (have {recorded.size} steps, {recorded[0]}..{recorded[-1]})"


def _given(
    classification: xr.Dataset, params: ClassifyParams, steps: Any, instances: Any, who: str
) -> tuple[xr.Dataset, ClassifyParams | None]:
    """A given classification, checked and selected; the thresholds it was made with."""
    missing = [v for v in ("summary", "component", "dimensionality") if v not in classification]
    if missing:
        raise StoreError(
            f"classification has no variable {missing[0]}: pass the result of toyanalysis.classify"
        )
    made_with = classify_params_of(classification)
    if params != ClassifyParams() and params != made_with:
        raise ConfigError(
            f"the classify parameters ({', '.join(THRESHOLDS)}) apply only when {who} "
            "computes the classification; a given classification keeps its own"
        )
    out = select_steps(classification, steps, _have)
    if instances is not None:
        wanted = [instances] if np.ndim(instances) == 0 else list(instances)
        have = set(out["instance"].values.tolist())
        absent = [i for i in wanted if i not in have]
        if absent:
            raise ConfigError(f"instance {absent[0]} is not in the classification")
        out = out.sel(instance=wanted)
    return out, made_with


def classification_for(
    ds: xr.Dataset,
    classification: xr.Dataset | None,
    params: ClassifyParams,
    *,
    steps: Any = None,
    instances: Any = None,
    who: str = "phases",
) -> tuple[xr.Dataset, ClassifyParams | None]:
    """The classify result to work on (given, ``ds`` itself if it is one, or computed)
    and the thresholds it was made with (None when unknown)."""
    if classification is None and "summary" in ds.data_vars:
        classification = ds
    if classification is not None:
        cls, made_with = _given(classification, params, steps, instances, who)
        return cls.compute(), made_with
    from toyanalysis.geometry import classify

    # a lazy classification (a store opened with dask) is computed once, not once per variable
    return classify(ds, params, steps=steps, instances=instances).compute(), params


def threshold_attrs(params: ClassifyParams | None) -> dict[str, float]:
    """The classifier's thresholds as attrs (none when unknown)."""
    return {} if params is None else {k: getattr(params, k) for k in THRESHOLDS}


def loss_source(loss: np.ndarray | None, eval_loss: int | None) -> str:
    """``none``, ``store`` or ``eval:N`` (the sources that need no config)."""
    if loss is None:
        return "none"
    return "store" if eval_loss is None else f"eval:{eval_loss}"


def compared_loss(
    ds: xr.Dataset, cls: xr.Dataset, choice: str, eval_loss: int | None
) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """The loss models are compared by ``(step, instance)`` at the classified steps, its
    error (None: unknown) and where it came from (``loss_source``).

    ``eval_loss`` (a fixed batch) wins; ``stored`` is the store's loss; ``exact`` /
    ``sampled`` / ``expected`` (auto) the :func:`~toyanalysis.evaluation.expected_loss`,
    ``expected`` falling back to the stored loss where the store has no config or weights.
    """
    if eval_loss is not None:
        return evaluated_loss(ds, cls, eval_loss), None, f"eval:{eval_loss}"
    usable = "config" in ds.attrs and "W" in ds.data_vars and "b" in ds.data_vars
    if choice == "stored" or (choice == "expected" and not usable):
        loss = store_loss(ds, cls)
        why = "" if choice == "stored" or loss is None else " (no config)"
        return loss, None, loss_source(loss, None) + why
    if not usable:
        raise StoreError(
            f"loss={choice!r} needs the store's config (attrs['config']) and weights W, b; "
            "use loss='stored'"
        )
    from toyanalysis.evaluation import expected_loss

    method = "auto" if choice == "expected" else choice
    result = expected_loss(ds.sel(step=cls["step"].values), method=method)
    chosen = result.sel(instance=cls["instance"].values).transpose("step", "instance")
    value = np.asarray(chosen["loss"].values, dtype=np.float64)
    error = np.asarray(chosen["error"].values, dtype=np.float64)
    return value, error, f"{result.attrs['method']}"


def store_loss(ds: xr.Dataset, cls: xr.Dataset) -> np.ndarray | None:
    """The loss ``(step, instance)`` aligned with the classification, or None."""
    source = ds if "loss" in ds.data_vars else cls if "loss" in cls.data_vars else None
    if source is None:
        return None
    for dim in ("step", "instance"):
        missing = set(cls[dim].values.tolist()) - set(source[dim].values.tolist())
        if missing:
            raise StoreError(
                f"the classification has {dim} {min(missing)}, which the store's loss does not"
            )
    loss = source["loss"].sel(step=cls["step"].values, instance=cls["instance"].values)
    return np.asarray(loss.transpose("step", "instance").values, dtype=np.float64)


def evaluated_loss(ds: xr.Dataset, cls: xr.Dataset, batch_size: int) -> np.ndarray:
    """:func:`~toyanalysis.evaluation.evaluation_loss` ``(step, instance)`` at the classified steps."""
    if "W" not in ds.data_vars:
        raise ConfigError("eval_loss needs the store's weights, not only a classification")
    from toyanalysis.evaluation import evaluation_loss

    full = evaluation_loss(ds.sel(step=cls["step"].values), batch_size=batch_size)
    chosen = full.sel(instance=cls["instance"].values).transpose("step", "instance")
    return np.asarray(chosen.values)
