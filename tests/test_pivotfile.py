"""The Pivotfile front end: evaluation, wildcard resolution, IR, errors."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from pivot import graph
from pivot.errors import PipelineError
from pivot.frontends.pivotfile import load_pivotfile
from pivot.ir import Stage
from pivot.project import Project

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "pivotfile"


def _load(ws, needed=(), provided=(), relpath="Pivotfile") -> list[Stage]:
    stages, _ = load_pivotfile(Project(ws.root, ws.root), relpath, needed, provided)
    return stages


def _by_name(stages: list[Stage]) -> dict[str, Stage]:
    return {stage.name: stage for stage in stages}


def _error(ws, needed=(), relpath="Pivotfile") -> str:
    with pytest.raises(PipelineError) as raised:
        _load(ws, needed, relpath=relpath)
    return str(raised.value)


def _ir(stages: list[Stage]) -> list[dict]:
    """Stages as plain data (location included) for snapshots."""
    return [dict(dataclasses.asdict(stage), location=str(stage.location)) for stage in stages]


# ---------------------------------------------------------------- golden IR


SPEC_PIVOTFILE = '''\
# comments
configfile: "params.yaml"          # YAML loaded as `config`
include: "sub/Pivotfile"           # another Pivotfile; its paths are relative to its own directory
SAMPLES = ["a", "b", "c"]          # variables: strings, numbers, lists, dicts, expand(...)

rule all:
    input: expand("results/{sample}.txt", sample=SAMPLES)

rule count:
    input: "data/{sample}.csv", script="scripts/count.py"
    output: "results/{sample}.txt"
    params: "count.threshold", "other.yaml:seed"
    shell: "python {input.script} {input[0]} --t {config.count.threshold} > {output}"

rule report:
    input: expand("results/{sample}.txt", sample=SAMPLES)
    output: directory("report"), metric("scores.json"), persist("history.csv"), nocache("log.txt"), plot("curve.csv")
    wdir: "."
    shell:
        "mkdir -p report"
        """
        python make_report.py {input} > report/index.html
        """
'''


def test_spec_example_golden(ws, snapshot) -> None:
    ws.write("Pivotfile", SPEC_PIVOTFILE)
    ws.write("params.yaml", "count:\n  threshold: 3\n")
    ws.write("sub/Pivotfile", 'rule prepare:\n    input: "raw.csv"\n    output: "../data/a.csv"\n    shell: "cp {input} {output}"\n')
    ws.write("sub/raw.csv", "x\n")
    for name in ("data/b.csv", "data/c.csv", "scripts/count.py"):
        ws.write(name, "")
    stages, sources = load_pivotfile(Project(ws.root, ws.root), "Pivotfile", ())
    assert sources == ["Pivotfile", "params.yaml", "sub/Pivotfile"], "files read"
    assert _ir(stages) == snapshot
    graph.build_pipeline(stages)


def test_example_golden(ws, snapshot) -> None:
    shutil.copytree(EXAMPLE, ws.root, dirs_exist_ok=True)
    stages = _load(ws)
    assert [s.address for s in stages] == ["clean@en", "clean@de", "count@en", "count@de", "report"]
    assert _ir(stages) == snapshot


# ---------------------------------------------------------------- sections


def test_placeholders_render_quoted_paths(ws) -> None:
    ws.write("Pivotfile", '''\
        configfile: "cfg.yaml"
        rule r:
            input: "in put.txt", "b.txt", extra="c.txt"
            output: "out.txt", log="o's.log"
            shell:
                "tool {input} -o {output}"
                "tool {input[0]} {input.extra} {output.log} {config.opts.level} {config.list}"
                "awk '{{print $1}}' {output[0]}"
        ''')
    ws.write("cfg.yaml", "opts: {level: 2}\nlist: [a, true]\n")
    for name in ("in put.txt", "b.txt", "c.txt"):
        ws.write(name, "")
    (stage,) = _load(ws)
    assert stage.cmds == (
        "tool 'in put.txt' b.txt c.txt -o out.txt 'o'\"'\"'s.log'",
        "tool 'in put.txt' c.txt 'o'\"'\"'s.log' 2 a true",
        "awk '{print $1}' out.txt",
    )


def test_params_are_grouped_by_file_in_order(ws) -> None:
    ws.write("Pivotfile", '''\
        rule r:
            params: "a.b", "other.yaml:seed,lr", "c", "whole.json:", "other.yaml:seed"
            wdir: "sub"
            shell: "true"
        ''')
    (stage,) = _load(ws)
    assert [(p.path, p.def_path, p.keys) for p in stage.params] == [
        ("sub/params.yaml", "params.yaml", ("a.b", "c")),
        ("sub/other.yaml", "other.yaml", ("seed", "lr", "seed")),  # DVC keeps a key listed twice
        ("sub/whole.json", "whole.json", None),
    ]


def test_wdir_and_paths_are_relative_to_the_pivotfile(ws) -> None:
    ws.write("sub/Pivotfile", '''\
        rule r:
            input: "./x/../in.txt"
            output: "out/"
            wdir: "work"
            shell: "cat {input} > {output}"
            desc: "hello"
            frozen: true
            always_changed: True
        ''')
    ws.write("sub/work/in.txt", "")
    (stage,) = _load(ws, relpath="sub/Pivotfile")
    assert stage.address == "sub/Pivotfile:r", "non-root Pivotfile address"
    assert stage.wdir == "sub/work"
    assert [(d.path, d.def_path) for d in stage.deps] == [("sub/work/in.txt", "./x/../in.txt")]
    assert [(o.path, o.def_path) for o in stage.outs] == [("sub/work/out", "out/")]
    assert stage.cmds == ("cat ./x/../in.txt > out/",), "commands see paths as written"
    assert (stage.frozen, stage.always_changed, stage.desc) == (True, True, "hello")


def test_output_markers_combine(ws) -> None:
    ws.write("Pivotfile", '''\
        rule r:
            output: nocache(persist(metric("m.json"))), plot("p.csv"), directory("d"), "a.txt"
            shell: "true"
        ''')
    (stage,) = _load(ws)
    assert [(o.path, o.kind.value, o.cache, o.persist) for o in stage.outs] == [
        ("d", "out", True, False),
        ("a.txt", "out", True, False),
        ("m.json", "metric", False, True),
        ("p.csv", "plot", True, False),
    ], "outs, then metrics, then plots (DVC's order)"


def test_variables_lists_dicts_and_config(ws) -> None:
    ws.write("Pivotfile", '''\
        configfile: "c.yaml"
        NAMES = config["names"]
        TABLE = {"x": ["p", "q"]}
        FILES = expand("{n}-{k}.txt", n=NAMES, k=TABLE["x"])
        rule r:
            output: FILES, config.extra
            shell: "touch {output}"
        ''')
    ws.write("c.yaml", "names: [a, b]\nextra: e.txt\n")
    (stage,) = _load(ws)
    assert [o.path for o in stage.outs] == ["a-p.txt", "a-q.txt", "b-p.txt", "b-q.txt", "e.txt"]


def test_expand_zip_and_escaped_wildcards(ws) -> None:
    ws.write("Pivotfile", '''\
        rule all:
            input: expand("out/{a}_{b}.txt", zip, a=["1", "2"], b=["x", "y"])
        rule make:
            input: expand("in/{{a}}.{ext}", ext="csv")
            output: "out/{a}_{b}.txt"
            shell: "echo {wildcards.b} > {output}"
        ''')
    ws.write("in/1.csv", "")
    ws.write("in/2.csv", "")
    stages = _load(ws)
    assert [s.name for s in stages] == ["make@1-x", "make@2-y"], "zip pairs; no product"
    assert [d.path for d in stages[1].deps] == ["in/2.csv"], "{{a}} stayed a wildcard"


def test_target_only_rule_is_not_a_stage(ws) -> None:
    ws.write("Pivotfile", '''\
        rule all:
            input: "a.txt"
        rule make:
            output: "a.txt"
            shell: "touch {output}"
        ''')
    assert [s.name for s in _load(ws)] == ["make"]


def test_include_shares_variables_and_rebases_paths(ws) -> None:
    ws.write("Pivotfile", 'X = "v"\ninclude: "rules/more.pf"\n')
    ws.write("rules/more.pf", 'rule r:\n    output: "out.txt"\n    shell: "echo {{X}} > {output}"\nY = X\n')
    stages, sources = load_pivotfile(Project(ws.root, ws.root), "Pivotfile", ())
    assert sources == ["Pivotfile", "rules/more.pf"]
    (stage,) = stages
    assert (stage.address, stage.wdir, stage.outs[0].path) == ("r", "rules", "rules/out.txt")
    assert stage.location is not None and stage.location.file == "rules/more.pf", "where it was written"


def test_quoted_rule_names_and_groups(ws) -> None:
    ws.write("Pivotfile", 'rule "train@0.5":\n    shell: "true"\nrule "a b":\n    shell: "true"\n')
    stages = _load(ws)
    assert [(s.name, s.group) for s in stages] == [("train@0.5", "train"), ("a b", None)]


# ---------------------------------------------------------------- wildcards


def test_multiple_wildcards_name_in_output_order(ws) -> None:
    ws.write("Pivotfile", '''\
        rule all:
            input: "res/x/2.0/y.txt"
        rule fit:
            input: "data/{model}.csv"
            output: "res/{model}/{alpha}/{model}.txt", log="res/{model}/{alpha}.log"
            shell: "fit {wildcards.alpha} > {output[0]} 2> {output.log}"
        ''')
    ws.write("data/x.csv", "")
    error = _error(ws)
    assert "missing target 'res/x/2.0/y.txt' of rule 'all'" in error, "a repeated wildcard must repeat its value"
    ws.write("Pivotfile", ws.read("Pivotfile").replace("res/x/2.0/y.txt", "res/x/2.0/x.txt"))
    (stage,) = _load(ws)
    assert stage.name == "fit@x-2.0", "values in order of first appearance in the outputs"
    assert stage.group == "fit"
    assert [o.path for o in stage.outs] == ["res/x/2.0/x.txt", "res/x/2.0.log"]
    assert stage.cmds == ("fit 2.0 > res/x/2.0/x.txt 2> res/x/2.0.log",)


def test_outputs_must_share_wildcards(ws) -> None:
    ws.write("Pivotfile", 'rule r:\n    output: "{a}/{b}.txt", "{a}.log"\n    shell: "t"\n')
    assert "this one lacks {b}" in _error(ws)


def test_constraints_choose_between_rules(ws) -> None:
    ws.write("Pivotfile", '''\
        rule all:
            input: "out/123.txt", "out/abc.txt"
        rule numbers:
            output: "out/{id,[0-9]+}.txt"
            shell: "echo n > {output}"
        rule words:
            output: "out/{name,[a-z]{3}}.txt"
            shell: "echo w > {output}"
        ''')
    assert [s.name for s in _load(ws)] == ["numbers@123", "words@abc"]


def test_backward_resolution_chains_and_needed_paths(ws) -> None:
    ws.write("Pivotfile", '''\
        rule a:
            input: "raw/{s}.txt"
            output: "mid/{s}.txt"
            shell: "cp {input} {output}"
        rule b:
            input: "mid/{s}.txt"
            output: "final/{s}.txt"
            shell: "cp {input} {output}"
        ''')
    ws.write("raw/one.txt", "")
    assert _load(ws) == [], "nothing asks for a wildcard rule"
    stages = _load(ws, needed=["final/one.txt", "unrelated.txt"])
    assert [s.name for s in stages] == ["a@one", "b@one"], "needed file resolved backwards"


def test_directory_output_produces_files_inside(ws) -> None:
    ws.write("Pivotfile", '''\
        rule all:
            input: "plots/run1/fig.png"
        rule plot:
            output: directory("plots/{run}")
            shell: "mkdir -p {output}"
        ''')
    assert [s.name for s in _load(ws)] == ["plot@run1"]


def test_provided_paths_are_not_missing(ws) -> None:
    ws.write("Pivotfile", 'rule all:\n    input: "from_dvc/x.txt"\n')
    assert "missing target 'from_dvc/x.txt'" in _error(ws)
    assert _load(ws, provided={"from_dvc"}) == [], "inside another pipeline's output"


def test_ambiguity_names_both_rules(ws) -> None:
    ws.write("Pivotfile", '''\
        rule all:
            input: "out/a.txt"
        rule one:
            output: "out/{x}.txt"
            shell: "touch {output}"
        rule two:
            output: "{dir}/a.txt"
            shell: "touch {output}"
        ''')
    error = _error(ws)
    assert "'out/a.txt' (wanted by rule 'all' (Pivotfile:1)) can be produced by" in error, error
    assert "rule 'one' (Pivotfile:3) and rule 'two' (Pivotfile:6)" in error, error
    assert "constraint" in error, "suggests the fix"


def test_missing_target_names_file_and_rule(ws) -> None:
    ws.write("Pivotfile", '''\
        rule all:
            input: "out/a.txt", "out/b.bin"
        rule make:
            input: "src/{x}.c"
            output: "out/{x}.txt"
            shell: "cc {input} > {output}"
        ''')
    error = _error(ws)
    assert error.startswith("Pivotfile:2:25: missing target 'out/b.bin' of rule 'all' (Pivotfile:1)"), error
    assert "no rule produces it and it does not exist" in error


def test_missing_source_files_are_missing_deps(ws) -> None:
    # A fresh clone before its data is pulled: the stages are made all the
    # same, as a dvc.yaml's are; `status` reports the deps deleted.
    ws.write("Pivotfile", '''\
        rule all:
            input: "out/a.txt"
        rule prepare:
            input: "data/data.xml", "src/prepare.py"
            output: "data/prepared.csv"
            shell: "python src/prepare.py data/data.xml"
        rule make:
            input: "src/{x}.c"
            output: "out/{x}.txt"
            shell: "cc {input} > {output}"
        ''')
    stages = _by_name(_load(ws))
    assert list(stages) == ["prepare", "make@a"]
    assert [d.path for d in stages["prepare"].deps] == ["data/data.xml", "src/prepare.py"]
    assert [d.path for d in stages["make@a"].deps] == ["src/a.c"]


def test_cycles_are_reported_by_the_graph(ws) -> None:
    ws.write("Pivotfile", '''\
        rule all:
            input: "x.a"
        rule a:
            input: "{n}.b"
            output: "{n}.a"
            shell: "cp {input} {output}"
        rule b:
            input: "{n}.a"
            output: "{n}.b"
            shell: "cp {input} {output}"
        ''')
    stages = _load(ws)
    assert [s.name for s in stages] == ["a@x", "b@x"]
    with pytest.raises(PipelineError, match="cycle"):
        graph.build_pipeline(stages)


def test_periodic_wildcards_stop_with_an_error(ws, monkeypatch) -> None:
    from pivot.frontends import pivotfile_resolve

    monkeypatch.setattr(pivotfile_resolve, "MAX_RESOLUTION_DEPTH", 50)
    ws.write("Pivotfile", '''\
        rule all:
            input: "a.txt"
        rule grow:
            input: "{x}.txt.txt"
            output: "{x}.txt"
            shell: "cp {input} {output}"
        ''')
    assert "goes deeper than 50 levels" in _error(ws)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "text, where, fragment",
    [
        pytest.param('rule r:\n    inptu: "a"\n    shell: "x"\n', "2:5", "unknown section 'inptu' in rule 'r' (expected one of: input,", id="unknown-section"),
        pytest.param('X = Y\n', "1:5", "unknown variable 'Y'", id="unknown-variable"),
        pytest.param('X = glob("*")\n', "1:5", "unknown function 'glob'", id="unknown-function"),
        pytest.param('rule r:\n    shell: "a"\nrule r:\n    shell: "b"\n', "3:6", "duplicate rule name 'r' (first defined at Pivotfile:1)", id="duplicate-rule"),
        pytest.param('rule r:\n    output: "{x,[a-}.txt"\n    shell: "t"\n', "2:13", "bad constraint for wildcard 'x'", id="bad-constraint"),
        pytest.param('rule r:\n    output: "{1x}.txt"\n    shell: "t"\n', "2:13", "bad wildcard '{1x}'", id="bad-wildcard-name"),
        pytest.param('rule r:\n    output: "a}.txt"\n    shell: "t"\n', "2:13", "single '}' in pattern", id="lone-brace"),
        pytest.param('rule r:\n    input: "{y}.in"\n    output: "{x}.txt"\n    shell: "t"\n', "2:12", "wildcard '{y}' in the input of rule 'r' does not appear in its output", id="input-wildcard"),
        pytest.param('rule r:\n    output: "o"\n    shell: "cat {inputs}"\n', "3:12", "unknown placeholder '{inputs}' in rule 'r'", id="unknown-placeholder"),
        pytest.param('rule r:\n    input: "a"\n    shell: "cat {input[1]}"\n', "3:12", "rule 'r' has 1 input item(s)", id="index-out-of-range"),
        pytest.param('rule r:\n    input: a="a"\n    shell: "cat {input.b}"\n', "3:12", "no input named 'b' (named: a)", id="unknown-named-input"),
        pytest.param('rule r:\n    output: "{x}"\n    shell: "echo {wildcards.y}"\n', "3:12", "has no wildcard 'y' (its outputs define: x)", id="unknown-wildcard"),
        pytest.param('configfile: "c.yaml"\nrule r:\n    shell: "echo {config.a.c}"\n', "3:12", "config has no key 'a.c'", id="unknown-config-key"),
        pytest.param('rule r:\n    shell: "echo {"\n', "2:12", "single '{' in shell command", id="single-brace"),
        pytest.param('rule r:\n    output: "o"\n', "1:6", "rule 'r' has an output but no shell command", id="no-shell"),
        pytest.param('rule r:\n    shell: "a"\n    shell: "b"\n', "3:5", "section 'shell' given twice", id="section-twice"),
        pytest.param('rule r:\n    frozen: "yes"\n    shell: "b"\n', "2:13", "'frozen' must be a bool, not a string", id="frozen-not-bool"),
        pytest.param('rule r:\n    input: metric("m")\n    shell: "b"\n', "2:12", "metric() marks outputs, not inputs", id="marker-on-input"),
        pytest.param('rule r:\n    output: 3\n    shell: "b"\n', "2:13", "expected a path string, not number", id="number-path"),
        pytest.param('rule r:\n    wdir: "{x}"\n    shell: "b"\n', "2:5", "wdir cannot contain wildcards", id="wdir-wildcard"),
        pytest.param('X = expand("{a}{b}", a=["1"])\n', "1:5", "expand(): no values for {b}", id="expand-missing"),
        pytest.param('configfile: "nope.yaml"\n', "1:13", "configfile 'nope.yaml' does not exist", id="missing-configfile"),
        pytest.param('include: "Pivotfile"\n', "1:10", "include cycle: Pivotfile -> Pivotfile", id="include-cycle"),
        pytest.param('config = 1\n', "1:1", "'config' is reserved", id="reserved-name"),
        pytest.param('rule "a@b":\n    output: "{x}"\n    shell: "t"\n', "1:6", "cannot contain '@'", id="wildcard-rule-with-at"),
    ],
)
def test_errors_name_file_line_and_column(ws, text: str, where: str, fragment: str) -> None:
    ws.write("Pivotfile", text)
    ws.write("c.yaml", "a: {b: 1}\n")
    error = _error(ws)
    assert error.startswith(f"Pivotfile:{where}: "), error
    assert fragment in error, error
    assert "\n    " in error and error.rstrip().endswith("^"), "source line and caret"


def test_errors_in_included_files_name_that_file(ws) -> None:
    ws.write("Pivotfile", 'include: "sub/rules.pf"\n')
    ws.write("sub/rules.pf", "\nX = [1,\n")
    assert _error(ws).startswith("sub/rules.pf:"), "the included file is named"


def test_bad_configfile_yaml_names_the_line(ws) -> None:
    ws.write("Pivotfile", 'configfile: "c.yaml"\n')
    ws.write("c.yaml", "a: 1\nb: [\n")
    assert _error(ws).startswith("c.yaml:"), "the YAML file and line"
