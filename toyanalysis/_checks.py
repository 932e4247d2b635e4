"""Shape-annotated kernels, checked at run time under the tests only.

Kernels annotate their arrays with jaxtyping (``Float[np.ndarray, "*batch
hidden feature"]``) and are decorated with :func:`shape_checked`. When the
environment variable ``TOYANALYSIS_CHECK_SHAPES`` is ``1`` (the test suite sets
it before importing the package) every call checks dtypes and that named
axes agree across arguments and results; otherwise the decorator returns the
function unchanged and costs nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])

__all__ = ["shape_checked"]


def shape_checked(fn: F) -> F:
    """``fn`` with its jaxtyping annotations checked, when the tests ask for it."""
    if os.environ.get("TOYANALYSIS_CHECK_SHAPES") != "1":
        return fn
    from beartype import beartype
    from jaxtyping import jaxtyped

    checked: F = jaxtyped(typechecker=beartype)(fn)
    return checked
