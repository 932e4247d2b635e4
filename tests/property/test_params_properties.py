"""Property tests of the parameter objects: any valid object survives JSON and the CLI."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from toyanalysis.params import ClassifyParams, DiagramParams, NeuronParams, PhaseParams

unit = st.floats(min_value=0.0, max_value=1.0, exclude_max=True, allow_nan=False)
positive = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False)

classify_params = st.builds(
    ClassifyParams,
    norm_threshold=st.floats(min_value=0.0, max_value=1e6, allow_nan=False),
    overlap_tol=unit,
    rank_tol=unit,
    min_fit=st.floats(min_value=0.0, max_value=1.0, allow_nan=False),
)
phase_params = st.builds(
    PhaseParams,
    min_records=st.integers(1, 1000),
    min_steps=st.none() | st.integers(0, 10**9),
    loss_window=st.none() | st.integers(1, 1000),
    min_drop=positive,
    noise_factor=st.floats(min_value=0.0, max_value=100.0, allow_nan=False),
    fraction_tol=st.floats(min_value=0.0, max_value=0.5, exclude_max=True, allow_nan=False),
    eval_loss=st.none() | st.integers(1, 10**7),
    classify=classify_params,
)
diagram_params = st.builds(
    DiagramParams,
    loss_records=st.integers(1, 100),
    eval_loss=st.none() | st.integers(1, 10**7),
    classify=classify_params,
)
neuron_params = st.builds(
    NeuronParams,
    dead_threshold=st.floats(min_value=0.0, max_value=10.0, allow_nan=False),
    mono_threshold=st.floats(min_value=1.0, max_value=100.0, allow_nan=False),
    feature_fraction=st.floats(min_value=1e-6, max_value=1.0, allow_nan=False),
    sign=st.sampled_from(["auto", "positive", "both"]),
)


@given(st.one_of(classify_params, phase_params, diagram_params, neuron_params))
def test_json_round_trip(params):
    again = type(params).from_json(params.to_json())
    assert again == params


@given(phase_params)
def test_flat_form_rebuilds_the_object(params):
    flat = {}
    for path, _, _ in type(params).options():
        value = params
        for name in path:
            value = getattr(value, name)
        flat[path[-1]] = value
    assert PhaseParams.from_flat(flat) == params
    assert PhaseParams.resolve(None, flat) == params


@given(classify_params)
def test_values_stay_in_their_ranges(params):
    assert 0 <= params.overlap_tol < 1 and 0 <= params.min_fit <= 1
    assert math.isfinite(params.norm_threshold)
