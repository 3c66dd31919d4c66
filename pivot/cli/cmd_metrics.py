"""``pivot metrics show|diff|history``: metrics as ``dvc metrics`` shows them,
plus the history of recorded runs."""

from __future__ import annotations

import click

from pivot.cli import common

PRECISION_HELP = "Round floats to N digits in tables (default 5)."


@click.group(help="Show, compare and follow the metrics stages write.")
def command() -> None:
    pass


@command.command("show", short_help="Show metrics as `dvc metrics show`.", help="Show the metrics files of every stage (or TARGETS) as `dvc metrics show`.")
@click.argument("targets", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="DVC's JSON shape.")
@click.option("--md", "markdown", is_flag=True, help="A Markdown table.")
@click.option("--precision", type=click.IntRange(min=0), metavar="N", help=PRECISION_HELP)
def show_command(targets: tuple[str, ...], as_json: bool, markdown: bool, precision: int | None) -> None:
    from pivot.reports import compare
    from pivot.reports.states import DiskState, collect_metrics

    proj = common.project()
    results = collect_metrics(DiskState(proj), proj, targets)
    for line in compare.problems(results, "metrics", "workspace") + compare.skipped_values(results):
        click.echo(line, err=True)
    if as_json:
        common.echo_json(compare.show_json(results))
        return
    click.echo(compare.metrics_table(results, precision=precision or compare.DEFAULT_PRECISION,
                                     markdown=markdown), nl=False)


@command.command(
    "diff",
    short_help="Metrics changed between two states, as `dvc metrics diff`.",
    help="Show metrics changed between A and B, with the change. A defaults to the last successful run "
    "(git's HEAD when no run was recorded), B to the workspace. Each may be `workspace`, a run id "
    "from `pivot log` (or a unique prefix) or a git revision. Output as `dvc metrics diff`.",
)
@click.argument("a", required=False)
@click.argument("b", required=False)
@click.option("--targets", multiple=True, metavar="FILE", help="Only these metrics files (repeatable).")
@click.option("--all", "show_all", is_flag=True, help="Show unchanged metrics too.")
@click.option("--no-path", is_flag=True, help="Leave out the Path column.")
@click.option("--precision", type=click.IntRange(min=0), metavar="N", help=PRECISION_HELP)
@click.option("--json", "as_json", is_flag=True, help="DVC's JSON shape.")
@click.option("--md", "markdown", is_flag=True, help="A Markdown table.")
def diff_command(a: str | None, b: str | None, targets: tuple[str, ...], show_all: bool, no_path: bool,
                 precision: int | None, as_json: bool, markdown: bool) -> None:
    from pivot.reports import compare
    from pivot.reports.history import default_baseline, open_state
    from pivot.reports.states import WORKSPACE, DiskState, collect_metrics

    proj = common.project()
    workspace = DiskState(proj)
    a = a or default_baseline(proj)
    b = b or WORKSPACE
    with open_state(proj, a, workspace) as old_state, open_state(proj, b, workspace) as new_state:
        old = collect_metrics(old_state, proj, targets)
        new = collect_metrics(new_state, proj, targets)
    for line in compare.problems(old, "metrics", a) + compare.problems(new, "metrics", b):
        click.echo(line, err=True)
    changes = compare.diff(old, new, with_unchanged=show_all)
    if as_json:
        common.echo_json(changes)
        return
    click.echo(compare.diff_table(changes, title="Metric", a_label=a, b_label=b, no_path=no_path,
                                  precision=precision or compare.DEFAULT_PRECISION, markdown=markdown), nl=False)


@command.command(
    "history",
    short_help="Params changed and metrics of the last N runs.",
    help="Metrics of the last N successful runs (newest first): run id, time, the stages that did work, "
    "the params changed since the run before, and each METRIC (default: all). Needs no git.",
)
@click.argument("metrics", nargs=-1)
@click.option("-n", "limit", type=click.IntRange(min=1), default=10, show_default=True, help="How many runs.")
@click.option("--precision", type=click.IntRange(min=0), metavar="N", help=PRECISION_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--md", "markdown", is_flag=True, help="A Markdown table.")
def history_command(metrics: tuple[str, ...], limit: int, precision: int | None, as_json: bool,
                    markdown: bool) -> None:
    from datetime import datetime, timezone

    from pivot.reports import compare, history
    from pivot.reports.tables import FILL, format_field, render_table

    proj = common.project()
    rows = history.history(proj, limit)
    columns = history.metric_columns(rows, metrics)
    for wanted in metrics:
        if not any(wanted in (name, key, f"{path}:{key}", path) for name, path, key in columns):
            click.echo(f"WARNING: no recorded run has a metric '{wanted}'", err=True)
    if as_json:
        common.echo_json([
            {
                "run_id": row.run.run_id,
                "started": datetime.fromtimestamp(row.run.record.started, tz=timezone.utc)
                .isoformat(timespec="milliseconds"),
                "ran": row.run.ran,
                "params_changed": row.changed_params,
                "metrics": {name: row.metrics.get(path, {}).get(key) for name, path, key in columns},
            }
            for row in rows
        ])
        return
    if not rows:
        click.echo("no successful runs recorded yet (`pivot run` records params and metrics)")
        return
    digits = precision or compare.DEFAULT_PRECISION
    headers = ["Run", "Started", "Ran", "Changed params", *(name for name, _, _ in columns)]
    table = [
        [
            row.run.run_id,
            datetime.fromtimestamp(row.run.record.started).strftime("%Y-%m-%d %H:%M:%S"),
            ", ".join(row.run.ran) or FILL,
            history.describe_changes(row.changed_params),
            *(format_field(row.metrics.get(path, {}).get(key), digits) for _, path, key in columns),
        ]
        for row in rows
    ]
    click.echo(render_table(headers, table, markdown=markdown), nl=False)
