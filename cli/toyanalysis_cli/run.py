"""Commands that make and describe stores: train, info, presets, ingest."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from toyanalysis_cli._common import fail, format_option, write_json, write_text


def _parse_set(values: tuple[str, ...]) -> dict[str, object]:
    changes: dict[str, object] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected FIELD=VALUE, got {item!r}", param_hint="--set")
        try:
            changes[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            changes[key.strip()] = raw
    return changes


@click.command()
@click.option(
    "--preset",
    "preset_name",
    metavar="NAME",
    help="Start from a named preset (see `toyanalysis presets`).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read the config from a TOML file.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="The store to write (run.zarr).",
)
@click.option("--steps", type=click.IntRange(min=1), help="Optimiser steps.")
@click.option("--seed", type=click.IntRange(min=0), help="Seed of the first replicate.")
@click.option(
    "--record", metavar="SCHEDULE", help="Steps to record: every:K, log:N, all, or S1,S2,..."
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="FIELD=VALUE",
    help="Override any config field (value parsed as JSON), e.g. --set lr=0.01.",
)
@click.option("--resume", is_flag=True, help="Continue an interrupted run in OUTPUT.")
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace OUTPUT if it is a toyanalysis store with nothing else in it.",
)
@click.option(
    "--break-lock",
    is_flag=True,
    help="Remove OUTPUT's lock file first (only when no process is writing OUTPUT).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1, max=1024),
    default=1,
    show_default=True,
    help="torch intra-op threads (at most 1024).",
)
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda", "mps", "auto"]),
    default="cpu",
    show_default=True,
    help="Where to train (auto: cuda, else mps, else cpu); --resume on the same device.",
)
def train(
    preset_name: str | None,
    config_file: Path | None,
    output: Path,
    steps: int | None,
    seed: int | None,
    record: str | None,
    sets: tuple[str, ...],
    resume: bool,
    overwrite: bool,
    break_lock: bool,
    threads: int,
    device: str,
) -> None:
    """Train a run of toy models and record its weights into OUTPUT.

    Exit status 4 when another process is writing OUTPUT; see docs/commands.md.
    """
    from toyanalysis.config import RunConfig
    from toyanalysis.presets import preset
    from toyanalysis.training import train as run_training

    if (preset_name is None) == (config_file is None):
        raise click.UsageError("give exactly one of --preset NAME or --config FILE")
    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other")
    config = preset(preset_name) if preset_name else RunConfig.from_toml(str(config_file))
    changes = _parse_set(sets)
    for key, value in (("steps", steps), ("seed", seed), ("record", record)):
        if value is not None:
            changes[key] = value
    config = config.override(**changes)
    click.echo(
        f"training {config.name}: {config.model}, n={config.n_features}, m={config.n_hidden}, "
        f"{config.n_instances} instances, {config.train.steps} steps -> {output}",
        err=True,
    )
    progress = _progress_bar(config.train.steps)
    try:
        ds = run_training(
            config,
            output,
            resume=resume,
            overwrite=overwrite,
            threads=threads,
            progress=progress.update if progress else None,
            break_lock=break_lock,
            device=device,
        )
    finally:
        if progress is not None:
            progress.close()
    click.echo(
        f"wrote {output}: {ds.sizes['step']} recorded steps x {ds.sizes['instance']} instances",
        err=True,
    )


class _Bar:
    def __init__(self, total: int) -> None:
        self._bar = click.progressbar(length=total, label="steps", file=sys.stderr)
        self._bar.__enter__()
        self._done = 0

    def update(self, done: int, total: int) -> None:
        self._bar.update(done - self._done)
        self._done = done

    def close(self) -> None:
        self._bar.__exit__(None, None, None)


def _progress_bar(total: int) -> _Bar | None:
    return _Bar(total) if sys.stderr.isatty() else None


@click.command()
@click.argument("store", type=click.Path(path_type=Path))
@format_option(("table", "json"))
def info(store: Path, fmt: str) -> None:
    """Describe what is inside STORE, after checking it (shapes, NaNs, progress)."""
    from toyanalysis.store import describe

    summary = describe(store)
    if fmt == "json":
        write_json(summary, None)
        return
    lines = [f"{store}"]
    for key, value in summary.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, list):
            value = ", ".join(map(str, value)) or "-"
        lines.append(f"  {key:<18} {value}")
    write_text("\n".join(lines), None)


@click.command(name="presets")
def presets_command() -> None:
    """List the named presets, one line each."""
    from toyanalysis.presets import list_presets

    items = list_presets()
    width = max(map(len, items))
    write_text("\n".join(f"{name:<{width}}  {text}" for name, text in items.items()), None)


def _pairs(ctx: click.Context, param: click.Parameter, items: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


@click.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o", "--output", required=True, type=click.Path(path_type=Path), help="The store to write."
)
@click.option(
    "--layout",
    metavar="AXES",
    help="Axes of W: i=instance, f=feature, h=hidden, leading s=step (ifh, ihf, fh, hf, sifh, ...); "
    "inferred from the bias when unambiguous.",
)
@click.option(
    "--model",
    metavar="MODEL",
    help="Model family, as in the store format (default: abs if there is a second matrix, "
    "else relu_output, with a warning).",
)
@click.option(
    "--rename",
    multiple=True,
    metavar="OLD=NEW",
    callback=_pairs,
    help="Read entry OLD as the known name NEW (W, b, loss, ...); OLD= ignores OLD.",
)
@click.option("--steps", metavar="S1,S2,...|every:K", help="Steps of a trajectory in one file.")
@click.option("--step", type=click.IntRange(min=0), help="Step of a single checkpoint without one.")
@click.option(
    "--as-instances",
    is_flag=True,
    help="Each SOURCE is one run (or seed): stack them as instances.",
)
@click.option("--importance", metavar="SPEC", help="A number, r^i, a,b,c, or an array file.")
@click.option("--density", metavar="SPEC", help="A number, r^i, a,b,c, or an array file.")
@click.option(
    "--along",
    multiple=True,
    metavar="NAME=AXIS",
    callback=_pairs,
    help="A 1-D importance/density lies along instance or feature (when both fit).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Attach the run config from a TOML file.",
)
@click.option(
    "--preset", "preset_name", metavar="NAME", help="Attach a named preset as the config."
)
@click.option(
    "--allow-pickle",
    is_flag=True,
    help="Load pickles (only for files you trust: they can run code).",
)
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it is a store.")
def ingest(
    sources: tuple[Path, ...],
    output: Path,
    config_file: Path | None,
    preset_name: str | None,
    **options: object,
) -> None:
    """Convert checkpoints written elsewhere (.pt, .ckpt, .safetensors, .npz, .npy) into a store."""
    import warnings

    from toyanalysis.config import RunConfig
    from toyanalysis.ingestion import IngestWarning
    from toyanalysis.ingestion import ingest as run_ingest
    from toyanalysis.presets import preset

    if not sources:
        raise fail("no SOURCE given")
    if config_file is not None and preset_name is not None:
        raise click.UsageError("give at most one of --config FILE or --preset NAME")
    config = preset(preset_name) if preset_name else None
    if config_file is not None:
        config = RunConfig.from_toml(str(config_file))
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always", IngestWarning)
        ds = run_ingest(list(sources), output, config=config, **options)  # type: ignore[arg-type]
    for warning in said:
        if issubclass(warning.category, IngestWarning):
            click.echo(f"warning: {warning.message}", err=True)
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    steps = ds.sizes["step"]
    click.echo(
        f"wrote {output}: {steps} step{'s' if steps != 1 else ''} x {ds.sizes['instance']} "
        f"instances, n={ds.sizes['feature']}, m={ds.sizes['hidden']}, model {ds.attrs['model']}, "
        f"W read as {'/'.join(ds.attrs['ingest_layout'])}",
        err=True,
    )


COMMANDS = [train, info, presets_command, ingest]
