"""Ingest basics: file formats, layouts, prefixes, the abs model, clear refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ingest_helpers import quiet, run, said

from toyanalysis.errors import IngestError, StoreError
from toyanalysis.ingestion import ingest

RNG = np.random.default_rng(0)
N_INST, N_FEAT, N_HID = 3, 5, 2
W_IHF = RNG.normal(size=(4, N_INST, N_HID, N_FEAT)).astype(np.float32)  # (step, i, h, f)
B = RNG.normal(size=(4, N_INST, N_FEAT)).astype(np.float32)


def _save(path, entries):
    if path.suffix == ".npz":
        np.savez(path, **entries)
    elif path.suffix == ".safetensors":
        from safetensors.numpy import save_file

        save_file({k: np.ascontiguousarray(v) for k, v in entries.items()}, str(path))
    else:
        torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in entries.items()}, path)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors", ".npz"])
def test_a_folder_of_notebook_checkpoints_becomes_a_store(tmp_path, suffix):
    folder = tmp_path / "ckpts"
    folder.mkdir()
    for k, step in enumerate([0, 100, 1000, 250]):  # file order != step order
        _save(
            folder / f"model_step{step}{suffix}",
            {"W": W_IHF[k].transpose(0, 2, 1), "b_final": B[k]},
        )  # notebook layout [i, f, h]
    (folder / "notes.txt").write_text("lr 1e-3")
    ds, lines = run(folder, tmp_path / "run.zarr", model="relu_output", importance=1)
    assert ds["step"].values.tolist() == [0, 100, 250, 1000]
    np.testing.assert_array_equal(ds["W"].values, W_IHF[[0, 1, 3, 2]])
    np.testing.assert_array_equal(ds["b"].values, B[[0, 1, 3, 2]])
    said(lines, "not checkpoint files, ignored: notes.txt")


@pytest.mark.parametrize("layout", ["ifh", "ihf", "fh", "hf", "fih"])
def test_every_layout_can_be_given_explicitly(tmp_path, layout):
    W = W_IHF[0] if "i" in layout else W_IHF[0, 0]
    given = "ihf" if "i" in layout else "hf"
    W = np.ascontiguousarray(W.transpose([given.index(c) for c in layout]))
    _save(tmp_path / "ckpt.npz", {"W": W})
    ds = quiet(tmp_path / "ckpt.npz", tmp_path / "run.zarr", layout=layout, step=0)
    expected = W_IHF[0] if "i" in layout else W_IHF[0, :1]
    np.testing.assert_array_equal(ds["W"].values[0], expected)
    assert ds["step"].values.tolist() == [0]


def test_state_dict_prefixes_step_entry_and_extras(tmp_path):
    entries = {
        "model.W": torch.from_numpy(W_IHF[0].transpose(0, 2, 1).copy()),
        "model.b_final": torch.from_numpy(B[0]),
        "step": 700,
        "importance": torch.tensor(0.9 ** np.arange(N_FEAT)),
        "feature_probability": torch.full((N_INST, 1), 0.1),
        "loss": torch.tensor([0.1, 0.2, 0.3]),
    }
    torch.save(entries, tmp_path / "final.pt")
    ds = quiet(tmp_path / "final.pt", tmp_path / "run.zarr", importance=None)
    assert ds["step"].values.tolist() == [700]
    np.testing.assert_allclose(
        ds["importance"].values, np.tile(0.9 ** np.arange(N_FEAT), (N_INST, 1))
    )
    np.testing.assert_allclose(ds["density"].values, 0.1, rtol=1e-6)
    np.testing.assert_allclose(ds["loss"].values[0], [0.1, 0.2, 0.3])


def test_abs_model_weights(tmp_path):
    W_in = RNG.normal(size=(2, 6, 3)).astype(np.float32)  # [i, h, f]
    W_out = RNG.normal(size=(2, 3, 6)).astype(np.float32)  # [i, f, h]
    _save(
        tmp_path / "abs_step_3.npz",
        {"W_in": W_in, "W_out": W_out, "b": np.zeros((2, 3), np.float32)},
    )
    ds, lines = run(tmp_path / "abs_step_3.npz", tmp_path / "run.zarr", importance=1)
    assert ds.attrs["model"] == "abs"
    said(lines, "no --model given: recorded as abs")
    np.testing.assert_array_equal(ds["W"].values[0], W_in)
    np.testing.assert_array_equal(ds["W_out"].values[0], W_out)
    with pytest.raises(IngestError, match="a second matrix, which model linear does not have"):
        ingest([tmp_path / "abs_step_3.npz"], tmp_path / "lin.zarr", model="linear")


@pytest.mark.parametrize(
    "entries, layout, message",
    [
        (
            {"W": np.zeros((3, 4, 4), np.float32), "b": np.zeros((3, 4), np.float32)},
            None,
            "cannot tell the axes",
        ),
        ({"W": np.zeros((3, 5, 2), np.float32)}, None, "no bias"),
        ({"weights": np.zeros((5, 2), np.float32)}, None, "no weight matrix"),
        ({"W": np.zeros((5, 2), np.float32)}, "ifh", "does not fit layout"),
        ({"W": np.full((5, 2), np.nan, np.float32)}, "fh", "NaN"),
        ({"W": np.zeros((5, 2), np.float32)}, "xfh", "unknown layout"),
    ],
)
def test_bad_checkpoints_are_refused_clearly(tmp_path, entries, layout, message):
    _save(tmp_path / "c.npz", entries)
    with pytest.raises((IngestError, StoreError), match=message) as info:
        ingest(
            [tmp_path / "c.npz"],
            tmp_path / "run.zarr",
            layout=layout,
            step=1,
            model="linear",
            importance=1,
        )
    assert "\n" not in str(info.value)
    assert not (tmp_path / "run.zarr").exists()


def test_missing_and_unsupported_sources(tmp_path):
    with pytest.raises(IngestError, match="no such file"):
        ingest([tmp_path / "nope.pt"], tmp_path / "run.zarr")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(IngestError, match="unsupported file type"):
        ingest([tmp_path / "x.txt"], tmp_path / "run.zarr")
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(IngestError, match="cannot read checkpoint"):
        ingest([tmp_path / "broken.pt"], tmp_path / "run.zarr")
    (tmp_path / "runs" / "seed0").mkdir(parents=True)
    with pytest.raises(IngestError, match="it has folders seed0: pass them as SOURCEs"):
        ingest([tmp_path / "runs"], tmp_path / "run.zarr")
