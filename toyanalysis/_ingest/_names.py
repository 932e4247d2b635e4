"""The names other TMS code gives its parameters, matched case-insensitively after any prefix."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from toyanalysis._ingest._read import Content
from toyanalysis.errors import IngestError

# canonical name -> the names it is known by (lower case); documented in docs/ingest.md
KNOWN: dict[str, tuple[str, ...]] = {
    "W": ("w", "w_in", "w1", "embedding.weight", "embed.weight", "encoder.weight", "enc.weight"),
    "W_out": (
        "w_out", "w2", "unembedding.weight", "unembed.weight", "decoder.weight", "dec.weight",
    ),
    "b": (
        "b_final", "b", "b_out", "unembedding.bias", "unembed.bias", "decoder.bias", "dec.bias",
    ),
    "b_hidden": ("embedding.bias", "embed.bias", "encoder.bias", "enc.bias", "b_hidden"),
    "loss": ("loss", "losses"),
    "importance": ("importance", "feature_importance", "importances"),
    "density": ("feature_probability", "feature_probabilities", "density", "feature_density"),
    "sparsity": ("sparsity", "feature_sparsity"),
    "step": ("step", "global_step"),
    "steps": ("steps",),
    "seed": ("seed",),
}  # fmt: skip
HISTORY = "_history"  # W_history, b_final_history: a leading step axis


@dataclass(frozen=True)
class Found:
    """A known entry: its key in the file, its value, and what its name says."""

    key: str
    value: np.ndarray
    history: bool  # the name ends in _history: the first axis is the step
    module: bool  # nn.Linear naming (embedding.weight): the weight is (out, in)


def canonical(key: str) -> tuple[str, int, bool] | None:
    """(canonical name, 0 for an exact match or 1 after a prefix, history?) of a key, or None."""
    base = key.lower()
    history = base.endswith(HISTORY)
    if history:
        base = base[: -len(HISTORY)]
    for name, aliases in KNOWN.items():
        for alias in aliases:
            if base == alias:
                return name, 0, history
            if base.endswith("." + alias):
                return name, 1, history
    return None


def apply_renames(
    where: str, content: Content, rename: Mapping[str, str], used: set[str]
) -> Content:
    """The content with ``--rename OLD=NEW`` applied (NEW empty: the entry is dropped)."""
    out = dict(content.entries)
    stacked, dropped = set(content.stacked), list(content.dropped)
    for old, new in sorted(rename.items(), key=lambda item: item[1] != ""):
        key = old if old in out else next((k for k in out if k.lower() == old.lower()), None)
        if key is None:
            continue
        used.add(old)
        value = out.pop(key)
        if not new:
            dropped.append(key)
        elif new in out:
            raise IngestError(f"{where}: --rename {old}={new}: there is already an entry {new}")
        else:
            out[new] = value
            if key in stacked:
                stacked = (stacked - {key}) | {new}
    return Content(out, list(content.opaque), stacked, dropped)


def check_rename_targets(rename: Mapping[str, str]) -> None:
    for old, new in rename.items():
        if not old:
            raise IngestError(f"--rename {old}={new}: give the entry to rename before '='")
        if new and canonical(new) is None:
            raise IngestError(
                f"--rename {old}={new}: {new} is not a known name; use one of {', '.join(KNOWN)} "
                f"(or W_history, b_history ...), or nothing after '=' to drop {old}"
            )


def resolve(where: str, entries: Mapping[str, np.ndarray]) -> dict[str, Found]:
    """The known entries by canonical name; several candidates for one name are refused."""
    best: dict[str, list[tuple[int, str, bool]]] = {}
    for key in entries:
        match = canonical(key)
        if match is not None:
            name, priority, history = match
            best.setdefault(name, []).append((priority, key, history))
    found = {}
    for name, candidates in best.items():
        top = min(p for p, _, _ in candidates)
        keys = [(k, h) for p, k, h in candidates if p == top]
        if len(keys) > 1:
            listed = ", ".join(k for k, _ in keys)
            raise IngestError(
                f"{where}: several entries could be {name}: {listed}; choose with --rename KEY={name} "
                f"(and --rename OTHER= to drop the others)"
            )
        key, history = keys[0]
        module = key.lower().removesuffix(HISTORY).endswith((".weight", ".bias"))
        found[name] = Found(key, entries[key], history, module)
    if "W" not in found:
        names = ", ".join(KNOWN["W"])
        listed = ", ".join(f"{k} {tuple(v.shape)}" for k, v in entries.items()) or "nothing"
        raise IngestError(
            f"{where}: no weight matrix (looked for {names}, any case, after any prefix; "
            f"found {listed}); name it with --rename KEY=W"
        )
    return found


def summarise(keys: list[str]) -> str:
    """Keys for a warning line; a group of more than four under one prefix is shown as one item."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(key.split(".", 1)[0], []).append(key)
    items = []
    for prefix, members in groups.items():
        if len(members) > 4:
            items.append(f"{prefix}.* ({len(members)} entries)")
        else:
            items.extend(members)
    return ", ".join(items)
