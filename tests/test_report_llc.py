"""The report's λ̂ view: shown when the store has a saved llc result, drawn from it."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

hv = pytest.importorskip("holoviews")

from bokeh.models import GlyphRenderer  # noqa: E402

import toyanalysis as ta  # noqa: E402
from toyanalysis import testing  # noqa: E402
from toyanalysis._llc import LLCWarning, known_point_store  # noqa: E402
from toyanalysis.report import applicable_views, report_html  # noqa: E402
from toyanalysis.store import open_store, save_analysis, write_store  # noqa: E402

STEPS = [0, 50, 100, 150, 200, 250, 300, 350]
LOSS = np.stack([np.linspace(0.3, 0.2, 8), [0.2, 0.19, 0.18, 0.18, 0.1, 0.06, 0.05, 0.05]], 1)


def _store(tmp_path):
    """8 steps x 2 instances: instance 1 goes from two digons to a pentagon at step 200."""
    dense = testing.tegum("dedicated", "dedicated", dead=3)
    digons, pentagon = testing.tegum("digon", "digon", dead=1), testing.polytope("pentagon")
    W = np.stack([np.stack([dense, digons if s < 200 else pentagon]) for s in STEPS])
    ds = testing.as_dataset(W, steps=STEPS, loss=LOSS)
    path = tmp_path / "run.zarr"
    write_store(path, ds)
    return path


def _estimates() -> xr.Dataset:
    """λ̂ at every other step; instance 1's first estimate is unreliable."""
    si = ("step", "instance")
    llc = [[4.0, -2.0], [4.1, 5.0], [4.0, 7.0], [4.0, 7.2]]
    return xr.Dataset(
        {
            "llc": (si, llc),
            "llc_se": (si, np.full((4, 2), 0.1)),
            "init_loss": (si, LOSS[::2]),
            "n_divergent": (si, np.zeros((4, 2), np.int64)),
            "unreliable": (si, [[False, True], [False, False], [False, False], [False, False]]),
        },
        coords={"step": STEPS[::2], "instance": [0, 1]},
        attrs={"params": ta.LLCParams().to_json(), "nbeta": 1.0, "model": "relu_output"},
    )


def test_the_llc_view_applies_only_with_a_saved_llc_result(tmp_path):
    path = _store(tmp_path)
    assert "llc" not in [s.name for s in applicable_views(path)]
    save_analysis(path, _estimates(), "llc")
    names = [s.name for s in applicable_views(path)]
    assert names[:2] == ["loss", "llc"]
    assert "llc" in [s.name for s in applicable_views(open_store(path))]  # a Dataset from a path
    in_memory = open_store(path).load()
    in_memory.encoding = {}  # no path behind it: no saved groups to read
    assert "llc" not in [s.name for s in applicable_views(in_memory)]


def test_the_report_draws_loss_and_llc_with_what_is_left_out(tmp_path):
    path = _store(tmp_path)
    save_analysis(path, _estimates(), "llc")
    text, shown = report_html(path)
    assert "llc" in shown  # drawn, not an error
    section = text[text.index('<section id="llc">') :]
    section = section[: section.index("</section>")]
    assert "Loss and the local learning coefficient" in section
    assert 'class="error"' not in section
    # the page embeds the figures as JSON: the λ̂ title counts what is left out
    assert "(left out: 1 unreliable, of 8)" in text


def test_the_view_marks_the_phases_transitions_with_delta_llc(tmp_path):
    path = _store(tmp_path)
    save_analysis(path, _estimates(), "llc")
    section = {s.name: s for s in applicable_views(path)}["llc"]
    loss_panel = hv.render(section.build().values()[0])
    (crosses,) = [
        r.data_source.data
        for r in loss_panel.select({"type": GlyphRenderer})
        if "delta_llc" in r.data_source.data
    ]
    assert list(crosses["step"]) == [200] and list(crosses["instance"]) == ["instance 1"]
    # phase before: steps 0-150 (λ̂ 5.0 at 100; step 0 unreliable), after: 200-350 (7.0, 7.2)
    np.testing.assert_allclose(crosses["delta_llc"], [7.1 - 5.0])


def test_llc_saved_by_the_command_reaches_the_report(tmp_path, cli):
    path = tmp_path / "points.zarr"
    write_store(path, known_point_store("6-gon", instances=2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LLCWarning)
        result = cli("llc", path, "--chains", "2", "--burn-in", "0", "--draws", "5", "--save")
    assert result.exit_code == 0, result.output
    text, shown = report_html(path)
    assert "llc" in shown and '<section id="llc">' in text
