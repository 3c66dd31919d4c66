"""Printing for push, fetch and pull: a progress line on a terminal, a
closing summary, the problems one per line, and ``--json``."""

from __future__ import annotations

import sys
import threading
import time

import click

from pivot.remote.transfer import Progress, TransferReport


class TerminalProgress(Progress):
    """``pushing: 12/40 objects, 3.1 MB`` redrawn in place, at most 10 times a
    second, only when stderr is a terminal."""

    def __init__(self, verb: str) -> None:
        self.verb = verb
        self.enabled = sys.stderr.isatty()
        self.total = 0
        self.done = 0
        self.size = 0
        self._drawn = 0.0
        self._lock = threading.Lock()

    def start(self, objects: int, size: int) -> None:
        with self._lock:
            self.total += objects

    def advance(self, size: int) -> None:
        with self._lock:
            self.done += 1
            self.size += size
            now = time.monotonic()
            if self.enabled and (now - self._drawn > 0.1 or self.done == self.total):
                self._drawn = now
                click.echo(f"\r{self.verb}: {self.done:,}/{self.total:,} objects, {human_size(self.size)}\x1b[K",
                           err=True, nl=False)

    def close(self) -> None:
        if self.enabled and self._drawn:
            click.echo("\r\x1b[K", err=True, nl=False)


def human_size(count: int) -> str:
    size = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{count} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{count} B"


def summary(report: TransferReport, verb: str, where: str) -> str:
    """``pushed 1,234 objects, 512.0 MB in 12.0 s; 3,456 already on the remote``."""
    noun = "object" if report.objects == 1 else "objects"
    line = f"{verb} {report.objects:,} {noun}, {human_size(report.bytes)} in {report.seconds:.1f} s"
    if report.entries:
        line += f" and {report.entries:,} run-cache entr{'y' if report.entries == 1 else 'ies'}"
    return f"{line}; {report.already:,} already {where}"


def finish(report: TransferReport, verb: str, where: str, as_json: bool) -> None:
    """Print the outcome; exit 1 when anything was missing or failed."""
    if as_json:
        from pivot.cli import common

        common.echo_json(report.to_json())
    else:
        for message in report.missing:
            click.echo(f"WARNING: {message}", err=True)
        for message in report.failed:
            click.echo(f"ERROR: {message}", err=True)
        click.echo(summary(report, verb, where))
    if not report.ok:
        raise SystemExit(1)
