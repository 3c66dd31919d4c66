"""Pivotfile errors QA found without ``file:line:col`` and a caret (or with a
traceback): ambiguity, stage-name collisions, a byte order mark, bad
indentation."""

from __future__ import annotations

import pytest

from pivot.errors import PipelineError
from pivot.frontends.pivotfile import load_pivotfile
from pivot.project import Project


def _error(ws, needed=()) -> str:
    with pytest.raises(PipelineError) as raised:
        load_pivotfile(Project(ws.root, ws.root), "Pivotfile", needed)
    return str(raised.value)


def _caret_under(error: str, text: str) -> None:
    """The error shows the source line and a caret under ``text``."""
    lines = error.splitlines()
    source, caret = lines[1], lines[2]
    assert caret.strip() == "^" and source.index(text) == caret.index("^"), error


def test_ambiguity_points_at_the_requesting_input(ws) -> None:
    ws.write("Pivotfile", '''\
        rule all:
            input: "keep.txt", "out/a.txt"
        rule r:
            output: "out/{s}.txt"
            shell: "touch {output}"
        rule q:
            output: "out/{t}.txt"
            shell: "touch {output}"
        ''')
    ws.write("keep.txt", "")
    error = _error(ws)
    assert error.startswith("Pivotfile:2:24: 'out/a.txt' (wanted by rule 'all' (Pivotfile:1))"), error
    assert "can be produced by rule 'r' (Pivotfile:3) and rule 'q' (Pivotfile:6)" in error
    _caret_under(error, '"out/a.txt"')


def test_ambiguity_of_a_file_asked_for_from_outside_names_the_pivotfile(ws) -> None:
    ws.write("Pivotfile", '''\
        rule r:
            output: "out/{s}.txt"
            shell: "touch {output}"
        rule q:
            output: "out/{t}.txt"
            shell: "touch {output}"
        ''')
    error = _error(ws, needed=["out/b.txt"])
    assert error.startswith("Pivotfile: 'out/b.txt' can be produced by rule 'r' (Pivotfile:1) and rule 'q' (Pivotfile:4)")
    assert "asked for by another pipeline or the command line" in error


def test_two_requests_giving_one_stage_name_are_named(ws) -> None:
    ws.write("Pivotfile", '''\
        rule r:
            output: "out/{s}_{t}.txt"
            shell: "touch {output}"
        rule all:
            input: "out/a-b_c.txt", "out/a_b-c.txt"
        ''')
    error = _error(ws)
    assert error.startswith("Pivotfile:5:29: stage name 'r@a-b-c' is given to both"), error
    assert "'out/a-b_c.txt' (rule 'r' (Pivotfile:1) with s=a-b, t=c)" in error
    assert "'out/a_b-c.txt' (rule 'r' (Pivotfile:1) with s=a, t=b-c)" in error
    _caret_under(error, '"out/a_b-c.txt"')
    assert "defined twice" not in error


def test_wildcard_instance_named_like_a_plain_rule(ws) -> None:
    ws.write("Pivotfile", '''\
        rule "r@x":
            output: "x.txt"
            shell: "touch {output}"
        rule r:
            output: "out/{s}.txt"
            shell: "touch {output}"
        ''')
    error = _error(ws, needed=["out/x.txt"])
    assert "stage name 'r@x' is given to both rule 'r@x' (Pivotfile:1) and 'out/x.txt'" in error, error


def test_byte_order_mark_is_accepted(ws) -> None:
    (ws.root / "Pivotfile").write_bytes(b'\xef\xbb\xbfrule r:\n    output: "o.txt"\n    shell: "touch {output}"\n')
    stages, _ = load_pivotfile(Project(ws.root, ws.root), "Pivotfile")
    assert [(s.name, s.cmds) for s in stages] == [("r", ("touch o.txt",))]
    assert str(stages[0].location) == "Pivotfile:1"


def test_byte_order_mark_keeps_columns_right(ws) -> None:
    (ws.root / "Pivotfile").write_bytes(b'\xef\xbb\xbfrule r:\n    bogus: 1\n')
    assert _error(ws).startswith("Pivotfile:2:5: unknown section 'bogus'")


@pytest.mark.parametrize(
    ("text", "where", "levels"),
    [
        ('rule r:\n    output: "o.txt"\n  shell: "touch {output}"\n', "Pivotfile:3:3", "indented 2 columns, but the blocks it could belong to are indented 0 or 4 columns"),
        ('rule r:\n        output: "o.txt"\n    shell: "touch {output}"\n', "Pivotfile:3:5", "indented 4 columns, but the blocks it could belong to are indented 0 or 8 columns"),
        ('rule r:\n    shell:\n        "a"\n      "b"\n', "Pivotfile:4:7", "indented 6 columns, but the blocks it could belong to are indented 0, 4 or 8 columns"),
    ],
)
def test_dedent_to_no_enclosing_block_is_an_indentation_error(ws, text: str, where: str, levels: str) -> None:
    ws.write("Pivotfile", text)
    error = _error(ws)
    assert error.startswith(f"{where}: bad indentation: this line is {levels}"), error
    assert error.splitlines()[2].strip() == "^"


def test_section_at_the_left_margin_is_an_indentation_error(ws) -> None:
    ws.write("Pivotfile", 'rule r:\n    output: "o.txt"\nshell: "touch {output}"\n')
    error = _error(ws)
    assert error.startswith("Pivotfile:3:1: 'shell:' is not indented: a section belongs inside a rule"), error
    _caret_under(error, "shell")


def test_errors_reach_the_cli_without_a_traceback(ws) -> None:
    ws.write("Pivotfile", 'rule r:\n        output: "o.txt"\n    shell: "touch {output}"\n')
    proc = ws.pivot_proc("list", check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "Pivotfile:3:5: bad indentation" in proc.stderr
