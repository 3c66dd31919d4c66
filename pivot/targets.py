"""Turning command-line targets into stage addresses, DVC's way.

Accepted forms: ``name``; ``sub/dvc.yaml:name`` (file relative to the
current directory); ``:name`` (the pipeline file in the current directory);
a foreach/matrix/wildcard group name (``build`` selects every ``build@...``);
a pipeline file alone (every stage it defines); an output path, or a path
inside an output directory (the stage producing it).
"""

from __future__ import annotations

import posixpath
from typing import Sequence

from pivot import graph
from pivot.errors import PivotError
from pivot.ir import Pipeline, Stage
from pivot.project import Project

PIPELINE_FILE_NAMES = ("dvc.yaml", "Pivotfile")


def resolve(pipeline: Pipeline, project: Project, target: str) -> list[str]:
    """Addresses named by one target, in definition order."""
    group_part, at, item = target.partition("@")
    if ":" in group_part and target in pipeline.by_address:
        return [target]  # an exact address, even for a name holding ':' (DVC allows `a:b`)
    if ":" in group_part:
        file_part, _, name = group_part.rpartition(":")
        name = name + at + item
        files = _pipeline_files(project, file_part)
        found = _by_name(pipeline, files, name)
        if not found:
            raise PivotError(f"'{name}' does not exist in {' or '.join(files) or file_part}")
        return found

    cwd_files = _pipeline_files(project, "")
    found = _by_name(pipeline, cwd_files, target)
    if found:
        return found
    if target in pipeline.by_address:
        return [target]

    rel = project.relpath(target)
    if posixpath.basename(rel) in PIPELINE_FILE_NAMES:
        in_file = [s.address for s in pipeline.stages if s.file == rel]
        if in_file:
            return in_file
    producers = graph.OutIndex.build(pipeline.stages).producers_of(rel)
    if producers:
        order = {s.address: i for i, s in enumerate(pipeline.stages)}
        return sorted(set(producers), key=order.__getitem__)
    raise PivotError(f"target '{target}' does not match any stage, stage group or output")


def _pipeline_files(project: Project, file_part: str) -> list[str]:
    """Root-relative pipeline files meant by ``file_part`` (empty: the cwd's)."""
    if file_part:
        return [project.relpath(file_part)]
    base = project.relpath(".")
    return [name if base == "." else f"{base}/{name}" for name in PIPELINE_FILE_NAMES]


def _by_name(pipeline: Pipeline, files: Sequence[str], name: str) -> list[str]:
    exact = [s.address for s in pipeline.stages if s.file in files and s.name == name]
    if exact:
        return exact
    return [s.address for s in pipeline.stages if s.file in files and s.group == name]


def select(
    pipeline: Pipeline,
    project: Project,
    targets: Sequence[str] = (),
    *,
    downstream: bool = False,
    single_item: bool = False,
    with_upstream: bool = True,
) -> list[Stage]:
    """The stages a command acts on, in run order.

    No targets: every stage.  Otherwise the targets plus, unless
    ``single_item``, their upstream stages (or their downstream ones with
    ``downstream``).
    """
    if not targets:
        if pipeline.in_run_order or not pipeline.stages:
            return list(pipeline.in_run_order)
        chosen: set[str] = set(pipeline.by_address)
    else:
        named: list[str] = []
        for target in targets:
            named.extend(resolve(pipeline, project, target))
        if single_item:
            chosen = set(named)
        elif downstream:
            chosen = graph.downstream_closure(pipeline, named)
        elif with_upstream:
            chosen = graph.upstream_closure(pipeline, named)
        else:
            chosen = set(named)
    return [pipeline.stage(a) for a in graph.run_order(pipeline, chosen)]
