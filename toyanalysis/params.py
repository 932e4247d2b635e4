"""The parameters of every analysis, as frozen, validated objects.

Each analysis takes one parameter object, whole: :class:`ClassifyParams`,
:class:`PhaseParams`, :class:`DiagramParams`, :class:`NeuronParams` and
:class:`PlotParams` (:class:`ReportParams` for the HTML report). The object is checked when it is made (a bad value is a
one-line :class:`~toyanalysis.errors.ConfigError`), it is the only place its
defaults are written, it is stored in the result's ``attrs["params"]`` as JSON,
and :meth:`Params.from_json` reads that back to an equal object, so a result
says exactly how it was made. The command line makes its options from the
same fields (``toyanalysis_cli._params``), so every parameter is reachable from
every entry point that uses it.

>>> p = PhaseParams(min_drop=0.1, classify=ClassifyParams(overlap_tol=0.2))
>>> PhaseParams.from_json(p.to_json()) == p
True
>>> p.classify.norm_threshold
0.5
>>> ClassifyParams(overlap_tol=1.5)
Traceback (most recent call last):
...
toyanalysis.errors.ConfigError: overlap_tol must be a number in [0.0, 1.0), got 1.5
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from toyanalysis.errors import ConfigError

__all__ = [
    "ClassifyParams",
    "DiagramParams",
    "NeuronParams",
    "Option",
    "Params",
    "PhaseParams",
    "PlotParams",
    "ReportParams",
]

P = TypeVar("P", bound="Params")


@dataclass(frozen=True)
class Option:
    """How one field is checked and offered on the command line.

    ``kind`` is ``int``, ``float``, ``str`` or ``bool``; ``optional`` admits
    None (the default is then worked out from the data, as the help says);
    ``low``/``high`` bound numbers (``high_open``: strictly below ``high``);
    ``choices`` lists the admitted strings.
    """

    kind: type
    help: str
    optional: bool = False
    low: float | None = None
    high: float | None = None
    high_open: bool = True
    low_open: bool = False
    choices: tuple[str, ...] | None = None

    def check(self, name: str, value: Any) -> Any:
        """``value`` converted to ``kind``, or a ConfigError naming ``name``."""
        if value is None:
            if self.optional:
                return None
            raise ConfigError(f"{name} must be given, got None")
        value = self._convert(name, value)
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"{name} must be one of {', '.join(self.choices)}, got {value!r}")
        if self.kind in (int, float) and not self._in_range(value):
            raise ConfigError(f"{name} must be {self._range_text()}, got {value!r}")
        return value

    def _convert(self, name: str, value: Any) -> Any:
        if self.kind is bool:
            if isinstance(value, bool):
                return value
            raise ConfigError(f"{name} must be true or false, got {value!r}")
        if self.kind is str:
            if isinstance(value, str):
                return value
            raise ConfigError(f"{name} must be a string, got {value!r}")
        if isinstance(value, bool) or not _is_number(value):
            raise ConfigError(f"{name} must be {self._range_text()}, got {value!r}")
        if self.kind is int:
            if not isinstance(value, int) and not math.isfinite(float(value)):
                raise ConfigError(f"{name} must be {self._range_text()}, got {value!r}")
            exact = isinstance(value, int) or float(value) == int(value)
            if not exact:
                raise ConfigError(f"{name} must be an integer, got {value!r}")
            if abs(int(value)) > _INT_LIMIT:  # beyond what NumPy, torch and zarr hold
                raise ConfigError(
                    f"{name} must be {self._range_text()}, at most 2**63 - 1, got {value!r}"
                )
            return int(value)
        return float(value)

    def _in_range(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        if self.high is None:
            return True
        return value < self.high if self.high_open else value <= self.high

    def _range_text(self) -> str:
        noun = "an integer" if self.kind is int else "a number"
        if self.low is not None and self.high is not None and math.isfinite(self.high):
            left = "(" if self.low_open else "["
            right = ")" if self.high_open else "]"
            low, high = _short(self.low, self.kind), _short(self.high, self.kind)
            return f"{noun} in {left}{low}, {high}{right}"
        if self.low is not None:
            return f"{noun} {'>' if self.low_open else '>='} {_short(self.low, self.kind)}"
        return noun


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, str)


_INT_LIMIT = 2**63 - 1


def _short(value: float, kind: type = float) -> str:
    """A bound as the field's kind writes it: ``1`` for an integer, ``1.0`` for a number."""
    if kind is int and float(value).is_integer():
        return str(int(value))
    return str(float(value))


def option(default: Any, kind: type, help: str, **checks: Any) -> Any:
    """A dataclass field with its :class:`Option` (its check and its command-line help)."""
    return field(default=default, metadata={"option": Option(kind=kind, help=help, **checks)})


def nested(cls: type[Params]) -> Any:
    """A field holding another parameter object (its defaults unless given)."""
    return field(default_factory=cls, metadata={"nested": cls})


@dataclass(frozen=True, kw_only=True)
class Params:
    """Base of the parameter objects: checked at construction, JSON round trip."""

    analysis: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if "nested" in f.metadata:
                if isinstance(value, dict):
                    value = f.metadata["nested"].from_dict(value)
                if not isinstance(value, f.metadata["nested"]):
                    raise ConfigError(
                        f"{f.name} must be a {f.metadata['nested'].__name__}, got {value!r}"
                    )
            else:
                value = f.metadata["option"].check(f.name, value)
            object.__setattr__(self, f.name, value)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (nested objects as dicts), in field order."""
        return {
            f.name: (v.to_dict() if isinstance(v := getattr(self, f.name), Params) else v)
            for f in dataclasses.fields(self)
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls: type[P], data: Any) -> P:
        """The object from :meth:`to_dict`'s form; unknown keys are refused."""
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__} must be read from a JSON object, got {data!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"{cls.__name__} has no parameter {unknown[0]!r} (have: {', '.join(sorted(known))})"
            )
        return cls(**data)

    @classmethod
    def from_json(cls: type[P], text: str) -> P:
        try:
            data = json.loads(text)
        except (TypeError, json.JSONDecodeError) as err:
            raise ConfigError(f"{cls.__name__}: not valid JSON ({err})") from None
        return cls.from_dict(data)

    def replace(self: P, **changes: Any) -> P:
        """A copy with some fields changed (checked like a new object)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def options(cls) -> Iterator[tuple[tuple[str, ...], Any, Option]]:
        """Every leaf parameter: ``(path, default, option)``; nested ones flattened.

        >>> [path for path, _, _ in DiagramParams.options()][:2]
        [('loss_records',), ('loss',)]
        """
        for f in dataclasses.fields(cls):
            if "nested" in f.metadata:
                for path, default, opt in f.metadata["nested"].options():
                    yield (f.name, *path), default, opt
            else:
                yield (f.name,), f.default, f.metadata["option"]

    @classmethod
    def resolve(cls: type[P], params: P | None, changes: dict[str, Any]) -> P:
        """``params`` (the defaults when None) with ``changes`` by leaf name.

        What the analyses do with their keyword arguments, so that
        ``classify(ds, overlap_tol=0.2)`` and
        ``classify(ds, ClassifyParams(overlap_tol=0.2))`` are the same call.

        >>> PhaseParams.resolve(None, {"overlap_tol": 0.2}).classify.overlap_tol
        0.2
        """
        base = cls() if params is None else params
        if not isinstance(base, cls):
            raise ConfigError(f"params must be a {cls.__name__}, got {type(base).__name__}")
        if not changes:
            return base
        leaves = {path[-1] for path, _, _ in cls.options()}
        unknown = sorted(set(changes) - leaves)
        if unknown:
            raise ConfigError(
                f"{cls.__name__} has no parameter {unknown[0]!r} (have: {', '.join(sorted(leaves))})"
            )
        flat = {path[-1]: _leaf(base, path) for path, _, _ in cls.options()}
        flat.update(changes)
        return cls.from_flat(flat)

    @classmethod
    def from_flat(cls: type[P], values: dict[str, Any]) -> P:
        """The object from leaf names (as :meth:`options` lists them); None means the default.

        >>> PhaseParams.from_flat({"overlap_tol": 0.2, "min_drop": None}).classify.overlap_tol
        0.2
        """
        given: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if "nested" in f.metadata:
                given[f.name] = f.metadata["nested"].from_flat(values)
            elif values.get(f.name) is not None:
                given[f.name] = values[f.name]
        return cls(**given)


def _leaf(params: Params, path: tuple[str, ...]) -> Any:
    value: Any = params
    for name in path:
        value = getattr(value, name)
    return value


# --------------------------------------------------------------------------- the analyses


@dataclass(frozen=True, kw_only=True)
class ClassifyParams(Params):
    """Thresholds of :func:`toyanalysis.classify` (definitions in ``docs/classify.md``)."""

    analysis: ClassVar[str] = "classify"

    norm_threshold: float = option(
        0.5,
        float,
        "A feature is represented when its norm ‖W_i‖ exceeds this.",
        low=0.0,
        high=math.inf,
    )
    overlap_tol: float = option(
        0.15,
        float,
        "Features whose overlap |Ŵ_i·Ŵ_j| exceeds this share a configuration.",
        low=0.0,
        high=1.0,
    )
    split_max_tol: float = option(
        0.3,
        float,
        "Other components are split into registered shapes at overlap thresholds up to this.",
        low=0.0,
        high=1.0,
    )
    split_step: float = option(
        0.05,
        float,
        "... rising from overlap_tol by this step (split_max_tol <= overlap_tol: no split).",
        low=0.0,
        high=1.0,
        low_open=True,
    )
    split_lone_tol: float = option(
        0.2,
        float,
        "... and an other component falls apart into lone features only up to this.",
        low=0.0,
        high=1.0,
    )
    rank_tol: float = option(
        0.2,
        float,
        "A component spans the singular values at least this fraction of the largest.",
        low=0.0,
        high=1.0,
    )
    rank_tol_many: float = option(
        0.25,
        float,
        "... the same for components of three or more features (noise spreads over their dims).",
        low=0.0,
        high=1.0,
    )
    min_fit: float = option(
        0.25,
        float,
        "A component is named after a template only when its fit is at least this.",
        low=0.0,
        high=1.0,
        high_open=False,
    )
    max_angle_error: float = option(
        32.0,
        float,
        "... and every pairwise angle is within this many degrees of the template's.",
        low=0.0,
        high=180.0,
        high_open=False,
    )
    parallel_cos: float = option(
        0.95,
        float,
        "Two features with cos above this point the same way: no template is named for them.",
        low=0.0,
        high=1.0,
        high_open=False,
    )
    dedicated_min_dimensionality: float = option(
        0.85,
        float,
        "A lone feature is dedicated only when its D_i (over all features) is at least this.",
        low=0.0,
        high=1.0,
        high_open=False,
    )
    dimensionality_tol: float = option(
        0.05,
        float,
        "A feature's D_i names the nearest shape fraction d/k only within this distance.",
        low=0.0,
        high=1.0,
        high_open=False,
    )


#: How phases and diagrams compare models: the expected loss (exact or sampled, see
#: toyanalysis.evaluation), one of those methods by name, or the stored training loss.
LOSSES = ("expected", "exact", "sampled", "stored")


@dataclass(frozen=True, kw_only=True)
class PhaseParams(Params):
    """Thresholds of :func:`toyanalysis.phases` (definitions in ``docs/phases.md``)."""

    analysis: ClassVar[str] = "phases"

    min_records: int = option(
        3, int, "A configuration must hold this many records to start a phase.", low=1
    )
    min_steps: int | None = option(
        None,
        int,
        "... and last this many steps (default: 1% of the recorded span).",
        optional=True,
        low=0,
    )
    loss_window: int | None = option(
        None,
        int,
        "Records on each side when comparing loss levels (default: records/50, >= 2).",
        optional=True,
        low=1,
    )
    min_drop: float = option(
        0.05,
        float,
        "Smallest loss drop reported, in decades (log10).",
        low=0.0,
        low_open=True,
        high=math.inf,
    )
    noise_factor: float = option(
        4.0,
        float,
        "A drop must also exceed this many robust standard deviations of the loss noise.",
        low=0.0,
        high=math.inf,
    )
    fraction_tol: float = option(
        0.02,
        float,
        "Snap a feature's dimensionality to a fraction d/k within this distance.",
        low=0.0,
        high=0.5,
    )
    loss: str = option(
        "expected",
        str,
        "Which loss: expected (exact or sampled, from the store's config; the stored loss "
        "where it has none), exact, sampled, or stored (the training loss).",
        choices=LOSSES,
    )
    eval_loss: int | None = option(
        None,
        int,
        "Use the loss on one fixed batch of N samples instead (overrides loss).",
        optional=True,
        low=1,
    )
    classify: ClassifyParams = nested(ClassifyParams)


@dataclass(frozen=True, kw_only=True)
class DiagramParams(Params):
    """Parameters of :func:`toyanalysis.phase_diagram` (definitions in ``docs/phases.md``)."""

    analysis: ClassVar[str] = "phase_diagram"

    loss_records: int = option(
        3, int, "Seeds are ranked by their mean loss over this many last records.", low=1
    )
    loss: str = option(
        "expected",
        str,
        "Rank seeds by: expected (exact or sampled, from the store's config; the stored loss "
        "where it has none), exact, sampled, or stored (the last records' training loss).",
        choices=LOSSES,
    )
    eval_loss: int | None = option(
        None,
        int,
        "Rank seeds by the loss on one fixed batch of N samples instead (overrides loss).",
        optional=True,
        low=1,
    )
    classify: ClassifyParams = nested(ClassifyParams)


@dataclass(frozen=True, kw_only=True)
class NeuronParams(Params):
    """Thresholds of :func:`toyanalysis.neurons` (definitions in ``docs/neurons.md``)."""

    analysis: ClassVar[str] = "neurons"

    dead_threshold: float = option(
        0.1, float, "A neuron whose drive norm is below this is dead.", low=0.0, high=math.inf
    )
    mono_threshold: float = option(
        1.5,
        float,
        "Monosemantic when the effective number of features read and of outputs written are at most this.",
        low=1.0,
        high=math.inf,
    )
    feature_fraction: float = option(
        0.3,
        float,
        "A neuron reads a feature (writes an output) at this fraction of its largest drive or more.",
        low=0.0,
        low_open=True,
        high=1.0,
        high_open=False,
    )
    sign: str = option(
        "auto",
        str,
        "Which weights drive a neuron: positive (hidden_relu), both (abs), auto (by model).",
        choices=("auto", "positive", "both"),
    )


@dataclass(frozen=True, kw_only=True)
class PlotParams(Params):
    """What the HoloViews views show (``docs/plots.md``)."""

    analysis: ClassVar[str] = "plots"

    max_frames: int = option(50, int, "At most this many steps per view, evenly spaced.", low=1)
    max_instances: int = option(
        12, int, "At most this many instances per view, evenly spaced.", low=1
    )
    classify: ClassifyParams = nested(ClassifyParams)


@dataclass(frozen=True, kw_only=True)
class ReportParams(PlotParams):
    """What the HTML report shows (``toyanalysis.report``): :class:`PlotParams` with smaller budgets.

    Every frame of every view is embedded in the page, so the report shows
    fewer steps and instances than a live view by default.
    """

    analysis: ClassVar[str] = "report"

    max_frames: int = option(
        30, int, "Most steps a view embeds for its slider (fewer for large models).", low=1
    )
    max_instances: int = option(
        10, int, "Most instances shown as panels (evenly spaced over the sweep).", low=1
    )
