"""``pivot params diff``: changed params between two states, as ``dvc params diff``."""

from __future__ import annotations

import click

from pivot.cli import common


@click.group(help="Compare params between runs, git revisions and the workspace.")
def command() -> None:
    pass


@command.command(
    "diff",
    short_help="Params changed between two states, as `dvc params diff`.",
    help="Show params changed between A and B. A defaults to the last successful run (git's HEAD "
    "when no run was recorded), B to the workspace. Each may be `workspace`, a run id from "
    "`pivot log` (or a unique prefix) or a git revision. Output as `dvc params diff`.",
)
@click.argument("a", required=False)
@click.argument("b", required=False)
@click.option("--all", "show_all", is_flag=True, help="Show unchanged params too.")
@click.option("--deps", is_flag=True, help="Only params that are stage dependencies.")
@click.option("--no-path", is_flag=True, help="Leave out the Path column.")
@click.option("--json", "as_json", is_flag=True, help="DVC's JSON shape.")
@click.option("--md", "markdown", is_flag=True, help="A Markdown table.")
def diff_command(a: str | None, b: str | None, show_all: bool, deps: bool, no_path: bool, as_json: bool,
                 markdown: bool) -> None:
    from pivot.reports import compare
    from pivot.reports.history import default_baseline, open_state
    from pivot.reports.states import WORKSPACE, DiskState, collect_params

    proj = common.project()
    workspace = DiskState(proj)
    a = a or default_baseline(proj)
    b = b or WORKSPACE
    with open_state(proj, a, workspace) as old_state, open_state(proj, b, workspace) as new_state:
        old = collect_params(old_state, proj, deps_only=deps)
        new = collect_params(new_state, proj, deps_only=deps)
    for line in compare.problems(old, "params", a) + compare.problems(new, "params", b):
        click.echo(line, err=True)
    changes = compare.diff(old, new, with_unchanged=show_all)
    if as_json:
        common.echo_json(changes)
        return
    click.echo(compare.diff_table(changes, title="Param", a_label=a, b_label=b, show_change=False,
                                  no_path=no_path, markdown=markdown), nl=False)
