"""``pivot pull``: fetch from a remote, then check the outputs out."""

from __future__ import annotations

import click

from pivot.cli import common
from pivot.cli.cmd_fetch import fetch_into_cache, transfer_options


@click.command(help="Fetch what the lock records of TARGETS (default: every stage) name from a remote, "
               "then restore those outputs in the workspace (`pivot fetch` + `pivot checkout`).")
@transfer_options
def command(targets: tuple[str, ...], remote_name: str | None, jobs: int | None, with_deps: bool,
            no_run_cache: bool, as_json: bool) -> None:
    from pivot.cli.transfer_output import summary
    from pivot.remote.workspace import restore_outputs
    from pivot.state import State
    from pivot.state.runlock import RunLock

    proj = common.project()
    with RunLock(proj, "pull"):
        stages, report = fetch_into_cache(proj, targets, remote_name, jobs, with_deps, no_run_cache)
        with State.open(proj) as state:
            results = restore_outputs(stages, state)
    restored = [(stage.address, path) for stage, r in results for path in r.restored]
    missing = [(stage.address, path) for stage, r in results for path in r.missing]
    corrupt = [message for _, r in results for message in r.corrupt]
    unchanged = sum(len(r.unchanged) for _, r in results)
    if as_json:
        data = report.to_json()
        data["action"] = "pull"
        data["restored"] = [{"stage": a, "path": p} for a, p in restored]
        data["unchanged"] = unchanged
        data["not_restored"] = [{"stage": a, "path": p} for a, p in missing]
        common.echo_json(data)
    else:
        for message in report.missing + corrupt:
            click.echo(f"WARNING: {message}", err=True)
        for message in report.failed:
            click.echo(f"ERROR: {message}", err=True)
        for address, path in restored:
            click.echo(f"restored {path} ({address})")
        for address, path in missing:
            click.echo(f"not restored, not in the cache: {path} ({address})", err=True)
        click.echo(summary(report, "fetched", "in the cache"))
        click.echo(f"{len(restored)} restored, {unchanged} unchanged, {len(missing)} not restored")
    if not report.ok or missing:
        raise SystemExit(1)
