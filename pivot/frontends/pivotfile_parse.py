"""Parsing a Pivotfile into a syntax tree (no evaluation yet).

The grammar lives in ``grammar/pivotfile.lark``; the LALR tables built from it
are pickled once into the project's ``.pivot/parser/`` so later loads skip the
grammar analysis, and so is each top-level statement's syntax tree, so that
after an edit only the changed statements are parsed again.  Every node keeps
its position, and every error -- lark's included -- becomes a
:class:`PipelineError` reading ``file:line:col: message`` followed by the
source line and a caret.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import re
import sys
import textwrap
from bisect import bisect_right
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

from pivot import atomic, resources
from pivot.errors import PipelineError
from pivot.frontends.safepickle import RestrictedUnpickler, classes_of

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


@dataclass(frozen=True, eq=False)
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

# What a cached syntax tree may name when unpickled (see _StatementCache).
_AST_CLASSES = classes_of(
    __name__, "Pos", "Literal", "Var", "ListExpr", "DictExpr", "GetItem", "GetAttr", "Call",
    "Item", "Section", "RuleDecl", "Assign", "Include", "ConfigFile",
)


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
        return Pos.at(source, self.line, self.column).error(
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
AST_FORMAT = 3


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
    if cached.is_file() and _plain_data_pickles(cached):
        return Lark(grammar, cache=str(cached), **options), transformer
    try:  # absent, or not lark's plain tables (never unpickled): built and replaced
        cached.parent.mkdir(parents=True, exist_ok=True)
        with atomic.replacing(cached) as tmp:  # lark writes the cache itself when the file is absent
            parser = Lark(grammar, cache=str(tmp), **options)
    except OSError:  # a read-only project only costs speed
        parser = Lark(grammar, **options)
    return parser, transformer


def _plain_data_pickles(path: Path) -> bool:
    """Whether lark's table cache at ``path`` (a hash line, then two
    pickles) holds plain data only.  lark unpickles it itself, and a
    ``.pivot/`` shipped with a checkout could hold anything, so it is first
    read once with an unpickler that resolves no class at all."""
    try:
        with open(path, "rb") as handle:
            handle.readline()
            for _ in ("the files lark read", "the tables"):
                RestrictedUnpickler(handle, ()).load()
    except Exception:  # refused, damaged or unreadable: build the tables instead
        return False
    return True


def parse(source: Source, cache_dir: Path | None = None) -> tuple[Statement, ...]:
    """The statements of ``source``; syntax errors as PipelineError.

    Parsing costs ~7 us a token, so with ``cache_dir`` the file is cut into
    its top-level statements and each statement's syntax tree is kept, keyed
    by its text: after an edit only the statements whose text changed are
    parsed again (see :class:`_StatementCache`).
    """
    text = source.text if source.text.endswith("\n") else source.text + "\n"
    if cache_dir is None:
        return _parse(source, text, [1], None)
    lines = text.split("\n")
    first_lines = statement_lines(text)
    bounds = [*first_lines, len(lines)]
    chunks = ["\n".join(lines[a - 1 : b - 1]) for a, b in zip(bounds, bounds[1:])]
    origins = [Origin(source, line) for line in first_lines]
    store = _StatementCache(cache_dir, source.relpath)
    parsed = store.load(chunks, origins)
    missing = [i for i, statements in enumerate(parsed) if statements is None]
    if missing:
        # Parse only the statements not cached, in place: the other lines are
        # blanked, so lines and columns stay those of the file.
        blanked = [""] * len(lines)
        for i in missing:
            blanked[bounds[i] - 1 : bounds[i + 1] - 1] = lines[bounds[i] - 1 : bounds[i + 1] - 1]
        try:
            fresh = _parse(source, "\n".join(blanked), [origins[i] for i in missing], cache_dir)
        except PipelineError:
            return _parse(source, text, [1], cache_dir)  # the error exactly as the whole file gives it
        for i in missing:
            parsed[i] = []
        index = {id(origins[i]): i for i in missing}
        for statement in fresh:
            parsed[index[id(statement.pos.origin)]].append(statement)
        store.save(chunks, origins, parsed, set(missing))
    return tuple(statement for statements in parsed for statement in statements or ())


def _parse(source: Source, text: str, anchors: list[int] | list[Origin], cache_dir: Path | None) -> tuple[Statement, ...]:
    """Parse ``text`` (``source``'s text, or the part of it to parse with the
    other lines blank); positions are relative to ``anchors``, the statements
    starting at those lines (or Origins), sorted."""
    parser, transformer = _parser(cache_dir)
    transformer.anchor(source, anchors)  # loading is single-threaded
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
    the newest STATEMENT_CACHE_FILES kept.  Each statement's tree is pickled
    on its own, without its Origin: read back, it gets the Origin of the
    statement that now has its text, so a statement that moved stays cached,
    and after an edit only the new statements are pickled.  Anything
    unreadable is a miss."""

    def __init__(self, cache_dir: Path, relpath: str) -> None:
        key = hashlib.sha256(f"{_grammar_key()}\0{relpath}".encode()).hexdigest()[:32]
        self.path = cache_dir / "statements" / f"{key}.pickle"
        self.blobs: dict[str, bytes] = {}

    def load(self, chunks: list[str], origins: list[Origin]) -> list[list[Statement] | None]:
        """The cached trees of ``chunks`` (None where not cached)."""
        try:
            with open(self.path, "rb") as f:
                blobs = RestrictedUnpickler(f, ()).load()  # str -> bytes only
            self.blobs = blobs if isinstance(blobs, dict) else {}
        except Exception:  # absent, or unreadable: parse everything
            self.blobs = {}
        return [self._tree(self.blobs.get(text), origin) for text, origin in zip(chunks, origins)]

    @staticmethod
    def _tree(blob: bytes | None, origin: Origin) -> list[Statement] | None:
        if blob is None:
            return None
        unpickler = _TreeUnpickler(io.BytesIO(blob), origin)
        try:
            return unpickler.load()
        except Exception:
            return None

    def save(self, chunks: list[str], origins: list[Origin], parsed: list[list[Statement] | None],
             fresh: set[int]) -> None:
        """Keep the trees of this parse (``fresh``: the indexes just parsed);
        a read-only project only costs speed."""
        blobs: dict[str, bytes] = {}
        for i, (text, origin, statements) in enumerate(zip(chunks, origins, parsed)):
            blob = self._blob(origin, statements) if i in fresh else self.blobs.get(text)
            if blob is not None:
                blobs[text] = blob
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with atomic.writing(self.path) as f:
                pickle.dump(blobs, f, protocol=pickle.HIGHEST_PROTOCOL)
            entries = sorted(self.path.parent.glob("*.pickle"), key=lambda p: p.stat().st_mtime)
            for old in entries[:-STATEMENT_CACHE_FILES]:
                old.unlink(missing_ok=True)
        except OSError:
            pass

    @staticmethod
    def _blob(origin: Origin, statements: list[Statement] | None) -> bytes | None:
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)

        # The Origin is left out: it is pickled as a call of the placeholder
        # below, which the reader answers with the statement's new Origin.
        # (A ``persistent_id`` hook would do the same, but pickle calls that
        # Python function for every object of every tree; a dispatch table
        # is consulted only for the one class.)
        def reduce_origin(obj: Origin) -> tuple:
            if obj is not origin:  # a tree reaching into the next statement's text
                raise pickle.PicklingError("a statement spans two chunks")
            return _statement_origin, ()

        pickler.dispatch_table = {Origin: reduce_origin}
        try:
            pickler.dump(statements)
        except (pickle.PicklingError, RecursionError):
            return None
        return buffer.getvalue()


def _statement_origin() -> Origin:
    """Stands for a cached statement's Origin in its pickle; never called
    (:class:`_TreeUnpickler` resolves the name to the new Origin)."""
    raise AssertionError("resolved by _TreeUnpickler")


class _TreeUnpickler(RestrictedUnpickler):
    """Reads one cached statement: the syntax tree classes only, and the
    Origin placeholder bound to ``origin``."""

    def __init__(self, file: io.BytesIO, origin: Origin) -> None:
        super().__init__(file, _AST_CLASSES)
        self.origin = origin

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == (__name__, "_statement_origin"):
            origin = self.origin
            return lambda: origin
        return super().find_class(module, name)


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
            return Pos.at(source, line, 1).error(
                f"'{name}:' is not indented: a section belongs inside a rule, indented under 'rule NAME:'"
                " (at the left margin only 'rule', 'include', 'configfile' and NAME = value may start)"
            )
        elif _follows_colon_line(source, line) and token.type != "_NL":
            return Pos.at(source, line, column).error(
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
    return Pos.at(source, line, column).error(message)


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
        self.anchor(Source("", ""), [1])

    def anchor(self, source: Source, anchors: list[int] | list[Origin]) -> None:
        """Positions from now on: in ``source``, relative to the statement
        (of ``anchors``: first lines or Origins, sorted) at or above them."""
        self.source = source
        self.origins = [a if isinstance(a, Origin) else Origin(source, a) for a in anchors]
        self.first_lines = [origin.first_line for origin in self.origins]

    def _pos(self, token: Token) -> Pos:
        line = token.line or 1
        origin = self.origins[max(bisect_right(self.first_lines, line) - 1, 0)]
        return Pos(origin, line - origin.first_line + 1, token.column or 1)

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
