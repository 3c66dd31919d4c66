"""Watch one long command while it runs: its own CPU and its memory over time.

``os.wait4`` gives a command's CPU *with* every child it waited for, and
only its peak memory.  For ``pivot run`` the question is different: how
much CPU pivot itself spends (not the stage commands it starts), and
whether its resident set stays flat as stages complete.  So the process is
sampled from ``/proc/PID/status`` (VmRSS) every ``interval`` seconds, and
its own user + system time is read from ``/proc/PID/stat`` once it has
exited but before it is reaped (a zombie keeps its final counters).
Linux only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Watched:
    """One watched run of a command."""

    seconds: float
    exit_code: int | None  # None: killed after the timeout
    own_cpu: float  # user + system of the process itself, children excluded
    children_cpu: float  # user + system of the children it waited for
    rss_mb: tuple[tuple[float, float], ...]  # (seconds since start, resident MB), in order
    error_tail: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def rss_at(self, fraction: float) -> float:
        """Resident MB of the sample nearest ``fraction`` of the run (0 start, 1 end)."""
        if not self.rss_mb:
            return 0.0
        wanted = fraction * self.seconds
        return min(self.rss_mb, key=lambda sample: abs(sample[0] - wanted))[1]

    @property
    def rss_peak(self) -> float:
        return max((mb for _, mb in self.rss_mb), default=0.0)


def watch(argv: Sequence[str], cwd: Path, env: Mapping[str, str], timeout: float,
          interval: float = 0.5) -> Watched:
    """Run ``argv`` (stdout discarded), sampling it every ``interval`` s;
    its process group is killed after ``timeout`` s."""
    started = time.perf_counter()
    proc = subprocess.Popen(list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    errors: list[bytes] = []
    reader = threading.Thread(target=lambda: errors.append(proc.stderr.read()))
    reader.start()
    samples: list[tuple[float, float]] = []
    timed_out = False
    while not _exited(proc.pid):
        elapsed = time.perf_counter() - started
        if elapsed > timeout:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            break
        rss = _rss_mb(proc.pid)
        if rss is not None:
            samples.append((elapsed, rss))
        time.sleep(interval)
    own, children = _cpu(proc.pid)  # exited, not reaped yet: the final counters
    _, status, _ = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    reader.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    tail = errors[0].decode(errors="replace").strip().splitlines()[-3:] if errors and errors[0] else []
    return Watched(seconds, None if timed_out else proc.returncode, own, children, tuple(samples),
                   "\n".join(tail))


def _exited(pid: int) -> bool:
    """Whether ``pid`` has ended, leaving it unreaped (WNOWAIT)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None  # gone, or a zombie (no VmRSS line)


def _cpu(pid: int) -> tuple[float, float]:
    """(own, waited-for children) user + system seconds from ``/proc/PID/stat``."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except OSError:
        return 0.0, 0.0
    fields = text[text.rindex(")") + 2:].split()  # the name may hold spaces; fields from 3 on
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])  # fields 14-17 of proc(5)
    return (utime + stime) / TICKS, (cutime + cstime) / TICKS
