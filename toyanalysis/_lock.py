"""One writer per store: an exclusive lock file beside the store.

A writer (training, ``write_store``/ingest, ``save_analysis``) holds the lock
for its whole life. The lock is ``<store>.lock`` in the store's parent folder
(beside it, so that it exists before the store does and is never copied with
it). It is an ``flock`` on that file: the kernel releases it when the process
ends in any way, SIGKILL included, so a killed writer never leaves a lock that
blocks anyone. The file's content (JSON: pid, host, process start time, when,
command, run id) says who holds it, for the "in use by process N" message.

Where the file system has no ``flock`` (``ENOLCK``/``EOPNOTSUPP``), the file is
made with exclusive creation instead; a file left by a writer that is no longer
running (same host, pid gone or reused: its start time differs) is *stale* and
the message says so, and which file to remove (``train --break-lock`` does it).

>>> import tempfile, os
>>> store = os.path.join(tempfile.mkdtemp(), "run.zarr")
>>> with StoreLock(store, "doctest") as lock:
...     os.path.basename(lock.path)
'run.zarr.lock'
>>> os.path.exists(store + ".lock")
False
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

from toyanalysis.errors import StoreError, StoreInUseError, StoreIOError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: exclusive creation only
    fcntl = None  # type: ignore[assignment]

_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}
_MAX_INFO_BYTES = 4096


def lock_path(store: str | os.PathLike[str]) -> Path:
    """The lock file of a store: ``<store>.lock`` beside it (symbolic links resolved)."""
    real = Path(os.path.realpath(os.fspath(store)))
    return real.with_name(real.name + ".lock")


def process_start(pid: int) -> int | None:
    """The start time of a process in clock ticks since boot (Linux), or None when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:  # the command name (field 2) may contain spaces: split after its closing parenthesis
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holder_is_running(info: dict[str, Any]) -> bool | None:
    """Whether the process recorded in a lock file still runs (None: another host, can't tell)."""
    if info.get("host") != socket.gethostname():
        return None
    pid = info.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    if not _alive(pid):
        return False
    started = info.get("started")
    now = process_start(pid)
    return not (isinstance(started, int) and now is not None and now != started)


def describe_holder(info: dict[str, Any]) -> str:
    pid, host = info.get("pid", "?"), info.get("host", "?")
    since, command = info.get("since", "?"), info.get("command", "?")
    return f"process {pid} on {host} ({command}, since {since})"


class StoreLock:
    """The writer lock of the store at ``store``; use as a context manager.

    ``run_id`` is recorded in the lock file for messages; ``break_lock``
    removes the lock file first (for a stale lock of the exclusive-creation
    fallback; see the module docstring). Only when no process writes the store.
    """

    def __init__(
        self,
        store: str | os.PathLike[str],
        purpose: str,
        *,
        run_id: str | None = None,
        break_lock: bool = False,
    ) -> None:
        self.store = Path(store)
        self.path = lock_path(store)
        self.purpose = purpose
        self.run_id = run_id
        self.break_lock = break_lock
        self._fd: int | None = None

    # -- public -----------------------------------------------------------------------
    def acquire(self) -> StoreLock:
        if self.break_lock:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        for parent in self.path.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise StoreIOError(
                        f"{self.store}: cannot create it: {parent} is a file, not a folder"
                    )
                break
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise _io_error(
                self.store, "cannot create the folder for", self.path.parent, err
            ) from None
        for _ in range(20):  # only repeats when another writer removed the file meanwhile
            if self._try_flock():
                return self
        raise StoreInUseError(f"{self.store}: could not take the writer lock {self.path}")

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            # remove while still holding it: a waiting writer then re-checks and retries
            if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                self.path.unlink()
        os.close(fd)

    def __enter__(self) -> StoreLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- the two protocols ---------------------------------------------------------------
    def _try_flock(self) -> bool:
        flags = os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        created = False
        try:
            try:
                fd = os.open(self.path, flags)
            except FileNotFoundError:
                try:
                    fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, 0o644)
                except FileExistsError:
                    return False  # another writer made it meanwhile: look again
                created = True
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise StoreError(
                    f"{self.store}: the lock file {self.path} is a symbolic link; remove it"
                ) from None
            raise _io_error(self.store, "cannot open the lock file", self.path, err) from None
        try:
            if fcntl is None:
                raise OSError(errno.ENOSYS, "no flock")
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = _read_info(fd)
            os.close(fd)
            raise StoreInUseError(self._in_use(info)) from None
        except OSError as err:
            if err.errno not in _NO_FLOCK:
                os.close(fd)
                raise _io_error(self.store, "cannot lock", self.path, err) from None
            # no flock here: whoever created the file holds the lock
            if created:
                self._fd = fd
                self._write_info(fd)
                return True
            info = _read_info(fd)
            os.close(fd)
            if holder_is_running(info) is False:
                raise StoreInUseError(
                    f"{self.store}: stale lock {self.path} left by {describe_holder(info)},"
                    " which is no longer running; remove that file (or pass --break-lock)"
                ) from None
            raise StoreInUseError(self._in_use(info)) from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(self.path))
        except FileNotFoundError:
            same = False
        if not same:  # the file was removed (released) between our open and our flock
            os.close(fd)
            return False
        self._fd = fd
        self._write_info(fd)
        return True

    def _in_use(self, info: dict[str, Any]) -> str:
        return (
            f"{self.store}: in use by {describe_holder(info)}; wait for it to finish"
            f" (if no such process is writing it, remove {self.path})"
        )

    def _write_info(self, fd: int) -> None:
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": process_start(os.getpid()),
            "since": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "command": self.purpose,
            "run_id": self.run_id,
            "argv": " ".join(sys.argv)[:500],
        }
        data = json.dumps(info).encode()
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
        except OSError as err:
            self.release()
            raise _io_error(self.store, "cannot write the lock file", self.path, err) from None


def _read_info(fd: int) -> dict[str, Any]:
    try:
        data = os.pread(fd, _MAX_INFO_BYTES, 0)
        info = json.loads(data.decode("utf-8", "replace"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _io_error(store: Path, what: str, path: Path, err: OSError) -> StoreIOError:
    return StoreIOError(f"{store}: {what} {path}: {err.strerror or err}")
