"""``pivot gc``: remove cache objects and run-cache entries nothing needs,
and the temporary files interrupted writes left behind."""

from __future__ import annotations

import click

from pivot.cli import common
from pivot.state.gc import DEFAULT_KEEP_LAST, GRACE_SECONDS


@click.command(help="Remove cache objects that no lock record and no kept run-cache entry refers to. "
               "Outputs of the current lock records are always kept. Temporary files left by "
               f"interrupted writes (under .pivot/ and beside outputs) go too, once {GRACE_SECONDS / 60:.0f} minutes old.")
@click.option("--keep-last", type=click.IntRange(min=0), default=DEFAULT_KEEP_LAST, show_default=True,
              metavar="N", help="Run-cache entries kept per stage (the most recent ones).")
@click.option("--dry", is_flag=True, help="Only print what would be removed.")
@click.option("--remote", "remote_name", metavar="NAME",
              help="Instead of the local cache: list the objects on remote NAME that no current lock record of "
                   "this checkout needs (nothing is removed without --delete-on-remote).")
@click.option("--delete-on-remote", is_flag=True,
              help="With --remote: remove them. The remote is the team's: other branches may need them.")
def command(keep_last: int, dry: bool, remote_name: str | None, delete_on_remote: bool) -> None:
    from pivot.state import State, gc
    from pivot.state.runlock import CacheLock, RunLock

    proj = common.project()
    if delete_on_remote and remote_name is None:
        common.fail("--delete-on-remote needs --remote NAME")
    if remote_name is not None:
        _remote_gc(proj, remote_name, delete=delete_on_remote and not dry)
        return
    if not proj.state_dir.is_dir():
        click.echo("Nothing to collect: no .pivot/ directory.")
        return
    outs = _declared_outs(proj)
    pruned = 0
    if dry:
        with State.open(proj, readonly=True) as state:
            plan = gc.collect(state.cache, state.runcache, state.locks.dir, keep_last, outs=outs)
    else:
        # never during a run or while a commit writes objects
        with RunLock(proj, "gc"), CacheLock(proj, exclusive=True), State.open(proj, readonly=True) as state:
            plan = gc.collect(state.cache, state.runcache, state.locks.dir, keep_last, outs=outs)
            gc.sweep(plan)
        with State.open(proj) as state:
            pruned = gc.prune_state(proj.root, state)
    click.echo(_summary(plan, dry))
    if plan.leftovers:
        count = len(plan.leftovers)
        verb = "Would remove" if dry else "Removed"
        click.echo(f"{verb} {count} temporary file{'s' if count != 1 else ''} left by interrupted writes"
                   f"{':' if dry else '.'}")
        if dry:
            for doomed in plan.leftovers:
                click.echo(f"  {proj.relpath(doomed.path)}")
    if pruned:
        click.echo(f"Dropped {pruned} stat-cache row{'s' if pruned != 1 else ''} of files and lock records that are gone.")


def _remote_gc(proj, name: str, *, delete: bool) -> None:
    from pivot.remote import config
    from pivot.remote import gc as remote_gc
    from pivot.remote.storage import RemoteStorage
    from pivot.state import State

    settings = config.load(proj.state_dir)
    storage = RemoteStorage(settings.get(name), proj.root)
    with State.open(proj, inspect=True) as state:
        garbage = remote_gc.find_garbage(state, storage)
    count = len(garbage.unneeded)
    noun = f"object{'s' if count != 1 else ''}"
    if not delete:
        click.echo(f"Remote '{name}': {count} {noun} no current lock record of this checkout needs"
                   f"{':' if count else '.'}")
        for digest in garbage.unneeded:
            click.echo(f"  {digest}")
        click.echo(f"Kept {garbage.kept}. Nothing was removed: other branches and teammates may need them; "
                   "--delete-on-remote removes them for everyone.")
        return
    remote_gc.delete(storage, garbage.unneeded)
    click.echo(f"Removed {count} {noun} from remote '{name}'; kept {garbage.kept}.")


def _declared_outs(proj) -> list[str]:
    """The pipeline's outputs, whose checkout debris gc removes; a pipeline
    that does not load only leaves that to the lock records' outputs."""
    from pivot.errors import PivotError

    try:
        pipeline = common.load(proj)
    except PivotError:
        return []
    return [out.path for stage in pipeline.stages for out in stage.outs]


def _summary(plan, dry: bool) -> str:
    verb = "Would remove" if dry else "Removed"
    objects = len(plan.objects)
    line = (
        f"{verb} {objects} cache object{'s' if objects != 1 else ''} and {len(plan.entries)} run-cache "
        f"entr{'ies' if len(plan.entries) != 1 else 'y'}, freeing {_size(plan.freed_bytes)}"
        f" ({plan.freed_bytes} bytes)."
    )
    kept = (
        f"Kept {plan.kept_objects} object{'s' if plan.kept_objects != 1 else ''} ({_size(plan.kept_bytes)})"
        f" for {plan.records} lock record{'s' if plan.records != 1 else ''}"
        f" and {plan.kept_entries} run-cache entr{'ies' if plan.kept_entries != 1 else 'y'}."
    )
    return f"{line}\n{kept}"


def _size(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"
