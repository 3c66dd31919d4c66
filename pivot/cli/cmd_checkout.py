"""``pivot checkout``: restore stage outputs from the cache."""

from __future__ import annotations

import click

from pivot.cli import common


@click.command(help="Restore the recorded outputs of TARGETS (default: every stage) from the cache.")
@common.targets_argument()
@click.option("--with-deps", is_flag=True, help="Also restore the outputs of upstream stages.")
def command(targets: tuple[str, ...], with_deps: bool) -> None:
    from pivot import targets as targets_mod
    from pivot.backends import outputs
    from pivot.state import State
    from pivot.state.runlock import RunLock

    proj = common.project()
    pipeline = common.load(proj, targets)
    stages = targets_mod.select(pipeline, proj, targets, single_item=not with_deps)
    restored = unchanged = 0
    missing: list[tuple[str, str]] = []
    with RunLock(proj, "checkout"), State.open(proj) as state:
        for stage in stages:
            report = outputs.restore(stage, state)
            for message in report.corrupt:
                click.echo(f"WARNING: {message}", err=True)
            for path in report.restored:
                click.echo(f"restored {path} ({stage.address})")
            restored += len(report.restored)
            unchanged += len(report.unchanged)
            missing.extend((stage.address, path) for path in report.missing)
    for address, path in missing:
        click.echo(f"missing from the cache: {path} ({address})", err=True)
    click.echo(f"{restored} restored, {unchanged} unchanged, {len(missing)} missing from the cache")
    if missing:
        raise SystemExit(1)
