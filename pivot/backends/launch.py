"""Starting a run: the runner for a plan with work, a cheap record otherwise.

A no-op ``pivot run`` must cost what ``pivot status`` costs, so this module
imports the runner, progress and process modules only when some stage has
work to do.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from pivot.backends.executor_config import ExecutorSpec
    from pivot.backends.progress import Summary
    from pivot.backends.runner import RunOptions
    from pivot.ir import Pipeline
    from pivot.optimizer import Plan
    from pivot.project import Project


def run_plan(proj: "Project", pipeline: "Pipeline", state, plan: "Plan", argv: Sequence[str],
             options: "RunOptions", executor: "ExecutorSpec | None" = None) -> "Summary":
    """Run the plan's work with a progress display on stdout and an audit
    record, on the local executor or the Dask one ``executor`` names."""
    from pivot.backends.progress import Progress, Verbosity, use_status_line
    from pivot.backends.runner import Runner
    from pivot.state.audit import AuditWriter

    if executor is not None and not executor.is_local:
        from pivot.backends.dask_executor import require_distributed

        require_distributed()  # before anything is recorded: the one-line pip hint

    stream = sys.stdout
    status_line = use_status_line(stream)
    verbosity = Verbosity.QUIET if options.quiet else Verbosity.VERBOSE if options.verbose else Verbosity.NORMAL

    def make_progress(total: int) -> Progress:
        return Progress(stream, total, status_line=status_line, prefix_output=options.jobs != 1,
                        verbosity=verbosity)

    with AuditWriter(proj, "run", argv) as audit:
        dask = None
        resources: dict = {}
        if executor is not None and not executor.is_local:
            from pivot.backends.dask_executor import DaskExecutor
            from pivot.backends.executor_config import stage_resources
            from pivot.optimizer import WORK_ACTIONS

            work = [d.address for d in plan.decisions if d.action in WORK_ACTIONS]
            resources = stage_resources(proj.state_dir, work)
            dask = DaskExecutor(executor, proj.root, audit.run_id, options.jobs, resources, state=state)
        runner = Runner(pipeline, state, options, progress_factory=make_progress, audit=audit, executor=dask,
                        resources=resources)
        summary = runner.run(plan)
        if not (summary.failed or summary.interrupted):  # history for `pivot metrics history`
            from pivot.reports.history import record_values
            record_values(audit, pipeline, state)
        audit.close("interrupted" if summary.interrupted else ("failed" if summary.failed else "ok"))
    return summary


def record_no_op(proj: "Project", argv: Sequence[str], plan: "Plan") -> str:
    """Nothing to do: write the audit record (one line of skipped stages) and
    return the summary line the runner would print, without loading it."""
    from pivot.optimizer import Action
    from pivot.state.audit import AuditWriter

    started = time.monotonic()
    frozen = [d.address for d in plan.decisions if d.action is Action.FROZEN]
    up_to_date = [d.address for d in plan.decisions if d.action is not Action.FROZEN]
    with AuditWriter(proj, "run", argv) as audit:
        audit.skipped(up_to_date, "up to date")
        audit.skipped(frozen, "frozen")
        audit.close("ok")
    wall = time.monotonic() - started
    took = f"{wall * 1000:.0f}ms" if wall < 1 else f"{wall:.2f}s"  # as progress.render_summary writes it
    return f"0 ran, 0 restored, {len(plan.decisions)} up to date, 0 failed in {took}"
