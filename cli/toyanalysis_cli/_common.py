"""Helpers shared by the commands: error handling and result output.

Results go to stdout (or ``-o FILE``); progress and messages go to stderr.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import click

from toyanalysis.errors import EXIT_BAD_INPUT, EXIT_IO, ToyAnalysisError


class UserError(click.ClickException):
    """A one-line error for the user; exit status 1 unless told otherwise."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            setattr(self, "exit_code", exit_code)  # noqa: B010 (click declares it a ClassVar)


def fail(message: str, exit_code: int | None = None) -> UserError:
    """A one-line error. Raised while handling another error, it keeps that error's status.

    So a command that rewords a library error (``except ToyAnalysisError``) or an
    OS error still exits with 3 (I/O) or 4 (store in use) where those apply.
    """
    if exit_code is None:
        current = sys.exc_info()[1]
        if isinstance(current, ToyAnalysisError):
            exit_code = current.exit_code
        elif isinstance(current, OSError):
            exit_code = EXIT_IO
    return UserError(message, exit_code)


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM, so that writers release their store."""


# optional dependency (top-level import name) -> the extra that installs it
EXTRAS = {
    "holoviews": "plots",
    "bokeh": "plots",
    "panel": "plots",
    "safetensors": "io",
    "pyarrow": "io",
}
_INPUTS = "toyanalysis.inputs"
_COMMAND = "toyanalysis.command"
_OVERWRITE = "toyanalysis.overwrite_output"


class Group(click.Group):
    """A click group that turns every error a user can cause into one clean line.

    The one place that maps errors to exit statuses (docs/commands.md):
    library errors (:class:`ToyAnalysisError`, status 1, or their own:
    3 for I/O, 4 for a store in use), OS errors (3), missing memory (1), a
    missing optional dependency (1, naming the extra to install), SIGINT
    (130) and SIGTERM (143). Any other error raised while a command reads a
    store (e.g. a chunk that zarr cannot decode, which surfaces only when
    the data is computed) is attributed by reading the store chunk by chunk
    (:func:`toyanalysis.store.explain_failure`): one line naming the store
    and the variable. Errors that no input explains are bugs and keep their
    traceback.

    Every command added also gets its file output (``-o``) checked before it
    runs: an existing file is not replaced without ``--overwrite`` (an option
    added here to commands that have none), and nothing is written inside a
    store.
    """

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        _guard(cmd)
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context) -> Any:
        with _signals():
            try:
                return super().invoke(ctx)
            except click.exceptions.ClickException:
                raise
            except (click.exceptions.Exit, click.exceptions.Abort):
                raise
            except Exception as err:
                raise translate(err, ctx.meta) from None
            except KeyboardInterrupt:
                click.echo("interrupted", err=True)
                sys.exit(130)
            except Terminated:
                click.echo("terminated", err=True)
                sys.exit(143)


def translate(err: Exception, meta: dict[str, Any]) -> BaseException:
    """The one-line error for ``err`` (or ``err`` itself when it is a bug, not bad input)."""
    command = meta.get(_COMMAND, "this command")
    if isinstance(err, ToyAnalysisError):
        return UserError(str(err), getattr(err, "exit_code", EXIT_BAD_INPUT))
    if isinstance(err, ModuleNotFoundError) and err.name:
        top = err.name.split(".")[0]
        if top in EXTRAS:
            return UserError(
                f"`toyanalysis {command}` needs {top}, which is not installed: "
                f"pip install 'toyanalysis[{EXTRAS[top]}]'"
            )
        return err
    if isinstance(err, MemoryError):
        text = str(err).strip().splitlines()
        return UserError(f"not enough memory: {text[0] if text else 'an allocation failed'}")
    allocation = _failed_allocation(err)
    if allocation is not None:
        return UserError(f"not enough memory: {allocation}")
    if isinstance(err, OSError):
        if err.errno == errno.EPIPE:  # the reader went away (``| head``): stop quietly
            _silence_stdout()
            return click.exceptions.Exit(141)
        if err.filename is None:  # a write to stdout or stderr
            _silence_stdout()
            return UserError(f"cannot write the output: {err.strerror or err}", EXIT_IO)
        what = err.strerror or str(err)
        target = f"{err.filename}" + (f" -> {err.filename2}" if err.filename2 else "")
        return UserError(f"{target}: {what}", EXIT_IO)
    from toyanalysis.store import explain_failure

    inputs = meta.get(_INPUTS, [])
    try:
        damage = explain_failure(inputs, err) if inputs else None
    except Exception:
        damage = None
    if damage is not None:
        return UserError(damage)
    return err


def _failed_allocation(err: Exception) -> str | None:
    """What torch failed to allocate, when ``err`` is its out-of-memory error (else None).

    torch raises a plain RuntimeError (``DefaultCPUAllocator: can't allocate
    memory: you tried to allocate N bytes``) or ``torch.OutOfMemoryError``
    (a RuntimeError too) for CUDA, not a MemoryError.
    """
    if not isinstance(err, RuntimeError):
        return None
    text = str(err).strip()
    cpu = re.search(r"can't allocate memory: (you tried to allocate \d+ bytes)", text)
    if cpu:
        return f"{cpu.group(1)} (torch, CPU)"
    if type(err).__name__ == "OutOfMemoryError" or "CUDA out of memory" in text:
        first = text.splitlines()[0] if text else "an allocation failed"
        return f"{first.split('. ')[0]} (torch, GPU)"
    return None


def _silence_stdout() -> None:
    """After a failed write to stdout, drop what is buffered so exit does not fail again."""
    with contextlib.suppress(Exception):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


@contextlib.contextmanager
def _signals() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` in the main thread while a command runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _store_outputs(cmd: click.Command) -> bool:
    """Whether the command's ``-o`` is a store it writes (train, ingest), not a result file."""
    return any(p.name == "overwrite" for p in cmd.params)


def _guard(cmd: click.Command) -> None:
    """Record a command's inputs for error messages; check its output file before it runs."""
    if getattr(cmd, "_toyanalysis_guarded", False):
        return
    names = {p.name for p in cmd.params}
    file_output = "output" in names and not _store_outputs(cmd)
    if file_output:
        cmd.params.append(overwrite_output_option())
    original = cmd.invoke

    def invoke(ctx: click.Context) -> Any:
        ctx.meta[_COMMAND] = ctx.info_name or cmd.name
        ctx.meta[_INPUTS] = [
            value
            for key, value in ctx.params.items()
            if key != "output" and isinstance(value, Path)
        ] + [
            v
            for key, value in ctx.params.items()
            if isinstance(value, tuple)
            for v in value
            if isinstance(v, Path)
        ]
        if file_output and ctx.params.get("output") is not None:
            check_output(Path(ctx.params["output"]))
        elif file_output or not ("output" in names or _store_outputs(cmd)):
            _check_stdout(file_output)  # the result goes to stdout (info, presets, no -o)
        return original(ctx)

    cmd.invoke = invoke  # type: ignore[method-assign]
    cmd._toyanalysis_guarded = True  # type: ignore[attr-defined]


def _check_stdout(has_output: bool) -> None:
    """Refuse to run a command whose result goes to stdout when stdout is closed (``>&-``).

    Python then has no ``sys.stdout`` and every write is silently dropped: the
    command would exit 0 having printed nothing. Status 3, as for a write to
    stdout that the operating system refuses.
    """
    message = "cannot write the output: stdout is closed" + (
        " (give -o FILE, or redirect it)" if has_output else ""
    )
    stream = sys.stdout
    if stream is None:
        raise fail(message, EXIT_IO)
    try:
        fileno = stream.fileno()
    except (AttributeError, OSError, ValueError):  # a test runner's stream, not a file
        return
    try:
        os.fstat(fileno)
    except OSError:
        raise fail(message, EXIT_IO) from None


def overwrite_output_option() -> click.Option:
    """``--overwrite`` for commands that write a result file (kept in ``ctx.meta``)."""

    def remember(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
        ctx.meta[_OVERWRITE] = bool(value)
        return value

    return click.Option(
        ["--overwrite"],
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=remember,
        help="Replace OUTPUT if it exists (never a file inside a store).",
    )


def check_output(output: Path, overwrite: bool | None = None) -> None:
    """Refuse to write a result to ``output`` if it exists (without --overwrite) or is in a store."""
    if overwrite is None:
        ctx = click.get_current_context(silent=True)
        overwrite = bool(ctx is not None and ctx.meta.get(_OVERWRITE))
    absolute = Path(os.path.abspath(output))
    _check_folder(output, absolute.parent)
    for parent in absolute.parents:
        if (parent / "zarr.json").is_file() or (parent / ".zgroup").is_file():
            raise fail(
                f"{output}: is inside the Zarr store {parent}; refusing to write a result there "
                "(use --save to keep a result in the store)"
            )
    if os.path.lexists(output):
        if os.path.isdir(output):
            raise fail(f"{output}: is a folder; give a file name")
        if _is_regular(output) and not overwrite:
            raise fail(f"{output}: already exists (pass --overwrite to replace it)")


def _check_folder(output: Path, folder: Path) -> None:
    """Refuse, before any work, a result file whose folder is missing or is not a folder.

    Exit status 3, as for the operating system refusing the write (a result is
    never written after a long computation only to fail there, and no folder
    is created for it).
    """
    if folder.is_dir():
        return
    blocked = any(os.path.lexists(p) and not p.is_dir() for p in [folder, *folder.parents])
    reason = "is not a folder" if blocked else "no such folder"
    raise fail(f"cannot write {output}: {output.parent}: {reason}", EXIT_IO)


def _is_regular(path: Path) -> bool:
    """A plain file (or a link to one, or a dangling link), not a device or pipe (/dev/null)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return True


FORMATS_TABLE = ("table", "json", "csv")


def format_option(choices: Sequence[str] = FORMATS_TABLE, default: str = "table") -> Callable:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(list(choices)),
        default=default,
        show_default=True,
        help="Output format: a readable table, JSON (schema in docs/), or a tidy table.",
    )


def output_option() -> Callable:
    return click.option(
        "-o",
        "--output",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Write the result to this file instead of stdout.",
    )


def classifier_options(command: Callable) -> Callable:
    """``--norm-threshold`` and ``--overlap-tol`` (None: classify's defaults)."""
    command = click.option(
        "--overlap-tol",
        type=float,
        default=None,
        help="Classifier: overlap graph edge threshold (classify's default).",
    )(command)
    return click.option(
        "--norm-threshold",
        type=float,
        default=None,
        help="Classifier: a feature is represented above this norm (classify's default).",
    )(command)


def save_option(name: str) -> Callable:
    return click.option(
        "--save", is_flag=True, help=f"Also write the result into STORE under analysis/{name}."
    )


def save_result(store: Path, result: Any, name: str) -> None:
    """Write an analysis result into the store (group ``analysis/<name>``) and say where."""
    from toyanalysis.store import save_analysis

    group = save_analysis(store, result, name)
    click.echo(f"saved {store}/{group}", err=True)


def write_text(text: str, output: Path | None) -> None:
    """Write text to the output file (atomically, see :func:`write_file`), or to stdout."""
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    write_file(output, (text if text.endswith("\n") else text + "\n").encode("utf-8"))
    click.echo(f"wrote {output}", err=True)


def write_file(output: Path, data: bytes, overwrite: bool | None = None) -> None:
    """Write ``data`` to ``output`` through a fresh temporary file beside it, then rename.

    An existing ``output`` is refused unless ``--overwrite`` was given (or
    ``overwrite=True``); a reader never sees half a file, a failed write
    leaves the old file as it was, and a planted link at a temporary name is
    never followed (``tempfile.mkstemp`` creates it exclusively).
    """
    try:
        with replacing(output, overwrite) as target:
            if target == output:  # a device or pipe, written through
                with open(target, "wb") as fh:
                    fh.write(data)
            else:  # the temporary file mkstemp made: never through a link planted since
                fd = os.open(target, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
    except OSError as err:
        raise fail(f"cannot write {output}: {err.strerror}", EXIT_IO) from None


def _umask() -> int:
    """The process's umask (read once, at import, before any thread could create a file)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()


@contextlib.contextmanager
def replacing(output: Path, overwrite: bool | None = None) -> Iterator[Path]:
    """A fresh temporary path beside ``output`` to write; renamed into place once written.

    For :func:`write_file` and for writers that take a path (``write_report``):
    a reader never sees half a file and a failure leaves an old file as it
    was. A device or pipe (``/dev/null``) is written through. Refused as by
    :func:`check_output`.
    """
    check_output(output, overwrite)
    if os.path.exists(output) and not _is_regular(output):
        yield output
        return
    folder = output.parent if str(output.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=folder)
    except OSError as err:
        raise fail(f"cannot write {output}: {err.strerror}", EXIT_IO) from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # as a plain open() would, not mkstemp's 0600
        os.replace(tmp, output)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json(obj: Any, output: Path | None) -> None:
    write_text(json.dumps(obj, indent=2, allow_nan=False, default=_json_default), output)


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_frame(frame: Any, fmt: str, output: Path | None) -> None:
    """Write a pandas DataFrame as ``table``, ``csv`` or ``parquet``."""
    if fmt == "csv":
        write_text(frame.to_csv(index=False), output)
    elif fmt == "parquet":
        if output is None:
            raise fail("--format parquet needs -o FILE (parquet is binary)")
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise fail("--format parquet needs pyarrow: pip install 'toyanalysis[io]'") from None
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        write_file(output, buffer.getvalue())
        click.echo(f"wrote {output}", err=True)
    else:
        write_text(frame.to_string(index=False), output)


def open_checked(store: Path) -> Any:
    """Open a store, refusing NaN or inf weights with one line naming where they are."""
    from toyanalysis.store import check_finite, open_store

    ds = open_store(store)
    check_finite(ds, str(store))
    return ds
