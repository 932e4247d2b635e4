"""Run-time checks for the whole suite (tests and doctests): set before anything is imported."""

import os

# kernels decorated with toyanalysis._checks.shape_checked check their array shapes
os.environ["TOYANALYSIS_CHECK_SHAPES"] = "1"
