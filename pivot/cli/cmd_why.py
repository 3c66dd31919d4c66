"""``pivot why``: every reason one stage would run."""

from __future__ import annotations

import click

from pivot.cli import common


@click.command(help="Explain in full why STAGE would run: hashes, values, command diff, upstream.")
@click.argument("stage")
@common.remote_options
def command(stage: str, remote_name: str | None, no_remote: bool) -> None:
    from pivot import optimizer
    from pivot import targets as targets_mod
    from pivot.backends import report
    from pivot.state import State

    proj = common.project()
    pipeline = common.load(proj, (stage,))
    wanted = targets_mod.resolve(pipeline, proj, stage)
    stages = targets_mod.select(pipeline, proj, (stage,))
    with State.open(proj, inspect=True) as state, \
            common.remote_for_plans(state, proj, remote_name, enabled=not no_remote):
        plan = optimizer.make_plan(pipeline, stages, state, explain=True)
    for address in wanted:
        decision = plan.decision(address)
        if decision is not None:
            click.echo(report.why_text(decision), nl=False)
