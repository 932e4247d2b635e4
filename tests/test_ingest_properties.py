"""Round trips: weights saved in any layout, files in any order, come back exactly.

Inference needs the instance axis first; a 3-D ``W`` saved ``[feature, instance, hidden]``
whose feature and instance counts are equal cannot be told from ``[instance, feature,
hidden]`` by its shapes, so such layouts are passed explicitly.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from ingest_helpers import run

LAYOUTS = ["".join(p) for p in itertools.permutations("ifh")] + ["fh", "hf"]


@settings(max_examples=15, deadline=None)
@given(
    layout=st.sampled_from(LAYOUTS),
    sizes=st.tuples(st.integers(1, 4), st.integers(2, 6), st.integers(1, 5)).filter(
        lambda s: s[1] != s[2]
    ),
    steps=st.lists(st.integers(0, 10**6), min_size=1, max_size=4, unique=True),
    trajectory=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_any_layout_and_file_order_round_trips(layout, sizes, steps, trajectory, seed):
    count, n, m = sizes if "i" in layout else (1, *sizes[1:])
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(len(steps), count, m, n)).astype(np.float32)  # the store's axes
    b = rng.normal(size=(len(steps), count, n)).astype(np.float32)
    order = [{"i": 1, "h": 2, "f": 3}[c] for c in layout]
    saved = (
        W.transpose([0, *order])
        if "i" in layout
        else W[:, 0].transpose([0, *(k - 1 for k in order)])
    )
    bias = b if "i" in layout else b[:, 0]
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        if trajectory:
            np.savez(folder / "history.npz", W_history=saved, b_history=bias, steps=np.array(steps))
        else:
            for k, step in enumerate(steps):
                np.savez(folder / f"ckpt-{step}.npz", W=saved[k], b=bias[k])
        # the instance axis first is inferred (every neighbouring code base); other orders are given
        given_layout = None if layout in ("ifh", "ihf", "fh", "hf") else layout
        ds, lines = run(
            folder, folder / "run.zarr", layout=given_layout, model="linear", importance=1
        )
        ds.load()
    sort = np.argsort(steps)
    assert ds["step"].values.tolist() == sorted(steps)
    np.testing.assert_array_equal(ds["W"].values, W[sort])
    np.testing.assert_array_equal(ds["b"].values, b[sort])
    assert ds.attrs["ingest_layout"] == [("s" if trajectory else "") + layout]
    ambiguous = given_layout is None and "i" in layout and count > 1 and count in (n, m)
    assert len(lines) == int(
        ambiguous
    )  # the instance axis read first, said when it could be another
    assert all("the instance axis is read first" in line for line in lines)
