"""Private parts of :func:`toyanalysis.ingest`: reading, names, steps, shapes, assembly.

``_read`` turns a file into flat entries, ``_names`` finds the known names
among them, ``_steps`` says which optimiser step each checkpoint is,
``_shapes`` brings every array to the store's axes, ``_values`` reads
importance and density, and ``_assemble`` joins checkpoints into runs, runs
into instances, and attaches what the checkpoints lack.
"""
