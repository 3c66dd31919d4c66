"""Ends a Dask worker's stage commands when the worker process dies.

Stage commands run in their own sessions, so a worker killed with SIGKILL
(out of memory, a lost node's nanny) would leave them running -- and
writing outputs that a retry elsewhere is producing again.  Each worker
process starts one reaper (``python -m pivot.backends.reaper``) in its own
session and tells it, over a pipe, each process group it starts (``+PGID``)
and ends (``-PGID``).  When the pipe closes -- the kernel closes it when
the worker dies, however it dies -- the reaper kills what is left.
"""

from __future__ import annotations

import os
import signal
import sys


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # only the worker's death ends it
    groups: set[int] = set()
    for line in sys.stdin.buffer:
        sign, number = line[:1], line[1:].strip()
        if not number.isdigit():
            continue
        if sign == b"+":
            groups.add(int(number))
        elif sign == b"-":
            groups.discard(int(number))
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


if __name__ == "__main__":
    main()
