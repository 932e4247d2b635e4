"""The errors toyanalysis raises for bad input.

Every error a user can cause (a missing or corrupt store, wrong shapes, NaNs,
an unknown preset, a bad option) is a :class:`ToyAnalysisError` whose message
is one line naming the file, the variable and the shapes involved. The command
line prints that line and exits with status 1; it never shows a traceback for
these.
"""

from __future__ import annotations


class ToyAnalysisError(Exception):
    """Base class: bad input that the user can fix. The message is one line."""


class ConfigError(ToyAnalysisError, ValueError):
    """A configuration, preset or option is invalid."""


class StoreError(ToyAnalysisError):
    """A store is missing, unreadable, or does not follow the store format."""


class IngestError(ToyAnalysisError):
    """Checkpoints written elsewhere could not be converted."""
