"""Run one command and measure it: wall time, peak memory, exit status.

Peak memory comes from ``os.wait4``: Linux reports the largest resident set
of the child and of every descendant it waited for, so a runner's stage
commands count too (they are small Python scripts here).
"""

from __future__ import annotations

import enum
import os
import signal
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence


class Outcome(enum.Enum):
    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Sample:
    """One run of one command."""

    seconds: float
    peak_rss_mb: float
    outcome: Outcome
    detail: str = ""
    cpu_seconds: float = 0.0  # user + system of the command and its waited-for children


def run_command(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str], timeout: float
) -> Sample:
    """Run ``argv`` in ``cwd``; kill its whole process group after ``timeout`` s."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, kill)
    timer.start()
    # stderr is drained on a thread so a chatty command cannot block on a full pipe.
    errors: list[bytes] = []
    reader = threading.Thread(target=lambda: errors.append(proc.stderr.read()))
    reader.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    seconds = time.perf_counter() - started
    reader.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    peak = usage.ru_maxrss / 1024  # KiB on Linux
    cpu = usage.ru_utime + usage.ru_stime  # unlike wall time, barely moved by other load on the machine
    if timed_out.is_set():
        return Sample(seconds, peak, Outcome.TIMEOUT, f"no result within {timeout:g} s", cpu)
    if proc.returncode != 0:
        lines = errors[0].decode(errors="replace").strip().splitlines() if errors else []
        detail = f"exit {proc.returncode}: {lines[-1] if lines else 'no message'}"
        return Sample(seconds, peak, Outcome.FAILED, detail[:300], cpu)
    return Sample(seconds, peak, Outcome.OK, cpu_seconds=cpu)


@dataclass(frozen=True)
class Measurement:
    """Every sample of one operation for one tool at one size, summarised."""

    samples: tuple[Sample, ...] = ()
    outcome: Outcome = Outcome.OK
    detail: str = ""

    @classmethod
    def skipped(cls, reason: str) -> "Measurement":
        return cls(outcome=Outcome.SKIPPED, detail=reason)

    @classmethod
    def from_samples(cls, samples: Sequence[Sample]) -> "Measurement":
        bad = [sample for sample in samples if sample.outcome is not Outcome.OK]
        if bad:
            return cls(tuple(samples), bad[0].outcome, bad[0].detail)
        return cls(tuple(samples))

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK and bool(self.samples)

    @property
    def times(self) -> list[float]:
        return [sample.seconds for sample in self.samples if sample.outcome is Outcome.OK]

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.ok else None

    @property
    def minimum(self) -> float | None:
        return min(self.times) if self.ok else None

    @property
    def maximum(self) -> float | None:
        return max(self.times) if self.ok else None

    @property
    def cpu_median(self) -> float | None:
        """Median user + system seconds of the successful samples."""
        return statistics.median(s.cpu_seconds for s in self.samples if s.outcome is Outcome.OK) if self.ok else None

    @property
    def peak_rss_mb(self) -> float | None:
        return max(sample.peak_rss_mb for sample in self.samples) if self.samples else None

    def to_json(self) -> dict:
        return {
            "outcome": self.outcome.value,
            "detail": self.detail,
            "median_s": self.median,
            "min_s": self.minimum,
            "max_s": self.maximum,
            "peak_rss_mb": self.peak_rss_mb,
            "cpu_median_s": self.cpu_median,
            "samples_s": [round(sample.seconds, 6) for sample in self.samples],
        }
