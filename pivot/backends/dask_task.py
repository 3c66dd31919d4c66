"""What a Dask worker does with one stage: the task function and its helpers.

This module runs inside worker processes (pivot must be installed there);
it imports nothing of Dask at import time.  The coordinator sends a
:class:`StageTask`, the worker clears the outputs and runs the commands
exactly as the local runner does (``executor.prepare_and_run``: one shell
per command in the stage's wdir, stdin from /dev/null, the stage's
variables) on the shared file system, and sends back a :class:`StageOutcome`.
It never hashes, commits or records: the coordinator does.

Process groups are kept per run so that the coordinator can stop one run's
commands on every worker (``stop_run``, called through ``Client.run``);
a reaper process ends them if the worker itself dies (``reaper.py``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from pivot.backends import execute
from pivot.backends.executor import prepare_and_run
from pivot.ir import Stage
from pivot.state.locks import LockEntry

# How much of the log a task sends back (its end); the whole log is on disk.
LOG_RETURN_LIMIT = 1024 * 1024


@dataclass(frozen=True, slots=True)
class StageTask:
    """Everything a worker needs to run one stage (pickled to the worker)."""

    run_id: str
    root: str  # the project, at the same path on every worker (shared file system)
    stage: Stage
    log_relpath: str
    probe_relpath: str  # written by the coordinator before dispatching
    probe_token: str
    attempts_relpath: str  # one line per attempt: which worker took it
    retries: int  # attempts allowed after the first, when workers are lost
    shell: tuple[str, ...] | None  # the coordinator's PIVOT_SHELL choice; None: the worker's own
    return_log: bool


@dataclass(frozen=True, slots=True)
class StageOutcome:
    """How one attempt ended, as the coordinator needs it."""

    worker: str
    started: float
    ended: float
    exit_code: int | None = None  # None: no command ran (see error)
    failed_command: str | None = None
    interrupted: bool = False
    error: str | None = None
    lost: tuple[str, ...] = ()  # workers that died running earlier attempts
    log: bytes = b""
    # --executor-data remote: the outputs' hashes, uploaded to the remote (None: nothing uploaded)
    outputs: tuple[LockEntry, ...] | None = None

    def result(self) -> execute.CommandsResult | None:
        if self.exit_code is None:
            return None
        return execute.CommandsResult(self.exit_code, self.failed_command, self.interrupted)


def run_stage(task: StageTask) -> StageOutcome:
    """The Dask task: one attempt at running ``task.stage``."""
    worker = worker_id()
    started = time.time()
    root = Path(task.root)
    if not sees_probe(str(root / task.probe_relpath), task.probe_token):
        return StageOutcome(worker, started, time.time(), error=probe_message(worker, root))
    lost = _claim(root / task.attempts_relpath, worker)
    if len(lost) > task.retries:
        _clear_outputs(root, task.stage)  # what the lost attempts left is not left behind
        return StageOutcome(worker, started, time.time(), lost=lost,
                            error=f"worker {lost[-1]} was lost while running the stage"
                                  f" ({len(lost)} attempts, each on a worker that died); not retried again")
    groups = run_groups(task.run_id)
    log_path = root / task.log_relpath
    result, error = prepare_and_run(task.stage, root, log_path, groups=groups,
                                    shell=task.shell or execute.shell_prefix(), base_env=os.environ)
    ended = time.time()
    log = read_tail(log_path) if task.return_log else b""
    if result is None:
        return StageOutcome(worker, started, ended, error=error, lost=lost, log=log)
    return StageOutcome(worker, started, ended, result.exit_code, result.failed_command, result.interrupted,
                        lost=lost, log=log)


def probe_message(worker: str, root: Path) -> str:
    return (f"Dask worker {worker} cannot see the project at {root} (pivot's probe file is not there):"
            " workers need the project on a shared file system at the same path")


def worker_id() -> str:
    """The worker's name when it was given one (``dask worker --name``), else its address."""
    try:
        from distributed import get_worker

        current = get_worker()
    except (ImportError, ValueError):
        return f"pid {os.getpid()}"
    name = current.name
    if isinstance(name, str) and name and name != current.address and not name.isdigit():
        return name
    return str(current.address)


def sees_probe(path: str, token: str) -> bool:
    """Whether this worker reads the coordinator's probe file (``Client.run`` too)."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read() == token
    except OSError:
        return False


def _claim(path: Path, worker: str) -> tuple[str, ...]:
    """Note this attempt; returns the workers of earlier attempts of this
    run, which can only have ended by dying (a finished attempt is never re-run)."""
    try:
        with open(path, encoding="utf-8") as f:
            earlier = tuple(line.rstrip("\n") for line in f if line.strip())
    except FileNotFoundError:
        earlier = ()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (worker.replace("\n", " ") + "\n").encode())
    finally:
        os.close(fd)
    return earlier


def _clear_outputs(root: Path, stage: Stage) -> None:
    """Remove a stage's outputs (persist ones are kept), as before a run."""
    from pivot.backends import outputs
    from pivot.errors import PivotError

    try:
        outputs.prepare(root, stage)
    except (OSError, PivotError):
        pass  # the stage fails anyway; the next run prepares them again


def read_tail(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - LOG_RETURN_LIMIT))
            return f.read()
    except OSError:
        return b""


# -- the worker process's commands --------------------------------------------

_lock = threading.Lock()
_runs: dict[str, "_ReapedGroups"] = {}


def run_groups(run_id: str) -> "_ReapedGroups":
    with _lock:
        return _runs.setdefault(run_id, _ReapedGroups())


def stop_run(run_id: str, sig: int = signal.SIGTERM) -> int:
    """Stop one run's commands on this worker and refuse its later ones
    (``Client.run`` on every worker); returns how many groups were running."""
    groups = run_groups(run_id)
    running = groups.running
    groups.stop(sig)
    return running


def forget_run(run_id: str) -> None:
    """The run is over: drop its process groups (``Client.run``)."""
    with _lock:
        _runs.pop(run_id, None)


class _ReapedGroups(execute.ProcessGroups):
    """Process groups the reaper also knows about."""

    def spawn(self, argv: Sequence[str], **popen_kwargs) -> subprocess.Popen[bytes] | None:
        proc = super().spawn(argv, **popen_kwargs)
        if proc is not None:
            _Reaper.tell(f"+{proc.pid}")
        return proc

    def finished(self, proc: subprocess.Popen[bytes]) -> None:
        _Reaper.tell(f"-{proc.pid}")
        super().finished(proc)


class _Reaper:
    """This worker process's reaper (started on first use, one per process)."""

    _proc: subprocess.Popen[bytes] | None = None
    _owner = 0
    _lock = threading.Lock()

    @classmethod
    def tell(cls, line: str) -> None:
        with cls._lock:
            if cls._proc is None or cls._owner != os.getpid() or cls._proc.poll() is not None:
                try:
                    # its own session: a signal to the worker's group must not reach it
                    cls._proc = subprocess.Popen([sys.executable, "-m", "pivot.backends.reaper"],
                                                 stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                                 start_new_session=True)
                    cls._owner = os.getpid()
                except OSError:
                    return  # no reaper: commands of a dying worker may outlive it
            assert cls._proc.stdin is not None
            try:
                cls._proc.stdin.write(line.encode() + b"\n")
                cls._proc.stdin.flush()
            except OSError:
                cls._proc = None
