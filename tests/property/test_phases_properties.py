"""Property tests of phases: the result says how it was made, instance order does not matter,
and the JSON records, the frames and the tables say the same thing."""

from __future__ import annotations

import numpy as np
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from toyanalysis import testing
from toyanalysis.params import PhaseParams
from toyanalysis.phase_changes import event_counts, phase_events, phase_records, phases

SHAPES = [testing.tegum("digon", "digon"), testing.tegum("triangle", dead=1)]


@st.composite
def runs(draw):
    """2 to 4 instances of 12 to 30 records, each switching between two geometries."""
    n_instances = draw(st.integers(2, 4))
    records = draw(st.integers(12, 30))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    pattern = [draw(st.lists(st.integers(0, 1), min_size=records, max_size=records))]
    pattern += [list(rng.integers(0, 2, records)) for _ in range(n_instances - 1)]
    W = np.stack(
        [
            [testing.rotate(SHAPES[pattern[k][t]], rng) for k in range(n_instances)]
            for t in range(records)
        ]
    )
    loss = np.exp(rng.normal(-5, 0.3, (records, n_instances))) * np.where(
        np.array(pattern).T == 1, 0.2, 1.0
    )
    return testing.as_dataset(
        W, steps=np.arange(records) * 10, loss=loss, seed=list(range(10, 10 + n_instances))
    )


params_ = st.builds(
    PhaseParams,
    min_records=st.integers(1, 4),
    min_steps=st.none() | st.integers(0, 50),
    loss_window=st.none() | st.integers(1, 4),
    noise_factor=st.floats(0, 6),
)


@settings(max_examples=10, deadline=None)
@given(ds=runs(), params=params_)
def test_the_result_reads_back_to_its_params(ds, params):
    result = phases(ds, params)
    assert PhaseParams.from_json(result.attrs["params"]) == params


@settings(max_examples=10, deadline=None)
@given(ds=runs(), seed=st.integers(0, 2**31 - 1))
def test_phases_are_invariant_to_instance_order(ds, seed):
    order = np.random.default_rng(seed).permutation(ds.sizes["instance"])
    a = {r["instance"]: r for r in phase_records(phases(ds, loss_window=2))}
    b = {r["instance"]: r for r in phase_records(phases(ds.isel(instance=order), loss_window=2))}
    assert a == b


@settings(max_examples=10, deadline=None)
@given(ds=runs())
def test_records_and_tables_are_consistent(ds):
    result = phases(ds, loss_window=2)
    records, counts, events = phase_records(result), event_counts(result), phase_events(result)
    for k, record in enumerate(records):
        one = counts.isel(instance=k)
        assert len(record["phases"]) == int(one["n_phases"])
        assert len(record["transitions"]) == int(one["n_transitions"]) == len(record["phases"]) - 1
        assert len(record["loss_drops"]) == int(one["n_drops"])
        assert len(record["plateaus"]) == int(one["n_plateaus"])
        assert len(record["feature_jumps"]) == int(one["n_jumps"].sum())
        mine = events[events["instance"] == record["instance"]]
        assert mine.loc[mine["event"] == "transition", "step"].tolist() == [
            t["step"] for t in record["transitions"]
        ]
        assert mine.loc[mine["event"] == "phase", "summary"].tolist() == [
            p["summary"] for p in record["phases"]
        ]
        # phase_index numbers the records by the phase tables' rows of this instance
        index = result["phase_index"].sel(instance=record["instance"]).values
        starts = [p["start_step"] for p in record["phases"]]
        assert [int(result["step"][index == p][0]) for p in range(len(starts))] == starts
    assert isinstance(result, xr.Dataset)
