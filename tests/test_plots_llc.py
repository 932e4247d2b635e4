"""The λ̂ view: loss and λ̂ over training, unreliable estimates left out, transitions marked."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

hv = pytest.importorskip("holoviews")

from bokeh.models import GlyphRenderer, VSpan, Whisker  # noqa: E402

import toyanalysis as ta  # noqa: E402
from toyanalysis import plots, testing  # noqa: E402
from toyanalysis._llc import LLCWarning, known_point_store  # noqa: E402
from toyanalysis.store import open_store, save_analysis, write_store  # noqa: E402

STEPS = np.array([0, 100, 200, 300, 400, 500])
LOSS = np.array([[0.3, 0.2], [0.2, 0.15], [0.1, 0.1], [0.05, 0.08], [0.04, 0.07], [0.04, 0.07]])
LLC = np.array([[-3.0, np.nan], [5.0, 6.0], [5.5, 6.0], [7.0, 8.5], [7.2, 8.5], [7.1, 8.4]])
UNRELIABLE = np.array([[1, 1], [0, 0], [0, 0], [0, 1], [0, 0], [0, 0]], dtype=bool)


def _store_ds(loss: bool = True) -> xr.Dataset:
    W = np.tile(testing.polytope("pentagon"), (6, 2, 1, 1))
    return testing.as_dataset(
        W,
        steps=STEPS,
        sweep={"base_density": [1.0, 0.1]},
        loss=LOSS if loss else None,
    )


def _estimates() -> xr.Dataset:
    """An llc result by hand: step 0 of instance 0 negative, of instance 1 every chain divergent."""
    si = ("step", "instance")
    return xr.Dataset(
        {
            "llc": (si, LLC),
            "llc_se": (si, np.full((6, 2), 0.2)),
            "init_loss": (si, LOSS * 1.01),
            "n_divergent": (si, np.where(np.isnan(LLC), 4, 0)),
            "unreliable": (si, UNRELIABLE),
        },
        coords={"step": STEPS, "instance": [0, 1]},
        attrs={"params": ta.LLCParams().to_json(), "nbeta": 1.0, "model": "relu_output"},
    )


def _phases() -> xr.Dataset:
    """Both instances change geometry at step 300 (instance 0 from a 4-gon to a 5-gon)."""
    index = np.array([[0, 0], [0, 0], [0, 0], [1, 1], [1, 1], [1, 1]])
    return xr.Dataset(
        {"phase_index": (("step", "instance"), index)},
        coords={
            "step": STEPS,
            "instance": [0, 1],
            "phase_instance": ("phase", [0, 0, 1, 1]),
            "phase_start": ("phase", [0, 300, 0, 300]),
            "phase_end": ("phase", [200, 500, 200, 500]),
            "transition_instance": ("transition", [0, 1]),
            "transition_step": ("transition", [300, 300]),
            "transition_from": ("transition", ["4-gon", "digon"]),
            "transition_to": ("transition", ["5-gon", "pentagon"]),
        },
    )


def _lines(fig, column: str) -> list[np.ndarray]:
    return [
        np.asarray(r.data_source.data[column], dtype=float)
        for r in fig.select({"type": GlyphRenderer})
        if type(r.glyph).__name__ == "Line" and column in r.data_source.data
    ]


def _same(lines: list[np.ndarray], *expected: np.ndarray) -> None:
    """The lines are the expected ones, in any order (NaN where a point is left out)."""
    assert len(lines) == len(expected)
    for want in expected:
        matches = [
            line
            for line in lines
            if line.shape == want.shape and np.allclose(line, want, equal_nan=True)
        ]
        assert matches, f"no line {want} in {lines}"


def _crosses(fig) -> dict:
    found = [
        dict(r.data_source.data)
        for r in fig.select({"type": GlyphRenderer})
        if "delta_llc" in r.data_source.data
    ]
    assert len(found) == 1
    return found[0]


def _panels(view) -> tuple:
    loss_panel, llc_panel = view.values()
    return hv.render(loss_panel), hv.render(llc_panel)


def test_loss_and_llc_curves_leave_out_unreliable_estimates(tmp_path):
    path = tmp_path / "run.zarr"
    write_store(path, _store_ds())
    loss_fig, llc_fig = _panels(plots.llc_curves(open_store(path), llc=_estimates()))
    _same(_lines(loss_fig, "loss"), LOSS[:, 0], LOSS[:, 1])
    assert loss_fig.y_scale.__class__.__name__ == "LogScale"
    kept = np.where(UNRELIABLE, np.nan, LLC)  # instance 0: step 0 (negative) left out;
    _same(_lines(llc_fig, "llc"), kept[:, 0], kept[:, 1])  # 1: 0 (divergent) and 300
    title = llc_fig.title.text
    assert title == "λ̂ ± se (left out: 2 unreliable, 1 all chains divergent, of 12)"
    (bars,) = [dict(w.source.data) for w in llc_fig.select({"type": Whisker})]
    np.testing.assert_array_equal(
        np.sort(bars["base"]), [100, 100, 200, 200, 300, 400, 400, 500, 500]
    )
    assert "no phases given: none marked" in loss_fig.title.text
    assert not list(llc_fig.select({"type": VSpan}))


def test_transitions_marked_on_both_panels_with_delta_llc():
    view = plots.llc_curves(_store_ds(), llc=_estimates(), phases=_phases())
    loss_fig, llc_fig = _panels(view)
    crosses = _crosses(loss_fig)
    np.testing.assert_array_equal(crosses["step"], [300, 300])
    np.testing.assert_allclose(crosses["loss"], LOSS[3])
    assert list(crosses["from"]) == ["4-gon", "digon"] and list(crosses["to"]) == [
        "5-gon",
        "pentagon",
    ]
    # Δλ̂: mean λ̂ of the phase after minus before, over the estimates drawn (reliable ones)
    after = [np.mean([7.0, 7.2, 7.1]), np.mean([8.5, 8.4])]  # instance 1's step 300 left out
    before = [np.mean([5.0, 5.5]), 6.0]  # step 0 left out of both
    np.testing.assert_allclose(crosses["delta_llc"], np.subtract(after, before))
    assert "× = change of geometry" in loss_fig.title.text
    spans = [
        dict(r.data_source.data)
        for r in llc_fig.select({"type": GlyphRenderer})
        if type(r.glyph).__name__ == "VSpan"
    ]
    assert len(spans) == 1 and list(spans[0]["step"]) == [300.0]


def test_reads_the_saved_llc_group_of_a_store(tmp_path):
    path = tmp_path / "run.zarr"
    write_store(path, _store_ds())
    with pytest.raises(plots.PlotError, match="saved analysis/llc"):
        plots.llc_curves(path)
    save_analysis(path, _estimates().isel(step=[1, 3, 5]), "llc")
    assert plots.saved_llc(path)["llc"].shape == (3, 2)
    for source in (path, open_store(path)):
        _, llc_fig = _panels(plots.llc_curves(source))
        _same(_lines(llc_fig, "llc"), np.array([5.0, 7.0, 7.1]), np.array([6.0, np.nan, 8.4]))
    assert plots.saved_llc(_store_ds()) is None  # an in-memory store has no saved groups


def test_instances_params_and_bad_input():
    ds, estimates = _store_ds(), _estimates()
    one = plots.llc_curves(ds, llc=estimates, instances=[1])
    loss_fig, _ = _panels(one)
    _same(_lines(loss_fig, "loss"), LOSS[:, 1])
    assert (
        len(_lines(_panels(plots.llc_curves(ds, llc=estimates, max_instances=1))[0], "loss")) == 1
    )
    with pytest.raises(plots.PlotError, match="max_instances"):
        plots.llc_curves(ds, llc=estimates, max_instances=0)
    with pytest.raises(plots.PlotError, match="variable llc"):
        plots.llc_curves(ds, llc=estimates.drop_vars("llc"))
    with pytest.raises(plots.PlotError, match="instance 7"):
        plots.llc_curves(ds, llc=estimates, instances=[7])
    with pytest.raises(plots.PlotError, match="no transition_instance"):
        plots.llc_curves(ds, llc=estimates, phases=xr.Dataset())


def test_without_a_stored_loss_the_chains_reference_loss_is_drawn():
    loss_fig, _ = _panels(plots.llc_curves(_store_ds(loss=False), llc=_estimates()))
    _same(_lines(loss_fig, "loss"), LOSS[:, 0] * 1.01, LOSS[:, 1] * 1.01)
    assert "L(w*)" in loss_fig.title.text


def test_a_real_llc_result():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LLCWarning)  # 5 draws: some estimates unreliable
        ds = ta.llc(_known(), chains=2, burn_in=0, draws=5)
    _, llc_fig = _panels(plots.llc_curves(_known(), llc=ds))
    assert len(_lines(llc_fig, "llc")) == 2


def _known() -> xr.Dataset:
    ds = known_point_store("6-gon", instances=2)
    return ds.assign(loss=(("step", "instance"), np.full((1, 2), 0.0103)))
