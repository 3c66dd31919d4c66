"""The audit trail: what every ``pivot run`` and ``pivot commit`` did.

One JSON-lines file per invocation under ``.pivot/runs/``, named by its
start time so names sort chronologically::

    .pivot/runs/20260107T043704.123456Z-4242.jsonl

The first line describes the invocation (``"type": "run"``), then one line
per stage as it settles (``"type": "stage"``), then a closing line
(``"type": "end"``).  A successful run that did some work also writes,
before its end line, the params and metrics files as it left them
(``"type": "values"``; see ``pivot.reports.history``).  Stages skipped without work (up to date, frozen)
share one line per message (``"type": "skipped"``, ``"addresses": [...]``),
so a no-op run over 1,000 stages writes three lines; readers expand it
into one skipped entry per address.  Every line is written with a single ``write`` on a
file opened for appending, so a reader never sees half a line from a live
writer; a run killed with ``kill -9`` simply has no ``end`` line and reads
as ``incomplete``.  A record holds everything needed to show it later
(reasons as text, times, exit codes, log paths): reading a past run never
looks at the current workspace.
"""

from __future__ import annotations

import enum
import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from pivot.project import Project

RUNS_DIR = "runs"
FORMAT_VERSION = 1


class Outcome(enum.Enum):
    """What happened to one stage in one invocation."""

    RAN = "ran"
    RESTORED = "restored"  # outputs checked out from the cache instead of running
    SKIPPED = "skipped"  # up to date, frozen, or cut off (identical upstream outputs)
    COMMITTED = "committed"  # recorded by `pivot commit` without running
    FAILED = "failed"
    BLOCKED = "blocked"  # not started: an upstream stage failed, or the run stopped
    INTERRUPTED = "interrupted"


@dataclass(frozen=True, slots=True)
class ReasonNote:
    """A reason a stage ran, as its kind and rendered text."""

    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class StageEntry:
    """One stage's line in a run record.  Times are Unix seconds."""

    address: str
    outcome: Outcome
    reasons: tuple[ReasonNote, ...] = ()
    started: float | None = None
    ended: float | None = None
    exit_code: int | None = None
    log: str | None = None  # root-relative, POSIX
    message: str | None = None  # why it failed / was blocked / was skipped
    worker: str | None = None  # the Dask worker that ran it (None: this machine)

    @property
    def duration(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return self.ended - self.started

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "stage",
            "address": self.address,
            "outcome": self.outcome.value,
            "reasons": [{"kind": r.kind, "text": r.text} for r in self.reasons],
            "started": self.started,
            "ended": self.ended,
            "exit_code": self.exit_code,
            "log": self.log,
            "message": self.message,
            **({"worker": self.worker} if self.worker is not None else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "StageEntry":
        """Raises ValueError (or KeyError, TypeError) for a malformed line."""
        reasons = _typed(data.get("reasons", []), list, "reasons")
        return cls(
            address=_typed(data["address"], str, "address"),
            outcome=Outcome(data["outcome"]),
            reasons=tuple(ReasonNote(_typed(r["kind"], str, "kind"), _typed(r["text"], str, "text")) for r in reasons),
            started=_optional(data.get("started"), (int, float), "started"),
            ended=_optional(data.get("ended"), (int, float), "ended"),
            exit_code=_optional(data.get("exit_code"), int, "exit_code"),
            log=_optional(data.get("log"), str, "log"),
            message=_optional(data.get("message"), str, "message"),
            worker=_optional(data.get("worker"), str, "worker"),
        )


def _typed(value: Any, kind: type | tuple[type, ...], key: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"'{key}' has the wrong type ({type(value).__name__})")
    return value


def _optional(value: Any, kind: type | tuple[type, ...], key: str) -> Any:
    return None if value is None else _typed(value, kind, key)


def invocation() -> list[str] | None:
    """What the user typed (``sys.argv``, the program shown as ``pivot``)
    when pivot runs from the command line; None when called in-process."""
    import sys

    program = sys.argv[0].replace(os.sep, "/") if sys.argv else ""
    if program.rsplit("/", 1)[-1] == "pivot" or program.endswith("pivot/__main__.py"):
        return ["pivot", *sys.argv[1:]]
    return None


@dataclass(frozen=True)
class RunRecord:
    """A finished (or interrupted, or killed) invocation, as read back."""

    run_id: str
    command: str  # "run" or "commit"
    argv: tuple[str, ...]
    pid: int
    started: float
    ended: float | None
    status: str  # "ok", "failed", "interrupted" or "incomplete"
    stages: tuple[StageEntry, ...] = field(default=())
    # {"params": {path: {"data": ...} | {"error": ...}}, "metrics": {...}}, if recorded
    values: dict[str, Any] | None = None

    @property
    def duration(self) -> float | None:
        return None if self.ended is None else self.ended - self.started


class AuditWriter:
    """Appends one invocation's record; use as a context manager or call
    ``close(status)``."""

    def __init__(self, project: Project, command: str, argv: Sequence[str]) -> None:
        runs = project.ensure_state_dir() / RUNS_DIR
        runs.mkdir(exist_ok=True)
        self.started = time.time()
        self.run_id = _run_id(self.started)
        self.path = runs / f"{self.run_id}.jsonl"
        self._fd: int | None = os.open(
            self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o644
        )
        self._write(
            {
                "type": "run",
                "version": FORMAT_VERSION,
                "run_id": self.run_id,
                "command": command,
                "argv": list(argv),
                "pid": os.getpid(),
                "started": self.started,
            }
        )

    def stage(self, entry: StageEntry) -> None:
        self._write(entry.to_json())

    def skipped(self, addresses: Sequence[str], message: str) -> None:
        """Stages skipped for ``message`` (up to date, frozen), in one line."""
        if addresses:
            self._write({"type": "skipped", "message": message, "addresses": list(addresses)})

    def values(self, params: dict[str, Any], metrics: dict[str, Any]) -> None:
        """The params and metrics files as the run left them (one line)."""
        self._write({"type": "values", "params": params, "metrics": metrics})

    def close(self, status: str) -> None:
        if self._fd is None:
            return
        self._write({"type": "end", "status": status, "ended": time.time()})
        os.close(self._fd)
        self._fd = None

    def _write(self, data: dict[str, Any]) -> None:
        assert self._fd is not None, "audit record already closed"
        os.write(self._fd, (json.dumps(data, ensure_ascii=False) + "\n").encode())

    def __enter__(self) -> "AuditWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # Not closed by the command: it ended with an exception.
        if self._fd is not None:
            self.close("interrupted" if exc_type is KeyboardInterrupt else "failed")


def append_commit(project: Project, argv: Sequence[str], entries: Iterable[StageEntry]) -> Path:
    """Record a ``pivot commit`` (used by emitted scripts) in the audit trail."""
    writer = AuditWriter(project, "commit", argv)
    for entry in entries:
        writer.stage(entry)
    writer.close("ok")
    return writer.path


def _run_id(started: float) -> str:
    stamp = datetime.fromtimestamp(started, tz=timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{stamp}-{os.getpid()}"


def runs_dir(project: Project) -> Path:
    return project.state_dir / RUNS_DIR


def read_runs(project: Project, limit: int | None = None) -> Iterator[RunRecord]:
    """Recorded invocations, newest first; unreadable files are skipped."""
    directory = runs_dir(project)
    try:
        names = sorted((n for n in os.listdir(directory) if n.endswith(".jsonl")), reverse=True)
    except FileNotFoundError:
        return
    count = 0
    for name in names:
        record = read_run(directory / name)
        if record is None:
            continue
        yield record
        count += 1
        if limit is not None and count >= limit:
            return


def read_run(path: Path) -> RunRecord | None:
    """One record; a torn last line is ignored, a missing end reads as
    incomplete.  Malformed lines are skipped and a malformed header skips the
    file, with a warning naming it."""
    header: dict[str, Any] | None = None
    end: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    stages: list[StageEntry] = []
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return None
    malformed: list[str] = []
    for number, raw in enumerate(lines, 1):
        try:
            data = json.loads(raw)
        except ValueError:
            if number < len(lines):  # only the last line may be torn (a killed writer)
                malformed.append(f"line {number}: not JSON")
            continue
        try:
            kind = data["type"]
            if kind == "run":
                header = data
            elif kind == "stage":
                stages.append(StageEntry.from_json(data))
            elif kind == "skipped":
                message = _optional(data.get("message"), str, "message")
                addresses = [_typed(a, str, "addresses") for a in _typed(data["addresses"], list, "addresses")]
                stages.extend(StageEntry(a, Outcome.SKIPPED, message=message) for a in addresses)
            elif kind == "values":
                values = {key: _typed(data.get(key, {}), dict, key) for key in ("params", "metrics")}
            elif kind == "end":
                end = data
        except (ValueError, KeyError, TypeError) as exc:
            malformed.append(f"line {number}: {_why(exc)}")
    try:
        if header is None:
            raise ValueError("no header line")
        argv = _typed(header.get("argv", []), list, "argv")
        record = RunRecord(
            run_id=_typed(header["run_id"], str, "run_id"),
            command=_typed(header.get("command", "run"), str, "command"),
            argv=tuple(_typed(a, str, "argv") for a in argv),
            pid=_typed(header.get("pid", 0), int, "pid"),
            started=float(_typed(header["started"], (int, float), "started")),
            ended=_optional(end.get("ended"), (int, float), "ended") if isinstance(end, dict) else None,
            status=_typed(end.get("status", "ok"), str, "status") if isinstance(end, dict) else "incomplete",
            stages=tuple(stages),
            values=values,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        _warn(path, f"{_why(exc)}; skipping it")
        return None
    if malformed:
        _warn(path, f"{'; '.join(malformed[:3])}; skipped {len(malformed)} malformed line(s)")
    return record


def _why(exc: BaseException) -> str:
    return f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)


def _warn(path: Path, message: str) -> None:
    from pivot.state.notices import warn

    warn(f"run record '.pivot/{RUNS_DIR}/{path.name}' is malformed ({message})")
