"""``toyanalysis classify``: the geometric configuration of every feature.

The command parses its options (the thresholds are generated from
:class:`toyanalysis.params.ClassifyParams`), calls
:func:`toyanalysis.geometry.classify` on the lazily opened store and hands the
lazy result to :func:`toyanalysis.geometry.write`, which computes and writes
it block by block of steps, so ``--step all`` streams in bounded memory.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from toyanalysis._minima import MinimaParams
from toyanalysis.errors import ToyAnalysisError
from toyanalysis.params import ClassifyParams
from toyanalysis_cli._common import fail, format_option, output_option, save_result
from toyanalysis_cli._params import params_from, params_options


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
    out: list[int] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                if "-" in part:
                    low, high = (int(x) for x in part.split("-", 1))
                    if high < low:
                        raise ValueError
                    out.extend(range(low, high + 1))
                else:
                    out.append(int(part))
            except ValueError:
                raise click.BadParameter(
                    f"use instance numbers like 0,3,5 or 0-7; got {value!r}",
                    param_hint="--instance",
                ) from None
    return out


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
@params_options(ClassifyParams)
@click.option(
    "--best-of",
    is_flag=True,
    help="Classify only the best seed (lowest loss) of each sweep cell.",
)
@click.option(
    "--flag-minima",
    is_flag=True,
    help="Add a stuck column (and loss_gap): seeds well above their cell's best loss.",
)
@params_options(MinimaParams)
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
    save: bool,
    best_of: bool,
    flag_minima: bool,
    **kwargs: Any,
) -> None:
    """Say which geometric configuration each feature is in (pentagon, digon, ...).

    By default: the last step of every instance, as a table with the sweep
    coordinates. Definitions, thresholds and the JSON schema: docs/classify.md.
    """
    params = params_from(ClassifyParams, kwargs)
    minima = params_from(MinimaParams, kwargs) if best_of or flag_minima else None
    steps = _parse_steps(step_spec)
    instances = _parse_instances(instance_spec)
    if fmt == "parquet" and output is None:
        raise fail("--format parquet needs -o FILE (parquet is binary)")
    try:
        written = _run(
            store, params, steps, instances, fmt, output, save, (minima, best_of, flag_minima)
        )
    except ToyAnalysisError as err:
        message = str(err)
        raise fail(message if message.startswith(str(store)) else f"{store}: {message}") from None
    # OSErrors go to the command group: a closed pipe (``| head``) ends quietly
    # with 141, any other is one line naming the file, exit 3
    if output is not None:
        click.echo(f"wrote {output}", err=True)
    if written.invalid:
        step, instance = written.first_invalid or (None, None)
        raise fail(
            f"{store}: {written.invalid} checkpoint(s) have NaN or inf weights (first at "
            f"step={step}, instance={instance}); they are labelled invalid in the output"
        )


def _run(
    store: Path,
    params: ClassifyParams,
    steps: Any,
    instances: Any,
    fmt: str,
    output: Path | None,
    save: bool,
    minima: tuple[MinimaParams | None, bool, bool] = (None, False, False),
) -> Any:
    """Open, classify (lazily), save when asked, and write: one library call each."""
    from toyanalysis import geometry
    from toyanalysis import store as stores

    ds = stores.open_store(store)
    progress = stores.read_progress(store)
    if progress is not None and not progress.get("complete", True):
        click.echo(
            f"note: {store} is incomplete (training running or interrupted): "
            f"classifying its {ds.sizes['step']} recorded steps",
            err=True,
        )
    flagged = None
    if minima[0] is not None:  # --best-of / --flag-minima: cells among the chosen instances
        from toyanalysis._minima import annotate, best_of, local_minima

        flagged = local_minima(ds, minima[0], instances=instances)
        if minima[1]:
            ds, instances = best_of(ds, minima=flagged), None
    result = geometry.classify(ds, params, steps=steps, instances=instances)
    if flagged is not None and minima[2]:
        result = annotate(result, flagged)
    if save:
        result = result.compute()
        save_result(store, result, "classify")
    with _Progress(ds.sizes["step"] if steps == "all" else 0) as bar:
        return geometry.write(result, output, fmt, progress=bar.update)


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

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def update(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)


COMMANDS = [classify]
