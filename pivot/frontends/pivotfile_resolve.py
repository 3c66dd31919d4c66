"""Pivotfile wildcard resolution: rules -> concrete Stages.

Every rule without wildcards is a stage; a rule with wildcards becomes one
stage per value set that some requested file needs, working backwards from
the inputs of the concrete rules and from ``needed`` (files other pipelines
or the command line ask for), Snakemake style.
"""

from __future__ import annotations

import os
import shlex
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, NamedTuple

from pivot.errors import PipelineError
from pivot.frontends.pivotfile_producers import Producers, parents
from pivot.frontends.pivotfile_rules import Rule, ShellCommand
from pivot.frontends.wildcards import join_path
from pivot.ir import Dep, Location, Out, OutKind, ParamsDep, Stage
from pivot.project import Project

DEFAULT_PARAMS_FILE = "params.yaml"
MAX_RESOLUTION_DEPTH = 10_000
_KIND_ORDER = {OutKind.OUT: 0, OutKind.METRIC: 1, OutKind.PLOT: 2}


@dataclass(slots=True)
class _Instance:
    """A rule with a value for each of its wildcards: one stage to be."""

    rule: Rule
    values: dict[str, str]
    depth: int
    requested: "_Request | None" = None  # the request that made it (None: a rule without wildcards)
    name: str = field(init=False)
    inputs: tuple[str, ...] = field(init=False)  # root-relative, one per input item

    def __post_init__(self) -> None:
        rule = self.rule
        self.name = rule.name + "@" + "-".join(self.values[w] for w in rule.wildcards) if rule.wildcards else rule.name
        self.inputs = tuple([item.rooted.format(self.values) for item in rule.inputs])


class _Request(NamedTuple):
    path: str
    wanted_by: _Instance | None  # None: asked for from outside (needed)



def resolve(
    project: Project, relpath: str, rules: list[Rule], needed: list[str], provided: set[str],
    looked_up: list[str] | None = None,
) -> list[Stage]:
    producers = Producers(rules)
    instances: dict[tuple[str, tuple[str, ...]], _Instance] = {}
    by_rule: dict[str, list[_Instance]] = {rule.name: [] for rule in rules}
    queue: deque[_Request] = deque()

    named: dict[str, _Instance] = {}

    def instantiate(rule: Rule, values: dict[str, str], depth: int, request: _Request | None = None) -> None:
        key = (rule.name, tuple([values[w] for w in rule.wildcards]))
        if key in instances:
            return
        if depth > MAX_RESOLUTION_DEPTH:
            raise rule.pos.error(
                f"wildcard resolution of rule '{rule.name}' goes deeper than {MAX_RESOLUTION_DEPTH} levels"
                " (a pattern that matches its own inputs?); constrain the wildcards"
            )
        instance = _Instance(rule, values, depth, request)
        if instance.name in named:
            raise _name_collision(relpath, named[instance.name], instance)
        named[instance.name] = instance
        instances[key] = instance
        by_rule[rule.name].append(instance)
        queue.extend([_Request(path, instance) for path in instance.inputs])

    for rule in rules:
        if not rule.wildcards:
            instantiate(rule, {}, 0)
    for path in needed:
        queue.append(_Request(path, None))

    unproduced: list[_Request] = []
    while queue:
        request = queue.popleft()
        candidates = producers.candidates(request.path)
        if len(candidates) > 1:
            names = " and ".join(r.describe() for r, _ in candidates)
            wanted = f" (wanted by {_wanted(request.wanted_by)})" if request.wanted_by else ""
            raise _request_error(
                relpath, request,
                f"'{request.path}'{wanted} can be produced by {names}; "
                "make the patterns distinct, e.g. with a wildcard constraint {name,regex}",
            )
        if candidates:
            rule, values = candidates[0]
            if rule.wildcards:
                depth = request.wanted_by.depth + 1 if request.wanted_by else 0
                instantiate(rule, values, depth, request)
        elif request.wanted_by is not None and request.wanted_by.rule.is_target_only:
            # A file a target-only rule asks for is something to build: if
            # nothing builds it, it must already exist (checked below).  A
            # stage's input nobody produces is a source file instead, and a
            # missing one is a missing dep, as in a dvc.yaml (a fresh clone
            # before its data is pulled): the stage is made all the same.
            unproduced.append(request)

    # What does not depend on wildcard values is made once per rule; params
    # without wildcards once per distinct set (rules often share them).
    shared_params: dict[tuple[str, tuple[str, ...]], tuple[ParamsDep, ...]] = {}
    stages: list[Stage] = []
    for rule in rules:
        if rule.is_target_only:
            continue
        location = Location(rule.pos.source.relpath, rule.pos.line, rule.pos.column)
        params = None
        if all(item.is_concrete for item in rule.params):
            key = (rule.wdir, tuple([item.text for item in rule.params]))
            if key not in shared_params:
                shared_params[key] = _params_deps(rule, {})
            params = shared_params[key]
        stages.extend(_stage(relpath, instance, location, params) for instance in by_rule[rule.name])
    _check_missing(project, unproduced, stages, provided, looked_up)
    return stages


def _check_missing(
    project: Project, requests: list[_Request], stages: list[Stage], provided: set[str],
    looked_up: list[str] | None = None,
) -> None:
    """Targets nobody produces must exist on disk (or come from another pipeline)."""
    if not requests:
        return
    outputs: set[str] | None = None  # made at the first input that does not exist
    root = str(project.root)
    exists: dict[str, bool] = {}  # many stages read the same file (a script, a config)
    for request in requests:
        path = request.path
        if provided and (path in provided or any(p in provided for p in parents(path))):
            continue
        if looked_up is not None:
            looked_up.append(path)
        if path not in exists:
            exists[path] = os.path.lexists(_abspath(project, root, path))
        if exists[path]:
            continue
        if outputs is None:
            outputs = {out.path for stage in stages for out in stage.outs} | provided
        prefix = path + "/"
        if any(o.startswith(prefix) for o in outputs):  # a directory holding outputs
            continue
        instance = request.wanted_by
        assert instance is not None
        raise _request_error(
            "", request, f"missing target '{path}' of {_wanted(instance)}: no rule produces it and it does not exist"
        )


def _abspath(project: Project, root: str, path: str) -> str | Path:
    """``project.abspath(path)``; a plain relative path (no empty, ``.`` or
    trailing components, which pathlib would drop) is joined as a string,
    several times faster."""
    if path and "/".join([c for c in path.split("/") if c and c != "."]) == path:
        return f"{root.rstrip('/')}/{path}"
    return project.abspath(path)


def _request_error(relpath: str, request: _Request, message: str) -> PipelineError:
    """An error at the input that asked for ``request.path`` (with a caret),
    or, for a file asked for from outside, naming the Pivotfile and the asker."""
    instance = request.wanted_by
    if instance is None:
        return PipelineError(f"{relpath}: {message} (asked for by another pipeline or the command line)")
    item = next((i for i, path in zip(instance.rule.inputs, instance.inputs) if path == request.path), None)
    pos = item.pos if item else instance.rule.pos
    return pos.error(message)


def _name_collision(relpath: str, first: _Instance, second: _Instance) -> PipelineError:
    """Two instances that would make stages of the same name."""

    def origin(instance: _Instance) -> str:
        rule = instance.rule
        if instance.requested is None:
            return rule.describe()
        values = ", ".join(f"{w}={instance.values[w]}" for w in rule.wildcards)
        return f"'{instance.requested.path}' ({rule.describe()} with {values})"

    message = (
        f"stage name '{second.name}' is given to both {origin(first)} and {origin(second)}; "
        "constrain the wildcards, e.g. {name,[^-]+}, so that the values tell them apart"
    )
    if second.requested is None:
        return second.rule.pos.error(message)
    return _request_error(relpath, second.requested, message)


def _wanted(instance: _Instance) -> str:
    rule = instance.rule
    label = f"rule '{rule.name}'"
    if rule.wildcards:
        label += f" as '{instance.name}'"
    return f"{label} ({rule.pos.source.relpath}:{rule.pos.line})"



# ---------------------------------------------------------------- stages


def _stage(relpath: str, instance: _Instance, location: Location, params: tuple[ParamsDep, ...] | None) -> Stage:
    """The stage of ``instance``; ``params``: the rule's, when they hold no wildcards."""
    rule, values = instance.rule, instance.values
    input_paths = [  # as written
        path if item.pattern is item.rooted else item.pattern.format(values)
        for item, path in zip(rule.inputs, instance.inputs)
    ]
    # every input is a dep, a path listed twice included, as in a dvc.yaml
    deps = [Dep(path, def_path) for path, def_path in zip(instance.inputs, input_paths)]
    output_paths: list[str] = []
    outs: dict[str, Out] = {}
    for item in rule.outputs:
        path = item.rooted.format(values)
        def_path = path if item.pattern is item.rooted else item.pattern.format(values)
        output_paths.append(def_path)
        if path in outs:
            continue
        if item.markers:
            markers = item.markers
            kind = OutKind.METRIC if "metric" in markers else OutKind.PLOT if "plot" in markers else OutKind.OUT
            outs[path] = Out(path, def_path, cache="nocache" not in markers, persist="persist" in markers, kind=kind)
        else:
            outs[path] = Out(path, def_path)
    if len(outs) > 1:
        ordered = tuple(sorted(outs.values(), key=lambda o: _KIND_ORDER[o.kind]))
    else:
        ordered = tuple(outs.values())
    if rule.shell:
        quoted_inputs = [shlex.quote(p) for p in input_paths]
        quoted_outputs = [shlex.quote(p) for p in output_paths]
        cmds = tuple([_render(cmd, values, quoted_inputs, quoted_outputs) for cmd in rule.shell])
    else:
        cmds = ()
    name = instance.name
    group = rule.name if rule.wildcards else (name.partition("@")[0] if "@" in name else None)
    return Stage(
        address=name if relpath == "Pivotfile" else f"{relpath}:{name}",
        name=name,
        file=relpath,
        wdir=rule.wdir,
        cmds=cmds,
        deps=tuple(deps),
        params=_params_deps(rule, values) if params is None else params,
        outs=ordered,
        frozen=rule.frozen,
        always_changed=rule.always_changed,
        desc=rule.desc,
        location=location,
        group=group,
    )


def _params_deps(rule: Rule, values: Mapping[str, str]) -> tuple[ParamsDep, ...]:
    """Params items grouped by file, in order of first mention (as DVC merges them)."""
    by_file: dict[str, list[str] | None] = {}
    for item in rule.params:
        def_path = item.file.format(values) if item.file else DEFAULT_PARAMS_FILE
        if item.keys is None:
            by_file[def_path] = None
            continue
        keys = by_file.setdefault(def_path, [])
        if keys is not None:
            keys.extend(k.format(values) for k in item.keys)
    return tuple(
        ParamsDep(
            path=join_path(rule.wdir, def_path),
            def_path=def_path,
            keys=None if keys is None else tuple(keys),  # a key listed twice stays twice, as in DVC
        )
        for def_path, keys in by_file.items()
    )


def _render(cmd: ShellCommand, values: Mapping[str, str], inputs: list[str], outputs: list[str]) -> str:
    """The command with its placeholders filled; ``inputs`` and ``outputs``
    are already shell-quoted."""
    out: list[str] = []
    for part in cmd.parts:
        if isinstance(part, str):
            out.append(part)
        elif part.kind == "wildcards":
            out.append(values[part.name or ""])
        else:
            paths = inputs if part.kind == "input" else outputs
            out.append(" ".join([paths[i] for i in part.items]))
    return "".join(out)
