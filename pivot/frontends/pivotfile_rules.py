"""The rules of a Pivotfile after evaluation, before resolution.

:mod:`pivotfile_eval` makes them (every value known, patterns parsed,
sections checked); :mod:`pivotfile_resolve` turns them into stages.
"""

from __future__ import annotations

from dataclasses import dataclass

from pivot.frontends.pivotfile_parse import Pos
from pivot.frontends.wildcards import Pattern

# The records made per rule and per path (thousands in a large Pivotfile)
# are slotted, not frozen: a frozen dataclass pays object.__setattr__ per
# field, three times the cost of building it.  Nothing changes them once made.
_record = dataclass(slots=True)


@dataclass(frozen=True)
class Marked:
    """An output path wrapped in markers such as ``metric()`` or ``persist()``."""

    path: str
    markers: frozenset[str]


@_record
class PathItem:
    """One path of an input or output section, with its markers (outputs)."""

    pos: Pos
    name: str | None
    pattern: Pattern  # as written, relative to wdir
    rooted: Pattern  # root-relative, normalised
    markers: frozenset[str] = frozenset()


@_record
class ShellCommand:
    """One command: literal text and placeholders (``input[0]``, ``config.a``)."""

    pos: Pos
    parts: tuple[str | "Placeholder", ...]


@dataclass(frozen=True)
class Placeholder:
    kind: str  # input, output, wildcards, config
    index: int | None = None
    name: str | None = None
    keys: tuple[str, ...] = ()
    items: tuple[int, ...] = ()  # input/output: the indexes of the items it stands for


@_record
class ParamsItem:
    pos: Pos
    text: str  # as written
    file: Pattern | None  # None: the default params.yaml
    keys: tuple[Pattern, ...] | None  # None: the whole file

    @property
    def is_concrete(self) -> bool:
        return not (self.file and self.file.wildcards) and not any(k.wildcards for k in self.keys or ())


@_record
class Rule:
    """A rule after evaluation: every value known, wildcards still open."""

    name: str
    pos: Pos
    wdir: str  # root-relative
    inputs: tuple[PathItem, ...]
    outputs: tuple[PathItem, ...]
    params: tuple[ParamsItem, ...]
    shell: tuple[ShellCommand, ...]
    frozen: bool
    always_changed: bool
    desc: str | None
    wildcards: tuple[str, ...]

    @property
    def is_target_only(self) -> bool:
        """Only inputs: it names files to build but runs nothing itself."""
        return not self.shell and not self.outputs

    def describe(self) -> str:
        return f"rule '{self.name}' ({self.pos.source.relpath}:{self.pos.line})"

