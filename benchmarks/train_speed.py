"""Trainer speed against the public notebook's plain loop.

For the intro (n=5, m=2), basic (n=20, m=5) and uniform (n=400, m=30)
presets, time: the plain loop (einsum + autograd + torch AdamW, two ``rand``
calls per element, as in the public notebook); our trainer recording every
10 steps into a store; and our trainer recording only the first and last step
(to isolate the cost of recording). One torch thread everywhere; the three
are run in turn, three rounds, and each figure is the best of its three runs,
so a busy moment on the machine does not count against one of them alone.
The load average is printed with the figures.

    python benchmarks/train_speed.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from toyanalysis import preset, train

# intro runs its preset's full length: in a short run, pre-allocating the store
# (a fixed cost) would count as a cost of recording
CASES = {"intro": 10000, "basic": 5000, "uniform": 60}
REPEATS = 3


def plain_loop(config, steps: int) -> float:
    """Steps per second of the notebook's way (without any recording)."""
    count, n, m = config.n_instances, config.n_features, config.n_hidden
    W = torch.nn.Parameter(torch.empty(count, n, m))
    torch.nn.init.xavier_normal_(W)
    b_final = torch.nn.Parameter(torch.zeros(count, n))
    importance = torch.tensor(config.instance_importance(), dtype=torch.float32)
    probability = torch.tensor(config.instance_density(), dtype=torch.float32)
    opt = torch.optim.AdamW([W, b_final], lr=config.train.lr)
    batch_size = config.train.batch_size
    start = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        feat = torch.rand((batch_size, count, n))
        batch = torch.where(
            torch.rand((batch_size, count, n)) <= probability, feat, torch.zeros(())
        )
        hidden = torch.einsum("...if,ifh->...ih", batch, W)
        out = torch.relu(torch.einsum("...ih,ifh->...if", hidden, W) + b_final)
        error = importance * (batch - out) ** 2
        loss = error.mean(dim=(0, 2)).sum()
        loss.backward()
        opt.step()
    return steps / (time.perf_counter() - start)


def ours(config, steps: int, record: str, folder: Path) -> float:
    path = folder / f"{config.name}-{record.replace(':', '')}.zarr"
    start = time.perf_counter()
    train(config.override(steps=steps, record=record), path, overwrite=True)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the steps")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"{'preset':<9} {'steps':>6} {'plain/s':>9} {'ours/s':>9} {'ratio':>6} {'no-rec/s':>9} {'rec cost':>8}"
    )
    print("load average (1, 5, 15 min): {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    with tempfile.TemporaryDirectory() as tmp:
        for name, steps in CASES.items():
            steps = max(steps // 10, 20) if args.quick else steps
            config = preset(name)
            ours(config, min(steps, 50), "every:10", Path(tmp))  # warm up imports and caches
            plain = recorded = bare = 0.0
            for _ in range(REPEATS):  # in turn, so that the load weighs on all three alike
                plain = max(plain, plain_loop(config, steps))
                recorded = max(recorded, ours(config, steps, "every:10", Path(tmp)))
                bare = max(bare, ours(config, steps, str(steps), Path(tmp)))
            cost = bare / recorded - 1
            print(
                f"{name:<9} {steps:>6} {plain:>9.1f} {recorded:>9.1f} {recorded / plain:>5.2f}x "
                f"{bare:>9.1f} {cost:>7.1%}"
            )
    print("load average (1, 5, 15 min): {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
