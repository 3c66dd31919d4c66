"""DVC's "tracked vars": which values of params and vars files a stage's
``${}`` interpolation read (``Stage.tracked_vars``), shown by params_show
and ``pivot params diff`` but never a dependency."""

from __future__ import annotations

import json

import pytest

import pivot.frontends
import pivot.signature
from pivot.frontends import load_pipeline
from pivot.ir import TrackedVar
from pivot.project import Project


def tracked(ws) -> dict[str, list[str]]:
    """Each stage's tracked vars as ``file:key``."""
    pipeline = load_pipeline(Project(root=ws.root, cwd=ws.root))
    return {stage.address: [f"{var.path}:{var.key}" for var in stage.tracked_vars] for stage in pipeline.stages}


def test_foreach_items_keep_their_place_in_the_params_file(ws):
    ws.write("params.yaml", "models:\n  - {name: cnn, size: 1}\n  - {name: rnn, size: 2}\n")
    ws.write("dvc.yaml", """\
        stages:
          train:
            foreach: ${models}
            do:
              cmd: train ${item.name} --largest ${models[-1].size}
        """)
    assert tracked(ws) == {
        "train@0": ["params.yaml:models.0.name", "params.yaml:models.1.size"],
        "train@1": ["params.yaml:models.1.name", "params.yaml:models.1.size"],
    }


def test_references_inside_literal_items_are_tracked(ws):
    ws.write("params.yaml", "lr: 0.1\nos: linux\n")
    ws.write("dvc.yaml", """\
        stages:
          fit:
            foreach:
              - {lr: "${lr}", tag: fixed}
            do:
              cmd: fit ${item.lr} ${item.tag}
          build:
            matrix:
              os: ["${os}", mac]
            cmd: build ${item.os} ${key}
        """)
    assert tracked(ws) == {
        "fit@0": ["params.yaml:lr"],
        "build@linux": ["params.yaml:os"],
        "build@mac": [],
    }


def test_inline_vars_mappings_and_keys_are_not_tracked(ws):
    """Only single values read from files: DVC never tracks a mapping (a
    dict rendered as flags), an inline ``vars`` entry, or a foreach key."""
    ws.write("params.yaml", "flags: {epochs: 3}\nsets: {a: 1}\n")
    ws.write("dvc.yaml", """\
        vars:
          - inline: 7
        stages:
          train:
            cmd: train ${flags} ${inline}
          each:
            foreach: ${sets}
            do:
              cmd: echo ${key}
        """)
    assert tracked(ws) == {"train": [], "each@a": []}


def test_stage_vars_files_are_tracked_relative_to_the_wdir(ws):
    ws.write("sub/local.yaml", "threshold: 0.5\n")
    ws.write("dvc.yaml", """\
        stages:
          s:
            wdir: sub
            vars: [local.yaml]
            cmd: check ${threshold}
        """)
    assert tracked(ws) == {"s": ["sub/local.yaml:threshold"]}


def test_the_cached_pipeline_keeps_tracked_vars(ws, monkeypatch):
    monkeypatch.setattr(pivot.signature, "RACY_WINDOW_NS", 0)
    (ws.root / ".pivot").mkdir()
    ws.write("params.yaml", "lr: 0.1\n")
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: fit ${lr} ${lr}\n  t:\n    cmd: fit ${lr}\n")
    load_pipeline(Project(root=ws.root, cwd=ws.root))
    loads = []
    real = pivot.frontends._load
    monkeypatch.setattr(pivot.frontends, "_load", lambda *args: loads.append(args) or real(*args))
    cached = load_pipeline(Project(root=ws.root, cwd=ws.root))
    assert loads == [], "the second load came from .pivot/pipeline.pickle"
    s, t = cached.stages
    assert s.tracked_vars == t.tracked_vars == (TrackedVar("params.yaml", "lr"),)
    assert s.tracked_vars[0] is t.tracked_vars[0], "one record shared by the stages reading it"


def test_a_tracked_var_is_not_a_dependency(ws):
    """As in DVC, a value read only through ``${}`` matters through what it
    renders: a new description does not make the stage stale, a new value
    in the command does (as a changed command)."""
    (ws.root / ".pivot").mkdir()
    ws.write("params.yaml", "text: first\nn: 1\n")
    ws.write("dvc.yaml", """\
        stages:
          s:
            desc: ${text}
            cmd: echo ${n} > out.txt
            outs: [out.txt]
        """)
    ws.pivot("run")
    ws.write("params.yaml", "text: second\nn: 1\n")
    assert ws.pivot_json("status") == {}
    ws.write("params.yaml", "text: second\nn: 2\n")
    assert ws.pivot_json("status") == {"s": ["changed command"]}


def test_params_diff_shows_a_tracked_var_against_the_last_run(ws):
    (ws.root / ".pivot").mkdir()
    ws.write("params.yaml", "lr: 0.1\n")
    ws.write("config.yaml", "model: {depth: 3, unused: x}\n")
    ws.write("dvc.yaml", """\
        vars: [config.yaml]
        stages:
          s:
            cmd: echo ${model.depth} > out.txt
            outs: [out.txt]
        """)
    ws.pivot("run")
    ws.write("config.yaml", "model: {depth: 4, unused: y}\n")
    assert ws.pivot_json("params", "diff") == {"config.yaml": {"model.depth": {"old": 3, "new": 4, "diff": 1}}}
    shown = ws.pivot_json("params", "diff", "--all")
    assert list(shown) == ["params.yaml", "config.yaml"]
    assert list(shown["config.yaml"]) == ["model.depth"], "only the keys interpolation read"


@pytest.mark.parametrize("deps", [False, True])
def test_params_show_reports_tracked_vars_beside_params(ws, monkeypatch, deps):
    """A file listed under ``params:`` shows as a params file; the values
    of other files that interpolation read come as flat keys."""
    ws.write("params.yaml", "lr: 0.1\nother: 1\n")
    ws.write("config.yaml", "model: {depth: 3}\n")
    ws.write("dvc.yaml", """\
        vars: [config.yaml]
        stages:
          s:
            cmd: fit ${lr} ${model.depth}
            params: [lr]
        """)
    monkeypatch.chdir(ws.root)
    monkeypatch.delenv("PIVOT_ROOT", raising=False)
    from pivot.api import params_show

    expected_params = {"lr": 0.1} if deps else {"lr": 0.1, "other": 1}
    assert params_show(deps=deps) == {**expected_params, "model.depth": 3}
    assert params_show(stages="s", deps=deps) == {"lr": 0.1}, "stages= leaves tracked vars out, as DVC"
    assert json.loads(json.dumps(params_show("config.yaml"))) == {"model": {"depth": 3}}
