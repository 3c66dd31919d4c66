"""Work a command's answer need not wait for, finished by a forked child.

Writing the pipeline cache means pickling every stage: a second and more
at 100,000 jobs, all on one core while the other is idle.  ``run`` forks:
the child does the work on its copy-on-write snapshot of the process and
leaves with ``os._exit`` (no atexit handlers, no buffered output flushed
twice, no database connection of the parent's touched), while the parent
goes on planning and printing.  The command waits for its children before
it exits (``wait``, called by the CLI; at exit for library callers), so
what they write is there for the next command, as if written inline.

Forking a process that runs other threads can leave the child holding a
lock no thread will release: with any other thread alive, and where there
is no ``fork``, the work is done inline instead.
"""

from __future__ import annotations

import atexit
import gc
import os
import signal
import threading
from typing import Callable

_children: list[int] = []


def run(work: Callable[[], object]) -> None:
    """Do ``work`` in a forked child when that is safe, else here and now.
    The work handles its own errors: one that escapes ends the child
    quietly (the work is only ever a cache)."""
    if not hasattr(os, "fork") or threading.active_count() != 1:
        work()
        return
    # Ctrl-C between the fork and the child's ``try`` would raise in the
    # child outside it, into the caller's code: held back until then
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    pid: int | None
    try:
        pid = os.fork()
        if pid == 0:
            _finish_in_child(work, mask)
    except OSError:  # no process to spare (a limit on processes or memory)
        pid = None
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    if pid is None:
        work()
    else:
        _children.append(pid)


def _finish_in_child(work: Callable[[], object], mask: set[signal.Signals]) -> None:
    status = 1
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        # the parent's objects are shared copy-on-write: a collection would copy them all
        gc.disable()
        work()
        status = 0
    except BaseException:  # noqa: BLE001 - Ctrl-C included: the child must never return into the parent's code
        pass
    finally:
        os._exit(status)


def wait() -> None:
    """Wait for every child ``run`` started."""
    while _children:
        pid = _children.pop()
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:  # already reaped
            pass


atexit.register(wait)
