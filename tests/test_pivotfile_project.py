"""Pivotfiles inside a project: next to dvc.yaml files, through the CLI, run for real."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import python3_only_env

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "pivotfile"

# dvc.yaml prepares data the Pivotfile counts; dvc.yaml's summary reads a
# file only a Pivotfile wildcard rule can make.
MIXED_DVC_YAML = """\
stages:
  prepare:
    cmd: mkdir -p data && printf 'a b\\nc\\n' > data/x.txt && printf 'd\\n' > data/y.txt
    outs:
      - data
  summary:
    cmd: cat counts/x.n counts/y.n > summary.txt
    deps:
      - counts/x.n
      - counts/y.n
    outs:
      - summary.txt
"""

MIXED_PIVOTFILE = """\
rule count:
    input: "data/{name}.txt"
    output: "counts/{name}.n"
    shell: "mkdir -p counts && wc -l < {input} > {output}"

rule total:
    input: "summary.txt"
    output: "total.txt"
    shell: "wc -l < {input} > {output}"
"""


def _mixed(ws) -> None:
    ws.write("dvc.yaml", MIXED_DVC_YAML)
    ws.write("Pivotfile", MIXED_PIVOTFILE)


def test_mixed_project_lists_both_front_ends(ws) -> None:
    _mixed(ws)
    listed = ws.pivot("list", "--name-only").stdout.split()
    assert listed == ["prepare", "summary", "count@x", "count@y", "total"], listed


def test_mixed_project_dag_links_across_files(ws) -> None:
    _mixed(ws)
    dag = ws.pivot("dag", "--dot").stdout
    for edge in ('"prepare" -> "count@x"', '"count@y" -> "summary"', '"summary" -> "total"'):
        assert edge in dag, f"{edge} in:\n{dag}"


def test_file_target_instantiates_a_wildcard_rule(ws) -> None:
    ws.write("Pivotfile", MIXED_PIVOTFILE.replace("rule total", "rule unused_total"))
    ws.write("data/z.txt", "1\n2\n")
    ws.write("summary.txt", "")
    assert ws.pivot("list", "--name-only").stdout.split() == ["unused_total"], "nothing asks for counts yet"
    listed = ws.pivot("list", "--name-only", "counts/z.n").stdout.split()
    assert listed == ["count@z"], "the command-line file resolved the rule"


def test_address_clash_with_dvc_yaml_is_clear(ws) -> None:
    ws.write("dvc.yaml", "stages:\n  build:\n    cmd: 'true'\n")
    ws.write("Pivotfile", 'rule build:\n    shell: "true"\n')
    result = ws.pivot("list", expect=1)
    assert "stage 'build' is defined twice (dvc.yaml:" in result.stderr and "Pivotfile:1)" in result.stderr, result.stderr


def test_included_pivotfile_is_loaded_once(ws) -> None:
    ws.write("Pivotfile", 'include: "sub/Pivotfile"\n')
    ws.write("sub/Pivotfile", 'rule inner:\n    output: "o.txt"\n    shell: "touch {output}"\n')
    assert ws.pivot("list", "--name-only").stdout.split() == ["inner"]


def test_subdirectory_pivotfile_addresses(ws) -> None:
    ws.write("sub/Pivotfile", 'rule inner:\n    output: "o.txt"\n    shell: "touch {output}"\n')
    assert ws.pivot("list", "--name-only").stdout.split() == ["sub/Pivotfile:inner"]
    assert ws.pivot("list", "--name-only", cwd="sub").stdout.split() == ["inner"], "as DVC, relative to the cwd"


def test_syntax_error_reaches_the_user_without_traceback(ws) -> None:
    ws.write("Pivotfile", "rule r:\n    shell: 'x'\n    bogus: 1\n")
    proc = ws.pivot_proc("list", check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("ERROR: Pivotfile:3:5: unknown section 'bogus'"), proc.stderr
    assert "Traceback" not in proc.stderr


def test_list_without_pivotfile_does_not_import_lark(ws) -> None:
    ws.write("dvc.yaml", "stages:\n  a:\n    cmd: 'true'\n")
    code = "import sys; from pivot.cli import main; sys.argv=['pivot','list']\ntry: main()\nexcept SystemExit: pass\nprint('lark' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ws.root, capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("False"), out.stdout


def test_list_of_pivotfiles_alone_does_not_import_yaml(ws) -> None:
    ws.write("Pivotfile", 'rule a:\n    output: "a.txt"\n    shell: "touch {output}"\n')
    code = ("import sys; from pivot.cli import main; sys.argv=['pivot','list']\ntry: main()\nexcept SystemExit: pass\n"
            "print('yaml' in sys.modules, 'pivot.frontends.dvcyaml' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ws.root, capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "False False", out.stdout


def test_a_broken_dvc_config_is_an_error_with_pivotfiles_alone_too(ws) -> None:
    ws.write("Pivotfile", 'rule a:\n    output: "a.txt"\n    shell: "touch {output}"\n')
    ws.write(".dvc/config", "[core\n")
    proc = ws.pivot_proc("list", check=False)
    assert proc.returncode == 1 and "config file error in '.dvc/config':1" in proc.stderr, proc.stderr


@pytest.mark.slow
def test_mixed_project_runs_end_to_end(ws) -> None:
    _mixed(ws)
    ws.pivot_proc("run")
    assert ws.read("counts/x.n").strip() == "2"
    assert ws.read("summary.txt").split() == ["2", "1"]
    assert ws.read("total.txt").strip() == "2"
    again = ws.pivot_proc("run")
    assert "0 ran" in again.stdout + again.stderr, "a second run is a no-op"


@pytest.mark.slow
def test_example_runs_and_is_up_to_date_after(ws, tmp_path) -> None:
    shutil.copytree(EXAMPLE, ws.root, dirs_exist_ok=True)
    env = python3_only_env(tmp_path)
    ws.pivot_proc("run", env=env)
    summary = json.loads(ws.read("report/summary.json"))
    assert set(summary) == {"en", "de"} and all(v > 0 for v in summary.values()), summary
    ws.write("params.yaml", ws.read("params.yaml").replace("top: 3", "top: 1"))
    rerun = ws.pivot_proc("run", env=env)
    output = rerun.stdout + rerun.stderr
    assert "ran count@en" in output and "ran clean@en" not in output, output
