"""`pivot list` and `pivot dag` on real workspaces."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PIPELINE = """\
stages:
  prepare:
    cmd: python prep.py
    deps: [data/raw.csv]
    outs: [data/clean]
  train:
    foreach: [cnn, rnn]
    do:
      cmd: train ${item}
      deps: [data/clean]
      params: [lr]
      outs:
        - models/${item}.pkl
      metrics:
        - metrics/${item}.json: {cache: false}
"""


def test_list_json_shape(ws):
    ws.write("dvc.yaml", PIPELINE)
    ws.write("sub/dvc.yaml", "stages:\n  report:\n    cmd: cat ../models/cnn.pkl\n    wdir: .\n    deps: [../models/cnn.pkl]\n")
    data = ws.pivot_json("list")
    stages = {s["address"]: s for s in data["stages"]}
    assert list(stages) == ["prepare", "train@cnn", "train@rnn", "sub/dvc.yaml:report"]
    assert stages["train@cnn"] == {
        "address": "train@cnn",
        "name": "train@cnn",
        "file": "dvc.yaml",
        "wdir": ".",
        "cmd": ["train cnn"],
        "deps": ["data/clean"],
        "params": {"params.yaml": ["lr"]},
        "outs": [
            {"path": "models/cnn.pkl", "cache": True, "persist": False, "kind": "out"},
            {"path": "metrics/cnn.json", "cache": False, "persist": False, "kind": "metric"},
        ],
        "frozen": False,
        "always_changed": False,
    }
    report = stages["sub/dvc.yaml:report"]
    assert report["wdir"] == "sub"
    assert report["deps"] == ["models/cnn.pkl"]


def test_list_text_describes_like_dvc(ws):
    ws.write("dvc.yaml", PIPELINE + "  note:\n    cmd: echo hi\n    desc: |\n      First line\n      second\n")
    out = ws.pivot("list").stdout.splitlines()
    assert out[0].split() == ["prepare", "Outputs", "data/clean"]
    assert out[1].startswith("train@cnn") and out[1].endswith("Outputs models/cnn.pkl; Reports metrics/cnn.json")
    assert out[-1].split(None, 1) == ["note", "First line"]


def test_list_targets_group_and_output(ws):
    ws.write("dvc.yaml", PIPELINE)
    assert [s["address"] for s in ws.pivot_json("list", "train")["stages"]] == ["train@cnn", "train@rnn"]
    assert [s["address"] for s in ws.pivot_json("list", "data/clean")["stages"]] == ["prepare"]


def test_list_from_subdirectory_keeps_root_relative_addresses(ws):
    ws.write("dvc.yaml", PIPELINE)
    ws.write("sub/dvc.yaml", "stages:\n  s:\n    cmd: echo\n")
    (ws.root / ".dvc").mkdir()
    data = ws.pivot_json("list", cwd="sub")
    assert [s["address"] for s in data["stages"]][-1] == "sub/dvc.yaml:s"


def test_error_is_one_line_no_traceback(ws):
    ws.write("dvc.yaml", "stages:\n  a:\n    cmd: echo ${nope.x}\n")
    proc = ws.pivot_proc("list", check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "failed to parse 'stages.a.cmd' in 'dvc.yaml': Could not find 'nope.x'" in proc.stderr


def test_list_does_not_import_jinja2_or_lark(ws):
    ws.write("dvc.yaml", PIPELINE)
    script = (
        "import sys\n"
        "from pivot.cli import main\n"
        "sys.argv = ['pivot', 'list', '--json']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "bad = [m for m in ('jinja2', 'lark') if m in sys.modules]\n"
        "print('HEAVY', bad, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ws.root, capture_output=True, text=True)
    assert "HEAVY []" in proc.stderr, proc.stderr
    assert json.loads(proc.stdout)["stages"]


def test_dag_formats(ws):
    ws.write("dvc.yaml", PIPELINE)
    dot = ws.pivot("dag", "--dot").stdout
    assert dot.startswith("strict digraph {\n")
    assert '"prepare" -> "train@cnn";' in dot and '"prepare" -> "train@rnn";' in dot
    assert dot.rstrip().endswith("}")
    mermaid = ws.pivot("dag", "--mermaid").stdout.splitlines()
    assert mermaid[0] == "flowchart TD"
    assert '\tnode1["prepare"]' in mermaid and "\tnode1-->node2" in mermaid
    text = ws.pivot("dag", "train@rnn").stdout.splitlines()
    assert text == ["prepare", "train@rnn  <- prepare"]


@pytest.mark.parametrize(
    "dvcyaml, phrase",
    [
        ("stages:\n  a:\n    cmd: echo\n    outs: [x]\n  b:\n    cmd: echo\n    outs: [x]\n", "output 'x' is specified in"),
        ("stages:\n  a:\n    cmd: echo\n    deps: [y]\n    outs: [x]\n  b:\n    cmd: echo\n    deps: [x]\n    outs: [y]\n", "cycle"),
        ("stages:\n  a:\n    cmd: echo\n    deps: [x]\n    outs: [x]\n", "both a dependency and an output"),
    ],
)
def test_dag_errors_are_clear(ws, dvcyaml, phrase):
    ws.write("dvc.yaml", dvcyaml)
    result = ws.pivot("dag", expect=1)
    assert phrase in result.stderr
