"""Checkpoints written the way each neighbouring code base saves them, read back exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ingest_helpers import normal, quiet, run, said
from torch import nn

from toyanalysis.errors import IngestError
from toyanalysis.ingestion import ingest

NI, F, H = 3, 5, 2


class NotebookModel(nn.Module):
    """The public notebook: W [instance, feature, hidden], b_final [instance, feature]."""

    def __init__(self, transposed: bool = False) -> None:
        super().__init__()
        shape = (
            (NI, H, F) if transposed else (NI, F, H)
        )  # ARENA keeps W as [instance, hidden, feature]
        self.W = nn.Parameter(torch.from_numpy(normal(*shape)))
        self.b_final = nn.Parameter(torch.from_numpy(normal(NI, F)))
        self.importance = 0.9 ** torch.arange(F)  # plain attributes: not in the state dict
        self.feature_probability = torch.full((NI, 1), 0.1)


def _perturb(model: nn.Module) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.from_numpy(normal(*p.shape)))


def test_public_notebook_folder_of_state_dicts(tmp_path):
    model, kept = NotebookModel(), {}
    (tmp_path / "ckpts").mkdir()
    for step in (0, 1000, 250):  # saved out of order
        _perturb(model)
        torch.save(model.state_dict(), tmp_path / "ckpts" / f"step_{step}.pt")
        kept[step] = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    ds = quiet(tmp_path / "ckpts", tmp_path / "run.zarr", importance="0.9^i", density=0.1)
    assert ds["step"].values.tolist() == [0, 250, 1000]
    for k, step in enumerate([0, 250, 1000]):
        np.testing.assert_array_equal(ds["W"].values[k], kept[step]["W"].transpose(0, 2, 1))
        np.testing.assert_array_equal(ds["b"].values[k], kept[step]["b_final"])
    np.testing.assert_allclose(ds["importance"].values, np.tile(0.9 ** np.arange(F), (NI, 1)))
    np.testing.assert_allclose(ds["density"].values, 0.1)
    assert ds.attrs["ingest_layout"] == ["ifh"]


def test_arena_checkpoint_with_adam_state(tmp_path):
    model = NotebookModel(transposed=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.W.sum().backward()
    optimizer.step()
    torch.save(
        {
            "model_state_dict": model.state_dict(),
            "optimizer_state_dict": optimizer.state_dict(),
            "step": 500,
        },
        tmp_path / "final.pt",
    )
    ds, lines = run(tmp_path / "final.pt", tmp_path / "run.zarr", model="relu_output", importance=1)
    np.testing.assert_array_equal(ds["W"].values[0], model.W.detach().numpy())
    assert ds["step"].values.tolist() == [500]
    assert ds.attrs["ingest_layout"] == ["ihf"]
    said(lines, "unused entries", "optimizer_state_dict")  # listed, not searched for weights


class ToyAutoencoder(nn.Module):
    """devinterp's example: nn.Linear modules, a tied decoder, output bias N(0, 10²)."""

    def __init__(self, tied: bool = True, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.embedding = nn.Linear(F, H, bias=False)
        self.unembedding = nn.Linear(H, F)
        nn.init.normal_(self.unembedding.bias, 0.0, 10.0)
        if tied:
            self.unembedding.weight.data = self.embedding.weight.data.T  # the same storage


def _devinterp_runs(tmp_path, tied=True, seeds=(0, 1, 2), steps=(0, 100, 200)):
    kept = {}
    for seed in seeds:
        model = ToyAutoencoder(tied, seed)
        folder = tmp_path / "runs" / f"seed{seed}"
        folder.mkdir(parents=True)
        for step in steps:
            with torch.no_grad():
                model.embedding.weight.mul_(0.9)
                model.unembedding.bias.add_(1.0)
            torch.save(model.state_dict(), folder / f"checkpoint_{step}.pt")
            kept[seed, step] = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    return kept


def test_devinterp_nn_linear_one_model_per_seed_as_instances(tmp_path):
    kept = _devinterp_runs(tmp_path)
    sources = [tmp_path / "runs" / f"seed{s}" for s in (0, 1, 2)]
    ds = quiet(sources, tmp_path / "run.zarr", as_instances=True)
    assert ds["step"].values.tolist() == [0, 100, 200]
    assert ds["run"].values.tolist() == ["seed0", "seed1", "seed2"]
    for seed in (0, 1, 2):
        for k, step in enumerate((0, 100, 200)):
            state = kept[seed, step]
            np.testing.assert_array_equal(ds["W"].values[k, seed], state["embedding.weight"])
            np.testing.assert_array_equal(ds["b"].values[k, seed], state["unembedding.bias"])
    assert "W_out" not in ds  # tied: checked equal, not kept twice


def test_untied_nn_linear_decoder_is_refused_unless_abs(tmp_path):
    kept = _devinterp_runs(tmp_path, tied=False, seeds=(0,), steps=(10,))
    source = tmp_path / "runs" / "seed0"
    with pytest.raises(IngestError, match=r"not the transpose of embedding\.weight.*--model abs"):
        ingest([source], tmp_path / "run.zarr")
    ds = quiet(source, tmp_path / "abs.zarr", model="abs")
    np.testing.assert_array_equal(ds["W_out"].values[0, 0], kept[0, 10]["unembedding.weight"])
    np.testing.assert_array_equal(ds["W"].values[0, 0], kept[0, 10]["embedding.weight"])


def test_jax_safetensors_lower_case_w_and_summed_losses(tmp_path):
    from safetensors.numpy import save_file

    w, b = normal(NI, F, H), normal(NI, F)
    losses = np.abs(normal(10_000))  # one per training step, summed over instances
    save_file({"w": w, "b": b, "losses": losses}, str(tmp_path / "tms.safetensors"))
    with pytest.raises(IngestError, match=r"tms.safetensors: no step .*pass --step N"):
        ingest([tmp_path / "tms.safetensors"], tmp_path / "run.zarr")
    ds, lines = run(
        tmp_path / "tms.safetensors",
        tmp_path / "run.zarr",
        step=10_000,
        model="relu_output",
        importance=1,
    )
    np.testing.assert_array_equal(ds["W"].values[0], w.transpose(0, 2, 1))
    np.testing.assert_array_equal(ds["b"].values[0], b)
    assert ds["step"].values.tolist() == [10_000]
    assert "loss" not in ds and "run_loss" not in ds
    said(lines, "losses has shape (10000,)", "dropped")


@pytest.mark.parametrize("steps_from", ["entry", "option"])
def test_stacked_w_history_tensor(tmp_path, steps_from):
    W_history, b_history = (
        normal(4, NI, F, H),
        normal(4, NI, F),
    )  # [step, instance, feature, hidden]
    entries = {"W_history": torch.from_numpy(W_history), "b_history": torch.from_numpy(b_history)}
    options = {"steps": "every:50"} if steps_from == "option" else {}
    if steps_from == "entry":
        entries["steps"] = torch.tensor([0, 50, 100, 150])
    torch.save(entries, tmp_path / "history.pt")
    ds = quiet(tmp_path / "history.pt", tmp_path / "run.zarr", **options)
    assert ds["step"].values.tolist() == [0, 50, 100, 150]
    np.testing.assert_array_equal(ds["W"].values, W_history.transpose(0, 1, 3, 2))
    np.testing.assert_array_equal(ds["b"].values, b_history)
    assert ds.attrs["ingest_layout"] == ["sifh"]


def test_stacked_tensor_with_explicit_layout_and_no_bias(tmp_path):
    W = normal(3, NI, H, F)
    torch.save(torch.from_numpy(W), tmp_path / "weights.pt")  # a bare tensor
    ds = quiet(tmp_path / "weights.pt", tmp_path / "run.zarr", layout="sihf", steps="0,10,20")
    np.testing.assert_array_equal(ds["W"].values, W)
    with pytest.raises(IngestError, match="but no steps"):
        ingest([tmp_path / "weights.pt"], tmp_path / "other.zarr", layout="sihf")


def test_list_of_state_dicts_with_parallel_steps(tmp_path):
    model, states = NotebookModel(), []
    for _ in range(3):
        _perturb(model)
        states.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    torch.save({"checkpoints": states, "steps": [0, 10, 30]}, tmp_path / "trajectory.pt")
    ds = quiet(tmp_path / "trajectory.pt", tmp_path / "run.zarr")
    assert ds["step"].values.tolist() == [0, 10, 30]
    for k, state in enumerate(states):
        np.testing.assert_array_equal(ds["W"].values[k], state["W"].numpy().transpose(0, 2, 1))
    torch.save(states, tmp_path / "bare_list.pt")  # a bare list: steps from --steps
    ds = quiet(tmp_path / "bare_list.pt", tmp_path / "list.zarr", steps="every:10")
    assert ds["step"].values.tolist() == [0, 10, 20]


def test_notebook_seeds_with_several_instances_each(tmp_path):
    for seed in range(2):
        torch.manual_seed(seed)
        torch.save(NotebookModel().state_dict(), tmp_path / f"seed{seed}_step_100.pt")
    ds = quiet(
        [tmp_path / "seed0_step_100.pt", tmp_path / "seed1_step_100.pt"],
        tmp_path / "run.zarr",
        as_instances=True,
    )
    assert ds.sizes["instance"] == 2 * NI
    assert ds["run"].values.tolist() == ["seed0_step_100"] * NI + ["seed1_step_100"] * NI


def test_lightning_checkpoint(tmp_path):
    W, b = normal(NI, F, H), normal(NI, F)
    torch.save(
        {
            "epoch": 3,
            "global_step": 1200,
            "state_dict": {"model.W": torch.from_numpy(W), "model.b_final": torch.from_numpy(b)},
            "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-3}]}],
            "lr_schedulers": [],
        },
        tmp_path / "epoch=3-step=1200.ckpt",
    )
    ds, lines = run(
        tmp_path / "epoch=3-step=1200.ckpt", tmp_path / "run.zarr", model="linear", importance=1
    )
    assert ds["step"].values.tolist() == [1200]
    assert ds.attrs["model"] == "linear"
    np.testing.assert_array_equal(ds["W"].values[0], W.transpose(0, 2, 1))
    said(lines, "unused entries", "epoch", "optimizer_states")


def test_npy_and_npz_files(tmp_path):
    W = normal(NI, F, H)
    np.save(tmp_path / "W.npy", W)
    with pytest.raises(IngestError, match="no bias to tell"):
        ingest([tmp_path / "W.npy"], tmp_path / "run.zarr", step=5)
    ds = quiet(tmp_path / "W.npy", tmp_path / "run.zarr", step=5, layout="ifh")
    np.testing.assert_array_equal(ds["W"].values[0], W.transpose(0, 2, 1))
    np.savez(tmp_path / "ckpt-7.npz", W=W, b_final=normal(NI, F))
    assert quiet(tmp_path / "ckpt-7.npz", tmp_path / "npz.zarr")["step"].values.tolist() == [7]


def test_one_trajectory_file_per_seed_as_instances(tmp_path):
    histories = {}
    for seed in (3, 4):
        histories[seed] = normal(4, F, H)  # one model: [step, feature, hidden]
        torch.save(
            {"W_history": torch.from_numpy(histories[seed]), "b_history": torch.zeros(4, F),
             "steps": torch.arange(4) * 10, "seed": seed},
            tmp_path / f"seed{seed}.pt",
        )  # fmt: skip
    ds = quiet(
        [tmp_path / "seed3.pt", tmp_path / "seed4.pt"], tmp_path / "run.zarr", as_instances=True
    )
    assert ds["seed"].values.tolist() == [3, 4]
    assert ds["run"].values.tolist() == ["seed3", "seed4"]
    assert ds.attrs["ingest_layout"] == ["sfh"]
    for k, seed in enumerate((3, 4)):
        np.testing.assert_array_equal(ds["W"].values[:, k], histories[seed].transpose(0, 2, 1))
