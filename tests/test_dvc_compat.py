"""dvc.yaml inputs DVC 3.67.1 refuses (or cannot run), and graph selection as DVC does it.

Expected messages were observed once with real DVC (`dvc status` / `dvc repro --dry`)."""

from __future__ import annotations

import pytest

from pivot import graph
from pivot.frontends import load_pipeline
from pivot.project import Project


def error_of(ws, dvc_yaml: str, **files: str) -> str:
    ws.write("dvc.yaml", dvc_yaml)
    for relpath, text in files.items():
        ws.write(relpath.replace("__", "/"), text)
    result = ws.pivot("list", expect=None)
    assert result.exit_code != 0, result.stdout
    assert "Traceback" not in result.stderr
    return result.stderr


@pytest.mark.parametrize("section", ["plots", "metrics"])
def test_out_in_two_sections_fails_like_dvc(ws, section):
    # DVC: "output 'a.txt' is already specified in stage: 's'."
    err = error_of(ws, f"stages:\n  s:\n    cmd: echo > a.txt\n    outs: [a.txt]\n    {section}: [a.txt]\n")
    assert "output 'a.txt' is already specified in stage: 's'." in err and "'dvc.yaml'" in err


def test_duplicates_within_one_section_still_collapse(ws):
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: echo\n    outs: [a.txt, a.txt, {a.txt: {cache: false}}]\n")
    (stage,) = ws.pivot_json("list")["stages"]
    assert [out["path"] for out in stage["outs"]] == ["a.txt"]


def test_empty_stage_name(ws):
    # DVC: "Stage name not provided."
    assert "Stage name not provided" in error_of(ws, 'stages:\n  "":\n    cmd: echo\n')


def test_at_sign_in_stage_name(ws):
    # DVC loads it, then cannot find 's@a' ("Stage 's@a' not found inside 'dvc.yaml' file")
    err = error_of(ws, "stages:\n  s@a:\n    cmd: echo\n")
    assert "'stages.s@a'" in err and "dvc.yaml:2" in err and "'@'" in err


def test_empty_matrix(ws):
    # DVC: "unexpected error" (an AssertionError while collecting)
    assert "'stages.s.matrix'" in error_of(ws, "stages:\n  s:\n    matrix: {}\n    cmd: echo\n")


@pytest.mark.parametrize(("section", "value", "kind"), [("outs", "5", "int"), ("deps", "true", "bool"), ("metrics", "1.5", "float")])
def test_whole_value_non_string_path(ws, section, value, kind):
    # DVC: "'int' not supported." (and for a bool: "'bool' object has no attribute 'decode'")
    err = error_of(ws, f"vars:\n  - n: {value}\nstages:\n  s:\n    cmd: echo\n    {section}: ['${{n}}']\n")
    assert f"'stages.s.{section}'" in err and f"'{kind}' not supported." in err


@pytest.mark.parametrize(("var", "kind"), [("true", "bool"), ("{x: 1}", "dict"), ("5", "int")])
def test_non_string_cmd_item_after_interpolation(ws, var, kind):
    # DVC keeps the non-string in the cmd list and fails only when running it
    err = error_of(ws, f"vars:\n  - v: {var}\nstages:\n  s:\n    cmd: ['${{v}}', 'echo x']\n")
    assert "'stages.s.cmd'" in err and f"got {kind}" in err


def test_string_interpolation_inside_cmd_item_still_renders(ws):
    ws.write("dvc.yaml", "vars:\n  - v: true\nstages:\n  s:\n    cmd: ['echo ${v}']\n")
    (stage,) = ws.pivot_json("list")["stages"]
    assert stage["cmd"] == ["echo true"]


def test_malformed_dvc_config_is_an_error(ws):
    # DVC: "config file error: Invalid line ('[core') (matched as neither section nor keyword) at line 3."
    ws.write(".dvc/config", "[core]\n    no_scm = True\n[core\nx=1\n")
    err = error_of(ws, "stages:\n  s:\n    cmd: echo\n")
    assert "config file error in '.dvc/config':3" in err and "'[core'" in err


def test_well_formed_dvc_config_with_multiline_value(ws):
    ws.write(".dvc/config", "[core]\n  remote = x\n  note = '''first\nsecond'''\n['remote \"x\"']\n  url = /tmp/x\n[parsing]\n  bool = boolean_optional\n")
    ws.write("dvc.yaml", "vars:\n  - d: {f: false}\nstages:\n  s:\n    cmd: run ${d}\n")
    (stage,) = ws.pivot_json("list")["stages"]
    assert stage["cmd"] == ["run --no-f"]


# -- recursive YAML aliases: a clear file:line error, never a RecursionError ----------

RECURSIVE = "a: &x\n  b: *x\n"


def test_recursive_alias_in_params(ws):
    err = error_of(ws, "stages:\n  s:\n    cmd: echo ${a.b}\n", **{"params.yaml": RECURSIVE})
    assert "params.yaml:1: recursive alias" in err


def test_recursive_alias_in_dvc_yaml(ws):
    err = error_of(ws, "x: &x\n  y: [*x]\nstages:\n  s:\n    cmd: echo\n    meta: *x\n")
    assert "dvc.yaml:1: recursive alias" in err


def test_recursive_alias_in_params_dep(ws):
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: echo\n    params: [{p.yaml: [a]}]\n")
    ws.write("p.yaml", RECURSIVE)
    result = ws.pivot("status", expect=None)
    assert result.exit_code != 0 and "p.yaml:1: recursive alias" in result.stderr


def test_shared_aliases_are_fine(ws):
    ws.write("params.yaml", "base: &b {lr: 1}\none: *b\ntwo: {inner: *b}\n")
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: echo ${two.inner.lr}\n")
    (stage,) = ws.pivot_json("list")["stages"]
    assert stage["cmd"] == ["echo 1"]


def test_recursion_error_is_one_line(ws):
    import sys

    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: echo\n")
    script = (
        "import sys, pivot.frontends as f\n"
        "def boom(*a, **k):\n    raise RecursionError('deep')\n"
        "f.load_pipeline = boom\n"
        "from pivot.cli import main\nsys.argv = ['pivot', 'list']\nmain()\n"
    )
    import subprocess

    proc = subprocess.run([sys.executable, "-c", script], cwd=ws.root, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.startswith("ERROR: ") and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


# -- --downstream stops at frozen stages (DVC drops a frozen stage's upstream edges) ----

CHAIN = """\
stages:
  a:
    cmd: echo a > a.txt
    outs: [a.txt]
  b:
    cmd: cat a.txt > b.txt
    deps: [a.txt]
    outs: [b.txt]
    frozen: true
  c:
    cmd: cat b.txt > c.txt
    deps: [b.txt]
    outs: [c.txt]
"""


def test_downstream_closure_stops_at_frozen(ws):
    ws.write("dvc.yaml", CHAIN)
    pipeline = load_pipeline(Project(root=ws.root, cwd=ws.root))
    assert graph.downstream_closure(pipeline, ["a"]) == {"a"}
    assert graph.downstream_closure(pipeline, ["b"]) == {"b", "c"}


def test_plan_downstream_selects_only_the_target(ws):
    ws.write("dvc.yaml", CHAIN)
    data = ws.pivot_json("plan", "--downstream", "a")
    assert [stage["address"] for stage in data["stages"]] == ["a"]
