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
# # Uniform superposition: D* plateaus and fractions
#
# With uniform importance, features settle into regular polytopes and each
# feature's dimensionality `D_i` clusters at the matching fraction d/k:
# 1 (dedicated), 3/4 (tetrahedron), 2/3 (triangle), 1/2 (digon),
# 2/5 (pentagon), 3/8 (square antiprism). Dimensions per feature `D*`
# plotted against 1/(1−S) is "sticky": it stays at 1, then at 1/2 over a
# wide range.
#
# The paper uses n = 400, m = 30 (`preset("uniform")`) or n = 200, m = 20
# (`"uniform-small"`). To run in CI this notebook shrinks the model to
# n = 40, m = 8 and trains briefly; the pictures are noisier but the
# plateaus already show.

# %%
import tempfile
from pathlib import Path

import holoviews as hv
import numpy as np

import toyanalysis as ta
from toyanalysis import plots
from toyanalysis.superposition import feature_dimensionality

hv.extension("bokeh")
workdir = Path(tempfile.mkdtemp())

# %%
config = ta.preset("uniform-small").override(
    n_features=40, n_hidden=8, steps=2000, record="every:250", batch_size=512
)
ds = ta.train(config, workdir / "uniform.zarr")
print(dict(ds.sizes), "densities:", np.round(ds["base_density"].values, 4))

# %% [markdown]
# ## D* against sparsity
# The black line is `D*` per instance; the dots are each feature's `D_i`;
# dashed lines mark the fractions. The slider moves through training.

# %%
plots.dimensionality(ds, max_frames=9)

# %% [markdown]
# ## How often does D_i sit at a fraction?
# Snap each represented feature's `D_i` (last step) to the nearest reference
# fraction within 0.05 and count.

# %%
fractions = np.array([float(f) for f in plots.REFERENCE_FRACTIONS])
W = ds["W"].isel(step=-1).transpose("instance", "hidden", "feature").values
D = feature_dimensionality(W)
represented = D > 0.05
nearest = np.abs(D[..., None] - fractions).argmin(axis=-1)
close = np.abs(D - fractions[nearest]) < 0.05
for k, f in enumerate(plots.REFERENCE_FRACTIONS):
    share = np.mean((nearest == k) & close & represented) / max(np.mean(represented), 1e-9)
    print(f"D_i = {f!s:>4}: {share:6.1%} of represented features")

# %% [markdown]
# ## The geometry behind the fractions
# The classifier names the configurations at the last step of the
# sparsest instances:

# %%
result = ta.classify(ds, steps="last")
for density, summary in zip(result["base_density"].values, result["summary"].values[0]):
    print(f"density {density:.4f}: {summary}")

# %% [markdown]
# Norms and interference per feature for a dense and a sparse instance:

# %%
plots.norms(ds, instances=[0, ds.sizes["instance"] - 1], steps="last")
