"""The ``toyanalysis`` command line: a thin click shell over the library."""
