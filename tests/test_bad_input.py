"""Bad input found by trying every command as a new user: one line, the right status.

Each test is a case that printed a traceback, exited 0 on bad input, or did
its work before refusing (the review of issues 8-10 and 15).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from toyanalysis_cli import _common

from toyanalysis.errors import ConfigError, IngestError


def one_error_line(result) -> str:
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


# --- torch's out-of-memory errors are RuntimeErrors, not MemoryErrors --------------------
def test_torch_cpu_allocation_failure_is_one_line() -> None:
    """``llc STORE --batch-size 1000000000000`` printed torch's RuntimeError with a traceback."""
    err = RuntimeError(
        "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
        "memory: you tried to allocate 20000000000000 bytes. Error code 12 (Cannot allocate memory)"
    )
    out = _common.translate(err, {})
    assert isinstance(out, _common.UserError) and out.exit_code == 1
    assert out.message == (
        "not enough memory: you tried to allocate 20000000000000 bytes (torch, CPU)"
    )


def test_torch_cuda_out_of_memory_is_one_line() -> None:
    class OutOfMemoryError(RuntimeError):  # torch.OutOfMemoryError, without importing torch
        pass

    err = OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has ...")
    out = _common.translate(err, {})
    assert isinstance(out, _common.UserError)
    assert out.message == "not enough memory: CUDA out of memory (torch, GPU)"


def test_other_runtime_errors_stay_bugs() -> None:
    err = RuntimeError("shape mismatch")
    assert _common.translate(err, {}) is err


# --- a result file's folder is checked before any work ------------------------------------
@pytest.mark.parametrize("command", ["classify", "phases", "neurons", "llc", "phase-diagram"])
def test_output_into_a_missing_folder_is_refused_first(cli, tmp_path: Path, command) -> None:
    """Refused before the store is even opened (it used to fail only after the work)."""
    output = tmp_path / "nodir" / "result.json"
    result = cli(command, tmp_path / "nope.zarr", "-o", output)
    assert result.exit_code == 3
    assert (
        one_error_line(result) == f"Error: cannot write {output}: {output.parent}: no such folder"
    )


def test_output_under_a_plain_file_is_refused(cli, tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("hi")
    output = tmp_path / "plain" / "x.csv"
    result = cli("classify", tmp_path / "nope.zarr", "-o", output)
    assert result.exit_code == 3
    assert one_error_line(result).endswith(f"{output.parent}: is not a folder")


def test_report_does_not_create_a_missing_folder(cli, tmp_path: Path) -> None:
    """``report STORE -o nodir/x.html`` exited 0, having made the folder."""
    result = cli("report", tmp_path / "nope.zarr", "-o", tmp_path / "nodir" / "x.html")
    assert result.exit_code == 3
    assert not (tmp_path / "nodir").exists()


# --- the report is written atomically, as every result file --------------------------------
def _fake_report(monkeypatch, fail: bool) -> list[Path]:
    import toyanalysis_cli.report

    import toyanalysis.report

    written: list[Path] = []

    def write_report(store, output, params=None, **kwargs):
        path = Path(output)
        written.append(path)
        path.write_text("<html>half")
        if fail:
            raise KeyboardInterrupt
        path.write_text("<html>new</html>")
        return path

    monkeypatch.setattr(toyanalysis.report, "write_report", write_report)
    monkeypatch.setattr(toyanalysis_cli.report, "open_checked", lambda store: None)
    return written


def test_report_replaces_the_page_only_once_written(cli, tmp_path: Path, monkeypatch) -> None:
    page = tmp_path / "r.html"
    page.write_text("old")
    written = _fake_report(monkeypatch, fail=True)
    result = cli("report", tmp_path / "s.zarr", "-o", page, "--overwrite")
    assert result.exit_code == 130
    assert written and written[0] != page  # a temporary file beside it
    assert page.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]


def test_report_page_is_renamed_into_place(cli, tmp_path: Path, monkeypatch) -> None:
    page = tmp_path / "r.html"
    _fake_report(monkeypatch, fail=False)
    result = cli("report", tmp_path / "s.zarr", "-o", page)
    assert result.exit_code == 0, result.output
    assert page.read_text() == "<html>new</html>"
    umask = os.umask(0)
    os.umask(umask)
    assert page.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]


# --- stdout closed: the result would be dropped silently (exit 0) --------------------------
def _closed_stdout(*args: str) -> subprocess.CompletedProcess:
    """The command run with its stdout closed (``toyanalysis ARGS >&-``)."""
    return subprocess.run(
        ["sh", "-c", 'exec "$0" -m toyanalysis_cli.main "$@" >&-', sys.executable, *args],
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("args", [("presets",), ("info", "nope.zarr")])
def test_stdout_closed_is_an_error(args) -> None:
    result = _closed_stdout(*args)
    assert result.returncode == 3, result.stderr
    assert result.stderr.strip() == "Error: cannot write the output: stdout is closed"


def test_stdout_closed_names_the_output_option(tmp_path: Path) -> None:
    result = _closed_stdout("classify", str(tmp_path / "nope.zarr"))
    assert result.returncode == 3, result.stderr
    assert "stdout is closed (give -o FILE, or redirect it)" in result.stderr


def test_stdout_closed_is_fine_with_a_result_file(tmp_path: Path) -> None:
    """With -o the result does not go to stdout: the run goes on (here, to the store error)."""
    result = _closed_stdout("classify", str(tmp_path / "nope.zarr"), "-o", str(tmp_path / "x"))
    assert result.returncode == 1
    assert "no such store" in result.stderr


# --- integer parameters: their bounds and their size -----------------------------------------
def test_integer_bounds_are_written_as_integers() -> None:
    from toyanalysis.params import PhaseParams

    with pytest.raises(ConfigError, match=r"^min_records must be an integer >= 1, got 0$"):
        PhaseParams(min_records=0)


@pytest.mark.parametrize("value", [10**20, 1e30, float("inf"), float("nan")])
def test_huge_or_infinite_integers_are_refused_plainly(value) -> None:
    """10**20 was "must be an integer" (it is one); inf raised OverflowError."""
    from toyanalysis.params import PhaseParams

    with pytest.raises(ConfigError, match=r"^min_records must be an integer >= 1"):
        PhaseParams(min_records=value)


def test_huge_integer_option_is_one_line(cli, tmp_path: Path) -> None:
    result = cli("phases", tmp_path / "nope.zarr", "--min-records", "99999999999999999999")
    assert "at most 2**63 - 1" in one_error_line(result)


# --- ingest: a step beyond int64 -------------------------------------------------------------
@pytest.mark.parametrize(
    "changes",
    [
        {"step": 10**23},
        {"step": -1},
        {"steps": "1,-2"},
        {"steps": "every:99999999999999999999"},
        {"steps": (1, 10**30)},
    ],
)
def test_ingest_steps_out_of_int64_are_refused(changes) -> None:
    from toyanalysis._ingest._options import Options

    with pytest.raises(IngestError, match=r"must be a step number in 0\.\.2"):
        Options(**changes)


def test_ingest_every_k_past_int64_is_refused() -> None:
    from toyanalysis._ingest._steps import expand_spec

    assert expand_spec("every:5", 3, "w.npz").tolist() == [0, 5, 10]
    with pytest.raises(IngestError, match="goes past 2"):
        expand_spec(f"every:{2**62}", 3, "w.npz")


def test_ingest_huge_step_option_is_one_line(cli, tmp_path: Path) -> None:
    """``ingest w.npz --layout ifh --step 99999999999999999999999``: OverflowError traceback."""
    source = tmp_path / "w.npz"
    np.savez(source, W=np.ones((3, 5, 2)))
    result = cli(
        "ingest", source, "--layout", "ifh", "-o", tmp_path / "i.zarr",
        "--step", "99999999999999999999999",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "--step must be a step number in 0..2**63 - 1" in one_error_line(result)
    assert not (tmp_path / "i.zarr").exists()


def test_threads_and_instance_ranges_are_bounded(cli, tmp_path):
    """--threads 100000 crashed libgomp (a segfault); a reversed range selected nothing."""
    threads = cli("train", "--preset", "intro", "-o", tmp_path / "t.zarr", "--threads", "100000")
    assert threads.exit_code == 2 and "--threads" in threads.stderr
    assert not (tmp_path / "t.zarr").exists()
    intro = Path(__file__).resolve().parent.parent / "datasets" / "intro.zarr"
    reversed_range = cli("classify", intro, "--instance", "3-1")
    assert reversed_range.exit_code == 2 and "0-7" in reversed_range.stderr


def test_classify_into_a_closed_pipe_ends_quietly_with_141():
    """``classify --step all --format csv | head`` said "cannot write None" and exited 3."""
    import subprocess
    import sys

    intro = Path(__file__).resolve().parent.parent / "datasets" / "intro.zarr"
    code = "from toyanalysis_cli.main import run; run()"
    args = [sys.executable, "-c", code, "classify", str(intro), "--step", "all", "--format", "csv"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().startswith(b"instance,step")
    proc.stdout.close()  # the reader goes away, as head does
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 141 and b"Error" not in stderr and b"Traceback" not in stderr
