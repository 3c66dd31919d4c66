"""Direct parallel execution of a plan.

One coordinating thread (the caller's) owns the State: it decides what
starts, restores outputs from the cache, re-checks stages whose only
reason was an upstream one (early cutoff), commits records and writes the
audit trail.  A fixed set of worker threads -- created once, never more
than ``jobs`` -- only clears outputs and runs commands.  A stage starts as
soon as every stage it depends on in the plan has settled, not level by
level.

On SIGINT/SIGTERM the running commands' process groups are terminated,
completed stages keep their records, interrupted ones get none.
"""

from __future__ import annotations

import heapq
import os
import queue
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence, assert_never

from pivot.backends import execute, outputs
from pivot.backends.environment import stage_env
from pivot.backends.progress import Failure, Progress, Summary
from pivot.errors import PivotError
from pivot.ir import Pipeline, Stage
from pivot.state.audit import AuditWriter, Outcome, ReasonNote, StageEntry

# After SIGTERM, how long running commands get before SIGKILL.
KILL_GRACE_SECONDS = 5.0
LOGS_DIR = "logs"
CUTOFF_TEXT = "upstream outputs unchanged"


@dataclass(frozen=True, slots=True)
class RunOptions:
    jobs: int
    keep_going: bool = False
    force: bool = False
    verbose: bool = False
    run_cache: bool = True  # restore stages from earlier runs with the same key


@dataclass(frozen=True, slots=True)
class _Job:
    stage: Stage
    log_path: Path


@dataclass(frozen=True, slots=True)
class _Done:
    stage: Stage
    result: execute.CommandsResult | None  # None: preparing outputs failed
    started: float
    ended: float
    error: str | None = None


def log_relpath(address: str) -> str:
    """Where a stage's output goes: ``.pivot/logs/<escaped address>.log``,
    named as its lock record is (``sub/dvc.yaml:build`` ->
    ``sub%2Fdvc%2Eyaml%3Abuild.log``; long names cut and hashed)."""
    from pivot.state.locks import address_filename

    return f".pivot/{LOGS_DIR}/{address_filename(address, '.log')}"


def note(reason) -> ReasonNote:
    """A typed optimizer reason as kind + rendered text, for records."""
    return ReasonNote(kind=reason.kind.name.lower(), text=reason.describe())


def _is_upstream_only(reasons: Sequence) -> bool:
    from pivot.optimizer import ReasonKind

    return bool(reasons) and all(r.kind is ReasonKind.UPSTREAM for r in reasons)


class Interrupt:
    """SIGINT/SIGTERM while running: note it and stop every process group."""

    def __init__(self, groups: execute.ProcessGroups) -> None:
        self.groups = groups
        self.at: float | None = None
        self.killed = False

    @property
    def requested(self) -> bool:
        return self.at is not None

    def __call__(self, signum, frame) -> None:
        if self.at is None:
            self.at = time.monotonic()
            self.groups.stop(signal.SIGTERM)
        else:  # asked twice: no more grace
            self.killed = True
            self.groups.stop(signal.SIGKILL)

    @property
    def given_up(self) -> bool:
        """Killed, and still some stage has not come back after another grace
        period: stop waiting for it rather than hang."""
        return self.at is not None and time.monotonic() - self.at > 2 * KILL_GRACE_SECONDS

    def escalate(self) -> None:
        """SIGKILL what survived the grace period."""
        if self.at is not None and not self.killed and time.monotonic() - self.at > KILL_GRACE_SECONDS:
            self.killed = True
            self.groups.stop(signal.SIGKILL)

    def terminate(self) -> None:
        """What a first signal does, for an error: SIGTERM every group now
        (and, through ``end_survivors``, SIGKILL after the grace period)."""
        if self.at is None:
            self.at = time.monotonic()
            self.groups.stop(signal.SIGTERM)

    def end_survivors(self) -> None:
        """Before pivot exits after an interrupt: every stage's shell has
        ended, but something it started may ignore SIGTERM.  Wait for the
        signalled groups to empty until the grace period is over, then
        SIGKILL what is left (no wait at all when nothing survived)."""
        if self.at is None or self.killed:
            return
        while self.groups.survivors():
            if time.monotonic() - self.at > KILL_GRACE_SECONDS:
                self.killed = True
                self.groups.stop(signal.SIGKILL)
                return
            time.sleep(0.05)

    @contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


@dataclass
class _Tally:
    ran: int = 0
    restored: int = 0
    up_to_date: int = 0
    blocked: int = 0
    failures: list[Failure] = field(default_factory=list)


class Runner:
    """Executes one plan against one open State."""

    def __init__(
        self,
        pipeline: Pipeline,
        state,
        options: RunOptions,
        *,
        progress_factory: Callable[[int], Progress],
        audit: AuditWriter,
    ) -> None:
        self.pipeline = pipeline
        self.state = state
        self.options = options
        self.root: Path = state.project.root
        self._progress_factory = progress_factory
        self.audit = audit
        self.groups = execute.ProcessGroups()
        self.interrupt = Interrupt(self.groups)
        self._shell = execute.shell_prefix()
        self._base_env = dict(os.environ)
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[_Done] = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._tally = _Tally()
        self._reasons: dict[str, tuple[ReasonNote, ...]] = {}

    # -- the coordinating loop ----------------------------------------------

    def run(self, plan) -> Summary:
        """Run every decision of ``plan``; returns the summary (also printed)."""
        from pivot.optimizer import WORK_ACTIONS

        started = time.monotonic()
        decisions = {d.stage.address: d for d in plan.decisions}
        order = {address: i for i, address in enumerate(decisions)}
        pending = {a for a, d in decisions.items() if d.action in WORK_ACTIONS}
        progress = self._progress_factory(len(pending))
        self.progress = progress

        # stages with nothing to do: one audit line per message, not one per stage
        skipped: dict[str, list[str]] = {}
        for address, decision in decisions.items():
            if address not in pending:
                skipped.setdefault(_skip_text(decision), []).append(address)
        for message, addresses in skipped.items():
            self._tally.up_to_date += len(addresses)
            self.audit.skipped(addresses, message)

        waiting = {a: {u for u in self.pipeline.upstream[a] if u in pending} for a in pending}
        ready: list[tuple[int, str]] = [(order[a], a) for a in pending if not waiting[a]]
        heapq.heapify(ready)
        running: dict[str, float] = {}
        stop_reason: str | None = None

        if pending:
            (self.root / ".pivot" / LOGS_DIR).mkdir(parents=True, exist_ok=True)

        with self.interrupt.installed(), self._cleanup_on_error():
            while ready or running:
                if self.interrupt.requested and stop_reason is None:
                    stop_reason = "run interrupted"
                while ready and stop_reason is None and len(running) < self.options.jobs:
                    _, address = heapq.heappop(ready)
                    outcome = self._start(decisions[address], running)
                    if outcome is not None:
                        stop_reason = self._settled(address, outcome, pending, waiting, ready, order, stop_reason)
                if not running:
                    break
                done = self._next_done()
                if done is None:
                    if self.interrupt.given_up:
                        self._abandon(running, pending)
                    continue
                del running[done.stage.address]
                outcome = self._finish(done)
                stop_reason = self._settled(done.stage.address, outcome, pending, waiting, ready, order, stop_reason)
            self._stop_workers()
            self.interrupt.end_survivors()

        # Whatever never started: stopped by a failure or an interrupt.
        if self.interrupt.requested:
            stop_reason = "run interrupted"
        for address in sorted(pending, key=order.__getitem__):
            self._settle(StageEntry(address, Outcome.BLOCKED, message=f"not started: {stop_reason}"))
        summary = Summary(
            ran=self._tally.ran,
            restored=self._tally.restored,
            up_to_date=self._tally.up_to_date,
            failed=tuple(self._tally.failures),
            blocked=self._tally.blocked,
            interrupted=self.interrupt.requested,
            wall=time.monotonic() - started,
        )
        progress.finish(summary)
        return summary

    @contextmanager
    def _cleanup_on_error(self) -> Iterator[None]:
        """An unexpected error (disk full while committing...) must not leave
        commands running behind pivot's back."""
        try:
            yield
        except BaseException:
            self.interrupt.terminate()
            self._stop_workers()
            self.interrupt.end_survivors()
            raise

    def _abandon(self, running: dict[str, float], pending: set[str]) -> None:
        """Give up on stages that did not end after SIGKILL: they get no record."""
        for address in list(running):
            self._settle(StageEntry(address, Outcome.INTERRUPTED, self._reasons.get(address, ()), running[address],
                                    time.time(), None, None, "did not end after SIGKILL; abandoned"))
            pending.discard(address)
        running.clear()

    def _next_done(self) -> _Done | None:
        """The next finished stage; wakes up regularly so signals are seen."""
        try:
            return self._done.get(timeout=0.25)
        except queue.Empty:
            self.interrupt.escalate()
            return None

    def _settled(self, address, outcome, pending, waiting, ready, order, stop_reason) -> str | None:
        """Update the schedule after ``address`` settled; returns the stop reason."""
        if outcome is Outcome.FAILED:
            for blocked in self._block_downstream(address, pending):
                waiting.pop(blocked, None)
            if not self.options.keep_going and stop_reason is None:
                return f"run stopped after {address} failed"
        elif outcome is not Outcome.INTERRUPTED:
            self._release(address, waiting, ready, order, pending)
        else:
            pending.discard(address)
        return stop_reason

    def _release(self, address: str, waiting, ready, order, pending) -> None:
        """``address`` settled without failing: downstream stages may start."""
        pending.discard(address)
        for consumer in self.pipeline.downstream[address]:
            if consumer in waiting and address in waiting[consumer]:
                waiting[consumer].discard(address)
                if not waiting[consumer]:
                    heapq.heappush(ready, (order[consumer], consumer))

    def _block_downstream(self, failed: str, pending) -> list[str]:
        """Every pending stage downstream of ``failed`` is blocked, transitively."""
        blocked: list[str] = []
        stack = list(self.pipeline.downstream[failed])
        while stack:
            address = stack.pop()
            if address not in pending:
                continue
            pending.discard(address)
            blocked.append(address)
            self._settle(StageEntry(address, Outcome.BLOCKED, message=f"upstream {failed} failed"))
            stack.extend(self.pipeline.downstream[address])
        pending.discard(failed)
        return blocked

    # -- starting and finishing one stage -------------------------------------

    def _start(self, decision, running: dict[str, float]) -> Outcome | None:
        """Start ``decision``'s stage; returns its outcome if it settled at once
        (restored, cut off early, failed to restore), None if it is now running."""
        from pivot import optimizer
        from pivot.optimizer import Action

        stage = decision.stage
        if decision.action is Action.RUN and not self.options.force and _is_upstream_only(decision.reasons):
            # Early cutoff: the upstream stages are done; maybe they changed nothing.
            decision = optimizer.check_stage(stage, self.state)
            if self.options.run_cache:
                decision = optimizer.consult_run_cache(decision, self.state)
        match decision.action:
            case Action.UP_TO_DATE | Action.FROZEN:  # only after the early cutoff's re-check
                self._settle(StageEntry(stage.address, Outcome.SKIPPED, message=CUTOFF_TEXT))
                return Outcome.SKIPPED
            case Action.RECORD_FROZEN:
                return self._record_frozen(stage, decision)
            case Action.CHECKOUT | Action.RESTORE_RUN:
                outcome = self._restore(stage, decision)
                if outcome is not None:
                    return outcome
                return self._launch(decision, running)  # the restore could not happen: run instead
            case Action.RUN:
                return self._launch(decision, running)
        assert_never(decision.action)

    def _launch(self, decision, running: dict[str, float]) -> None:
        """Hand the stage's commands to a worker."""
        stage = decision.stage
        reasons = tuple(note(r) for r in decision.reasons)
        self._reasons[stage.address] = reasons
        self.progress.started(stage.address, reasons)
        running[stage.address] = time.time()
        self._ensure_worker(len(running))
        self._jobs.put(_Job(stage, self.root / log_relpath(stage.address)))

    def _record_frozen(self, stage: Stage, decision) -> Outcome:
        """A frozen stage never runs (DVC): its outs must exist, and are
        recorded as they are."""
        from pivot.state import record

        started = time.time()
        reasons = tuple(note(r) for r in decision.reasons)
        missing = [out.path for out in stage.outs if not os.path.exists(self.root / out.path)]
        if missing:
            names = ", ".join(f"'{path}'" for path in missing)
            return self._fail(stage, started, reasons=reasons,
                              message=f"frozen stage is missing output {names} (frozen stages never run;"
                                      " restore it or unfreeze the stage)")
        try:
            record.commit_stage(stage, self.state, adopted_from=decision.record.adopted_from
                                if decision.record is not None else None)
        except PivotError as exc:
            return self._fail(stage, started, message=str(exc), reasons=reasons)
        self._settle(StageEntry(stage.address, Outcome.COMMITTED, reasons=reasons, started=started,
                                ended=time.time(), message="frozen: outputs recorded, command not run"))
        return Outcome.COMMITTED

    def _restore(self, stage: Stage, decision) -> Outcome | None:
        """Bring the outputs back from where the decision says; None when
        that cannot happen (an object missing, or corrupt and removed --
        perhaps by a stage restoring the same object just before): the
        stage must run instead."""
        from pivot.state.restore import RestoreSource, restore_stage

        started = time.time()
        reasons = tuple(note(r) for r in decision.reasons)
        source = decision.source
        try:
            report = restore_stage(stage, self.state, source, record=decision.record, run_entry=decision.run_entry)
        except (PivotError, OSError) as exc:
            return self._fail(stage, started, message=f"cannot restore outputs from {source.describe()}: {exc}",
                              reasons=reasons)
        if not report.complete:
            why = "; ".join(report.problems) or f"not in {source.describe()}: {', '.join(report.missing)}"
            self.progress.note(f"WARNING: {why}; running {stage.address}")
            return None
        match source:
            case RestoreSource.RUN_CACHE:
                message = f"from the run cache: {decision.run_entry.describe()}"
            case RestoreSource.DVC_CACHE:
                message = "from DVC's cache"
            case RestoreSource.CACHE:
                message = None  # the progress line says "from cache"
            case RestoreSource.REMOTE:
                message = "from the remote"
            case RestoreSource.REMOTE_RUN_CACHE:
                message = f"from the remote run cache: {decision.run_entry.describe()}"
        self._settle(StageEntry(stage.address, Outcome.RESTORED, reasons=reasons, started=started,
                                ended=time.time(), message=message))
        return Outcome.RESTORED

    def _finish(self, done: _Done) -> Outcome:
        """Record a stage whose commands ended: commit it, or report why not."""
        from pivot.state import record

        stage = done.stage
        reasons = self._reasons.get(stage.address, ())
        log = log_relpath(stage.address)
        result = done.result
        if result is None:  # no command ran: the error says it all, the log is empty
            return self._fail(stage, done.started, message=done.error, reasons=reasons)
        if result.interrupted:
            self._settle(
                StageEntry(stage.address, Outcome.INTERRUPTED, reasons, done.started, done.ended, result.exit_code, log)
            )
            return Outcome.INTERRUPTED
        if not result.ok:
            return self._fail(
                stage,
                done.started,
                message=f"command failed: {result.failed_command}",
                reasons=reasons,
                log=log,
                exit_code=result.exit_code,
            )
        for out in stage.outs:
            self.state.hasher.invalidate(out.path)
        try:
            record.commit_stage(stage, self.state)
        except PivotError as exc:
            return self._fail(stage, done.started, message=str(exc), reasons=reasons, log=log, exit_code=0)
        self._settle(StageEntry(stage.address, Outcome.RAN, reasons, done.started, time.time(), 0, log))
        return Outcome.RAN

    def _fail(self, stage, started, *, message, reasons=(), log=None, exit_code=None) -> Outcome:
        entry = StageEntry(
            stage.address,
            Outcome.FAILED,
            tuple(r if isinstance(r, ReasonNote) else note(r) for r in reasons),
            started,
            time.time(),
            exit_code,
            log,
            message,
        )
        tail = execute.log_tail(self.root / log) if log else ""
        self._tally.failures.append(Failure(stage.address, exit_code, log, message, tail))
        self.audit.stage(entry)
        self.progress.settled(entry, tail)
        return Outcome.FAILED

    def _settle(self, entry: StageEntry) -> None:
        match entry.outcome:
            case Outcome.RAN:
                self._tally.ran += 1
            case Outcome.RESTORED:
                self._tally.restored += 1
            case Outcome.SKIPPED | Outcome.COMMITTED:
                self._tally.up_to_date += 1
            case Outcome.BLOCKED:
                self._tally.blocked += 1
        self.audit.stage(entry)
        if entry.outcome is not Outcome.SKIPPED or entry.message == CUTOFF_TEXT:
            self.progress.settled(entry)

    def _relative(self, path) -> str:
        """``path`` relative to the project root when inside it (for messages)."""
        try:
            return Path(path).relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    # -- workers ----------------------------------------------------------------

    def _ensure_worker(self, busy: int) -> None:
        if len(self._workers) < min(busy, self.options.jobs):
            worker = threading.Thread(target=self._work, name=f"pivot-worker-{len(self._workers)}", daemon=True)
            worker.start()
            self._workers.append(worker)

    def _stop_workers(self) -> None:
        for _ in self._workers:
            self._jobs.put(None)
        # after an interrupt, a worker stuck beyond SIGKILL is left behind (daemon thread)
        timeout = KILL_GRACE_SECONDS if self.interrupt.requested else None
        for worker in self._workers:
            worker.join(timeout)
        self._workers.clear()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            started = time.time()
            try:
                done = self._execute(job)
            except BaseException as exc:  # noqa: BLE001 -- the coordinator must always hear back
                message = f"internal error while running the stage: {type(exc).__name__}: {exc}"
                done = _Done(job.stage, None, started, time.time(), error=message)
            self._done.put(done)

    def _execute(self, job: _Job) -> _Done:
        """Clear the outputs, then run the commands (worker thread; no State)."""
        stage = job.stage
        started = time.time()
        # the log describes this run from the start: a failure before any
        # command ran must not show the previous run's output
        job.log_path.write_bytes(b"")
        try:
            outputs.prepare(self.root, stage)
        except OSError as exc:
            where = f": '{self._relative(exc.filename)}'" if exc.filename else ""
            return _Done(stage, None, started, time.time(),
                         error=f"cannot prepare outputs: {exc.strerror or exc}{where}")
        except PivotError as exc:
            return _Done(stage, None, started, time.time(), error=str(exc))
        env = {**self._base_env, **stage_env(self.root, stage)}
        echo = None
        if self.options.verbose:
            address = stage.address
            echo = lambda data: self.progress.output(address, data)  # noqa: E731
        result = execute.run_commands(
            stage.cmds,
            cwd=self.root / stage.wdir,
            env=env,
            log_path=job.log_path,
            groups=self.groups,
            shell=self._shell,
            echo=echo,
        )
        return _Done(stage, result, started, time.time())


def _skip_text(decision) -> str:
    from pivot.optimizer import Action

    match decision.action:
        case Action.FROZEN:
            return "frozen"
        case Action.UP_TO_DATE:
            return "up to date"
        case Action.RUN | Action.CHECKOUT | Action.RESTORE_RUN | Action.RECORD_FROZEN:
            raise AssertionError(f"{decision.address}: {decision.action.name} is work, not a skip")
    assert_never(decision.action)
