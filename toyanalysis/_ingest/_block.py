"""One checkpoint file to a :class:`~toyanalysis._ingest._shapes.Block`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from toyanalysis._ingest._names import Found, apply_renames, canonical, resolve
from toyanalysis._ingest._notes import Notes
from toyanalysis._ingest._options import Options
from toyanalysis._ingest._read import Content, flatten, load
from toyanalysis._ingest._shapes import (
    Block,
    bias,
    has_step_axis,
    hidden_bias,
    second_matrix,
    weights,
)
from toyanalysis._ingest._steps import as_steps, expand_spec
from toyanalysis._ingest._values import check_range, on_grid
from toyanalysis.errors import IngestError


def read_content(path: Path, opts: Options, renamed: set[str]) -> Content:
    """A file's entries, flat, with ``--rename`` applied (the names it matched go to ``renamed``)."""

    def is_weight(keys: list[str]) -> bool:
        keys = [opts.rename.get(k, k) for k in keys]
        return any((canonical(k) or ("",))[0] == "W" for k in keys if k)

    content = flatten(path, load(path, opts.allow_pickle), is_weight)
    return apply_renames(str(path), content, opts.rename, renamed)


def read_block(
    path: Path, content: Content, opts: Options, notes: Notes
) -> tuple[Block, list[str]]:
    """The checkpoints in one file, and the keys it holds that were not used."""
    where = str(path)
    found = resolve(where, content.entries)
    trajectory = has_step_axis(found, content.stacked, opts)
    W, layout = weights(where, found, content.stacked, opts, trajectory, notes)
    steps, step_key = _block_steps(where, found, W.shape[0], trajectory, opts, notes)
    arrays = {"W": W}
    for name, value in (
        ("W_out", second_matrix(where, found, W, layout, opts, notes)),
        ("b", bias(where, found, W, trajectory)),
    ):
        if value is not None:
            arrays[name] = value
    hidden_bias(where, found)
    _check_values(where, found, notes)
    arrays.update(_loss(where, found, W.shape[0], W.shape[1], trajectory, notes))
    used = {"W", "W_out", "b", "b_hidden", "loss"}
    coords, more = _coords(where, found, content.stacked, W.shape[1], W.shape[3], opts, notes)
    used |= more | ({step_key} if step_key else set())
    keys = {found[name].key for name in used if name in found}
    unused = [k for k in content.entries if k not in keys] + content.opaque
    return Block(where, steps, arrays, coords, layout), unused


def _check_values(where: str, found: dict[str, Found], notes: Notes) -> None:
    """Weights must be finite; float64 ones are said to be stored as float32."""
    names = [k for k in ("W", "W_out", "b", "loss") if k in found]
    for name in names:
        if not np.all(np.isfinite(found[name].value)):
            raise IngestError(f"{where}: {found[name].key} has NaN or inf values")
    wide = [found[k].key for k in names if found[k].value.dtype == np.float64]
    if wide:
        notes.add(f"{', '.join(wide)} stored as float32 (the store format), from float64", where)


def _loss(
    where: str, found: dict[str, Found], S: int, count: int, trajectory: bool, notes: Notes
) -> dict[str, np.ndarray]:
    """``loss (step, instance)``; one number per checkpoint becomes ``run_loss (step)``."""
    if "loss" not in found:
        return {}
    entry = found["loss"]
    value = entry.value.astype(np.float32)
    if trajectory and (value.ndim == 0 or value.shape[0] != S):
        notes.add(
            f"{entry.key} has shape {value.shape}, not one value per checkpoint ({S}): dropped",
            where,
        )
        return {}
    value = value if trajectory else value[None]
    rest = value.shape[1:]
    if int(np.prod(rest)) == 1:
        if count == 1:
            return {"loss": value.reshape(S, 1)}
        notes.add(
            f"{entry.key} is one number per checkpoint, not one per instance (e.g. the sum over "
            f"the {count} instances): kept as run_loss (step), not as loss",
            where,
        )
        return {"run_loss": value.reshape(S)}
    if rest in ((count,), (count, 1), (1, count)):
        return {"loss": value.reshape(S, count)}
    notes.add(
        f"{entry.key} has shape {entry.value.shape}, which is neither one number per checkpoint nor "
        f"one per instance ({count}): dropped (a loss curve over training steps?)",
        where,
    )
    return {}


def _constant(where: str, entry: Found, stacked: set[str]) -> np.ndarray:
    """A run constant; one stacked from a list of state dicts must not change between them."""
    value = entry.value
    if entry.key in stacked:
        if not np.all(value == value[:1]):
            raise IngestError(f"{where}: {entry.key} changes between the checkpoints of the list")
        value = value[0]
    return value


def _coords(
    where: str,
    found: dict[str, Found],
    stacked: set[str],
    count: int,
    n: int,
    opts: Options,
    notes: Notes,
) -> tuple[dict[str, np.ndarray], set[str]]:
    """importance, density (also read from sparsity) and seed, and the canonical names used."""
    coords, used = {}, set()
    density_from = "density" if "density" in found else "sparsity" if "sparsity" in found else None
    importance_from = "importance" if "importance" in found else None
    for name, source in (("importance", importance_from), ("density", density_from)):
        if source is None:
            continue
        entry = found[source]
        raw = _constant(where, entry, stacked)
        if name == "importance" and raw.size == 1 and float(raw.reshape(-1)[0]) != 1.0:
            if opts.importance is not None or opts.config is not None:
                continue  # given otherwise: this entry is listed as unused
            r = float(raw.reshape(-1)[0])
            raise IngestError(
                f"{where}: {entry.key} is one number ({r:.4g}): the importance of every feature, or "
                f"r in r^i? say which with --importance {r:.4g}^i or --importance {r:.4g}"
            )
        value = on_grid(entry.key, raw, count, n, opts.along.get(name), where, name)
        if source == "sparsity":
            value = 1.0 - value
            notes.add(
                f"read {entry.key} as the probability that a feature is zero: density = 1 - {entry.key}",
                where,
            )
        check_range(name, value, where)
        coords[name] = value
        used.add(source)
    if "seed" in found:
        seed = _constant(where, found["seed"], stacked).reshape(-1)
        if seed.size == count:
            coords["seed"] = seed.astype(np.int64)
            used.add("seed")
    return coords, used


def _block_steps(
    where: str, found: dict[str, Found], S: int, trajectory: bool, opts: Options, notes: Notes
) -> tuple[np.ndarray | None, str | None]:
    """The block's steps (None when a single checkpoint has none yet) and the entry they came from."""
    name = "step" if "step" in found else "steps" if "steps" in found else None
    steps = None
    if name is not None:
        entry = found[name]
        steps = as_steps(entry.value, entry.key, where)
        if steps.size != S:
            raise IngestError(
                f"{where}: entry {entry.key} has {steps.size} steps, the weights have {S}"
            )
        other = found.get("steps") if name == "step" else None
        if other is not None and other.value.size == S > 1:
            if not np.array_equal(as_steps(other.value, other.key, where), steps):
                raise IngestError(f"{where}: entries {entry.key} and {other.key} give other steps")
        if name == "steps" and not trajectory:
            notes.add(
                f"read the entry {entry.key} ({int(steps[0])}) as this checkpoint's step", where
            )
    if opts.steps is not None:
        given = expand_spec(opts.steps, S, where)
        if steps is not None and name is not None and not np.array_equal(given, steps):
            notes.add(f"--steps replaces the steps of entry {found[name].key}", where)
        steps = given
    if trajectory and steps is None:
        raise IngestError(
            f"{where}: {found['W'].key} holds {S} checkpoints (a leading step axis) but no steps: "
            f"add a 'steps' entry, or pass --steps S1,S2,... or --steps every:K"
        )
    if trajectory and opts.step is not None:
        raise IngestError(
            f"{where}: --step is for a single checkpoint; this file holds {S}: use --steps"
        )
    if steps is not None and len(set(steps.tolist())) != steps.size:
        raise IngestError(f"{where}: the steps of one file repeat ({_repeated(steps)})")
    return steps, name


def _repeated(steps: np.ndarray) -> str:
    values, counts = np.unique(steps, return_counts=True)
    return ", ".join(str(v) for v in values[counts > 1][:3])
