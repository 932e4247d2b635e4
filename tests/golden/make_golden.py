"""Make the golden stores and the JSON the analyses gave on them (issue 8).

Run from the repository root: ``python tests/golden/make_golden.py``. It trains
short versions of four presets into ``tests/golden/stores/`` and writes, for
each store (and each store in ``datasets/``), the JSON of every analysis that
applies to it into ``tests/golden/outputs/``. ``tests/test_golden.py`` runs the
same commands on the same stores and requires the same JSON: a refactor of the
analysis layer must not change what users get. Regenerate only on purpose,
with the change documented.

``--outputs-only`` rewrites outputs from the existing stores without
retraining; ``--only SUBSTRING`` (repeatable) limits the rewrite to the
outputs whose file name contains it, e.g. ``--outputs-only --only __neurons``
regenerated only the neurons JSON when issue 12 changed it on purpose.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

# name -> (preset, overrides): short enough to train in seconds, long enough to
# show each analysis doing something (phases need several records, the diagram
# a grid, neurons a privileged basis).
STORES = {
    "intro": ("intro", {"steps": 3000, "record": "every:100"}),
    "dynamics": ("dynamics", {"steps": 4000, "record": "every:50"}),
    "phase-2-1": ("phase-2-1", {"steps": 1500, "record": "every:500"}),
    "privileged": ("privileged", {"steps": 2000, "record": "every:500"}),
}

# store -> the commands whose JSON is kept (arguments after the store path).
COMMANDS = {
    "intro": [["classify", "--step", "all"], ["phases"]],
    "dynamics": [["classify", "--step", "all"], ["phases"], ["phases", "--eval-loss", "2048"]],
    "phase-2-1": [["classify"], ["phase-diagram"], ["phase-diagram", "--eval-loss", "2048"]],
    "privileged": [["classify"], ["neurons"], ["phases"]],
    "datasets-intro": [["classify", "--step", "all"], ["phases"]],
    "datasets-nonuniform": [["classify", "--step", "all"], ["phase-diagram"]],
}


def store_paths() -> dict[str, Path]:
    paths = {name: HERE / "stores" / f"{name}.zarr" for name in STORES}
    paths["datasets-intro"] = ROOT / "datasets" / "intro.zarr"
    paths["datasets-nonuniform"] = ROOT / "datasets" / "nonuniform.zarr"
    return paths


def output_name(store: str, args: list[str]) -> str:
    return "__".join([store, *(a.lstrip("-") for a in args)]) + ".json.gz"


def run_json(store: Path, args: list[str]) -> object:
    from click.testing import CliRunner
    from toyanalysis_cli.main import main

    # run from the repository root with a relative path, so the JSON (which names
    # the store) is the same wherever the repository is cloned
    with contextlib.chdir(ROOT):
        relative = os.path.relpath(store, ROOT)
        result = CliRunner().invoke(
            main, [args[0], relative, *args[1:], "--format", "json"], catch_exceptions=False
        )
    if result.exit_code != 0:
        raise SystemExit(f"{args} on {store} failed: {result.output}")
    return json.loads(result.stdout)


def write_outputs(only: list[str]) -> None:
    """Run every command on its store and write the JSON (only names containing one of ``only``)."""
    out = HERE / "outputs"
    out.mkdir(exist_ok=True)
    for name, path in store_paths().items():
        for args in COMMANDS[name]:
            target = output_name(name, args)
            if only and not any(part in target for part in only):
                continue
            data = run_json(path, args)
            text = json.dumps(data, indent=1).encode()
            (out / target).write_bytes(gzip.compress(text, 9, mtime=0))
            print(f"wrote {target}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--outputs-only", action="store_true", help="keep the stores, rewrite the outputs"
    )
    parser.add_argument(
        "--only", action="append", default=[], help="rewrite outputs whose name contains this"
    )
    args = parser.parse_args(argv)
    if not args.outputs_only:
        from toyanalysis import preset, train

        for name, (preset_name, overrides) in STORES.items():
            path = HERE / "stores" / f"{name}.zarr"
            shutil.rmtree(path, ignore_errors=True)
            train(preset(preset_name).override(**overrides), path)
        if not args.only:
            shutil.rmtree(HERE / "outputs", ignore_errors=True)
    write_outputs(args.only)


if __name__ == "__main__":
    main()
