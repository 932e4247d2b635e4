"""Geometry classification against hand-built configurations with known answers."""

from __future__ import annotations

import json
import math

import networkx as nx
import numpy as np
import pytest

from toyanalysis import geometry, testing
from toyanalysis.errors import ConfigError, StoreError
from toyanalysis.geometry import (
    BUILTIN_SHAPES,
    classify,
    configurations,
    iter_classify,
    overlap_graph,
    to_frame,
    to_records,
)
from toyanalysis.geometry._components import components_batched, components_reference
from toyanalysis.superposition import feature_dimensionality, gram

SHAPES = [
    "dedicated",
    "digon",
    "triangle",
    "square",
    "pentagon",
    "hexagon",
    "heptagon",
    "octagon",
    "tetrahedron",
    "square_antiprism",
    "octahedron",
]


def kinds(result) -> list[str]:
    """Feature kinds of a single-checkpoint result."""
    return result["kind"].values.reshape(-1).tolist()


def summary(result) -> str:
    return str(result["summary"].values.reshape(-1)[0])


def used(result, name) -> list:
    """A single-checkpoint result's ``name`` over the configuration slots in use.

    The ``config`` axis has one slot per feature; the slots past the
    checkpoint's components are padding (``""``, 0, 0, NaN).
    """
    values = result[name].values.reshape(-1)
    sizes = result["config_n_features"].values.reshape(-1)
    pad = {"config_kind": "", "config_n_features": 0, "config_n_dims": 0}
    if name in pad:
        assert (values[sizes == 0] == pad[name]).all(), name
    else:
        assert np.isnan(values[sizes == 0]).all(), name
    return values[sizes > 0].tolist()


def disguise(W, seed, *, m=None, noise=0.0, scale=(1.0, 1.0)):
    """Embed in m dims, rotate, rescale, add noise, permute: returns (W', perm)."""
    rng = np.random.default_rng(seed)
    if m is not None:
        W = np.vstack([W, np.zeros((m - W.shape[0], W.shape[1]))])
    W = testing.rotate(W, rng)
    W = testing.rescale(W, *scale, rng=rng)
    if noise:
        W = testing.perturb(W, noise, rng)
    return testing.permute(W, rng)


# --------------------------------------------------------------------------- known answers


@pytest.mark.parametrize("shape", SHAPES)
def test_each_polytope_exactly(shape):
    W = testing.polytope(shape)
    result = classify(W)
    assert kinds(result) == testing.tegum_kinds(shape)
    fits = result["config_fit"].values.reshape(-1)
    np.testing.assert_allclose(fits[~np.isnan(fits)], 1.0, atol=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", [0, 1])
def test_each_polytope_rotated_permuted_scaled_noisy(shape, seed):
    W, perm = disguise(
        testing.tegum(shape), seed, m=12, noise=0.03, scale=(0.8, 1.25)
    )  # trained-model noise: overlaps of a few hundredths
    expected = np.array(testing.tegum_kinds(shape))[perm].tolist()
    result = classify(W)
    assert kinds(result) == expected
    fits = result["config_fit"].values.reshape(-1)
    assert np.nanmin(fits) > 0.8


def test_summaries_read_like_the_issue():
    assert summary(classify(testing.tegum("pentagon"))) == "pentagon"
    W = testing.tegum("digon", "digon", "dedicated", dead=1)
    assert summary(classify(W)) == "2 digon + 1 dedicated + 1 unlearned"
    W = testing.tegum("dedicated", "pentagon", "digon", dead=2)
    assert summary(classify(W)) == "1 pentagon + 1 digon + 1 dedicated + 2 unlearned"
    assert summary(classify(np.zeros((2, 3)))) == "3 unlearned"


def test_two_orthogonal_digons_are_not_a_square_and_octahedron_is_three_digons():
    square, _ = disguise(testing.polytope("square"), 5, m=4, noise=0.02)
    result = classify(square)
    assert summary(result) == "2 digon"
    assert used(result, "config_n_dims") == [1, 1]
    octahedron, _ = disguise(testing.polytope("octahedron"), 6, m=6, noise=0.02)
    result = classify(octahedron)
    assert summary(result) == "3 digon"
    assert sorted(np.unique(result["component"].values).tolist()) == [0, 1, 2]


def test_tegum_products_with_dead_features_in_30_dims_and_400_features():
    blocks = (
        ["pentagon"] * 4
        + ["square_antiprism", "tetrahedron", "tetrahedron"]
        + ["hexagon", "triangle", "triangle"]
        + ["digon"] * 4
        + ["dedicated"] * 3
    )
    n_live = sum(testing.polytope(b).shape[1] for b in blocks)
    W = testing.tegum(*blocks, n_hidden=30, dead=400 - n_live)
    expected = np.array(testing.tegum_kinds(*blocks, dead=400 - n_live))
    Wd, perm = disguise(W, 11, noise=0.03, scale=(0.8, 1.2))
    result = classify(Wd)
    assert kinds(result) == expected[perm].tolist()
    assert summary(result) == (
        "1 square_antiprism + 1 hexagon + 4 pentagon + 2 tetrahedron + 2 triangle"
        " + 4 digon + 3 dedicated + 341 unlearned"
    )
    # each feature of a component shares the component's size and rank
    comp = result["component"].values.reshape(-1)
    sizes = result["config_n_features"].values.reshape(-1)
    for c in np.unique(comp[comp >= 0]):
        assert sizes[c] == (comp == c).sum()


def test_a_deformed_pentagon_is_still_a_pentagon_with_a_lower_fit():
    fits = []
    for shift in (0.0, 0.05, 0.1, 0.2):
        angles = 2 * np.pi * np.arange(5) / 5
        angles[0] += shift
        W = np.stack([np.cos(angles), np.sin(angles)])
        W[:, 0] *= 0.7  # and a shorter vector
        result = classify(W)
        assert summary(result) == "pentagon"
        fits.append(float(result["config_fit"].values.reshape(-1)[0]))
    assert fits[0] == pytest.approx(1.0)
    assert fits == sorted(fits, reverse=True)
    assert fits[-1] < 0.95


def test_fit_is_one_minus_rms_angle_error_over_45_degrees():
    # a digon bent to 170 degrees: the one angle is 10 degrees off
    a = math.radians(170)
    W = np.array([[1.0, math.cos(a)], [0.0, math.sin(a)]])
    result = classify(W)
    assert summary(result) == "digon"
    assert float(result["config_fit"].values.reshape(-1)[0]) == pytest.approx(1 - 10 / 45)


def test_parallel_features_are_not_a_digon():
    W = np.array([[1.0, 0.9]])
    result = classify(W)
    assert summary(result) == "other(2 in 1)"
    assert used(result, "config_kind") == ["other"]


def test_other_reports_k_and_d():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((3, 6))  # 6 generic directions in 3-D overlap each other
    W /= np.linalg.norm(W, axis=0)
    result = classify(W)
    assert summary(result) == "other(6 in 3)"
    assert used(result, "config_n_features") == [6]
    assert used(result, "config_n_dims") == [3]
    assert np.isnan(result["config_fit"].values.reshape(-1)[0])
    assert set(kinds(result)) == {"other"}


def test_a_bent_polygon_counts_its_third_dimension():
    W = testing.tegum("triangle", n_hidden=3)
    W[2] = 0.4  # lifted out of the plane: a cone, features overlapping by -0.29
    result = classify(W)
    assert summary(result) == "other(3 in 3)"


def test_norm_threshold_decides_what_is_learned():
    W = testing.tegum("digon", "dedicated")
    W[:, 2] *= 0.4
    assert summary(classify(W)) == "1 digon + 1 unlearned"
    assert summary(classify(W, norm_threshold=0.3)) == "1 digon + 1 dedicated"


def test_overlap_tol_decides_what_is_connected():
    # two digons 80 degrees apart: |cos 80°| = 0.17
    a = math.radians(80)
    W = np.array([[1.0, -1.0, math.cos(a), -math.cos(a)], [0.0, 0.0, math.sin(a), -math.sin(a)]])
    assert summary(classify(W, overlap_tol=0.15, split_max_tol=0.15)) == "other(4 in 2)"
    assert summary(classify(W, overlap_tol=0.2)) == "2 digon"
    # splitting (issue 11): an overlap of 0.17 is below split_max_tol, so the factors separate
    assert summary(classify(W, overlap_tol=0.15)) == "2 digon"


def test_small_overlaps_between_factors_do_not_merge():
    # factors leaning towards each other with overlaps up to 0.1
    W = testing.tegum("pentagon", "triangle", "digon", n_hidden=5)
    W[2:4, :5] += 0.05
    W[4, 5:8] += 0.08
    W /= np.linalg.norm(W, axis=0)
    assert np.abs(gram(W)[:5, 5:]).max() > 0.04
    assert summary(classify(W)) == "1 pentagon + 1 triangle + 1 digon"


def test_thresholds_are_checked():
    with pytest.raises(ConfigError, match="overlap_tol"):
        classify(testing.polytope("digon"), overlap_tol=1.5)
    with pytest.raises(ConfigError, match="norm_threshold"):
        classify(testing.polytope("digon"), norm_threshold=-1)


# --------------------------------------------------------------------------- fast path vs reference


def reference_classify(W, norm_threshold=0.5, overlap_tol=0.15, rank_tol=0.2, min_fit=0.25):
    """One checkpoint, plainly: networkx components, SVD ranks, sorted-angle fits."""
    norms = np.linalg.norm(W, axis=0)
    graph = overlap_graph(W, norm_threshold=norm_threshold, overlap_tol=overlap_tol)
    out = ["unlearned"] * W.shape[1]
    for component in nx.connected_components(graph):
        members = sorted(component)
        U = W[:, members] / norms[members]
        s = np.linalg.svd(U, compute_uv=False)
        d = int((s >= rank_tol * s[0]).sum())
        cos = np.sort((U.T @ U)[np.triu_indices(len(members), 1)])
        best, name = -1.0, "other"
        for config in configurations():
            if config.n_features != len(members) or config.n_dims != d:
                continue
            if cos.size:
                error = np.sqrt(np.mean((np.arccos(np.clip(cos, -1, 1)) - config.angles) ** 2))
                fit = max(0.0, 1 - error / (np.pi / 4))
            else:
                fit = 1.0
            if fit > best:
                best, name = fit, config.name
        if best < min_fit:
            name = "other"
        for i in members:
            out[i] = name
    return out


def test_batched_classification_matches_the_plain_reference():
    rng = np.random.default_rng(7)
    Ws = []
    for _ in range(60):
        names = rng.choice(["digon", "triangle", "pentagon", "tetrahedron", "dedicated"], size=3)
        W = testing.tegum(*names, n_hidden=9, dead=int(rng.integers(0, 3)))
        W = testing.perturb(testing.rotate(W, rng), float(rng.uniform(0, 0.25)), rng)
        Ws.append(testing.permute(W, rng)[0][:, :12])
    n = min(W.shape[1] for W in Ws)
    stack = np.stack([W[:, :n] for W in Ws]).reshape(6, 10, 9, n)
    result = classify(stack, rank_tol_many=0.2, split_max_tol=0.15)  # the plain threshold rule
    got = result["kind"].values.reshape(60, n)
    for i, W in enumerate(Ws):
        assert got[i].tolist() == reference_classify(W[:, :n]), i


def test_fast_components_match_networkx():
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 30):
        adjacency = rng.random((40, n, n)) < rng.uniform(0, 0.3, size=(40, 1, 1))
        adjacency = adjacency | adjacency.transpose(0, 2, 1)
        represented = rng.random((40, n)) < 0.8
        fast = components_batched(adjacency, represented)
        for p in range(40):
            slow = components_reference(adjacency[p], represented[p])
            np.testing.assert_array_equal(fast[p], slow)


def test_blocks_give_the_same_answer_as_one_pass():
    rng = np.random.default_rng(2)
    steps = []
    for _ in range(7):
        names = rng.choice(["digon", "triangle", "pentagon", "dedicated"], size=2)
        steps.append(testing.rotate(testing.tegum(*names, n_hidden=6, dead=12), rng)[:, :12])
    W = np.stack([np.stack([s, s[:, ::-1]]) for s in steps])  # (7, 2, 6, 12)
    whole = classify(W)
    pieces = list(iter_classify(W, block_bytes=1))
    assert len(pieces) == 7
    joined = geometry.concat_blocks(pieces)
    for name in whole.data_vars:
        np.testing.assert_array_equal(joined[name].values, whole[name].values, err_msg=name)


# --------------------------------------------------------------------------- overlap graph


def test_overlap_graph_nodes_edges_and_weights():
    W = testing.tegum("triangle", "digon", dead=1)
    g = overlap_graph(W)
    assert sorted(g.nodes) == [0, 1, 2, 3, 4]
    assert g.nodes[0]["norm"] == pytest.approx(1.0)
    assert sorted(map(sorted, nx.connected_components(g))) == [[0, 1, 2], [3, 4]]
    assert g.edges[3, 4]["overlap"] == pytest.approx(-1.0)
    assert g.edges[0, 1]["weight"] == pytest.approx(0.5)


def test_overlap_graph_takes_one_checkpoint_of_a_dataset():
    ds = testing.as_dataset(np.stack([testing.tegum("digon")] * 2))
    g = overlap_graph(ds.isel(step=0, instance=1))
    assert list(g.edges) == [(0, 1)]
    with pytest.raises(ConfigError, match="one checkpoint"):
        overlap_graph(ds)


# --------------------------------------------------------------------------- the registry


def test_registry_has_the_builtins_in_order():
    table = {c.name: (c.n_features, c.n_dims) for c in configurations()}
    assert table == {
        "dedicated": (1, 1),
        "digon": (2, 1),
        "triangle": (3, 2),
        "pentagon": (5, 2),
        "hexagon": (6, 2),
        "heptagon": (7, 2),
        "octagon": (8, 2),
        "tetrahedron": (4, 3),
        "square_antiprism": (8, 3),
    }
    for config in configurations():  # templates are unit vectors with D_i = d/k
        np.testing.assert_allclose(np.linalg.norm(config.vectors, axis=0), 1)
        np.testing.assert_allclose(
            feature_dimensionality(config.vectors), config.n_dims / config.n_features
        )


@pytest.mark.parametrize("tol", [0.05, geometry.DEFAULT_OVERLAP_TOL, 0.3])
def test_every_template_is_one_component_at_reasonable_tolerances(tol):
    for config in configurations():
        graph = overlap_graph(config.vectors, overlap_tol=tol)
        assert nx.number_connected_components(graph) == 1, config.name


def test_registry_rejects_duplicates_reserved_names_and_tegum_products():
    with pytest.raises(ConfigError, match="already registered"):
        BUILTIN_SHAPES.with_shape("pentagon", testing.polytope("pentagon"))
    with pytest.raises(ConfigError, match="reserved"):
        BUILTIN_SHAPES.with_shape("other", testing.polytope("triangle"))
    with pytest.raises(ConfigError, match="tegum product"):
        BUILTIN_SHAPES.with_shape("square", testing.polytope("square"))
    with pytest.raises(ConfigError, match="same as 'triangle'"):
        BUILTIN_SHAPES.with_shape("trigon", testing.rotate(testing.polytope("triangle"), 1))
    with pytest.raises(ConfigError, match="zero"):
        BUILTIN_SHAPES.with_shape("broken", [[1.0, 0.0]])


def test_a_registered_configuration_is_matched_then_removed():
    cube = np.array([[x, y, z] for x in (1, -1) for y in (1, -1) for z in (1, -1)], float).T
    shapes = BUILTIN_SHAPES.with_shape("cube", cube, description="8 in 3, corners of a cube")
    W, _ = disguise(cube, 3, m=5, noise=0.02)
    assert summary(classify(W, shapes=shapes)) == "cube"
    antiprism, _ = disguise(testing.polytope("square_antiprism"), 4, m=5, noise=0.02)
    assert summary(classify(antiprism, shapes=shapes)) == "square_antiprism"
    assert summary(classify(W)) != "cube"  # the default registry never learnt the cube
    removed = shapes.without("cube")
    assert "cube" not in [c.name for c in configurations(removed)]
    assert "cube" not in [c.name for c in configurations()]
    assert removed == BUILTIN_SHAPES
    with pytest.raises(ConfigError, match="no configuration"):
        removed.without("cube")


def test_the_result_says_which_shapes_it_was_matched_against():
    cube = np.array([[x, y, z] for x in (1, -1) for y in (1, -1) for z in (1, -1)], float).T
    shapes = BUILTIN_SHAPES.with_shape("cube", cube, description="corners of a cube")
    result = classify(cube, shapes=shapes)
    saved = geometry.ShapeRegistry.from_json(result.attrs["shapes"])
    assert saved == shapes
    assert saved["cube"].description == "corners of a cube"
    assert result.attrs["configurations"] == list(shapes.names)
    with pytest.raises(ConfigError, match="ShapeRegistry"):
        classify(cube, shapes=["cube"])


# --------------------------------------------------------------------------- the Dataset


def store_like(steps=3, instances=2):
    rng = np.random.default_rng(0)
    shapes = [("pentagon",), ("digon", "digon")]
    W = np.stack(
        [
            np.stack(
                [
                    testing.rotate(testing.tegum(*shapes[i], dead=1 + i, n_hidden=2), rng)
                    for i in range(instances)
                ]
            )
            for _ in range(steps)
        ]
    )
    return testing.as_dataset(
        W,
        steps=[0, 100, 200][:steps],
        density=np.array([0.05, 0.3])[:instances, None] * np.ones(6),
        importance=0.9 ** np.arange(6),
        sweep={"base_density": [0.05, 0.3][:instances]},
        seed=[4, 4][:instances],
        loss=rng.random((steps, instances)),
    )


def test_result_dataset_layout():
    ds = store_like()
    result = classify(ds)
    # one configuration slot per feature (at most that many components), padded
    assert dict(result.sizes) == {
        "step": 3,
        "instance": 2,
        "feature": 6,
        "config": 6,
        "pair": 2,
        "ratio": 2,
    }
    sif = ("step", "instance", "feature")
    for name in ("kind", "component", "norm", "dimensionality", "interference"):
        assert result[name].dims == sif, name
    for name in ("summary", "dimensions_per_feature", "loss"):
        assert result[name].dims == ("step", "instance"), name
    for name in ("config_kind", "config_n_features", "config_n_dims", "config_fit"):
        assert result[name].dims == ("step", "instance", "config"), name
    assert result["step"].values.tolist() == [0, 100, 200]
    for coord in ("density", "importance", "seed", "base_density"):
        assert coord in result.coords
    assert result.attrs["norm_threshold"] == geometry.DEFAULT_NORM_THRESHOLD
    assert result.attrs["overlap_tol"] == geometry.DEFAULT_OVERLAP_TOL
    assert result.attrs["matrix"] == "W"
    assert result.attrs["sweep"] == ["base_density"]
    assert result["summary"].values[:, 0].tolist() == ["1 pentagon + 1 unlearned"] * 3
    assert result["summary"].values[:, 1].tolist() == ["2 digon + 2 unlearned"] * 3
    # padding of the config axis
    assert result["config_kind"].values[0, 0].tolist() == ["pentagon"] + [""] * 5
    assert result["config_n_features"].values[0, 0].tolist() == [5] + [0] * 5
    assert np.isnan(result["config_fit"].values[0, 0, 1:]).all()
    assert result["component"].values[0, 0].tolist() == [0, 0, 0, 0, 0, -1]


def test_selecting_steps_and_instances():
    ds = store_like()
    assert classify(ds, steps="last")["step"].values.tolist() == [200]
    assert classify(ds, steps=[0, 200])["step"].values.tolist() == [0, 200]
    assert classify(ds, instances=[1])["instance"].values.tolist() == [1]
    with pytest.raises(
        ConfigError, match=r"step 150 is not recorded \(the store has steps 0, 100, 200\)"
    ):
        classify(ds, steps=[150])
    with pytest.raises(ConfigError, match=r"instance 5 is not in the store \(instances: 0..1\)"):
        classify(ds, instances=[5])
    with pytest.raises(StoreError, match="no steps"):
        classify(ds.isel(step=slice(0, 0)))


def test_non_finite_checkpoints_are_marked_invalid():
    ds = store_like()
    W = ds["W"].values.copy()
    W[1, 0, 0, 0] = np.nan
    ds["W"].values[:] = W
    result = classify(ds)
    assert result["summary"].values[1, 0] == "invalid (non-finite weights)"
    assert set(result["kind"].values[1, 0].tolist()) == {"invalid"}
    assert result["summary"].values[1, 1] == "2 digon + 2 unlearned"


def test_privileged_and_abs_models_use_w_only():
    W = testing.tegum("digon", "digon", "dedicated")
    ds = testing.as_dataset(W, model="abs")
    ds["W_out"] = (("step", "instance", "feature", "hidden"), np.ones((1, 1, 5, 3), np.float32))
    result = classify(ds)
    assert summary(result) == "2 digon + 1 dedicated"
    assert result.attrs["model"] == "abs"
    assert result.attrs["matrix"] == "W"


def test_to_frame_is_tidy():
    ds = store_like()
    frame = to_frame(classify(ds))
    assert len(frame) == 3 * 2 * 6
    assert list(frame.columns[:3]) == ["instance", "step", "feature"]
    for column in ("base_density", "seed", "density", "importance", "kind", "n_features", "fit"):
        assert column in frame.columns
    row = frame[(frame.step == 100) & (frame.instance == 1) & (frame.feature == 3)].iloc[0]
    assert row["kind"] == "digon"
    assert row["n_dims"] == 1
    assert row["base_density"] == 0.3
    assert row["importance"] == pytest.approx(0.9**3)
    assert row["summary"] == "2 digon + 2 unlearned"
    dead = frame[frame.kind == "unlearned"]
    assert (dead["component"] == -1).all() and dead["fit"].isna().all()


def test_to_records_follow_the_schema_and_serialise():
    records = to_records(classify(store_like(), steps="last"))
    assert [(r["step"], r["instance"]) for r in records] == [(200, 0), (200, 1)]
    record = records[1]
    assert set(record) == {
        "step",
        "instance",
        "coords",
        "summary",
        "dimensions_per_feature",
        "loss",
        "configurations",
        "features",
    }
    assert record["coords"] == {"base_density": 0.3, "seed": 4}
    assert [c["kind"] for c in record["configurations"]] == ["digon", "digon"]
    config = record["configurations"][0]
    assert set(config) == {
        "kind",
        "features",
        "n_features",
        "n_dims",
        "fit",
        "angle_error",
        "worst_pair",
    }
    assert config["n_features"] == len(config["features"]) == 2
    feature = record["features"][5]
    assert feature["kind"] == "unlearned" and feature["configuration"] is None
    assert set(feature) >= {"feature", "norm", "dimensionality", "kind", "density", "importance"}
    json.dumps(records, allow_nan=False)  # NaN/inf become null


# --------------------------------------------------------------------------- trained models


@pytest.mark.slow
def test_trained_intro_comes_out_as_in_the_paper(tmp_path):
    """n=5, m=2, importance 0.9^i: dedicated when dense, digons at ~80% sparsity, pentagon."""
    from toyanalysis import preset, train

    ds = train(preset("intro").override(record="every:10000"), tmp_path / "intro.zarr")
    result = classify(ds, steps="last").isel(step=0)
    density = result["base_density"].values
    kinds_ = result["kind"].values
    dense = np.argmax(density)
    assert kinds_[dense].tolist() == ["dedicated", "dedicated"] + ["unlearned"] * 3
    middle = np.argmin(np.abs(density - 0.2))  # ~80% sparsity
    assert kinds_[middle].tolist() == ["digon"] * 4 + ["unlearned"]
    sparsest = np.argmin(density)
    assert str(result["summary"].values[sparsest]) == "pentagon"
    assert float(result["config_fit"].values[sparsest, 0]) > 0.9


@pytest.mark.slow
def test_trained_nonuniform_pentagon_deforms_then_drops_the_sparse_feature(tmp_path):
    """n=5, m=2, density 0.05; feature 0 sparser: lower fit, then two digons without it."""
    from toyanalysis import preset, train
    from toyanalysis.config import SweepAxis

    axis = SweepAxis(
        name="extra_density", target="density", features=(0,), values=(0.005, 0.0158, 0.05)
    )
    config = preset("nonuniform").override(seeds=1, sweep=(axis,), record="every:10000")
    result = classify(train(config, tmp_path / "nu.zarr"), steps="last").isel(step=0)
    summaries = result["summary"].values.tolist()
    fits = result["config_fit"].values[:, 0]
    assert summaries[1:] == ["pentagon", "pentagon"]
    assert fits[2] > 0.95 and fits[1] < fits[2] - 0.05  # the sparser feature deforms it
    assert result["kind"].values[0].tolist() == ["unlearned"] + ["digon"] * 4
