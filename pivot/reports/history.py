"""History without git: params and metrics as each successful run left them.

After a successful ``pivot run`` that did some work, one ``values`` line is
added to its audit record (``.pivot/runs/<run id>.jsonl``, before the
``end`` line)::

    {"type": "values",
     "params": {"params.yaml": {"data": {...the whole parsed file...}}},
     "metrics": {"metrics/train.json": {"data": {"train": {"loss": 0.2}}},
                 "eval/scores.yaml": {"error": {"type": "FileNotFoundError", "msg": "..."}}}}

``params`` holds every params file ``dvc params show`` would read, whole;
``metrics`` every metrics file, with only the values DVC keeps (numbers,
strings, booleans).  A file whose JSON is larger than ``FILE_LIMIT`` bytes
is recorded as an error, and once ``LINE_LIMIT`` bytes are used the rest
are too, so a record stays small.  Recording reads files the run has just
parsed or written; it never fails the run.

A recorded run is a state for ``params diff``/``metrics diff`` (by run id)
and a row of ``pivot metrics history``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

from pivot.errors import PivotError
from pivot.project import Project
from pivot.reports.states import (
    WORKSPACE,
    DiskState,
    FileProblem,
    FileResult,
    GitRevision,
    RecordedRun,
    Snapshot,
    StateNotFound,
    collect_metrics,
    in_git,
    is_revision,
    params_files,
    read_data_file,
    tracked_vars_files,
)

if TYPE_CHECKING:
    from pivot.ir import Pipeline
    from pivot.state import State
    from pivot.state.audit import AuditWriter, RunRecord

FILE_LIMIT = 64 * 1024
LINE_LIMIT = 1024 * 1024
WORK_OUTCOMES = ("ran", "restored", "committed")


def record_values(audit: "AuditWriter", pipeline: "Pipeline", state: "State") -> None:
    """Append the params and metrics files as the run left them to its audit
    record.  ``state`` is the run's open State (its params reader has parsed
    the params files already)."""
    from pivot.state.params import ParamsReader, normalise

    try:
        project = state.project
        current = DiskState(project, pipeline=pipeline, reader=state.params)
        budget = [LINE_LIMIT]
        params: dict[str, Any] = {}
        files = list(params_files(current, project))
        files += tracked_vars_files(current, skip=files)  # whole, as params files are recorded
        for path in files:
            try:
                result = FileResult(data=normalise(read_data_file(state.params, path)))
            except FileProblem as problem:
                result = problem.result()
            params[path] = _bounded(path, result, budget)
        metrics_state = DiskState(project, pipeline=pipeline, reader=ParamsReader(project.root))
        metrics = {path: _bounded(path, result, budget)
                   for path, result in collect_metrics(metrics_state, project).items()}
        audit.values(params, metrics)
    except (PivotError, OSError, ValueError, TypeError, RecursionError):
        # History is a by-product: a run that succeeded stays successful.
        return


def _bounded(path: str, result: FileResult, budget: list[int]) -> dict[str, Any]:
    encoded = result.to_json()
    size = len(json.dumps(encoded, ensure_ascii=False))
    if size > FILE_LIMIT or size > budget[0]:
        return {"error": {"type": "TooLarge", "msg": f"'{path}' not recorded: {size} bytes of JSON"}}
    budget[0] -= size
    return encoded


@dataclass(frozen=True)
class RecordedValues:
    """One successful run with the files it left."""

    record: "RunRecord"
    params: dict[str, FileResult]
    metrics: dict[str, FileResult]

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def ran(self) -> list[str]:
        """Stages that did work in this run (ran, restored, recorded)."""
        return [e.address for e in self.record.stages if e.outcome.value in WORK_OUTCOMES]

    def files(self) -> dict[str, FileResult]:
        return {**self.params, **self.metrics}


def recorded_runs(project: Project, limit: int | None = None) -> Iterator[RecordedValues]:
    """Successful runs that recorded values, newest first."""
    from pivot.state import audit

    count = 0
    for record in audit.read_runs(project):
        if record.status != "ok" or record.values is None:
            continue
        yield RecordedValues(
            record,
            {p: FileResult.from_json(r) for p, r in record.values.get("params", {}).items()},
            {p: FileResult.from_json(r) for p, r in record.values.get("metrics", {}).items()},
        )
        count += 1
        if limit is not None and count >= limit:
            return


def find_run(project: Project, name: str) -> RecordedValues | None:
    """The recorded run ``name`` (a run id or a unique prefix of one)."""
    matches = [run for run in recorded_runs(project) if run.run_id.startswith(name)]
    exact = [run for run in matches if run.run_id == name]
    if exact or len(matches) == 1:
        return (exact or matches)[0]
    if len(matches) > 1:
        raise StateNotFound(f"'{name}' matches {len(matches)} runs; give more of the run id")
    return None


def default_baseline(project: Project) -> str:
    """What A defaults to: the last successful run, else git's HEAD."""
    last = next(recorded_runs(project, limit=1), None)
    if last is not None:
        return last.run_id
    if in_git(project):
        return "HEAD"
    raise PivotError("no successful `pivot run` recorded yet and not a git repository: nothing to compare "
                     "the workspace with (name a run id from `pivot log`, or run the pipeline first)")


@contextmanager
def open_state(project: Project, name: str, workspace: DiskState) -> Iterator[Snapshot]:
    """The state called ``name``: ``workspace``, a run id from ``pivot log``,
    or a git revision."""
    if name == WORKSPACE:
        yield workspace
        return
    run = find_run(project, name)
    if run is not None:
        yield RecordedRun(run.run_id, run.files(), workspace)
        return
    if is_revision(project, name):
        with GitRevision(project, name) as revision:
            yield revision
        return
    hint = "" if in_git(project) else " (not a git repository)"
    raise StateNotFound(f"'{name}' is neither a successful run id from `pivot log` nor a git revision{hint}")


# -- the history table ---------------------------------------------------------------


@dataclass(frozen=True)
class HistoryRow:
    run: RecordedValues
    changed_params: dict[str, dict[str, dict[str, Any]]] | None  # vs the run before; None: none recorded
    metrics: dict[str, dict[str, Any]]  # path -> flat key -> value


def history(project: Project, limit: int) -> list[HistoryRow]:
    """The last ``limit`` recorded runs, newest first, each with the params
    changed since the run before it."""
    from pivot.reports.compare import diff, flat_values

    runs = list(recorded_runs(project, limit + 1))
    rows: list[HistoryRow] = []
    for index, run in enumerate(runs[:limit]):
        changed = diff(runs[index + 1].params, run.params) if index + 1 < len(runs) else None
        metrics = {path: flat_values(result.data) for path, result in run.metrics.items() if result.error is None}
        rows.append(HistoryRow(run, changed, metrics))
    return rows


def metric_columns(rows: Sequence[HistoryRow], wanted: Sequence[str]) -> list[tuple[str, str, str]]:
    """``(column name, path, key)`` for each metric shown: a key alone when no
    other file has it, else ``path:key``; ``wanted`` filters by column name,
    key, ``path:key`` or path."""
    seen: dict[tuple[str, str], None] = {}
    for row in reversed(rows):  # oldest first, so columns keep the order metrics appeared in
        for path, values in row.metrics.items():
            for key in values:
                seen[(path, key)] = None
    owners: dict[str, set[str]] = {}
    for path, key in seen:
        owners.setdefault(key, set()).add(path)
    columns = [(key if len(owners[key]) == 1 else f"{path}:{key}", path, key) for path, key in seen]
    if wanted:
        columns = [c for c in columns if any(w in (c[0], c[2], f"{c[1]}:{c[2]}", c[1]) for w in wanted)]
    return columns


def describe_changes(changed: Mapping[str, Mapping[str, Mapping[str, Any]]] | None) -> str:
    """``train.lr=0.05, eval/params.yaml:threshold=0.7`` (``-`` for none)."""
    from pivot.reports.tables import format_field

    if changed is None:
        return "(first recorded run)"
    parts = []
    for path, changes in changed.items():
        prefix = "" if path == "params.yaml" else f"{path}:"
        for key, change in changes.items():
            new = change.get("new")
            parts.append(f"{prefix}{key}=" + ("(deleted)" if new is None else format_field(new)))
    return ", ".join(parts) or "-"
