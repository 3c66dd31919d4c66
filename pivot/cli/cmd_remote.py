"""``pivot remote``: add, list, modify and remove remotes."""

from __future__ import annotations

import click

from pivot.cli import common

LOCAL_HELP = "Write to .pivot/config.local (git-ignored: per-user settings) instead of .pivot/config."


@click.group(help="Configure remotes: shared storage for the cache and the run cache (see docs/remotes.md).")
def command() -> None:
    pass


@command.command("add", short_help="Add a remote.", help="Add remote NAME at URL (s3://, gs://, azure://, ssh://, http(s)://, file:// or a path).")
@click.argument("name")
@click.argument("url")
@click.option("-d", "--default", "make_default", is_flag=True, help="Make it the default remote (core.remote).")
@click.option("--local", is_flag=True, help=LOCAL_HELP)
@click.option("-f", "--force", is_flag=True, help="Replace an existing remote of that name.")
def add(name: str, url: str, make_default: bool, local: bool, force: bool) -> None:
    from pivot.remote import config

    proj = common.project()
    url = config.normalise_url(url, proj.root, proj.cwd)
    ini = config.add_remote(proj.state_dir, name, url, default=make_default, local=local, force=force)
    click.echo(f"Added remote '{name}' ({url}) to {ini.show}{' as the default' if make_default else ''}.")


@command.command("list", short_help="List the remotes (pivot's and the project's DVC remotes).", help="List the remotes: name, URL, backend state, options; * marks the default. "
                 "The DVC remotes of .dvc/config are listed as dvc:NAME (pivot reads them for stages DVC ran).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def list_remotes(as_json: bool) -> None:
    from pivot.errors import PivotError
    from pivot.remote import config, dvc
    from pivot.remote.fs import backend_for
    from pivot.remote.storage import describe_backend

    proj = common.project()
    rows = []
    for settings, prefix in ((config.load(proj.state_dir), ""), (dvc.load_settings(proj.root), "dvc:")):
        for name, remote in sorted(settings.remotes.items()):
            try:
                state = describe_backend(backend_for(remote.url, name))
            except PivotError as exc:  # an unsupported scheme is shown, not fatal
                state = str(exc)
            if prefix and state == "read-write":
                state = "read-only: DVC's"  # pivot only fetches from a DVC remote
            rows.append({
                "name": prefix + name,
                "url": remote.url,
                "default": name == settings.default,
                "backend": state,
                "options": dict(sorted(remote.options.items())),
                "source": remote.source,
            })
    if as_json:
        common.echo_json(rows)
        return
    if not rows:
        click.echo("No remotes. Add one with `pivot remote add -d NAME URL`.")
        return
    for row in rows:
        options = "".join(f" {k}={v}" for k, v in row["options"].items())
        mark = "*" if row["default"] else " "
        click.echo(f"{mark} {row['name']}\t{row['url']}\t({row['backend']}){options}")


@command.command("remove", short_help="Remove a remote.", help="Remove remote NAME from .pivot/config and .pivot/config.local.")
@click.argument("name")
def remove(name: str) -> None:
    from pivot.remote import config

    changed = config.remove_remote(common.project().state_dir, name)
    click.echo(f"Removed remote '{name}' from {' and '.join(changed)}.")


@command.command("modify", short_help="Set or unset one key of a remote.", help="Set KEY of remote NAME to VALUE (url, jobs, endpointurl, profile, region, "
                 "projectname, credentialpath, account_name, user, port, keyfile). Never credentials.")
@click.argument("name")
@click.argument("key")
@click.argument("value", required=False)
@click.option("--local", is_flag=True, help=LOCAL_HELP)
@click.option("-u", "--unset", is_flag=True, help="Remove KEY instead of setting it.")
def modify(name: str, key: str, value: str | None, local: bool, unset: bool) -> None:
    from pivot.remote import config

    if unset == (value is not None):
        from pivot.errors import PivotError

        raise PivotError(f"remote modify {name} {key}: give VALUE, or --unset without a VALUE")
    ini = config.modify_remote(common.project().state_dir, name, key, value, local=local)
    if unset:
        click.echo(f"Removed '{key}' of remote '{name}' from {ini.show}.")
    else:
        click.echo(f"Set '{key}' of remote '{name}' to '{value}' in {ini.show}.")


@command.command("default", short_help="Show or set the default remote.", help="Make NAME the default remote (or, with --unset, have none).")
@click.argument("name", required=False)
@click.option("--local", is_flag=True, help=LOCAL_HELP)
@click.option("-u", "--unset", is_flag=True, help="Have no default remote.")
def default(name: str | None, local: bool, unset: bool) -> None:
    from pivot.remote import config

    proj = common.project()
    if not unset and name is None:
        current = config.load(proj.state_dir).default
        click.echo(current if current else "No default remote.")
        return
    ini = config.set_default(proj.state_dir, None if unset else name, local=local)
    click.echo(f"Default remote: {'none' if unset else name} ({ini.show}).")
