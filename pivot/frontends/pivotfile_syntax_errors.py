"""Why a Pivotfile does not parse, as ``file:line:col: message``.

Only reached when :mod:`pivotfile_lalr` rejects a text: lark parses the
same text with the same grammar (``grammar/pivotfile.lark``), stops at the
same token, and its exception -- what it found, what it expected -- becomes
a :class:`PipelineError` with the source line and a caret.  lark is
imported here and nowhere on the way of a Pivotfile that parses.
"""

from __future__ import annotations

import re
from functools import cache

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.indenter import DedentError, Indenter

from pivot import resources
from pivot.errors import PipelineError
from pivot.frontends import pivotfile_lalr as lalr
from pivot.frontends.pivotfile_parse import Pos, Source


class PivotfileIndenter(Indenter):
    """Indentation to _INDENT/_DEDENT; newlines inside brackets are dropped."""

    NL_type = lalr.NL_TYPE
    OPEN_PAREN_types = list(lalr.OPEN_PAREN_TYPES)
    CLOSE_PAREN_types = list(lalr.CLOSE_PAREN_TYPES)
    INDENT_type = lalr.INDENT_TYPE
    DEDENT_type = lalr.DEDENT_TYPE
    tab_len = lalr.TAB_LEN

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


def lark_parser(grammar: str) -> Lark:
    """lark's LALR parser of ``grammar``, with the contextual lexer and the
    indenter: what :mod:`pivotfile_tablegen` copies, and what reports errors."""
    return Lark(grammar, parser="lalr", lexer="contextual", postlex=PivotfileIndenter(), maybe_placeholders=False)


@cache
def _parser() -> Lark:
    return lark_parser(resources.grammar_path("pivotfile.lark").read_text())


def syntax_error(source: Source, text: str) -> PipelineError:
    """The error lark finds in ``text`` (``source``'s text, or the part of it
    being parsed with the other lines blank: positions are the file's)."""
    try:
        _parser().parse(text)
    except UnexpectedInput as exc:
        return _describe(source, exc)
    except _BadDedent as exc:
        return exc.error(source)
    raise AssertionError(f"{source.relpath}: lark parses what pivotfile_lalr rejected")


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


def _describe(source: Source, exc: UnexpectedInput) -> PipelineError:
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
