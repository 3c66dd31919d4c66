"""``pivot pull``: fetch from a remote, then check the outputs out."""

from __future__ import annotations

import click

from pivot.cli import common
from pivot.cli.cmd_fetch import fetch_into_cache, transfer_options


@click.command(help="Fetch what the lock records of TARGETS (default: every stage) name from a remote, "
               "then restore those outputs in the workspace (`pivot fetch` + `pivot checkout`). "
               "Stages DVC ran come from the project's DVC remote and are then adopted.")
@transfer_options
def command(targets: tuple[str, ...], remote_name: str | None, jobs: int | None, with_deps: bool,
            no_run_cache: bool, as_json: bool) -> None:
    from pivot.cli.transfer_output import summary
    from pivot.remote import sync
    from pivot.state.runlock import RunLock

    proj = common.project()
    with RunLock(proj, "pull"):
        stages, fetched = fetch_into_cache(proj, targets, remote_name, jobs, with_deps, no_run_cache)
        result = sync.restore(proj, stages, fetched.dvc_outs)
    report = fetched.report
    if as_json:
        data = report.to_json()
        data["action"] = "pull"
        data["restored"] = [{"stage": a, "path": p} for a, p in result.restored]
        data["unchanged"] = result.unchanged
        data["not_restored"] = [{"stage": a, "path": p} for a, p in result.missing]
        data["adopted"] = result.adopted
        common.echo_json(data)
    else:
        for message in report.missing + result.corrupt:
            click.echo(f"WARNING: {message}", err=True)
        for message in report.failed:
            click.echo(f"ERROR: {message}", err=True)
        for address, path in result.restored:
            click.echo(f"restored {path} ({address})")
        for address, path in result.missing:
            click.echo(f"not restored, not in the cache: {path} ({address})", err=True)
        click.echo(summary(report, "fetched", "in the cache"))
        line = f"{len(result.restored)} restored, {result.unchanged} unchanged, {len(result.missing)} not restored"
        if result.adopted:
            line += f"; adopted from dvc.lock: {', '.join(result.adopted)}"
        click.echo(line)
    if not report.ok or result.missing:
        raise SystemExit(1)
