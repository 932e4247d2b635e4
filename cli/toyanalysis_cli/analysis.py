"""``toyanalysis classify``: the geometric configuration of every feature.

The command opens the store, calls :func:`toyanalysis.geometry.iter_classify`
(or ``classify`` when the whole result is needed) and prints. Long
trajectories (``--step all``) are streamed block by block to csv, json or
parquet, so memory does not grow with the number of steps.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import click

from toyanalysis.errors import ToyAnalysisError
from toyanalysis_cli._common import (
    fail,
    format_option,
    output_option,
    save_result,
    write_frame,
)

# Same values as toyanalysis.geometry.DEFAULT_* (kept literal so --help does not
# import NumPy; a test checks they agree).
NORM_THRESHOLD = 0.5
OVERLAP_TOL = 0.15


def _parse_steps(text: str) -> Any:
    text = text.strip()
    if text in ("last", "all"):
        return text
    try:
        steps = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(
            f"use last, all, or step numbers like 100,200; got {text!r}"
        ) from None
    if not steps:
        raise click.BadParameter("no step given")
    return steps


def _parse_instances(values: tuple[str, ...]) -> list[int] | None:
    if not values:
        return None
    out = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                if "-" in part:
                    low, high = part.split("-", 1)
                    out.extend(range(int(low), int(high) + 1))
                else:
                    out.append(int(part))
            except ValueError:
                raise click.BadParameter(
                    f"use instance numbers like 0,3,5 or 0-7; got {value!r}",
                    param_hint="--instance",
                ) from None
    return out


@contextmanager
def _opened(output: Path | None, binary: bool = False) -> Iterator[IO[Any]]:
    if output is None:
        if binary:
            sys.stdout.flush()
            yield sys.stdout.buffer
            sys.stdout.buffer.flush()
        else:
            yield sys.stdout
        return
    try:
        fh = open(output, "wb" if binary else "w", encoding=None if binary else "utf-8")
    except OSError as err:
        raise fail(f"cannot write {output}: {err.strerror}") from None
    with fh:
        yield fh
    click.echo(f"wrote {output}", err=True)


def _range_text(values: Any) -> str:
    import numpy as np

    values = np.asarray(values, dtype=float)
    if values.size == 0 or not np.isfinite(values).all():
        return "-"
    if np.allclose(values, values[0]):
        return f"{values[0]:.3g}"
    return f"{values[0]:.3g}..{values[-1]:.3g}"


def _table(result: Any) -> Any:
    """One row per (instance, step): sweep coordinates, D*, summary and the lowest fit."""
    import numpy as np
    import pandas as pd

    r = result.transpose("step", "instance", "feature", "config")
    rows = []
    sweep = [s for s in r.attrs.get("sweep", []) if s in r.coords]
    extra = [
        str(name)
        for name, c in r.coords.items()
        if c.dims == ("instance",) and name not in ("instance", *sweep)
    ]
    for i, instance in enumerate(r["instance"].values.tolist()):
        for s, step in enumerate(r["step"].values.tolist()):
            row: dict[str, Any] = {"instance": instance}
            for name in sweep + extra:
                value = r[name].values[i]
                row[name] = f"{value:.4g}" if isinstance(value, (float, np.floating)) else value
            for name in ("density", "importance"):
                if name in r.coords:
                    row[name] = _range_text(r[name].isel(instance=i).values)
            row["step"] = step
            if "loss" in r.data_vars:
                row["loss"] = f"{float(r['loss'].values[s, i]):.4g}"
            dstar = float(r["dimensions_per_feature"].values[s, i])
            row["D*"] = f"{dstar:.3f}" if np.isfinite(dstar) else "inf"
            row["summary"] = str(r["summary"].values[s, i])
            fits = r["config_fit"].values[s, i]
            named = (fits == fits) & (r["config_n_features"].values[s, i] > 1)
            row["min fit"] = f"{np.min(fits[named]):.2f}" if named.any() else "-"
            rows.append(row)
    return pd.DataFrame(rows)


def _write_csv(blocks: Iterator[Any], output: Path | None) -> None:
    """Stream the tidy table as CSV (pyarrow's writer when installed: ~10x faster)."""
    from toyanalysis.geometry import to_frame

    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv
    except ImportError:
        with _opened(output) as fh:
            for index, block in enumerate(blocks):
                fh.write(
                    to_frame(block).to_csv(index=False, header=index == 0, lineterminator="\n")
                )
        return
    options = pacsv.WriteOptions(quoting_style="needed", quoting_header="none")
    with _opened(output, binary=True) as fh:
        writer = schema = None
        try:
            for block in blocks:
                table = pa.Table.from_pandas(to_frame(block), preserve_index=False)
                if writer is None:
                    schema = table.schema
                    writer = pacsv.CSVWriter(fh, schema, write_options=options)
                writer.write_table(table if table.schema == schema else table.cast(schema))
        finally:
            if writer is not None:
                writer.close()


def _write_json(blocks: Iterator[Any], output: Path | None) -> None:
    from toyanalysis.geometry import to_records

    with _opened(output) as fh:
        fh.write("[")
        first = True
        for block in blocks:
            for record in to_records(block):
                fh.write("\n  " if first else ",\n  ")
                fh.write(json.dumps(record, allow_nan=False))
                first = False
        fh.write("\n]\n")


def _write_parquet(blocks: Iterator[Any], output: Path | None) -> None:
    from toyanalysis.geometry import to_frame

    if output is None:
        raise fail("--format parquet needs -o FILE (parquet is binary)")
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise fail("--format parquet needs pyarrow: pip install 'toyanalysis[io]'") from None
    writer = None
    schema = None
    try:
        for block in blocks:
            frame = to_frame(block)
            for name in ("kind", "summary"):
                frame[name] = frame[name].astype(str)
            table = pa.Table.from_pandas(frame, preserve_index=False, schema=schema)
            if writer is None:
                schema = table.schema
                writer = pq.ParquetWriter(output, schema)
            writer.write_table(table)
    except OSError as err:
        raise fail(f"cannot write {output}: {err}") from None
    finally:
        if writer is not None:
            writer.close()
    click.echo(f"wrote {output}", err=True)


@click.command("classify")
@click.argument("store", type=click.Path(path_type=Path))
@click.option(
    "--step",
    "step_spec",
    default="last",
    show_default=True,
    help="Which checkpoints: last, all (streamed, with a progress bar), or steps N[,N...].",
)
@click.option(
    "--instance",
    "instance_spec",
    multiple=True,
    help="Instances to classify, e.g. 0,3 or 0-7 (repeatable; default all).",
)
@format_option(("table", "json", "csv", "parquet"))
@output_option()
@click.option(
    "--norm-threshold",
    type=float,
    default=NORM_THRESHOLD,
    show_default=True,
    help="A feature is represented when its norm ‖W_i‖ exceeds this; else unlearned.",
)
@click.option(
    "--overlap-tol",
    type=float,
    default=OVERLAP_TOL,
    show_default=True,
    help="Features whose overlap |Ŵ_i·Ŵ_j| exceeds this share a configuration.",
)
@click.option(
    "--save",
    is_flag=True,
    help="Also write the result into the store (group analysis/classify).",
)
def classify(
    store: Path,
    step_spec: str,
    instance_spec: tuple[str, ...],
    fmt: str,
    output: Path | None,
    norm_threshold: float,
    overlap_tol: float,
    save: bool,
) -> None:
    """Say which geometric configuration each feature is in (pentagon, digon, ...).

    By default: the last step of every instance, as a table with the sweep
    coordinates. Definitions, thresholds and the JSON schema: docs/classify.md.
    """
    from toyanalysis import geometry
    from toyanalysis import store as stores

    steps = _parse_steps(step_spec)
    instances = _parse_instances(instance_spec)
    if fmt == "parquet" and output is None:
        raise fail("--format parquet needs -o FILE (parquet is binary)")
    try:
        ds = stores.open_store(store)
        progress = stores.read_progress(store)
        if progress is not None and not progress.get("complete", True):
            click.echo(
                f"note: {store} is incomplete (training running or interrupted): "
                f"classifying its {ds.sizes['step']} recorded steps",
                err=True,
            )
        options = {
            "norm_threshold": norm_threshold,
            "overlap_tol": overlap_tol,
            "steps": steps,
            "instances": instances,
        }
        bar = _Progress(ds.sizes["step"] if steps == "all" else 0)
        # iter_classify checks the options and the selection before yielding anything
        blocks: Iterator[Any] = geometry.iter_classify(ds, progress=bar.update, **options)
        invalid = _Invalid()
        blocks = invalid.watch(blocks)
        with bar:
            if save or fmt == "table":
                result = geometry.concat_blocks(list(blocks))
                if save:
                    save_result(store, result, "classify")
                blocks = iter([result])
            if fmt == "table":
                write_frame(_table(result), "table", output)
            elif fmt == "csv":
                _write_csv(blocks, output)
            elif fmt == "json":
                _write_json(blocks, output)
            else:
                _write_parquet(blocks, output)
    except ToyAnalysisError as err:
        message = str(err)
        raise fail(message if message.startswith(str(store)) else f"{store}: {message}") from None
    if invalid.count:
        step, instance = invalid.first
        raise fail(
            f"{store}: {invalid.count} checkpoint(s) have NaN or inf weights (first at step={step}, "
            f"instance={instance}); they are labelled invalid in the output"
        )


class _Invalid:
    """Counts checkpoints whose weights are not finite, as the blocks stream past."""

    def __init__(self) -> None:
        self.count = 0
        self.first: tuple[Any, Any] | None = None

    def watch(self, blocks: Iterator[Any]) -> Iterator[Any]:
        import numpy as np

        for block in blocks:
            summary = block["summary"].transpose("step", "instance").values.astype(str)
            bad = np.char.startswith(summary, "invalid")
            if bad.any():
                self.count += int(bad.sum())
                if self.first is None:
                    s, i = np.argwhere(bad)[0]
                    self.first = (block["step"].values[s], block["instance"].values[i])
            yield block


class _Progress:
    """A progress bar on stderr for ``--step all``; silent otherwise."""

    def __init__(self, length: int) -> None:
        self._bar = (
            click.progressbar(length=length, label="classifying", file=sys.stderr, show_pos=True)
            if length
            else None
        )

    def __enter__(self) -> _Progress:
        if self._bar is not None:
            self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def update(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)


COMMANDS = [classify]
