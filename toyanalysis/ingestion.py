"""Convert checkpoints written by other code into a store.

``ingest(sources, output, ...)`` reads the files other TMS code writes (torch
``.pt``/``.pth``/``.ckpt`` state dicts loaded with ``weights_only=True``,
``.safetensors``, NumPy ``.npz``/``.npy``; pickles only with
``allow_pickle=True``) and writes one store. It reads, exactly or not at all:

- the names of the public notebook (``W``, ``b_final``), ARENA, ``nn.Linear``
  modules (``embedding.weight``, a tied ``unembedding.weight`` checked to be
  tied, ``unembedding.bias``), a JAX port's lower-case ``w``, under any prefix
  and in any case; anything else with ``rename={"OLD": "NEW"}``;
- one checkpoint per file, a trajectory in one tensor (``W_history``, layout
  ``sifh``/``sihf``) or a list of state dicts, and with ``as_instances=True``
  one run (or seed) per SOURCE side by side as instances;
- the step from a ``step`` entry, a step-like file name (``step_1200``,
  ``ckpt-1200``, ``1200.pt``), ``step=`` or ``steps=``.

What cannot be told is refused with a one-line :class:`~toyanalysis.errors.IngestError`;
every reading that is not certain, and every entry left unused, is said in
an :class:`IngestWarning` (one line each). ``docs/ingest.md`` lists the
accepted names and shapes, with one example per convention.

>>> import numpy as np, tempfile, os, warnings
>>> folder = tempfile.mkdtemp()
>>> W = np.random.default_rng(0).normal(size=(3, 5, 2)).astype(np.float32)  # [instance, feature, hidden]
>>> np.savez(os.path.join(folder, "step_100.npz"), W=W, b_final=np.zeros((3, 5), np.float32))
>>> with warnings.catch_warnings(record=True) as said:
...     warnings.simplefilter("always")
...     ds = ingest([folder], os.path.join(folder, "run.zarr"), model="relu_output", importance="0.9^i")
>>> ds["W"].dims, ds["W"].shape, ds.attrs["ingest_layout"]
(('step', 'instance', 'hidden', 'feature'), (1, 3, 2, 5), ['ifh'])
>>> said
[]
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import xarray as xr

from toyanalysis import store
from toyanalysis._ingest._assemble import read_dataset
from toyanalysis._ingest._notes import IngestWarning, Notes
from toyanalysis._ingest._options import Options
from toyanalysis._ingest._read import SUFFIXES
from toyanalysis.config import RunConfig

__all__ = ["SUFFIXES", "IngestWarning", "ingest"]


def ingest(
    sources: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    layout: str | None = None,
    model: str | None = None,
    rename: Mapping[str, str] | None = None,
    steps: str | Sequence[int] | None = None,
    step: int | None = None,
    as_instances: bool = False,
    importance: Any = None,
    density: Any = None,
    along: Mapping[str, str] | None = None,
    config: RunConfig | None = None,
    allow_pickle: bool = False,
    overwrite: bool = False,
) -> xr.Dataset:
    """Read checkpoints from ``sources`` and write them as one store at ``output``; return it opened.

    ``layout``: the axes of W (``i`` instance, ``f`` feature, ``h`` hidden, a
    leading ``s`` for a step axis), inferred from the bias when unambiguous.
    ``rename``: ``{"OLD": "NEW"}`` names an entry (NEW empty: ignore it).
    ``steps``: the steps of a trajectory (``"0,100,200"``, ``"every:100"`` or
    integers); ``step``: the step of a single checkpoint that has none.
    ``as_instances``: each SOURCE is one run, stacked along ``instance``.
    ``importance``/``density``: a number, ``"r^i"``, ``"a,b,c"``, an array or
    an array file, per feature or per instance x feature; ``along``:
    ``{"density": "instance"}`` says which axis a 1-D value lies along when
    instances and features are as many. ``config``: the run's
    :class:`~toyanalysis.config.RunConfig`, checked against the shapes, so
    that every analysis (``evaluation_loss`` included) works on the store.
    """
    opts = Options(
        layout=layout,
        model=model,
        rename=rename or {},
        steps=steps if steps is None or isinstance(steps, str) else tuple(steps),
        step=step,
        as_instances=as_instances,
        importance=importance,
        density=density,
        along=along or {},
        config=config,
        allow_pickle=allow_pickle,
    )
    notes = Notes()
    ds = read_dataset([Path(s) for s in sources], opts, notes)
    notes.emit()
    store.write_store(output, ds, overwrite=overwrite)
    return store.open_store(output)
