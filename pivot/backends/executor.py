"""Where a stage's commands run: the seam between the runner and executors.

The runner (the coordinator) decides, restores, commits and records; an
executor only clears a stage's outputs and runs its commands, then hands
back a :class:`Done`.  :class:`LocalExecutor` uses worker threads in this
process; ``dask_executor.DaskExecutor`` sends each stage to a Dask worker.
Both are driven by the same loop over one ``Schedule``.
"""

from __future__ import annotations

import functools
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Protocol

from pivot.backends import execute, outputs
from pivot.backends.environment import stage_env
from pivot.errors import PivotError
from pivot.ir import Stage

# After SIGTERM, how long a worker thread may take to come back when stopping.
JOIN_GRACE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Job:
    """One stage to execute: its log file and the worker resources it needs."""

    stage: Stage
    log_path: Path
    resources: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class Done:
    """How executing one stage ended."""

    stage: Stage
    result: execute.CommandsResult | None  # None: no command ran (see error)
    started: float
    ended: float
    error: str | None = None
    worker: str | None = None  # the Dask worker that ran it; None locally


# What an executor may say while it works (a worker lost, a retry): one line each.
Notify = Callable[[str], None]
# Live command output for -v: (stage address, bytes).
Echo = Callable[[str, bytes], None]


class Executor(Protocol):
    """Runs stages' commands somewhere; never touches pivot's State."""

    @property
    def capacity(self) -> int:
        """Stages in flight at most (``-j``, or what the executor can use)."""
        ...

    def open(self, width: int, notify: Notify, echo: Echo | None) -> None:
        """Get ready for a plan whose widest level has ``width`` stages;
        raises PivotError (before any stage starts) if it cannot."""
        ...

    def submit(self, job: Job) -> None: ...

    def next_done(self, timeout: float) -> Done | None:
        """The next stage that ended, or None after ``timeout`` seconds."""
        ...

    def interrupt(self, kill: bool) -> None:
        """The run was interrupted: start nothing more, end running commands
        (SIGTERM, or SIGKILL when ``kill``).  Called repeatedly; idempotent."""
        ...

    def close(self) -> None: ...


def prepare_and_run(stage: Stage, root: Path, log_path: Path, *, groups: execute.ProcessGroups,
                    shell: tuple[str, ...], base_env: Mapping[str, str],
                    echo: Callable[[bytes], None] | None = None) -> tuple[execute.CommandsResult | None, str | None]:
    """Clear the outputs, then run the commands: what every executor does
    with a stage, wherever it runs.  Returns (result, None), or (None, error)
    when the outputs could not be prepared."""
    # the log describes this run from the start: a failure before any
    # command ran must not show the previous run's output
    log_path.write_bytes(b"")
    try:
        outputs.prepare(root, stage)
    except OSError as exc:
        where = f": '{_relative(root, exc.filename)}'" if exc.filename else ""
        return None, f"cannot prepare outputs: {exc.strerror or exc}{where}"
    except PivotError as exc:
        return None, str(exc)
    env = {**base_env, **stage_env(root, stage)}
    result = execute.run_commands(stage.cmds, cwd=root / stage.wdir, env=env, log_path=log_path,
                                  groups=groups, shell=shell, echo=echo)
    return result, None


def _relative(root: Path, path) -> str:
    """``path`` relative to the project root when inside it (for messages)."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return str(path)


class LocalExecutor:
    """Worker threads in this process, created on demand, never more than ``jobs``."""

    def __init__(self, root: Path, jobs: int, groups: execute.ProcessGroups) -> None:
        self.root = root
        self.jobs = jobs
        self.groups = groups  # stopped by the runner's Interrupt, from the signal handler
        self._shell = execute.shell_prefix()
        self._base_env = dict(os.environ)
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[Done] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._busy = 0
        self._echo: Echo | None = None
        self._interrupted = False

    @property
    def capacity(self) -> int:
        return self.jobs

    def open(self, width: int, notify: Notify, echo: Echo | None) -> None:
        self._echo = echo

    def submit(self, job: Job) -> None:
        self._busy += 1
        if len(self._threads) < min(self._busy, self.jobs):
            thread = threading.Thread(target=self._work, name=f"pivot-worker-{len(self._threads)}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._jobs.put(job)

    def next_done(self, timeout: float) -> Done | None:
        try:
            done = self._done.get(timeout=timeout)
        except queue.Empty:
            return None
        self._busy -= 1
        return done

    def interrupt(self, kill: bool) -> None:
        self._interrupted = True  # the Interrupt already signalled self.groups

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        # after an interrupt, a thread stuck beyond SIGKILL is left behind (daemon thread)
        timeout = JOIN_GRACE_SECONDS if self._interrupted or self.groups.stopping else None
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            started = time.time()
            try:
                echo = functools.partial(self._echo, job.stage.address) if self._echo is not None else None
                result, error = prepare_and_run(job.stage, self.root, job.log_path, groups=self.groups,
                                                shell=self._shell, base_env=self._base_env, echo=echo)
                done = Done(job.stage, result, started, time.time(), error=error)
            except BaseException as exc:  # noqa: BLE001 -- the coordinator must always hear back
                message = f"internal error while running the stage: {type(exc).__name__}: {exc}"
                done = Done(job.stage, None, started, time.time(), error=message)
            self._done.put(done)
