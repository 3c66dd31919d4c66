"""Parsing a Pivotfile into a syntax tree (no evaluation yet).

The grammar lives in ``grammar/pivotfile.lark``; :mod:`pivotfile_lalr` runs
lark's tables for it, calling :class:`_ToAst` as rules reduce.  Each
top-level statement's syntax tree is pickled into the project's
``.pivot/parser/statements/``, so that after an edit only the changed
statements are parsed again.  Every node keeps its position, and every
error -- lark's included -- becomes a :class:`PipelineError` reading
``file:line:col: message`` followed by the source line and a caret.
"""

from __future__ import annotations

import pickle
import re
import sys
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Iterable

import xxhash

from pivot import atomic, resources
from pivot.errors import PipelineError
from pivot.frontends import pivotfile_lalr as lalr
from pivot.frontends.pivotfile_lalr import Token
from pivot.frontends.safepickle import RestrictedUnpickler

# ---------------------------------------------------------------- positions


@dataclass(frozen=True, eq=False)
class Source:
    """One Pivotfile's text and its root-relative path."""

    relpath: str
    text: str = field(repr=False)

    def line_text(self, line: int) -> str:
        lines = self.text.splitlines()
        return lines[line - 1] if 0 < line <= len(lines) else ""


@dataclass(frozen=True, eq=False)
class Origin:
    """The file and first line of one top-level statement's text.  Positions
    are stored relative to it, so a statement's cached syntax tree is reused
    wherever the statement moves in the file: it only gets a new Origin."""

    source: Source
    first_line: int


# Positions and syntax tree nodes are built by the ten thousand (a 1,000-rule
# Pivotfile makes 54,000): a frozen dataclass pays object.__setattr__ per
# field, three times the cost of a plain slotted one.  They are never
# changed once built.
_node = dataclass(eq=False, slots=True)


@_node
class Pos:
    """Where a node starts: file, 1-based line and column."""

    origin: Origin = field(repr=False)
    rel_line: int  # 1-based, within the origin's statement
    column: int

    @classmethod
    def at(cls, source: Source, line: int, column: int) -> "Pos":
        return cls(Origin(source, 1), line, column)

    @property
    def source(self) -> Source:
        return self.origin.source

    @property
    def line(self) -> int:
        return self.origin.first_line + self.rel_line - 1

    def error(self, message: str) -> PipelineError:
        """``file:line:col: message``, then the source line with a caret."""
        line = self.line
        text, column = _excerpt(self.source.line_text(line), max(self.column, 1))
        caret = " " * (column - 1) + "^"
        return PipelineError(
            f"{self.source.relpath}:{line}:{self.column}: {message}\n    {text}\n    {caret}"
        )


EXCERPT_WIDTH = 120


def _excerpt(text: str, column: int) -> tuple[str, int]:
    """At most EXCERPT_WIDTH characters of a source line around ``column``
    (1-based) and the column within them: a generated or hostile line may
    be megabytes long."""
    if len(text) <= EXCERPT_WIDTH:
        return text, column
    start = max(0, min(column - 1 - EXCERPT_WIDTH // 2, len(text) - EXCERPT_WIDTH))
    end = start + EXCERPT_WIDTH
    prefix = "..." if start else ""
    suffix = "..." if end < len(text) else ""
    return prefix + text[start:end] + suffix, column - start + len(prefix)


# ---------------------------------------------------------------- syntax tree


@_node
class Expr:
    pos: Pos


@_node
class Literal(Expr):
    value: str | int | float


@_node
class Var(Expr):
    name: str


@_node
class ListExpr(Expr):
    items: tuple[Expr, ...]


@_node
class DictExpr(Expr):
    pairs: tuple[tuple[Expr, Expr], ...]


@_node
class GetItem(Expr):
    target: Expr
    key: Expr


@_node
class GetAttr(Expr):
    target: Expr
    name: str


@_node
class Call(Expr):
    function: str
    args: tuple[Expr, ...]
    kwargs: tuple[tuple[str, Expr], ...]


@_node
class Item:
    """One entry of a section: positional (``name`` is None) or ``name=expr``."""

    pos: Pos
    name: str | None
    expr: Expr


@_node
class Section:
    pos: Pos
    name: str
    items: tuple[Item, ...]


@_node
class RuleDecl:
    pos: Pos
    name: str
    sections: tuple[Section, ...]


@_node
class Assign:
    pos: Pos
    name: str
    expr: Expr


@_node
class Include:
    pos: Pos
    expr: Expr


@_node
class ConfigFile:
    pos: Pos
    expr: Expr


Statement = RuleDecl | Assign | Include | ConfigFile

# ---------------------------------------------------------------- parser


@cache
def _grammar_key() -> str:
    """Changes whenever the grammar, the syntax tree classes or the Python version do."""
    grammar = resources.grammar_path("pivotfile.lark").read_text()
    text = f"{grammar}\0{sys.version_info[:2]}\0{AST_FORMAT}"
    return xxhash.xxh3_128_hexdigest(text.encode())[:20]


# Bump when the syntax tree classes change shape, to invalidate cached trees.
AST_FORMAT = 4


def parse(source: Source, cache_dir: Path | None = None) -> tuple[Statement, ...]:
    """The statements of ``source``; syntax errors as PipelineError.

    Parsing costs a few us a token (0.15 s for 1,000 rules), so with
    ``cache_dir`` the file is cut into its top-level statements and each
    statement's syntax tree is kept, keyed by its text: after an edit only
    the statements whose text changed are parsed again (see
    :class:`_StatementCache`).
    """
    text = source.text if source.text.endswith("\n") else source.text + "\n"
    if cache_dir is None:
        return _parse(source, text)
    store = _StatementCache(cache_dir, source.relpath)
    lines = text.split("\n")
    if not store.read():
        # Nothing cached (a first load): the parse itself says where the
        # statements start (scanning the text for them first cost 2.5 % of
        # the load; a test holds both to the same lines).
        starts: list[int] = []
        statements = _parse(source, text, starts)
        first_lines = [1, *(line for line in starts if line > 1)]
        bounds, chunks = _chunks(lines, first_lines)
        found = _by_chunk(statements, first_lines, range(len(chunks)))
        assert found is not None, "every chunk was parsed"
        store.save(chunks, bounds, found)
        return statements
    first_lines = statement_lines(text)
    bounds, chunks = _chunks(lines, first_lines)
    parsed = store.load(source, chunks, first_lines)
    missing = [i for i, statements in enumerate(parsed) if statements is None]
    if missing:
        # Parse only the statements not cached, in place: the other lines are
        # blanked, so lines and columns stay those of the file.
        blanked = [""] * len(lines)
        for i in missing:
            blanked[bounds[i] - 1 : bounds[i + 1] - 1] = lines[bounds[i] - 1 : bounds[i + 1] - 1]
        try:
            fresh = _by_chunk(_parse(source, "\n".join(blanked)), first_lines, missing)
        except PipelineError:
            fresh = None
        if fresh is None:
            return _parse(source, text)  # the error exactly as the whole file gives it
        for i, statements in fresh.items():
            parsed[i] = statements
        store.save(chunks, bounds, fresh)
    return tuple(statement for statements in parsed for statement in statements or ())


def _chunks(lines: list[str], first_lines: list[int]) -> tuple[list[int], list[str]]:
    """Each statement's text (from its first line to the next statement's)
    and the bounds: chunk ``i`` holds lines ``bounds[i]`` to ``bounds[i + 1] - 1``."""
    bounds = [*first_lines, len(lines)]
    return bounds, ["\n".join(lines[a - 1 : b - 1]) for a, b in zip(bounds, bounds[1:])]


def _by_chunk(statements: tuple[Statement, ...], first_lines: list[int],
              parsed: Iterable[int]) -> dict[int, list[Statement]] | None:
    """``statements`` sorted into the chunks ``parsed`` by line; None when one
    falls elsewhere (a split gone wrong)."""
    found: dict[int, list[Statement]] = {i: [] for i in parsed}
    for statement in statements:
        chunk = found.get(bisect_right(first_lines, statement.pos.rel_line) - 1)
        if chunk is None:
            return None
        chunk.append(statement)
    return found


def _parse(source: Source, text: str, starts: list[int] | None = None) -> tuple[Statement, ...]:
    """Parse ``text`` (``source``'s text, or the part of it to parse with the
    other lines blank); positions are in one Origin at line 1, so a node's
    ``rel_line`` is its line in the file.  ``starts``: see :func:`lalr.parse`."""
    try:
        return lalr.parse(text, _ToAst(source), starts)
    except lalr.NotParsed:
        from pivot.frontends.pivotfile_syntax_errors import syntax_error

        raise syntax_error(source, text) from None


# ---------------------------------------------------------------- statements

# What can hide a line start from the statement splitter: strings and
# comments, a backslash continuing the line, and brackets.  The string
# patterns are the grammar's STRING and LONG_STRING terminals with their
# loops unrolled (3x faster in Python's re); a test checks they match the
# same text.
STRING_RE = r"""[rR]?(?:"(?!"")[^"\\\n]*(?:\\.[^"\\\n]*)*"|'(?!'')[^'\\\n]*(?:\\.[^'\\\n]*)*')"""
LONG_STRING_RE = r'''[rR]?(?:"""[^\\]*?(?:\\.[^\\]*?)*?"""|''' + r"""'''[^\\]*?(?:\\.[^\\]*?)*?''')"""
COMMENT_RE = r"#[^\n]*"
_SCAN = re.compile(
    # a run of text that cannot start a statement: other characters, strings,
    # comments, continued lines and lines starting indented or with a comment
    rf"(?:[^\"'#\\\[\](){{}}\n]+|(?s:{LONG_STRING_RE})|{STRING_RE}|{COMMENT_RE}|\\[\t \f]*\r?\n|\n(?![^\s#]))+"
    r"|(?P<open>[\[({])|(?P<close>[\])}])|\n(?P<start>(?=[^\s#]))"
)


def statement_lines(text: str) -> list[int]:
    """Line 1, and the 1-based lines where later top-level statements start:
    lines beginning at the left margin outside brackets and strings.  Each
    statement's text runs to the next one.  Where a split could be wrong the
    text does not parse, and errors always come from a parse of the whole file."""
    first_lines = [1]
    depth = 0
    line, counted = 1, 0
    for match in _SCAN.finditer(text):
        kind = match.lastgroup
        if kind == "open":
            depth += 1
        elif kind == "close":
            depth = max(depth - 1, 0)
        elif kind == "start" and depth == 0:
            offset = match.end()
            line += text.count("\n", counted, offset)
            counted = offset
            first_lines.append(line)
    return first_lines


STATEMENT_CACHE_FILES = 64


class _StatementCache:
    """Syntax trees of one Pivotfile's statements, keyed by their text, in
    ``<cache_dir>/statements/``: one pickle per Pivotfile, written atomically,
    the newest STATEMENT_CACHE_FILES kept.  Each statement's tree is kept
    without its Origin, as plain tuples (:func:`_encode_tree`): read back, it
    gets the Origin of the statement that now has its text, so a statement
    that moved stays cached.  Anything unreadable is a miss."""

    def __init__(self, cache_dir: Path, relpath: str) -> None:
        key = xxhash.xxh3_128_hexdigest(f"{_grammar_key()}\0{relpath}".encode())
        self.path = cache_dir / "statements" / f"{key}.pickle"
        self.trees: dict[str, Any] = {}

    def read(self) -> bool:
        """Read the cache file; whether it holds any tree."""
        try:
            with open(self.path, "rb") as f:
                trees = RestrictedUnpickler(f, ()).load()  # plain data only: no class is resolved
            self.trees = trees if isinstance(trees, dict) else {}
        except Exception:  # absent, or unreadable: parse everything
            self.trees = {}
        return bool(self.trees)

    def load(self, source: Source, chunks: list[str], first_lines: list[int]) -> list[list[Statement] | None]:
        """The cached trees of ``chunks``, the statements of ``source``
        starting at ``first_lines`` (None where not cached)."""
        get = self.trees.get
        return [None if (data := get(text)) is None else self._tree(data, Origin(source, line))
                for text, line in zip(chunks, first_lines)]

    @staticmethod
    def _tree(data: Any, origin: Origin) -> list[Statement] | None:
        try:
            statements = _decode_tree(data, origin)
        except Exception:  # not a tree this version wrote: a miss
            return None
        return statements if all(type(s) in _STATEMENT_CLASSES for s in statements) else None

    def save(self, chunks: list[str], bounds: list[int], fresh: dict[int, list[Statement]]) -> None:
        """Keep the trees of this parse (``fresh``: the statements just
        parsed, by chunk; chunk ``i`` holds lines ``bounds[i]`` to
        ``bounds[i + 1] - 1``); a read-only project only costs speed."""
        trees: dict[str, Any] = {}
        for i, text in enumerate(chunks):
            tree = _encode_tree(fresh[i], bounds[i], bounds[i + 1]) if i in fresh else self.trees.get(text)
            if tree is not None:
                trees[text] = tree
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with atomic.writing(self.path) as f:
                pickler = pickle.Pickler(f, protocol=pickle.HIGHEST_PROTOCOL)
                pickler.fast = True  # no memo: trees share nothing (a third faster, and smaller)
                pickler.dump(trees)
            entries = sorted(self.path.parent.glob("*.pickle"), key=lambda p: p.stat().st_mtime)
            for old in entries[:-STATEMENT_CACHE_FILES]:
                old.unlink(missing_ok=True)
        except (OSError, pickle.PicklingError, RecursionError):
            pass


# The statement cache's form of a tree: a node is ``(tag, rel_line, column,
# *fields)``, a tuple of nodes a list, a pair a 2-list.  Pickling the node
# objects themselves cost ~9,000 instructions a node (the generic
# __reduce_ex__ and a state dict each), 17 % of a first load; tuples, lists
# and strings pickle in C.  Coded by hand, most frequent classes first: a
# generic walk over the fields cost four times as much.
_STATEMENT_CLASSES = frozenset({RuleDecl, Assign, Include, ConfigFile})


class _SpansChunks(Exception):
    """A tree reaching into the next statement's text: not cached."""


def _encode_tree(statements: list[Statement], first: int, end: int) -> list | None:
    """Freshly parsed ``statements`` (positions in the file's lines) in the
    cache's form, lines relative to ``first``; None when a node lies outside
    the chunk's lines ``first`` to ``end - 1``."""
    offset = first - 1

    def enc(n: Any) -> tuple:
        kind = type(n)
        pos = n.pos
        line = pos.rel_line
        if not first <= line < end:
            raise _SpansChunks
        line -= offset
        column = pos.column
        if kind is Literal:
            return (0, line, column, n.value)
        if kind is Item:
            return (7, line, column, n.name, enc(n.expr))
        if kind is Section:
            return (8, line, column, n.name, list(map(enc, n.items)))
        if kind is Var:
            return (1, line, column, n.name)
        if kind is RuleDecl:
            return (9, line, column, n.name, list(map(enc, n.sections)))
        if kind is ListExpr:
            return (2, line, column, list(map(enc, n.items)))
        if kind is GetAttr:
            return (5, line, column, enc(n.target), n.name)
        if kind is GetItem:
            return (4, line, column, enc(n.target), enc(n.key))
        if kind is Call:
            return (6, line, column, n.function, list(map(enc, n.args)), [[k, enc(v)] for k, v in n.kwargs])
        if kind is DictExpr:
            return (3, line, column, [[enc(k), enc(v)] for k, v in n.pairs])
        if kind is Assign:
            return (10, line, column, n.name, enc(n.expr))
        if kind is Include:
            return (11, line, column, enc(n.expr))
        if kind is ConfigFile:
            return (12, line, column, enc(n.expr))
        raise TypeError(f"not a syntax tree node: {kind.__name__}")

    try:
        return list(map(enc, statements))
    except (_SpansChunks, RecursionError):
        return None


def _decode_tree(data: list, origin: Origin) -> list[Statement]:
    """The statements :func:`_encode_tree` encoded, positioned at ``origin``;
    any other data raises."""

    def dec(t: tuple) -> Any:
        tag = t[0]
        pos = Pos(origin, t[1], t[2])
        if tag == 0:
            return Literal(pos, t[3])
        if tag == 7:
            return Item(pos, t[3], dec(t[4]))
        if tag == 8:
            return Section(pos, t[3], tuple(map(dec, t[4])))
        if tag == 1:
            return Var(pos, t[3])
        if tag == 9:
            return RuleDecl(pos, t[3], tuple(map(dec, t[4])))
        if tag == 2:
            return ListExpr(pos, tuple(map(dec, t[3])))
        if tag == 5:
            return GetAttr(pos, dec(t[3]), t[4])
        if tag == 4:
            return GetItem(pos, dec(t[3]), dec(t[4]))
        if tag == 6:
            return Call(pos, t[3], tuple(map(dec, t[4])), tuple((k, dec(v)) for k, v in t[5]))
        if tag == 3:
            return DictExpr(pos, tuple((dec(k), dec(v)) for k, v in t[3]))
        if tag == 10:
            return Assign(pos, t[3], dec(t[4]))
        if tag == 11:
            return Include(pos, dec(t[3]))
        if tag == 12:
            return ConfigFile(pos, dec(t[3]))
        raise ValueError(f"not a node tag: {tag!r}")

    return list(map(dec, data))


# ---------------------------------------------------------------- tree -> AST


def decode_string(token: str) -> str:
    """A string literal's value: quotes removed, escapes decoded (raw strings
    keep backslashes); unknown escapes stay as written, as in Python."""
    raw = token[:1] in "rR"
    body = token[1:] if raw else token
    quote = 3 if body[:3] in ('"""', "'''") else 1
    body = body[quote:-quote]
    if raw or "\\" not in body:
        return body
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char != "\\" or i + 1 == len(body):
            out.append(char)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt == "x" and _is_hex(body[i + 2 : i + 4]):
            out.append(chr(int(body[i + 2 : i + 4], 16)))
            i += 4
        elif nxt == "\n":  # backslash-newline continues the line
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t", "r": "\r", "0": "\0"}


def _is_hex(text: str) -> bool:
    return len(text) == 2 and all(c in "0123456789abcdefABCDEF" for c in text)


class _ToAst:
    """One method per grammar rule (or ``-> alias``), called by the parser
    with the rule's kept children; every node takes its position from a
    token, so no parse tree is needed."""

    def __init__(self, source: Source) -> None:
        self.origin = Origin(source, 1)  # positions are the file's lines

    def _pos(self, token: Token) -> Pos:
        return Pos(self.origin, token.line, token.column)

    def start(self, children) -> tuple[Statement, ...]:
        return tuple(children)

    def configfile(self, children) -> ConfigFile:
        return ConfigFile(children[0].pos, children[0])

    def include(self, children) -> Include:
        return Include(children[0].pos, children[0])

    def assign(self, children) -> Assign:
        name, expr = children
        return Assign(self._pos(name), name.value, expr)

    def rule(self, children) -> RuleDecl:
        name_token, *sections = children
        name = decode_string(name_token.value) if name_token.type == "STRING" else name_token.value
        if not name:
            raise self._pos(name_token).error("a rule name cannot be empty")
        return RuleDecl(self._pos(name_token), name, tuple(sections))

    def section(self, children) -> Section:
        name = children[0]
        if len(children) == 2:  # the usual: one line of items
            items = tuple(children[1])
        else:
            items = tuple(item for item_list in children[1:] for item in item_list)
        return Section(Pos(self.origin, name.line, name.column), name.value, items)

    def item_list(self, children) -> list[Item]:
        return children

    def item(self, children) -> Item:
        expr = children[0]
        return Item(expr.pos, None, expr)

    def named_item(self, children) -> Item:
        name, expr = children
        return Item(self._pos(name), name.value, expr)

    def string(self, children) -> Literal:
        type_, text, line, column = children[0]
        if type_ == "LONG_STRING":  # a block of text: drop its indentation
            import textwrap  # only here: most Pivotfiles have no long string

            value = textwrap.dedent(decode_string(text)).strip("\n").rstrip()
        elif "\\" in text or text[0] in "rR":
            value = decode_string(text)
        else:  # the usual: quoted, nothing to decode (STRING never starts with three quotes)
            value = text[1:-1]
        return Literal(Pos(self.origin, line, column), value)

    def number(self, children) -> Literal:
        text = children[0].value
        value: int | float = float(text) if any(c in text for c in ".eE") else int(text)
        return Literal(self._pos(children[0]), value)

    def var(self, children) -> Var:
        return Var(self._pos(children[0]), children[0].value)

    def list(self, children) -> ListExpr:
        bracket, *items = children
        return ListExpr(self._pos(bracket), tuple(items))

    def dict(self, children) -> DictExpr:
        brace, *pairs = children
        return DictExpr(self._pos(brace), tuple(pairs))

    def pair(self, children) -> tuple[Expr, Expr]:
        return children[0], children[1]

    def getitem(self, children) -> GetItem:
        return GetItem(children[1].pos, children[0], children[1])

    def getattr(self, children) -> GetAttr:
        return GetAttr(self._pos(children[1]), children[0], children[1].value)

    def call(self, children) -> Call:
        name, *rest = children
        arguments = rest[0] if rest else []
        args = tuple(a for a in arguments if isinstance(a, Expr))
        kwargs = tuple(a for a in arguments if isinstance(a, tuple))
        positional_done = False
        for argument in arguments:
            if isinstance(argument, tuple):
                positional_done = True
            elif positional_done:
                raise argument.pos.error("positional argument follows keyword argument")
        return Call(self._pos(name), name.value, args, kwargs)

    def arguments(self, children) -> list[Any]:
        return children

    def argument(self, children) -> Expr:
        return children[0]

    def keyword_argument(self, children) -> tuple[str, Expr]:
        return children[0].value, children[1]
