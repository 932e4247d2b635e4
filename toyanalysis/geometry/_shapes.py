"""The shape registry: templates that components of the overlap graph are matched against.

A :class:`Shape` is ``k`` unit feature directions spanning ``d`` dimensions.
A :class:`ShapeRegistry` is an immutable, ordered collection of shapes:
:meth:`ShapeRegistry.with_shape` returns a *new* registry with one more shape
(checked: a new word for a name, not reserved, a connected configuration, not
the same as a shape already there), so passing a registry to
:func:`toyanalysis.classify` never changes any other call. :data:`BUILTIN_SHAPES`
holds the polytopes of Elhage et al. (2022) and is the default.

>>> import numpy as np
>>> shapes = BUILTIN_SHAPES.with_shape("cross", [[1, 0.6], [0, 0.8]])
>>> "cross" in shapes, "cross" in BUILTIN_SHAPES
(True, False)
>>> ShapeRegistry.from_json(shapes.to_json()) == shapes
True
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from toyanalysis.errors import ConfigError
from toyanalysis.geometry._components import n_components

__all__ = [
    "BUILTIN_SHAPES",
    "FIT_SCALE",
    "INVALID",
    "OTHER",
    "UNLEARNED",
    "Shape",
    "ShapeRegistry",
    "fits",
]

# rms angle error (radians) at which the fit reaches 0
FIT_SCALE = math.pi / 4

UNLEARNED = "unlearned"
OTHER = "other"
INVALID = "invalid"  # a checkpoint whose weights are not finite
RESERVED = (UNLEARNED, OTHER, INVALID, "")


@dataclass(frozen=True, eq=False)
class Shape:
    """A geometric configuration: ``k`` unit feature directions spanning ``d`` dimensions.

    ``vectors`` is ``(d, k)`` with unit columns. ``angles`` holds the sorted
    pairwise angles that components are compared with.
    """

    name: str
    vectors: np.ndarray
    description: str = ""
    angles: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        vectors = np.array(self.vectors, dtype=np.float64)
        vectors.flags.writeable = False
        object.__setattr__(self, "vectors", vectors)
        G = vectors.T @ vectors
        iu = np.triu_indices(self.n_features, 1)
        cosines = np.sort(np.clip(G[iu], -1, 1))
        object.__setattr__(self, "angles", np.arccos(cosines))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Shape):
            return NotImplemented
        return (
            self.name == other.name
            and self.description == other.description
            and np.array_equal(self.vectors, other.vectors)
        )

    def __hash__(self) -> int:
        return hash((self.name, self.vectors.shape, self.vectors.tobytes()))

    @property
    def n_features(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def n_dims(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def gram(self) -> np.ndarray:
        return self.vectors.T @ self.vectors

    def to_dict(self) -> dict[str, Any]:
        """``name``, ``description`` and ``vectors`` (rows of the ``(d, k)`` matrix)."""
        return {
            "name": self.name,
            "description": self.description,
            "vectors": self.vectors.tolist(),
        }


def fits(sorted_cosines: np.ndarray, shape: Shape) -> np.ndarray:
    """``max(0, 1 - rms(sorted angles - template angles) / 45°)`` per row."""
    if sorted_cosines.shape[-1] == 0:
        return np.ones(sorted_cosines.shape[:-1])
    angles = np.arccos(np.clip(sorted_cosines, -1, 1))
    rms = np.sqrt(np.mean((angles - shape.angles) ** 2, axis=-1))
    return np.clip(1 - rms / FIT_SCALE, 0, 1)


def _template_fit(shape: Shape, V: np.ndarray) -> float:
    G = V.T @ V
    iu = np.triu_indices(V.shape[1], 1)
    return float(fits(np.sort(G[iu])[None], shape)[0])


def _checked_vectors(name: str, vectors: Any) -> np.ndarray:
    """Unit columns expressed in the subspace they span, ``(d, k)``; or a ConfigError."""
    try:
        V = np.asarray(vectors, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"configuration {name!r}: vectors must be a numeric matrix") from None
    if V.ndim != 2 or V.shape[1] < 1 or not np.isfinite(V).all():
        raise ConfigError(
            f"configuration {name!r}: vectors must be a finite (dims, features) matrix, "
            f"got shape {V.shape}"
        )
    norms = np.linalg.norm(V, axis=0)
    if (norms == 0).any():
        raise ConfigError(f"configuration {name!r}: feature {int(np.argmin(norms))} is zero")
    V = V / norms
    _, s, vt = np.linalg.svd(V, full_matrices=False)
    d = int((s >= 1e-9 * s[0]).sum())
    V = s[:d, None] * vt[:d]
    V /= np.linalg.norm(V, axis=0)
    if V.shape[1] > 1 and n_components(np.abs(V.T @ V) > 1e-6) > 1:
        raise ConfigError(
            f"configuration {name!r} has orthogonal blocks (a tegum product); "
            "register its factors instead"
        )
    return V


@dataclass(frozen=True)
class ShapeRegistry:
    """An immutable, ordered set of :class:`Shape` templates (see the module docstring)."""

    shapes: tuple[Shape, ...] = ()

    def __iter__(self) -> Iterator[Shape]:
        return iter(self.shapes)

    def __len__(self) -> int:
        return len(self.shapes)

    def __contains__(self, name: object) -> bool:
        return any(s.name == name for s in self.shapes)

    def __getitem__(self, name: str) -> Shape:
        for shape in self.shapes:
            if shape.name == name:
                return shape
        have = ", ".join(self.names) or "none"
        raise ConfigError(f"no configuration named {name!r} (have: {have})")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.shapes)

    def with_shape(self, name: str, vectors: Any, *, description: str = "") -> ShapeRegistry:
        """A new registry with the shape ``name`` added (this one is unchanged).

        ``vectors`` are the template's feature directions as columns (any
        dimension, any norm; they are normalised and expressed in the subspace
        they span). A template must be one connected configuration: a tegum
        product (orthogonal blocks) would never be one component, so add its
        factors instead. Names must be new words, not ``other``, ``unlearned``
        or ``invalid``.
        """
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_\-]*", name):
            raise ConfigError(f"configuration name must be a word like 'pentagon', got {name!r}")
        if name in RESERVED:
            raise ConfigError(f"configuration name {name!r} is reserved")
        if name in self:
            raise ConfigError(f"configuration {name!r} is already registered")
        V = _checked_vectors(name, vectors)
        k, d = V.shape[1], V.shape[0]
        for other in self.shapes:
            if other.n_features == k and other.n_dims == d and _template_fit(other, V) > 0.999:
                raise ConfigError(f"configuration {name!r} is the same as {other.name!r}")
        return ShapeRegistry((*self.shapes, Shape(name=name, vectors=V, description=description)))

    def without(self, name: str) -> ShapeRegistry:
        """A new registry without the shape ``name``."""
        self[name]  # raises when there is none
        return ShapeRegistry(tuple(s for s in self.shapes if s.name != name))

    def to_json(self) -> str:
        """The templates as JSON: a list of ``{name, description, vectors}``."""
        return json.dumps([s.to_dict() for s in self.shapes])

    @classmethod
    def from_json(cls, text: str) -> ShapeRegistry:
        """The registry :meth:`to_json` wrote (its templates, as saved)."""
        try:
            items = json.loads(text)
            shapes = tuple(
                Shape(name=i["name"], vectors=np.array(i["vectors"]), description=i["description"])
                for i in items
            )
        except (TypeError, ValueError, KeyError):
            raise ConfigError("shapes must be the JSON written by ShapeRegistry.to_json") from None
        return cls(shapes)


def _polygon(k: int) -> np.ndarray:
    angles = 2 * np.pi * np.arange(k) / k
    return np.stack([np.cos(angles), np.sin(angles)])


def _regular_simplex(k: int) -> np.ndarray:
    """``k`` unit vectors in ``k - 1`` dimensions with equal overlaps ``-1/(k-1)``."""
    centred = np.eye(k) - 1.0 / k
    return centred / np.linalg.norm(centred, axis=0)


def _square_antiprism() -> np.ndarray:
    """Two squares, twisted by 45°, at heights ±1/√3: a tight frame, so D_i = 3/8."""
    h = 1 / math.sqrt(3)
    r = math.sqrt(1 - h * h)
    top = [(r * math.cos(a), r * math.sin(a), h) for a in np.pi / 2 * np.arange(4)]
    bottom = [(r * math.cos(a), r * math.sin(a), -h) for a in np.pi / 2 * np.arange(4) + np.pi / 4]
    return np.array(top + bottom).T


def _builtins() -> ShapeRegistry:
    registry = ShapeRegistry()
    for name, vectors, description in [
        ("dedicated", np.ones((1, 1)), "a feature with a dimension of its own (1 in 1)"),
        ("digon", np.array([[1.0, -1.0]]), "an antipodal pair (2 in 1)"),
        ("triangle", _polygon(3), "3 features in a plane at 120°"),
        ("pentagon", _polygon(5), "5 features in a plane at 72°"),
        ("hexagon", _polygon(6), "6 features in a plane at 60°"),
        ("heptagon", _polygon(7), "7 features in a plane"),
        ("octagon", _polygon(8), "8 features in a plane at 45°"),
        ("tetrahedron", _regular_simplex(4), "4 features in 3-D with overlaps -1/3"),
        ("square_antiprism", _square_antiprism(), "8 features in 3-D (tight frame)"),
    ]:
        registry = registry.with_shape(name, vectors, description=description)
    return registry


BUILTIN_SHAPES: ShapeRegistry = _builtins()
"""The built-in templates, in this order: the default of :func:`toyanalysis.classify`."""
