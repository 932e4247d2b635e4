"""The analyses give the JSON they gave before the analysis layer was rebuilt.

``tests/golden/make_golden.py`` trained the stores and saved each command's
JSON; here the same commands run on the same stores. Labels, counts and keys
must be equal; numbers equal to 1e-9 relative (the last bits of a float may
differ between BLAS builds, nothing else may).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import math
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"
_spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
assert _spec is not None and _spec.loader is not None
make_golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_golden)

CASES = [(name, args) for name, commands in make_golden.COMMANDS.items() for args in commands]


def assert_same(got, want, where="$"):
    if isinstance(want, float) and isinstance(got, int | float) and not isinstance(got, bool):
        assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12), f"{where}: {got} != {want}"
    elif isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want), f"{where}: keys differ"
        for key in want:
            assert_same(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: lengths differ"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{where}[{i}]")
    else:
        assert got == want and type(got) is type(want), f"{where}: {got!r} != {want!r}"


@pytest.mark.parametrize(("store", "args"), CASES, ids=[make_golden.output_name(*c) for c in CASES])
def test_same_json_as_before(store, args):
    path = make_golden.store_paths()[store]
    with gzip.open(GOLDEN / "outputs" / make_golden.output_name(store, args), "rt") as f:
        want = json.load(f)
    assert_same(make_golden.run_json(path, args), want)
