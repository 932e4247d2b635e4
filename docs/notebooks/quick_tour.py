# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A quick tour of toyanalysis
#
# Train the paper's introductory model (n = 5 features squeezed into m = 2
# hidden dimensions, importance 0.9^i, ten feature densities from 1 down to
# 0.05), keep every checkpoint, classify the geometry the features form, and
# look at it over training steps.
#
# Everything here is one call each; the command line does the same
# (`toyanalysis train`, `classify`, `report`). The run is shortened so that
# the notebook executes in seconds in CI: use the preset's own length
# (10,000 steps) to reproduce the paper's figure.

# %%
import tempfile
from pathlib import Path

import holoviews as hv

import toyanalysis as ta
from toyanalysis import plots
from toyanalysis.geometry import to_frame
from toyanalysis.report import write_report

hv.extension("bokeh")
workdir = Path(tempfile.mkdtemp())

# %% [markdown]
# ## Train (or open) a store
# `train` writes the store as it goes and returns it opened as a lazy
# `xarray.Dataset` (dims `step`, `instance`, `hidden`, `feature`).
# `ta.open_store(path)` opens an existing one.

# %%
config = ta.preset("intro").override(steps=1500, record="every:50")
ds = ta.train(config, workdir / "intro.zarr")
print(ds)

# %% [markdown]
# ## Classify
# Every feature of every checkpoint gets a kind (dedicated, digon, pentagon,
# unlearned, ...); each checkpoint a summary. Instances are labelled by the
# swept density.

# %%
result = ta.classify(ds)
last = result.isel(step=-1)
for density, summary in zip(last["base_density"].values, last["summary"].values):
    print(f"density {density:.3f}: {summary}")

# %% [markdown]
# A tidy table (one row per step, instance and feature) for pandas users:

# %%
frame = to_frame(result)
frame[frame.step == frame.step.max()].head(10)

# %% [markdown]
# ## Look at it over training steps
# Feature directions in the plane, coloured by importance: dense instances
# keep the two most important features, sparse ones pack more in antipodal
# pairs and pentagons. Drag the step slider.

# %%
plots.directions(ds, instances=[0, 4, 9], max_frames=10)

# %% [markdown]
# Norms coloured by interference (the paper's "basic results" view), and the
# loss with changes of geometry marked:

# %%
plots.norms(ds, instances=[0, 9], max_frames=10)

# %%
plots.loss_curves(ds, instances=[0, 4, 9])

# %% [markdown]
# For a large store, `dynamic=True` reads each step only when it is shown
# (needs a live kernel):

# %%
plots.gram(ds, instances=[9], dynamic=True)

# %% [markdown]
# ## A report to share
# One self-contained HTML page with every view that applies; it works
# offline, sliders included.

# %%
path = write_report(ds, workdir / "intro.html", max_frames=5, max_instances=3)
print(path, path.stat().st_size // 1024, "kB")
