"""Which optimiser step a checkpoint is: an entry, a step-like part of the file name, or an option."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from toyanalysis.errors import IngestError

# step_1200, step-1200, step=1200, steps1200, iter_1200, iteration-1200, ckpt-1200, checkpoint_1200
_MARKED = re.compile(r"(?:steps?|iter(?:ation)?s?|ckpt|checkpoint|chkpt)[-_=]?(\d+)(?![0-9])")
_NUMBER = re.compile(r"\d+")


def from_name(path: Path) -> int | None:
    """The step a file name gives, None when it has no number; ambiguous names are refused.

    >>> from_name(Path("ckpt-1200.pt")), from_name(Path("1200.pt")), from_name(Path("final.pt"))
    (1200, 1200, None)
    >>> from_name(Path("epoch=3-step=1200.ckpt"))
    1200
    """
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    stem = stem.lower()
    if stem.isdigit():
        return int(stem)
    marked = sorted({int(m) for m in _MARKED.findall(stem)})
    if len(marked) == 1:
        return marked[0]
    if len(marked) > 1:
        raise IngestError(
            f"{path}: the file name marks several steps ({', '.join(map(str, marked))}); "
            f"add a 'step' entry or rename the file"
        )
    numbers = _NUMBER.findall(stem)
    if numbers:
        raise IngestError(
            f"{path}: cannot tell the step from the file name: its numbers ({', '.join(numbers)}) "
            f"are not marked as a step (like step_1200, ckpt-1200 or 1200.pt); add a 'step' entry, "
            f"rename the file, or pass --step N for a single checkpoint"
        )
    return None


# A step is stored as int64.
MAX_STEP = 2**63 - 1


def check_step(step: int, what: str) -> int:
    """A step number in 0..MAX_STEP, or one IngestError naming ``what`` (the option)."""
    if isinstance(step, bool) or not 0 <= int(step) <= MAX_STEP:
        raise IngestError(f"{what} must be a step number in 0..2**63 - 1, got {step!r}")
    return int(step)


def check_spec(spec: str | Sequence[int] | None) -> str | tuple[int, ...] | None:
    """Validate a ``--steps`` value: ``S1,S2,...``, ``every:K`` or a sequence of integers."""
    if spec is None:
        return None
    if isinstance(spec, str):
        text = spec.strip()
        try:
            if text.startswith("every:"):
                if int(text[6:]) < 1:
                    raise ValueError
                check_step(int(text[6:]), f"--steps {spec}: K")
            else:
                for s in text.split(","):
                    check_step(int(s), f"--steps {spec}: each step")
        except ValueError:
            raise IngestError(f"--steps {spec}: use a list S1,S2,... or every:K (K >= 1)") from None
        return text
    return tuple(check_step(int(s), "--steps: each step") for s in spec)


def expand_spec(spec: str | tuple[int, ...], count: int, where: str) -> np.ndarray:
    """The ``count`` steps a ``--steps`` value names."""
    if isinstance(spec, str) and spec.startswith("every:"):
        every = int(spec[6:])
        if every * (count - 1) > MAX_STEP:
            raise IngestError(
                f"{where}: --steps {spec} for {count} checkpoints goes past 2**63 - 1"
            )
        return every * np.arange(count, dtype=np.int64)
    values = [int(s) for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    if len(values) != count:
        raise IngestError(f"{where}: --steps gives {len(values)} steps, the weights have {count}")
    return np.array(values, dtype=np.int64)


def as_steps(value: np.ndarray, key: str, where: str) -> np.ndarray:
    """An entry's steps as int64, refusing fractions and negative numbers."""
    steps = np.asarray(value).reshape(-1)
    if steps.dtype.kind == "f" and not np.all(np.isfinite(steps) & (steps == np.round(steps))):
        raise IngestError(f"{where}: entry {key} ({steps[:3].tolist()} ...) is not whole steps")
    steps = steps.astype(np.int64)
    if np.any(steps < 0):
        raise IngestError(f"{where}: entry {key} has a negative step {int(steps.min())}")
    return steps
