"""The store: a Zarr (v3) group that xarray opens as a Dataset.

This module is the one place that knows Zarr. The format is documented in
``docs/store-format.md``; in short, ``W (step, instance, hidden, feature)``
plus ``b``, ``loss`` and coordinates, and the run's config as JSON in the
attributes.

Writers (the trainer, :func:`write_store`, :func:`save_analysis`) hold the
store's lock (:mod:`toyanalysis._lock`) for their whole life. A new store is
made beside its target and moved into place, so a half-made store never
appears under the target's name. A trainer pre-allocates the whole trajectory
(every step it will record) and fills it block by block; after each block it
writes, atomically, a snapshot of what resuming needs (arrays and JSON only,
never pickle) and then the number of committed records into the child group
``progress``. Readers (:func:`open_store`) only show committed records and
check the attributes, so a store is readable while training runs and still
opens, with every completed block, if the writer is killed.

>>> import numpy as np, xarray as xr, tempfile, os
>>> W = np.zeros((1, 1, 2, 3), np.float32)
>>> ds = xr.Dataset({"W": (("step", "instance", "hidden", "feature"), W)})
>>> path = os.path.join(tempfile.mkdtemp(), "run.zarr")
>>> write_store(path, ds)
>>> dict(open_store(path).sizes)
{'step': 1, 'instance': 1, 'hidden': 2, 'feature': 3}
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import json
import math
import os
import queue
import shutil
import tempfile
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from toyanalysis import __version__
from toyanalysis._lock import StoreLock, lock_path
from toyanalysis.errors import ConfigError, StoreError, StoreIOError, ToyAnalysisError

FORMAT_VERSION = 1
SNAPSHOT_FORMAT = 1
DIMS = {
    "W": ("step", "instance", "hidden", "feature"),
    "W_out": ("step", "instance", "feature", "hidden"),
    "b": ("step", "instance", "feature"),
    "loss": ("step", "instance"),
}
MODELS = ("relu_output", "linear", "hidden_relu", "abs")
PROGRESS = "progress"
SNAPSHOT = "resume.npz"
LEGACY_SNAPSHOT = "resume.pkl"  # written by toyanalysis 0.1 with pickle: never loaded
SNAPSHOT_META = "meta.json"
ANALYSIS = "analysis"
RUN_ID = "run_id"
_CHUNK_BYTES = 8_000_000
_TEMP_KINDS = ("creating", "replaced", "saving", "old-analysis")

__all__ = [
    "DIMS",
    "StoreLock",
    "TrajectoryWriter",
    "check_finite",
    "create_trajectory",
    "describe",
    "explain_failure",
    "find_damage",
    "lock_path",
    "normalize",
    "open_analysis",
    "open_store",
    "read_progress",
    "read_snapshot",
    "save_analysis",
    "write_store",
]


def _fault(point: str) -> None:
    """Test hook, called after each step of creation and of the commit protocol (no-op).

    Tests replace it to simulate a kill at ``point`` (see tests/test_store_safety.py).
    """


# --- small helpers ----------------------------------------------------------------------
def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


def _os_error(path: Path | str, what: str, err: OSError) -> StoreIOError:
    where = f" ({err.filename})" if err.filename and str(err.filename) != str(path) else ""
    return StoreIOError(f"{path}: {what}: {err.strerror or _one_line(err)}{where}")


def format_bytes(n: float) -> str:
    """``1536`` → ``'1.5 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} EiB"  # pragma: no cover


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), or None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _root_attrs(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads((path / "zarr.json").read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return {}
    attrs = meta.get("attributes", {}) if isinstance(meta, dict) else {}
    return attrs if isinstance(attrs, dict) else {}


def _sibling(path: Path, kind: str, tag: str) -> Path:
    """A temporary name beside ``path`` (same folder, so a rename is atomic)."""
    return path.with_name(f".{path.name}.{kind}-{tag}")


def _leftovers(path: Path) -> list[Path]:
    """Temporary folders a killed writer of ``path`` left beside it."""
    parent = path.parent
    if not parent.is_dir():
        return []
    found = []
    for kind in _TEMP_KINDS:
        for entry in parent.glob(f".{path.name}.{kind}-*"):
            if entry.is_dir() and not entry.is_symlink():
                found.append(entry)
    return found


def _remove_leftovers(path: Path) -> None:
    """Remove what killed writers left beside ``path`` (called with the lock held)."""
    for entry in _leftovers(path):
        shutil.rmtree(entry, ignore_errors=True)


# --- reading -------------------------------------------------------------------------------
def _is_store(path: Path) -> bool:
    return (path / "zarr.json").is_file() or (path / ".zgroup").is_file()


def is_toyanalysis_store(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a store written by toyanalysis (by its root attributes)."""
    return "toyanalysis_format" in _root_attrs(Path(path))


def read_progress(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The trainer's progress record (``committed``, ``complete``), or None for other stores.

    The record is checked: ``committed`` a whole number >= 0, ``complete`` true or false.
    """
    meta = Path(path) / PROGRESS / "zarr.json"
    if not meta.is_file():
        return None
    try:
        doc = json.loads(meta.read_text())
    except (OSError, ValueError):
        raise StoreError(f"{path}: progress record {meta} is unreadable") from None
    attrs = doc.get("attributes", {}) if isinstance(doc, dict) else None
    if not isinstance(attrs, dict):
        raise StoreError(f"{path}: progress record {meta} is malformed")
    committed = attrs.get("committed", 0)
    if not isinstance(committed, int) or isinstance(committed, bool) or committed < 0:
        raise StoreError(
            f"{path}: progress attribute committed is {committed!r}, expected a whole number >= 0"
        )
    complete = attrs.get("complete", False)
    if not isinstance(complete, bool):
        raise StoreError(
            f"{path}: progress attribute complete is {complete!r}, expected true or false"
        )
    return {**attrs, "committed": committed, "complete": complete}


def open_store(path: str | os.PathLike[str], *, allow_empty: bool = False) -> xr.Dataset:
    """Open a store lazily and check it follows the store format.

    Returns a Dataset with dims ordered as the format says, the default
    coordinates filled in for stores written by other tools (``importance``
    1, integer ``instance``/``feature``/``hidden`` labels), and only the
    records a trainer has committed. Malformed attributes (config that is not
    a run config, a ``sweep`` that is not a list of names, …) are refused in
    one line naming the store and the attribute.
    """
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such store")
    if not path.is_dir() or not _is_store(path):
        raise StoreError(f"{path}: not a Zarr store (no zarr.json inside)")
    check_chunk_files(path)
    try:
        ds = xr.open_zarr(path, consolidated=False, chunks={})
    except OSError as err:
        raise _os_error(path, "cannot read the store", err) from None
    except Exception as err:  # zarr raises many kinds on corrupt metadata or chunks
        damage = find_damage(path)
        raise StoreError(
            damage or f"{path}: cannot open as a Zarr dataset: {_one_line(err)}"
        ) from None
    progress = read_progress(path)
    if progress is not None and "step" in ds.dims:
        committed = progress["committed"]
        if committed > ds.sizes["step"]:
            raise StoreError(
                f"{path}: progress says {committed} records are committed "
                f"but the store has room for {ds.sizes['step']}"
            )
        ds = ds.isel(step=slice(0, committed))
    check_attrs(ds.attrs, str(path))
    ds = normalize(ds, str(path))
    _check_config_matches(ds, str(path))
    if ds.sizes["step"] == 0 and not allow_empty:
        raise StoreError(f"{path}: the store has no recorded steps yet")
    return ds


def check_attrs(attrs: Mapping[str, Any], name: str = "dataset") -> None:
    """Refuse malformed root attributes in one line naming the attribute."""
    fmt = attrs.get("toyanalysis_format")
    if fmt is not None:
        if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt < 1:
            raise StoreError(f"{name}: attribute toyanalysis_format is {fmt!r}, expected 1")
        if fmt > FORMAT_VERSION:
            raise StoreError(
                f"{name}: written in store format {fmt} by a newer toyanalysis; "
                f"this version reads format {FORMAT_VERSION}"
            )
    model = attrs.get("model")
    if model is not None and model not in MODELS:
        raise StoreError(
            f"{name}: attribute model is {model!r}, expected one of {', '.join(MODELS)}"
        )
    sweep = attrs.get("sweep")
    if sweep is not None and (
        not isinstance(sweep, (list, tuple)) or not all(isinstance(s, str) for s in sweep)
    ):
        raise StoreError(f"{name}: attribute sweep is {sweep!r}, expected a list of names")
    run_id = attrs.get(RUN_ID)
    if run_id is not None and not isinstance(run_id, str):
        raise StoreError(f"{name}: attribute {RUN_ID} is {run_id!r}, expected a string")
    config = attrs.get("config")
    if config is not None:
        from toyanalysis.config import RunConfig

        if not isinstance(config, str):
            raise StoreError(
                f"{name}: attribute config is {type(config).__name__}, expected JSON text"
            )
        try:
            parsed = RunConfig.from_json(config)
        except ConfigError as err:
            raise StoreError(f"{name}: attribute config is not a valid run config: {err}") from None
        except Exception as err:
            raise StoreError(
                f"{name}: attribute config is not a valid run config: {_one_line(err)}"
            ) from None
        if model is not None and parsed.model != model:
            raise StoreError(
                f"{name}: attribute model is {model!r} but its config says {parsed.model!r}"
            )


def _check_config_matches(ds: xr.Dataset, name: str) -> None:
    """The sizes a store's config promises are the sizes of its arrays."""
    if "config" not in ds.attrs:
        return
    from toyanalysis.config import RunConfig

    config = RunConfig.from_json(ds.attrs["config"])
    wanted = {
        "instance": config.n_instances,
        "feature": config.n_features,
        "hidden": config.n_hidden,
    }
    for dim, size in wanted.items():
        if ds.sizes[dim] != size:
            raise StoreError(
                f"{name}: its config says {size} {dim}s but W has {ds.sizes[dim]} "
                "(the arrays and the attributes come from different runs)"
            )


def normalize(ds: xr.Dataset, name: str = "dataset") -> xr.Dataset:
    """Check a Dataset against the store format and fill the optional parts.

    Returns a new Dataset (the argument is not modified) with the variables'
    dims in the format's order and default coordinates filled in.
    """
    if "W" not in ds.data_vars:
        raise StoreError(
            f"{name}: no variable W (found: {', '.join(map(str, ds.data_vars)) or 'none'})"
        )
    ds = _ordered_variables(ds, name)
    for dim in ("step", "instance", "feature", "hidden"):
        if dim not in ds.coords:
            ds = ds.assign_coords({dim: np.arange(ds.sizes[dim], dtype=np.int64)})
    ds = _whole_steps(ds, name)
    if "importance" not in ds.coords:
        ones = np.ones((ds.sizes["instance"], ds.sizes["feature"]))
        ds = ds.assign_coords(importance=(("instance", "feature"), ones))
    _check_coordinates(ds, name)
    attrs = dict(ds.attrs)
    attrs.setdefault("model", "relu_output")
    sweep = attrs.get("sweep", [])
    attrs["sweep"] = [s for s in sweep if s in ds.coords and ds[s].dims == ("instance",)]
    return ds.assign_attrs(attrs)


def _ordered_variables(ds: xr.Dataset, name: str) -> xr.Dataset:
    """The weight variables checked (dims, dtype, sizes, one checkpoint in memory) and ordered."""
    ordered = {}
    for var, dims in DIMS.items():
        if var not in ds.data_vars:
            continue
        have = ds[var].dims
        if set(have) != set(dims) or len(have) != len(dims):
            raise StoreError(f"{name}: variable {var} has dims {have}, expected {dims}")
        if not np.issubdtype(ds[var].dtype, np.floating):
            raise StoreError(f"{name}: variable {var} has dtype {ds[var].dtype}, expected float")
        ordered[var] = ds[var].transpose(*dims)
    ds = ds.assign(ordered)
    for dim in ("instance", "feature", "hidden"):
        if ds.sizes[dim] == 0:
            raise StoreError(f"{name}: variable W has no {dim}s (size 0)")
    per_step = ds["W"].dtype.itemsize * math.prod(ds["W"].shape[1:])
    memory = available_memory()
    if memory is not None and per_step > memory:
        raise StoreError(
            f"{name}: one checkpoint of W {ds['W'].shape[1:]} needs {format_bytes(per_step)} "
            f"of memory; {format_bytes(memory)} is available"
        )
    return ds


def _whole_steps(ds: xr.Dataset, name: str) -> xr.Dataset:
    """Steps as integers (whole floats are converted), strictly increasing."""
    steps = ds["step"].values
    if steps.dtype.kind not in "iu":
        whole = steps.dtype.kind == "f" and np.all(np.isfinite(steps))
        if not (whole and np.all(steps == np.round(steps))):
            raise StoreError(
                f"{name}: coordinate step has dtype {steps.dtype}, expected whole numbers"
            )
        ds = ds.assign_coords(step=steps.astype(np.int64))
        steps = ds["step"].values
    if steps.size > 1 and np.any(np.diff(steps) <= 0):
        raise StoreError(f"{name}: step coordinate is not strictly increasing")
    return ds


def _check_coordinates(ds: xr.Dataset, name: str) -> None:
    for coord in ("importance", "density"):
        if coord not in ds.coords:
            continue
        if set(ds[coord].dims) != {"instance", "feature"}:
            raise StoreError(
                f"{name}: coordinate {coord} has dims {ds[coord].dims}, expected (instance, feature)"
            )
        if ds[coord].dtype.kind not in "fiu":
            raise StoreError(
                f"{name}: coordinate {coord} has dtype {ds[coord].dtype}, expected numbers"
            )
    if "seed" in ds.coords and ds["seed"].dtype.kind not in "iu":
        raise StoreError(f"{name}: coordinate seed has dtype {ds['seed'].dtype}, expected integers")


# --- finding what is damaged -----------------------------------------------------------------
def check_chunk_files(path: str | os.PathLike[str]) -> None:
    """Refuse a store whose Blosc chunk files are truncated, empty or garbage, naming the variable.

    Cheap (one 16-byte read per chunk file) and deterministic: Blosc's header
    records the compressed and the decoded size of the chunk, and the file must
    have exactly that many bytes and decode to exactly one chunk. (Decoding a
    truncated Blosc chunk does not reliably fail: it can read past the end.)
    """
    path = Path(path)
    with os.scandir(path) as listing:
        folders = [Path(e.path) for e in listing if e.is_dir(follow_symlinks=False)]
    for folder in sorted(folders):
        try:
            meta = json.loads((folder / "zarr.json").read_text())
            if meta.get("node_type") != "array":
                continue
            codecs = meta.get("codecs", [])
            if [c.get("name") for c in codecs if isinstance(c, dict)] != ["bytes", "blosc"]:
                continue
            chunk = meta["chunk_grid"]["configuration"]["chunk_shape"]
            itemsize = np.dtype(meta["data_type"]).itemsize
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue  # not ours to judge here; reading it will say what is wrong
        decoded = math.prod(chunk) * itemsize
        for file in sorted((folder / "c").rglob("*")) if (folder / "c").is_dir() else []:
            if not file.is_file() or file.name.endswith(".partial"):
                continue
            key = ".".join(file.relative_to(folder / "c").parts)
            try:
                size = file.stat().st_size
                with open(file, "rb") as fh:
                    header = fh.read(16)
            except OSError as err:
                raise _os_error(path, f"cannot read {file}", err) from None
            what = None
            if size < 16:
                what = f"{size} bytes, less than a Blosc header"
            else:
                nbytes = int.from_bytes(header[4:8], "little")
                cbytes = int.from_bytes(header[12:16], "little")
                if cbytes != size:
                    what = f"{size} bytes where its header says {cbytes}"
                elif nbytes != decoded:
                    what = f"its header says it decodes to {nbytes} bytes, not {decoded}"
            if what is not None:
                raise StoreError(
                    f"{path}: variable {folder.name}: chunk {key} ({file}) is corrupt or "
                    f"truncated ({what})"
                )


def find_damage(path: str | os.PathLike[str], *, limit_bytes: int | None = None) -> str | None:
    """One line naming the first unreadable metadata file or chunk of a store, or None.

    Zarr decodes chunks lazily, so a truncated, empty or garbage chunk (what an
    interrupted copy leaves) raises only when its data is computed, with an
    error that names neither the store nor the variable. This reads every
    node's metadata and every stored chunk, one at a time, to say which.
    """
    import zarr

    path = Path(path)
    try:
        check_chunk_files(path)
    except StoreError as err:
        return str(err)
    for meta in sorted(path.rglob("zarr.json")):
        if meta.is_symlink():
            continue
        try:
            json.loads(meta.read_text())
        except (OSError, ValueError) as err:
            where = meta.parent.relative_to(path).as_posix()
            where = f"variable {where}" if where else "the root group"
            return f"{path}: cannot open the metadata of {where} ({meta}): {_one_line(err)}"
    try:
        group = zarr.open_group(path, mode="r")
        members = group.members(max_depth=None)
    except Exception as err:
        return f"{path}: cannot open as a Zarr group: {_one_line(err)}"
    read = 0
    for member, node in members:
        if not isinstance(node, zarr.Array):
            continue
        try:
            grid = node.cdata_shape
        except Exception as err:
            return f"{path}: variable {member} has unusable metadata: {_one_line(err)}"
        for index in itertools.product(*(range(n) for n in grid)):
            try:
                block = node.get_block_selection(index)
            except Exception as err:
                return f"{path}: variable {member}: {_chunk_text(node, index)} is corrupt or truncated ({_one_line(err)})"
            read += getattr(block, "nbytes", 0)
            if limit_bytes is not None and read > limit_bytes:
                return None
    return None


def _chunk_text(array: Any, index: tuple[int, ...]) -> str:
    dims = getattr(array.metadata, "dimension_names", None) or ()
    text = f"chunk {'.'.join(map(str, index)) or '0'}"
    if dims and dims[0] == "step" and index:
        size = array.chunks[0]
        text += f" (records {index[0] * size}..{min((index[0] + 1) * size, array.shape[0]) - 1})"
    return text


def explain_failure(paths: Sequence[str | os.PathLike[str]], err: BaseException) -> str | None:
    """For an unexpected error while reading ``paths``: one line saying which store is damaged.

    Returns None when every store reads cleanly (the error is then not the
    input's fault and should be shown as it is).
    """
    for path in paths:
        path = Path(path)
        if path.is_dir() and _is_store(path):
            damage = find_damage(path)
            if damage is not None:
                return damage
    return None


@contextlib.contextmanager
def reading(path: str | os.PathLike[str]) -> Iterator[None]:
    """Re-raise a decoding error from inside the block as a StoreError naming store and variable."""
    try:
        yield
    except (ToyAnalysisError, MemoryError):
        raise
    except OSError as err:
        raise _os_error(Path(path), "cannot read the store", err) from None
    except Exception as err:
        damage = explain_failure([path], err)
        if damage is None:
            raise
        raise StoreError(damage) from None


# --- making room for a store -----------------------------------------------------------------
def _foreign_entry(path: Path) -> Path | None:
    """The first file or link inside a toyanalysis store that is not part of a store."""
    stack = [path]
    while stack:
        node = stack.pop()
        kind = None
        with contextlib.suppress(OSError, ValueError, AttributeError):
            kind = json.loads((node / "zarr.json").read_text()).get("node_type")
        with os.scandir(node) as listing:
            entries = list(listing)
        for entry in entries:
            here = Path(entry.path)
            if entry.is_symlink():
                return here
            if entry.is_file():
                if entry.name == "zarr.json" or (
                    entry.name.startswith("zarr.") and entry.name.endswith(".partial")
                ):  # metadata, or zarr's temporary file of a metadata write cut short
                    continue
                if node == path / PROGRESS and (
                    entry.name in (SNAPSHOT, LEGACY_SNAPSHOT) or entry.name.startswith(".resume-")
                ):
                    continue
                return here
            if entry.is_dir():
                if entry.name == "c" and kind != "group":
                    bad = _non_chunk(here)
                    if bad is not None:
                        return bad
                    continue
                stack.append(here)
                continue
            return here
    return None


def _non_chunk(folder: Path) -> Path | None:
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            entry = Path(root) / name
            if entry.is_symlink() or not (entry.is_dir() or entry.is_file()):
                return entry
    return None


def _check_replaceable(path: Path, overwrite: bool) -> None:
    """Refuse to write at ``path`` unless it is free, or a toyanalysis store and ``overwrite``."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise StoreIOError(f"{path}: cannot create it: {parent} is a file, not a folder")
            break
    if os.path.islink(path):
        if not overwrite:
            raise StoreError(f"{path}: already exists (pass --overwrite to replace it)")
        raise StoreError(f"{path}: is a symbolic link; refusing to replace it (remove the link)")
    if not path.exists():
        return
    if not overwrite:
        raise StoreError(f"{path}: already exists (pass --overwrite to replace it)")
    if not path.is_dir():
        raise StoreError(f"{path}: exists and is not a Zarr store; refusing to overwrite it")
    if not any(path.iterdir()):
        return
    if not _is_store(path):
        raise StoreError(f"{path}: exists and is not a Zarr store; refusing to overwrite it")
    if not is_toyanalysis_store(path):
        raise StoreError(
            f"{path}: is a Zarr store not written by toyanalysis (no toyanalysis_format "
            "attribute); refusing to overwrite it"
        )
    foreign = _foreign_entry(path)
    if foreign is not None:
        raise StoreError(
            f"{path}: holds {foreign.relative_to(path)}, which is not part of a store; "
            "refusing to overwrite it (move that out first)"
        )


def prepare_output(path: str | os.PathLike[str], overwrite: bool) -> Path:
    """Check that a new store may be written at ``path`` (nothing is deleted here).

    The store itself is made beside ``path`` and moved into place by the writer
    (:func:`create_trajectory`, :func:`write_store`), which replaces an old one
    only once the new one is complete.
    """
    path = Path(path)
    _check_replaceable(path, overwrite)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _os_error(path, "cannot create its folder", err) from None
    return path


def _move_into_place(tmp: Path, path: Path, tag: str) -> None:
    """Rename a finished store ``tmp`` to ``path``, replacing (then deleting) an old one there."""
    old = None
    if path.exists() or os.path.islink(path):
        old = _sibling(path, "replaced", tag)
        os.rename(path, old)
        _fault("create:aside")
    try:
        os.rename(tmp, path)
    except OSError as err:
        if old is not None:
            with contextlib.suppress(OSError):
                os.rename(old, path)
        raise _os_error(path, "cannot move the new store into place", err) from None
    _fault("create:moved")
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def new_run_id() -> str:
    return uuid.uuid4().hex


# --- writing whole datasets -----------------------------------------------------------------
def _encoding(ds: xr.Dataset, step_chunk: int) -> dict[str, dict[str, Any]]:

    from zarr.codecs import BloscCodec

    compressor = BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")
    encoding: dict[str, dict[str, Any]] = {}
    for var in map(str, ds.data_vars):
        shape = ds[var].shape
        chunks = tuple(step_chunk if d == "step" else s for d, s in zip(ds[var].dims, shape))
        encoding[var] = {"chunks": tuple(max(1, c) for c in chunks), "compressors": (compressor,)}
        if np.issubdtype(ds[var].dtype, np.floating):
            encoding[var]["fill_value"] = np.nan
    return encoding


def records_per_chunk(bytes_per_record: int) -> int:
    """Records per chunk: whole blocks of about 8 MB of weights, at most 1,000."""
    return int(np.clip(_CHUNK_BYTES // max(bytes_per_record, 1), 1, 1000))


def step_chunk(ds: xr.Dataset) -> int:
    """:func:`records_per_chunk` for a Dataset's variables."""
    return records_per_chunk(
        sum(ds[v].isel(step=0).nbytes for v in ds.data_vars if "step" in ds[v].dims)
    )


def _set_progress(path: Path, **attrs: Any) -> None:
    import zarr

    group = zarr.open_group(path, mode="r+")
    progress = group.require_group(PROGRESS)
    progress.attrs.update(attrs)


def base_attrs(
    model: str,
    config_json: str | None = None,
    sweep: list[str] | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "toyanalysis_format": FORMAT_VERSION,
        "toyanalysis_version": __version__,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "model": model,
        "sweep": list(sweep or []),
        RUN_ID: run_id or new_run_id(),
    }
    if config_json is not None:
        attrs["config"] = config_json
    return attrs


def write_store(path: str | os.PathLike[str], ds: xr.Dataset, *, overwrite: bool = False) -> None:
    """Write a whole in-memory Dataset in the store format (used by ingest and tests).

    The store is written beside ``path`` with the writer lock held and moved
    into place once complete; an existing store is replaced only with
    ``overwrite`` and only if it is a toyanalysis store with nothing foreign in it.
    """
    ds = normalize(ds.copy(), "dataset")
    check_finite(ds, str(path), variables=list(ds.data_vars))
    path = Path(path)
    run_id = new_run_id()
    attrs = base_attrs(
        ds.attrs.get("model", "relu_output"), ds.attrs.get("config"), ds.attrs.get("sweep"), run_id
    )
    ds.attrs = {**ds.attrs, **attrs}
    prepare_output(path, overwrite)
    with StoreLock(path, "write_store", run_id=run_id):
        prepare_output(path, overwrite)  # again, now that no other writer can change it
        _remove_leftovers(path)
        _build_beside(path, ds, run_id, complete=True, failure="writing failed")


def save_analysis(path: str | os.PathLike[str], result: xr.Dataset, name: str) -> str:
    """Write an analysis result into the store's group ``analysis/<name>``, replacing any old one.

    A dim the store's root also has, with other labels (a classification of
    the last step only: ``step`` of size 1), is saved under the name
    ``<name>_<dim>``, so ``xr.open_datatree(store, engine="zarr")`` still
    opens the whole store; :func:`open_analysis` renames it back. The group is
    written beside the store and moved in with the writer lock held, so a
    reader sees the old result or the new one, never half of one.
    """
    import zarr

    path = Path(path)
    if not _is_store(path):
        raise StoreError(f"{path}: not a Zarr store")
    if not name or "/" in name or name.startswith((".", "__")):
        raise StoreError(f"{path}: bad analysis name {name!r}")
    out = _renamed_apart(xr.open_zarr(path, consolidated=False), result, name)
    for var in list(out.variables):
        if (
            out[var].dtype.kind == "U"
        ):  # fixed-width unicode has no Zarr v3 spec; variable-length has
            out[var] = out[var].astype(object)
    tag = new_run_id()
    with StoreLock(path, f"save analysis/{name}", run_id=tag):
        _remove_leftovers(path)
        tmp = _sibling(path, "saving", tag)
        target = path / ANALYSIS / name
        try:
            out.to_zarr(tmp, mode="w-", zarr_format=3, consolidated=False)
            zarr.open_group(path, mode="r+").require_group(ANALYSIS)
            old = None
            if target.exists():
                old = _sibling(path, "old-analysis", tag)
                os.rename(target, old)
            os.rename(tmp, target)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except OSError as err:
            shutil.rmtree(tmp, ignore_errors=True)
            raise _os_error(path, f"cannot save analysis/{name}", err) from None
        except Exception:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return f"{ANALYSIS}/{name}"


def _renamed_apart(root: xr.Dataset, result: xr.Dataset, name: str) -> xr.Dataset:
    """``result`` with each dim that clashes with the root's renamed ``<name>_<dim>``."""
    renamed = {}
    for dim in map(str, result.dims):
        if dim not in root.dims:
            continue
        same = root.sizes[dim] == result.sizes[dim]
        if same and dim in root.indexes and dim in result.indexes:
            same = root.indexes[dim].equals(result.indexes[dim])
        if not same:
            renamed[dim] = f"{name}_{dim}"
    out = result.rename(renamed)
    if renamed:
        out.attrs = {**result.attrs, "renamed_dims": json.dumps(renamed)}
    return out


def open_analysis(path: str | os.PathLike[str], name: str) -> xr.Dataset:
    """Read back a result saved with :func:`save_analysis` (dims under their own names)."""
    path = Path(path)
    if not (path / ANALYSIS / name / "zarr.json").is_file():
        raise StoreError(f"{path}: no saved analysis {name!r}")
    ds = xr.open_zarr(path, group=f"{ANALYSIS}/{name}", consolidated=False)
    renamed = json.loads(ds.attrs.pop("renamed_dims", "{}"))
    return ds.rename({saved: dim for dim, saved in renamed.items()})


# --- the resume snapshot ------------------------------------------------------------------
def write_snapshot(path: Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    """Replace ``progress/resume.npz`` atomically: numeric arrays plus one JSON record.

    The temporary file gets a fresh unguessable name with exclusive creation
    (``tempfile.mkstemp``), so a planted file or link is never followed.
    """
    folder = path / PROGRESS
    payload = {name: np.ascontiguousarray(value) for name, value in arrays.items()}
    for name, value in payload.items():
        if value.dtype.kind not in "fiu":
            raise StoreError(f"{path}: snapshot array {name} has dtype {value.dtype}")
    payload[SNAPSHOT_META] = np.frombuffer(
        json.dumps({"format": SNAPSHOT_FORMAT, **meta}).encode(), dtype=np.uint8
    )
    fd, tmp = tempfile.mkstemp(prefix=".resume-", suffix=".tmp", dir=folder)
    try:
        savez: Any = np.savez  # numpy's stubs read ** entries as its allow_pickle flag
        with os.fdopen(fd, "wb") as fh:
            savez(fh, **payload)
        _fault("commit:snapshot-temp")
        os.replace(tmp, folder / SNAPSHOT)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_snapshot(
    path: str | os.PathLike[str], expected: Mapping[str, tuple[tuple[int, ...], str]]
) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The resume snapshot's arrays and JSON record, checked before use; None if there is none.

    ``expected`` maps each array name to its shape and dtype; anything else in
    the file, a different shape or dtype, a non-finite value, or anything that
    would need pickle to load, is refused. Nothing in the file is executed.
    """
    path = Path(path)
    file = path / PROGRESS / SNAPSHOT
    legacy = path / PROGRESS / LEGACY_SNAPSHOT

    def bad(reason: str) -> StoreError:
        return StoreError(
            f"{path}: resume snapshot {file} is invalid ({reason}); train again with --overwrite"
        )

    if not os.path.lexists(file):
        if os.path.lexists(legacy):
            raise StoreError(
                f"{path}: its resume snapshot is in the old pickle format ({legacy}), which is "
                "never loaded because it could run code; train again with --overwrite"
            )
        return None
    if file.is_symlink() or not file.is_file():
        raise bad("not a plain file")
    _check_entries(file, expected, bad)
    arrays, raw = _load_snapshot(file, expected, bad)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise bad(f"{SNAPSHOT_META} is not JSON text")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise bad(f"{SNAPSHOT_META}: {_one_line(err)}") from None
    if not isinstance(meta, dict) or meta.get("format") != SNAPSHOT_FORMAT:
        raise bad(f"{SNAPSHOT_META} is not a format-{SNAPSHOT_FORMAT} record")
    return arrays, meta


def _check_entries(
    file: Path,
    expected: Mapping[str, tuple[tuple[int, ...], str]],
    bad: Callable[[str], StoreError],
) -> None:
    """The snapshot archive holds exactly the expected entries, none larger than it should."""
    wanted = {
        f"{name}.npy": math.prod(shape) * np.dtype(dtype).itemsize
        for name, (shape, dtype) in expected.items()
    }
    wanted[f"{SNAPSHOT_META}.npy"] = 1 << 20
    try:
        with zipfile.ZipFile(file) as archive:
            infos = archive.infolist()
    except (OSError, zipfile.BadZipFile, ValueError) as err:
        raise bad(_one_line(err)) from None
    names = {info.filename for info in infos}
    if names != set(wanted):
        extra = sorted(names - set(wanted)) or sorted(set(wanted) - names)
        raise bad(f"unexpected or missing entries: {', '.join(extra[:3])}")
    for info in infos:
        if info.file_size > wanted[info.filename] + 4096:
            raise bad(f"entry {info.filename} is {info.file_size} bytes, too large")


def _load_snapshot(
    file: Path,
    expected: Mapping[str, tuple[tuple[int, ...], str]],
    bad: Callable[[str], StoreError],
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The checked arrays and the raw JSON record, loaded without pickle."""
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(file, allow_pickle=False) as npz:
            for name, (shape, dtype) in expected.items():
                value = npz[name]
                if value.shape != tuple(shape) or value.dtype != np.dtype(dtype):
                    raise bad(
                        f"{name} has shape {value.shape} and dtype {value.dtype}, "
                        f"expected {tuple(shape)} {np.dtype(dtype)}"
                    )
                if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
                    raise bad(f"{name} has NaN or inf values")
                arrays[name] = value
            raw = npz[SNAPSHOT_META]
    except StoreError:
        raise
    except Exception as err:  # ValueError: object arrays need pickle; zip/npy format errors
        raise bad(_one_line(err)) from None
    return arrays, raw


def snapshot_error(path: str | os.PathLike[str], reason: str) -> StoreError:
    file = Path(path) / PROGRESS / SNAPSHOT
    return StoreError(
        f"{path}: resume snapshot {file} is invalid ({reason}); train again with --overwrite"
    )


def remove_snapshot(path: Path) -> None:
    for name in (SNAPSHOT, LEGACY_SNAPSHOT):
        (path / PROGRESS / name).unlink(missing_ok=True)


def set_committed(path: Path, committed: int, complete: bool) -> None:
    """Write the progress record (used to finish a commit that a kill cut short)."""
    _set_progress(path, committed=int(committed), complete=bool(complete))


def store_run_id(path: Path) -> str | None:
    value = _root_attrs(path).get(RUN_ID)
    return value if isinstance(value, str) else None


# --- the trainer's writer ---------------------------------------------------------------
class TrajectoryWriter:
    """Fills a pre-allocated store block by block from a background thread.

    ``put`` hands over a block of records (possibly none) with a snapshot; the
    thread checks the store is still this run's (its ``run_id``), writes the
    arrays, then the resume snapshot (atomic rename), then the committed
    count. Training only waits when two blocks are already queued.
    """

    def __init__(self, path: Path, committed: int, run_id: str | None) -> None:
        import zarr

        self.path = path
        self.run_id = run_id
        self._group = zarr.open_group(path, mode="r+")
        self._arrays = {
            name: node
            for name in DIMS
            if name in self._group and isinstance(node := self._group[name], zarr.Array)
        }
        self.committed = committed
        self._queue: queue.Queue[
            tuple[int, dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any]] | None
        ] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._abandon = False
        self._thread = threading.Thread(target=self._run, name="toyanalysis-writer", daemon=True)
        self._thread.start()

    def put(
        self,
        start: int,
        block: dict[str, np.ndarray],
        arrays: dict[str, np.ndarray],
        meta: dict[str, Any],
    ) -> None:
        self._raise()
        self._queue.put((start, block, arrays, meta))

    def close(self, complete: bool) -> None:
        """Wait for the queued blocks to be written; then, if ``complete``, mark the store so.

        Interrupted while waiting (SIGINT, SIGTERM), it drops what is still
        queued, waits for the block being written to be committed, and re-raises:
        so the caller releases the lock only once nothing writes any more.
        """
        try:
            self._queue.put(None)
            self._thread.join()
        except BaseException:
            self._abandon = True
            with contextlib.suppress(queue.Empty):
                while True:
                    self._queue.get_nowait()
            self._queue.put(None)
            while self._thread.is_alive():
                with contextlib.suppress(BaseException):
                    self._thread.join()
            raise
        self._raise()
        if complete:
            try:
                self._check_owner()
                remove_snapshot(self.path)  # nothing left to resume
                _fault("complete:snapshot-removed")
                _set_progress(self.path, committed=self.committed, complete=True)
                _fault("complete:done")
            except OSError as err:
                raise _os_error(self.path, "finishing the store failed", err) from None

    def _check_owner(self) -> None:
        now = store_run_id(self.path) if self.path.exists() else "(the store is gone)"
        if now != self.run_id:
            raise StoreError(
                f"{self.path}: was replaced by another writer while this run was writing it "
                f"(run id {self.run_id}, now {now}); stopped without writing"
            )

    def _raise(self) -> None:
        err = self._error
        if err is None:
            return
        if isinstance(err, ToyAnalysisError):
            raise err
        if isinstance(err, OSError):
            raise _os_error(
                self.path,
                f"writing failed after {self.committed} committed records (kept; "
                "free the problem and continue with --resume)",
                err,
            )
        raise StoreError(f"{self.path}: writing failed: {_one_line(err)}")

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is not None or self._abandon:
                continue
            start, block, arrays, meta = item
            try:
                self._check_owner()
                stop = start + (len(next(iter(block.values()))) if block else 0)
                for name, values in block.items():
                    self._arrays[name][start:stop] = values
                _fault("commit:data")
                write_snapshot(self.path, arrays, {**meta, RUN_ID: self.run_id, "committed": stop})
                _fault("commit:snapshot")
                if stop != self.committed:
                    _set_progress(self.path, committed=stop, complete=False)
                    _fault("commit:committed")
                self.committed = stop
            except BaseException as err:  # surfaced in the training thread
                self._error = err


def create_trajectory(
    path: str | os.PathLike[str], template: xr.Dataset, *, overwrite: bool = False
) -> None:
    """Pre-allocate a store for every recorded step of a run from a lazy (dask) template.

    Made beside ``path`` (``.NAME.creating-RUNID``) and renamed into place once
    its metadata and progress record are written; call with the lock held.
    """
    path = Path(path)
    run_id = str(template.attrs.get(RUN_ID) or new_run_id())
    prepare_output(path, overwrite)
    _remove_leftovers(path)
    _build_beside(path, template, run_id, complete=False, failure="cannot create the store")


def _build_beside(path: Path, ds: xr.Dataset, run_id: str, *, complete: bool, failure: str) -> None:
    """Write ``ds`` beside ``path`` (``.NAME.creating-RUNID``), then move it into place.

    ``complete``: a whole dataset, every record committed (``write_store``);
    otherwise a lazy template whose data are not computed, nothing committed
    (``create_trajectory``, with its fault-injection points). A failure removes
    the half-made folder; ``path`` is never touched until the move.
    """
    tmp = _sibling(path, "creating", run_id)
    try:
        encoding = _encoding(ds, step_chunk(ds))
        if complete:
            ds.to_zarr(tmp, mode="w-", zarr_format=3, consolidated=False, encoding=encoding)
        else:
            ds.to_zarr(
                tmp, mode="w-", zarr_format=3, consolidated=False, encoding=encoding, compute=False
            )
            _fault("create:template")
        _set_progress(tmp, committed=int(ds.sizes["step"]) if complete else 0, complete=complete)
        if not complete:
            _fault("create:progress")
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _os_error(path, failure, err) from None
    except Exception:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _move_into_place(tmp, path, run_id)


def creation_was_cut(path: str | os.PathLike[str]) -> bool:
    """Whether a writer was killed while making the store at ``path`` (a leftover beside it)."""
    return bool(_leftovers(Path(path)))


def check_finite(
    ds: xr.Dataset, name: str = "dataset", variables: Any = ("W", "W_out", "b")
) -> None:
    """Raise StoreError naming the first step and instance where a variable is NaN or inf.

    ``name`` is the store's path when the Dataset comes from one: its chunk
    files are then checked first (:func:`check_chunk_files`).
    """
    if name != "dataset" and _is_store(Path(name)):
        check_chunk_files(name)
    for var in variables:
        if var not in ds.data_vars:
            continue
        other = [d for d in ds[var].dims if d not in ("step", "instance")]
        with reading(name) if Path(name).is_dir() else contextlib.nullcontext():
            bad = (~np.isfinite(ds[var])).any(dim=other).compute()
        if bool(bad.any()):
            step_i, inst_i = np.argwhere(bad.values)[0]
            raise StoreError(
                f"{name}: variable {var} has NaN or inf values "
                f"(first at step={ds.step.values[step_i]}, instance={ds.instance.values[inst_i]})"
            )


def describe(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What a store holds, after checking it: sizes, steps, sweep, variables, progress."""
    ds = open_store(path, allow_empty=True)
    check_finite(ds, str(path))
    progress = read_progress(path)
    steps = ds["step"].values
    config = json.loads(ds.attrs["config"]) if "config" in ds.attrs else {}
    summary: dict[str, Any] = {
        "format": ds.attrs.get("toyanalysis_format", "foreign"),
        "model": ds.attrs["model"],
        "config": config.get("name", "-"),
        "sizes": {d: int(s) for d, s in ds.sizes.items()},
        "steps": f"{steps[0]}..{steps[-1]} ({len(steps)} recorded)" if len(steps) else "none",
        "variables": [f"{v}{tuple(ds[v].dims)}" for v in ds.data_vars],
        "sweep": [f"{s}: {np.unique(ds[s].values).size} values" for s in ds.attrs["sweep"]],
    }
    if progress is not None:
        summary["status"] = (
            "complete" if progress.get("complete") else "incomplete (resume with --resume)"
        )
    if "loss" in ds.data_vars and len(steps):
        with reading(path):
            final = ds["loss"].isel(step=-1).values
        summary["final loss"] = (
            f"min {np.nanmin(final):.4g}, median {np.nanmedian(final):.4g}, max {np.nanmax(final):.4g}"
        )
    return summary
