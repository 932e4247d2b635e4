"""The errors toyanalysis raises for bad input.

Every error a user can cause (a missing or corrupt store, wrong shapes, NaNs,
an unknown preset, a bad option) is a :class:`ToyAnalysisError` whose message
is one line naming the file, the variable and the shapes involved. The command
line prints that line and exits with the error's ``exit_code`` (see
``docs/commands.md``); it never shows a traceback for these.
"""

from __future__ import annotations

#: Exit statuses of the command line (documented in docs/commands.md).
EXIT_BAD_INPUT = 1
EXIT_USAGE = 2
EXIT_IO = 3
EXIT_IN_USE = 4


class ToyAnalysisError(Exception):
    """Base class: bad input that the user can fix. The message is one line."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(ToyAnalysisError, ValueError):
    """A configuration, preset or option is invalid."""


class StoreError(ToyAnalysisError):
    """A store is missing, unreadable, or does not follow the store format."""


class StoreInUseError(StoreError):
    """Another process holds the store's writer lock."""

    exit_code = EXIT_IN_USE


class StoreIOError(StoreError):
    """The operating system refused a read or write (full disk, read-only, permissions)."""

    exit_code = EXIT_IO


class IngestError(ToyAnalysisError):
    """Checkpoints written elsewhere could not be converted."""


class PlotError(ToyAnalysisError, ValueError):
    """A view does not apply to this store (wrong model, missing variable, bad selection)."""


class IngestWarning(UserWarning):
    """Something ingest assumed or left out; the message is one line."""


class LLCWarning(UserWarning):
    """Some estimates are unreliable (negative, divergent chains, or chains that disagree)."""
