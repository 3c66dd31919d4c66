"""The producers index of a Pivotfile: which rule makes a given path.

Resolution asks it once per requested file (every input of every stage), so
it answers from a dict for concrete outputs and tries only the wildcard
patterns that can match (indexed by the top directory of their literal
prefix).
"""

from __future__ import annotations

import posixpath
from typing import Iterable

from pivot.frontends.pivotfile_rules import PathItem, Rule


class Producers:
    """Which rule produces a root-relative path: concrete outputs (and what
    is inside them) by dict, wildcard outputs by regex.

    Wildcard outputs are indexed by the top directory of their literal prefix
    (``out/`` for ``out/{x}.txt``), so a request tries only the patterns that
    can match it, not every rule's regex.
    """

    def __init__(self, rules: list[Rule]) -> None:
        self.concrete: dict[str, Rule] = {}
        self.concrete_firsts: set[str] = set()  # first components of concrete outputs
        self.patterns: list[tuple[Rule, PathItem]] = []
        self.by_top: dict[str, list[int]] = {}  # top directory -> indexes into patterns
        self.unindexed: list[int] = []  # no directory in the literal prefix: tried for every path
        for rule in rules:
            for item in rule.outputs:
                if item.rooted.is_concrete:
                    path = item.rooted.format({})
                    self.concrete.setdefault(path, rule)
                    self.concrete_firsts.add(path.partition("/")[0])
                    continue
                first = item.rooted.parts[0]
                top = _top(first) if isinstance(first, str) else ""
                (self.by_top.setdefault(top, []) if top else self.unindexed).append(len(self.patterns))
                self.patterns.append((rule, item))

    def candidates(self, path: str) -> list[tuple[Rule, dict[str, str]]]:
        """The rules that can make ``path``, with the wildcard values they
        need, in rule order; a concrete output comes first."""
        found: dict[str, tuple[Rule, dict[str, str]]] = {}
        rule = self.concrete.get(path)
        if rule is not None:
            found[rule.name] = (rule, {})
        # inside an output directory? (every parent starts with the path's
        # first component, so most paths need no walk up)
        if path.partition("/")[0] in self.concrete_firsts:
            for parent in parents(path):
                rule = self.concrete.get(parent)
                if rule is not None:
                    found.setdefault(rule.name, (rule, {}))
        # A pattern whose literal prefix holds a '/' can only match paths
        # (and, for directory(), their parents) with the same top directory.
        indexes: Iterable[int] = self.by_top.get(_top(path), ())
        if self.unindexed:
            indexes = sorted([*indexes, *self.unindexed])
        for index in indexes:
            rule, item = self.patterns[index]
            if rule.name in found:
                continue
            match = item.rooted.matcher.match
            if "directory" in item.markers:  # the outermost directory holding `path`
                values = next(filter(None, map(match, [*reversed(parents(path)), path])), None)
            else:
                values = match(path)
            if values is not None:
                found[rule.name] = (rule, values)
        return list(found.values())


def _top(path: str) -> str:
    """The first component of ``path`` with its slash (``out/``), or ""."""
    return path[: path.find("/") + 1]


def parents(path: str) -> list[str]:
    """The directories holding ``path``, innermost first (``a/b/c``: ``a/b``, ``a``)."""
    parents = []
    parent = posixpath.dirname(path)
    while parent and parent != path:  # "/" is its own dirname
        parents.append(parent)
        path, parent = parent, posixpath.dirname(parent)
    return parents
