"""What the user told ingest, checked once when the options are built."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from toyanalysis._ingest._names import check_rename_targets
from toyanalysis._ingest._steps import check_spec, check_step
from toyanalysis._ingest._values import ALONG
from toyanalysis.config import MODELS, RunConfig
from toyanalysis.errors import IngestError

AXES = "sifh"  # step, instance, feature, hidden
ALONG_NAMES = ("importance", "density")


def check_layout(layout: str) -> str:
    """A layout of W: distinct letters of ``sifh`` with f and h, s (the step axis) first.

    >>> check_layout("sihf")
    'sihf'
    """
    ok = (
        set(layout) <= set(AXES)
        and len(set(layout)) == len(layout)
        and {"f", "h"} <= set(layout)
        and "s" not in layout[1:]
    )
    if not ok:
        raise IngestError(
            f"unknown layout {layout!r}: use the letters of W's axes in order, i instance, "
            f"f feature, h hidden, and a leading s for a step axis (ifh, ihf, fh, hf, sifh, sihf, ...)"
        )
    return layout


@dataclass(frozen=True, kw_only=True)
class Options:
    """The options of :func:`toyanalysis.ingest`, validated at construction."""

    layout: str | None = None
    model: str | None = None
    rename: Mapping[str, str] = field(default_factory=dict)
    steps: str | tuple[int, ...] | None = None
    step: int | None = None
    as_instances: bool = False
    importance: Any = None
    density: Any = None
    along: Mapping[str, str] = field(default_factory=dict)
    config: RunConfig | None = None
    allow_pickle: bool = False

    def __post_init__(self) -> None:
        if self.layout is not None:
            check_layout(self.layout)
        if self.model is not None and self.model not in MODELS:
            raise IngestError(f"unknown model {self.model!r}; use one of {', '.join(MODELS)}")
        if self.config is not None and not isinstance(self.config, RunConfig):
            raise IngestError(f"config must be a RunConfig, got {type(self.config).__name__}")
        if self.config is not None and self.model not in (None, self.config.model):
            raise IngestError(f"--model {self.model} but the config's model is {self.config.model}")
        check_rename_targets(self.rename)
        object.__setattr__(self, "rename", dict(self.rename))
        object.__setattr__(self, "steps", check_spec(self.steps))
        if self.step is not None:
            object.__setattr__(self, "step", check_step(self.step, "--step"))
        if self.step is not None and self.steps is not None:
            raise IngestError(
                "--step (one checkpoint) and --steps (a trajectory) exclude each other"
            )
        for name, axis in self.along.items():
            if name not in ALONG_NAMES or axis not in ALONG:
                raise IngestError(
                    f"--along {name}={axis}: use importance or density = instance or feature"
                )

    @property
    def declared_model(self) -> str | None:
        """The model the user named (directly or through the config), if any."""
        return self.config.model if self.config is not None else self.model
