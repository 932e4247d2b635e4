"""Convert checkpoints written by other code into a store.

Accepted files: torch ``.pt``/``.pth`` state dicts (loaded with
``weights_only=True``, so nothing is executed), ``.safetensors`` and NumPy
``.npz``. A source is one file or a folder of step-numbered files
(``ckpt_1000.pt``); the step comes from a ``step`` entry, else from the last
number in the file name.

Parameter names: ``W`` (the public notebook's name), ``b_final`` or ``b``
(also ``b_out``), ``W_in``/``W_out`` (or ``W1``/``W2``) for the ``abs``
model; a prefix such as ``model.`` is ignored. Optional ``loss`` (per
instance), ``importance`` and ``feature_probability`` (or ``density``) entries
become the store's ``loss`` and coordinates.

The axes of ``W`` are given by a layout of letters, ``i`` instance, ``f``
feature, ``h`` hidden: ``ifh`` (the public notebook), ``ihf``, or unbatched
``fh``/``hf``. Without one, the layout is inferred from the bias (its length is
the number of features) and refused when that is ambiguous.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from toyanalysis import store
from toyanalysis.errors import IngestError

SUFFIXES = (".pt", ".pth", ".safetensors", ".npz")
LAYOUTS = ("ifh", "ihf", "fh", "hf")
_ALIASES = {
    "W": ("W", "W_in", "W1"),
    "W_out": ("W_out", "W2"),
    "b": ("b_final", "b", "b_out"),
    "loss": ("loss",),
    "importance": ("importance",),
    "density": ("feature_probability", "density"),
    "step": ("step", "global_step"),
}


def ingest(
    sources: list[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    layout: str | None = None,
    model: str | None = None,
    overwrite: bool = False,
) -> xr.Dataset:
    """Read checkpoints from ``sources`` and write them as one store at ``output``; return it opened."""
    if layout is not None and layout not in LAYOUTS:
        raise IngestError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    files = _checkpoint_files([Path(s) for s in sources])
    checkpoints = [(path, _named(path, _load(path))) for path in files]
    steps = [_step(path, entries, single=len(files) == 1) for path, entries in checkpoints]
    if len(set(steps)) != len(steps):
        repeated = sorted({s for s in steps if steps.count(s) > 1})
        raise IngestError(f"several checkpoints have step {repeated[0]}")
    order = np.argsort(steps)
    arrays = [_arrays(checkpoints[k][0], checkpoints[k][1], layout) for k in order]
    first_path = checkpoints[order[0]][0]
    for (path, _), arr in zip((checkpoints[k] for k in order), arrays):
        for name, value in arr.items():
            if name in arrays[0] and value.shape != arrays[0][name].shape:
                raise IngestError(
                    f"{path}: {name} has shape {value.shape} but {first_path} has {arrays[0][name].shape}"
                )
    ds = _dataset(np.array(steps)[order], arrays, model)
    store.write_store(output, ds, overwrite=overwrite)
    return store.open_store(output)


def _checkpoint_files(sources: list[Path]) -> list[Path]:
    files: list[Path] = []
    for source in sources:
        if source.is_dir():
            found = sorted(p for p in source.iterdir() if p.suffix in SUFFIXES)
            if not found:
                raise IngestError(
                    f"{source}: no checkpoint files ({', '.join(SUFFIXES)}) in this folder"
                )
            files.extend(found)
        elif source.is_file():
            if source.suffix not in SUFFIXES:
                raise IngestError(
                    f"{source}: unsupported file type {source.suffix!r}; use {', '.join(SUFFIXES)}"
                )
            files.append(source)
        else:
            raise IngestError(f"{source}: no such file or folder")
    return files


def _load(path: Path) -> dict[str, Any]:
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        if path.suffix == ".safetensors":
            from safetensors.numpy import load_file

            return dict(load_file(str(path)))
        import torch

        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except IngestError:
        raise
    except ImportError as err:
        raise IngestError(
            f"{path}: reading this format needs {err.name}: pip install 'toyanalysis[io]'"
        ) from None
    except Exception as err:
        raise IngestError(
            f"{path}: cannot read checkpoint: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        ) from None
    if not isinstance(loaded, dict):
        raise IngestError(f"{path}: expected a state dict, found {type(loaded).__name__}")
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(loaded.get(key), dict):
            extra = {k: v for k, v in loaded.items() if not isinstance(v, dict)}
            return {**loaded[key], **extra}
    return loaded


def _named(path: Path, raw: dict[str, Any]) -> dict[str, np.ndarray]:
    """Entries under their canonical names, as NumPy arrays."""
    by_last = {str(k).rsplit(".", 1)[-1]: v for k, v in raw.items()}
    out: dict[str, np.ndarray] = {}
    for canonical, aliases in _ALIASES.items():
        for alias in aliases:
            if alias in by_last:
                value = by_last[alias]
                if hasattr(value, "detach"):
                    value = value.detach().cpu().numpy()
                out[canonical] = np.asarray(value)
                break
    if "W" not in out:
        raise IngestError(
            f"{path}: no weight matrix (looked for {', '.join(_ALIASES['W'])}; found {', '.join(map(str, raw)) or 'nothing'})"
        )
    return out


def _step(path: Path, entries: dict[str, np.ndarray], single: bool) -> int:
    if "step" in entries:
        return int(entries["step"])
    numbers = re.findall(r"\d+", path.stem)
    if numbers:
        return int(numbers[-1])
    if single:
        return 0
    raise IngestError(f"{path}: no step number in the file name and no 'step' entry")


def _arrays(
    path: Path, entries: dict[str, np.ndarray], layout: str | None
) -> dict[str, np.ndarray]:
    """W as (instance, hidden, feature) and the rest with an instance axis."""
    W = entries["W"].astype(np.float32)
    b = entries.get("b")
    if layout is None:
        layout = _infer_layout(path, W, b)
    if W.ndim != len(layout):
        raise IngestError(f"{path}: W has shape {W.shape}, which does not fit layout {layout!r}")
    if len(layout) == 2:
        W, layout = W[None], "i" + layout
    W = np.ascontiguousarray(W if layout == "ihf" else W.transpose(0, 2, 1))
    count, m, n = W.shape
    out = {"W": W}
    if "W_out" in entries:
        W_out = entries["W_out"].astype(np.float32)
        if W_out.ndim == 2:
            W_out = W_out[None]
        # wanted (instance, feature, hidden); the square case follows W's convention
        if W_out.shape[1:] == (m, n) and (n != m or layout == "ifh"):
            W_out = W_out.transpose(0, 2, 1)
        if W_out.shape != (count, n, m):
            raise IngestError(
                f"{path}: W_out has shape {entries['W_out'].shape}, expected {(count, n, m)} or its transpose"
            )
        out["W_out"] = np.ascontiguousarray(W_out)
    for name in ("b", "importance", "density"):
        if name in entries:
            out[name] = _per_feature(path, name, entries[name], count, n)
    if "loss" in entries:
        loss = np.asarray(entries["loss"], dtype=np.float32).reshape(-1)
        if loss.size == 1:
            loss = np.repeat(loss, count)
        if loss.shape != (count,):
            raise IngestError(
                f"{path}: loss has shape {entries['loss'].shape}, expected ({count},)"
            )
        out["loss"] = loss
    return out


def _per_feature(path: Path, name: str, value: np.ndarray, count: int, n: int) -> np.ndarray:
    value = np.asarray(value, dtype=np.float64)
    if value.ndim == 1 and value.size == count != n:
        value = value[:, None]  # one value per instance
    try:
        return np.broadcast_to(value, (count, n)).copy()
    except ValueError:
        raise IngestError(
            f"{path}: {name} has shape {value.shape}, expected ({count}, {n}) or ({n},)"
        ) from None


def _infer_layout(path: Path, W: np.ndarray, b: np.ndarray | None) -> str:
    if W.ndim not in (2, 3):
        raise IngestError(f"{path}: W has {W.ndim} axes (shape {W.shape}); expected 2 or 3")
    a, c = W.shape[-2:]
    n = None if b is None else int(np.asarray(b).shape[-1])
    prefix = "i" if W.ndim == 3 else ""
    if n is not None and a != c:
        if n == a:
            return prefix + "fh"
        if n == c:
            return prefix + "hf"
    hint = "no bias to tell features from hidden" if n is None else f"the bias has length {n}"
    raise IngestError(
        f"{path}: cannot tell the axes of W {W.shape} ({hint}); pass --layout {'/'.join(x for x in LAYOUTS if len(x) == W.ndim)}"
    )


def _dataset(
    steps: np.ndarray, arrays: list[dict[str, np.ndarray]], model: str | None
) -> xr.Dataset:
    first = arrays[0]
    names = [n for n in ("W", "W_out", "b", "loss") if n in first]
    missing = [n for n in names if any(n not in a for a in arrays)]
    if missing:
        raise IngestError(f"{missing[0]} is in some checkpoints but not all")
    data = {
        name: (store.DIMS[name], np.stack([a[name] for a in arrays]).astype(np.float32))
        for name in names
    }
    coords = {}
    for name in ("importance", "density"):
        if name in first:
            coords[name] = (("instance", "feature"), first[name])
    if model is None:
        model = "abs" if "W_out" in first else "relu_output"
    if model == "abs" and "W_out" not in first:
        raise IngestError("model abs needs W_out in the checkpoints")
    return xr.Dataset(
        data, coords={"step": steps.astype(np.int64), **coords}, attrs={"model": model}
    )
