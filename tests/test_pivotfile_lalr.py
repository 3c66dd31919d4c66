"""The parser runs lark's tables without lark: it must be lark, exactly.

The tables are generated from ``grammar/pivotfile.lark`` and must be up to
date; on any text the parser must accept what lark accepts, reject what it
rejects, and shape the same tree (children kept, inlined and collapsed as
lark's tree builder does, same token positions)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput

from pivot import resources
from pivot.frontends import pivotfile_lalr as lalr
from pivot.frontends import pivotfile_tablegen as tablegen
from pivot.frontends import pivotfile_tables
from pivot.frontends.pivotfile_syntax_errors import lark_parser
from tests.test_pivotfile_statements import PROGRAM

REPO = Path(__file__).resolve().parent.parent

EVERY_CONSTRUCT = '''\
configfile: "params.yaml"
include: 'sub/Pivotfile'
SAMPLES = ["a", 'b', r"c\\d",]
EMPTY = []
NOTHING = {}
TABLE = {"k": 1, 2: [1.5, -3e2, .5], "n": {"x": config["a"].b[0]}}
LONG = """
    text over
    lines
"""
X = \\
    2
rule all:
    input: expand("out/{s}.txt", s=SAMPLES, zip=zip), TABLE["k"]
rule "build@0.5":
\tinput: "x"
\tshell: "true"
rule make:  # sections named like keywords
    include: "i"
    rule: "r"
    configfile: "c"
    input:
        "in/{s}.csv",
        data=f(
            "a",
            b=[1,
               2],
        )
    output: directory("out/{s}"), metric("m.json")
    params: "train.lr"
    shell:
        "echo one"
        """
        echo two
        """

# trailing comment'''


def _lark_shape(node: object) -> object:
    if isinstance(node, Tree):
        return (str(node.data), [_lark_shape(child) for child in node.children])
    assert isinstance(node, Token)
    return (node.type, str(node), node.line, node.column)


def _our_shape(node: object) -> object:
    if isinstance(node, tuple) and len(node) == 2 and isinstance(node[1], list):
        return node
    assert isinstance(node, lalr.Token), node
    return (node.type, node.value, node.line, node.column)


class _Trees:
    """Builds lark's tree shape from the parser's reductions."""

    def __getattr__(self, rule: str):
        return lambda children: (rule, [_our_shape(child) for child in children])


@cache
def _lark() -> Lark:
    return lark_parser(resources.grammar_path("pivotfile.lark").read_text())


def _by_lark(text: str) -> object:
    try:
        return _lark_shape(_lark().parse(text))
    except UnexpectedInput:
        return "rejected"
    except Exception as exc:  # the indenter's own error
        if type(exc).__name__ != "_BadDedent":
            raise
        return "rejected"


def _by_us(text: str) -> object:
    try:
        return _our_shape(lalr.parse(text, _Trees()))
    except lalr.NotParsed:
        return "rejected"


CORPUS = {
    "every-construct": EVERY_CONSTRUCT + "\n",
    "statements-program": PROGRAM,
    "example": (REPO / "examples/pivotfile/Pivotfile").read_text(),
    "empty": "\n",
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_same_trees_as_lark(name: str) -> None:
    expected = _by_lark(CORPUS[name])
    assert expected != "rejected", "the corpus is valid"
    assert _by_us(CORPUS[name]) == expected


def _mutations(text: str, rng: random.Random, count: int) -> list[str]:
    pieces = ['"', "'", '"""', "(", ")", "[", "]", "{", "}", ":", ",", "=", ".", "\n", " ", "    ", "\t",
              "#", "\\", "\\\n", "rule ", "include", "x", "1", "-", ".5", "\r\n"]
    lines = text.splitlines(keepends=True)
    out = []
    for _ in range(count):
        kind = rng.random()
        if kind < 0.5:
            at = rng.randrange(len(text) + 1)
            mutated = text[:at] + rng.choice(pieces) + text[at:]
        elif kind < 0.75:
            at = rng.randrange(len(text))
            mutated = text[:at] + text[at + rng.randint(1, 3):]
        else:
            edited = list(lines)
            i = rng.randrange(len(edited))
            choice = rng.random()
            if choice < 0.4:
                edited.insert(i, edited[rng.randrange(len(edited))])
            elif choice < 0.7:
                edited[i] = rng.choice(["  ", "    ", "\t", "        "]) + edited[i].lstrip(" \t")
            else:
                del edited[i]
            mutated = "".join(edited)
        out.append(mutated if mutated.endswith("\n") else mutated + "\n")
    return out


# each text's mutations in two halves: cases the test workers share
@pytest.mark.parametrize("name, half", [(name, half) for name in sorted(CORPUS) for half in (0, 1)])
@pytest.mark.slow
def test_accepts_rejects_and_shapes_as_lark_on_mutated_texts(name, half) -> None:
    rng = random.Random(f"16-{name}-{half}")
    accepted = rejected = 0
    for text in _mutations(CORPUS[name], rng, 200):
        expected = _by_lark(text)
        assert _by_us(text) == expected, f"{name}, mutated:\n{text}"
        if expected == "rejected":
            rejected += 1
        else:
            accepted += 1
    assert accepted > 10 and rejected > 10, "both kinds of text were tried"


def test_the_parser_finds_the_statements_the_splitter_finds() -> None:
    """A first load cuts the file where the parse says statements start; later
    loads where statement_lines says: on every text that parses, the same lines."""
    from pivot.frontends.pivotfile_parse import statement_lines

    rng = random.Random(23)
    texts = list(CORPUS.values()) + [text for name in sorted(CORPUS) for text in _mutations(CORPUS[name], rng, 200)]
    tried = 0
    for text in texts:
        starts: list[int] = []
        try:
            lalr.parse(text, _Trees(), starts)
        except lalr.NotParsed:
            continue
        tried += 1
        assert [1, *starts] == statement_lines(text), text
    assert tried > 200


def test_tables_are_generated_from_the_grammar_as_it_is() -> None:
    grammar = resources.grammar_path("pivotfile.lark").read_text()
    assert tablegen.render(grammar) == tablegen.TABLES_PATH.read_text(), (
        "grammar/pivotfile.lark changed: run `python -m pivot.frontends.pivotfile_tablegen`"
    )


@pytest.mark.slow  # two processes each building the tables with lark
def test_generated_tables_do_not_depend_on_the_hash_seed() -> None:
    code = "from pivot import resources; from pivot.frontends import pivotfile_tablegen as g\n" \
           "print(g.render(resources.grammar_path('pivotfile.lark').read_text()))"
    outputs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1


def test_unrolled_lexers_match_what_the_grammar_s_lexers_match() -> None:
    """The lexers run with their string loops unrolled: same terminal, same text."""
    import re

    patterns = [pivotfile_tables.ROOT_PATTERN, *(spec[0] for spec in pivotfile_tables.LEXERS)]
    assert lalr.unroll_escape_loops(patterns[0]) != patterns[0], "the string loops are found"
    rng = random.Random(5)
    alphabet = "\"'\\\nar x#:,=[]{}()1.-e\t"
    cases = [EVERY_CONSTRUCT, PROGRAM, '"a\\"b" x', "'''a\\'''b'''", 'r"a\\\nb"', '"""x\\"""y"""']
    cases += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 16))) for _ in range(1000)]
    for pattern in patterns:
        theirs, ours = re.compile(pattern), re.compile(lalr.unroll_escape_loops(pattern))
        for case in cases:
            for start in range(0, len(case), 3):
                expected, got = theirs.match(case, start), ours.match(case, start)
                assert (got and (got.lastgroup, got.group())) == (expected and (expected.lastgroup, expected.group())), (
                    f"{case!r} at {start}")


def test_stale_tables_are_built_from_the_grammar(monkeypatch) -> None:
    """A grammar edited without regenerating still parses as it now reads."""
    monkeypatch.setattr(pivotfile_tables, "GRAMMAR_DIGEST", "stale")
    lalr.tables.cache_clear()
    lalr._lexers.cache_clear()
    try:
        tables = lalr.tables()
        assert tables is not pivotfile_tables
        assert tables.ACTIONS == pivotfile_tables.ACTIONS
        assert _by_us(EVERY_CONSTRUCT + "\n") == _by_lark(EVERY_CONSTRUCT + "\n")
    finally:
        lalr.tables.cache_clear()
        lalr._lexers.cache_clear()


def test_a_pivotfile_loads_without_importing_lark(tmp_path) -> None:
    (tmp_path / ".pivot").mkdir()
    (tmp_path / "Pivotfile").write_text('rule r:\n    output: "o.txt"\n    shell: "echo hi > {output}"\n')
    code = ("import sys; from pivot.cli import main; sys.argv = ['pivot', 'list']\n"
            "try: main()\nexcept SystemExit: pass\nprint('lark' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    *listed, imported = done.stdout.splitlines()
    assert listed[0].startswith("r "), done.stdout
    assert imported == "False", "lark was imported"


def test_no_terminal_but_the_ignored_blanks_starts_with_a_blank() -> None:
    """The lexer takes the blanks after a token along with it (they are the
    ignored token it would find next): only sound while no other terminal
    can start with a blank."""
    import re

    blank = lalr.blank_run(pivotfile_tables)
    assert blank is not None, "the grammar ignores runs of blanks"
    tails = ["", *map(chr, range(32, 127)), "\n", "\t", "\f", '"x"', "'x'", '"""x"""', "1.5", "-2", "# c", "\\\n"]
    takes_blanks = set()
    for terminal in _lark().terminals:
        pattern = re.compile(terminal.pattern.to_regexp())
        for c in blank[1:-1]:
            for tail in tails:
                found = pattern.match(c + tail)
                if found is not None:
                    assert re.fullmatch(f"{blank}+", found.group()), (terminal.name, c + tail)
                    takes_blanks.add(terminal.name)
    assert len(takes_blanks) == 1 and takes_blanks <= set(pivotfile_tables.IGNORE_TYPES), takes_blanks
