"""``pivot plan`` and ``pivot why`` on a real dvc.yaml."""

from __future__ import annotations


import pytest

DVC_YAML = """\
stages:
  prep:
    cmd: cp in.txt prep.txt
    deps: [in.txt]
    params: [lr]
    outs: [prep.txt]
  train:
    cmd: cp prep.txt model.txt
    deps: [prep.txt]
    outs: [model.txt]
  other:
    cmd: cp in.txt other.txt
    deps: [in.txt]
    outs: [other.txt]
"""


@pytest.fixture
def project(ws):
    ws.write("dvc.yaml", DVC_YAML)
    ws.write("params.yaml", "lr: 0.1\n")
    ws.write("in.txt", "in\n")
    for name in ("prep", "model", "other"):
        ws.write(f"{name}.txt", "in\n")
    ws.pivot("commit", "-q")
    return ws


def test_plan_up_to_date_and_check(project):
    assert project.pivot("plan").stdout == "0 to run, 3 up to date.\n"
    project.pivot("plan", "--check")


def test_plan_lists_runs_with_reasons_in_order(project):
    project.write("params.yaml", "lr: 0.2\n")
    result = project.pivot("plan", "--check", expect=1)
    assert result.stdout == (
        "run       prep\n"
        "            - param 'lr' in 'params.yaml' modified\n"
        "run       train\n"
        "            - upstream stage 'prep' will rerun\n"
        "2 to run, 1 up to date (1 param modified, 1 upstream).\n"
    )


def test_plan_json_shape(project):
    (project.root / "other.txt").unlink()
    data = project.pivot_json("plan")
    assert data["summary"] == {"run": 0, "checkout": 1, "restore_run": 0, "up_to_date": 2, "frozen": 0,
                               "record_frozen": 0, "adopted": 0, "by_reason": {"out_missing": 1}}
    other = next(s for s in data["stages"] if s["address"] == "other")
    assert other["action"] == "checkout"
    assert other["reasons"] == [{"kind": "out_missing", "text": "out 'other.txt' missing",
                                 "path": "other.txt", "old": other["reasons"][0]["old"]}]


def test_plan_force_and_targets(project):
    data = project.pivot_json("plan", "train", "-f")
    assert [(s["address"], s["action"]) for s in data["stages"]] == [("prep", "run"), ("train", "run")]
    assert data["summary"]["by_reason"] == {"forced": 2}
    project.write("in.txt", "new\n")
    data = project.pivot_json("plan", "prep", "--downstream")
    assert [s["address"] for s in data["stages"]] == ["prep", "train"]


def test_why_explains_hashes_values_and_command(project):
    project.write("params.yaml", "lr: 0.5\n")
    project.write("in.txt", "changed\n")
    project.write("dvc.yaml", DVC_YAML.replace("cp in.txt prep.txt", "cp -v in.txt prep.txt"))
    out = project.pivot("why", "prep").stdout
    assert out.startswith("Stage 'prep' will run:\n")
    assert "  command changed:\n    -cp in.txt prep.txt\n    +cp -v in.txt prep.txt\n" in out
    assert "  dep 'in.txt' modified: " in out and " -> " in out
    assert "  param 'lr' in 'params.yaml' modified: 0.1 -> 0.5\n" in out
    why_train = project.pivot("why", "train").stdout
    assert why_train == "Stage 'train' will run:\n  upstream stage 'prep' will rerun\n"
    assert project.pivot("why", "other").stdout.startswith("Stage 'other' will run:\n  dep 'in.txt' modified: ")


def test_why_up_to_date(project):
    assert project.pivot("why", "train").stdout == "Stage 'train' is up to date.\n"


def test_commands_do_not_import_jinja_or_lark(project):
    code = ("import sys, runpy; sys.argv=['pivot','status']\n"
            "try: runpy.run_module('pivot', run_name='__main__')\n"
            "except SystemExit: pass\n"
            "assert 'jinja2' not in sys.modules and 'lark' not in sys.modules, sorted(sys.modules)")
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", code], cwd=project.root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
