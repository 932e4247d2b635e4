"""How fast is ``toyanalysis classify --step all``, and does its memory stay bounded?

Builds synthetic trajectories on disk (``toyanalysis.store.write_store``) that
look like training runs: each instance starts from a small random matrix,
then passes through a few tegum products of polytopes (random rotations, dead
features, per-checkpoint noise and slow drift). It then times the command
line, in a fresh process, exactly as a user runs it::

    toyanalysis classify STORE --step all --format csv -o /dev/null

and reports wall time and peak resident memory for 1x, 2x and 4x the number
of steps. Targets (issue): 1,000 checkpoints x 64 instances of n=20, m=5
under 10 s; n=400, m=30 x 20 instances x 100 checkpoints under 30 s; memory
flat as the steps grow.

Usage: ``python benchmarks/classify_speed.py [--quick] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "cli")]

from toyanalysis import testing  # noqa: E402
from toyanalysis.store import write_store  # noqa: E402

# polytopes a trajectory may pass through, with the hidden dims they use
_BLOCKS = {
    "dedicated": 1,
    "digon": 1,
    "triangle": 2,
    "pentagon": 2,
    "hexagon": 2,
    "tetrahedron": 3,
    "square_antiprism": 3,
}


def _random_tegum(m: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """A random tegum product filling at most ``m`` dims and ``n`` features, rest dead."""
    blocks, dims, feats = [], 0, 0
    names = list(_BLOCKS)
    while True:
        name = names[rng.integers(len(names))]
        k = testing.polytope(name).shape[1]
        if dims + _BLOCKS[name] > m or feats + k > n:
            break
        blocks.append(name)
        dims += _BLOCKS[name]
        feats += k
    W = testing.tegum(*blocks, n_hidden=m, dead=n - feats)
    W = testing.rotate(W, rng)
    W, _ = testing.permute(W, rng)
    return W


def trajectory(steps: int, instances: int, m: int, n: int, seed: int = 0) -> np.ndarray:
    """``(step, instance, hidden, feature)`` float32 weights of a synthetic training run."""
    rng = np.random.default_rng(seed)
    W = np.empty((steps, instances, m, n), dtype=np.float32)
    for i in range(instances):
        n_phases = int(rng.integers(3, 6))
        cuts = np.sort(
            rng.choice(np.arange(1, steps), size=min(n_phases - 1, steps - 1), replace=False)
        )
        bounds = [0, *cuts.tolist(), steps]
        for p, (start, stop) in enumerate(itertools.pairwise(bounds)):
            length = stop - start
            if p == 0:  # initialisation: small random weights
                base = rng.standard_normal((m, n)) * 0.3 / np.sqrt(m)
            else:
                base = _random_tegum(m, n, rng)
            drift = testing.random_rotation(m, rng)
            # slow drift: interpolate towards a rotated copy within the phase
            t = np.linspace(0, 0.05, length)[:, None, None]
            frames = base[None] * (1 - t) + (drift @ base)[None] * t
            noise = rng.standard_normal((length, m, n)) * (0.02 / np.sqrt(m))
            W[start:stop, i] = frames + noise
    return W


def build_store(path: Path, steps: int, instances: int, m: int, n: int) -> None:
    W = trajectory(steps, instances, m, n)
    ds = testing.as_dataset(
        W,
        steps=np.arange(steps) * 10,
        density=np.geomspace(1, 0.01, instances)[:, None] * np.ones(n),
        sweep={"base_density": np.geomspace(1, 0.01, instances)},
        seed=np.zeros(instances, dtype=np.int64),
    )
    write_store(path, ds, overwrite=True)


_CHILD = """
import atexit, sys
def _report():
    try:
        with open("/proc/self/status") as fh:
            hwm = [line for line in fh if line.startswith("VmHWM")]
        sys.stderr.write("\\nPEAK_RSS_KB " + hwm[0].split()[1] + "\\n")
    except OSError:
        pass
atexit.register(_report)
sys.argv = ["toyanalysis", *sys.argv[1:]]
from toyanalysis_cli.main import main
main()
"""


def run_cli(store: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one ``classify --step all`` in a fresh process.

    The peak is the child's own high-water mark (``VmHWM`` after exec), so
    the memory this benchmark uses to build stores does not count.
    """
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'cli'}")
    args = ["classify", str(store), "--step", "all", "--format", "csv", "-o", os.devnull]
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, *args], env=env, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"classify failed on {store}:\n{done.stderr}")
    peaks = [line.split()[1] for line in done.stderr.splitlines() if line.startswith("PEAK_RSS_KB")]
    return elapsed, (int(peaks[-1]) / 1024 if peaks else float("nan"))


CASES = [
    # name, steps, instances, m, n, target seconds (for 1x)
    ("n=20 m=5, 64 instances", 1000, 64, 5, 20, 10.0),
    ("n=400 m=30, 20 instances", 100, 20, 30, 400, 30.0),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the 1x size of each case")
    parser.add_argument("--keep", type=Path, default=None, help="build stores in this directory")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="classify-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"stores in {workdir}; python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    failures = []
    for name, steps, instances, m, n, target in CASES:
        for factor in (1,) if args.quick else (1, 2, 4):
            store = workdir / f"m{m}n{n}i{instances}s{steps * factor}.zarr"
            if not store.exists():
                t = time.perf_counter()
                build_store(store, steps * factor, instances, m, n)
                print(f"  built {store.name} in {time.perf_counter() - t:.1f} s")
            elapsed, rss = run_cli(store)
            checkpoints = steps * factor * instances
            verdict = ""
            if factor == 1:
                ok = elapsed < target
                verdict = f"  target < {target:.0f} s: {'ok' if ok else 'MISSED'}"
                if not ok:
                    failures.append(name)
            print(
                f"{name}, {steps * factor} steps ({checkpoints} checkpoints): "
                f"{elapsed:.2f} s, peak RSS {rss:.0f} MB{verdict}"
            )
    if failures:
        raise SystemExit(f"missed targets: {', '.join(failures)}")


if __name__ == "__main__":
    main()
