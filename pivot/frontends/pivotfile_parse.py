"""Parsing a Pivotfile into a syntax tree (no evaluation yet).

The grammar lives in ``grammar/pivotfile.lark``; the LALR tables built from it
are pickled once into the user's cache directory so later loads skip the
grammar analysis.  Every node keeps its position, and every error -- lark's
included -- becomes a :class:`PipelineError` reading ``file:line:col: message``
followed by the source line and a caret.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import sys
import tempfile
import textwrap
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import lark
from lark import Lark, Token, Transformer
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)
from lark.indenter import DedentError, Indenter

from pivot import resources
from pivot.errors import PipelineError

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
class Pos:
    """Where a node starts: file, 1-based line and column."""

    source: Source = field(repr=False)
    line: int
    column: int

    def error(self, message: str) -> PipelineError:
        """``file:line:col: message``, then the source line with a caret."""
        text = self.source.line_text(self.line)
        caret = " " * (max(self.column, 1) - 1) + "^"
        return PipelineError(
            f"{self.source.relpath}:{self.line}:{self.column}: {message}\n    {text}\n    {caret}"
        )


# ---------------------------------------------------------------- syntax tree


@dataclass(frozen=True, eq=False)
class Expr:
    pos: Pos


@dataclass(frozen=True, eq=False)
class Literal(Expr):
    value: str | int | float


@dataclass(frozen=True, eq=False)
class Var(Expr):
    name: str


@dataclass(frozen=True, eq=False)
class ListExpr(Expr):
    items: tuple[Expr, ...]


@dataclass(frozen=True, eq=False)
class DictExpr(Expr):
    pairs: tuple[tuple[Expr, Expr], ...]


@dataclass(frozen=True, eq=False)
class GetItem(Expr):
    target: Expr
    key: Expr


@dataclass(frozen=True, eq=False)
class GetAttr(Expr):
    target: Expr
    name: str


@dataclass(frozen=True, eq=False)
class Call(Expr):
    function: str
    args: tuple[Expr, ...]
    kwargs: tuple[tuple[str, Expr], ...]


@dataclass(frozen=True, eq=False)
class Item:
    """One entry of a section: positional (``name`` is None) or ``name=expr``."""

    pos: Pos
    name: str | None
    expr: Expr


@dataclass(frozen=True, eq=False)
class Section:
    pos: Pos
    name: str
    items: tuple[Item, ...]


@dataclass(frozen=True, eq=False)
class RuleDecl:
    pos: Pos
    name: str
    sections: tuple[Section, ...]


@dataclass(frozen=True, eq=False)
class Assign:
    pos: Pos
    name: str
    expr: Expr


@dataclass(frozen=True, eq=False)
class Include:
    pos: Pos
    expr: Expr


@dataclass(frozen=True, eq=False)
class ConfigFile:
    pos: Pos
    expr: Expr


Statement = RuleDecl | Assign | Include | ConfigFile


# ---------------------------------------------------------------- parser


class PivotfileIndenter(Indenter):
    """Indentation to _INDENT/_DEDENT; newlines inside brackets are dropped."""

    NL_type = "_NL"
    OPEN_PAREN_types = ["LPAR", "LSQB", "LBRACE"]
    CLOSE_PAREN_types = ["RPAR", "RSQB", "RBRACE"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8

    def handle_NL(self, token: Token):
        levels = tuple(self.indent_level)
        try:
            yield from super().handle_NL(token)
        except DedentError:
            indent_str = token.rsplit("\n", 1)[1]
            width = indent_str.count(" ") + indent_str.count("\t") * self.tab_len  # as lark counts
            raise _BadDedent(token.end_line or 1, token.end_column or 1, width, levels) from None


class _BadDedent(Exception):
    """A line indented less than its block but deeper than the block around it."""

    def __init__(self, line: int, column: int, width: int, levels: tuple[int, ...]) -> None:
        super().__init__(line, column, width, levels)
        self.line, self.column, self.width, self.levels = line, column, width, levels

    def error(self, source: Source) -> PipelineError:
        *others, last = [str(level) for level in self.levels]
        allowed = f"{', '.join(others)} or {last}" if others else last
        return Pos(source, self.line, self.column).error(
            f"bad indentation: this line is indented {self.width} columns, but the blocks"
            f" it could belong to are indented {allowed} columns"
        )


@cache
def _grammar_key() -> str:
    """Changes whenever the grammar, lark or the Python version does."""
    grammar = resources.grammar_path("pivotfile.lark").read_text()
    text = f"{grammar}\0{lark.__version__}\0{sys.version_info[:2]}\0{AST_FORMAT}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


# Bump when the syntax tree classes change shape, to invalidate cached trees.
AST_FORMAT = 1


@cache
def _parser(cache_dir: Path | None = None) -> tuple[Lark, "_ToAst"]:
    """The LALR parser, its transformer applied inline (no parse tree is built).

    The tables come from a pickle in ``cache_dir`` (the project's
    ``.pivot/parser/``) when one
    matches this grammar, lark and Python version (lark checks a hash of all
    three); otherwise they are built and the pickle is written to a temporary
    name and renamed into place, so concurrent processes never read half a file.
    """
    grammar = resources.grammar_path("pivotfile.lark").read_text()
    transformer = _ToAst()
    options: dict[str, Any] = dict(
        parser="lalr", postlex=PivotfileIndenter(), transformer=transformer, maybe_placeholders=False
    )
    if cache_dir is None:
        return Lark(grammar, **options), transformer
    cached = cache_dir / f"pivotfile-{_grammar_key()}.lark.pickle"
    if cached.is_file():
        return Lark(grammar, cache=str(cached), **options), transformer
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cached.parent, prefix=".pivotfile-", suffix=".tmp")
        os.close(fd)
        os.unlink(tmp)  # lark writes the cache itself when the file is absent
        parser = Lark(grammar, cache=tmp, **options)
        os.replace(tmp, cached)
    except OSError:  # a read-only project only costs speed
        parser = Lark(grammar, **options)
    return parser, transformer


AST_CACHE_ENTRIES = 64


def parse(source: Source, cache_dir: Path | None = None) -> tuple[Statement, ...]:
    """The statements of ``source``; syntax errors as PipelineError.

    Parsing costs about 50 us a line, so the statements of a file already
    seen (same text, same grammar) are read back from a pickle in
    ``cache_dir`` instead.
    """
    if cache_dir is None:
        return _parse(source, None)
    key = hashlib.sha256(f"{_grammar_key()}\0{source.relpath}\0{source.text}".encode()).hexdigest()[:32]
    cached = cache_dir / "ast" / f"{key}.pickle"
    try:
        with open(cached, "rb") as f:
            return pickle.load(f)
    except Exception:  # absent, or unreadable: parse
        pass
    statements = _parse(source, cache_dir)
    _store(cached, statements)
    return statements


def _store(path: Path, statements: tuple[Statement, ...]) -> None:
    """Write atomically; keep only the newest AST_CACHE_ENTRIES files."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".ast-", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            pickle.dump(statements, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        entries = sorted(path.parent.glob("*.pickle"), key=lambda p: p.stat().st_mtime)
        for old in entries[:-AST_CACHE_ENTRIES]:
            old.unlink(missing_ok=True)
    except (OSError, pickle.PicklingError, RecursionError):
        pass


def _parse(source: Source, cache_dir: Path | None) -> tuple[Statement, ...]:
    text = source.text if source.text.endswith("\n") else source.text + "\n"
    parser, transformer = _parser(cache_dir)
    transformer.source = source  # loading is single-threaded; positions need the file
    try:
        return parser.parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(source, exc) from None
    except _BadDedent as exc:
        raise exc.error(source) from None
    except VisitError as exc:  # lark wraps what the transformer raises
        if isinstance(exc.orig_exc, PipelineError):
            raise exc.orig_exc from None
        raise


# Terminal names as a user would call them in "expected ..." lists.
_TOKEN_NAMES = {
    "NAME": "a name",
    "STRING": "a string",
    "LONG_STRING": "a string",
    "NUMBER": "a number",
    "_NL": "end of line",
    "_INDENT": "an indented block",
    "_DEDENT": "end of block",
    "$END": "end of file",
    "COLON": "':'",
    "COMMA": "','",
    "EQUAL": "'='",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "DOT": "'.'",
    "RULE": "'rule'",
    "INCLUDE": "'include'",
    "CONFIGFILE": "'configfile'",
}


def _describe_token(token: Token) -> str:
    if token.type in ("_NL", "$END", "_INDENT", "_DEDENT"):
        return _TOKEN_NAMES[token.type]
    return repr(str(token))


def _syntax_error(source: Source, exc: UnexpectedInput) -> PipelineError:
    line, column = exc.line, exc.column
    if isinstance(exc, UnexpectedCharacters):
        char = source.text.splitlines()[line - 1][column - 1 : column] if line > 0 else ""
        message = f"unexpected character {char!r}"
        if char in "\"'":
            message = "unterminated string"
    elif isinstance(exc, UnexpectedToken):
        token = exc.token
        if token.type in ("_NL", "_DEDENT", "$END") and (line is None or line < 1):
            line, column = _last_position(source)
        if token.type == "_INDENT":  # it borrows the position of the newline before it
            line, column = token.end_line or line, token.end_column or column
            message = "unexpected indentation"
        elif _is_unindented_section(source, line, column, token):
            name = source.line_text(line)[: column - 1].rstrip()
            return Pos(source, line, 1).error(
                f"'{name}:' is not indented: a section belongs inside a rule, indented under 'rule NAME:'"
                " (at the left margin only 'rule', 'include', 'configfile' and NAME = value may start)"
            )
        elif _follows_colon_line(source, line) and token.type != "_NL":
            return Pos(source, line, column).error(
                f"unexpected {_describe_token(token)} (expected an indented block after ':')"
            )
        else:
            message = f"unexpected {_describe_token(token)}"
        expected = sorted({_TOKEN_NAMES.get(name, name) for name in exc.expected})
        if expected:
            message += f" (expected {', '.join(expected)})"
    elif isinstance(exc, UnexpectedEOF):
        line, column = _last_position(source)
        message = "unexpected end of file"
    else:
        message = str(exc).splitlines()[0]
    if not line or line < 1:
        line, column = _last_position(source)
    return Pos(source, line, column).error(message)


_NAME_AT_LINE_START = re.compile(r"[A-Za-z_][A-Za-z0-9_]*[\t ]*")


def _is_unindented_section(source: Source, line: int, column: int, token: Token) -> bool:
    """``NAME:`` at the left margin: a rule's section that lost its indentation."""
    before = source.line_text(line)[: column - 1]
    return token.type == "COLON" and bool(_NAME_AT_LINE_START.fullmatch(before)) and before.rstrip() != "rule"


def _follows_colon_line(source: Source, line: int) -> bool:
    """Whether the previous code line ends with ':' (a block must follow)."""
    for previous in reversed(source.text.splitlines()[: max(line - 1, 0)]):
        code = previous.split("#", 1)[0].rstrip()
        if code:
            return code.endswith(":")
    return False


def _last_position(source: Source) -> tuple[int, int]:
    lines = source.text.splitlines() or [""]
    return len(lines), len(lines[-1]) + 1


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


class _ToAst(Transformer):
    """One method per grammar rule, applied while parsing; every node takes
    its position from a token, so no parse tree or meta is needed."""

    def __init__(self) -> None:
        super().__init__()
        self.source = Source("", "")

    def _pos(self, token: Token) -> Pos:
        return Pos(self.source, token.line or 1, token.column or 1)

    def start(self, children) -> tuple[Statement, ...]:
        return tuple(children)

    def configfile(self, children) -> ConfigFile:
        return ConfigFile(children[0].pos, children[0])

    def include(self, children) -> Include:
        return Include(children[0].pos, children[0])

    def assign(self, children) -> Assign:
        name, expr = children
        return Assign(self._pos(name), str(name), expr)

    def rule(self, children) -> RuleDecl:
        name_token, *sections = children
        name = decode_string(name_token) if name_token.type == "STRING" else str(name_token)
        if not name:
            raise self._pos(name_token).error("a rule name cannot be empty")
        return RuleDecl(self._pos(name_token), name, tuple(sections))

    def section(self, children) -> Section:
        name, *lists = children
        items = tuple(item for item_list in lists for item in item_list)
        return Section(self._pos(name), str(name), items)

    def item_list(self, children) -> list[Item]:
        return children

    def item(self, children) -> Item:
        return Item(children[0].pos, None, children[0])

    def named_item(self, children) -> Item:
        name, expr = children
        return Item(self._pos(name), str(name), expr)

    def string(self, children) -> Literal:
        token = children[0]
        value = decode_string(token)
        if token.type == "LONG_STRING":  # a block of text: drop its indentation
            value = textwrap.dedent(value).strip("\n").rstrip()
        return Literal(self._pos(token), value)

    def number(self, children) -> Literal:
        text = str(children[0])
        value: int | float = float(text) if any(c in text for c in ".eE") else int(text)
        return Literal(self._pos(children[0]), value)

    def var(self, children) -> Var:
        return Var(self._pos(children[0]), str(children[0]))

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
        return GetAttr(self._pos(children[1]), children[0], str(children[1]))

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
        return Call(self._pos(name), str(name), args, kwargs)

    def arguments(self, children) -> list[Any]:
        return children

    def argument(self, children) -> Expr:
        return children[0]

    def keyword_argument(self, children) -> tuple[str, Expr]:
        return str(children[0]), children[1]
