"""What a Dask worker does with one stage when it does not see the project
(``--executor-data remote``).

The worker makes a scratch directory laid out like the project, fetches
exactly the stage's inputs into it by content hash from the remote
(verified, through a scratch cache), runs the commands there as the
shared-file-system task does (``executor.prepare_and_run``: the same
shell, environment and stdin rules), hashes the outputs with pivot's
hasher (xxh3-128, directories as manifests), uploads their objects
(files before manifests, each upload atomic) and returns their hashes in
the :class:`~pivot.backends.dask_task.StageOutcome`.  The scratch
directory is removed whatever happens.  Nothing here touches the
coordinator's disk: only the remote and the task's return value connect
the two.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pivot.backends import execute
from pivot.backends.dask_task import StageOutcome, read_tail, run_groups, worker_id
from pivot.backends.executor import prepare_and_run
from pivot.errors import PivotError
from pivot.ir import Stage
from pivot.remote.config import Remote
from pivot.state.locks import LockEntry


@dataclass(frozen=True, slots=True)
class RemoteStageTask:
    """Everything a worker without the project needs to run one stage."""

    run_id: str
    stage: Stage
    remote: Remote  # the project's default remote (credentials: the worker's own chain)
    inputs: tuple[LockEntry, ...]  # deps, params files, persist outs: parents first
    shell: tuple[str, ...] | None  # the coordinator's PIVOT_SHELL choice; None: the worker's own


def run_remote_stage(task: RemoteStageTask) -> StageOutcome:
    """The Dask task: one attempt at ``task.stage`` in a scratch directory."""
    worker = worker_id()
    started = time.time()
    scratch = Path(tempfile.mkdtemp(prefix="pivot-stage-"))
    try:
        return _run_in(scratch, task, worker, started)
    finally:
        from pivot.backends.outputs import remove

        try:
            remove(scratch)
        except OSError:
            pass  # a command left something undeletable behind: the temporary directory keeps it


def _run_in(scratch: Path, task: RemoteStageTask, worker: str, started: float) -> StageOutcome:
    from pivot.remote.storage import RemoteStorage
    from pivot.state.hashing import Hasher
    from pivot.state.store import Cache

    root = scratch / "project"
    root.mkdir()
    try:
        storage = RemoteStorage(task.remote, root)
        hasher = Hasher(root)
        cache = Cache(root, scratch / "cache", hasher)
        _materialise(task.inputs, storage, cache)
    except (PivotError, OSError) as exc:  # the remote's errors name it (RemoteError, MissingExtra)
        return StageOutcome(worker, started, time.time(),
                            error=f"worker {worker} cannot fetch the stage's inputs: {_one_line(exc)}")
    (root / task.stage.wdir).mkdir(parents=True, exist_ok=True)
    log_path = scratch / "stage.log"
    result, error = prepare_and_run(task.stage, root, log_path, groups=run_groups(task.run_id),
                                    shell=task.shell or execute.shell_prefix(), base_env=os.environ)
    ended = time.time()
    log = read_tail(log_path)
    if result is None:
        return StageOutcome(worker, started, ended, error=error, log=log)
    outputs: tuple[LockEntry, ...] | None = None
    if result.ok and not result.interrupted:
        try:
            outputs = _save_outputs(task.stage, storage, hasher, cache)
        except (PivotError, OSError) as exc:
            return StageOutcome(worker, started, ended, log=log,
                                error=f"worker {worker} cannot upload the stage's outputs: {_one_line(exc)}")
    return StageOutcome(worker, started, ended, result.exit_code, result.failed_command, result.interrupted,
                        log=log, outputs=outputs)


def _materialise(inputs: tuple[LockEntry, ...], storage, cache) -> None:
    """Download (verified) and check out ``inputs`` at their project paths."""
    from pivot.remote.transfer import Need, Progress, TransferReport, fetch_needs
    from pivot.state.hashing import HashInfo

    report = TransferReport("fetch", storage.name, storage.url)
    fetch_needs([Need(e.hash, e.size, f"'{e.path}'") for e in inputs], cache, storage, report, Progress())
    if not report.ok:
        raise PivotError((report.failed or report.missing)[0])
    for entry in inputs:
        cache.checkout(entry.path, HashInfo(entry.hash, entry.size, entry.nfiles))


def _save_outputs(stage: Stage, storage, hasher, cache) -> tuple[LockEntry, ...]:
    """Hash the outputs the commands made, cache and upload them; an output
    that is missing is left out (the coordinator's commit names it)."""
    from pivot.remote.objects import push_objects

    entries: list[LockEntry] = []
    for out in stage.outs:
        hasher.invalidate(out.path)
        info = hasher.hash_out(out.path)
        if info is None:
            continue
        cache.save(out.path, info)
        entries.append(LockEntry(out.path, info.hash, info.size, info.nfiles))
    push_objects(storage, cache, entries)
    return tuple(entries)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
