"""Parsed params files remembered between commands (.pivot/params.pickle):
used only while the file is unchanged, never made from a racy file."""

from __future__ import annotations

import pytest

import pivot.signature
from pivot.project import Project
from pivot.state import State, params
from pivot.state.params import MEMO_NAME, ParamsReader

PIPELINE = """\
stages:
  train:
    cmd: echo train > model.txt
    params:
      - lr
      - nested.depth
    outs:
      - model.txt
"""


@pytest.fixture
def parses(monkeypatch):
    """Trust files at once (no racy window) and count real parses."""
    monkeypatch.setattr(pivot.signature, "RACY_WINDOW_NS", 0)
    calls: list[str] = []
    real = params._load

    def counting(path, relpath):
        calls.append(relpath)
        return real(path, relpath)

    monkeypatch.setattr(params, "_load", counting)
    return calls


@pytest.fixture
def project(ws):
    (ws.root / ".pivot").mkdir()
    ws.write("dvc.yaml", PIPELINE)
    ws.write("params.yaml", "lr: 0.1\nnested: {depth: 3}\n")
    return ws


def read_values(ws, relpath="params.yaml", keys=("lr", "nested.depth")):
    reader = ParamsReader(ws.root, ws.root / ".pivot")
    from pivot.ir import ParamsDep

    return reader.values(ParamsDep(relpath, relpath, tuple(keys)))


def test_unchanged_file_is_not_parsed_again(project, parses):
    assert read_values(project) == {"lr": 0.1, "nested.depth": 3}
    assert (project.root / ".pivot" / MEMO_NAME).is_file()
    assert read_values(project) == {"lr": 0.1, "nested.depth": 3}
    assert parses == ["params.yaml"]


def test_edited_file_is_parsed_again(project, parses):
    read_values(project)
    project.write("params.yaml", "lr: 0.25\nnested: {depth: 3}\n")
    assert read_values(project) == {"lr": 0.25, "nested.depth": 3}
    assert parses == ["params.yaml", "params.yaml"]


def test_deleted_file_reads_as_missing(project, parses):
    read_values(project)
    (project.root / "params.yaml").unlink()
    assert read_values(project) is None


def test_racy_file_is_not_remembered(project):
    # the real window: params.yaml was written just now
    read_values(project)
    assert not (project.root / ".pivot" / MEMO_NAME).exists()


def test_damaged_memo_is_a_miss(project, parses):
    read_values(project)
    (project.root / ".pivot" / MEMO_NAME).write_bytes(b"garbage")
    assert read_values(project) == {"lr": 0.1, "nested.depth": 3}
    assert len(parses) == 2


def test_readonly_state_writes_no_memo(project, parses):
    with State.open(Project(project.root, project.root), readonly=True) as state:
        assert state.params.read("params.yaml") == {"lr": 0.1, "nested": {"depth": 3}}
    assert not (project.root / ".pivot" / MEMO_NAME).exists()


def test_status_sees_a_param_edit_through_the_memo(project, parses):
    project.write("model.txt", "train\n")
    project.pivot("commit")
    assert "up to date" in project.pivot("status").stdout
    project.write("params.yaml", "lr: 0.5\nnested: {depth: 3}\n")
    assert project.pivot_json("status") == {"train": [{"changed deps": {"params.yaml": {"lr": "modified"}}}]}
    assert parses.count("params.yaml") == 2  # commit (remembered), status after the edit


def test_memo_made_by_other_code_is_ignored(project, parses, monkeypatch):
    read_values(project)
    monkeypatch.setattr(params, "_MEMO_CODE", ("state/params.py", "no/such/module.py"))
    assert read_values(project) == {"lr": 0.1, "nested.depth": 3}
    assert len(parses) == 2
