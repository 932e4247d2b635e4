"""Stores that cannot be hijacked, raced or half-made (issue 9).

One test (or parametrised family) per defect of the issue, each failing on the
code before the fix: a planted snapshot payload, two writers, resume of a
complete store, a kill at every step of creation and of the commit protocol,
corrupt chunks and malformed attributes in every reading command, read-only
and full file systems, ``--overwrite`` of folders holding foreign files,
analysis outputs replacing files, flushing, and bounds on sizes.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from toyanalysis import open_store, preset, store, train, training
from toyanalysis._lock import StoreLock, lock_path
from toyanalysis.errors import StoreError, StoreInUseError, StoreIOError

# 7 records (every 50 of 300 steps), one chunk; the run takes well under a second
CONFIG = preset("intro").override(steps=300, record="every:50", batch_size=128)
ARGS = ["--preset", "intro", "--steps", "300", "--record", "every:50", "--set", "batch_size=128"]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> xr.Dataset:
    """The uninterrupted run every interrupted one must end equal to."""
    path = tmp_path_factory.mktemp("full") / "full.zarr"
    return train(CONFIG, path).load()


def assert_same_run(ds: xr.Dataset, full: xr.Dataset) -> None:
    for var in ("W", "b", "loss"):
        np.testing.assert_array_equal(ds[var].values, full[var].values)
    assert ds["step"].values.tolist() == full["step"].values.tolist()


def files_of(path: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
    }


def leftovers(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}."))


class Killed(BaseException):
    """Stands for a SIGKILL in in-process fault injection (nothing after it runs)."""


def kill_at(monkeypatch, point: str, occurrence: int = 1) -> None:
    seen = {"n": 0}

    def fault(name: str) -> None:
        if name == point:
            seen["n"] += 1
            if seen["n"] == occurrence:
                raise Killed(point)

    monkeypatch.setattr(store, "_fault", fault)


def one_error_line(result) -> str:
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def run_cli(*args: str, cwd: Path | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "toyanalysis_cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        **kwargs,
    )


# --- 1. the resume snapshot never runs code ----------------------------------------------
class Payload:
    """Unpickling this creates the marker file: the proof that pickle ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def interrupted(path: Path, monkeypatch, point: str = "commit:committed", occurrence: int = 3):
    kill_at(monkeypatch, point, occurrence)
    with pytest.raises((Killed, StoreError)):
        train(CONFIG, path, flush_seconds=0.0)
    monkeypatch.setattr(store, "_fault", lambda name: None)
    assert store.read_progress(path)["complete"] is False


def test_snapshot_is_arrays_and_json_only(tmp_path, monkeypatch, full):
    path = tmp_path / "run.zarr"
    interrupted(path, monkeypatch)
    snapshot = path / "progress" / store.SNAPSHOT
    assert not (path / "progress" / "resume.pkl").exists()
    with np.load(snapshot, allow_pickle=False) as npz:  # loads without pickle
        assert all(npz[name].dtype != object for name in npz.files)
        meta = json.loads(npz[store.SNAPSHOT_META].tobytes())
    assert meta["run_id"] == open_store(path).attrs["run_id"]
    assert_same_run(train(CONFIG, path, resume=True), full)


def test_planted_pickle_snapshot_is_never_executed(tmp_path, monkeypatch):
    path = tmp_path / "run.zarr"
    interrupted(path, monkeypatch)
    marker = tmp_path / "pwned"
    (path / "progress" / store.SNAPSHOT).unlink()
    (path / "progress" / "resume.pkl").write_bytes(pickle.dumps(Payload(str(marker))))
    with pytest.raises(StoreError, match="old pickle format"):
        train(CONFIG, path, resume=True)
    assert not marker.exists()


def test_planted_object_array_in_the_snapshot_is_refused_unexecuted(tmp_path, monkeypatch):
    path = tmp_path / "run.zarr"
    interrupted(path, monkeypatch)
    marker = tmp_path / "pwned"
    snapshot = path / "progress" / store.SNAPSHOT
    with np.load(snapshot, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["params.W"] = np.array([Payload(str(marker))], dtype=object)
    with open(snapshot, "wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(StoreError, match=r"resume snapshot .* is invalid"):
        train(CONFIG, path, resume=True)
    assert not marker.exists()


@pytest.mark.parametrize(
    "tamper, reason",
    [
        (lambda a, m: a.update({"params.W": a["params.W"][:, :1]}), "shape"),
        (lambda a, m: a.update({"adam_m.b": np.full_like(a["adam_m.b"], np.nan)}), "NaN"),
        (lambda a, m: m.update({"run_id": "someone-else"}), "another run"),
        (lambda a, m: m.update({"step": "12"}), "whole number"),
        (lambda a, m: m.update({"committed": 99}), "out of range"),
        (lambda a, m: m["sampler"][0].update({"state": [1, 2]}), "generator state"),
        (lambda a, m: a.update({"extra": np.zeros(3)}), "unexpected"),
    ],
)
def test_a_tampered_snapshot_is_refused_before_use(tmp_path, monkeypatch, tamper, reason):
    path = tmp_path / "run.zarr"
    interrupted(path, monkeypatch)
    snapshot = path / "progress" / store.SNAPSHOT
    with np.load(snapshot, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    meta = json.loads(arrays.pop(store.SNAPSHOT_META).tobytes())
    tamper(arrays, meta)
    arrays[store.SNAPSHOT_META] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    with open(snapshot, "wb") as fh:
        np.savez(fh, **arrays)
    before = files_of(path)
    with pytest.raises(StoreError, match=reason) as info:
        train(CONFIG, path, resume=True)
    assert "\n" not in str(info.value)
    assert files_of(path) == before


def test_a_planted_link_at_the_old_temporary_name_is_not_followed(tmp_path, monkeypatch):
    path = tmp_path / "run.zarr"
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    interrupted(path, monkeypatch)
    for name in ("resume.pkl.tmp", "resume.npz.tmp"):
        (path / "progress" / name).symlink_to(victim)
    train(CONFIG, path, resume=True)
    assert victim.read_text() == "keep me"


# --- 2. one writer -------------------------------------------------------------------------
def test_a_second_writer_is_refused_and_the_first_store_is_intact(tmp_path, full):
    path = tmp_path / "run.zarr"
    train(CONFIG, path)
    before = files_of(path)
    with StoreLock(path, "another writer"):  # flock: a second open file conflicts, same process
        with pytest.raises(StoreInUseError, match=rf"in use by process {os.getpid()} ") as info:
            train(CONFIG, path, overwrite=True)
        assert str(lock_path(path)) in str(info.value)
        with pytest.raises(StoreInUseError):
            store.save_analysis(path, xr.Dataset({"x": ("instance", np.zeros(10))}), "x")
        with pytest.raises(StoreInUseError):
            store.write_store(path, full, overwrite=True)
    assert files_of(path) == before
    assert not lock_path(path).exists()


def _blocked_trainer(path: Path, gate: Path, ready: Path, point: str = "commit:committed"):
    """A `toyanalysis train` in another process that waits, holding the lock, at ``point``."""
    script = (
        "import sys, time, pathlib\n"
        "from toyanalysis import store\n"
        "from toyanalysis_cli.main import main\n"
        "gate, ready = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])\n"
        "def fault(name):\n"
        f"    if name == {point!r} and not ready.exists():\n"
        "        ready.touch()\n"
        "        while not gate.exists():\n"
        "            time.sleep(0.01)\n"
        "store._fault = fault\n"
        "main(sys.argv[3:])\n"
    )
    cmd = [sys.executable, "-c", script, str(gate), str(ready), "train", *ARGS, "-o", str(path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not ready.exists():
        if proc.poll() is not None:
            raise AssertionError(proc.communicate())
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(0.02)
    return proc


def test_two_train_processes_on_one_path(tmp_path, cli, full):
    path, gate, ready = tmp_path / "S.zarr", tmp_path / "gate", tmp_path / "ready"
    first = _blocked_trainer(path, gate, ready)
    try:
        for extra in ([], ["--overwrite"], ["--resume"]):
            second = cli("train", *ARGS, "--seed", "2", "-o", path, *extra)
            assert second.exit_code == 4, second.output
            assert f"in use by process {first.pid}" in one_error_line(second)
        saved = cli("classify", path, "--save")  # --save is a writer too
        assert saved.exit_code == 4
    finally:
        gate.touch()
        _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert "wrote" in err
    ds = open_store(path)
    assert_same_run(ds, full)
    assert ds.attrs["config"] == CONFIG.to_json()
    assert not lock_path(path).exists()


def test_a_writer_stops_when_its_store_was_replaced(tmp_path, monkeypatch):
    path = tmp_path / "run.zarr"
    calls = {"n": 0}

    def fault(name: str) -> None:  # another writer (lock broken) replaces the store
        if name == "commit:committed":
            calls["n"] += 1
            if calls["n"] == 2:
                zarr.open_group(path, mode="r+").attrs["run_id"] = "another-run"

    monkeypatch.setattr(store, "_fault", fault)
    with pytest.raises(StoreError, match="replaced by another writer"):
        train(CONFIG, path, flush_seconds=0.0)
    assert store.read_progress(path)["complete"] is False


def test_a_killed_writer_leaves_no_lock_that_blocks(tmp_path, full):
    path, gate, ready = tmp_path / "S.zarr", tmp_path / "gate", tmp_path / "ready"
    first = _blocked_trainer(path, gate, ready)
    os.kill(first.pid, signal.SIGKILL)
    first.communicate()
    assert lock_path(path).exists()  # the file may stay; the kernel released the lock
    assert_same_run(train(CONFIG, path, resume=True), full)
    assert not lock_path(path).exists()


def test_sigterm_releases_the_lock_and_the_run_resumes(tmp_path, full):
    path, gate, ready = tmp_path / "S.zarr", tmp_path / "gate", tmp_path / "ready"
    first = _blocked_trainer(path, gate, ready, point="commit:data")
    os.kill(first.pid, signal.SIGTERM)
    gate.touch()
    _, err = first.communicate(timeout=60)
    assert first.returncode == 143 and "terminated" in err and "Traceback" not in err
    assert not lock_path(path).exists()
    assert_same_run(train(CONFIG, path, resume=True), full)


def test_without_flock_a_dead_writers_lock_is_stale_and_can_be_broken(tmp_path, monkeypatch):
    import fcntl

    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    path = tmp_path / "run.zarr"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    info = {"pid": int(dead.stdout), "host": socket.gethostname(), "since": "then", "command": "x"}
    lock_path(path).write_text(json.dumps(info))
    with pytest.raises(StoreInUseError, match=r"stale lock .* no longer running; remove that file"):
        train(CONFIG, path)
    assert not path.exists()
    train(CONFIG, path, break_lock=True)
    assert not lock_path(path).exists()
    with StoreLock(path, "live"):
        with pytest.raises(StoreInUseError, match=f"in use by process {os.getpid()} "):
            train(CONFIG, path, overwrite=True)  # a live holder: in use, not stale


# --- 3. resume of a complete store ------------------------------------------------------------
def test_resume_of_a_complete_store_returns_at_once_untouched(tmp_path, monkeypatch, cli):
    copy = tmp_path / "intro.zarr"
    shutil.copytree(REPO / "datasets" / "intro.zarr", copy)
    before = files_of(copy)
    monkeypatch.setattr(training, "_loop", lambda *a: pytest.fail("trained again"))
    result = cli("train", "--preset", "intro", "--record", "every:500", "-o", copy, "--resume")
    assert result.exit_code == 0, result.output
    assert files_of(copy) == before
    assert leftovers(copy) == [] and not lock_path(copy).exists()


# --- 4. a kill at every step of creation and of the commit protocol -------------------------
POINTS = [
    ("create:template", 1),
    ("create:progress", 1),
    ("create:moved", 1),
    ("commit:data", 1),
    ("commit:snapshot-temp", 1),
    ("commit:snapshot", 1),
    ("commit:committed", 1),
    ("commit:data", 40),
    ("commit:snapshot-temp", 40),
    ("commit:snapshot", 301),  # the last record's snapshot, before its count
    ("commit:committed", 7),  # after the last count, before the store is marked complete
    ("complete:snapshot-removed", 1),
    ("complete:done", 1),
]


def _check_resumes(path: Path, full: xr.Dataset) -> None:
    if path.exists():  # whatever a kill leaves opens, with its committed records exact
        partial = open_store(path, allow_empty=True)
        n = partial.sizes["step"]
        np.testing.assert_array_equal(partial["W"].values, full["W"].values[:n])
    resumed = train(CONFIG, path, resume=True)
    assert_same_run(resumed, full)
    assert store.read_progress(path) == {"committed": 7, "complete": True}
    assert not (path / "progress" / store.SNAPSHOT).exists()
    assert leftovers(path) == []
    with StoreLock(path, "check"):  # a killed writer's lock file may remain, but it holds nothing
        pass


@pytest.mark.parametrize("point, occurrence", POINTS)
def test_a_kill_at_every_step_resumes_to_the_uninterrupted_run(
    tmp_path, monkeypatch, point, occurrence, full
):
    path = tmp_path / "run.zarr"
    kill_at(monkeypatch, point, occurrence)
    with pytest.raises((Killed, StoreError)):
        train(CONFIG, path, flush_seconds=0.0)
    monkeypatch.setattr(store, "_fault", lambda name: None)
    _check_resumes(path, full)


@pytest.mark.parametrize(
    "point, occurrence",
    [("create:template", 1), ("commit:snapshot-temp", 40), ("commit:snapshot", 301)],
)
def test_a_real_sigkill_resumes_to_the_uninterrupted_run(tmp_path, point, occurrence, full):
    path = tmp_path / "run.zarr"
    script = (
        "import os, signal, sys\n"
        "from toyanalysis import RunConfig, store, train\n"
        "seen = [0]\n"
        "def fault(name):\n"
        "    if name == sys.argv[3]:\n"
        "        seen[0] += 1\n"
        "        if seen[0] == int(sys.argv[4]):\n"
        "            os.kill(os.getpid(), signal.SIGKILL)\n"
        "store._fault = fault\n"
        "train(RunConfig.from_json(sys.argv[1]), sys.argv[2], flush_seconds=0.0)\n"
    )
    args = [CONFIG.to_json(), str(path), point, str(occurrence)]
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    _check_resumes(path, full)


def test_a_kill_while_overwriting_keeps_the_old_store_until_the_new_one_is_ready(
    tmp_path, monkeypatch, full
):
    path = tmp_path / "run.zarr"
    train(CONFIG.override(seed=5), path)
    old = files_of(path)
    kill_at(monkeypatch, "create:progress")
    with pytest.raises(Killed):
        train(CONFIG, path, overwrite=True)
    assert files_of(path) == old  # the new store was being made beside it
    kill_at(monkeypatch, "create:aside")
    with pytest.raises(Killed):
        train(CONFIG, path, overwrite=True)
    assert not path.exists()
    monkeypatch.setattr(store, "_fault", lambda name: None)
    assert_same_run(train(CONFIG, path, resume=True), full)
    assert leftovers(path) == []


def test_resume_of_a_store_that_never_existed_is_refused(tmp_path):
    with pytest.raises(StoreError, match="no such store"):
        train(CONFIG, tmp_path / "none.zarr", resume=True)


# --- 5. one clean line for corrupt and malformed input, in every reading command ---------------
@pytest.fixture(scope="module")
def good_store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("good") / "good.zarr"
    train(CONFIG, path)
    return path


def _chunk(path: Path, var: str) -> Path:
    return next(p for p in (path / var / "c").rglob("*") if p.is_file())


def _set_attr(path: Path, key: str, value, group: str = "") -> None:
    meta = path / group / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["attributes"][key] = value
    meta.write_text(json.dumps(doc))


def _truncate(path, var):
    chunk = _chunk(path, var)
    data = chunk.read_bytes()
    chunk.write_bytes(data[: len(data) // 2])


def _garbage(path, var):
    _chunk(path, var).write_bytes(np.random.default_rng(0).bytes(300))


def _empty(path, var):
    _chunk(path, var).write_bytes(b"")


def _string_steps(path, var):
    ds = xr.open_zarr(path, consolidated=False).load()
    ds = ds.assign_coords(step=np.array([f"s{i}" for i in range(ds.sizes["step"])], dtype=object))
    shutil.rmtree(path)
    ds.to_zarr(path, zarr_format=3, consolidated=False)


def _zero_instances(path, var):
    ds = xr.open_zarr(path, consolidated=False).isel(instance=slice(0, 0)).load()
    ds.attrs.pop("config")
    shutil.rmtree(path)
    ds.to_zarr(path, zarr_format=3, consolidated=False)


DAMAGE = {
    "truncated W chunk": (lambda p: _truncate(p, "W"), "variable W"),
    "empty W chunk": (lambda p: _empty(p, "W"), "variable W"),
    "garbage W chunk": (lambda p: _garbage(p, "W"), "variable W"),
    "truncated b chunk": (lambda p: _truncate(p, "b"), "variable b"),
    "truncated step chunk": (lambda p: _truncate(p, "step"), "variable step"),
    "W metadata not JSON": (lambda p: (p / "W" / "zarr.json").write_text("{"), "variable W"),
    "config not JSON": (lambda p: _set_attr(p, "config", "{oops"), "attribute config"),
    "config a number": (lambda p: _set_attr(p, "config", 3), "attribute config"),
    "sweep an integer": (lambda p: _set_attr(p, "sweep", 3), "attribute sweep"),
    "model unknown": (lambda p: _set_attr(p, "model", "mlp"), "attribute model"),
    "committed a string": (
        lambda p: _set_attr(p, "committed", "7", group="progress"),
        "committed",
    ),
    "committed too large": (
        lambda p: _set_attr(p, "committed", 70, group="progress"),
        "committed",
    ),
    "string steps": (lambda p: _string_steps(p, None), "coordinate step"),
    "zero instances": (lambda p: _zero_instances(p, None), "no instances"),
}
COMMANDS = {
    "info": [],
    "classify": [],
    "phases": [],
    "phase-diagram": [],
    "neurons": ["--model", "hidden_relu"],
    "report": ["-o", "{tmp}/report.html"],
}


@pytest.fixture(scope="module")
def damaged(tmp_path_factory, good_store):
    made = {}
    for name, (damage, _) in DAMAGE.items():
        path = tmp_path_factory.mktemp("damaged") / "S.zarr"
        shutil.copytree(good_store, path)
        damage(path)
        made[name] = path
    return made


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_input_gives_one_line_naming_store_and_variable(
    cli, tmp_path, damaged, command, kind
):
    if command == "report":
        pytest.importorskip("holoviews")
    path = damaged[kind]
    args = [a.format(tmp=tmp_path) for a in COMMANDS[command]]
    result = cli(command, path, *args)
    if kind == "truncated b chunk" and command == "classify" and result.exit_code == 0:
        return  # classify never reads b: its result does not depend on the damage
    line = one_error_line(result)
    assert str(path) in line and DAMAGE[kind][1] in line, line
    assert not (tmp_path / "report.html").exists()


def test_a_lazy_decode_error_is_named_even_after_open(good_store, tmp_path):
    path = tmp_path / "S.zarr"
    shutil.copytree(good_store, path)
    ds = open_store(path)  # opens fine: chunks are decoded lazily
    _truncate(path, "W")
    with pytest.raises(StoreError, match=r"variable W: chunk 0\.0\.0\.0 .* corrupt or truncated"):
        store.check_finite(ds, str(path))


# --- 6. file systems that refuse -------------------------------------------------------------------
@contextlib.contextmanager
def tmpfs(folder: Path, size: str):
    folder.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)])
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_read_only_file_system(tmp_path, cli, good_store):
    with tmpfs(tmp_path / "ro", "4M") as ro:
        shutil.copytree(good_store, ro / "S.zarr")
        (ro / "old.csv").write_text("x\n")
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        before = files_of(ro / "S.zarr")
        assert cli("info", ro / "S.zarr").exit_code == 0  # reading needs no lock
        for args in (
            ["train", *ARGS, "-o", ro / "new.zarr"],
            ["train", *ARGS, "-o", ro / "S.zarr", "--overwrite"],
            ["classify", ro / "S.zarr", "--save"],
            ["classify", ro / "S.zarr", "-o", ro / "out.csv"],
            ["phases", ro / "S.zarr", "-o", ro / "old.csv", "--overwrite"],
        ):
            result = cli(*args)
            assert result.exit_code == 3, (args, result.output)
            assert "Read-only file system" in one_error_line(result)
        assert files_of(ro / "S.zarr") == before


def test_full_file_system(tmp_path, cli, monkeypatch, full):
    with tmpfs(tmp_path / "small", "1M") as small:
        # refused before anything is written: the run cannot fit
        big = cli(
            "train",
            "--preset",
            "intro",
            "--steps",
            "20000",
            "--record",
            "all",
            "-o",
            small / "big.zarr",
        )
        assert big.exit_code == 3 and "free" in one_error_line(big)
        assert not (small / "big.zarr").exists()
        # the disk fills up while training: committed records are kept, the run resumes
        path = small / "run.zarr"
        filler = small / "filler"
        calls = {"n": 0}

        def fill(name: str) -> None:
            if name == "commit:committed":
                calls["n"] += 1
                if calls["n"] == 2:
                    with open(filler, "wb") as fh, contextlib.suppress(OSError):
                        while True:
                            fh.write(b"\0" * 65536)
                            fh.flush()

        monkeypatch.setattr(store, "_fault", fill)
        with pytest.raises(StoreIOError, match="No space left on device"):
            train(CONFIG, path, flush_seconds=0.0)
        partial = open_store(path)
        assert partial.sizes["step"] >= 2
        np.testing.assert_array_equal(
            partial["W"].values, full["W"].values[: partial.sizes["step"]]
        )
        filler.unlink()
        monkeypatch.setattr(store, "_fault", lambda name: None)
        assert_same_run(train(CONFIG, path, resume=True), full)
        assert not lock_path(path).exists()


def test_stdout_to_a_full_device_is_one_line(tmp_path):
    with open("/dev/full", "w") as full_device:
        result = subprocess.run(
            [sys.executable, "-m", "toyanalysis_cli.main", "presets"],
            stdout=full_device,
            stderr=subprocess.PIPE,
            text=True,
        )
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        "Error: cannot write the output: No space left on device"
    ]


def test_output_under_a_plain_file(tmp_path, cli, good_store):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert "is a file, not a folder" in one_error_line(cli("train", *ARGS, "-o", plain / "S.zarr"))
    one_error_line(cli("classify", good_store, "-o", plain / "out.csv"))
    one_error_line(cli("phases", good_store, "-o", plain / "out.txt"))
    assert plain.read_text() == "x"


# --- 7. --overwrite replaces only toyanalysis stores, outputs need --overwrite ---------------------
def test_overwrite_refuses_a_store_holding_foreign_files(tmp_path, cli):
    path = tmp_path / "S.zarr"
    ds = train(CONFIG, path).load()
    (path / "notes.txt").write_text("my notes")
    (path / "W" / "plot.png").write_bytes(b"png")
    before = files_of(path)
    result = cli("train", *ARGS, "-o", path, "--overwrite")
    assert "not part of a store; refusing to overwrite" in one_error_line(result)
    assert files_of(path) == before
    with pytest.raises(StoreError, match="refusing"):
        store.write_store(path, ds, overwrite=True)
    assert files_of(path) == before


def test_overwrite_refuses_stores_not_written_by_toyanalysis_and_links(tmp_path, cli):
    foreign = tmp_path / "foreign.zarr"
    W = np.zeros((1, 1, 2, 5), np.float32)
    xr.Dataset({"W": (("step", "instance", "hidden", "feature"), W)}).to_zarr(
        foreign, zarr_format=3, consolidated=False
    )
    before = files_of(foreign)
    assert "not written by toyanalysis" in one_error_line(
        cli("train", *ARGS, "-o", foreign, "--overwrite")
    )
    assert files_of(foreign) == before
    real = tmp_path / "real.zarr"
    train(CONFIG, real)
    link = tmp_path / "link.zarr"
    link.symlink_to(real)
    assert "symbolic link" in one_error_line(cli("train", *ARGS, "-o", link, "--overwrite"))
    assert open_store(real).sizes["step"] == 7


def test_overwrite_replaces_a_clean_toyanalysis_store(tmp_path, monkeypatch, full):
    path = tmp_path / "S.zarr"
    interrupted(path, monkeypatch)  # a killed run leaves zarr's and our temporary files
    (path / "progress" / ".resume-x.tmp").write_bytes(b"")
    (path / "W" / f"zarr.{uuid.uuid4().hex}.partial").write_bytes(b"{")
    assert_same_run(train(CONFIG, path, overwrite=True), full)


def test_analysis_outputs_are_not_replaced_without_overwrite(tmp_path, cli, good_store):
    out = tmp_path / "geometry.csv"
    out.write_text("precious\n")
    for command in ("classify", "phases", "neurons"):
        result = cli(command, good_store, "-o", out)
        assert "already exists (pass --overwrite" in one_error_line(result)
    assert out.read_text() == "precious\n"
    assert cli("classify", good_store, "--format", "csv", "-o", out, "--overwrite").exit_code == 0
    assert out.read_text() != "precious\n"


def test_an_output_inside_a_store_is_refused(tmp_path, cli, good_store):
    path = tmp_path / "S.zarr"
    shutil.copytree(good_store, path)
    before = files_of(path)
    for args in (["-o", path / "zarr.json"], ["-o", path / "zarr.json", "--overwrite"]):
        assert "inside the Zarr store" in one_error_line(cli("classify", path, *args))
    assert files_of(path) == before


def test_report_output_needs_overwrite(tmp_path, cli, good_store):
    pytest.importorskip("holoviews")
    out = tmp_path / "r.html"
    out.write_text("old")
    assert "already exists" in one_error_line(cli("report", good_store, "-o", out))
    assert out.read_text() == "old"


# --- 8. flushing, bounds, optional dependencies ------------------------------------------------------
def test_a_short_run_commits_every_few_seconds(tmp_path, monkeypatch):
    assert training.FLUSH_SECONDS <= 5
    clock = iter(range(0, 10**9, 3))  # every reading of the clock is 3 s later
    monkeypatch.setattr(training, "_clock", lambda: float(next(clock)))
    commits = []
    monkeypatch.setattr(store, "_fault", lambda name: commits.append(name))
    train(CONFIG, tmp_path / "run.zarr")
    assert commits.count("commit:committed") == 7  # one per record, not one at the end


@pytest.mark.parametrize(
    "setting, message",
    [
        (["--steps", str(10**20)], "steps must be in"),
        (["--seed", str(10**20)], "seed must be in"),
        (["--set", "n_features=100000000"], "GiB"),
        (["--set", "seeds=100000000"], "GiB"),
        (["--set", "batch_size=10000000000"], "of memory"),
    ],
)
def test_sizes_that_cannot_fit_are_refused_saying_what_they_need(tmp_path, cli, setting, message):
    result = cli("train", "--preset", "intro", "-o", tmp_path / "x.zarr", *setting)
    assert message in one_error_line(result)
    assert not (tmp_path / "x.zarr").exists()


def test_a_missing_optional_dependency_names_the_extra(tmp_path, good_store):
    script = (
        "import sys\n"
        "sys.modules['holoviews'] = None\n"
        "from toyanalysis_cli.main import main\n"
        "main(sys.argv[1:])\n"
    )
    out = tmp_path / "r.html"
    done = subprocess.run(
        [sys.executable, "-c", script, "report", str(good_store), "-o", str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "Error: `toyanalysis report` needs holoviews, which is not installed: "
        "pip install 'toyanalysis[plots]'"
    )
    assert "Traceback" not in done.stderr


def test_broken_pipe_is_quiet():
    proc = subprocess.Popen(
        [sys.executable, "-m", "toyanalysis_cli.main", "presets"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader goes away before the output is written
    _, err = proc.communicate()
    err = err.decode()
    assert proc.returncode == 141
    assert "Traceback" not in err


def test_run_ids_are_unique_and_kept_by_resume(tmp_path, monkeypatch):
    a, b = tmp_path / "a.zarr", tmp_path / "b.zarr"
    interrupted(a, monkeypatch)
    train(CONFIG, b)
    before = open_store(a, allow_empty=True).attrs["run_id"]
    assert before != open_store(b).attrs["run_id"]
    uuid.UUID(before)
    assert train(CONFIG, a, resume=True).attrs["run_id"] == before
