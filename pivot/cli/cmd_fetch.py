"""``pivot fetch``: download cached outputs from a remote into the cache."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import click

from pivot.cli import common

if TYPE_CHECKING:
    from pivot.ir import Stage
    from pivot.project import Project
    from pivot.remote.sync import FetchResult


def transfer_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options fetch and pull share."""
    for option in reversed((
        common.targets_argument(),
        click.option("-r", "--remote", "remote_name", metavar="NAME",
                     help="Remote to fetch from (default: core.remote of .pivot/config, and DVC's for stages DVC ran)."),
        click.option("-j", "--jobs", type=click.IntRange(min=1), metavar="N",
                     help="Parallel transfers (default: the remote's jobs, else 16)."),
        click.option("--with-deps", is_flag=True, help="Also fetch the outputs of upstream stages."),
        click.option("--no-run-cache", is_flag=True, help="Fetch outputs only, no run-cache entries."),
        click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON."),
    )):
        func = option(func)
    return func


@click.command(help="Download into the cache what the lock records of TARGETS (default: every stage) "
               "name and the cache lacks; every object is verified before it is placed. "
               "Stages DVC ran, and (without TARGETS) data tracked by .dvc files, are fetched from the "
               "project's DVC remote into .dvc/cache. "
               "The workspace is not changed (see `pivot pull`).")
@transfer_options
def command(targets: tuple[str, ...], remote_name: str | None, jobs: int | None, with_deps: bool,
            no_run_cache: bool, as_json: bool) -> None:
    from pivot.cli.transfer_output import finish

    proj = common.project()
    _, result = fetch_into_cache(proj, targets, remote_name, jobs, with_deps, no_run_cache)
    finish(result.report, "fetched", "in the cache", as_json)


def fetch_into_cache(
    proj: Project, targets: tuple[str, ...], remote_name: str | None, jobs: int | None, with_deps: bool,
    no_run_cache: bool,
) -> tuple[list[Stage], FetchResult]:
    """The selected stages and what fetching them did: the fetch part of
    ``fetch`` and ``pull``."""
    from pivot import targets as targets_mod
    from pivot.cli.transfer_output import TerminalProgress
    from pivot.remote import sync
    from pivot.state import State
    from pivot.state.runlock import CacheLock

    sync.sources(proj, remote_name)  # a missing or unknown remote fails before the pipeline loads
    pipeline = common.load(proj, targets)
    stages = targets_mod.select(pipeline, proj, targets, single_item=not with_deps)
    progress = TerminalProgress("fetching")
    with CacheLock(proj), State.open(proj) as state:  # gc waits for us
        try:
            result = sync.fetch(proj, stages, state, remote_name, jobs=jobs, run_cache=not no_run_cache,
                                tracked=not targets, progress=progress)
        finally:
            progress.close()
    return stages, result
