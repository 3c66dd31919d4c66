"""``.dvcignore`` / ``.pivotignore``: gitignore-syntax rules, as DVC applies them.

Each ignore file holds gitwildmatch patterns relative to its own directory
and applies to everything below it.  Patterns are translated to regular
expressions the way DVC (via pathspec) does: a pattern without an inner
``/`` matches at any depth, a leading ``/`` or an inner ``/`` anchors it, a
trailing ``/`` matches directories only, ``**`` spans directories, ``!``
re-includes, and the last matching pattern wins -- the deepest ignore file
first, then its parents.  Walks prune ignored directories, so nothing below
one comes back (as in git and DVC).

An :class:`IgnoreTree` reads each ignore file at most once per invocation;
a project without ignore files pays one name test per listed directory.
"""

from __future__ import annotations

import os
import re
from typing import Collection, NamedTuple

from pivot.errors import PivotError

IGNORE_FILES = (".dvcignore", ".pivotignore")


class _Group(NamedTuple):
    """Consecutive patterns of one kind, joined into one regex."""

    ignore: bool  # False for `!` patterns
    regex: re.Pattern[str]


class IgnoreFile(NamedTuple):
    """The rules of one ignore file; ``base`` is its root-relative directory
    with a trailing ``/`` ("" for the root)."""

    base: str
    groups: tuple[_Group, ...]  # last pattern first: the first group that matches decides

    def decide(self, relpath: str, is_dir: bool) -> bool | None:
        """True/False when a pattern matches ``relpath`` (root-relative), None otherwise."""
        if not relpath.startswith(self.base):
            return None
        inner = relpath[len(self.base) :]
        for group in self.groups:
            if group.regex.match(inner) or (is_dir and group.regex.match(inner + "/")):
                return group.ignore
        return None


Chain = tuple[IgnoreFile, ...]  # ignore files that apply in one directory, outermost first


def is_ignored(chain: Chain, relpath: str, is_dir: bool) -> bool:
    """Whether ``relpath`` is ignored by the files of ``chain``."""
    for rules in reversed(chain):
        decided = rules.decide(relpath, is_dir)
        if decided is not None:
            return decided
    return False


class IgnoreTree:
    """The ignore files of one project, each read once, found as walks list
    directories (or, for a directory not listed yet, by looking)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = str(root).rstrip("/")
        self.files: list[str] = []  # ignore files read (root-relative)
        self._chains: dict[str, Chain] = {"": self._read_dir("", None, ())}

    def chain(self, dirrel: str, names: Collection[str] | None = None) -> Chain:
        """Rules for entries of directory ``dirrel`` ("" for the root).  ``names``
        (the directory's listing, if at hand) spares looking for ignore files."""
        dirrel = "" if dirrel == "." else dirrel
        try:
            return self._chains[dirrel]
        except KeyError:
            pass
        parent = os.path.dirname(dirrel)
        chain = self._read_dir(dirrel, names, self.chain(parent))
        self._chains[dirrel] = chain
        return chain

    def ignored(self, relpath: str, is_dir: bool) -> bool:
        """Whether ``relpath`` or any directory above it is ignored."""
        parts = relpath.split("/")
        for depth in range(1, len(parts) + 1):
            chain = self.chain("/".join(parts[: depth - 1]))
            if chain and is_ignored(chain, "/".join(parts[:depth]), is_dir or depth < len(parts)):
                return True
        return False

    def _read_dir(self, dirrel: str, names: Collection[str] | None, parent: Chain) -> Chain:
        chain = parent
        for name in IGNORE_FILES:
            if names is not None and name not in names:
                continue
            relpath = f"{dirrel}/{name}" if dirrel else name
            try:
                with open(f"{self.root}/{relpath}", encoding="utf-8") as handle:
                    text = handle.read()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                continue
            except (OSError, UnicodeDecodeError) as exc:
                raise PivotError(f"cannot read '{relpath}': {exc}") from None
            self.files.append(relpath)
            rules = parse(text, f"{dirrel}/" if dirrel else "", relpath)
            if rules.groups:
                chain = (*chain, rules)
        return chain


def parse(text: str, base: str, source: str = "<ignore>") -> IgnoreFile:
    """The rules of an ignore file whose directory is ``base``."""
    patterns: list[tuple[bool, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()  # DVC strips both ends
        if not line or line.startswith("#"):
            continue
        try:
            compiled = pattern_regex(line)
            if compiled is not None:
                re.compile(compiled[1])
        except re.error as exc:
            raise PivotError(f"{source}:{number}: bad pattern {line!r}: {exc}") from None
        if compiled is not None:
            patterns.append(compiled)
    groups: list[_Group] = []
    start = 0
    for index in range(1, len(patterns) + 1):
        if index == len(patterns) or patterns[index][0] != patterns[start][0]:
            joined = "|".join(f"(?:{regex})" for _, regex in patterns[start:index])
            groups.append(_Group(patterns[start][0], re.compile(joined)))
            start = index
    return IgnoreFile(base, tuple(reversed(groups)))


def pattern_regex(pattern: str) -> tuple[bool, str] | None:
    """(ignore?, regex) for one gitwildmatch pattern, None if it matches nothing."""
    ignore = True
    if pattern.startswith("!"):
        ignore = False
        pattern = pattern[1:]
    if pattern.startswith("\\") and pattern[1:2] in ("!", "#"):
        pattern = pattern[1:]
    if not pattern or pattern == "/":
        return None
    segments = pattern.split("/")
    if not segments[0]:
        segments.pop(0)  # leading slash: anchored
    elif len(segments) == 1 or (len(segments) == 2 and not segments[1]):
        if segments[0] != "**":
            segments.insert(0, "**")  # no inner slash: any depth
    if not segments[-1] and len(segments) > 1:
        segments[-1] = "**"  # trailing slash: the directory and what is inside it
    # collapse runs of `**`
    collapsed: list[str] = []
    for segment in segments:
        if segment == "**" and collapsed and collapsed[-1] == "**":
            continue
        collapsed.append(segment)
    segments = collapsed
    end = len(segments) - 1
    out = ["^"]
    need_slash = False
    for index, segment in enumerate(segments):
        if segment == "**":
            if index == 0 and index == end:
                out.append(".+")
            elif index == 0:
                out.append("(?:.+/)?")
                need_slash = False
            elif index == end:
                out.append("/.*")
            else:
                out.append("(?:/.+)?")
                need_slash = True
            continue
        if need_slash:
            out.append("/")
        out.append("[^/]+" if segment == "*" else _glob_segment(segment))
        if index == end:
            out.append("(?:/.*)?")
        need_slash = True
    out.append("$")
    return ignore, "".join(out)


def _glob_segment(segment: str) -> str:
    """One path segment's glob (``*``, ``?``, ``[...]``, ``\\x``) as regex."""
    out: list[str] = []
    index, length = 0, len(segment)
    while index < length:
        char = segment[index]
        index += 1
        if char == "\\" and index < length:
            out.append(re.escape(segment[index]))
            index += 1
        elif char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            close = index
            if close < length and segment[close] in "!^":
                close += 1
            if close < length and segment[close] == "]":
                close += 1
            while close < length and segment[close] != "]":
                close += 1
            if close >= length:
                out.append("\\[")  # unclosed: a literal bracket
                continue
            body = segment[index:close]
            index = close + 1
            if body[:1] in ("!", "^"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
        else:
            out.append(re.escape(char))
    return "".join(out)
