"""``pivot commit``: record stages as up to date without running them."""

from __future__ import annotations

import click

from pivot.cli import common


@click.command(help="Record TARGETS (default: every stage) as up to date: hash deps and outs, "
               "save outs to the cache, write lock records. Like `dvc commit`.")
@common.targets_argument()
@click.option("-q", "--quiet", is_flag=True, help="Print nothing.")
def command(targets: tuple[str, ...], quiet: bool) -> None:
    from pivot import targets as targets_mod
    from pivot.state import State
    from pivot.state.record import commit_stage
    from pivot.state.runlock import CacheLock

    proj = common.project()
    pipeline = common.load(proj, targets)
    stages = targets_mod.select(pipeline, proj, targets, single_item=True)
    committed = []
    with CacheLock(proj), State.open(proj) as state:  # gc waits for us, we wait for gc
        for stage in stages:
            if stage.frozen:
                continue
            commit_stage(stage, state)
            committed.append(stage.address)
            if not quiet:
                click.echo(f"Recorded '{stage.address}'.")
    _audit(proj, targets, committed)


def _audit(proj, targets: tuple[str, ...], committed: list[str]) -> None:
    """Append this commit to the audit trail (`pivot log`), as runs are."""
    import time

    from pivot.state import audit

    now = time.time()
    entries = [audit.StageEntry(a, audit.Outcome.COMMITTED, started=now, ended=now) for a in committed]
    audit.append_commit(proj, ["pivot", "commit", *targets], entries)
