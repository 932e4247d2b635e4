"""What checkpoints lack, given on the command line: importance, density, model, run config."""

from __future__ import annotations

import numpy as np
import pytest
from ingest_helpers import normal, quiet, run, said

from toyanalysis import preset, train
from toyanalysis.errors import IngestError
from toyanalysis.ingestion import ingest
from toyanalysis.phase_changes import evaluation_loss

NI, NF, NH = 3, 5, 2


@pytest.fixture
def notebook(tmp_path):
    np.savez(tmp_path / "step_10.npz", W=normal(NI, NF, NH), b_final=normal(NI, NF))
    return tmp_path / "step_10.npz"


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("0.9^i", np.tile(0.9 ** np.arange(NF), (NI, 1))),
        ("0.7**i", np.tile(0.7 ** np.arange(NF), (NI, 1))),
        (1, np.ones((NI, NF))),
        ("1,2,3,4,5", np.tile(np.arange(1.0, 6.0), (NI, 1))),
        ([[1.0], [2.0], [3.0]], np.repeat([[1.0], [2.0], [3.0]], NF, axis=1)),
    ],
)
def test_importance_specs(tmp_path, notebook, spec, expected):
    ds = quiet(notebook, tmp_path / "run.zarr", importance=spec)
    np.testing.assert_allclose(ds["importance"].values, expected)


@pytest.mark.parametrize("suffix", [".npy", ".txt", ".csv", ".json"])
def test_density_from_an_array_file_per_instance_and_feature(tmp_path, notebook, suffix):
    density = np.linspace(0.05, 1.0, NI * NF).reshape(NI, NF)
    path = tmp_path / f"density{suffix}"
    if suffix == ".npy":
        np.save(path, density)
    elif suffix == ".json":
        path.write_text(str(density.tolist()))
    else:
        np.savetxt(path, density, delimiter="," if suffix == ".csv" else " ")
    ds = quiet(notebook, tmp_path / "run.zarr", density=str(path))
    np.testing.assert_allclose(ds["density"].values, density)


def test_bad_specs_are_refused(tmp_path, notebook):
    for spec, message in [
        ("lots", "--density lots: not a number, r\\^i, a list"),
        ("2", "density must be within 0..1"),
        ("1,2", r"density has shape \(2,\)"),
    ]:
        with pytest.raises(IngestError, match=message):
            ingest([notebook], tmp_path / "run.zarr", density=spec)
    assert not (tmp_path / "run.zarr").exists()


def test_options_replacing_entries_and_a_plain_importance_number_are_said(tmp_path):
    np.savez(
        tmp_path / "step_1.npz", W=normal(NI, NF, NH), b=normal(NI, NF), importance=np.ones(NF)
    )
    ds, lines = run(
        tmp_path / "step_1.npz", tmp_path / "run.zarr", importance="0.9", model="linear"
    )
    np.testing.assert_allclose(ds["importance"].values, 0.9)
    said(lines, "--importance replaces the importance found in the checkpoints")
    said(lines, "for 0.9^i")


def _exported_intro(tmp_path):
    """A short intro run trained here, saved as the public notebook would save it."""
    config = preset("intro").override(steps=200, record="every:100", batch_size=64)
    trained = train(config, tmp_path / "trained.zarr")
    folder = tmp_path / "ckpts"
    folder.mkdir()
    for step in trained["step"].values:
        at = trained.sel(step=step)
        np.savez(
            folder / f"step_{step}.npz",
            W=at["W"].values.transpose(0, 2, 1),  # [instance, feature, hidden]
            b_final=at["b"].values,
        )
    return config, trained, folder


def test_a_config_makes_eval_loss_work_on_an_ingested_store(tmp_path):
    config, trained, folder = _exported_intro(tmp_path)
    ds = quiet(folder, tmp_path / "run.zarr", config=config, model=None, importance=None)
    np.testing.assert_array_equal(ds["W"].values, trained["W"].values)
    np.testing.assert_allclose(ds["importance"].values, trained["importance"].values)
    np.testing.assert_allclose(ds["density"].values, trained["density"].values)
    np.testing.assert_allclose(ds["base_density"].values, trained["base_density"].values)
    assert ds.attrs["sweep"] == ["base_density"]
    np.testing.assert_array_equal(
        evaluation_loss(ds, batch_size=256).values, evaluation_loss(trained, batch_size=256).values
    )


def test_a_config_that_does_not_fit_is_refused(tmp_path, notebook):
    with pytest.raises(
        IngestError,
        match=r"describes 10 instances x 5 features x 2 hidden, the weights have 3 x 5 x 2",
    ):
        ingest([notebook], tmp_path / "run.zarr", config=preset("intro"))
    few = preset("intro").override(
        sweep=[{"name": "base_density", "target": "density", "values": [1.0, 0.5, 0.1]}]
    )
    with pytest.raises(
        IngestError,
        match=r"importance .* differs from the config 'intro''s \(at instance, feature \(0, 1\): 0.5 vs 0.9\)",
    ):
        ingest([notebook], tmp_path / "run.zarr", config=few, importance="0.5^i")
    with pytest.raises(IngestError, match="--model linear but the config's model is relu_output"):
        ingest([notebook], tmp_path / "run.zarr", config=few, model="linear")
    ds = quiet(notebook, tmp_path / "run.zarr", config=few, model=None, importance=None)
    np.testing.assert_allclose(ds["density"].values[:, 0], [1.0, 0.5, 0.1])


def test_llc_works_on_an_ingested_store_with_a_config(tmp_path):
    """The same chains as on the trained store: the config attached makes the loss the model's own."""
    import warnings

    import toyanalysis as ta
    from toyanalysis.errors import LLCWarning

    config, trained, folder = _exported_intro(tmp_path)
    ds = quiet(folder, tmp_path / "run.zarr", config=config, model=None, importance=None)
    small = {"chains": 2, "burn_in": 5, "draws": 10}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LLCWarning)  # 10 draws are too few to be reliable
        got = ta.llc(ds, steps="last", **small)
        want = ta.llc(trained, steps="last", **small)
    np.testing.assert_allclose(got["loss_trace"].values, want["loss_trace"].values, rtol=1e-6)
    np.testing.assert_allclose(got["reference_loss"].values, want["reference_loss"].values)
    assert np.isfinite(got["reference_loss"].values).all()
