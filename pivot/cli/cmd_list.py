"""``pivot list``: the stages of every pipeline, like ``dvc stage list``."""

from __future__ import annotations

from typing import Any, Iterable

import click

from pivot.cli import common
from pivot.ir import Stage

MAX_DESCRIPTION = 80


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the resolved stages as JSON.")
@click.option("--name-only", is_flag=True, help="Print addresses only.")
@common.targets_argument()
def command(as_json: bool, name_only: bool, targets: tuple[str, ...]) -> None:
    """List stages (all of them, or the TARGETS and what they depend on)."""
    from pivot import targets as target_selection

    from pivot.errors import PivotError
    from pivot.frontends import load_pipeline

    proj = common.project()
    skipped: list[str] = []
    try:
        pipeline = common.load(proj, targets)
    except PivotError:
        # as `dvc stage list`: the valid files' stages, each invalid file named
        pipeline = load_pipeline(proj, targets, skipped=skipped)
    for message in skipped:
        click.echo(f"ERROR: {message}", err=True)
    if targets:
        chosen = set()
        for target in targets:
            chosen.update(target_selection.resolve(pipeline, proj, target))
        stages = [s for s in pipeline.stages if s.address in chosen]
    else:
        stages = list(pipeline.stages)
    if as_json:
        common.echo_json({"stages": [stage_json(s) for s in stages]})
    elif name_only:
        _echo_lines(stage.address for stage in stages)
    else:
        width = max((len(s.address) for s in stages), default=0)
        _echo_lines(f"{stage.address:<{width}}  {describe(stage)}".rstrip() for stage in stages)
    if skipped:
        raise SystemExit(1)


def _echo_lines(lines: Iterable[str]) -> None:
    """One write, not one per stage (click.echo costs ~10 us a call)."""
    text = "\n".join(lines)
    if text:
        click.echo(text)


def stage_json(stage: Stage) -> dict[str, Any]:
    """The documented JSON shape of one stage (docs/dvcyaml.md)."""
    params: dict[str, Any] = {}
    for dep in stage.params:
        params[dep.path] = "*" if dep.keys is None else list(dep.keys)
    return {
        "address": stage.address,
        "name": stage.name,
        "file": stage.file,
        "wdir": stage.wdir,
        "cmd": list(stage.cmds),
        "deps": [dep.path for dep in stage.deps],
        "params": params,
        "outs": [
            {"path": out.path, "cache": out.cache, "persist": out.persist, "kind": out.kind.value}
            for out in stage.outs
        ],
        "frozen": stage.frozen,
        "always_changed": stage.always_changed,
        **({"kind": "data"} if stage.is_tracked_data else {}),  # a .dvc file: tracked data, no command
    }


def describe(stage: Stage) -> str:
    """``dvc stage list``'s description: the first line of desc, else a summary."""
    text = ""
    if stage.desc:
        text = next((line.strip() for line in stage.desc.splitlines() if line), "")
    if not text:
        text = _summary(stage)
    if len(text) > MAX_DESCRIPTION:
        text = text[: MAX_DESCRIPTION - 1] + "\u2026"
    return text


def _summary(stage: Stage) -> str:
    deps = [d.def_path for d in stage.deps] + [p.def_path for p in stage.params]
    if not deps and not stage.outs:
        return "No outputs or dependencies"
    if not stage.outs:
        return "Depends on " + ", ".join(deps)
    parts = []
    outs = [o.def_path for o in stage.outs if o.kind.value == "out"]
    reports = [o.def_path for o in stage.outs if o.kind.value != "out"]
    if outs:
        parts.append("Outputs " + ", ".join(outs))
    if reports:
        parts.append("Reports " + ", ".join(reports))
    return "; ".join(parts)
