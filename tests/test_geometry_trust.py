"""Issue 11: a shape is named only when it is one (twins, angle errors, the worst pair)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from toyanalysis import testing
from toyanalysis.geometry import classify, to_frame, to_records


def at_angles(*degrees: float) -> np.ndarray:
    """Unit features in 2-D at the given angles."""
    a = np.radians(degrees)
    return np.stack([np.cos(a), np.sin(a)])


def only(result, name):
    """Of a single-checkpoint result: per feature, or the first configuration slot."""
    values = result[name].values[0, 0]
    return values[0] if name.startswith("config_") else values


def test_a_hexagon_with_a_twin_pair_is_not_a_hexagon():
    # correlated-3pairs: two features at cos +1 among six in a plane
    W = at_angles(0, 0, 120, 180, 240, 300)
    result = classify(W)
    assert str(result["summary"].item()) == "other(6 in 2)"
    assert sorted(only(result, "config_worst_pair").tolist()) == [0, 1]


def test_a_pentagon_with_a_26_degree_pair_is_not_a_pentagon():
    W = at_angles(0, 26, 130, 210, 290)
    result = classify(W)
    assert str(result["summary"].item()) == "other(5 in 2)"
    assert float(only(result, "config_angle_error")) > 40


def test_a_triangle_at_159_90_111_degrees_is_not_a_triangle():
    W = at_angles(0, 159, 249)  # pairwise 159, 90, 111
    result = classify(W)
    assert str(result["summary"].item()) == "other(3 in 2)"
    assert float(only(result, "config_angle_error")) == pytest.approx(39, abs=0.01)
    # the worst pair is the one at 159 degrees (39 off 120): features 0 and 1
    assert sorted(only(result, "config_worst_pair").tolist()) == [0, 1]


def test_a_near_twin_pair_disqualifies_an_octagon_even_within_the_angle_error():
    # an octagon with one vertex moved towards its neighbour: a pair at 25 degrees
    # (cos 0.906 < 0.95: named), then at 15 degrees (cos 0.966 > parallel_cos: not,
    # although its worst angle error, 30 degrees, is within max_angle_error)
    base = [45.0 * i for i in range(8)]
    assert str(classify(at_angles(*base[:1], 25.0, *base[2:]))["summary"].item()) == "octagon"
    moved = at_angles(*base[:1], 15.0, *base[2:])
    assert str(classify(moved)["summary"].item()) == "other(8 in 2)"
    assert str(classify(moved, parallel_cos=1.0)["summary"].item()) == "octagon"


def test_the_angle_error_threshold_decides_and_is_settable():
    W = at_angles(0, 72 + 25, 144, 216, 288)  # one vertex 25 degrees off
    result = classify(W)
    assert str(result["summary"].item()) == "pentagon"
    assert float(only(result, "config_angle_error")) == pytest.approx(25, abs=0.01)
    assert str(classify(W, max_angle_error=20)["summary"].item()) == "other(5 in 2)"


def test_a_deformed_but_distinct_pentagon_from_nonuniform_is_still_a_pentagon():
    # nonuniform, instance 5 at step 10000: the worst converged pentagon (30.5 degrees)
    W = at_angles(-151.3, -12.6, 151.9, 70.0, -94.6)
    assert str(classify(W)["summary"].item()) == "pentagon"


def test_a_nearly_antipodal_pair_is_a_digon():
    assert str(classify(testing.polytope("digon"))["summary"].item()) == "digon"
    a = math.radians(179)
    W = np.array([[1.0, math.cos(a)], [0.0, math.sin(a)]])
    assert str(classify(W, max_angle_error=1.5)["summary"].item()) == "digon"


def test_angle_error_and_worst_pair_are_in_records_and_frames():
    W = testing.tegum("triangle", "dedicated", dead=1)
    result = classify(W)
    record = to_records(result)[0]
    by_kind = {c["kind"]: c for c in record["configurations"]}
    assert by_kind["triangle"]["angle_error"] == pytest.approx(0, abs=1e-6)
    assert len(by_kind["triangle"]["worst_pair"]) == 2
    assert by_kind["dedicated"]["worst_pair"] is None
    frame = to_frame(result)
    assert frame["angle_error"].isna().tolist() == [False] * 4 + [True]


def test_dedicated_counts_interference_from_features_below_the_norm_threshold():
    # feature 1 (norm 0.45, unlearned) lies along feature 0: D_0 = 1 / (1 + 0.45^2) = 0.83
    W = np.array([[1.0, 0.45, 0.0], [0.0, 0.0, 1.0]])
    result = classify(W)
    assert str(result["summary"].item()) == "1 dedicated + 1 other(1 in 1) + 1 unlearned"
    assert only(result, "kind").tolist() == ["other", "unlearned", "dedicated"]
    assert str(classify(W, dedicated_min_dimensionality=0.8)["summary"].item()) == (
        "2 dedicated + 1 unlearned"
    )
    # uniform-small at density 1: a 'dedicated' feature with D_i = 0.26 is not dedicated
    W = np.array([[1.0, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4]])
    result = classify(W)
    assert float(only(result, "dimensionality")[0]) < 0.4
    assert only(result, "kind")[0] == "other"


def test_each_feature_has_its_nearest_fraction_and_whether_its_configuration_agrees():
    W = testing.tegum("pentagon", "digon", "dedicated", dead=1)
    result = classify(W)
    fraction = only(result, "fraction").tolist()
    assert fraction == [[2, 5]] * 5 + [[1, 2]] * 2 + [[1, 1], [0, 0]]
    assert only(result, "agrees").tolist() == [True] * 8 + [False]
    record = to_records(result)[0]
    assert [f["fraction"] for f in record["features"]][4:] == ["2/5", "1/2", "1/2", "1/1", None]
    frame = to_frame(result)
    assert frame["fraction"].tolist()[-2:] == ["1/1", ""]
    assert frame["agrees"].tolist() == [True] * 8 + [False]


def test_a_configuration_whose_dimensionality_disagrees_is_flagged():
    # a pentagon with uneven norms: named pentagon, but D_i of the short feature is far from 2/5
    a = np.radians([0, 72, 144, 216, 288])
    W = np.stack([np.cos(a), np.sin(a)]) * np.array([0.6, 1, 1, 1, 1])
    result = classify(W)
    assert str(result["summary"].item()) == "pentagon"
    D = only(result, "dimensionality")
    agrees = only(result, "agrees")
    assert not agrees[0] and D[0] < 0.3


def with_bias(W: np.ndarray, b, model: str = "relu_output", **more) -> object:
    ds = testing.as_dataset(W)
    ds["b"] = (("step", "instance", "feature"), np.asarray(b, dtype=np.float32)[None, None])
    for name, (dims, values) in more.items():
        ds[name] = (dims, values)
    ds.attrs["model"] = model
    return ds


def test_bias_dead_features_are_unlearned_whatever_their_norm():
    # a Chen-et-al.-style run: a pentagon plus 3 features of norm 0.9 whose bias holds them at 0
    a = np.radians([10, 100, 200])
    W = np.concatenate([testing.polytope("pentagon"), 0.9 * np.stack([np.cos(a), np.sin(a)])], 1)
    b = [0.0] * 5 + [-100.0] * 3
    result = classify(with_bias(W, b))
    assert str(result["summary"].item()) == "1 pentagon + 3 unlearned"
    assert result.attrs["represented"].startswith("norm and bias (relu_output")
    # b_i + sum_j max(0, (W^T W)_ij) is the largest pre-activation: just above 0, it can fire
    M = W.T @ W
    edge = -np.clip(M, 0, None).sum(axis=1)
    assert (
        classify(with_bias(W, edge + 1e-3))["kind"].values.ravel().tolist().count("unlearned") == 0
    )
    assert set(classify(with_bias(W, edge - 1e-3))["kind"].values.ravel()) == {"unlearned"}


def test_without_b_the_norm_rule_alone_is_used_and_said():
    result = classify(testing.as_dataset(testing.polytope("pentagon")))
    assert result.attrs["represented"] == "norm only (the store has no b)"
    linear = with_bias(testing.polytope("digon"), [-100.0, -100.0], model="linear")
    result = classify(linear)
    assert str(result["summary"].item()) == "digon"
    assert result.attrs["represented"].startswith("norm only (linear")


def test_bias_rule_for_abs_uses_signed_inputs_and_w_out():
    W = np.array([[-1.0, 0.0], [0.0, 1.0]])  # h_0 = ReLU(-x_0): up to 1 only for signed inputs
    W_out = np.array([[1.0, 0.0], [0.0, 0.0]])  # feature 1 reads nothing: ReLU(b_1)
    dims = ("step", "instance", "feature", "hidden")
    ds = with_bias(W, [-0.9, -0.1], model="abs", W_out=(dims, W_out[None, None]))
    assert classify(ds)["kind"].values.ravel().tolist() == ["dedicated", "unlearned"]
    ds = with_bias(W, [-1.1, -0.1], model="abs", W_out=(dims, W_out[None, None]))
    assert classify(ds)["kind"].values.ravel().tolist() == ["unlearned", "unlearned"]
