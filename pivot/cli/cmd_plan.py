"""``pivot plan``: what ``pivot run`` would do, in order, and why."""

from __future__ import annotations

import sys

import click

from pivot.cli import common


@click.command(help="Dry run: every stage `pivot run TARGETS` would run, in order, with reasons.")
@common.targets_argument()
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON (see docs/status.md).")
@click.option("--check", is_flag=True, help="Exit 1 when anything would run or be restored.")
@click.option("-f", "--force", is_flag=True, help="Plan every selected stage as forced.")
@click.option("--downstream", is_flag=True, help="Targets plus what depends on them (not their upstream).")
@click.option("-s", "--single-item", is_flag=True, help="Only the targets, without upstream stages.")
@click.option("--explain", is_flag=True, help="List every reason, not only the first.")
@click.option("--no-run-cache", is_flag=True, help="Never restore stages from earlier runs (see docs/runcache.md).")
@common.remote_options
def command(
    targets: tuple[str, ...],
    as_json: bool,
    check: bool,
    force: bool,
    downstream: bool,
    single_item: bool,
    explain: bool,
    no_run_cache: bool,
    remote_name: str | None,
    no_remote: bool,
) -> None:
    from pivot.backends import report
    from pivot.backends.executor_config import stage_resources
    from pivot.state import State

    proj = common.project()
    with State.open(proj, inspect=True) as state, \
            common.remote_for_plans(state, proj, remote_name, enabled=not no_remote):
        _, plan = common.plan_selected(proj, state, targets, force=force, downstream=downstream,
                                       single_item=single_item, explain=explain, run_cache=not no_run_cache,
                                       printed_only=True)
    resources = stage_resources(proj.state_dir, [d.address for d in plan.decisions])
    if as_json:
        common.echo_json(report.plan_json(plan, resources))
    else:
        click.echo(report.plan_text(plan, resources), nl=False)
    if check and plan.has_work:
        sys.exit(1)
