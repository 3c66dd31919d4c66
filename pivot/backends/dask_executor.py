"""Running stages on a Dask cluster (``pivot run --executor dask://...``).

The coordinator (``pivot run``) keeps every decision; this executor only
moves the execution of a stage's commands: one Dask task per stage, not
pure, keyed by run id and stage address, sent only to workers advertising
the resources the stage asks for.  With shared data the task
(``dask_task.run_stage``) runs on the shared file system; before the first
one, every connected worker must read a probe file the coordinator wrote.
With remote data (``--executor-data remote``) the task
(``dask_remote_task.run_remote_stage``) works in a scratch directory of its
own: ``remote_data.RemoteData`` pushes the stage's inputs before it is
sent and checks its outputs out into the workspace when it returns, on the
coordinator's thread, so the runner commits the stage as after a local run.

Workers lost mid-stage: Dask re-runs the task elsewhere; the task sees the
earlier attempts in ``.pivot/tmp/dask-<run id>/`` and gives up after the
configured retries, naming the lost worker.  The dead worker's commands are
ended by its reaper, and the retry clears the outputs first, so nothing a
lost worker wrote is ever recorded.
"""

from __future__ import annotations

import importlib
import logging
import os
import queue
import secrets
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from pivot.backends import dask_task, execute
from pivot.backends.executor import Done, Echo, Job, Notify
from pivot.backends.executor_config import (
    ClusterFile,
    ExecutorData,
    ExecutorError,
    ExecutorKind,
    ExecutorSpec,
    format_resources,
    read_cluster_file,
)

if TYPE_CHECKING:
    from pivot.backends.remote_data import RemoteData
    from pivot.state import State

INSTALL_HINT = "pip install 'pivot[dask]'"
# No -j: no cap on stages in flight; the cluster's workers set the pace.
UNCAPPED = 1 << 30
# How long a broadcast to the workers (stop the commands) may take.
BROADCAST_TIMEOUT = 5.0


def require_distributed() -> Any:
    """The ``distributed`` module, or the one-line error saying how to get it."""
    try:
        import distributed
    except ImportError:
        raise ExecutorError(f"the Dask executor needs the 'distributed' package: {INSTALL_HINT}") from None
    return distributed


def make_cluster(cluster_file: ClusterFile) -> Any:
    """Create the cluster a cluster file describes (no workers yet)."""
    module_name, _, class_name = cluster_file.class_path.rpartition(".")
    where = f"cluster file '{cluster_file.path}'"
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = " (pip install 'pivot[jobqueue]')" if module_name.startswith("dask_jobqueue") else ""
        raise ExecutorError(f"{where}: cannot import '{module_name}': {exc}{hint}") from None
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise ExecutorError(f"{where}: '{module_name}' has no class '{class_name}'")
    try:
        return cls(**cluster_file.kwargs)
    except (TypeError, ValueError, KeyError, OSError) as exc:
        raise ExecutorError(f"{where}: {cluster_file.class_path}(...) failed: {exc}".splitlines()[0]) from None


def _quiet_dask_logs() -> list[tuple[logging.Handler, int]]:
    """pivot reports what goes wrong on the cluster itself, in one line; Dask's
    own log records (a lost connection's traceback) would repeat it on stderr.
    Returns the handlers changed, with their levels, to restore them."""
    names = ["distributed", *(n for n in logging.root.manager.loggerDict if n.startswith("distributed."))]
    changed = []
    for name in names:
        for handler in logging.getLogger(name).handlers:
            changed.append((handler, handler.level))
            handler.setLevel(logging.CRITICAL)
    return changed


class DaskExecutor:
    """Sends each stage to a Dask worker; see the module docstring."""

    def __init__(self, spec: ExecutorSpec, root: Path, run_id: str, jobs: int,
                 resources: Mapping[str, Mapping[str, float]], state: "State | None" = None) -> None:
        self.spec = spec
        self.root = root
        self.run_id = run_id
        self.jobs = jobs  # 0: no cap beyond the plan's width
        self.resources = resources  # the plan's stages that ask for some
        self._capacity = jobs or UNCAPPED
        self._client: Any = None
        self._cluster: Any = None
        self._futures: dict[str, tuple[Job, Any]] = {}  # key -> (job, future)
        self._refused: list[Done] = []  # stages that ended before reaching a worker
        # remote data: the coordinator's half (inputs up, outputs down); needs the run's State
        self._remote: RemoteData | None = None
        if spec.data is ExecutorData.REMOTE:
            assert state is not None, "remote data needs the run's State"
            from pivot.backends.remote_data import RemoteData, open_default_remote

            self._remote = RemoteData(state, open_default_remote(root, state.project.state_dir))
        self._done: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._notify: Notify = lambda line: None
        self._echo: Echo | None = None
        self._signalled: int | None = None
        self._workers_wanted = 1
        self._quieted: list[tuple[logging.Handler, int]] = []
        # what the tasks and the probe share (shared file system); removed at close
        self._scratch = Path(".pivot") / "tmp" / f"dask-{run_id}"
        self._probe = self._scratch / "probe"
        self._token = secrets.token_hex(16)
        shell = os.environ.get("PIVOT_SHELL")
        # PIVOT_SHELL is the user's explicit choice; otherwise each worker picks as a local run does
        self._shell = execute.shell_prefix({"PIVOT_SHELL": shell}) if shell else None

    @property
    def capacity(self) -> int:
        return self._capacity

    # -- opening: connect, probe, check resources -----------------------------

    def open(self, width: int, notify: Notify, echo: Echo | None) -> None:
        distributed = require_distributed()
        self._quieted = _quiet_dask_logs()
        self._notify, self._echo = notify, echo
        # an adaptive cluster never gets more workers than stages that can run at once
        self._workers_wanted = max(1, min(width, self.jobs) if self.jobs else width)
        try:
            self._connect(distributed)
            if self._remote is None:  # workers on the shared file system read the probe
                (self.root / self._scratch).mkdir(parents=True, exist_ok=True)
                (self.root / self._probe).write_text(self._token, encoding="utf-8")
            if self.spec.kind is not ExecutorKind.CLUSTER_FILE:  # adaptive clusters start with no worker
                self._check_workers()
        except BaseException:
            self.close()
            raise

    def _connect(self, distributed: Any) -> None:
        spec = self.spec
        try:
            self._start_client(distributed)
        except ExecutorError:
            raise
        except (OSError, TimeoutError, RuntimeError, ValueError) as exc:  # a cluster that cannot start
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ExecutorError(f"cannot start {spec.describe()} ({spec.origin}): {first}") from None

    def _start_client(self, distributed: Any) -> None:
        spec = self.spec
        match spec.kind:
            case ExecutorKind.SCHEDULER:
                try:
                    self._client = distributed.Client(spec.address, timeout=spec.connect_timeout,
                                                      set_as_default=False)
                except (OSError, TimeoutError) as exc:
                    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    raise ExecutorError(f"cannot reach the Dask scheduler at {spec.address} ({spec.origin}):"
                                        f" {first}") from None
            case ExecutorKind.LOCAL_CLUSTER:
                # loopback only; the scheduler's HTTP server on any free port (8787 may be taken)
                self._cluster = distributed.LocalCluster(
                    n_workers=spec.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                    dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)
                self._client = distributed.Client(self._cluster, set_as_default=False)
            case ExecutorKind.CLUSTER_FILE:
                assert spec.cluster_file is not None
                self._cluster = make_cluster(read_cluster_file(spec.cluster_file))
                # never more workers than stages that can run at once
                self._cluster.adapt(minimum=0, maximum=self._workers_wanted)
                self._client = distributed.Client(self._cluster, set_as_default=False)
            case ExecutorKind.LOCAL:
                raise AssertionError("the local executor is not a Dask executor")

    def _check_workers(self) -> None:
        """At least one worker; each sees the project; some worker has each
        stage's resources.  All before any stage starts."""
        spec = self.spec
        try:
            self._client.wait_for_workers(1, timeout=spec.connect_timeout)
        except (TimeoutError, OSError):
            raise ExecutorError(f"no Dask worker joined {spec.describe()} within {spec.connect_timeout:g}s"
                                f" ({spec.origin})") from None
        if self._remote is None:
            seen = self._client.run(dask_task.sees_probe, str(self.root / self._probe), self._token,
                                    on_error="return")
            blind = sorted(worker for worker, ok in seen.items() if ok is not True)
            if blind:
                more = f" (and {len(blind) - 1} more)" if len(blind) > 1 else ""
                raise ExecutorError(dask_task.probe_message(blind[0], self.root) + more)
        workers = self._client.scheduler_info()["workers"].values()
        offered = [dict(w.get("resources") or {}) for w in workers]
        for address, wanted in self.resources.items():
            if not any(all(have.get(name, 0) >= amount for name, amount in wanted.items()) for have in offered):
                raise ExecutorError(f"stage '{address}' needs {format_resources(wanted)}, but no worker of"
                                    f" {spec.describe()} advertises it (dask worker --resources"
                                    f" \"{format_resources(wanted).replace(', ', ' ')}\")")

    # -- running ----------------------------------------------------------------

    def submit(self, job: Job) -> None:
        address = job.stage.address
        if self._remote is None:
            task, function = self._shared_task(job), dask_task.run_stage
        else:
            from pivot.backends.dask_remote_task import run_remote_stage

            task, function = self._remote_task(job), run_remote_stage
        if task is None:
            return  # refused: next_done reports it
        future = self._client.submit(function, task, key=f"pivot-{self.run_id}-{address}", pure=False,
                                     resources=dict(job.resources) or None)
        self._futures[future.key] = (job, future)
        future.add_done_callback(self._done.put)  # called on Dask's callback thread

    def _shared_task(self, job: Job) -> dask_task.StageTask:
        from pivot.backends.runner import log_relpath
        from pivot.state.locks import address_filename

        address = job.stage.address
        return dask_task.StageTask(
            run_id=self.run_id,
            root=str(self.root),
            stage=job.stage,
            log_relpath=log_relpath(address),
            probe_relpath=self._probe.as_posix(),
            probe_token=self._token,
            attempts_relpath=(self._scratch / address_filename(address, ".attempts")).as_posix(),
            retries=self.spec.retries,
            shell=self._shell,
            return_log=True,
        )

    def _remote_task(self, job: Job) -> Any:
        """The remote-data task, once the stage's inputs are on the remote;
        None (the stage failed, see ``_refused``) when they cannot be sent."""
        from pivot.backends.dask_remote_task import RemoteStageTask
        from pivot.errors import PivotError

        assert self._remote is not None
        try:
            inputs = self._remote.stage_inputs(job.stage)
        except (PivotError, OSError) as exc:
            now = time.time()
            # the remote's own errors name it (RemoteError)
            self._refused.append(Done(job.stage, None, now, now,
                                      error=" ".join(f"cannot send the stage's inputs: {exc}".split())))
            return None
        return RemoteStageTask(run_id=self.run_id, stage=job.stage, remote=self._remote.worker_remote,
                               inputs=inputs, shell=self._shell)

    def next_done(self, timeout: float) -> Done | None:
        if self._refused:
            return self._refused.pop(0)
        try:
            future = self._done.get(timeout=timeout)
        except queue.Empty:
            return None
        job, _ = self._futures.pop(future.key)
        return self._outcome(job, future)

    def _outcome(self, job: Job, future: Any) -> Done:
        stage = job.stage
        now = time.time()
        # after an interrupt, a task that did not finish (cancelled by pivot, or its
        # worker stopped by the same Ctrl-C) was interrupted, not failed
        if future.status != "finished" and self._signalled is not None:
            return Done(stage, execute.CommandsResult(-signal.SIGTERM, interrupted=True), now, now)
        if future.status == "cancelled":  # not by pivot: the scheduler went away, or someone cancelled it
            return Done(stage, None, now, now, error="the Dask scheduler cancelled the task (connection lost?)")
        if future.status != "finished":
            return Done(stage, None, now, now, error=self._task_error(future.exception()))
        outcome: dask_task.StageOutcome = future.result()
        if self._remote is not None:
            placed = self._bring_back(job, outcome)
            if placed is not None:
                return placed
        for lost in outcome.lost:
            self._notify(f"WARNING: worker {lost} was lost while running {stage.address}; outputs cleared,"
                         f" retried on {outcome.worker}")
        if self._echo is not None and outcome.log:
            for line in outcome.log.splitlines(keepends=True):
                self._echo(stage.address, line)
        return Done(stage, outcome.result(), outcome.started, outcome.ended, outcome.error, outcome.worker)

    def _bring_back(self, job: Job, outcome: dask_task.StageOutcome) -> Done | None:
        """Remote data: the worker's log into ``.pivot/logs/``, its outputs
        into the workspace; a failed Done when they cannot be placed."""
        from pivot.errors import PivotError

        assert self._remote is not None
        job.log_path.write_bytes(outcome.log)
        if outcome.outputs is None:
            return None
        try:
            self._remote.place_outputs(job.stage, outcome.outputs)
        except (PivotError, OSError) as exc:
            return Done(job.stage, None, outcome.started, outcome.ended,
                        error=" ".join(str(exc).split()), worker=outcome.worker)
        return None

    @staticmethod
    def _task_error(exc: BaseException | None) -> str:
        last = getattr(exc, "last_worker", None)  # distributed.scheduler.KilledWorker
        if last is not None:
            return (f"worker {getattr(last, 'address', last)} was lost while running the stage, and so were"
                    f" the workers of {getattr(exc, 'allowed_failures', '?')} earlier attempts")
        return f"the Dask task failed: {type(exc).__name__}: {exc}".splitlines()[0]

    # -- stopping -----------------------------------------------------------------

    def interrupt(self, kill: bool) -> None:
        """Stop the run's commands on every worker and cancel what no worker holds yet."""
        sig = signal.SIGKILL if kill else signal.SIGTERM
        if self._client is None or self._signalled == sig:
            return
        self._signalled = sig
        self._broadcast(dask_task.stop_run, self.run_id, sig)
        if sig == signal.SIGTERM:
            try:
                held = {key for keys in self._client.processing().values() for key in keys}
                queued = [future for key, (_, future) in self._futures.items() if key not in held]
                self._client.cancel(queued)
            except (OSError, TimeoutError):
                pass  # the scheduler is gone: nothing more will start anyway

    def _broadcast(self, function, *args) -> None:
        """``Client.run`` on every worker, bounded in time (a hung worker must not hang pivot)."""
        client = self._client

        def call() -> None:
            try:
                client.run(function, *args, on_error="ignore")
            except Exception:  # noqa: BLE001 -- best effort: a dead scheduler has no workers to stop
                pass

        thread = threading.Thread(target=call, name="pivot-dask-broadcast", daemon=True)
        thread.start()
        thread.join(BROADCAST_TIMEOUT)

    def close(self) -> None:
        if self._client is not None:
            if self._futures:
                try:
                    self._client.cancel([future for _, future in self._futures.values()])
                except Exception:  # noqa: BLE001 -- closing anyway
                    pass
            self._broadcast(dask_task.forget_run, self.run_id)
            try:
                self._client.close()
            except Exception:  # noqa: BLE001
                pass
            self._client = None
        if self._cluster is not None:
            try:
                self._cluster.close()
            except Exception:  # noqa: BLE001
                pass
            self._cluster = None
        shutil.rmtree(self.root / self._scratch, ignore_errors=True)
        for handler, level in self._quieted:
            handler.setLevel(level)
        self._quieted = []

