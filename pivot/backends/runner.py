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

import os
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Mapping, Sequence, assert_never

from pivot.backends import execute, heap
from pivot.backends.executor import Done, Executor, Job, LocalExecutor
from pivot.backends.progress import Failure, Progress, Summary
from pivot.backends.schedule import Schedule
from pivot.errors import PivotError
from pivot.ir import Pipeline, Stage
from pivot.state.audit import AuditWriter, Outcome, ReasonNote, StageEntry

if TYPE_CHECKING:
    from pivot.state.hashing import Hasher

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
    quiet: bool = False  # only failures, warnings and the summary
    run_cache: bool = True  # restore stages from earlier runs with the same key


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
    """Executes one plan against one open State.

    The runner is the coordinator: it alone touches the State.  Which stage
    may start is the ``Schedule``'s business; where its commands run is the
    ``Executor``'s (worker threads here, or a Dask cluster).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        state,
        options: RunOptions,
        *,
        progress_factory: Callable[[int], Progress],
        audit: AuditWriter,
        executor: Executor | None = None,
        resources: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.state = state
        self.options = options
        self.root: Path = state.project.root
        self._progress_factory = progress_factory
        self.audit = audit
        self.groups = execute.ProcessGroups()
        self.interrupt = Interrupt(self.groups)
        self.executor: Executor = executor or LocalExecutor(self.root, options.jobs, self.groups)
        self._resources = resources or {}
        self._tally = _Tally()
        self._settled_count = 0  # stages settled, for heap.TRIM_EVERY
        self._reasons: dict[str, tuple[ReasonNote, ...]] = {}  # of the running stages only

    # -- the coordinating loop ----------------------------------------------

    def run(self, plan) -> Summary:
        """Run every decision of ``plan``; returns the summary (also printed)."""
        from pivot.optimizer import WORK_ACTIONS

        started = time.monotonic()
        decisions = {d.stage.address: d for d in plan.decisions}
        work = [a for a, d in decisions.items() if d.action in WORK_ACTIONS]
        progress = self._progress_factory(len(work))
        self.progress = progress

        # stages with nothing to do: one audit line per message, not one per stage
        skipped: dict[str, list[str]] = {}
        for address, decision in decisions.items():
            if decision.action not in WORK_ACTIONS:
                skipped.setdefault(_skip_text(decision), []).append(address)
        for message, addresses in skipped.items():
            self._tally.up_to_date += len(addresses)
            self.audit.skipped(addresses, message)

        schedule = Schedule(work, self.pipeline.upstream, self.pipeline.downstream)
        self._hashes_in_use = _HashesInUse(work, self.pipeline, self.state.hasher)
        self._prefetch(plan.decisions)
        if work:
            (self.root / ".pivot" / LOGS_DIR).mkdir(parents=True, exist_ok=True)
            echo = progress.output if self.options.verbose else None
            self.executor.open(schedule.width(), progress.note, echo)

        with self.interrupt.installed(), self._cleanup_on_error():
            while not schedule.finished:
                if self.interrupt.requested:
                    schedule.stop("run interrupted")
                    self.executor.interrupt(self.interrupt.killed)
                while schedule.can_start(self.executor.capacity):
                    address = schedule.next_ready()
                    outcome = self._start(decisions[address], schedule)
                    if outcome is not None:
                        self._settled(address, outcome, schedule)
                if not schedule.running:
                    break
                done = self.executor.next_done(timeout=0.25)  # wakes up regularly so signals are seen
                if done is None:
                    self.interrupt.escalate()
                    if self.interrupt.given_up:
                        self._abandon(schedule)
                    continue
                self._settled(done.stage.address, self._finish(done), schedule)
            self.executor.close()
            self.interrupt.end_survivors()

        # Whatever never started: stopped by a failure or an interrupt.
        stop_reason = "run interrupted" if self.interrupt.requested else schedule.stop_reason
        for address in schedule.unstarted():
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
            self.executor.interrupt(kill=False)
            self.executor.close()
            self.interrupt.end_survivors()
            raise

    def _abandon(self, schedule: Schedule) -> None:
        """Give up on stages that did not end after SIGKILL: they get no record."""
        for address, started in schedule.abandon().items():
            self._settle(StageEntry(address, Outcome.INTERRUPTED, self._reasons.pop(address, ()), started,
                                    time.time(), None, None, "did not end after SIGKILL; abandoned"))

    def _settled(self, address: str, outcome: Outcome, schedule: Schedule) -> None:
        """Update the schedule after ``address`` reached ``outcome``."""
        self._hashes_in_use.settled(address)
        self._settled_count += 1
        if self._settled_count % heap.TRIM_EVERY == 0:
            heap.release_free_memory()  # what settled stages freed: flat memory over a long run
        match outcome:
            case Outcome.FAILED:
                for blocked in schedule.failed(address):
                    self._settle(StageEntry(blocked, Outcome.BLOCKED, message=f"upstream {address} failed"))
                if not self.options.keep_going:
                    schedule.stop(f"run stopped after {address} failed")
                return
            case Outcome.INTERRUPTED:
                schedule.interrupted(address)
                return
            case Outcome.RAN | Outcome.RESTORED | Outcome.SKIPPED | Outcome.COMMITTED:
                schedule.succeeded(address)
                return
            case Outcome.BLOCKED:
                raise AssertionError(f"{address}: a started stage cannot be blocked")
        assert_never(outcome)

    # -- starting and finishing one stage -------------------------------------

    def _start(self, decision, schedule: Schedule) -> Outcome | None:
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
                return self._launch(decision, schedule)  # the restore could not happen: run instead
            case Action.RUN:
                return self._launch(decision, schedule)
        assert_never(decision.action)

    def _launch(self, decision, schedule: Schedule) -> Outcome | None:
        """Hand the stage's commands to the executor; a stage whose deps are
        missing fails before anything runs (DVC refuses it too): a fresh
        clone before its data is pulled gets one clear line per stage."""
        stage = decision.stage
        missing = [dep.path for dep in stage.deps if not os.path.lexists(self.root / dep.path)]
        if missing:
            names = ", ".join(f"'{path}'" for path in missing)
            return self._fail(stage, time.time(), reasons=decision.reasons,
                              message=f"missing dependenc{'ies' if len(missing) > 1 else 'y'} {names}: no stage "
                                      "produces it and it is not in the workspace (pull or create it)")
        reasons = tuple(note(r) for r in decision.reasons)
        self._reasons[stage.address] = reasons
        self.progress.started(stage.address, reasons)
        schedule.started(stage.address, time.time())
        self.executor.submit(Job(stage, self.root / log_relpath(stage.address),
                                 self._resources.get(stage.address, {})))
        return None

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

    def _prefetch(self, decisions) -> None:
        """Outputs restored from the remote are downloaded in one batch
        before the first stage starts (see ``restore.prefetch_from_remote``)."""
        if self.state.remote is None:
            return
        from pivot.state.restore import prefetch_from_remote

        prefetch_from_remote(decisions, self.state)

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

    def _finish(self, done: Done) -> Outcome:
        """Record a stage whose commands ended: commit it, or report why not."""
        from pivot.state import record

        stage = done.stage
        # dropped once the stage is back: a run keeps nothing per settled stage (flat memory at 100,000 stages)
        reasons = self._reasons.pop(stage.address, ())
        log = log_relpath(stage.address)
        result = done.result
        worker = done.worker
        if result is None:  # no command ran: the error says it all, the log is empty
            return self._fail(stage, done.started, message=done.error, reasons=reasons, worker=worker)
        if result.interrupted:
            self._settle(StageEntry(stage.address, Outcome.INTERRUPTED, reasons, done.started, done.ended,
                                    result.exit_code, log, worker=worker))
            return Outcome.INTERRUPTED
        if not result.ok:
            return self._fail(
                stage,
                done.started,
                message=f"command failed: {result.failed_command}",
                reasons=reasons,
                log=log,
                exit_code=result.exit_code,
                worker=worker,
            )
        for out in stage.outs:
            self.state.hasher.invalidate(out.path)
        try:
            record.commit_stage(stage, self.state)
        except PivotError as exc:
            return self._fail(stage, done.started, message=str(exc), reasons=reasons, log=log, exit_code=0,
                              worker=worker)
        self._settle(StageEntry(stage.address, Outcome.RAN, reasons, done.started, time.time(), 0, log,
                                worker=worker))
        return Outcome.RAN

    def _fail(self, stage, started, *, message, reasons=(), log=None, exit_code=None, worker=None) -> Outcome:
        entry = StageEntry(
            stage.address,
            Outcome.FAILED,
            tuple(r if isinstance(r, ReasonNote) else note(r) for r in reasons),
            started,
            time.time(),
            exit_code,
            log,
            message,
            worker,
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


class _HashesInUse:
    """The hashes of a stage's outs stay memoised (in the hasher) while a
    stage still to settle in this run may read them as deps, and are
    forgotten then: at 100,000 stages, keeping every output's hash to the
    end was most of a run's growing memory."""

    def __init__(self, work: list[str], pipeline: "Pipeline", hasher: "Hasher") -> None:
        self._pending = set(work)
        self._readers = {a: sum(1 for d in pipeline.downstream[a] if d in self._pending) for a in work}
        self._pipeline = pipeline
        self._hasher = hasher

    def settled(self, address: str) -> None:
        if address not in self._pending:
            return
        self._pending.discard(address)
        for upstream in self._pipeline.upstream[address]:
            left = self._readers.get(upstream)
            if left is None:  # not part of this run, or already forgotten
                continue
            self._readers[upstream] = left - 1
            if left == 1 and upstream not in self._pending:
                self._forget(upstream)
        if self._readers.get(address) == 0:
            self._forget(address)

    def _forget(self, address: str) -> None:
        del self._readers[address]
        for out in self._pipeline.stage(address).outs:
            self._hasher.forget(out.path)
