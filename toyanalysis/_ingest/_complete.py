"""What the checkpoints lack: importance, density, the model and the run config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from toyanalysis import store
from toyanalysis._ingest._notes import Notes
from toyanalysis._ingest._options import Options
from toyanalysis._ingest._values import from_spec
from toyanalysis.config import RunConfig
from toyanalysis.errors import IngestError


def complete(run: Any, sources: list[Path], opts: Options, notes: Notes) -> xr.Dataset:
    """The run as a store-format Dataset, with the options' and the config's values attached."""
    W = run.arrays["W"]
    count, n = W.shape[1], W.shape[3]
    coords = dict(run.coords)
    for name in ("importance", "density"):
        spec = getattr(opts, name)
        if spec is None:
            continue
        value = from_spec(f"--{name}", spec, count, n, opts.along)
        if name == "importance" and _plain_number(spec) not in (None, 1.0):
            notes.add(
                f"--importance {spec} gives every feature importance {spec}; "
                f"for {spec}^i (feature i weighted {spec}**i) write --importance {spec}^i"
            )
        if name in coords and not np.allclose(coords[name], value):
            notes.add(f"--{name} replaces the {name} found in the checkpoints")
        coords[name] = value
    model = _model(run.arrays, opts, notes)
    attrs: dict[str, Any] = {"model": model}
    if opts.config is not None:
        _check_config(opts.config, W.shape, run.steps, coords, notes)
        labels = opts.config.instance_labels()
        coords.update(labels)
        attrs.update(config=opts.config.to_json(), sweep=list(labels))
    elif "importance" not in coords:
        notes.add(
            "no importance in the checkpoints: every feature gets importance 1; pass --importance "
            "(e.g. 0.9^i) or --config/--preset if the run weighted its features"
        )
    if "run_loss" in run.arrays and not np.all(np.isfinite(run.arrays["run_loss"])):
        raise IngestError("run_loss has NaN or inf values")
    attrs.update(
        ingested_from=[str(s) for s in sources],
        ingest_layout=run.layouts,
        ingest_warnings=notes.lines(),
    )
    return _dataset(run, coords, attrs)


def _plain_number(spec: Any) -> float | None:
    try:
        return float(spec) if not isinstance(spec, bool) else None
    except (TypeError, ValueError):
        return None


def _model(arrays: dict[str, np.ndarray], opts: Options, notes: Notes) -> str:
    model = opts.declared_model
    second = "W_out" in arrays
    if model is None:
        model = "abs" if second else "relu_output"
        why = "the only model with a second matrix" if second else "x' = ReLU(WᵀW x + b)"
        notes.add(f"no --model given: recorded as {model} ({why}); pass --model if it is another")
    if model == "abs" and not second:
        raise IngestError(
            "model abs needs a second matrix (W_out, W2 or an untied decoder) in the checkpoints"
        )
    if model != "abs" and second:
        raise IngestError(
            f"the checkpoints have a second matrix W_out, which model {model} has not"
        )
    return model


def _check_config(
    config: RunConfig, shape: tuple[int, ...], steps: np.ndarray, coords: dict, notes: Notes
) -> None:
    """The config must describe these weights; its importance, density and seeds fill the gaps."""
    _, count, m, n = shape
    if (config.n_instances, config.n_features, config.n_hidden) != (count, n, m):
        raise IngestError(
            f"the config {config.name!r} describes {config.n_instances} instances x "
            f"{config.n_features} features x {config.n_hidden} hidden, the weights have "
            f"{count} x {n} x {m}"
        )
    expected = {
        "importance": config.instance_importance(),
        "density": config.instance_density(),
        "seed": config.instance_seeds(),
    }
    for name, value in expected.items():
        if name in coords and not np.allclose(coords[name], value, rtol=1e-5, atol=1e-8):
            k = tuple(int(x) for x in np.argwhere(~np.isclose(coords[name], value, rtol=1e-5))[0])
            raise IngestError(
                f"{name} in the checkpoints or options differs from the config {config.name!r}'s "
                f"(at {'instance, feature' if len(k) == 2 else 'instance'} {k}: "
                f"{float(coords[name][k]):.4g} vs {float(value[k]):.4g})"
            )
        coords[name] = value
    if steps[-1] > config.train.steps:
        notes.add(
            f"the checkpoints go to step {int(steps[-1])}, but the config {config.name!r} trains "
            f"{config.train.steps} steps"
        )


def _dataset(run: Any, coords: dict[str, np.ndarray], attrs: dict[str, Any]) -> xr.Dataset:
    data: dict[str, Any] = {
        name: (store.DIMS[name], value.astype(np.float32))
        for name, value in run.arrays.items()
        if name in store.DIMS
    }
    if "run_loss" in run.arrays:
        data["run_loss"] = xr.Variable(
            ("step",),
            run.arrays["run_loss"].astype(np.float32),
            {"description": "one loss per checkpoint for the whole run, as the source recorded it"},
        )
    W = run.arrays["W"]
    dims = {
        "step": run.steps,
        **{d: np.arange(s) for d, s in zip(store.DIMS["W"][1:], W.shape[1:])},
    }
    grid = {
        k: (("instance", "feature"), coords[k]) for k in ("importance", "density") if k in coords
    }
    per_instance = {k: ("instance", v) for k, v in coords.items() if k not in grid}
    return xr.Dataset(data, coords={**dims, **grid, **per_instance}, attrs=attrs)
