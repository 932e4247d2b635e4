"""The store: a Zarr (v3) group that xarray opens as a Dataset.

This module is the one place that knows Zarr. The format is documented in
``docs/store-format.md``; in short, ``W (step, instance, hidden, feature)``
plus ``b``, ``loss`` and coordinates, and the run's config as JSON in the
attributes.

A trainer pre-allocates the whole trajectory (every step it will record) and
fills it block by block. After each block it writes, atomically, a snapshot of
what resuming needs and then the number of committed records into the child
group ``progress``. Readers (:func:`open_store`) only show committed records,
so a store is readable while training runs and still opens, with every
completed block, if the writer is killed.

>>> import numpy as np, xarray as xr, tempfile, os
>>> W = np.zeros((1, 1, 2, 3), np.float32)
>>> ds = xr.Dataset({"W": (("step", "instance", "hidden", "feature"), W)})
>>> path = os.path.join(tempfile.mkdtemp(), "run.zarr")
>>> write_store(path, ds)
>>> dict(open_store(path).sizes)
{'step': 1, 'instance': 1, 'hidden': 2, 'feature': 3}
"""

from __future__ import annotations

import datetime
import json
import os
import pickle
import queue
import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from toyanalysis import __version__
from toyanalysis.errors import StoreError

FORMAT_VERSION = 1
DIMS = {
    "W": ("step", "instance", "hidden", "feature"),
    "W_out": ("step", "instance", "feature", "hidden"),
    "b": ("step", "instance", "feature"),
    "loss": ("step", "instance"),
}
PROGRESS = "progress"
SNAPSHOT = "resume.pkl"
ANALYSIS = "analysis"
_CHUNK_BYTES = 8_000_000


# --- reading -------------------------------------------------------------------
def _is_store(path: Path) -> bool:
    return (path / "zarr.json").is_file() or (path / ".zgroup").is_file()


def read_progress(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The trainer's progress record (``committed``, ``complete``), or None for other stores."""
    meta = Path(path) / PROGRESS / "zarr.json"
    if not meta.is_file():
        return None
    try:
        attrs = json.loads(meta.read_text()).get("attributes", {})
    except (OSError, json.JSONDecodeError):
        raise StoreError(f"{path}: progress record is unreadable") from None
    return attrs


def open_store(path: str | os.PathLike[str], *, allow_empty: bool = False) -> xr.Dataset:
    """Open a store lazily and check it follows the store format.

    Returns a Dataset with dims ordered as the format says, the default
    coordinates filled in for stores written by other tools (``importance``
    1, integer ``instance``/``feature``/``hidden`` labels), and only the
    records a trainer has committed.
    """
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such store")
    if not path.is_dir() or not _is_store(path):
        raise StoreError(f"{path}: not a Zarr store (no zarr.json inside)")
    try:
        ds = xr.open_zarr(path, consolidated=False, chunks={})
    except Exception as err:  # zarr raises many kinds on corrupt metadata
        raise StoreError(f"{path}: cannot open as a Zarr dataset: {_one_line(err)}") from None
    progress = read_progress(path)
    if progress is not None and "step" in ds.dims:
        ds = ds.isel(step=slice(0, int(progress.get("committed", 0))))
    ds = normalize(ds, str(path))
    if ds.sizes["step"] == 0 and not allow_empty:
        raise StoreError(f"{path}: the store has no recorded steps yet")
    return ds


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


def normalize(ds: xr.Dataset, name: str = "dataset") -> xr.Dataset:
    """Check a Dataset against the store format and fill the optional parts."""
    if "W" not in ds.data_vars:
        raise StoreError(
            f"{name}: no variable W (found: {', '.join(map(str, ds.data_vars)) or 'none'})"
        )
    for var, dims in DIMS.items():
        if var not in ds.data_vars:
            continue
        have = ds[var].dims
        if set(have) != set(dims) or len(have) != len(dims):
            raise StoreError(f"{name}: variable {var} has dims {have}, expected {dims}")
        if not np.issubdtype(ds[var].dtype, np.floating):
            raise StoreError(f"{name}: variable {var} has dtype {ds[var].dtype}, expected float")
        ds[var] = ds[var].transpose(*dims)
    for dim in ("step", "instance", "feature", "hidden"):
        if dim not in ds.coords:
            ds = ds.assign_coords({dim: np.arange(ds.sizes[dim], dtype=np.int64)})
    if "importance" not in ds.coords:
        ones = np.ones((ds.sizes["instance"], ds.sizes["feature"]))
        ds = ds.assign_coords(importance=(("instance", "feature"), ones))
    for coord in ("importance", "density"):
        if coord in ds.coords and set(ds[coord].dims) != {"instance", "feature"}:
            raise StoreError(
                f"{name}: coordinate {coord} has dims {ds[coord].dims}, expected (instance, feature)"
            )
    steps = ds["step"].values
    if steps.size > 1 and np.any(np.diff(steps) <= 0):
        raise StoreError(f"{name}: step coordinate is not strictly increasing")
    ds.attrs.setdefault("model", "relu_output")
    sweep = ds.attrs.get("sweep", [])
    ds.attrs["sweep"] = [s for s in sweep if s in ds.coords]
    return ds


# --- writing whole datasets -------------------------------------------------------
def prepare_output(path: str | os.PathLike[str], overwrite: bool) -> Path:
    """Make room for a new store at ``path``; refuse to clobber anything but a store."""
    path = Path(path)
    if path.exists():
        if not overwrite:
            raise StoreError(f"{path}: already exists (pass --overwrite to replace it)")
        if path.is_dir() and (_is_store(path) or not any(path.iterdir())):
            shutil.rmtree(path)
        else:
            raise StoreError(f"{path}: exists and is not a Zarr store; refusing to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _encoding(ds: xr.Dataset, step_chunk: int) -> dict[str, dict[str, Any]]:
    import zarr

    compressor = zarr.codecs.BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")
    encoding = {}
    for var in ds.data_vars:
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
    model: str, config_json: str | None = None, sweep: list[str] | None = None
) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "toyanalysis_format": FORMAT_VERSION,
        "toyanalysis_version": __version__,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "model": model,
        "sweep": list(sweep or []),
    }
    if config_json is not None:
        attrs["config"] = config_json
    return attrs


def write_store(path: str | os.PathLike[str], ds: xr.Dataset, *, overwrite: bool = False) -> None:
    """Write a whole in-memory Dataset in the store format (used by ingest and tests)."""
    ds = normalize(ds.copy(), "dataset")
    check_finite(ds, str(path), variables=list(ds.data_vars))
    path = prepare_output(path, overwrite)
    attrs = base_attrs(
        ds.attrs.get("model", "relu_output"), ds.attrs.get("config"), ds.attrs.get("sweep")
    )
    ds.attrs = {**ds.attrs, **attrs}
    ds.to_zarr(
        path, mode="w-", zarr_format=3, consolidated=False, encoding=_encoding(ds, step_chunk(ds))
    )
    _set_progress(path, committed=int(ds.sizes["step"]), complete=True)


def save_analysis(path: str | os.PathLike[str], result: xr.Dataset, name: str) -> str:
    """Write an analysis result into the store's group ``analysis/<name>``, replacing any old one.

    A dim the store's root also has, with other labels (a classification of
    the last step only: ``step`` of size 1), is saved under the name
    ``<name>_<dim>``, so ``xr.open_datatree(store, engine="zarr")`` still
    opens the whole store; :func:`open_analysis` renames it back.
    """
    path = Path(path)
    if not _is_store(path):
        raise StoreError(f"{path}: not a Zarr store")
    group = f"{ANALYSIS}/{name}"
    root = xr.open_zarr(path, consolidated=False)
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
    for var in list(out.variables):
        if (
            out[var].dtype.kind == "U"
        ):  # fixed-width unicode has no Zarr v3 spec; variable-length has
            out[var] = out[var].astype(object)
    out.to_zarr(path, group=group, mode="w", zarr_format=3, consolidated=False)
    return group


def open_analysis(path: str | os.PathLike[str], name: str) -> xr.Dataset:
    """Read back a result saved with :func:`save_analysis` (dims under their own names)."""
    path = Path(path)
    if not (path / ANALYSIS / name / "zarr.json").is_file():
        raise StoreError(f"{path}: no saved analysis {name!r}")
    ds = xr.open_zarr(path, group=f"{ANALYSIS}/{name}", consolidated=False)
    renamed = json.loads(ds.attrs.pop("renamed_dims", "{}"))
    return ds.rename({saved: dim for dim, saved in renamed.items()})


# --- the trainer's writer ------------------------------------------------------------
class TrajectoryWriter:
    """Fills a pre-allocated store block by block from a background thread.

    ``put`` hands over a block of records; the thread writes the arrays, then
    the resume snapshot (atomic rename), then the committed count. Training
    only waits when two blocks are already queued.
    """

    def __init__(self, path: Path, committed: int) -> None:
        import zarr

        self.path = path
        self._group = zarr.open_group(path, mode="r+")
        self._arrays = {name: self._group[name] for name in DIMS if name in self._group}
        self.committed = committed
        self._queue: queue.Queue[tuple[int, dict[str, np.ndarray], dict[str, Any]] | None] = (
            queue.Queue(maxsize=2)
        )
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="toyanalysis-writer", daemon=True)
        self._thread.start()

    def put(self, start: int, block: dict[str, np.ndarray], snapshot: dict[str, Any]) -> None:
        self._raise()
        self._queue.put((start, block, snapshot))

    def close(self, complete: bool) -> None:
        self._queue.put(None)
        self._thread.join()
        self._raise()
        if complete:
            _set_progress(self.path, committed=self.committed, complete=True)
            (self.path / PROGRESS / SNAPSHOT).unlink(missing_ok=True)  # nothing left to resume

    def _raise(self) -> None:
        if self._error is not None:
            raise StoreError(f"{self.path}: writing failed: {_one_line(self._error)}")

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is not None:
                continue
            start, block, snapshot = item
            try:
                stop = start + len(next(iter(block.values())))
                for name, values in block.items():
                    self._arrays[name][start:stop] = values
                tmp = self.path / PROGRESS / (SNAPSHOT + ".tmp")
                with open(tmp, "wb") as fh:
                    pickle.dump(snapshot, fh, protocol=pickle.HIGHEST_PROTOCOL)
                os.replace(tmp, self.path / PROGRESS / SNAPSHOT)
                _set_progress(self.path, committed=stop, complete=False)
                self.committed = stop
            except BaseException as err:  # surfaced in the training thread
                self._error = err


def create_trajectory(path: Path, template: xr.Dataset) -> None:
    """Pre-allocate a store for every recorded step of a run from a lazy (dask) template."""
    template.to_zarr(
        path,
        mode="w-",
        zarr_format=3,
        consolidated=False,
        compute=False,
        encoding=_encoding(template, step_chunk(template)),
    )
    _set_progress(path, committed=0, complete=False)


def read_snapshot(path: Path) -> dict[str, Any] | None:
    snapshot = path / PROGRESS / SNAPSHOT
    if not snapshot.is_file():
        return None
    try:
        with open(snapshot, "rb") as fh:
            return pickle.load(fh)
    except Exception:
        raise StoreError(
            f"{path}: resume snapshot is unreadable; train again with --overwrite"
        ) from None


def check_finite(
    ds: xr.Dataset, name: str = "dataset", variables: Any = ("W", "W_out", "b")
) -> None:
    """Raise StoreError naming the first step and instance where a variable is NaN or inf."""
    for var in variables:
        if var not in ds.data_vars:
            continue
        other = [d for d in ds[var].dims if d not in ("step", "instance")]
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
        final = ds["loss"].isel(step=-1).values
        summary["final loss"] = (
            f"min {np.nanmin(final):.4g}, median {np.nanmedian(final):.4g}, max {np.nanmax(final):.4g}"
        )
    return summary
