"""Path patterns with ``{wildcards}``, Snakemake style.

``results/{sample}.txt`` holds one wildcard; ``{sample,[a-z]+}`` constrains it
with a regular expression (default ``.+``); ``{{`` and ``}}`` are literal
braces.  A pattern matches a concrete path with an anchored regex in which a
repeated wildcard must take the same value each time.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterator, Mapping

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
DEFAULT_CONSTRAINT = ".+"


class PatternError(ValueError):
    """A malformed pattern; ``offset`` is the index in the pattern text."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True, slots=True)
class Wildcard:
    name: str
    constraint: str | None = None


Part = str | Wildcard


@dataclass(frozen=True)
class Pattern:
    """Literal text and wildcards, in order."""

    parts: tuple[Part, ...]
    # Derived from parts once, when made: a large Pivotfile formats its
    # patterns thousands of times.
    wildcards: tuple[str, ...] = field(init=False, repr=False, compare=False)  # in order of first appearance
    _template: str = field(init=False, repr=False, compare=False)  # for str.format_map

    def __post_init__(self) -> None:
        parts = self.parts
        if len(parts) == 1 and isinstance(parts[0], str):  # a plain path, the common case
            names: tuple[str, ...] = ()
            template = escape_braces(parts[0])
        else:
            names = tuple(dict.fromkeys(p.name for p in parts if isinstance(p, Wildcard)))
            template = "".join(escape_braces(p) if isinstance(p, str) else "{" + p.name + "}" for p in parts)
        object.__setattr__(self, "wildcards", names)
        object.__setattr__(self, "_template", template)

    @property
    def is_concrete(self) -> bool:
        return not self.wildcards

    def format(self, values: Mapping[str, str]) -> str:
        """The path with every wildcard replaced by its value."""
        return self._template.format_map(values)

    def joined(self, base: str) -> "Pattern":
        """``base/self``, normalised like a path, wildcards kept intact (self
        when that changes nothing, so callers can skip formatting it twice)."""
        if self.is_concrete:
            text = self.format({})
            joined = join_path(base, text)
            return self if joined == text else Pattern((joined,))
        # Stand-ins keep constraints such as [^/]+ away from normpath.
        marks = [p for p in self.parts if isinstance(p, Wildcard)]
        text = "".join(p if isinstance(p, str) else f"\0{i}\0" for i, p in _numbered(self.parts))
        joined = join_path(base, text)
        parts: list[Part] = []
        for index, chunk in enumerate(joined.split("\0")):
            if index % 2:
                parts.append(marks[int(chunk)])
            elif chunk:
                parts.append(chunk)
        return self if tuple(parts) == self.parts else Pattern(tuple(parts))

    @cached_property
    def matcher(self) -> "Matcher":
        return Matcher.build(self)


def join_path(base: str, path: str) -> str:
    """``normpath(join(base, path))``; skips the join for the usual base ``.``
    (``./x`` normalises like ``x``, and an absolute path ignores the base)."""
    if base == ".":
        return posixpath.normpath(path)
    return posixpath.normpath(posixpath.join(base, path))


def _numbered(parts: tuple[Part, ...]) -> Iterator[tuple[int, Part]]:
    """``(index, part)`` where index counts wildcards only (literals get -1)."""
    count = 0
    for part in parts:
        if isinstance(part, Wildcard):
            yield count, part
            count += 1
        else:
            yield -1, part


def escape_braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def parse_pattern(text: str) -> Pattern:
    """Split ``text`` into literals and wildcards; PatternError when malformed."""
    if "{" not in text and "}" not in text:  # the common case: a plain path
        return Pattern((text,) if text else ())
    parts: list[Part] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "{" and text.startswith("{{", i):
            literal.append("{")
            i += 2
        elif char == "}":
            if not text.startswith("}}", i):
                raise PatternError("single '}' in pattern (write '}}' for a literal brace)", i)
            literal.append("}")
            i += 2
        elif char == "{":
            end = _closing_brace(text, i)
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_wildcard(text[i + 1 : end], i))
            i = end + 1
        else:
            literal.append(char)
            i += 1
    if literal:
        parts.append("".join(literal))
    return Pattern(tuple(parts))


def _closing_brace(text: str, start: int) -> int:
    """Index of the brace closing the one at ``start``; constraints may nest
    braces, as in ``{id,[0-9]{3}}``."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    raise PatternError("unclosed '{' in pattern (write '{{' for a literal brace)", start)


def _wildcard(inner: str, offset: int) -> Wildcard:
    name, comma, constraint = inner.partition(",")
    name = name.strip()
    if not _NAME.match(name):
        raise PatternError(f"bad wildcard '{{{inner}}}': a wildcard is {{name}} or {{name,regex}}", offset)
    if not comma:
        return Wildcard(name)
    try:
        compiled = re.compile(constraint)
    except re.error as exc:
        raise PatternError(f"bad constraint for wildcard '{name}': {exc}", offset) from None
    if compiled.groups:
        constraint = _without_capture_groups(constraint)
    return Wildcard(name, constraint)


def _without_capture_groups(regex: str) -> str:
    """Turn ``(`` into ``(?:`` so a constraint's groups do not shift ours."""
    return re.sub(r"(?<!\\)\((?!\?)", "(?:", regex)


@dataclass(frozen=True)
class Matcher:
    """A compiled pattern plus its constant prefix and suffix (cheap pre-checks)."""

    regex: re.Pattern[str]
    prefix: str
    suffix: str

    @classmethod
    def build(cls, pattern: Pattern) -> "Matcher":
        pieces: list[str] = []
        seen: set[str] = set()
        for part in pattern.parts:
            if isinstance(part, str):
                pieces.append(re.escape(part))
            elif part.name in seen:
                pieces.append(f"(?P={part.name})")
            else:
                seen.add(part.name)
                pieces.append(f"(?P<{part.name}>{part.constraint or DEFAULT_CONSTRAINT})")
        parts = pattern.parts
        prefix = parts[0] if parts and isinstance(parts[0], str) else ""
        suffix = parts[-1] if len(parts) > 1 and isinstance(parts[-1], str) else ""
        return cls(re.compile("".join(pieces), re.DOTALL), prefix, suffix)

    def match(self, path: str) -> dict[str, str] | None:
        """Wildcard values when ``path`` matches the whole pattern."""
        if not (path.startswith(self.prefix) and path.endswith(self.suffix)):
            return None
        found = self.regex.fullmatch(path)
        return found.groupdict() if found else None
