"""The work behind :mod:`toyanalysis.phase_changes`, one concept per module.

- ``_timeline``: label-free kernels on one timeline (flicker collapse, loss
  changes, drops, plateaus, dimensionality fractions);
- ``_inputs``: what the analyses read (the classification, the loss);
- ``_training``: :func:`phases` over training;
- ``_events``: the tidy event tables of a phases result, and their records,
  frames and text;
- ``_diagram``: :func:`phase_diagram` over sweeps, its records, grid and text.
"""
