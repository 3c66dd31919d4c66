"""One reader per file format: params files (state), vars files (dvc.yaml)
and configfiles (Pivotfile) are read by `pivot.formats`, so a file means
the same everywhere and a bad one gives the same one-line error."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pivot import formats

UNHASHABLE = """\
EPOCHS = 10
BAD = {[1]: 2}
"""


def _as_vars(ws, filename: str) -> None:
    ws.write("dvc.yaml", f"""\
        vars: [{filename}]
        stages:
          train:
            cmd: echo ${{EPOCHS}}
            outs: [model.bin]
        """)


def _as_params(ws, filename: str) -> None:
    ws.write("dvc.yaml", f"""\
        stages:
          train:
            cmd: echo train > model.bin
            params: [{{{filename}: [EPOCHS]}}]
            outs: [model.bin]
        """)


def _one_line_error(result) -> str:
    assert result.exit_code == 1, result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), result.stderr
    return lines[0]


# ---------------------------------------------------------------- the reproduction of issue 12


def test_an_unhashable_literal_in_a_py_vars_file_is_an_error_naming_the_line(ws):
    ws.write("params.py", UNHASHABLE)
    _as_vars(ws, "params.py")
    error = _one_line_error(ws.pivot("list", expect=None))
    assert "params.py:2: 'BAD' is not a value: unhashable type: 'list'" in error


def test_the_same_file_as_a_params_file_gives_the_same_error(ws):
    """DVC stops on this file in both roles (its .py reader skips only
    what is not a literal); pivot read it as params and crashed as vars."""
    ws.write("params.py", UNHASHABLE)
    _as_params(ws, "params.py")
    error = _one_line_error(ws.pivot("status", expect=None))
    assert "params.py:2: 'BAD' is not a value: unhashable type: 'list'" in error


# ---------------------------------------------------------------- one meaning everywhere

PY_PARAMS = """\
import os

EPOCHS = 10
A = B = 3               # several targets: DVC skips it
HOME = os.environ["HOME"]  # not a literal: skipped
SIZE: int = 64
LAYERS = [32, 16]


class Train:
    lr = 0.5

    def __init__(self):
        self.momentum = 0.9
        local = 1       # not self.NAME: skipped
"""


def test_py_files_are_read_as_dvc_reads_them():
    data = formats.parse(PY_PARAMS, ".py", "params.py")
    assert data == {
        "EPOCHS": 10, "SIZE": 64, "LAYERS": [32, 16],
        "Train": {"lr": 0.5, "momentum": 0.9},
    }


def test_vars_and_params_read_a_py_file_alike(ws):
    ws.write("cfg.py", PY_PARAMS)
    ws.write("dvc.yaml", """\
        vars: [cfg.py]
        stages:
          train:
            cmd: echo ${Train.momentum} ${LAYERS[1]} > model.bin
            params: [{cfg.py: [Train.momentum, LAYERS]}]
            outs: [model.bin]
        """)
    (stage,) = ws.pivot_json("list")["stages"]
    assert stage["cmd"] == ["echo 0.9 16 > model.bin"]
    ws.pivot("run")
    assert ws.pivot("status").stdout == "Pipelines are up to date.\n"
    ws.write("cfg.py", PY_PARAMS.replace("0.9", "0.8"))
    assert "Train.momentum" in ws.pivot("status").stdout


@pytest.mark.parametrize(
    ("filename", "text", "message"),
    [
        pytest.param("p.json", '{"EPOCHS": 1,\n "x": }\n', "p.json:2:7: invalid JSON: Expecting value", id="json"),
        pytest.param("p.toml", "EPOCHS = 1\nx = \n", "p.toml:2:5: invalid TOML: Invalid value", id="toml"),
        pytest.param("p.py", "EPOCHS = 1\nx = (\n", "p.py:2: invalid Python: '(' was never closed", id="python"),
        pytest.param("p.yaml", "EPOCHS: 1\nx: [\n", "p.yaml:3:1: 'p.yaml' is invalid", id="yaml"),
        pytest.param("p.yaml", "EPOCHS: 1\nx: caf\xe9\n".encode("latin-1"), "p.yaml:2: not UTF-8 text", id="not-utf8"),
    ],
)
@pytest.mark.parametrize("role", ["vars", "params"])
def test_a_broken_file_gives_one_message_whichever_reads_it(ws, role, filename, text, message):
    path = ws.root / filename
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    if role == "vars":
        _as_vars(ws, filename)
        result = ws.pivot("list", expect=None)
    else:
        _as_params(ws, filename)
        result = ws.pivot("status", expect=None)
    assert message in _one_line_error(result)


# ---------------------------------------------------------------- Pivotfile configfile


def _pivotfile_cmd(ws) -> str:
    (stage,) = ws.pivot_json("list")["stages"]
    (cmd,) = stage["cmd"]
    return cmd


def test_configfile_is_yaml_1_2_like_every_other_file(ws):
    ws.write("config.yaml", "flag: yes\nrate: 1e3\nmode: 010\nswitch: on\n")
    ws.write("Pivotfile", """\
        configfile: "config.yaml"
        rule show:
            output: "out.txt"
            shell: "echo {config.flag} {config.rate} {config.mode} {config.switch} > {output}"
        """)
    # YAML 1.1 (PyYAML's default) would say: true 1e3 8 true
    assert _pivotfile_cmd(ws) == "echo yes 1000.0 10 on > out.txt"


def test_configfile_errors_are_the_shared_messages(ws):
    ws.write("config.json", '{"a": 1,\n}\n')
    ws.write("Pivotfile", 'configfile: "config.json"\n')
    error = _one_line_error(ws.pivot("list", expect=None))
    assert "config.json:2:1: invalid JSON" in error


def test_configfile_may_be_json_or_toml_as_params_files_are(ws):
    ws.write("config.toml", '[train]\nlr = 0.5\n')
    ws.write("Pivotfile", """\
        configfile: "config.toml"
        rule show:
            output: "out.txt"
            shell: "echo {config.train.lr} > {output}"
        """)
    assert _pivotfile_cmd(ws) == "echo 0.5 > out.txt"
