"""Incremental parsing: a Pivotfile is cut into its top-level statements and
each statement's syntax tree is cached by its text, so an edit re-parses only
what changed.  Whatever the cache holds, the result (trees, positions,
errors) must be exactly that of parsing the whole file."""

from __future__ import annotations

import dataclasses
import random
import re
from pathlib import Path

import pytest

from pivot import resources
from pivot.errors import PipelineError
from pivot.frontends import pivotfile_parse as syntax
from pivot.frontends.pivotfile_parse import Source, parse, statement_lines

PROGRAM = '''\
# a pipeline
configfile: "params.yaml"
SAMPLES = [
"a",   # a list whose items start at the left margin
"b",
]
X = \\
"one"
rule all:
    input: expand("out/{s}.txt", s=SAMPLES)

rule make:
    input: "in/{s}.csv"
    output: "out/{s}.txt"
    shell:
        """
rule not_a_rule:
    this is text inside a string
        """
        'echo "#not a comment"'
'''


def _dump(node: object) -> object:
    """A tree as plain data, positions as (line, column)."""
    if isinstance(node, syntax.Pos):
        return (node.source.relpath, node.line, node.column)
    if dataclasses.is_dataclass(node):
        return (type(node).__name__, *(_dump(getattr(node, f.name)) for f in dataclasses.fields(node)))
    if isinstance(node, (list, tuple)):
        return [_dump(item) for item in node]
    return node


def _whole(text: str) -> object:
    return _dump(parse(Source("Pivotfile", text)))


def _cached(text: str, cache_dir: Path) -> object:
    return _dump(parse(Source("Pivotfile", text), cache_dir))


def _error(text: str, cache_dir: Path | None = None) -> str:
    with pytest.raises(PipelineError) as raised:
        parse(Source("Pivotfile", text), cache_dir)
    return str(raised.value)


# ---------------------------------------------------------------- splitting


@pytest.mark.parametrize(
    "text, first_lines",
    [
        pytest.param("", [1], id="empty"),
        pytest.param('X = 1\nY = 2\n', [1, 2], id="assignments"),
        pytest.param('# c\n\nX = 1\n', [1, 3], id="leading-comment"),
        pytest.param('X = [\n1,\n]\nY = 2\n', [1, 4], id="brackets-hide-the-margin"),
        pytest.param('X = f(\n"a)",\n)\nY = 2\n', [1, 4], id="bracket-in-string"),
        pytest.param('X = 1 \\\nY\nZ = 2\n', [1, 3], id="continued-line"),
        pytest.param('X = 1  # [\nY = 2\n', [1, 2], id="bracket-in-comment"),
        pytest.param('rule a:\n    shell: """\nrule b:\n"""\nY = 2\n', [1, 5], id="long-string"),
        pytest.param("rule a:\n    shell: '''\nY = [\n'''\nZ = 2\n", [1, 5], id="long-string-single-quotes"),
        pytest.param('X = "\\"" \nY = "#"\nZ = 1\n', [1, 2, 3], id="escaped-quote"),
        pytest.param('X = 1\r\nY = 2\r\n', [1, 2], id="crlf"),
        pytest.param('rule a:\n    shell: "x"\n# c\n    # d\nrule b:\n    shell: "y"\n', [1, 5], id="rules"),
    ],
)
def test_statement_lines(text: str, first_lines: list[int]) -> None:
    assert statement_lines(text) == first_lines


def _grammar_terminal(name: str) -> re.Pattern[str]:
    grammar = resources.grammar_path("pivotfile.lark").read_text()
    match = re.search(rf"^{name}: /(.*)/(s?)$", grammar, re.M)
    assert match, f"terminal {name} in the grammar"
    return re.compile(match.group(1), re.S if match.group(2) else 0)


STRING_CASES = [
    '"a"', "'a'", '""', "''", '"a\\"b"', "'a\\'b'", '"a\\\\"b"', '"a\nb"', 'r"a\\"', '"""a"""',
    '"""a\nb"""', "'''a\n'''", '"""a\\"""b"""', '"""a""""', '"""', '"\\', "r'''x'''", 'R"x"', '"a" "b"',
]


@pytest.mark.parametrize("name, ours", [("STRING", syntax.STRING_RE), ("LONG_STRING", syntax.LONG_STRING_RE)])
def test_splitter_strings_match_what_the_grammar_matches(name: str, ours: str) -> None:
    grammar = _grammar_terminal(name)
    mine = re.compile(ours, grammar.flags)
    rng = random.Random(7)
    cases = STRING_CASES + ["".join(rng.choice("\"'\\\nar ") for _ in range(rng.randint(1, 12))) for _ in range(4000)]
    for case in cases:
        expected = grammar.match(case)
        got = mine.match(case)
        assert (got and got.group()) == (expected and expected.group()), f"{name} on {case!r}"


# ---------------------------------------------------------------- equivalence


def test_cached_parse_equals_whole_parse_cold_warm_and_after_edits(tmp_path) -> None:
    expected = _whole(PROGRAM)
    assert _cached(PROGRAM, tmp_path) == expected, "cold"
    assert _cached(PROGRAM, tmp_path) == expected, "warm"
    assert list((tmp_path / "statements").glob("*.pickle")), "the trees were stored"
    # random edits: lines inserted, removed, duplicated; each result as a whole parse gives it
    rng = random.Random(11)
    lines = PROGRAM.splitlines(keepends=True)
    extra = ['Z = 3\n', '\n', '# note\n', 'rule extra:\n    shell: "e"\n', '    output: "more"\n']
    for _ in range(60):
        edited = list(lines)
        for _ in range(rng.randint(1, 3)):
            position = rng.randrange(len(edited) + 1)
            if rng.random() < 0.5:
                edited.insert(position, rng.choice(extra))
            elif edited:
                del edited[min(position, len(edited) - 1)]
        text = "".join(edited)
        try:
            whole = _whole(text)
        except PipelineError as exc:
            assert _error(text, tmp_path) == str(exc), f"the error for\n{text}"
            continue
        assert _cached(text, tmp_path) == whole, f"cached parse of\n{text}"


EVERY_NODE = '''\
configfile: "params.yaml"
include: "more.pivot"
N = {"a": [1, 2.5, -3e2], "b": config.x["y"], 'c': r"raw"}
rule "odd name":
    input: "a", extra=N["a"][0]
    params: "train.lr"
    shell:
        """
        echo {input}
        """
        f(1, k=N.b, j=[])
    desc: {}
'''


def _node_classes(node: object) -> set[str]:
    if dataclasses.is_dataclass(node) and not isinstance(node, syntax.Pos):
        found = {type(node).__name__}
        for f in dataclasses.fields(node):
            found |= _node_classes(getattr(node, f.name))
        return found
    if isinstance(node, (list, tuple)):
        return set().union(*map(_node_classes, node)) if node else set()
    return set()


def test_every_kind_of_node_comes_back_from_the_cache_as_parsed(tmp_path) -> None:
    statements = parse(Source("Pivotfile", EVERY_NODE))
    classes = {"Literal", "Var", "ListExpr", "DictExpr", "GetItem", "GetAttr", "Call", "Item", "Section",
               "RuleDecl", "Assign", "Include", "ConfigFile"}
    assert _node_classes(statements) == classes, "the program holds every node class"
    expected = _whole(EVERY_NODE)
    assert _cached(EVERY_NODE, tmp_path) == expected, "cold"
    moved = "# moved\n\n" + EVERY_NODE
    assert _cached(moved, tmp_path) == _whole(moved), "warm, every statement moved"


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param({"X = 1": [(99, 1, 1, "x")]}, id="unknown-tag"),
        pytest.param({"X = 1": [(0, 1, 1, "x")]}, id="not-a-statement"),
        pytest.param({"X = 1": [(10, 1, 1)]}, id="too-short"),
        pytest.param({"X = 1": "text"}, id="not-a-list"),
        pytest.param(["X = 1"], id="not-a-dict"),
    ],
)
def test_a_statement_cache_holding_anything_else_is_a_miss(tmp_path, stored) -> None:
    import pickle

    _cached("X = 1\n", tmp_path)
    [path] = (tmp_path / "statements").glob("*.pickle")
    path.write_bytes(pickle.dumps(stored))
    assert _cached("X = 1\n", tmp_path) == _whole("X = 1\n")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('rule a\n    shell: "x"\n', id="missing-colon"),
        pytest.param('X = [1, 2\nY = 3\n', id="unclosed-bracket"),
        pytest.param('X = "abc\nY = 1\n', id="unterminated-string"),
        pytest.param('X = """abc\nY = 1\n', id="unterminated-long-string"),
        pytest.param('X = 1\n    Y = 2\n', id="stray-indent"),
        pytest.param('rule a:\n    shell: "x"\nshell: "y"\n', id="unindented-section"),
        pytest.param('rule "":\n    shell: "x"\n', id="empty-rule-name"),
    ],
)
def test_errors_are_those_of_the_whole_file_with_any_cache(tmp_path, text: str) -> None:
    expected = _error(text)
    assert _error(text, tmp_path) == expected, "cold cache"
    # the valid statements around it cached first
    _cached('X = 1\nY = 3\nrule b:\n    shell: "x"\n', tmp_path)
    assert _error(text, tmp_path) == expected, "warm cache"


def test_an_edit_parses_only_the_statement_that_changed(tmp_path, monkeypatch) -> None:
    parse(Source("Pivotfile", PROGRAM), tmp_path)
    edited = PROGRAM.replace('output: "out/{s}.txt"', 'output: "out/{s}.tsv"')
    edited = "# a new first line\n" + edited  # and every statement moves down
    expected = _whole(edited)
    parsed_texts: list[str] = []
    real = syntax._parse

    def recording(source, text, *args, **kwargs):
        parsed_texts.append(text)
        return real(source, text, *args, **kwargs)

    monkeypatch.setattr(syntax, "_parse", recording)
    assert _cached(edited, tmp_path) == expected
    [text] = parsed_texts
    assert len(text.splitlines()) == len(edited.splitlines()), "lines stay where they are"
    code = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert code[0] == "rule make:" and '    output: "out/{s}.tsv"' in code, text
    assert not any(line.startswith(("configfile", "SAMPLES", "rule all")) for line in code), text


def test_a_moved_statement_reports_its_new_line(tmp_path) -> None:
    parse(Source("Pivotfile", 'rule a:\n    shell: "x"\n'), tmp_path)
    moved = '# one\n# two\nrule a:\n    shell: "x"\n'
    (rule,) = parse(Source("Pivotfile", moved), tmp_path)
    assert (rule.pos.line, rule.sections[0].pos.line) == (3, 4)
    assert rule.pos.source.text == moved, "positions belong to the new text"
    assert str(rule.sections[0].pos.error("boom")) == 'Pivotfile:4:5: boom\n        shell: "x"\n        ^'


def test_a_corrupt_statement_cache_is_rebuilt(tmp_path) -> None:
    expected = _whole(PROGRAM)
    _cached(PROGRAM, tmp_path)
    [stored] = (tmp_path / "statements").glob("*.pickle")
    stored.write_bytes(b"not a pickle")
    assert _cached(PROGRAM, tmp_path) == expected
    assert _cached(PROGRAM, tmp_path) == expected
    assert stored.read_bytes() != b"not a pickle", "rewritten"
