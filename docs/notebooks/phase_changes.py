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
# # Phase changes: training dynamics and a phase diagram
#
# Two of the paper's "phase change" results:
#
# 1. **Over training**: with two correlated sets of three features in
#    m = 3 dimensions, the loss shows plateaus separated by sudden drops,
#    and each drop is a change of geometry.
# 2. **Over importance × sparsity**: n = 2 features in m = 1 dimension; one
#    "extra" feature's relative importance and the density of all features
#    are swept. Each cell is labelled by what the extra feature does:
#    unlearned, superposed or dedicated. A first-order phase change separates
#    the regions.
#
# Runs are shortened so the notebook executes in CI.

# %%
import tempfile
from pathlib import Path

import holoviews as hv

import toyanalysis as ta
from toyanalysis import plots
from toyanalysis.phase_changes import for_instance

hv.extension("bokeh")
workdir = Path(tempfile.mkdtemp())

# %% [markdown]
# ## Learning dynamics
# `phases` turns each instance's per-step classification into phases
# (a configuration held over a span of steps) and transitions, and finds the
# loss drops that coincide with them.

# %%
dynamics = ta.train(
    ta.preset("dynamics").override(steps=3000, record="every:25"), workdir / "dynamics.zarr"
)
result = ta.phases(dynamics)
for k in result["instance"].values:  # one row per phase, of every instance
    print(f"instance {k}: " + " → ".join(for_instance(result, k)["phase_summary"].values))

# %% [markdown]
# Loss per instance; crosses mark the changes of geometry (hover them):

# %%
plots.loss_curves(dynamics, phases=result)

# %% [markdown]
# The overlap graph of one instance at the end of training: each component
# of the graph is drawn as its own polytope and coloured by configuration.

# %%
plots.overlap_graph(dynamics, instance=0, steps="last")

# %% [markdown]
# ## A phase diagram
# Ten importances × ten densities × three seeds = 300 small models trained
# at once. `phase_diagram` drops the worst seed of each cell and takes the
# majority of the rest.

# %%
sweep = ta.train(
    ta.preset("phase-2-1").override(steps=1500, record="every:500", batch_size=256),
    workdir / "phase.zarr",
)
diagram = ta.phase_diagram(sweep)
print(diagram["label"].to_series().value_counts())

# %% [markdown]
# Density on the x axis, relative importance of the extra feature on y
# (log axes). From the store directly, `steps="all"` adds a slider to watch
# the diagram form during training.

# %%
plots.phase_diagram(diagram)

# %%
plots.phase_diagram(sweep, steps="all")
