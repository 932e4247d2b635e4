"""Blocks to runs, runs to instances, and what the checkpoints lack: the store as a Dataset."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from toyanalysis._ingest._block import read_block, read_content
from toyanalysis._ingest._complete import complete
from toyanalysis._ingest._names import summarise
from toyanalysis._ingest._notes import Notes
from toyanalysis._ingest._options import Options
from toyanalysis._ingest._read import checkpoint_files
from toyanalysis._ingest._shapes import Block
from toyanalysis._ingest._steps import from_name
from toyanalysis.errors import IngestError


@dataclass
class Run:
    """One run's checkpoints in step order."""

    name: str
    steps: np.ndarray
    arrays: dict[str, np.ndarray]
    coords: dict[str, np.ndarray]
    layouts: list[str]


def read_dataset(sources: list[Path], opts: Options, notes: Notes) -> xr.Dataset:
    """Every SOURCE read, joined (or stacked with ``as_instances``) and completed: the store."""
    if not sources:
        raise IngestError("no SOURCE given")
    groups = [checkpoint_files(s, notes) for s in sources]
    if not opts.as_instances:
        groups = [[path for group in groups for path in group]]
    if opts.steps is not None and any(len(g) > 1 for g in groups):
        raise IngestError("--steps is for a trajectory in one file; several files were given")
    renamed: set[str] = set()
    files = [p for g in groups for p in g]
    contents = {path: read_content(path, opts, renamed) for path in files}
    missing = sorted(set(opts.rename) - renamed)
    if missing:
        raise IngestError(f"--rename {missing[0]}=...: no entry {missing[0]} in any checkpoint")
    unused: dict[str, None] = {}
    runs = []
    for name, paths in zip(_run_names(sources) if opts.as_instances else ["run"], groups):
        blocks = []
        for path in paths:
            block, keys = read_block(path, contents.pop(path), opts, notes)
            unused.update(dict.fromkeys(keys))
            blocks.append(block)
        _fill_steps(blocks, opts)
        runs.append(_join(name, blocks))
    if unused:
        where = str(files[0]) if len(files) == 1 else f"{len(files)} files"
        notes.add(
            f"unused entries (read one with --rename OLD=NEW): {summarise(list(unused))}", where
        )
    run = _stack(runs, notes) if opts.as_instances else runs[0]
    return complete(run, sources, opts, notes)


def _run_names(sources: list[Path]) -> list[str]:
    names = [s.name[: -len(s.suffix)] if s.is_file() and s.suffix else s.name for s in sources]
    if len(set(names)) != len(names):
        names = [str(s) for s in sources]
    if len(set(names)) != len(names):
        raise IngestError(f"--as-instances: a SOURCE is given twice ({_first_repeat(names)})")
    return names


def _first_repeat(items: list[str]) -> str:
    return next(x for x in items if items.count(x) > 1)


def _fill_steps(blocks: list[Block], opts: Options) -> None:
    """Steps for single checkpoints without a step entry: --step N, else the file name."""
    for block in blocks:
        if opts.step is not None and len(blocks) > 1:
            raise IngestError(
                f"--step {opts.step} is for a single checkpoint, but {len(blocks)} files were given; "
                f"give each a step (a 'step' entry or a file name like step_1200.pt)"
            )
        if block.steps is not None:
            _check_name(block)
            if opts.step is not None and int(block.steps[0]) != opts.step:
                raise IngestError(
                    f"{block.where}: --step {opts.step} but its entry says step {int(block.steps[0])}"
                )
            continue
        if opts.step is not None:
            try:
                named = from_name(Path(block.where))
            except IngestError:
                named = None  # numbers that are not a step: --step decides
            if named is not None and named != opts.step:
                raise IngestError(
                    f"{block.where}: --step {opts.step} but the file name says step {named}"
                )
            block.steps = np.array([opts.step], dtype=np.int64)
            continue
        named = from_name(Path(block.where))
        if named is None:
            advice = (
                "pass --step N"
                if len(blocks) == 1
                else "add a 'step' entry or name the file like step_1200.pt"
            )
            raise IngestError(
                f"{block.where}: no step (no 'step' entry, no number in the file name); {advice}"
            )
        block.steps = np.array([named], dtype=np.int64)


def _check_name(block: Block) -> None:
    """A step entry that the file name contradicts is refused (which one is right?)."""
    if block.steps is None or block.steps.size != 1:
        return
    try:
        named = from_name(Path(block.where))
    except IngestError:
        return  # numbers in the name that are not a step: the entry decides
    if named is not None and named != int(block.steps[0]):
        raise IngestError(
            f"{block.where}: its step entry says {int(block.steps[0])} but the file name says "
            f"{named}; rename the file or drop the entry with --rename step="
        )


def _same(
    what: str, a: Block | Run, b: Block | Run, name_a: str, name_b: str, instances: bool = True
) -> None:
    """The same variables with the same shapes (per step), and the same coordinates."""
    if set(a.arrays) != set(b.arrays):
        odd = sorted(set(a.arrays) ^ set(b.arrays))[0]
        has, lacks = (name_a, name_b) if odd in a.arrays else (name_b, name_a)
        raise IngestError(f"{what}: {odd} is in {has} but not in {lacks}")
    for var in a.arrays:
        if a.arrays[var].shape[1:] != b.arrays[var].shape[1:]:
            raise IngestError(
                f"{what}: {var} has shape {b.arrays[var].shape[1:]} per step in {name_b} "
                f"but {a.arrays[var].shape[1:]} in {name_a}"
            )
    if not instances:
        return
    for coord in set(a.coords) | set(b.coords):
        if (
            coord not in a.coords
            or coord not in b.coords
            or not np.array_equal(a.coords[coord], b.coords[coord])
        ):
            raise IngestError(f"{what}: {coord} differs between {name_a} and {name_b}")


def _join(name: str, blocks: list[Block]) -> Run:
    first = blocks[0]
    for block in blocks[1:]:
        _same(block.where, first, block, first.where, block.where)
    steps = np.concatenate([b.steps for b in blocks])
    owners = [b.where for b in blocks for _ in (b.steps if b.steps is not None else ())]
    values, counts = np.unique(steps, return_counts=True)
    if np.any(counts > 1):
        step = int(values[counts > 1][0])
        files = [w for w, s in zip(owners, steps) if s == step]
        raise IngestError(
            f"several checkpoints have step {step}: {', '.join(files)} "
            f"(one run per seed? pass --as-instances to make each SOURCE instances)"
        )
    order = np.argsort(steps, kind="stable")
    arrays = {k: np.concatenate([b.arrays[k] for b in blocks])[order] for k in first.arrays}
    return Run(name, steps[order], arrays, dict(first.coords), sorted({b.layout for b in blocks}))


def _describe_steps(steps: np.ndarray) -> str:
    return f"{steps.size} steps {steps[0]}..{steps[-1]}"


def _stack(runs: list[Run], notes: Notes) -> Run:
    """Runs side by side along instance (--as-instances): same steps, same shapes."""
    first = runs[0]
    for run in runs[1:]:
        if not np.array_equal(run.steps, first.steps):
            raise IngestError(
                f"--as-instances needs the same steps in every SOURCE: {first.name} has "
                f"{_describe_steps(first.steps)}, {run.name} has {_describe_steps(run.steps)}"
            )
        _same("--as-instances", first, run, first.name, run.name, instances=False)
        if set(run.coords) != set(first.coords):
            odd = sorted(set(run.coords) ^ set(first.coords))[0]
            raise IngestError(f"--as-instances: {odd} is given for some SOURCEs but not for all")
    arrays = {
        k: np.concatenate([r.arrays[k] for r in runs], axis=1)
        for k in first.arrays
        if k != "run_loss"
    }
    if "run_loss" in first.arrays:
        notes.add(
            "run_loss (one number per checkpoint of each SOURCE) cannot be split by instance: dropped"
        )
    coords = {k: np.concatenate([r.coords[k] for r in runs]) for k in first.coords}
    count = first.arrays["W"].shape[1]
    coords["run"] = np.array([r.name for r in runs for _ in range(count)], dtype=object)
    layouts = sorted({lay for r in runs for lay in r.layouts})
    return Run("runs", first.steps, arrays, coords, layouts)
