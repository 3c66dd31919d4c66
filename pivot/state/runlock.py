"""One writer at a time: the project run lock (``.pivot/run.lock``).

``pivot run`` and ``pivot checkout`` hold an exclusive ``flock`` on the
file for as long as they change the workspace.  A second one fails at once
with a message naming the holder's pid instead of waiting: two runs of one
pipeline would race on the same outputs.  The kernel drops the lock when
its holder dies, even by ``kill -9``, so a stale file never blocks anyone.
Read-only commands (``status``, ``plan``, ``list``) never take it.

``CacheLock`` (``.pivot/cache.lock``) guards the cache against ``pivot gc``
for writers that do not hold the run lock (``pivot commit``, run by emitted
scripts and Ninja edges, possibly several at once): they hold it shared,
gc holds it exclusive.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from pivot.errors import StateError
from pivot.project import Project

LOCK_NAME = "run.lock"
CACHE_LOCK_NAME = "cache.lock"


class RunLock:
    """Context manager holding the run lock of ``project``."""

    def __init__(self, project: Project, purpose: str = "run") -> None:
        self.path: Path = project.state_dir / LOCK_NAME
        self._project = project
        self._purpose = purpose
        self._fd: int | None = None

    def __enter__(self) -> "RunLock":
        fd = _open(self._project, self.path, "run")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise StateError(
                f"another pivot {holder} is already changing this project"
                f" (lock file {self._project.relpath(self.path)}); wait for it to finish"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {self._purpose}\n".encode(), 0)
        except OSError as exc:  # a full disk: whatever we were about to change would fail too
            os.close(fd)
            raise StateError(_cannot_take(self._project, self.path, "run", exc)) from None
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing releases the flock
            self._fd = None


class CacheLock:
    """Shared (cache writers: wait for a running gc) or exclusive (gc: fail
    at once while anyone writes) hold on ``.pivot/cache.lock``."""

    def __init__(self, project: Project, *, exclusive: bool = False) -> None:
        self.path: Path = project.state_dir / CACHE_LOCK_NAME
        self._project = project
        self._exclusive = exclusive
        self._fd: int | None = None

    def __enter__(self) -> "CacheLock":
        fd = _open(self._project, self.path, "cache")
        try:
            if self._exclusive:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            else:
                fcntl.flock(fd, fcntl.LOCK_SH)
        except BlockingIOError:
            os.close(fd)
            raise StateError(
                "another pivot command is writing to the cache"
                f" (lock file {self._project.relpath(self.path)}); try again when it is done"
            ) from None
        self._fd = fd
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _open(project: Project, path: Path, what: str) -> int:
    """The lock file, opened for writing (created with ``.pivot/`` if need be)."""
    try:
        project.ensure_state_dir()
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StateError(_cannot_take(project, path, what, exc)) from None


def _cannot_take(project: Project, path: Path, what: str, exc: OSError) -> str:
    """``cannot take the run lock '.pivot/run.lock': Permission denied``:
    the file at fault (maybe ``.pivot/`` itself), root-relative, and why."""
    where = project.relpath(exc.filename if isinstance(exc.filename, str) else path)
    return f"cannot take the {what} lock '{where}': {exc.strerror or exc}"


def _read_holder(fd: int) -> str:
    """``run (pid 123)`` from the lock file, or a vaguer text if unreadable."""
    try:
        fields = os.pread(fd, 200, 0).decode(errors="replace").split()
    except OSError:
        fields = []
    if len(fields) >= 2 and fields[0].isdigit():
        return f"{fields[1]} (pid {fields[0]})"
    if fields and fields[0].isdigit():
        return f"run (pid {fields[0]})"
    return "run"
