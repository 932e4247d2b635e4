"""One file's entries brought to the store's axes: a block of one or more checkpoints.

The store wants ``W (step, instance, hidden, feature)``, ``W_out (step, instance,
feature, hidden)``, ``b (step, instance, feature)``, ``loss (step, instance)``.
Every shape rule here is listed in docs/ingest.md; what cannot be told from
the shapes and names is refused, and every reading that is not certain is said
in a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from toyanalysis._ingest._names import Found
from toyanalysis._ingest._notes import Notes
from toyanalysis._ingest._options import Options
from toyanalysis._ingest._values import grid_shape
from toyanalysis.errors import IngestError


@dataclass
class Block:
    """Checkpoints read from one file, on the store's axes."""

    where: str
    steps: np.ndarray | None  # None: a single checkpoint whose step is not known yet
    arrays: dict[str, np.ndarray]  # W, W_out, b, loss, run_loss
    coords: dict[str, np.ndarray] = field(default_factory=dict)  # importance, density, seed
    layout: str = ""
    used: set[str] = field(default_factory=set)


def to_axes(value: np.ndarray, layout: str, target: str) -> np.ndarray:
    """Transpose ``value`` from ``layout`` to ``target``, adding length-1 axes it lacks."""
    present = [c for c in target if c in layout]
    out = value.transpose([layout.index(c) for c in present])
    for k, c in enumerate(target):
        if c not in layout:
            out = np.expand_dims(out, k)
    return out


def has_step_axis(found: dict[str, Found], stacked: set[str], opts: Options) -> bool:
    """Whether W carries a leading step axis, from the layout, the names, the entries or --steps."""
    W = found["W"]
    if W.key in stacked or W.history or W.value.ndim == 4:
        return True
    if opts.layout is not None:
        return opts.layout.startswith("s")
    step = found.get("step") or found.get("steps")
    return (step is not None and step.value.size > 1) or opts.steps is not None


def weights(
    where: str,
    found: dict[str, Found],
    stacked: set[str],
    opts: Options,
    trajectory: bool,
    notes: Notes,
) -> tuple[np.ndarray, str]:
    """W on (step, instance, hidden, feature) and the layout it was read with."""
    W = found["W"]
    value = W.value.astype(np.float32)
    layout = opts.layout
    if layout is not None and trajectory and not layout.startswith("s"):
        if W.key in stacked or value.ndim == len(layout) + 1:
            layout = "s" + layout  # the layout of one checkpoint, in a trajectory
    if layout is None:
        rest = value.ndim - trajectory
        if rest not in (2, 3):
            axes = "a leading step axis, " if trajectory else ""
            raise IngestError(
                f"{where}: {W.key} has shape {value.shape}; expected {axes}an optional instance "
                f"axis and the two matrix axes"
            )
        matrix = "hf" if W.module else _matrix_axes(where, W, found.get("b"))
        layout = ("s" if trajectory else "") + ("i" if rest == 3 else "") + matrix
        count = value.shape[int(trajectory)]
        if rest == 3 and count > 1 and count in value.shape[-2:]:
            notes.add(
                f"{W.key} {value.shape}: the instance axis is read first ({layout}), as the "
                f"notebook and ARENA save it; its length is also a matrix axis's, so pass --layout "
                f"if this is another order",
                where,
            )
    if value.ndim != len(layout):
        raise IngestError(
            f"{where}: {W.key} has shape {value.shape}, which does not fit layout {layout!r}"
        )
    return np.ascontiguousarray(to_axes(value, layout, "sihf")), layout


def _matrix_axes(where: str, W: Found, b: Found | None) -> str:
    """``fh`` or ``hf`` for W's last two axes, told by the bias's length (the feature count)."""
    a, c = W.value.shape[-2:]
    n = None if b is None or b.value.ndim == 0 else int(b.value.shape[-1])
    if n is not None and a != c and n in (a, c):
        return "fh" if n == a else "hf"
    if b is None or n is None:
        hint = "no bias to tell features from hidden"
    elif a != c:
        hint = f"the bias {b.key} has length {n}"
    else:
        hint = f"both axes have length {a}"
    choices = "ifh/ihf" if W.value.ndim == 3 else "fh/hf" if W.value.ndim == 2 else "sifh/sihf"
    raise IngestError(
        f"{where}: cannot tell the axes of {W.key} {W.value.shape} ({hint}); pass --layout {choices}"
    )


def second_matrix(
    where: str, found: dict[str, Found], W: np.ndarray, layout: str, opts: Options, notes: Notes
) -> np.ndarray | None:
    """W_out on (step, instance, feature, hidden); a tied decoder is checked and left out."""
    if "W_out" not in found:
        return None
    entry, (S, count, m, n) = found["W_out"], W.shape
    value = entry.value.astype(np.float32)
    lead = ("s" if layout.startswith("s") else "") + (
        "i" if value.ndim - layout.startswith("s") == 3 else ""
    )
    if value.ndim != len(lead) + 2:
        raise IngestError(
            f"{where}: {entry.key} has shape {entry.value.shape}, expected {(count, n, m)} or its transpose"
        )
    if entry.module:  # nn.Linear(hidden -> feature).weight is (feature, hidden)
        out = to_axes(value, lead + "fh", "sifh")
        if out.shape == (S, count, n, m) and np.array_equal(out, W.swapaxes(-1, -2)):
            return None  # tied: the same matrix
        if out.shape == (S, count, n, m) and opts.declared_model != "abs":
            diff = float(np.max(np.abs(out - W.swapaxes(-1, -2))))
            raise IngestError(
                f"{where}: {entry.key} is not the transpose of {found['W'].key} (largest difference "
                f"{diff:.3g}): the decoder is untied, and only the abs model has a second matrix; "
                f"pass --model abs if this is the |x| model"
            )
    else:
        if opts.declared_model not in (None, "abs"):
            raise IngestError(
                f"{where}: {entry.key} is a second matrix, which model {opts.declared_model} does not have"
            )
        last = value.shape[-2:]
        matrix = "fh" if last == (n, m) and n != m else "hf" if last == (m, n) else ""
        if n == m and last == (n, m):
            matrix = "hf" if layout.endswith("fh") else "fh"
            notes.add(
                f"{entry.key} is square: read with the axes of {found['W'].key} swapped ({lead + matrix})",
                where,
            )
        out = to_axes(value, lead + matrix, "sifh") if matrix else value
    if out.shape != (S, count, n, m):
        raise IngestError(
            f"{where}: {entry.key} has shape {entry.value.shape}, expected {(count, n, m)} or its transpose"
        )
    return np.ascontiguousarray(out)


def bias(where: str, found: dict[str, Found], W: np.ndarray, trajectory: bool) -> np.ndarray | None:
    """b on (step, instance, feature): per feature, per instance and feature, or broadcast."""
    if "b" not in found:
        return None
    entry, (S, count, _, n) = found["b"], W.shape
    value = entry.value.astype(np.float32)
    if trajectory and (value.ndim == 0 or value.shape[0] != S):
        raise IngestError(
            f"{where}: {entry.key} has shape {value.shape}, but the weights hold {S} steps: "
            f"a bias next to a trajectory needs the step axis first"
        )
    value = value if trajectory else value[None]
    label = f"{entry.key} (the bias)"
    shape = grid_shape(
        label, value.shape[1:], count, n, "feature" if value.ndim == 2 else None, where
    )
    return np.ascontiguousarray(np.broadcast_to(value.reshape((S, *shape)), (S, count, n)))


def hidden_bias(where: str, found: dict[str, Found]) -> None:
    """A hidden-layer bias is accepted only when it is zero (no model here has one)."""
    if "b_hidden" in found and np.any(found["b_hidden"].value != 0):
        entry = found["b_hidden"]
        raise IngestError(
            f"{where}: {entry.key} is a hidden-layer bias (largest |value| "
            f"{float(np.max(np.abs(entry.value))):.3g}); no toyanalysis model has one, so these "
            f"weights cannot be analysed exactly (drop it with --rename {entry.key}= to ignore it)"
        )
