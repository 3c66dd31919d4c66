"""``pivot status``: stale stages and their direct reasons (DVC's shape)."""

from __future__ import annotations

import sys

import click

from pivot.cli import common


@click.command(help="Show which stages of TARGETS (default: all) are stale, and why.")
@common.targets_argument()
@click.option("--json", "as_json", is_flag=True, help="Print DVC's `dvc status --json` shape.")
@click.option("--with-deps", is_flag=True, help="Include the upstream stages of TARGETS.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing; exit 1 when anything is stale.")
@click.option("--no-run-cache", is_flag=True, help="Never restore stages from earlier runs (see docs/runcache.md).")
def command(targets: tuple[str, ...], as_json: bool, with_deps: bool, quiet: bool, no_run_cache: bool) -> None:
    from pivot import optimizer
    from pivot import targets as targets_mod
    from pivot.backends import report
    from pivot.state import State

    proj = common.project()
    pipeline = common.load(proj, targets)
    stages = targets_mod.select(pipeline, proj, targets, single_item=not with_deps)
    with State.open(proj) as state:
        # the workspace as it is, every reason: DVC lists all changed entries
        plan = optimizer.make_plan(pipeline, stages, state, explain=True, assume_restored=False,
                                   run_cache=not no_run_cache)
    stale = report.status_json(plan)
    if quiet:
        sys.exit(1 if stale else 0)
    if as_json:
        common.echo_json(stale)
        if plan.adopted:
            click.echo(report._adopted_lines(plan)[0], err=True)
    else:
        click.echo(report.status_text(plan), nl=False)
