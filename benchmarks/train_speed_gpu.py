"""Trainer speed on a GPU against the notebook's plain loop on the same GPU (issue 13).

For every preset size (intro, basic, uniform): the plain loop (einsum +
autograd + torch AdamW, data made with ``torch.rand`` on the device) and our
trainer with ``device="cuda"`` recording every 10 steps, side by side in one
run, best of three each. Exits with a message when there is no CUDA GPU.

    python benchmarks/train_speed_gpu.py [--quick] [--device cuda]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from toyanalysis import preset, train

CASES = {"intro": 3000, "basic": 3000, "uniform": 1000}
REPEATS = 3


def plain_loop(config, steps: int, device: torch.device) -> float:
    """Steps per second of the notebook's way on ``device`` (without any recording)."""
    count, n, m = config.n_instances, config.n_features, config.n_hidden
    W = torch.nn.Parameter(torch.empty(count, n, m, device=device))
    torch.nn.init.xavier_normal_(W)
    b_final = torch.nn.Parameter(torch.zeros(count, n, device=device))
    importance = torch.tensor(config.instance_importance(), dtype=torch.float32, device=device)
    probability = torch.tensor(config.instance_density(), dtype=torch.float32, device=device)
    opt = torch.optim.AdamW([W, b_final], lr=config.train.lr)
    batch_size = config.train.batch_size
    torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        feat = torch.rand((batch_size, count, n), device=device)
        batch = torch.where(
            torch.rand((batch_size, count, n), device=device) <= probability, feat, 0.0
        )
        hidden = torch.einsum("...if,ifh->...ih", batch, W)
        out = torch.relu(torch.einsum("...ih,ifh->...if", hidden, W) + b_final)
        error = importance * (batch - out) ** 2
        loss = error.mean(dim=(0, 2)).sum()
        loss.backward()
        opt.step()
    torch.cuda.synchronize(device)
    return steps / (time.perf_counter() - start)


def ours(config, steps: int, folder: Path, device: torch.device) -> float:
    path = folder / f"{config.name}.zarr"
    torch.cuda.synchronize(device)
    start = time.perf_counter()
    train(config.override(steps=steps, record="every:10"), path, overwrite=True, device=device)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the steps")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("no CUDA GPU here: the GPU figures are pending")
    device = torch.device(args.device)
    print(f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}")
    print(f"{'preset':<9} {'steps':>6} {'plain/s':>9} {'ours/s':>9} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, steps in CASES.items():
            steps = max(steps // 10, 50) if args.quick else steps
            config = preset(name)
            ours(config, 50, Path(tmp), device)  # warm up kernels and caches
            plain_loop(config, 20, device)
            plain = max(plain_loop(config, steps, device) for _ in range(REPEATS))
            recorded = max(ours(config, steps, Path(tmp), device) for _ in range(REPEATS))
            print(f"{name:<9} {steps:>6} {plain:>9.1f} {recorded:>9.1f} {recorded / plain:>5.2f}x")


if __name__ == "__main__":
    main()
