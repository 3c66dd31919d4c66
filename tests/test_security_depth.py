"""Issue 11, item 12: deeply nested input either loads (as DVC loads a
params file thousands of levels deep) or fails with one line naming the
file -- never the anonymous "recursion limit reached"."""

from __future__ import annotations

import json
import sys

import pytest

RECURSION_MESSAGE = "recursion limit reached"


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _one_line_error(result, *fragments: str) -> str:
    assert result.exit_code != 0, result.output
    error = result.stderr.strip()
    assert error.startswith("ERROR: ") and "\n" not in error and "Traceback" not in result.output, error
    assert RECURSION_MESSAGE not in error
    for fragment in fragments:
        assert fragment in error, error
    return error


@pytest.mark.parametrize("name, text", [
    ("params.json", '{"lr": 0.5, "deep": %s}' % _nested(3000)),
    ("params.toml", "lr = 0.5\ndeep = %s\n" % _nested(3000)),
    ("params.yaml", "lr: 0.5\ndeep: %s\n" % _nested(900)),  # libyaml stops at 1,000 levels
])
def test_a_deep_params_file_loads_for_its_tracked_keys(ws, name, text) -> None:
    limit = sys.getrecursionlimit()
    ws.write(name, text)
    ws.write("dvc.yaml", f"stages:\n  train:\n    cmd: echo lr > model.txt\n"
                         f"    params: [{{{name}: [lr]}}]\n    outs: [model.txt]\n")
    ws.pivot("run")
    record = json.loads(ws.read(".pivot/locks/train.json"))
    assert record["params"][name] == {"lr": 0.5}
    assert ws.pivot_json("status") == {}
    assert sys.getrecursionlimit() == limit  # raised only while parsing, then restored


def test_deep_vars_interpolate(ws) -> None:
    ws.write("params.json", '{"lr": 0.5, "deep": %s}' % _nested(3000))
    ws.write("dvc.yaml", "vars: [params.json]\nstages:\n  train:\n    cmd: echo ${lr} > model.txt\n"
                         "    outs: [model.txt]\n")
    ws.pivot("run")
    assert ws.read("model.txt") == "0.5\n"


def test_a_deep_default_params_yaml_is_merged_into_the_variables(ws) -> None:
    ws.write("params.yaml", "lr: 0.5\ndeep: %s\n" % _nested(900))
    ws.write("dvc.yaml", "stages:\n  train:\n    cmd: echo ${lr} > model.txt\n    outs: [model.txt]\n")
    ws.pivot("run")
    assert ws.read("model.txt") == "0.5\n"


def test_tracking_a_deep_file_whole_names_the_file(ws) -> None:
    ws.write("params.json", '{"lr": 0.5, "deep": %s}' % _nested(3000))
    ws.write("dvc.yaml", "stages:\n  train:\n    cmd: echo > model.txt\n    params: [{params.json: }]\n"
                         "    outs: [model.txt]\n")
    _one_line_error(ws.pivot("status", expect=None), "params file 'params.json'", "nested too deeply")


def test_a_params_file_deeper_than_anything_readable_names_the_file(ws) -> None:
    ws.write("params.json", '{"lr": 0.5, "deep": %s}' % _nested(200_000))
    ws.write("dvc.yaml", "stages:\n  train:\n    cmd: echo > model.txt\n    params: [{params.json: [lr]}]\n"
                         "    outs: [model.txt]\n")
    _one_line_error(ws.pivot("status", expect=None), "'params.json' is nested too deeply")


def test_a_deep_value_in_dvc_yaml_names_the_file_and_key(ws) -> None:
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: echo\n    meta: %s\n" % _nested(900))
    _one_line_error(ws.pivot("status", expect=None), "'stages.s.meta'", "'dvc.yaml'", "nested too deeply")


def test_a_deep_foreach_names_the_file_and_stage(ws) -> None:
    ws.write("dvc.yaml", "stages:\n  s:\n    foreach: %s\n    do:\n      cmd: echo\n" % _nested(900))
    _one_line_error(ws.pivot("status", expect=None), "'stages.s'", "'dvc.yaml'", "nested too deeply")


def test_five_thousand_brackets_in_a_pivotfile_give_file_and_line(ws) -> None:
    ws.write("Pivotfile", 'rule r:\n    shell: "true"\nx = %s\n' % _nested(5000))
    result = ws.pivot("status", expect=None)
    assert result.exit_code != 0 and "Traceback" not in result.output
    first, *context = result.stderr.splitlines()
    assert first == ("ERROR: Pivotfile:3:5: brackets and calls nested too deeply to evaluate"
                     " (keep nesting under a few hundred levels)")
    assert RECURSION_MESSAGE not in result.stderr
    assert all(len(line) < 200 for line in context)  # the 10,000-character line is cut to the point

