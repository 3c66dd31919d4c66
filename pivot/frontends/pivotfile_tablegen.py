"""Generating :mod:`pivotfile_tables` from ``grammar/pivotfile.lark``.

The grammar stays the one definition of the Pivotfile language: lark
analyses it, and this module copies what lark computed -- the LALR(1)
table, the contextual lexer's patterns per parser state, and how each rule
shapes its children -- into plain data that :mod:`pivotfile_lalr` runs
without importing lark.  Regenerate after editing the grammar (a test
fails until the file is up to date)::

    python -m pivot.frontends.pivotfile_tablegen
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pivot import resources

TABLES_PATH = Path(__file__).with_name("pivotfile_tables.py")


def grammar_digest(grammar: str) -> str:
    """What the tables record of the grammar they were made from (xxhash: the
    pipeline cache loads it anyway, hashlib would be one more import)."""
    import xxhash

    return xxhash.xxh3_128_hexdigest(grammar.encode())


def build_tables(grammar: str) -> dict[str, Any]:
    """What lark builds from ``grammar``, as plain data, with states
    renumbered in a canonical order (lark's numbering varies with the hash
    seed, and the generated file must not)."""
    from lark.lexer import _regexp_has_newline
    from lark.parsers.lalr_analysis import Shift

    from pivot.frontends.pivotfile_syntax_errors import lark_parser

    lark = lark_parser(grammar)
    table = lark.parser.parser.parser.parse_table
    start = table.start_states["start"]

    # canonical state numbers: breadth first from the start state, symbols sorted
    order, seen = [start], {start}
    for state in order:
        for symbol in sorted(table.states[state]):
            action, arg = table.states[state][symbol]
            if action is Shift and arg not in seen:
                seen.add(arg)
                order.append(arg)
    assert seen == set(table.states), "every state is reachable from the start state"
    number = {state: i for i, state in enumerate(order)}

    rules = lark.rules
    rule_index = {id(rule): i for i, rule in enumerate(rules)}
    actions = []
    for state in order:
        row = {}
        for symbol, (action, arg) in sorted(table.states[state].items()):
            row[str(symbol)] = number[arg] if action is Shift else ~rule_index[id(arg)]
        actions.append(row)

    contextual = lark.parser.lexer.lexer  # behind the post-lexer
    lexer_specs: list[tuple[str, dict[str, dict[str, str]], list[str]]] = []
    state_lexers = []
    for state in order:
        spec = _lexer_spec(contextual.lexers[state])
        if spec not in lexer_specs:
            lexer_specs.append(spec)
        state_lexers.append(lexer_specs.index(spec))
    root_pattern = _lexer_spec(contextual.root_lexer)[0]

    any_lexer = contextual.lexers[start]
    kept_terminals = sorted({symbol.name for rule in rules for symbol in rule.expansion
                             if symbol.is_term and not symbol.filter_out})
    rule_specs = []
    for rule in rules:
        assert not rule.options.keep_all_tokens and not rule.options.template_source
        inline = rule.origin.name.startswith("_")
        expand1 = bool(rule.options.expand1 and not rule.alias)
        assert not (inline and expand1), "an inlined rule never collapses to its child"
        keep = tuple(
            (i, not symbol.is_term and symbol.name.startswith("_"))
            for i, symbol in enumerate(rule.expansion)
            if not (symbol.is_term and symbol.filter_out)
        )
        callback = None if inline else str(rule.alias or rule.origin.name)
        rule_specs.append((str(rule.origin.name), len(rule.expansion), callback, expand1, keep))

    return {
        "GRAMMAR_DIGEST": grammar_digest(grammar),
        "START_STATE": 0,
        "END_STATE": number[table.end_states["start"]],
        "IGNORE_TYPES": sorted(any_lexer.ignore_types),
        # lark counts lines only in these (its own test of each pattern)
        "NEWLINE_TYPES": sorted(t.name for t in lark.terminals if _regexp_has_newline(t.pattern.to_regexp())),
        "KEPT_TERMINALS": kept_terminals,
        "ROOT_PATTERN": root_pattern,
        "LEXERS": lexer_specs,
        "STATE_LEXERS": state_lexers,
        "ACTIONS": actions,
        "RULES": rule_specs,
    }


def _lexer_spec(lexer: Any) -> tuple[str, dict[str, dict[str, str]], list[str]]:
    """One of lark's basic lexers: its alternation, its keywords (a string
    terminal that a pattern such as NAME also matches is lexed by the
    pattern, then renamed) and every terminal it can produce."""
    from lark.lexer import PatternStr

    assert not lexer.user_callbacks and not lexer.g_regex_flags and not lexer.use_bytes
    patterns = [mre.pattern for mre in lexer.scanner._mres]  # builds lexer.callback too
    assert len(patterns) == 1, "one alternation per lexer (under Python's group limit)"
    assert not lexer.ignore_types & set(lexer.callback), "ignored terminals are never renamed"
    keywords = {}
    for regex_type, callback in sorted(lexer.callback.items()):
        terminals = callback.scanner.terminals
        assert all(isinstance(t.pattern, PatternStr) and not t.pattern.flags for t in terminals)
        keywords[str(regex_type)] = {str(t.pattern.value): str(t.name) for t in terminals}
    return patterns[0], keywords, sorted(str(t.name) for t in lexer.terminals)


def render(grammar: str) -> str:
    """The text of ``pivotfile_tables.py`` for ``grammar``."""
    tables = build_tables(grammar)
    lines = [
        '"""LALR(1) tables of grammar/pivotfile.lark, generated by',
        "``python -m pivot.frontends.pivotfile_tablegen``; do not edit (see pivotfile_tablegen)."
        '"""',
        "",
        "# fmt: off",
    ]
    for name, value in tables.items():
        if isinstance(value, list) and value and not isinstance(value[0], (int, str)):
            lines += [f"{name} = [", *(f"    {item!r}," for item in value), "]"]  # an entry a line
        else:
            lines.append(f"{name} = {value!r}")
    return "\n".join(lines) + "\n"


def main() -> None:
    grammar = resources.grammar_path("pivotfile.lark").read_text()
    TABLES_PATH.write_text(render(grammar))
    print(f"wrote {TABLES_PATH}", file=sys.stderr)


if __name__ == "__main__":
    main()
