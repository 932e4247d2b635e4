"""Per-(instance, feature) values: the shapes accepted for them, and --importance/--density specs."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from toyanalysis.errors import IngestError

ALONG = ("instance", "feature")
_POWER = re.compile(r"\s*([-+0-9.eE]+)\s*(?:\^|\*\*)\s*i\s*")


def grid_shape(
    label: str,
    shape: tuple[int, ...],
    count: int,
    n: int,
    axis: str | None = None,
    where: str = "",
    name: str = "",
) -> tuple[int, int]:
    """How a value of ``shape`` lies on the (instance, feature) grid, as a broadcastable 2-D shape.

    Accepted: ``()``, ``(n,)`` per feature, ``(count,)`` per instance, ``(count, n)``, and the
    broadcast shapes ``(count, 1)``, ``(1, n)``, ``(1, 1)``. A 1-D length that fits both
    (``count == n``) is refused unless ``axis`` ("instance" or "feature") says which.
    """
    prefix = f"{where}: " if where else ""
    size = math.prod(shape)
    if len(shape) == 1 and size > 1:
        if axis is None:
            if size == n == count:
                name = name or label.split(" ")[0]
                raise IngestError(
                    f"{prefix}{label} has shape ({size},), which fits both the {count} instances and "
                    f"the {n} features; say which with --along {name}=instance or --along {name}=feature"
                )
            axis = "feature" if size == n else "instance" if size == count else None
        wanted = n if axis == "feature" else count
        if axis is not None and size == wanted:
            return (1, n) if axis == "feature" else (count, 1)
    elif len(shape) <= 2 and size <= 1:
        return (1, 1)
    elif len(shape) == 2 and shape[0] in (1, count) and shape[1] in (1, n):
        return (shape[0], shape[1])
    raise IngestError(
        f"{prefix}{label} has shape {tuple(shape)}; expected ({count}, {n}), ({n},) per feature, "
        f"({count},) per instance, or a broadcast shape ({count}, 1) or (1, {n})"
    )


def on_grid(
    label: str,
    value: np.ndarray,
    count: int,
    n: int,
    axis: str | None = None,
    where: str = "",
    name: str = "",
) -> np.ndarray:
    """A value as a full ``(count, n)`` float64 array (see :func:`grid_shape`)."""
    value = np.asarray(value, dtype=np.float64)
    shape = grid_shape(label, value.shape, count, n, axis, where, name)
    return np.broadcast_to(value.reshape(shape), (count, n)).copy()


def check_range(name: str, values: np.ndarray, where: str) -> None:
    if not np.all(np.isfinite(values)):
        raise IngestError(f"{where}: {name} has NaN or inf values")
    if name == "importance" and np.any(values < 0):
        raise IngestError(f"{where}: importance must be >= 0, found {values.min():.4g}")
    if name == "density" and np.any((values < 0) | (values > 1)):
        raise IngestError(
            f"{where}: density must be within 0..1, found {values.min():.4g}..{values.max():.4g}"
        )


def from_spec(option: str, spec: Any, count: int, n: int, along: Mapping[str, str]) -> np.ndarray:
    """An ``--importance``/``--density`` value: a number, ``r^i``, ``a,b,c``, an array or a file."""
    name = option.lstrip("-")
    where = f"{option} {spec}" if isinstance(spec, (str, int, float, os.PathLike)) else option
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        value: Any = float(spec)
    elif isinstance(spec, str) and (match := _POWER.fullmatch(spec)):
        value = float(match[1]) ** np.arange(n, dtype=np.float64)
    elif isinstance(spec, str) and _is_numbers(spec):
        value = [float(s) for s in spec.split(",")]
        value = value[0] if len(value) == 1 else value
    elif isinstance(spec, (str, os.PathLike)):
        value = _array_file(Path(spec), where)
    else:
        value = np.asarray(spec, dtype=np.float64)
    out = on_grid(name, np.asarray(value), count, n, along.get(name), where)
    check_range(name, out, where)
    return out


def _is_numbers(text: str) -> bool:
    try:
        [float(s) for s in text.split(",")]
    except ValueError:
        return False
    return True


def _array_file(path: Path, where: str) -> np.ndarray:
    """One array from a .npy, .npz, .txt/.csv, .json, .pt or .safetensors file."""
    if not path.is_file():
        raise IngestError(f"{where}: not a number, r^i, a list a,b,c or an existing file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".txt", ".csv", ".tsv"):
            return np.loadtxt(path, delimiter="," if suffix == ".csv" else None, ndmin=1)
        if suffix == ".json":
            import json

            return np.asarray(json.loads(path.read_text()), dtype=np.float64)
        from toyanalysis._ingest._read import as_array, load

        loaded = load(path, allow_pickle=False)
    except IngestError:
        raise
    except Exception as err:
        raise IngestError(f"{where}: cannot read: {type(err).__name__}: {err}") from None
    if isinstance(loaded, dict):
        if len(loaded) != 1:
            raise IngestError(
                f"{where}: holds {len(loaded)} arrays ({', '.join(loaded)}); give one"
            )
        loaded = next(iter(loaded.values()))
    array = as_array(loaded)
    if array is None:
        raise IngestError(f"{where}: does not hold an array of numbers")
    return array
