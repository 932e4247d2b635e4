"""Warnings collected while ingesting: one line each, the same message from many files once."""

from __future__ import annotations

import warnings

from toyanalysis.errors import IngestWarning


class Notes:
    """Collects warning lines; a message repeated for many files is said once, with a count."""

    def __init__(self) -> None:
        self._where: dict[str, list[str]] = {}

    def add(self, message: str, where: str = "") -> None:
        places = self._where.setdefault(message, [])
        if where and where not in places:
            places.append(where)

    def lines(self) -> list[str]:
        out = []
        for message, places in self._where.items():
            if not places:
                out.append(message)
            elif len(places) == 1:
                out.append(f"{places[0]}: {message}")
            else:
                out.append(f"{places[0]} and {len(places) - 1} more: {message}")
        return out

    def emit(self) -> list[str]:
        lines = self.lines()
        for line in lines:
            warnings.warn(line, IngestWarning, stacklevel=3)
        return lines
