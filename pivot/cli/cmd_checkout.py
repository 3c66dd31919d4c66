"""``pivot checkout``: restore stage outputs from the cache."""

from __future__ import annotations

import click

from pivot.cli import common


@click.command(help="Restore the recorded outputs of TARGETS (default: every stage) from the cache. "
               "Outputs holding work that is not in the cache are left alone unless --force is given.")
@common.targets_argument()
@click.option("--with-deps", is_flag=True, help="Also restore the outputs of upstream stages.")
@click.option("-f", "--force", is_flag=True, help="Replace outputs even when their current content is not "
              "in the cache (it is lost).")
def command(targets: tuple[str, ...], with_deps: bool, force: bool) -> None:
    from pivot import targets as targets_mod
    from pivot.state import State
    from pivot.state.restore import checkout_stages
    from pivot.state.runlock import CacheLock, RunLock

    proj = common.project()
    pipeline = common.load(proj, targets)
    stages = targets_mod.select(pipeline, proj, targets, single_item=not with_deps)
    with RunLock(proj, "checkout"), CacheLock(proj), State.open(proj) as state:
        reports = checkout_stages(stages, state, keep_unsaved=not force)
    restored = unchanged = 0
    missing: list[tuple[str, str]] = []
    unsaved: list[str] = []
    for address, report in reports:
        for message in report.problems:
            click.echo(f"WARNING: {message}", err=True)
        for path in report.restored:
            click.echo(f"restored {path} ({address})")
        restored += len(report.restored)
        unchanged += len(report.unchanged)
        missing.extend((address, path) for path in report.missing)
        unsaved.extend(report.unsaved)
    for address, path in missing:
        click.echo(f"missing from the cache: {path} ({address})", err=True)
    if unsaved:
        click.echo("ERROR: can't remove the following unsaved files without confirmation "
                   "(their content is in no cache). Use --force to force:", err=True)
        for path in unsaved:
            click.echo(f"\t{path}", err=True)
    tail = f", {len(unsaved)} unsaved left alone" if unsaved else ""
    click.echo(f"{restored} restored, {unchanged} unchanged, {len(missing)} missing from the cache{tail}")
    if missing or unsaved:
        raise SystemExit(1)
