"""What ``pivot run`` prints while it works.

On a terminal: one status line rewritten in place, as Ninja does
(``[12/93] running base/dvc.yaml:merge_data@v2``), with failures printed
above it.  Elsewhere (pipes, CI logs): one plain line per stage as it
settles (``[12/93] ran train in 2.10s (dep 'x' modified)``), so a
20,000-stage run prints 20,000 lines, not twice that; ``-v`` adds a line
when each stage starts and its command output.  ``-q`` prints only
failures, warnings and the summary.  All end with the same summary.
Methods may be called from any thread.
"""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass
from enum import Enum
from typing import IO, Sequence

from pivot.state.audit import Outcome, ReasonNote, StageEntry


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed stage for the closing summary."""

    address: str
    exit_code: int | None
    log: str | None
    message: str | None
    tail: str


@dataclass(frozen=True, slots=True)
class Summary:
    ran: int
    restored: int
    up_to_date: int
    failed: tuple[Failure, ...]
    blocked: int
    interrupted: bool
    wall: float


class Verbosity(Enum):
    QUIET = "quiet"  # failures, warnings and the summary
    NORMAL = "normal"  # one line per settled stage (a status line on a terminal)
    VERBOSE = "verbose"  # also a line per started stage, and command output


def use_status_line(stream: IO[str]) -> bool:
    """A live status line only on a real terminal that can redraw."""
    try:
        return stream.isatty() and os.environ.get("TERM", "") != "dumb"
    except (AttributeError, ValueError):
        return False


class Progress:
    """Reports stage events to ``stream`` as plain lines or a status line."""

    def __init__(self, stream: IO[str], total: int, *, status_line: bool, prefix_output: bool,
                 verbosity: Verbosity = Verbosity.NORMAL) -> None:
        self._stream = stream
        self._total = total
        self._status_line = status_line and verbosity is not Verbosity.QUIET
        self._verbosity = verbosity
        self._prefix_output = prefix_output
        self._lock = threading.Lock()
        self._done = 0
        self._running: list[str] = []
        self._line_shown = False

    # -- events -------------------------------------------------------------

    def started(self, address: str, reasons: Sequence[ReasonNote]) -> None:
        with self._lock:
            self._running.append(address)
            if not self._status_line and self._verbosity is Verbosity.VERBOSE:
                why = f": {reasons[0].text}" if reasons else ""
                self._emit(f"running {address}{why}")
            self._redraw()

    def settled(self, entry: StageEntry, tail: str = "") -> None:
        """A stage reached its outcome for this run."""
        with self._lock:
            if entry.address in self._running:
                self._running.remove(entry.address)
            self._done += 1
            line = _describe(entry)
            if entry.outcome is Outcome.FAILED:
                self._emit(line if self._status_line else f"{self._counter()} {line}")
                if tail:
                    self._emit(_indent(tail))
            elif line and not self._status_line and self._verbosity is not Verbosity.QUIET:
                self._emit(f"{self._counter()} {line}")
            self._redraw()

    def output(self, address: str, data: bytes) -> None:
        """Live command output (``-v``)."""
        text = data.decode("utf-8", errors="replace").rstrip("\n")
        with self._lock:
            self._emit(f"{address}| {text}" if self._prefix_output else text)
            self._redraw()

    def note(self, text: str) -> None:
        with self._lock:
            self._emit(text)
            self._redraw()

    def finish(self, summary: Summary) -> None:
        with self._lock:
            self._clear()
            for line in render_summary(summary):
                self._stream.write(line + "\n")
            self._stream.flush()

    # -- drawing ------------------------------------------------------------

    def _counter(self) -> str:
        return f"[{self._done}/{self._total}]"

    def _emit(self, line: str) -> None:
        self._clear()
        self._stream.write(line + "\n")
        self._stream.flush()

    def _clear(self) -> None:
        if self._line_shown:
            self._stream.write("\r\x1b[K")
            self._line_shown = False

    def _redraw(self) -> None:
        if not self._status_line or not self._running:
            return
        width = shutil.get_terminal_size().columns
        others = len(self._running) - 1
        more = f" (+{others} more)" if others else ""
        line = f"{self._counter()} running {self._running[0]}{more}"
        if len(line) >= width:
            line = line[: max(width - 4, 10)] + "..."
        self._stream.write("\r\x1b[K" + line)
        self._stream.flush()
        self._line_shown = True


def _describe(entry: StageEntry) -> str:
    address = entry.address
    match entry.outcome:
        case Outcome.RAN:
            why = f" ({entry.reasons[0].text})" if entry.reasons else ""
            return f"ran {address} in {_seconds(entry.duration)}{why}"
        case Outcome.RESTORED:
            if entry.message:  # the run cache says which run
                return f"restored {address} {entry.message}"
            return f"restored {address} from cache"
        case Outcome.SKIPPED:
            return f"skipped {address}: {entry.message}" if entry.message else ""
        case Outcome.FAILED:
            code = f" (exit {entry.exit_code})" if entry.exit_code else ""
            why = f": {entry.message}" if entry.message else ""
            log = f"; log: {entry.log}" if entry.log else ""
            return f"FAILED {address}{code}{why}{log}"
        case Outcome.BLOCKED:
            return f"blocked {address}: {entry.message}" if entry.message else f"blocked {address}"
        case Outcome.INTERRUPTED:
            return f"interrupted {address}"
        case _:
            return f"{entry.outcome.value} {address}"


def render_summary(summary: Summary) -> list[str]:
    """The closing lines: counts and wall time, then each failure."""
    counts = [
        f"{summary.ran} ran",
        f"{summary.restored} restored",
        f"{summary.up_to_date} up to date",
        f"{len(summary.failed)} failed",
    ]
    if summary.blocked:
        counts.append(f"{summary.blocked} blocked")
    head = "interrupted: " if summary.interrupted else ""
    lines = [f"{head}{', '.join(counts)} in {_seconds(summary.wall)}"]
    for failure in summary.failed:
        code = f"exit {failure.exit_code}" if failure.exit_code else (failure.message or "failed")
        log = f", log {failure.log}" if failure.log else ""
        lines.append(f"  failed: {failure.address} ({code}{log})")
    return lines


def _seconds(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value * 1000:.0f}ms" if value < 1 else f"{value:.2f}s"


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())
