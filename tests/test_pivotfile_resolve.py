"""Wildcard resolution details the fast paths must keep: the producer index
(patterns with and without a literal top directory, directory() outputs,
constraints), shared shell templates, paths pathlib would normalise."""

from __future__ import annotations

import pytest

from pivot.errors import PipelineError
from pivot.frontends.pivotfile import load_pivotfile
from pivot.ir import Stage
from pivot.project import Project


def _load(ws, needed=()) -> list[Stage]:
    stages, _ = load_pivotfile(Project(ws.root, ws.root), "Pivotfile", needed)
    return stages


def _error(ws, needed=()) -> str:
    with pytest.raises(PipelineError) as raised:
        _load(ws, needed)
    return str(raised.value)


def test_pattern_without_a_top_directory_is_tried_for_every_path(ws) -> None:
    ws.write("Pivotfile", '''\
        rule all:
            input: "res/7.txt"
        rule flat:
            output: "res{n}.txt"
            shell: "touch {output}"
        rule nested:
            output: "res/{m}.txt"
            shell: "touch {output}"
        ''')
    error = _error(ws)
    assert "can be produced by rule 'flat' (Pivotfile:3) and rule 'nested' (Pivotfile:6)" in error, \
        "the unindexed pattern still matches, and rules are named in file order"


def test_ambiguity_lists_rules_in_file_order_across_index_buckets(ws) -> None:
    ws.write("Pivotfile", '''\
        rule nested:
            output: "out/{x}.txt"
            shell: "touch {output}"
        rule anywhere:
            output: "{dir}/a.txt"
            shell: "touch {output}"
        ''')
    error = _error(ws, needed=["out/a.txt"])
    assert "rule 'nested' (Pivotfile:1) and rule 'anywhere' (Pivotfile:4)" in error, error


def test_many_prefixed_rules_resolve_a_chain(ws) -> None:
    steps = 30
    rules = ['rule s0:\n    input: "raw/{x}.txt"\n    output: "s0/{x}.txt"\n    shell: "cp {input} {output}"\n']
    for i in range(1, steps):
        rules.append(
            f'rule s{i}:\n    input: "s{i - 1}/{{x}}.txt"\n    output: "s{i}/{{x}}.txt"\n    shell: "cp {{input}} {{output}}"\n'
        )
    ws.write("Pivotfile", "".join(reversed(rules)))
    ws.write("raw/a.txt", "")
    ws.write("raw/b.txt", "")
    stages = _load(ws, needed=[f"s{steps - 1}/a.txt", f"s{steps - 1}/b.txt"])
    assert [s.name for s in stages] == [f"s{i}@{v}" for i in reversed(range(steps)) for v in "ab"]
    assert stages[-1].deps[0].path == "raw/b.txt"


def test_directory_output_matches_the_outermost_parent(ws) -> None:
    ws.write("Pivotfile", '''\
        rule all:
            input: "plots/run1/a/b.png", "plots/run2"
        rule plot:
            output: directory("plots/{run}")
            shell: "mkdir -p {output}"
        ''')
    assert [(s.name, s.outs[0].path) for s in _load(ws)] == [("plot@run1", "plots/run1"), ("plot@run2", "plots/run2")]


def test_constraints_and_repeated_wildcards_in_one_bucket(ws) -> None:
    ws.write("Pivotfile", '''\
        rule all:
            input: "out/12/12.txt", "out/ab/ab.txt"
        rule numbers:
            output: "out/{n,[0-9]+}/{n}.txt"
            shell: "touch {output}"
        rule words:
            output: "out/{w,[a-z]+}/{w}.txt"
            shell: "touch {output}"
        ''')
    assert [s.name for s in _load(ws)] == ["numbers@12", "words@ab"]


def test_absolute_input_path_does_not_hang(ws) -> None:
    source = ws.write("abs.txt", "x")
    ws.write("Pivotfile", f'rule r:\n    input: "{source}"\n    output: "o.txt"\n    shell: "cp {{input}} {{output}}"\n')
    (stage,) = _load(ws)
    assert [d.path for d in stage.deps] == [str(source)]


def test_shared_command_text_renders_per_rule(ws) -> None:
    ws.write("Pivotfile", '''\
        rule one:
            input: "a.txt", x="b c.txt"
            output: "o1"
            shell: "tool {input} {input.x} > {output}"
        rule two:
            input: x="d.txt"
            output: "o2"
            shell: "tool {input} {input.x} > {output}"
        ''')
    for name in ("a.txt", "b c.txt", "d.txt"):
        ws.write(name, "")
    assert [s.cmds for s in _load(ws)] == [("tool a.txt 'b c.txt' 'b c.txt' > o1",), ("tool d.txt d.txt > o2",)]
    ws.write("Pivotfile", ws.read("Pivotfile") + '''\
rule three:
    input: y="d.txt"
    output: "o3"
    shell: "tool {input} {input.x} > {output}"
''')
    assert "rule 'three' has no input named 'x' (named: y)" in _error(ws), "checked for each rule"


def test_inputs_with_empty_components_are_looked_up_as_pathlib_does(ws) -> None:
    ws.write("Pivotfile", '''\
        rule all:
            input: "out/x"
        rule make:
            input: "in/{c}/f.txt"
            output: "out/{c,.*}x"
            shell: "cp {input} {output}"
        ''')
    ws.write("in/f.txt", "")
    (stage,) = _load(ws)
    assert (stage.name, stage.deps[0].path) == ("make@", "in//f.txt"), "an empty value leaves '//' (it exists)"


def test_shared_path_text_is_rooted_per_wdir(ws) -> None:
    ws.write("Pivotfile", '''\
        rule top:
            input: "in.txt"
            output: "out.txt"
            params: "p.yaml:k"
            shell: "cp {input} {output}"
        rule nested:
            input: "in.txt"
            output: "out.txt"
            params: "p.yaml:k"
            wdir: "sub"
            shell: "cp {input} {output}"
        ''')
    ws.write("in.txt", "")
    ws.write("sub/in.txt", "")
    stages = _load(ws)
    assert [(s.deps[0].path, s.outs[0].path, s.params[0].path) for s in stages] == [
        ("in.txt", "out.txt", "p.yaml"),
        ("sub/in.txt", "sub/out.txt", "sub/p.yaml"),
    ]
    assert [s.cmds for s in stages] == [("cp in.txt out.txt",)] * 2, "commands see paths as written"


def test_shared_params_text_is_checked_per_rule(ws) -> None:
    ws.write("Pivotfile", '''\
        rule a:
            output: "a/{x}.txt"
            params: "k{x}"
            shell: "touch {output}"
        rule b:
            output: "b.txt"
            params: "k{x}"
            shell: "touch {output}"
        ''')
    assert "wildcard '{x}' in params of rule 'b' does not appear in its output" in _error(ws)


def test_nested_lists_of_inputs_are_flattened_depth_first_in_order(ws) -> None:
    ws.write("Pivotfile", '''\
        PARTS = ["b", ["c", [], ["d"]], "e"]
        rule all:
            input: "a", PARTS, [["f"], "g"], []
            output: "all.txt"
            shell: "cat {input} > {output}"
        ''')
    (stage,) = _load(ws)
    assert [dep.path for dep in stage.deps] == ["a", "b", "c", "d", "e", "f", "g"]
    assert stage.cmds == ("cat a b c d e f g > all.txt",)
