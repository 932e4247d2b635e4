"""Rebuild the reference stores in this folder (see README.md).

python datasets/make_reference.py
"""

from __future__ import annotations

from pathlib import Path

from toyanalysis import preset, train

HERE = Path(__file__).resolve().parent

REFERENCE = {
    "intro.zarr": preset("intro").override(record="every:500"),
    "nonuniform.zarr": preset("nonuniform").override(record="every:1000"),
}

if __name__ == "__main__":
    for name, config in REFERENCE.items():
        train(config, HERE / name, overwrite=True)
        print(f"wrote {HERE / name}")
