"""The Pivotfile grammar: what parses, and how syntax errors read."""

from __future__ import annotations

import pytest

from pivot.errors import PipelineError
from pivot.frontends import pivotfile_parse as syntax
from pivot.frontends.pivotfile_parse import Source, decode_string, parse


def _parse(text: str) -> tuple[syntax.Statement, ...]:
    return parse(Source("Pivotfile", text))


def _kinds(text: str) -> list[str]:
    return [type(s).__name__ for s in _parse(text)]


@pytest.mark.parametrize(
    "text, kinds",
    [
        pytest.param("", [], id="empty"),
        pytest.param("# only a comment", [], id="comment-no-newline"),
        pytest.param("\n\n# c\n\n", [], id="blank-lines"),
        pytest.param('X = "a"\n', ["Assign"], id="string"),
        pytest.param("X = 'a'\n", ["Assign"], id="single-quotes"),
        pytest.param("X = 1.5e3\nY = -2\n", ["Assign", "Assign"], id="numbers"),
        pytest.param('X = ["a", "b",]\n', ["Assign"], id="list-trailing-comma"),
        pytest.param('X = [\n  "a",  # first\n  "b",\n]\n', ["Assign"], id="list-multiline-comments"),
        pytest.param('X = {"a": 1, "b": [1, 2]}\n', ["Assign"], id="dict"),
        pytest.param('X = expand("{s}.txt", s=["a", "b"])\n', ["Assign"], id="call-kwargs"),
        pytest.param('X = config["a"].b[0]\n', ["Assign"], id="subscript-attr"),
        pytest.param('configfile: "params.yaml"\n', ["ConfigFile"], id="configfile"),
        pytest.param('include: "sub/Pivotfile"\n', ["Include"], id="include"),
        pytest.param('rule a:\n    shell: "true"\n', ["RuleDecl"], id="rule-minimal"),
        pytest.param('rule a:\n\tshell: "true"\n', ["RuleDecl"], id="rule-tab-indent"),
        pytest.param('rule "b@0.5":\n    shell: "true"\n', ["RuleDecl"], id="rule-quoted-name"),
        pytest.param(
            'rule a:\n    input: "x", y="z"\n    output: "o"\n    shell: "cp {input} {output}"\n',
            ["RuleDecl"],
            id="rule-inline-items",
        ),
        pytest.param(
            'rule a:\n    input:\n        "x",\n        "y"\n    shell:\n        "one"\n        """\n        two\n        """\n',
            ["RuleDecl"],
            id="rule-block-items",
        ),
        pytest.param(
            'rule a:\n    input: "x",\n        "y"\n    shell: "true"\n',
            ["RuleDecl"],
            id="inline-then-continued",
        ),
        pytest.param(
            'rule a:\n    input: expand(\n        "{s}.txt",\n        s=S,\n    )\n    shell: "true"\n',
            ["RuleDecl"],
            id="call-across-lines",
        ),
        pytest.param(
            'rule a:\n    # a comment inside a rule\n    shell: "true"  # trailing\n\n\nrule b:\n    shell: "x"\n',
            ["RuleDecl", "RuleDecl"],
            id="comments-and-blank-lines",
        ),
        pytest.param('rule a:\n    shell: "true"', ["RuleDecl"], id="no-final-newline"),
        pytest.param('X = "a" \\\n\nY = 1\n', ["Assign", "Assign"], id="line-continuation"),
    ],
)
def test_programs_parse(text: str, kinds: list[str]) -> None:
    assert _kinds(text) == kinds, f"statements of {text!r}"


def test_sections_and_items_keep_order_and_names() -> None:
    (rule,) = _parse('rule r:\n    input: "a", script="s.py"\n    shell:\n        "one"\n        "two"\n')
    assert [s.name for s in rule.sections] == ["input", "shell"], "section order"
    names = [item.name for item in rule.sections[0].items]
    assert names == [None, "script"], "positional then named item"
    commands = [item.expr.value for item in rule.sections[1].items]
    assert commands == ["one", "two"], "each string of a shell block is one command"


def test_triple_quoted_string_is_dedented() -> None:
    (rule,) = _parse('rule r:\n    shell:\n        """\n        a {input}\n          b\n        """\n')
    assert rule.sections[0].items[0].expr.value == "a {input}\n  b", "dedented, outer blank lines dropped"


@pytest.mark.parametrize(
    "literal, value",
    [
        ('"plain"', "plain"),
        ('"tab\\there"', "tab\there"),
        ('"quote \\" and \\\\"', 'quote " and \\'),
        ("'single \\' quote'", "single ' quote"),
        ('"keep \\d unknown"', "keep \\d unknown"),
        ('r"raw \\d \\n"', "raw \\d \\n"),
        ('"\\x41"', "A"),
        ('""', ""),
    ],
)
def test_string_escapes(literal: str, value: str) -> None:
    assert decode_string(literal) == value, f"value of {literal}"


def test_positions_point_at_tokens() -> None:
    (assign,) = _parse('\n\n   \nX = [1,\n     oops]\n')
    item = assign.expr.items[1]
    assert (item.pos.line, item.pos.column) == (5, 6), "line and column of 'oops'"


@pytest.mark.parametrize(
    "text, line, col, fragment",
    [
        pytest.param('rule a\n    shell: "x"\n', 1, 7, "unexpected end of line (expected ':')", id="missing-colon"),
        pytest.param('rule a:\nshell: "x"\n', 2, 1, "expected an indented block", id="missing-indent"),
        pytest.param('rule a:\n    shell: "x",, "y"\n', 2, 16, "unexpected ','", id="double-comma"),
        pytest.param('X = [1, 2\nY = 3\n', 2, 1, "unexpected 'Y'", id="unclosed-bracket"),
        pytest.param('X = "abc\n', 1, 5, "unterminated string", id="unterminated-string"),
        pytest.param("X = 1 $ 2\n", 1, 7, "unexpected character '$'", id="bad-character"),
        pytest.param('X = 1\n    Y = 2\n', 2, 5, "unexpected indentation", id="stray-indent"),
        pytest.param('rule a:\n    shell: "x"\n        "y"\n    output: "o"\n      input: "i"\n', 5, 12,
                     "unexpected ':'", id="indented-section"),
        pytest.param("rule 1a:\n    shell: \"x\"\n", 1, 6, "unexpected '1'", id="rule-name-not-identifier"),
        pytest.param('rule "":\n    shell: "x"\n', 1, 6, "a rule name cannot be empty", id="empty-rule-name"),
        pytest.param("X = f(a=1, 2)\n", 1, 12, "positional argument follows keyword", id="positional-after-kw"),
    ],
)
def test_syntax_errors_name_file_line_and_column(text: str, line: int, col: int, fragment: str) -> None:
    with pytest.raises(PipelineError) as raised:
        _parse(text)
    message = str(raised.value)
    assert message.startswith(f"Pivotfile:{line}:{col}: "), message
    assert fragment in message, message
    source_line = text.splitlines()[line - 1] if line <= len(text.splitlines()) else ""
    assert f"\n    {source_line}\n    {' ' * (col - 1)}^" in message, f"source line and caret in:\n{message}"

