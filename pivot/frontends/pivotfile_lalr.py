"""The Pivotfile parser proper: lexer, indenter and LALR(1) driver in one loop.

It runs the tables lark computes from ``grammar/pivotfile.lark`` (copied
into :mod:`pivotfile_tables` by :mod:`pivotfile_tablegen`) exactly as lark
would run them -- the contextual lexer's patterns for the current parser
state, lark's ``Indenter`` rules, its child filtering and ``?rule``
collapsing -- but without lark's per-token objects and generators: about
2.5 times faster than lark's loop, and lark is not imported at all.  It only recognises;
when the text is not in the language it raises :class:`NotParsed` and lark
itself is asked why (:mod:`pivotfile_syntax_errors`), so every error
message is lark's.
"""

from __future__ import annotations

import re
from functools import cache, partial
from types import ModuleType, SimpleNamespace
from typing import Any, Callable, NamedTuple

from pivot import resources

# The indentation rules (lark's Indenter; pivotfile_syntax_errors configures
# lark's own with the same names).
NL_TYPE = "_NL"
INDENT_TYPE = "_INDENT"
DEDENT_TYPE = "_DEDENT"
OPEN_PAREN_TYPES = ("LPAR", "LSQB", "LBRACE")
CLOSE_PAREN_TYPES = ("RPAR", "RSQB", "RBRACE")
TAB_LEN = 8


class Token(NamedTuple):
    """A terminal a rule keeps (names, strings, numbers, brackets)."""

    type: str
    value: str
    line: int  # 1-based, where the token starts
    column: int


class NotParsed(Exception):
    """The text is not a Pivotfile; lark's parse of it says where and why."""


@cache
def tables() -> ModuleType | SimpleNamespace:
    """The generated tables when they were made from the grammar file as it
    is; otherwise (the grammar edited, not yet regenerated) the same tables
    built from it now, with lark."""
    from pivot.frontends import pivotfile_tables
    from pivot.frontends.pivotfile_tablegen import build_tables, grammar_digest  # lark only when building

    grammar = resources.grammar_path("pivotfile.lark").read_text()
    if pivotfile_tables.GRAMMAR_DIGEST == grammar_digest(grammar):
        return pivotfile_tables
    return SimpleNamespace(**build_tables(grammar))


# What a terminal asks of the parser loop besides driving the table (bits).
_PLAIN = 0  # dropped from the tree, on one line, no bracket: nothing
_KEPT = 1  # a token the tree keeps
_HAS_NEWLINES = 2  # may span lines (lark's own test of its pattern): lines are counted
_SKIPPED = 4  # an %ignore terminal
_NEWLINE = 8  # the newline the indentation rules act on
_OPENS = 16
_CLOSES = 32


class _Lexers:
    """Which terminal comes next, as lark's contextual lexer decides it.

    lark lexes with the alternation of the terminals the parser state
    accepts (sorted the same way in every state).  One alternation of all
    terminals finds the same terminal whenever the terminal it finds is
    accepted: an earlier alternative that matched would have been found
    first.  Only otherwise (nearly always a syntax error) is the state's own
    alternation compiled and tried.

    That alternation also takes the blanks after a token (see
    :func:`blank_run`): a fifth of a Pivotfile's tokens are blanks the
    parser would only skip."""

    def __init__(self, t: ModuleType | SimpleNamespace) -> None:
        root = unroll_escape_loops(t.ROOT_PATTERN)
        blank = blank_run(t)
        self.root = re.compile(f"(?:{root}){blank}*" if blank else root).match
        self.specs = t.LEXERS
        self.state_specs = [(frozenset(t.LEXERS[i][2]), t.LEXERS[i][1], i) for i in t.STATE_LEXERS]
        self.compiled: dict[int, Callable[[str, int], re.Match[str] | None]] = {}
        kinds = {}
        for terminals in (spec[2] for spec in t.LEXERS):
            for name in terminals:
                kinds[name] = (
                    (_KEPT if name in t.KEPT_TERMINALS else 0)
                    | (_HAS_NEWLINES if name in t.NEWLINE_TYPES else 0)
                    | (_SKIPPED if name in t.IGNORE_TYPES else 0)
                    | (_NEWLINE if name == NL_TYPE else 0)
                    | (_OPENS if name in OPEN_PAREN_TYPES else 0)
                    | (_CLOSES if name in CLOSE_PAREN_TYPES else 0)
                )
        self.kinds = kinds

    def own(self, index: int) -> Callable[[str, int], re.Match[str] | None]:
        if index not in self.compiled:
            self.compiled[index] = re.compile(unroll_escape_loops(self.specs[index][0])).match
        return self.compiled[index]


def blank_run(t: ModuleType | SimpleNamespace) -> str | None:
    """The character class of an ignored terminal that is a run of blanks
    (the grammar's ``%ignore /[\\t \\f]+/``).  No other terminal starts with
    one of its characters (a test holds the grammar to that), so after any
    token a run of them is exactly the ignored token the lexer would find
    next, and the token's match may take it along.  None when the tables
    have no such terminal."""
    for name in t.IGNORE_TYPES:
        found = re.search(rf"\(\?P<{re.escape(name)}>(\[[^\]\\^\n\r-]+\])\+\)", t.ROOT_PATTERN)
        if found is not None:
            return found.group(1)
    return None


# A string's body in the grammar, ``([^"\\\n]|\\.)*``: "a character that is
# neither a backslash nor ..., or an escape".  Python's re runs that group
# and its alternation once per character of every string; the unrolled
# ``[^"\\\n]*(?:\\.[^"\\\n]*)*`` reads the same characters the same one way
# (the class never matches a backslash, the escape always starts with one),
# so it matches the same text, lazily as greedily, at a third of the cost of
# lexing.  Tests compare the rewritten lexers with lark's.
_ESCAPE_LOOP = re.compile(r"(?<!\\)\((\[\^[^\]]*\\\\[^\]]*\])\|\\\\\.\)\*(\?)?")


def unroll_escape_loops(pattern: str) -> str:
    """``pattern`` with every ``([^...\\...]|\\.)*`` (or ``*?``) unrolled."""

    def unrolled(match: re.Match[str]) -> str:
        chars, lazy = match.group(1), match.group(2) or ""
        return f"(?:{chars}*{lazy}(?:\\\\.{chars}*{lazy})*{lazy})"

    return _ESCAPE_LOOP.sub(unrolled, pattern)


@cache
def _lexers() -> _Lexers:
    return _Lexers(tables())


def parse(text: str, handler: object, starts: list[int] | None = None) -> Any:
    """Parse ``text``; each rule's kept children go to the ``handler``
    method named after the rule (or its ``-> alias``), and what that returns
    is the rule's value.  Raises NotParsed when the text is not in the
    language; the handler's own exceptions pass through.  ``starts`` (when
    given) receives the lines after line 1 where a top-level statement
    starts: a line beginning at the left margin, outside brackets, strings
    and continued lines (as ``pivotfile_parse.statement_lines`` finds them)."""
    t = tables()
    lexers = _lexers()
    root_match, state_specs, kinds = lexers.root, lexers.state_specs, lexers.kinds
    actions: list[dict[str, int]] = t.ACTIONS
    new_token = partial(tuple.__new__, Token)  # Token(...) without its Python __new__
    reducers = _reducers(t.RULES, handler)
    stack = [t.START_STATE]
    values: list[Any] = []

    def shift(type_: str, value: Any) -> None:
        """Shift one token, after the reductions it calls for."""
        while True:
            action = actions[stack[-1]].get(type_)
            if action is None:
                raise NotParsed
            if action >= 0:
                stack.append(action)
                values.append(value)
                return
            origin, size, reduce = reducers[~action]
            if size == 1:  # most reductions: nothing to slice
                del stack[-1]
                if reduce is not None:
                    values[-1] = reduce(values[-1:])
            else:
                children = values[len(values) - size :]
                del values[len(values) - size :]
                del stack[len(stack) - size :]
                values.append(reduce(children))
            stack.append(actions[stack[-1]][origin])

    pos, end = 0, len(text)
    line, line_start = 1, 0
    parens = 0
    levels = [0]
    while pos < end:
        m = root_match(text, pos)
        type_ = group = m and m.lastgroup  # the token is its group: the match may hold blanks after it
        types, keywords, own = state_specs[stack[-1]]
        if type_ in keywords:
            type_ = keywords[type_].get(m.group(group), type_)
        if type_ not in types:
            m = lexers.own(own)(text, pos)
            if m is None:
                raise NotParsed
            type_ = group = m.lastgroup
            if type_ in keywords:
                type_ = keywords[type_].get(m.group(group), type_)
        start, pos = pos, m.end()
        kind = kinds[type_]
        if kind == _PLAIN:  # most tokens: one line, no brackets, not kept
            value = None
        elif kind == _KEPT:
            value = new_token((type_, m.group(group), line, start - line_start + 1))
        else:
            token_line, column = line, start - line_start + 1
            if kind & _HAS_NEWLINES:
                newlines = text.count("\n", start, pos)
                if newlines:
                    line += newlines
                    line_start = text.rfind("\n", start, pos) + 1
            if kind & _SKIPPED:
                continue
            if kind & _NEWLINE:
                if parens:  # inside brackets a newline is only space
                    continue
                shift(NL_TYPE, None)
                nl = m.group(group)
                indent_text = nl.rpartition("\n")[2]
                indent = indent_text.count(" ") + indent_text.count("\t") * TAB_LEN
                if indent > levels[-1]:
                    levels.append(indent)
                    shift(INDENT_TYPE, None)
                else:
                    while indent < levels[-1]:
                        levels.pop()
                        shift(DEDENT_TYPE, None)
                    if indent != levels[-1]:
                        raise NotParsed  # dedented to no enclosing block
                    nl_end = start + len(nl)
                    if not indent and starts is not None and nl_end < end and not text[nl_end].isspace():
                        starts.append(line)
                continue
            value = new_token((type_, m.group(group), token_line, column)) if kind & _KEPT else None
            if kind & _OPENS:
                parens += 1
            elif kind & _CLOSES:
                parens -= 1
        while True:  # shift() inlined: this runs for every token
            action = actions[stack[-1]].get(type_)
            if action is None:
                raise NotParsed
            if action >= 0:
                stack.append(action)
                values.append(value)
                break
            origin, size, reduce = reducers[~action]
            if size == 1:
                if reduce is not None:
                    values[-1] = reduce(values[-1:])
                stack[-1] = actions[stack[-2]][origin]
            else:
                children = values[len(values) - size :]
                del values[len(values) - size :]
                del stack[len(stack) - size :]
                values.append(reduce(children))
                stack.append(actions[stack[-1]][origin])
    for _ in levels[1:]:
        shift(DEDENT_TYPE, None)
    return _finish(actions, reducers, stack, values, t.END_STATE)


def _finish(actions: list[dict[str, int]], reducers: list, stack: list[int], values: list[Any], end_state: int) -> Any:
    """The reductions at the end of the input, up to the start rule's value."""
    while True:
        action = actions[stack[-1]].get("$END")
        if action is None or action >= 0:
            raise NotParsed
        origin, size, reduce = reducers[~action]
        children = values[len(values) - size :]
        del values[len(values) - size :]
        del stack[len(stack) - size :]
        values.append(children[0] if reduce is None else reduce(children))
        stack.append(actions[stack[-1]][origin])
        if stack[-1] == end_state:
            return values[-1]


def _reducers(rules: list[tuple], handler: object) -> list[tuple[str, int, Callable[[list], Any]]]:
    """Per rule: the symbol it reduces to, its length, and the function
    from its children to its value (lark's ChildFilter, ExpandSingleChild
    and callback, in that order)."""
    return [(origin, size, _reducer(size, callback, expand1, keep, handler))
            for origin, size, callback, expand1, keep in rules]


def _reducer(size: int, callback: str | None, expand1: bool, keep: tuple, handler: object) -> Callable[[list], Any] | None:
    """None for a rule whose value is its only child."""
    spliced = [i for i, expand in keep if expand]
    shape: Callable[[list], list] | None
    if len(keep) == size and not spliced:
        shape = None  # every child kept as it is
    elif not keep:
        shape = lambda children: []  # noqa: E731
    else:
        (first, first_spliced), rest = keep[0], keep[1:]

        def shape(children: list) -> list:
            # an inlined _rule's children take its place; ``x+`` is
            # left-recursive, so its list grows in place, as lark does it
            out = children[first] if first_spliced else [children[first]]
            for i, expand in rest:
                if expand:
                    out.extend(children[i])
                else:
                    out.append(children[i])
            return out

    if callback is None:  # an inlined rule: its value is its children
        return shape or list
    if expand1 and keep == ((0, False),) and size == 1:  # ``?rule: child``: the child itself
        return None
    if expand1 and len(keep) == 1 and not spliced:  # ``?rule`` of one kept child: that child
        only = keep[0][0]
        return lambda children: children[only]
    method = getattr(handler, callback)
    if expand1:
        def collapse(children: list) -> Any:
            if shape is not None:
                children = shape(children)
            return children[0] if len(children) == 1 else method(children)
        return collapse
    if shape is None:
        return method
    return lambda children: method(shape(children))
