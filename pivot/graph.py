"""The stage DAG: edges from outs to deps, validation, target selection, order.

An edge runs from a producer to a consumer when one of the consumer's deps
(or params files) equals an out of the producer, lies inside an out
directory, or contains outs -- DVC's three rules.  All functions here are
pure: they look only at the IR, never at the disk.
"""

from __future__ import annotations

import bisect
from dataclasses import replace
from typing import Callable, Iterable, NamedTuple, Sequence

from pivot.errors import PipelineError
from pivot.ir import Pipeline, Stage


class OutIndex(NamedTuple):
    """Every out path of a pipeline, for the three edge rules.

    (Records on the warm path are NamedTuples: a frozen dataclass costs about
    a millisecond to define at import, a NamedTuple a tenth of that.)"""

    owner: dict[str, str]  # out path -> address of the stage producing it
    sorted_paths: tuple[str, ...]
    no_overlaps: bool = False  # checked: no out lies inside another (build_pipeline refuses that)
    # the first component of every out path: a path starting otherwise (a
    # source file, most deps) neither is an out, nor lies inside one, nor holds one
    firsts: frozenset[str] = frozenset()

    @classmethod
    def build(cls, stages: Iterable[Stage]) -> "OutIndex":
        owner: dict[str, str] = {}
        for stage in stages:
            for out in stage.outs:
                if out.path in owner and owner[out.path] != stage.address:
                    raise PipelineError(
                        f"output '{out.path}' is specified in:\n"
                        f"\t- {owner[out.path]}\n\t- {stage.address}\n"
                        "Each output may be produced by one stage only."
                    )
                owner[out.path] = stage.address
        return cls(owner=owner, sorted_paths=tuple(sorted(owner)),
                   firsts=frozenset(path.partition("/")[0] for path in owner))

    def producers_of(self, path: str) -> list[str]:
        """Addresses of stages whose outs equal, contain or lie inside ``path``."""
        found: list[str] = []
        if path.partition("/")[0] not in self.firsts and path != ".":
            return found
        if path in self.owner:
            found.append(self.owner[path])
            if self.no_overlaps:  # an out neither lies inside another nor holds one
                return found
        for parent in _parents(path):
            if parent in self.owner:
                found.append(self.owner[parent])
        found.extend(self.owner[inner] for inner in self.outs_inside(path))
        return found

    def outs_inside(self, path: str) -> list[str]:
        """Out paths lying inside directory ``path`` (a bisection, not a scan)."""
        prefix = "" if path == "." else path + "/"
        paths = self.sorted_paths
        inside: list[str] = []
        # walk by index: slicing would copy the tail of the index on every call
        for position in range(bisect.bisect_left(paths, prefix), len(paths)):
            candidate = paths[position]
            if not candidate.startswith(prefix):
                break
            inside.append(candidate)
        return inside

    def enclosing_out(self, path: str) -> str | None:
        """The out directory that ``path`` lies inside, if any."""
        for parent in _parents(path):
            if parent in self.owner:
                return parent
        return None


def _parents(path: str) -> Iterable[str]:
    """``a/b/c`` -> ``a/b``, ``a`` (what posixpath.dirname would give, faster)."""
    cut = path.rfind("/")
    while cut > 0:
        path = path[:cut]
        yield path
        cut = path.rfind("/")


def build_pipeline(stages: Sequence[Stage], sources: Sequence[str] = ()) -> Pipeline:
    """Validate ``stages`` as one project and link them into a Pipeline.

    Raises PipelineError for duplicate addresses, an output produced by two
    stages, overlapping outputs, a stage depending on its own output, and
    cycles (naming the stages in the cycle).
    """
    seen: dict[str, Stage] = {}
    for stage in stages:
        if stage.address in seen:
            first = seen[stage.address]
            raise PipelineError(
                f"stage '{stage.address}' is defined twice"
                f" ({_where(first)} and {_where(stage)})"
            )
        seen[stage.address] = stage

    index = OutIndex.build(stages)
    _check_protected_outs(stages, sources)
    for path in index.sorted_paths:
        outer = index.enclosing_out(path)
        if outer is not None:
            raise PipelineError(
                "The output paths:\n"
                f"'{outer}'('{index.owner[outer]}')\n"
                f"'{path}'('{index.owner[path]}')\n"
                "overlap and are thus in the same tracked directory.\n"
                "Outputs should be in separate directories or tracked individually."
            )

    index = index._replace(no_overlaps=True)
    upstream: dict[str, tuple[str, ...]] = {}
    for stage in stages:
        producers: dict[str, None] = {}
        for path in [dep.path for dep in stage.deps] + [p.path for p in stage.params]:
            for producer in index.producers_of(path):
                if producer == stage.address:
                    raise PipelineError(
                        "Same item(s) are defined as both a dependency and an output"
                        f" in stage: {stage.address} ('{path}')."
                    )
                producers[producer] = None
        upstream[stage.address] = tuple(producers)

    pipeline = Pipeline(stages=tuple(stages), upstream=upstream, sources=tuple(dict.fromkeys(sources)))
    order = _acyclic_run_order(pipeline)
    return replace(pipeline, in_run_order=tuple(pipeline.by_address[a] for a in order))


# Names a stage may never write: removing an output before its stage runs
# would delete the project's state or its pipeline definitions.
_STATE_DIRS = {".pivot": "pivot's state", ".dvc": "DVC's state", ".git": "git's state"}
_PIPELINE_FILES = frozenset({"dvc.yaml", "dvc.lock", "Pivotfile"})


def _check_protected_outs(stages: Sequence[Stage], sources: Sequence[str]) -> None:
    """Refuse outputs that are, or hold, pipeline files or state directories
    (DVC: ``DVC file 'dvc.yaml' cannot be an output.``)."""
    # each directory holding a pipeline file -> the first such file (in source order)
    holders: dict[str, str] = {}
    for source in sources:
        if source.rsplit("/", 1)[-1] in _PIPELINE_FILES:
            for parent in _parents(source):
                holders.setdefault(parent, source)
    for stage in stages:
        for out in stage.outs:
            why = _protected(out.path, holders)
            if why is not None:
                raise PipelineError(
                    f"stage '{stage.address}' ({_where(stage)}): '{out.path}' cannot be an output: {why}"
                )


def _protected(path: str, holders: dict[str, str]) -> str | None:
    if ".pivot" in path or ".dvc" in path or ".git" in path:  # (a substring test first: outs are many)
        for part in path.split("/"):
            if part in _STATE_DIRS:
                return f"it is {_STATE_DIRS[part]}"
    name = path.rpartition("/")[2]
    if name in _PIPELINE_FILES or name.endswith(".dvc"):
        return "it is a pipeline file"
    if path == ".":
        return "it is the whole project"
    inside = holders.get(path)
    if inside is not None:
        return f"it holds the pipeline file '{inside}'"
    return None


def _where(stage: Stage) -> str:
    return str(stage.location) if stage.location else stage.file


def _acyclic_run_order(pipeline: Pipeline) -> list[str]:
    """Every stage in run order (as ``run_order`` gives it), refusing a
    cycle: one walk does both.  An iterative DFS in definition order; a
    stage met again while its own walk is under way closes a cycle, named
    as DVC names it."""
    ON_PATH, DONE = 1, 2
    upstream = pipeline.upstream
    seen: dict[str, int] = {}
    order: list[str] = []
    for stage in pipeline.stages:
        address = stage.address
        if address in seen:
            continue
        # most stages come after everything they need (definition order): no walk
        for needed in upstream[address]:
            if seen.get(needed) != DONE:
                break
        else:
            seen[address] = DONE
            order.append(address)
            continue
        seen[address] = ON_PATH
        path = [address]
        walks = [iter(upstream[address])]
        while walks:
            child = next(walks[-1], None)
            if child is None:
                walks.pop()
                finished = path.pop()
                seen[finished] = DONE
                order.append(finished)
                continue
            mark = seen.get(child)
            if mark == DONE:
                continue
            if mark == ON_PATH:
                cycle = path[path.index(child):]
                raise PipelineError(
                    "Pipeline has a cycle: "
                    + " -> ".join(reversed(cycle + [child]))
                    + "\nSame item(s) are defined as both a dependency and an output"
                    f" in stages: {', '.join(sorted(set(cycle)))}."
                )
            seen[child] = ON_PATH
            path.append(child)
            walks.append(iter(upstream[child]))
    return order


def run_order(pipeline: Pipeline, addresses: Iterable[str]) -> list[str]:
    """``addresses`` in a valid execution order: DFS post-order over
    definition order, as DVC plans (dependencies first, independent stages in
    the order they were defined)."""
    wanted = set(addresses)
    upstream = pipeline.upstream
    order: list[str] = []
    done: set[str] = set()
    for stage in pipeline.stages:
        address = stage.address
        if address not in wanted or address in done:
            continue
        done.add(address)
        # most stages come after everything they need (definition order): no walk
        for needed in upstream[address]:
            if needed in wanted and needed not in done:
                break
        else:
            order.append(address)
            continue
        stack = [(address, iter(upstream[address]))]
        while stack:
            address, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                order.append(address)
            elif child in wanted and child not in done:
                done.add(child)
                stack.append((child, iter(upstream[child])))
    return order


def upstream_closure(pipeline: Pipeline, addresses: Iterable[str]) -> set[str]:
    """``addresses`` plus everything they depend on, transitively.  A frozen
    stage is included but its own upstream is not (DVC cuts those edges)."""
    return _closure(addresses, lambda a: () if pipeline.stage(a).frozen else pipeline.upstream[a])


def downstream_closure(pipeline: Pipeline, addresses: Iterable[str]) -> set[str]:
    """``addresses`` plus every stage that depends on them, transitively.

    A frozen stage has no upstream edges (as in DVC), so the walk never
    enters one, nor what lies beyond it."""
    return _closure(addresses, lambda a: (d for d in pipeline.downstream[a] if not pipeline.stage(d).frozen))


def _closure(addresses: Iterable[str], neighbours: Callable[[str], Iterable[str]]) -> set[str]:
    closure: set[str] = set()
    stack = list(addresses)
    while stack:
        address = stack.pop()
        if address not in closure:
            closure.add(address)
            stack.extend(neighbours(address))
    return closure
