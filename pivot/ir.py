"""The intermediate representation every part of pivot shares.

Front ends (``dvc.yaml``, Pivotfile) build these objects; the optimizer,
the emitters and the runner consume only them.  Every path held here is
relative to the project root, normalised, in POSIX form (``"."`` for the
root itself), so the IR never depends on where the project lives on disk.

This module imports nothing of pivot.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Mapping


# ``https://…``, ``s3://…``, ``remote://…``: kept as written, never joined with a wdir
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://")


def is_url(path: str) -> bool:
    """Whether a dep or out path names something outside the file system (a URL)."""
    return _URL.match(path) is not None


class OutKind(enum.Enum):
    """What a stage output is for; DVC lists outs, then metrics, then plots."""

    OUT = "out"
    METRIC = "metric"
    PLOT = "plot"


@dataclass(frozen=True, slots=True)
class Location:
    """Where a stage was defined: file (root-relative) and 1-based line."""

    file: str
    line: int
    column: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class Dep:
    """A file or directory a stage reads.

    ``path`` is root-relative and normalised; ``def_path`` is the path exactly
    as written in the stage definition (relative to the stage wdir), which is
    how ``dvc.lock`` records it.
    """

    path: str
    def_path: str


@dataclass(frozen=True, slots=True)
class Out:
    """A file or directory a stage writes."""

    path: str
    def_path: str
    cache: bool = True
    persist: bool = False
    kind: OutKind = OutKind.OUT


@dataclass(frozen=True, slots=True)
class ParamsDep:
    """Values a stage reads from a params file.

    ``keys`` holds dotted keys (``train.lr``, ``layers.0``) in definition
    order; ``None`` means the whole file is tracked.
    """

    path: str
    def_path: str
    keys: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class TrackedVar:
    """A value of a params or vars file that a stage's ``${}`` interpolation
    read: one of DVC's "tracked vars".

    ``path`` is the file (root-relative); ``key`` the dotted key as DVC
    names it (``models.0.name``, list indices counted from the start).
    Only single values and whole lists are tracked, never a mapping, and
    only from files (``params.yaml`` beside the dvc.yaml, ``vars:`` files),
    never from inline ``vars:`` mappings.  ``params_show`` and ``params
    diff`` report them beside the ``params:`` a stage lists; as in DVC they
    are not dependencies (a changed value matters only through the
    resolved command and paths).
    """

    path: str
    key: str


@dataclass(frozen=True)
class Stage:
    """One concrete unit of work: commands that turn deps into outs.

    ``cmds`` has one entry per command; each runs in its own shell starting
    in ``wdir``.  ``cmd_literal`` is the command as ``dvc.lock`` would record
    it (a string, or a list when the definition used a list), kept only so
    an existing ``dvc.lock`` can be adopted.  ``tracked_vars`` (dvc.yaml
    stages only) says which vars-file values interpolation read; it plays
    no part in deciding what is stale.
    """

    address: str
    name: str
    file: str
    wdir: str
    cmds: tuple[str, ...]
    deps: tuple[Dep, ...] = ()
    params: tuple[ParamsDep, ...] = ()
    outs: tuple[Out, ...] = ()
    frozen: bool = False
    always_changed: bool = False
    desc: str | None = None
    meta: Any = field(default=None, compare=False, hash=False)
    location: Location | None = field(default=None, compare=False)
    group: str | None = None
    cmd_literal: str | tuple[str, ...] | None = field(default=None, compare=False)
    tracked_vars: tuple[TrackedVar, ...] = field(default=(), compare=False)

    @property
    def is_tracked_data(self) -> bool:
        """Data tracked by a ``.dvc`` file (``dvc add``/``import``): no command, never run."""
        return self.file.endswith(".dvc")

    @property
    def in_dvc_yaml(self) -> bool:
        """Defined in a ``dvc.yaml`` (DVC may have recorded it in a ``dvc.lock``)."""
        return self.file == "dvc.yaml" or self.file.endswith("/dvc.yaml")

    @property
    def is_callback(self) -> bool:
        """DVC's callback stage: no deps and no outs, so it always runs."""
        return not self.deps and not self.params and not self.outs


@dataclass(frozen=True)
class Pipeline:
    """All stages of a project, in definition order, and the DAG between them.

    ``upstream[address]`` lists the addresses of the stages producing what
    ``address`` depends on (no duplicates, in dep order).  ``sources`` lists
    every file read to build the pipeline (pipeline definitions, params and
    vars files), root-relative, so generated build files know when to
    regenerate.
    """

    stages: tuple[Stage, ...]
    upstream: Mapping[str, tuple[str, ...]]
    sources: tuple[str, ...] = ()
    # The hash of what this pipeline was loaded from: pivot's code, the
    # pipeline files, and every file consulted with its signature (the
    # header of .pivot/pipeline.pickle); None when some were too recent to
    # trust.  Decides nothing: equal identities mean equal stages, so the
    # verdict memo can skip comparing each stage's definition.
    identity: str | None = field(default=None, compare=False)
    # Every stage in the order a run of the whole pipeline takes them
    # (``graph.run_order``), worked out once when the stages are linked and
    # kept in the pipeline cache: a plan of everything need not sort 20,000
    # stages again.  Empty when not worked out (a pipeline built by hand).
    in_run_order: tuple[Stage, ...] = field(default=(), compare=False, repr=False)

    @cached_property
    def by_address(self) -> dict[str, Stage]:
        return {stage.address: stage for stage in self.stages}

    @cached_property
    def downstream(self) -> dict[str, tuple[str, ...]]:
        consumers: dict[str, list[str]] = {stage.address: [] for stage in self.stages}
        for stage in self.stages:
            for producer in self.upstream.get(stage.address, ()):
                consumers[producer].append(stage.address)
        return {address: tuple(users) for address, users in consumers.items()}

    def stage(self, address: str) -> Stage:
        return self.by_address[address]
