"""Every reading that used to be a silent guess is now exact, refused in one line, or said."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from ingest_helpers import normal, quiet, run, said

from toyanalysis.errors import IngestError
from toyanalysis.ingestion import ingest

NI, F, H = 3, 5, 2
RNG_64 = np.random.default_rng(1)


def _notebook(path, **extra):
    entries = {"W": normal(NI, F, H), "b_final": normal(NI, F), **extra}
    np.savez(path, **entries)
    return entries


def _refused(match, sources, output, **options):
    with pytest.raises(IngestError, match=match) as info:
        ingest(sources if isinstance(sources, list) else [sources], output, **options)
    assert "\n" not in str(info.value)
    assert not output.exists()
    return str(info.value)


# --- a scalar loss is not per instance -------------------------------------------------
def test_scalar_loss_is_kept_run_level_not_copied_per_instance(tmp_path):
    _notebook(tmp_path / "step_10.npz", loss=np.float32(0.6))  # the notebook's sum over instances
    ds, lines = run(
        tmp_path / "step_10.npz", tmp_path / "run.zarr", model="relu_output", importance=1
    )
    assert "loss" not in ds
    assert ds["run_loss"].dims == ("step",)
    np.testing.assert_allclose(ds["run_loss"].values, [0.6])
    said(lines, "loss is one number per checkpoint", "run_loss")
    assert ds.attrs["ingest_warnings"] == lines  # the store says later what was assumed
    assert ds.attrs["ingested_from"] == [str(tmp_path / "step_10.npz")]


def test_scalar_loss_of_a_single_model_is_its_loss(tmp_path):
    np.savez(tmp_path / "step_10.npz", W=normal(F, H), b=normal(F), loss=np.float32(0.25))
    ds = quiet(tmp_path / "step_10.npz", tmp_path / "run.zarr")
    np.testing.assert_allclose(ds["loss"].values, [[0.25]])


def test_per_instance_loss_shapes(tmp_path):
    _notebook(tmp_path / "step_10.npz", loss=np.array([[0.1], [0.2], [0.3]], np.float32))
    ds = quiet(tmp_path / "step_10.npz", tmp_path / "run.zarr")
    np.testing.assert_allclose(ds["loss"].values, [[0.1, 0.2, 0.3]])


# --- steps from file names ------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, step",
    [("step_1200.npz", 1200), ("ckpt-1200.npz", 1200), ("1200.npz", 1200), ("model_step1200.npz", 1200),
     ("epoch=2-step=1200.npz", 1200), ("iter_000300_seed_4.npz", 300)],
)  # fmt: skip
def test_step_like_file_names(tmp_path, name, step):
    _notebook(tmp_path / name)
    assert quiet(tmp_path / name, tmp_path / "run.zarr")["step"].values.tolist() == [step]


def test_numbers_in_a_file_name_are_not_a_step(tmp_path):
    path = tmp_path / "features-5-hidden-2-instances-10-relu.npz"
    _notebook(path)
    _refused(
        r"features-5-hidden-2-instances-10-relu.npz: cannot tell the step",
        path,
        tmp_path / "r.zarr",
    )
    assert quiet(path, tmp_path / "run.zarr", step=10_000)["step"].values.tolist() == [10_000]


def test_a_file_without_a_step_is_not_step_zero(tmp_path):
    _notebook(tmp_path / "final.npz")
    _refused(r"final.npz: no step .*pass --step N", tmp_path / "final.npz", tmp_path / "r.zarr")
    _notebook(tmp_path / "step_5.npz")
    _refused(r"final.npz: no step .*'step' entry", tmp_path, tmp_path / "r.zarr")


def test_several_files_with_one_step_are_named(tmp_path):
    for seed in (0, 1):
        (tmp_path / f"seed{seed}").mkdir()
        _notebook(tmp_path / f"seed{seed}" / "step_100.npz")
    message = _refused(
        "several checkpoints have step 100",
        [tmp_path / "seed0", tmp_path / "seed1"],
        tmp_path / "r.zarr",
    )
    assert "seed0/step_100.npz" in message and "seed1/step_100.npz" in message
    assert "--as-instances" in message


def test_as_instances_needs_equal_steps_and_shapes(tmp_path):
    for seed, steps in ((0, (0, 100)), (1, (0, 200))):
        (tmp_path / f"seed{seed}").mkdir()
        for step in steps:
            _notebook(tmp_path / f"seed{seed}" / f"step_{step}.npz")
    sources = [tmp_path / "seed0", tmp_path / "seed1"]
    _refused(
        "needs the same steps in every SOURCE: seed0 has 2 steps 0..100, seed1 has 2 steps 0..200",
        sources,
        tmp_path / "r.zarr",
        as_instances=True,
    )
    np.savez(tmp_path / "small_step_0.npz", W=normal(NI, 4, H), b_final=normal(NI, 4))
    _refused(
        "W has shape",
        [tmp_path / "seed0" / "step_0.npz", tmp_path / "small_step_0.npz"],
        tmp_path / "r.zarr",
        as_instances=True,
    )


# --- 1-D vectors that fit instances and features ---------------------------------------
def test_one_d_density_that_fits_instances_and_features_is_refused(tmp_path):
    np.savez(
        tmp_path / "step_1.npz",
        W=normal(5, 5, 2),
        b_final=normal(5, 5),
        feature_probability=np.linspace(0.1, 1, 5),
    )
    _refused(
        r"feature_probability has shape \(5,\), which fits both .*--along density=instance",
        tmp_path / "step_1.npz",
        tmp_path / "r.zarr",
    )
    ds = quiet(
        tmp_path / "step_1.npz", tmp_path / "run.zarr", along={"density": "instance"}, layout="ifh"
    )
    np.testing.assert_allclose(ds["density"].values[:, 0], np.linspace(0.1, 1, 5))
    np.testing.assert_allclose(ds["density"].values[0], 0.1)
    ds, lines = run(
        tmp_path / "step_1.npz",
        tmp_path / "run2.zarr",
        along={"density": "feature"},
        model="linear",
        importance=1,
    )
    np.testing.assert_allclose(ds["density"].values[0], np.linspace(0.1, 1, 5))
    # W (5, 5, 2) has as many instances as features: reading the instance axis first is said
    said(lines, "W (5, 5, 2): the instance axis is read first (ifh)")


@pytest.mark.parametrize("shape", [(NI, 1), (1, F), (F,), (NI,), ()])
def test_broadcast_shapes_are_expanded(tmp_path, shape):
    importance = 2.0 if shape else 1.0  # one number other than 1 is refused: see below
    _notebook(
        tmp_path / "step_1.npz",
        feature_probability=np.full(shape, 0.5),
        importance=np.full(shape, importance),
    )
    ds = quiet(tmp_path / "step_1.npz", tmp_path / "run.zarr", importance=None)
    np.testing.assert_allclose(ds["density"].values, np.full((NI, F), 0.5))
    np.testing.assert_allclose(ds["importance"].values, np.full((NI, F), importance))


def test_one_importance_number_is_not_guessed_to_be_r(tmp_path):
    _notebook(
        tmp_path / "step_1.npz", importance=np.float64(0.9)
    )  # a config's r, or every feature's?
    _refused(
        r"importance is one number \(0.9\).*--importance 0.9\^i or --importance 0.9",
        tmp_path / "step_1.npz",
        tmp_path / "r.zarr",
    )
    ds, lines = run(
        tmp_path / "step_1.npz", tmp_path / "run.zarr", importance="0.9^i", model="linear"
    )
    np.testing.assert_allclose(ds["importance"].values[0], 0.9 ** np.arange(F))
    said(lines, "unused entries", "importance")


def test_a_step_entry_that_the_file_name_contradicts_is_refused(tmp_path):
    _notebook(tmp_path / "step_100.npz", step=np.int64(200))
    _refused(
        "its step entry says 200 but the file name says 100",
        tmp_path / "step_100.npz",
        tmp_path / "r.zarr",
    )


def test_float64_weights_are_said(tmp_path):
    np.savez(tmp_path / "step_1.npz", w=RNG_64.normal(size=(NI, F, H)), b=np.zeros((NI, F)))
    _, lines = run(tmp_path / "step_1.npz", tmp_path / "run.zarr", model="linear", importance=1)
    said(lines, "w, b stored as float32 (the store format), from float64")


def test_a_shape_that_does_not_fit_is_refused(tmp_path):
    _notebook(tmp_path / "step_1.npz", importance=np.ones((2, 7)))
    _refused(
        r"importance has shape \(2, 7\); expected \(3, 5\)",
        tmp_path / "step_1.npz",
        tmp_path / "r.zarr",
    )


# --- unknown keys are named ---------------------------------------------------------------------
def test_known_names_in_any_case_and_unused_keys_in_one_line(tmp_path):
    torch.save(
        {"w": torch.from_numpy(normal(NI, F, H)), "B_FINAL": torch.from_numpy(normal(NI, F)), "step": 3,
         "feature_importance": torch.tensor(0.9 ** np.arange(F)), "sparsity": torch.full((NI, 1), 0.9),
         "note": "trained on a laptop", "lr": 1e-3, "extra": {"a": torch.zeros(2), "b": 1}},
        tmp_path / "ckpt.pt",
    )  # fmt: skip
    ds, lines = run(tmp_path / "ckpt.pt", tmp_path / "run.zarr", model="relu_output")
    np.testing.assert_allclose(ds["importance"].values[1], 0.9 ** np.arange(F))
    np.testing.assert_allclose(ds["density"].values, 0.1, rtol=1e-6)
    line = said(lines, "unused entries")
    assert line.endswith("lr, extra.a, extra.b, note")
    said(lines, "density = 1 - sparsity")
    assert len(lines) == 2


def test_rename_reads_any_name_and_drops_others(tmp_path):
    torch.save(
        {
            "0.weight": torch.from_numpy(normal(H, F)),
            "2.bias": torch.from_numpy(normal(F)),
            "ema.W": torch.zeros(H, F),
        },
        tmp_path / "step_1.pt",
    )
    _refused(
        "no weight matrix .*found 0.weight",
        tmp_path / "step_1.pt",
        tmp_path / "r.zarr",
        rename={"ema.W": ""},
    )
    ds = quiet(
        tmp_path / "step_1.pt",
        tmp_path / "run.zarr",
        rename={"0.weight": "W", "2.bias": "b", "ema.W": ""},
    )
    assert ds.sizes["feature"] == F
    _refused(
        "no entry nope in any checkpoint",
        tmp_path / "step_1.pt",
        tmp_path / "r.zarr",
        rename={"nope": "W", "ema.W": ""},
    )
    _refused(
        "weights is not a known name",
        tmp_path / "step_1.pt",
        tmp_path / "r.zarr",
        rename={"0.weight": "weights"},
    )


def test_two_candidates_for_one_name_are_refused(tmp_path):
    np.savez(tmp_path / "step_1.npz", W=normal(NI, F, H), w=normal(NI, F, H), b=normal(NI, F))
    _refused("several entries could be W: W, w", tmp_path / "step_1.npz", tmp_path / "r.zarr")
    quiet(tmp_path / "step_1.npz", tmp_path / "run.zarr", rename={"w": ""})


def test_no_importance_and_no_model_are_said(tmp_path):
    _notebook(tmp_path / "step_1.npz")
    _, lines = run(tmp_path / "step_1.npz", tmp_path / "run.zarr")
    said(lines, "no importance", "importance 1")
    said(lines, "no --model given: recorded as relu_output")


def test_a_nonzero_hidden_bias_is_refused(tmp_path):
    torch.save(
        {"embedding.weight": torch.ones(H, F), "embedding.bias": torch.ones(H)},
        tmp_path / "step_1.pt",
    )
    _refused("embedding.bias is a hidden-layer bias", tmp_path / "step_1.pt", tmp_path / "r.zarr")


# --- pickles -----------------------------------------------------------------------------------------
class Run:  # something only a pickle can hold
    def __init__(self) -> None:
        self.name = "run"


def test_pickles_are_refused_naming_allow_pickle(tmp_path):
    entries = {"W": normal(NI, F, H), "b_final": normal(NI, F), "meta": Run()}
    with open(tmp_path / "step_1.pkl", "wb") as fh:
        pickle.dump(entries, fh)
    torch.save(entries, tmp_path / "step_2.pt")
    np.save(tmp_path / "step_3.npy", np.array(entries, dtype=object), allow_pickle=True)
    for name in ("step_1.pkl", "step_2.pt", "step_3.npy"):
        message = _refused(
            "--allow-pickle if you trust this file", tmp_path / name, tmp_path / "r.zarr"
        )
        assert message.startswith(str(tmp_path / name))
        ds, lines = run(
            tmp_path / name,
            tmp_path / f"{name}.zarr",
            allow_pickle=True,
            model="relu_output",
            importance=1,
        )
        np.testing.assert_array_equal(ds["W"].values[0], entries["W"].transpose(0, 2, 1))
        said(lines, "unused entries", "meta")


def test_a_whole_pickled_module_is_read_through_its_state_dict(tmp_path):
    module = torch.nn.Module()
    module.W = torch.nn.Parameter(torch.from_numpy(normal(NI, F, H)))
    module.b_final = torch.nn.Parameter(torch.zeros(NI, F))
    torch.save(module, tmp_path / "model_step_9.pt")
    _refused("--allow-pickle", tmp_path / "model_step_9.pt", tmp_path / "r.zarr")
    ds = quiet(tmp_path / "model_step_9.pt", tmp_path / "run.zarr", allow_pickle=True)
    np.testing.assert_array_equal(ds["W"].values[0], module.W.detach().numpy().transpose(0, 2, 1))


# --- what ingest kept doing -------------------------------------------------------------------------
def test_ambiguous_layout_is_refused(tmp_path):
    np.savez(tmp_path / "step_1.npz", W=normal(NI, 4, 4), b=normal(NI, 4))
    _refused(
        r"cannot tell the axes of W \(3, 4, 4\) \(both axes have length 4\); pass --layout ifh/ihf",
        tmp_path / "step_1.npz",
        tmp_path / "r.zarr",
    )


def test_steps_inside_a_list_of_state_dicts(tmp_path):
    states = [
        {"step": s, "W": torch.from_numpy(normal(NI, F, H)), "b_final": torch.zeros(NI, F)}
        for s in (5, 0)
    ]
    torch.save(states, tmp_path / "snapshots.pt")
    ds = quiet(tmp_path / "snapshots.pt", tmp_path / "run.zarr")
    assert ds["step"].values.tolist() == [0, 5]
    np.testing.assert_array_equal(ds["W"].values[1], states[0]["W"].numpy().transpose(0, 2, 1))
    torch.save({"snapshots": states, "steps": [5, 1]}, tmp_path / "both.pt")
    _refused("entries step and steps give other steps", tmp_path / "both.pt", tmp_path / "r.zarr")
