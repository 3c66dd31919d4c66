"""``pivot status``: stale stages and their direct reasons (DVC's shape)."""

from __future__ import annotations

import sys

import click

from pivot.cli import common


@click.command(help="Show which stages of TARGETS (default: all) are stale, and why.")
@common.targets_argument()
@click.option("--json", "as_json", is_flag=True, help="Print DVC's `dvc status --json` shape.")
@click.option("--with-deps", is_flag=True, help="Include the upstream stages of TARGETS.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing; exit 1 when anything is stale.")
@click.option("--no-run-cache", is_flag=True, help="Never restore stages from earlier runs (see docs/runcache.md).")
@click.option("--remote", "use_remote", is_flag=True,
              help="Also say which stale stages the default remote (or -r NAME) can restore.")
@click.option("-r", "remote_name", metavar="NAME", help="The remote --remote asks (default: the default remote).")
def command(targets: tuple[str, ...], as_json: bool, with_deps: bool, quiet: bool, no_run_cache: bool,
            use_remote: bool, remote_name: str | None) -> None:
    from pivot import optimizer
    from pivot.backends import report
    from pivot.state import State

    proj = common.project()
    with State.open(proj, inspect=True) as state, \
            common.remote_for_plans(state, proj, remote_name, enabled=use_remote or remote_name is not None):
        # the workspace as it is, every reason: DVC lists all changed entries
        pipeline, plan = common.plan_selected(proj, state, targets, single_item=not with_deps, explain=True,
                                              assume_restored=False, run_cache=not no_run_cache, printed_only=True)
    if pipeline is None:  # a settled pipeline, recalled without loading it
        assert isinstance(plan, optimizer.SettledPlan)
        out_filter, frozen_notices = {}, plan.frozen_notices
        plan = plan.in_pipeline_order()
    else:
        # DVC lists stages in the order it found them, not in run order
        position = {stage.address: index for index, stage in enumerate(pipeline.stages)}
        plan = optimizer.Plan(tuple(sorted(plan.decisions, key=lambda d: position[d.address])))
        out_filter = _out_filter(pipeline, proj, targets)
        frozen_notices = tuple(d.address for d in plan.decisions if d.stage.frozen and not d.stage.is_tracked_data)
    root = proj.root.as_posix()
    if quiet:
        sys.exit(1 if report.status_json(plan, out_filter, root) else 0)
    for address in frozen_notices:  # DVC's warning, word for word
        click.echo(f"WARNING: stage: '{address}' is frozen. Its dependencies are not going"
                   " to be shown in the status output.", err=True)
    if as_json:
        common.echo_json(report.status_json(plan, out_filter, root))
    else:
        click.echo(report.status_text(plan, out_filter, root), nl=False)


def _out_filter(pipeline, proj, targets: tuple[str, ...]) -> dict[str, frozenset[str]]:
    """Stages named through an output path show only the outs at or below
    (or above) that path, as ``dvc status <path>`` does.  Like DVC, the
    last target naming a stage decides."""
    from pivot import targets as targets_mod

    shown: dict[str, frozenset[str] | None] = {}
    for target in targets:
        rel = proj.relpath(target)
        for address in targets_mod.resolve(pipeline, proj, target):
            stage = pipeline.stage(address)
            by_name = target in (stage.address, stage.name, stage.group) or rel == stage.file or (
                ":" in target and target.rpartition(":")[2] in (stage.name, stage.group))
            if by_name:
                shown[address] = None
                continue
            shown[address] = frozenset(o.path for o in stage.outs if _overlaps(o.path, rel))
    return {address: outs for address, outs in shown.items() if outs is not None}


def _overlaps(out: str, path: str) -> bool:
    return out == path or out.startswith(path + "/") or path.startswith(out + "/") or path == "."
