"""``pivot run``: run the stale stages, in parallel."""

from __future__ import annotations

import os
import sys

import click

from pivot.cli import common


@click.command(help="Run the stale stages of TARGETS (default: every stage), in parallel.")
@common.targets_argument()
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None, help="Stages run at once [default: CPUs].")
@click.option("-k", "--keep-going", is_flag=True, help="After a failure, go on with independent stages.")
@click.option("-f", "--force", is_flag=True, help="Run every selected stage, stale or not.")
@click.option("--downstream", is_flag=True, help="Targets plus what depends on them (not their upstream).")
@click.option("-s", "--single-item", is_flag=True, help="Only the targets, without upstream stages.")
@click.option("--dry", is_flag=True, help="Print the plan (as `pivot plan` does) and run nothing.")
@click.option("-v", "--verbose", is_flag=True, help="Also a line as each stage starts, and command output live.")
@click.option("-q", "--quiet", is_flag=True, help="Print only failures, warnings and the summary.")
@click.option("--no-run-cache", is_flag=True, help="Never restore stages from earlier runs (see docs/runcache.md).")
@common.remote_options
@click.option("--executor", "executor", metavar="WHERE", default=None,
              help="Where stages run: local, dask://HOST:PORT, dask-local:N or a cluster FILE.yaml"
                   " [default: $PIVOT_EXECUTOR, else [executor] in .pivot/config, else local]."
                   " See docs/distributed.md.")
@click.option("--executor-data", "executor_data", type=click.Choice(["shared", "remote"]), default=None,
              help="How Dask workers reach the data: shared (the project at the same path) or remote"
                   " (deps and outputs move through the default remote) [default: [executor] data in"
                   " .pivot/config, else shared].")
def command(
    targets: tuple[str, ...],
    jobs: int | None,
    keep_going: bool,
    force: bool,
    downstream: bool,
    single_item: bool,
    dry: bool,
    verbose: bool,
    quiet: bool,
    no_run_cache: bool,
    remote_name: str | None,
    no_remote: bool,
    executor: str | None,
    executor_data: str | None,
) -> None:
    from pivot.backends import executor_config, launch
    from pivot.state import State
    from pivot.state.record import persist_adoptions
    from pivot.state.runlock import RunLock

    if verbose and quiet:
        common.fail("-v and -q cannot be used together")
    proj = common.project()
    selection = dict(force=force, downstream=downstream, single_item=single_item, run_cache=not no_run_cache)
    if dry:
        from pivot.backends import report

        # exactly what `pivot plan` does, so the two always print the same
        with State.open(proj, inspect=True) as state, \
                common.remote_for_plans(state, proj, remote_name, enabled=not no_remote):
            _, plan = common.plan_selected(proj, state, targets, printed_only=True, **selection)
        resources = executor_config.stage_resources(proj.state_dir, [d.address for d in plan.decisions])
        click.echo(report.plan_text(plan, resources), nl=False)
        return

    where = executor_config.resolve(executor, proj.root, proj.state_dir, executor_data)
    if where.data is executor_config.ExecutorData.REMOTE:
        if where.is_local:
            if executor_data:  # a config default is harmless for a local run; the flag is a mistake
                common.fail("--executor-data remote needs a Dask executor (--executor dask://HOST:PORT, ...)")
        else:
            from pivot.backends.remote_data import open_default_remote

            open_default_remote(proj.root, proj.state_dir)  # no default remote: one line, before anything runs
    # on a cluster, without -j, the cluster's workers (and the plan's width) set the pace
    jobs = jobs or ((os.cpu_count() or 1) if where.is_local else 0)
    argv = _argv(targets, jobs, keep_going, force, downstream, single_item, verbose, no_run_cache, executor,
                 executor_data, quiet)
    with RunLock(proj, "run"), State.open(proj) as state, \
            common.remote_for_plans(state, proj, remote_name, enabled=not no_remote):
        pipeline, plan = common.plan_selected(proj, state, targets, **selection)
        persist_adoptions(plan.adopted, state)
        if not plan.has_work:
            click.echo(launch.record_no_op(proj, argv, plan))  # the summary: printed even with -q
            return
        assert pipeline is not None  # only a settled pipeline (nothing to do) is planned without loading it
        from pivot.backends.runner import RunOptions

        options = RunOptions(jobs=jobs, keep_going=keep_going, force=force, verbose=verbose, quiet=quiet,
                             run_cache=not no_run_cache)
        summary = launch.run_plan(proj, pipeline, state, plan, argv, options, where)
    sys.stdout.flush()
    if summary.interrupted:
        raise SystemExit(130)
    if summary.failed:
        raise SystemExit(1)


def _argv(targets, jobs, keep_going, force, downstream, single_item, verbose, no_run_cache,
          executor=None, executor_data=None, quiet=False) -> list[str]:
    """The invocation, as recorded in the audit trail: what the user typed,
    or (when called in-process) the options spelled out."""
    from pivot.state.audit import invocation

    typed = invocation()
    if typed is not None:
        return typed
    flags = {"-k": keep_going, "-f": force, "--downstream": downstream, "-s": single_item, "-v": verbose,
             "-q": quiet, "--no-run-cache": no_run_cache}
    where = ["--executor", executor] if executor else []
    if executor_data:
        where += ["--executor-data", executor_data]
    jobs_given = ["-j", str(jobs)] if jobs else []
    return ["pivot", "run", *targets, *jobs_given, *[flag for flag, on in flags.items() if on], *where]
