"""``pivot push``: upload cached outputs and run-cache entries to a remote."""

from __future__ import annotations

import click

from pivot.cli import common


@click.command(help="Upload the cached outputs that the lock records of TARGETS (default: every stage) "
               "name, and their run-cache entries, to a remote. Only what the remote lacks is sent.")
@common.targets_argument()
@click.option("-r", "--remote", "remote_name", metavar="NAME", help="Remote to push to (default: core.remote).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), metavar="N", help="Parallel transfers (default: the remote's jobs, else 16).")
@click.option("--with-deps", is_flag=True, help="Also push the outputs of upstream stages.")
@click.option("--no-run-cache", is_flag=True, help="Push outputs only, no run-cache entries.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def command(targets: tuple[str, ...], remote_name: str | None, jobs: int | None, with_deps: bool,
            no_run_cache: bool, as_json: bool) -> None:
    from pivot import targets as targets_mod
    from pivot.cli.transfer_output import TerminalProgress, finish
    from pivot.remote import sync, transfer
    from pivot.remote.storage import RemoteStorage
    from pivot.state import State
    from pivot.state.runlock import CacheLock

    proj = common.project()
    storage = RemoteStorage(sync.push_target(proj, remote_name), proj.root, jobs)
    pipeline = common.load(proj, targets)
    stages = targets_mod.select(pipeline, proj, targets, single_item=not with_deps)
    progress = TerminalProgress("pushing")
    with CacheLock(proj), State.open(proj, readonly=True) as state:  # gc must not remove what we send
        try:
            report = transfer.push(stages, state, storage, run_cache=not no_run_cache, progress=progress)
        finally:
            progress.close()
    finish(report, "pushed", "on the remote", as_json)
