"""Files to flat entries: which files a SOURCE holds, loading them safely, flattening."""

from __future__ import annotations

import pickle
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from toyanalysis._ingest._notes import Notes
from toyanalysis.errors import IngestError

TORCH_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")
PICKLE_SUFFIXES = (".pkl", ".pickle")
SUFFIXES = (*TORCH_SUFFIXES, ".safetensors", ".npz", ".npy", *PICKLE_SUFFIXES)
PICKLE_ADVICE = (
    "loading a pickle can run any code in it; pass --allow-pickle if you trust this file"
)
# nested dicts that hold training state, not the model: never searched for weights
OPAQUE = {
    "optimizer", "optimizers", "optimizer_state_dict", "optimizer_states", "optim", "opt",
    "opt_state", "optimizer_state", "scheduler", "lr_scheduler", "lr_schedulers", "callbacks", "loops",
}  # fmt: skip


@dataclass
class Content:
    """One file's entries, flattened to dotted keys (``model.W``)."""

    entries: dict[str, np.ndarray]
    opaque: list[str] = field(default_factory=list)  # keys of values that are not arrays
    stacked: set[str] = field(default_factory=set)  # keys from a list of state dicts (one per step)
    dropped: list[str] = field(default_factory=list)  # keys dropped with --rename KEY=


def checkpoint_files(source: Path, notes: Notes) -> list[Path]:
    """The checkpoint files of a SOURCE: the file itself, or a folder's files with known suffixes."""
    if source.is_file():
        if source.suffix.lower() not in SUFFIXES:
            raise IngestError(
                f"{source}: unsupported file type {source.suffix!r}; use {', '.join(SUFFIXES)}"
            )
        return [source]
    if not source.is_dir():
        raise IngestError(f"{source}: no such file or folder")
    items = sorted(p for p in source.iterdir() if not p.name.startswith("."))
    found = [p for p in items if p.is_file() and p.suffix.lower() in SUFFIXES]
    folders = [p.name for p in items if p.is_dir()]
    others = [p.name + ("/" if p.is_dir() else "") for p in items if p not in found]
    if not found:
        hint = (
            f"; it has folders {', '.join(folders)}: pass them as SOURCEs (with --as-instances for one run each)"
            if folders
            else ""
        )
        raise IngestError(
            f"{source}: no checkpoint files ({', '.join(SUFFIXES)}) in this folder{hint}"
        )
    if others:
        notes.add(f"not checkpoint files, ignored: {', '.join(others)}", str(source))
    return found


def load(path: Path, allow_pickle: bool) -> Any:
    """The Python object stored in a checkpoint file; pickles only with ``allow_pickle``."""
    suffix = path.suffix.lower()
    loader: Callable[[Path, bool], Any] = {
        ".safetensors": _safetensors,
        ".npz": _npz,
        ".npy": _npy,
        **dict.fromkeys(PICKLE_SUFFIXES, _pickle),
    }.get(suffix, _torch)
    try:
        return loader(path, allow_pickle)
    except IngestError:
        raise
    except ImportError as err:
        raise IngestError(
            f"{path}: reading this format needs {err.name}: pip install 'toyanalysis[io]'"
        ) from None
    except Exception as err:
        text = str(err).strip().splitlines()
        raise IngestError(
            f"{path}: cannot read checkpoint: {type(err).__name__}: {text[0] if text else ''}"
        ) from None


def _torch(path: Path, allow_pickle: bool) -> Any:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about pickle protocols before failing
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            if not _is_pickle(path, err):
                raise
            if not allow_pickle:
                raise IngestError(
                    f"{path}: holds Python objects besides tensors (a pickle); {PICKLE_ADVICE}"
                ) from None
    return _pickle(path, allow_pickle)


def _is_pickle(path: Path, err: Exception) -> bool:
    """Whether torch refused a pickle with objects in it (rather than a damaged file)."""
    if "unsupported global" in str(err).lower():
        return True
    with open(path, "rb") as fh:
        return fh.read(1) == b"\x80"  # the PROTO opcode every pickle since protocol 2 starts with


def _pickle(path: Path, allow_pickle: bool) -> Any:
    if not allow_pickle:
        raise IngestError(f"{path}: a pickle file; {PICKLE_ADVICE}")
    import torch  # pickled tensors need it

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:  # torch's own formats (zip, or the legacy sequence of pickles)
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception:
            if zipfile.is_zipfile(path):
                raise
        with open(path, "rb") as fh:
            return pickle.load(fh)


def _numpy_pickle(path: Path, err: ValueError) -> Exception:
    """NumPy's refusal of object arrays as the pickle advice; other errors as they are."""
    if "allow_pickle" in str(err):
        return IngestError(f"{path}: holds Python objects (a pickle); {PICKLE_ADVICE}")
    return err


def _npy(path: Path, allow_pickle: bool) -> Any:
    try:
        value = np.load(path, allow_pickle=allow_pickle)
    except ValueError as err:
        raise _numpy_pickle(path, err) from None
    return value.item() if value.dtype == object and value.ndim == 0 else value


def _npz(path: Path, allow_pickle: bool) -> Any:
    try:
        with np.load(path, allow_pickle=allow_pickle) as data:
            out = {k: data[k] for k in data.files}
    except ValueError as err:
        raise _numpy_pickle(path, err) from None
    return {k: v.item() if v.dtype == object and v.ndim == 0 else v for k, v in out.items()}


def _safetensors(path: Path, allow_pickle: bool) -> Any:
    from safetensors.numpy import load_file

    return dict(load_file(str(path)))


# --- flattening -------------------------------------------------------------------
def as_array(value: Any) -> np.ndarray | None:
    """A numeric NumPy array for tensors, arrays, numbers and lists of them; None otherwise."""
    if hasattr(value, "detach"):  # torch
        value = value.detach().cpu()
        if value.is_floating_point():
            value = value.float()
        return value.numpy()
    if isinstance(value, (bool, str, bytes)) or value is None:
        return None
    if isinstance(value, (list, tuple)):
        if not value:
            return None
        items = [as_array(v) for v in value]
        arrays = [i for i in items if i is not None]
        if len(arrays) != len(items) or len({a.shape for a in arrays}) != 1:
            return None
        return np.stack(arrays)
    try:
        array = np.asarray(value)
    except Exception:
        return None
    return array if array.dtype.kind in "biuf" else None


def flatten(path: Path, obj: Any, is_weight: Callable[[list[str]], bool]) -> Content:
    """Flat entries of a loaded object: a state dict (nested or not), a list of them, or a tensor."""
    if callable(getattr(obj, "state_dict", None)):
        obj = obj.state_dict()  # a whole nn.Module (only reachable with --allow-pickle)
    array = None if isinstance(obj, (dict, list, tuple)) else as_array(obj)
    if array is not None:
        name = "W_history" if path.stem.lower().endswith("_history") else "W"
        return Content({name: array})
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(o, dict) for o in obj):
        return _stack(path, "", list(obj))
    if not isinstance(obj, dict):
        raise IngestError(
            f"{path}: expected a state dict, a list of state dicts or a tensor, found {type(obj).__name__}"
        )
    content = Content({})
    lists: dict[str, list[dict]] = {}
    _walk(obj, "", content, lists)
    trajectories = {k: v for k, v in lists.items() if is_weight(list(_flat(v[0])))}
    content.opaque += [k for k in lists if k not in trajectories]
    if len(trajectories) > 1:
        raise IngestError(f"{path}: several lists of checkpoints: {', '.join(trajectories)}")
    for key, items in trajectories.items():
        stacked = _stack(path, key, items)
        clash = sorted(set(stacked.entries) & set(content.entries))
        if clash:
            raise IngestError(
                f"{path}: {clash[0]} is both in the list {key} and next to it; rename one with --rename"
            )
        content = Content(
            {**content.entries, **stacked.entries}, content.opaque, stacked=stacked.stacked
        )
    return content


def _walk(obj: dict, prefix: str, content: Content, lists: dict[str, list[dict]]) -> None:
    for name, value in obj.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            if {"state", "param_groups"} <= set(value) or str(name).lower() in OPAQUE:
                content.opaque.append(key)  # optimiser or trainer state
            else:
                _walk(value, key + ".", content, lists)
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, dict) for v in value):
            lists[key] = list(value)
        else:
            array = as_array(value)
            if array is None:
                content.opaque.append(key)
            else:
                content.entries[key] = array


def _flat(item: dict) -> dict[str, np.ndarray]:
    content = Content({})
    _walk(item, "", content, {})
    return content.entries


def _stack(path: Path, key: str, items: list[dict]) -> Content:
    """A list of state dicts as one set of entries with a leading step axis."""
    flats = [_flat(item) for item in items]
    where = f"{path}: list {key}" if key else f"{path}: list"
    names = list(flats[0])
    for k, flat in enumerate(flats):
        if set(flat) != set(names):
            odd = sorted(set(flat) ^ set(names))[0]
            raise IngestError(f"{where}: entry {odd} is in some elements but not in element {k}")
    entries = {}
    for name in names:
        shapes = [f[name].shape for f in flats]
        if len(set(shapes)) != 1:
            k = next(i for i, s in enumerate(shapes) if s != shapes[0])
            raise IngestError(
                f"{where}: {name} has shape {shapes[0]} in element 0 but {shapes[k]} in element {k}"
            )
        entries[name] = np.stack([f[name] for f in flats])
    return Content(entries, stacked=set(entries))
