"""Named configurations for the experiments of *Toy Models of Superposition*.

Each preset reproduces one experiment of the paper (or of the follow-up on
one-hot data) with the public notebook's training defaults. ``preset(name)``
returns a :class:`~toyanalysis.config.RunConfig`; change any field with
``.override(...)``.

>>> from toyanalysis.presets import preset
>>> c = preset("intro")
>>> (c.n_features, c.n_hidden, c.n_instances)
(5, 2, 10)
>>> preset("intro").override(steps=2000).train.steps
2000
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from toyanalysis.config import FeatureSet, RunConfig, SweepAxis
from toyanalysis.errors import ConfigError

_PRESETS: dict[str, Callable[[], RunConfig]] = {}

PAPER_DENSITIES = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001)


def register_preset(name: str) -> Callable[[Callable[[], RunConfig]], Callable[[], RunConfig]]:
    """Register a preset factory under ``name``; a name can be registered once."""

    def wrap(factory: Callable[[], RunConfig]) -> Callable[[], RunConfig]:
        if name in _PRESETS:
            raise ValueError(f"preset {name!r} is already registered")
        _PRESETS[name] = factory
        return factory

    return wrap


def preset(name: str) -> RunConfig:
    """The config of a named preset."""
    try:
        factory = _PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; known: {', '.join(_PRESETS)}") from None
    return factory()


def list_presets() -> dict[str, str]:
    """Preset names with their one-line descriptions, in a stable order."""
    return {name: factory().description for name, factory in _PRESETS.items()}


def _densities(*values: float) -> SweepAxis:
    return SweepAxis(name="base_density", target="density", values=values)


def _geom(start: float, stop: float, num: int) -> tuple[float, ...]:
    return tuple(float(v) for v in np.geomspace(start, stop, num))


@register_preset("intro")
def _intro() -> RunConfig:
    return RunConfig(
        name="intro",
        description="n=5, m=2, importance 0.9^i, 10 densities 20^-t: dedicated -> digons -> pentagon",
        n_features=5,
        n_hidden=2,
        importance=0.9,
        sweep=(_densities(*(20.0 ** -np.linspace(0, 1, 10))),),
    )


def _basic(name: str, model: str, n: int, m: int, decay: float) -> RunConfig:
    return RunConfig(
        name=name,
        description=f"n={n}, m={m}, {model}, importance {decay}^i, densities 1 .. 0.001",
        model=model,
        n_features=n,
        n_hidden=m,
        importance=decay,
        sweep=(_densities(*PAPER_DENSITIES),),
    )


@register_preset("basic")
def _basic_relu() -> RunConfig:
    return _basic("basic", "relu_output", 20, 5, 0.7)


@register_preset("basic-linear")
def _basic_linear() -> RunConfig:
    return _basic("basic-linear", "linear", 20, 5, 0.7)


@register_preset("basic-80")
def _basic_80() -> RunConfig:
    return _basic("basic-80", "relu_output", 80, 20, 0.9)


def _uniform(name: str, n: int, m: int) -> RunConfig:
    return RunConfig(
        name=name,
        description=f"n={n}, m={m}, uniform importance, 16 densities 1 .. 0.001: D* plateaus",
        n_features=n,
        n_hidden=m,
        sweep=(_densities(*_geom(1.0, 0.001, 16)),),
        record="every:500",
    )


@register_preset("uniform")
def _uniform_large() -> RunConfig:
    return _uniform("uniform", 400, 30)


@register_preset("uniform-small")
def _uniform_small() -> RunConfig:
    return _uniform("uniform-small", 200, 20)


@register_preset("nonuniform")
def _nonuniform() -> RunConfig:
    return RunConfig(
        name="nonuniform",
        description="n=5, m=2, density 0.05; feature 0's density swept 0.1x .. 10x: pentagon -> digons",
        n_features=5,
        n_hidden=2,
        density=0.05,
        sweep=(
            SweepAxis(
                name="extra_density", target="density", features=(0,), values=_geom(0.005, 0.5, 13)
            ),
        ),
        seeds=3,
    )


def _phase(name: str, n: int, m: int) -> RunConfig:
    return RunConfig(
        name=name,
        description=f"n={n}, m={m}: feature {n - 1}'s importance 0.1 .. 10 x density 1 .. 0.01, 3 seeds a cell",
        n_features=n,
        n_hidden=m,
        sweep=(
            SweepAxis(
                name="extra_importance",
                target="importance",
                features=(n - 1,),
                values=_geom(0.1, 10, 10),
            ),
            _densities(*_geom(1.0, 0.01, 10)),
        ),
        seeds=3,
        record="every:1000",
    )


@register_preset("phase-2-1")
def _phase_2_1() -> RunConfig:
    return _phase("phase-2-1", 2, 1)


@register_preset("phase-3-2")
def _phase_3_2() -> RunConfig:
    return _phase("phase-3-2", 3, 2)


def _sets(
    name: str, description: str, n: int, m: int, kind: str, groups: list[range], density: float
) -> RunConfig:
    return RunConfig(
        name=name,
        description=description,
        n_features=n,
        n_hidden=m,
        density=density,
        sets=tuple(FeatureSet(kind=kind, features=tuple(g)) for g in groups),
        seeds=4,
    )


@register_preset("correlated-pairs")
def _correlated_pairs() -> RunConfig:
    return _sets(
        "correlated-pairs",
        "2 correlated pairs in m=2: each pair orthogonal, pairs antipodal",
        4,
        2,
        "correlated",
        [range(0, 2), range(2, 4)],
        0.05,
    )


@register_preset("anticorrelated-pairs")
def _anticorrelated_pairs() -> RunConfig:
    return _sets(
        "anticorrelated-pairs",
        "2 anti-correlated pairs in m=2: each pair antipodal",
        4,
        2,
        "anticorrelated",
        [range(0, 2), range(2, 4)],
        0.05,
    )


@register_preset("correlated-3pairs")
def _correlated_3pairs() -> RunConfig:
    return _sets(
        "correlated-3pairs",
        "3 correlated pairs in m=2: local orthogonal bases",
        6,
        2,
        "correlated",
        [range(0, 2), range(2, 4), range(4, 6)],
        0.05,
    )


@register_preset("correlated-sets")
def _correlated_sets() -> RunConfig:
    return _sets(
        "correlated-sets",
        "two sets of 10 correlated features in m=10",
        20,
        10,
        "correlated",
        [range(0, 10), range(10, 20)],
        0.05,
    )


@register_preset("dynamics")
def _dynamics() -> RunConfig:
    config = _sets(
        "dynamics",
        "n=6, m=3, two correlated sets of 3: loss plateaus and geometry changes",
        6,
        3,
        "correlated",
        [range(0, 3), range(3, 6)],
        0.05,
    )
    return config.override(record="every:10")


@register_preset("privileged")
def _privileged() -> RunConfig:
    return RunConfig(
        name="privileged",
        description="hidden ReLU, n=10, m=5, importance 0.75^i, 6 densities x 4 seeds: mono -> polysemantic",
        model="hidden_relu",
        n_features=10,
        n_hidden=5,
        importance=0.75,
        sweep=(_densities(*PAPER_DENSITIES[:6]),),
        seeds=4,
    )


@register_preset("abs-small")
def _abs_small() -> RunConfig:
    return RunConfig(
        name="abs-small",
        description="|x| computation, n=3, m=6, dense: a clean pair of neurons per feature",
        model="abs",
        n_features=3,
        n_hidden=6,
        seeds=4,
    )


@register_preset("abs")
def _abs() -> RunConfig:
    return RunConfig(
        name="abs",
        description="|x| computation, n=100, m=40, importance 0.8^i, densities 1 .. 0.001",
        model="abs",
        n_features=100,
        n_hidden=40,
        importance=0.8,
        sweep=(_densities(*PAPER_DENSITIES),),
        record="every:500",
    )


@register_preset("onehot-6-2")
def _onehot() -> RunConfig:
    return RunConfig(
        name="onehot-6-2",
        description="n=6, m=2, exactly one feature active per sample: 4-, 5-, 6-gons during training",
        n_features=6,
        n_hidden=2,
        one_hot=True,
        seeds=8,
        record="every:20",
    )
