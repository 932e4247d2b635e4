"""Run configurations: frozen, validated, serialisable.

A :class:`RunConfig` describes one training run: a model family, the data, how
many independent *instances* to train side by side and what differs between
them (a grid of :class:`SweepAxis` values times ``seeds`` replicates), the
optimiser (:class:`TrainConfig`) and which steps to record.

Configs only hold parameters: they are checked when built, have no side
effects, and round-trip through JSON (``RunConfig.from_json(c.to_json()) == c``),
which is how a store remembers how it was made.

>>> from toyanalysis.config import RunConfig, SweepAxis
>>> c = RunConfig(n_features=5, n_hidden=2, importance=0.9,
...               sweep=(SweepAxis(name="base_density", target="density",
...                                 values=(1.0, 0.1)),))
>>> c.n_instances
2
>>> RunConfig.from_json(c.to_json()) == c
True
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from toyanalysis.errors import ConfigError

MODELS = ("relu_output", "linear", "hidden_relu", "abs")
OPTIMIZERS = ("adamw", "adam")
SCHEDULES = ("constant", "linear", "cosine")
INITS = ("per_instance", "notebook")
SET_KINDS = ("correlated", "anticorrelated")
SWEEP_TARGETS = ("density", "importance")
# Bounds that keep a config within memory: beyond them the tables or schedules cannot be made.
MAX_STEPS, MAX_SEED, MAX_TABLE = 10**8, 2**62, 10**8
# instance coordinates the store always has; sweep axes may not reuse them
RESERVED_NAMES = ("step", "instance", "feature", "hidden", "density", "importance", "seed")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _types(obj: Any, **expected: type | tuple[type, ...]) -> None:
    """Check field types at construction (bool is not accepted as a number)."""
    for name, kind in expected.items():
        value = getattr(obj, name)
        numeric = kind in (int, float, (int, float))
        if (numeric and isinstance(value, bool)) or not isinstance(value, kind):
            wanted = {
                int: "an integer",
                float: "a number",
                (int, float): "a number",
                str: "a string",
                bool: "true or false",
            }.get(kind, getattr(kind, "__name__", str(kind)))
            raise ConfigError(f"{name} must be {wanted}, got {value!r}")


def _ints(value: Any, what: str) -> tuple[int, ...]:
    try:
        items = tuple(value)
    except TypeError:
        raise ConfigError(f"{what} must be a list of integers, got {value!r}") from None
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        raise ConfigError(f"{what} must be a list of integers, got {value!r}")
    return items


def _items(value: Any, cls: type, what: str) -> tuple[Any, ...]:
    """A tuple of ``cls`` from a list of ``cls`` instances or of tables/dicts."""
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise ConfigError(f"{what} must be a list, got {value!r}")
    out = []
    for item in value:
        if isinstance(item, dict):
            try:
                item = cls(**item)
            except TypeError as err:
                raise ConfigError(f"bad {what} entry {item!r}: {err}") from None
        if not isinstance(item, cls):
            raise ConfigError(f"{what} entries must be tables/objects, got {item!r}")
        out.append(item)
    return tuple(out)


def _floats(value: Any, what: str) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a list of numbers, got {value!r}") from None
    _check(all(math.isfinite(v) for v in out), f"{what} must be finite, got {value!r}")
    return out


@dataclass(frozen=True, kw_only=True)
class FeatureSet:
    """Features whose activity is tied together.

    ``correlated``: the set is active or zero together (values independent).
    ``anticorrelated``: at most one member is active in a sample.
    """

    kind: str
    features: tuple[int, ...]

    def __post_init__(self) -> None:
        _types(self, kind=str)
        object.__setattr__(self, "features", _ints(self.features, "feature set features"))
        _check(
            self.kind in SET_KINDS,
            f"feature set kind must be one of {SET_KINDS}, got {self.kind!r}",
        )
        _check(
            len(self.features) >= 2, f"a feature set needs at least 2 features, got {self.features}"
        )
        _check(
            len(set(self.features)) == len(self.features),
            f"repeated feature in set {self.features}",
        )


@dataclass(frozen=True, kw_only=True)
class SweepAxis:
    """One axis of the instance grid.

    Each value sets ``target`` ("density" or "importance") of ``features``
    (all features when empty) for the instances at that grid position. The
    axis becomes an ``instance`` coordinate of the store named ``name``.
    """

    name: str
    target: str
    values: tuple[float, ...]
    features: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _types(self, name=str, target=str)
        _check(
            self.name.isidentifier(), f"sweep axis name must be an identifier, got {self.name!r}"
        )
        _check(self.name not in RESERVED_NAMES, f"sweep axis name {self.name!r} is reserved")
        _check(
            self.target in SWEEP_TARGETS,
            f"sweep target must be one of {SWEEP_TARGETS}, got {self.target!r}",
        )
        object.__setattr__(self, "values", _floats(self.values, f"sweep axis {self.name!r} values"))
        object.__setattr__(
            self, "features", _ints(self.features, f"sweep axis {self.name!r} features")
        )
        _check(len(self.values) >= 1, f"sweep axis {self.name!r} has no values")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Optimiser settings. Defaults match the widely used public notebook."""

    steps: int = 10_000
    batch_size: int = 1024
    lr: float = 1e-3
    optimizer: str = "adamw"
    weight_decay: float = 0.01
    schedule: str = "constant"
    warmup: int = 0
    init: str = "per_instance"
    seed: int = 0

    def __post_init__(self) -> None:
        _types(
            self,
            steps=int,
            batch_size=int,
            warmup=int,
            seed=int,
            lr=(int, float),
            weight_decay=(int, float),
            optimizer=str,
            schedule=str,
            init=str,
        )
        _check(1 <= self.steps <= MAX_STEPS, f"steps must be in 1..{MAX_STEPS:,}, got {self.steps}")
        _check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        _check(self.lr > 0 and math.isfinite(self.lr), f"lr must be > 0, got {self.lr}")
        _check(
            self.optimizer in OPTIMIZERS,
            f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}",
        )
        _check(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        _check(
            self.schedule in SCHEDULES,
            f"schedule must be one of {SCHEDULES}, got {self.schedule!r}",
        )
        _check(0 <= self.warmup <= self.steps, f"warmup must be in [0, steps], got {self.warmup}")
        _check(self.init in INITS, f"init must be one of {INITS}, got {self.init!r}")
        _check(0 <= self.seed <= MAX_SEED, f"seed must be in 0..2**62, got {self.seed}")

    def learning_rate(self, step: int) -> float:
        """Learning rate used for the update at ``step`` (0-based).

        ``linear``: lr·(1 − step/steps); ``cosine``: lr·cos(π/2 · step/(steps−1)) (the
        notebook's quarter cosine); a linear warm-up over ``warmup`` steps multiplies either.
        """
        factor = 1.0
        if self.schedule == "linear":
            factor = 1.0 - step / self.steps
        elif self.schedule == "cosine":
            factor = math.cos(0.5 * math.pi * step / max(self.steps - 1, 1))
        if self.warmup:
            factor *= min(1.0, (step + 1) / self.warmup)
        return self.lr * factor


def record_schedule(spec: str, steps: int) -> np.ndarray:
    """The optimiser steps at which weights are recorded.

    ``every:K`` — 0, K, 2K, …; ``log:N`` — about N log-spaced steps;
    ``all`` — every step; ``S1,S2,…`` — these steps. Step 0 (the
    initialisation) and the last step are always recorded.

    >>> record_schedule("every:250", 1000).tolist()
    [0, 250, 500, 750, 1000]
    >>> record_schedule("10,20", 100).tolist()
    [0, 10, 20, 100]
    """
    spec = spec.strip()
    try:
        if spec == "all":
            chosen = np.arange(steps + 1)
        elif spec.startswith("every:"):
            k = int(spec[6:])
            _check(k >= 1, f"record every:K needs K >= 1, got {spec!r}")
            chosen = np.arange(0, steps + 1, k)
        elif spec.startswith("log:"):
            n = int(spec[4:])
            _check(n >= 2, f"record log:N needs N >= 2, got {spec!r}")
            chosen = np.unique(np.round(np.geomspace(1, steps, n - 1)).astype(np.int64))
        else:
            chosen = np.array([int(s) for s in spec.split(",") if s.strip()], dtype=np.int64)
    except ValueError:
        raise ConfigError(
            f"bad record schedule {spec!r}: use every:K, log:N, all, or a list of steps"
        ) from None
    _check(
        bool(np.all((chosen >= 0) & (chosen <= steps))),
        f"record steps must be within 0..{steps}, got {spec!r}",
    )
    return np.unique(np.concatenate([[0], chosen, [steps]])).astype(np.int64)


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """A training run of many independent toy models.

    ``importance``: a number r gives I_i = r**i (1.0 = uniform); a list gives
    each feature's importance. ``density``: the probability that a feature is
    non-zero (1 − sparsity), one number for all features or a list.
    ``one_hot``: exactly one feature is active per sample (``density`` is then
    ignored and recorded as 1/n). Instances are the grid of ``sweep`` values
    times ``seeds`` replicates; replicate r of every cell uses seed
    ``train.seed + r``.
    """

    name: str = "custom"
    description: str = ""
    model: str = "relu_output"
    n_features: int
    n_hidden: int
    importance: float | tuple[float, ...] = 1.0
    density: float | tuple[float, ...] = 1.0
    sets: tuple[FeatureSet, ...] = ()
    one_hot: bool = False
    sweep: tuple[SweepAxis, ...] = ()
    seeds: int = 1
    train: TrainConfig = field(default_factory=TrainConfig)
    record: str = "every:100"

    def __post_init__(self) -> None:
        _types(
            self,
            name=str,
            description=str,
            model=str,
            n_features=int,
            n_hidden=int,
            one_hot=bool,
            seeds=int,
            train=TrainConfig,
            record=str,
        )
        object.__setattr__(self, "sets", _items(self.sets, FeatureSet, "sets"))
        object.__setattr__(self, "sweep", _items(self.sweep, SweepAxis, "sweep"))
        _check(self.model in MODELS, f"model must be one of {MODELS}, got {self.model!r}")
        _check(self.n_features >= 1, f"n_features must be >= 1, got {self.n_features}")
        _check(self.n_hidden >= 1, f"n_hidden must be >= 1, got {self.n_hidden}")
        _check(self.seeds >= 1, f"seeds must be >= 1, got {self.seeds}")
        cells = self.n_instances * self.n_features
        _check(
            cells <= MAX_TABLE,
            f"{self.n_instances:,} instances x {self.n_features:,} features is more than {MAX_TABLE:,} (the per-instance tables alone would need {16 * cells / 2**30:,.1f} GiB)",
        )
        for name in ("importance", "density"):
            object.__setattr__(self, name, self._per_feature(name))
        self._check_features()
        self.record_steps()  # validates the schedule
        self._check_values()

    def _per_feature(self, name: str) -> float | tuple[float, ...]:
        """``importance`` or ``density`` checked: one number, or one per feature."""
        value = getattr(self, name)
        n = self.n_features
        if isinstance(value, (list, tuple)):
            value = _floats(value, name)
            _check(len(value) == n, f"{name} has {len(value)} values but n_features is {n}")
            return value
        _check(
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and math.isfinite(value),
            f"{name} must be a number or a list, got {value!r}",
        )
        return float(value)

    def _check_features(self) -> None:
        """Sweep axes and feature sets name features that exist, each set's once."""
        n = self.n_features
        names = [axis.name for axis in self.sweep]
        _check(len(set(names)) == len(names), f"sweep axis names repeat: {names}")
        for axis in self.sweep:
            _check(
                all(0 <= f < n for f in axis.features),
                f"sweep axis {axis.name!r} names a feature outside 0..{n - 1}",
            )
        seen: set[int] = set()
        for group in self.sets:
            _check(
                all(0 <= f < n for f in group.features),
                f"feature set {group.features} outside 0..{n - 1}",
            )
            _check(
                not seen & set(group.features),
                f"feature {sorted(seen & set(group.features))} is in two sets",
            )
            seen |= set(group.features)
        _check(not (self.one_hot and self.sets), "one_hot data cannot also have feature sets")

    def _check_values(self) -> None:
        """Importance and density of every instance in range; feature sets consistent."""
        importance, density = self.instance_importance(), self.instance_density()
        _check(bool(np.all(importance >= 0)), "importance must be >= 0")
        _check(bool(np.all((density > 0) & (density <= 1))), "density must be in (0, 1]")
        for group in self.sets:
            members = density[:, list(group.features)]
            if group.kind == "correlated":
                _check(
                    bool(np.all(members == members[:, :1])),
                    f"correlated set {group.features} needs one density for all its features",
                )
            else:
                _check(
                    bool(np.all(members.sum(axis=1) <= 1 + 1e-9)),
                    f"anticorrelated set {group.features}: densities must sum to <= 1",
                )

    # --- derived, per instance -------------------------------------------------
    @property
    def n_instances(self) -> int:
        return math.prod(len(axis.values) for axis in self.sweep) * self.seeds

    def _grid(self) -> list[tuple[tuple[float, ...], int]]:
        cells = itertools.product(*(axis.values for axis in self.sweep))
        return [(cell, r) for cell in cells for r in range(self.seeds)]

    def _base(self, name: str) -> np.ndarray:
        value = getattr(self, name)
        n = self.n_features
        if isinstance(value, tuple):
            return np.array(value, dtype=np.float64)
        if name == "importance":
            return value ** np.arange(n, dtype=np.float64)
        return np.full(n, value, dtype=np.float64)

    def _instance_values(self, target: str) -> np.ndarray:
        base = self._base(target)
        rows = []
        for cell, _ in self._grid():
            row = base.copy()
            for axis, value in zip(self.sweep, cell):
                if axis.target == target:
                    row[list(axis.features) if axis.features else slice(None)] = value
            rows.append(row)
        return np.array(rows, dtype=np.float64).reshape(self.n_instances, self.n_features)

    def instance_importance(self) -> np.ndarray:
        """Importance per (instance, feature)."""
        return self._instance_values("importance")

    def instance_density(self) -> np.ndarray:
        """Density per (instance, feature); 1/n for one-hot data."""
        if self.one_hot:
            return np.full((self.n_instances, self.n_features), 1.0 / self.n_features)
        return self._instance_values("density")

    def instance_seeds(self) -> np.ndarray:
        """Seed per instance: ``train.seed + replicate``."""
        return np.array([self.train.seed + r for _, r in self._grid()], dtype=np.int64)

    def instance_labels(self) -> dict[str, np.ndarray]:
        """The sweep coordinates per instance, by axis name."""
        grid = self._grid()
        return {
            axis.name: np.array([cell[k] for cell, _ in grid]) for k, axis in enumerate(self.sweep)
        }

    def record_steps(self) -> np.ndarray:
        return record_schedule(self.record, self.train.steps)

    # --- changes and serialisation ----------------------------------------------
    def override(self, **changes: Any) -> RunConfig:
        """A copy with fields changed; training fields (``steps``, ``lr``, …) may be named directly.

        >>> from toyanalysis.presets import preset
        >>> preset("intro").override(steps=500, seed=3).train.steps
        500
        """
        top, train = {}, {}
        train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
        own_fields = {f.name for f in dataclasses.fields(RunConfig)}
        for key, value in changes.items():
            if key in own_fields:
                top[key] = value
            elif key in train_fields:
                train[key] = value
            else:
                raise ConfigError(f"unknown config field {key!r}")
        data = {**self.to_dict(), **top}
        if train:
            base = data["train"]
            data["train"] = {
                **(dataclasses.asdict(base) if isinstance(base, TrainConfig) else dict(base)),
                **train,
            }
        return RunConfig.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"a config must be a table/object, got {type(data).__name__}")
        data = dict(data)
        if isinstance(data.get("train"), dict):
            try:
                data["train"] = TrainConfig(**data["train"])
            except TypeError as err:
                raise ConfigError(f"bad train settings: {err}") from None
        for key in ("importance", "density"):
            if isinstance(data.get(key), list):
                data[key] = tuple(data[key])
        try:
            return cls(**data)
        except TypeError as err:
            raise ConfigError(f"bad config: {err}") from None

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as err:
            raise ConfigError(f"config is not valid JSON: {err}") from None

    @classmethod
    def from_toml(cls, path: str) -> RunConfig:
        """Read a config from a TOML file; a ``preset = "NAME"`` key starts from that preset."""
        import tomllib

        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise ConfigError(f"{path}: not valid TOML: {err}") from None
        base_name = data.pop("preset", None)
        if base_name is None:
            return cls.from_dict(data)
        from toyanalysis.presets import preset

        base = preset(base_name).to_dict()
        train = {**base.pop("train"), **data.pop("train", {})}
        return cls.from_dict({**base, **data, "train": train})
