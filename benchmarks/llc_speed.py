"""Speed and validation of the LLC estimator (``docs/llc.md``).

``python benchmarks/llc_speed.py``: λ̂ for all 40 instances of ``onehot-6-2``
at 20 recorded steps, 4 chains each, at the default hyperparameters — 3,200
SGLD chains run as one batch of models (target: under 2 minutes on a 2-core
CPU). The store is trained first (3,800 steps, recorded every 200, so
that most checkpoints sit on loss plateaus, near critical points).

``python benchmarks/llc_speed.py --validate [--instances K]``: the validation
table of ``docs/llc.md``: λ̂ at each hand-built critical point of known λ, K
rotated copies × 4 chains each, at the defaults.

``--device cuda`` runs either on a GPU.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def speed(device: str) -> None:
    import torch

    import toyanalysis as ta

    torch.set_num_threads(1)
    config = ta.preset("onehot-6-2").override(seeds=40, steps=3800, record="every:200")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "onehot.zarr"
        start = time.perf_counter()
        ta.train(config, path)
        trained = time.perf_counter() - start
        ds = ta.open_store(path)
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = ta.llc(ds, device=device)
        took = time.perf_counter() - start
    chains = result["chain_llc"].size
    print(f"trained {config.n_instances} instances x {ds.sizes['step']} records in {trained:.1f} s")
    print(
        f"llc: {result['llc'].size} checkpoints, {chains} chains, "
        f"{result['loss_trace'].sizes['draw']} draws each: {took:.1f} s on {device} "
        f"({os.cpu_count()} CPUs visible; load average {os.getloadavg()[0]:.1f})"
    )
    last = result["llc"].isel(step=-1)
    kept = int((~result["divergent"]).sum())
    print(
        f"{kept} of {chains} chains kept; λ̂ at step {int(result['step'][-1])}: median "
        f"{float(last.median()):.2f}, range {float(last.min()):.2f} .. {float(last.max()):.2f}"
    )
    for warning in caught:
        print(f"warning: {warning.message}")


def validate(instances: int, device: str) -> None:
    import toyanalysis as ta
    from toyanalysis._llc import KNOWN_POINTS, LLCParams, known_point_store

    print(f"defaults: {LLCParams().to_json()}")
    print("| point | n | λ | λ̂ ± se (chains) | relative error |")
    print("|---|---|---|---|---|")
    for names in (["5-gon", "5+", "6-gon"], ["pentagon-5"]):
        result = ta.llc(known_point_store(names, instances=instances), device=device)
        chains = result["chain_llc"].isel(step=0)
        for name in names:
            values = chains.where(chains["point"] == name, drop=True).values.ravel()
            mean, se = values.mean(), values.std(ddof=1) / values.size**0.5
            expected = KNOWN_POINTS[name].llc
            print(
                f"| {name} | {KNOWN_POINTS[name].n_features} | {expected} | "
                f"{mean:.2f} ± {se:.2f} ({values.size}) | {100 * (mean / expected - 1):+.1f}% |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--validate", action="store_true")
    parser.add_argument("--instances", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.validate:
        validate(args.instances, args.device)
    else:
        speed(args.device)


if __name__ == "__main__":
    main()
