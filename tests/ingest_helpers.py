"""Helpers shared by the ingest tests: run ingest and keep its warning lines."""

from __future__ import annotations

import warnings

import numpy as np

from toyanalysis.ingestion import IngestWarning, ingest

RNG = np.random.default_rng(0)


def normal(*shape: int) -> np.ndarray:
    return RNG.normal(size=shape).astype(np.float32)


def run(sources, output, **options):
    """Ingest and return (store, warning lines); any other warning fails the test."""
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        ds = ingest([sources] if not isinstance(sources, list) else sources, output, **options)
    others = [w for w in said if not issubclass(w.category, IngestWarning)]
    assert not others, [str(w.message) for w in others]
    lines = [str(w.message) for w in said]
    assert all("\n" not in line for line in lines)
    return ds, lines


def quiet(sources, output, **options):
    """Ingest when it must say nothing (model and importance given)."""
    options.setdefault("model", "relu_output")
    options.setdefault("importance", 1.0)
    ds, lines = run(sources, output, **options)
    assert lines == []
    return ds


def said(lines: list[str], *parts: str) -> str:
    """The one warning line containing every part."""
    hits = [line for line in lines if all(p in line for p in parts)]
    assert len(hits) == 1, (parts, lines)
    return hits[0]
