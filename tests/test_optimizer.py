"""The decision function: every reason kind, actions, plans."""

from __future__ import annotations

import shutil

import pytest

from pivot import graph
from pivot.errors import PivotError
from pivot.optimizer import Action, ReasonKind, check_stage, make_plan
from pivot.project import Project
from pivot.state import State
from pivot.state.record import commit_stage

from tests._statehelp import stage


def open_state(ws):
    return State.open(Project(root=ws.root, cwd=ws.root))


def commit(ws, *stages):
    with open_state(ws) as state:
        for s in stages:
            commit_stage(s, state)


def kinds(ws, s, explain=True):
    with open_state(ws) as state:
        decision = check_stage(s, state, explain=explain)
    return decision.action, [r.kind for r in decision.reasons]


@pytest.fixture
def basic(ws):
    ws.write("in.txt", "input\n")
    ws.write("params.yaml", "lr: 0.1\nlayers: [8, 16]\nother: x\n")
    ws.write("out.txt", "output\n")
    s = stage("train", cmd="make out", deps=("in.txt",), outs=("out.txt",),
              params=(("params.yaml", ("lr", "layers.1")),))
    commit(ws, s)
    return s


def test_committed_stage_is_up_to_date(ws, basic):
    assert kinds(ws, basic) == (Action.UP_TO_DATE, [])


def test_no_record(ws):
    ws.write("in.txt", "x")
    s = stage("a", deps=("in.txt",), outs=("o.txt",))
    action, found = kinds(ws, s)
    assert action is Action.RUN
    assert found == [ReasonKind.NO_RECORD, ReasonKind.DEP_NEW, ReasonKind.OUT_MISSING]
    assert kinds(ws, s, explain=False) == (Action.RUN, [ReasonKind.NO_RECORD])


def test_cmd_changed(ws, basic):
    from dataclasses import replace

    changed = replace(basic, cmds=("make out --fast",), cmd_literal="make out --fast")
    with open_state(ws) as state:
        decision = check_stage(changed, state, explain=True)
    assert [r.kind for r in decision.reasons] == [ReasonKind.CMD_CHANGED]
    assert decision.reasons[0].old == "make out" and decision.reasons[0].new == "make out --fast"


def test_dep_modified_deleted_new(ws, basic):
    from dataclasses import replace

    ws.write("in.txt", "changed\n")
    assert kinds(ws, basic) == (Action.RUN, [ReasonKind.DEP_MODIFIED])
    (ws.root / "in.txt").unlink()
    assert kinds(ws, basic) == (Action.RUN, [ReasonKind.DEP_DELETED])
    ws.write("in.txt", "input\n")
    ws.write("extra.txt", "e")
    grown = replace(basic, deps=(*basic.deps, *stage("x", deps=("extra.txt",)).deps))
    assert kinds(ws, grown) == (Action.RUN, [ReasonKind.DEP_NEW])


def test_removing_a_dep_or_param_does_not_make_stale(ws, basic):
    from dataclasses import replace

    assert kinds(ws, replace(basic, deps=(), params=())) == (Action.UP_TO_DATE, [])


def test_params_modified_deleted_new(ws, basic):
    from dataclasses import replace

    ws.write("params.yaml", "lr: 0.2\nlayers: [8, 16]\nother: y\n")
    with open_state(ws) as state:
        decision = check_stage(basic, state, explain=True)
    (reason,) = decision.reasons
    assert (reason.kind, reason.path, reason.key, reason.old, reason.new) == (
        ReasonKind.PARAM_MODIFIED, "params.yaml", "lr", 0.1, 0.2)
    ws.write("params.yaml", "layers: [8, 16]\n")
    assert kinds(ws, basic) == (Action.RUN, [ReasonKind.PARAM_DELETED])
    ws.write("params.yaml", "lr: 0.1\nlayers: [8, 16]\nnew: 1\n")
    more = replace(basic, params=(replace(basic.params[0], keys=("lr", "layers.1", "new")),))
    assert kinds(ws, more) == (Action.RUN, [ReasonKind.PARAM_NEW])
    (ws.root / "params.yaml").unlink()
    assert kinds(ws, basic) == (Action.RUN, [ReasonKind.PARAM_DELETED])


def test_whole_file_params_compare_every_top_level_key(ws):
    ws.write("p.json", '{"a": 1, "b": {"c": 2}}')
    ws.write("o", "o")
    s = stage("s", outs=("o",), params=(("p.json", None),))
    commit(ws, s)
    assert kinds(ws, s) == (Action.UP_TO_DATE, [])
    ws.write("p.json", '{"a": 1, "b": {"c": 3}, "d": 4}')
    assert kinds(ws, s) == (Action.RUN, [ReasonKind.PARAM_MODIFIED, ReasonKind.PARAM_NEW])
    ws.write("p.json", '{"b": {"c": 2}}')
    assert kinds(ws, s) == (Action.RUN, [ReasonKind.PARAM_DELETED])


def test_toml_and_python_params(ws):
    ws.write("p.toml", "[train]\nlr = 0.5\n")
    ws.write("p.py", "EPOCHS = 3\nclass Train:\n    lr = 0.5\n")
    ws.write("o", "o")
    s = stage("s", outs=("o",), params=(("p.toml", ("train.lr",)), ("p.py", ("EPOCHS", "Train.lr"))))
    commit(ws, s)
    assert kinds(ws, s) == (Action.UP_TO_DATE, [])
    ws.write("p.py", "EPOCHS = 4\nclass Train:\n    lr = 0.5\n")
    assert kinds(ws, s) == (Action.RUN, [ReasonKind.PARAM_MODIFIED])


def test_out_missing_restorable_is_checkout(ws, basic):
    (ws.root / "out.txt").unlink()
    assert kinds(ws, basic) == (Action.CHECKOUT, [ReasonKind.OUT_MISSING])
    ws.write("out.txt", "tampered\n")
    assert kinds(ws, basic) == (Action.CHECKOUT, [ReasonKind.OUT_MODIFIED])


def test_out_not_in_cache(ws, basic):
    shutil.rmtree(ws.root / ".pivot/cache")
    assert kinds(ws, basic) == (Action.RUN, [ReasonKind.OUT_NOT_IN_CACHE])
    (ws.root / "out.txt").unlink()  # DVC's order: the cache is checked before the workspace
    assert kinds(ws, basic) == (Action.RUN, [ReasonKind.OUT_NOT_IN_CACHE])


def test_uncached_out_missing_must_run(ws):
    ws.write("o", "o")
    s = stage("s", outs=("o",), cache=False)
    commit(ws, s)
    assert kinds(ws, s) == (Action.UP_TO_DATE, [])
    (ws.root / "o").unlink()
    assert kinds(ws, s) == (Action.RUN, [ReasonKind.OUT_MISSING])


def test_always_changed_and_callback(ws):
    ws.write("o", "o")
    always = stage("a", outs=("o",), always_changed=True)
    commit(ws, always)
    assert kinds(ws, always) == (Action.RUN, [ReasonKind.ALWAYS_CHANGED])
    callback = stage("cb")
    commit(ws, callback)
    assert kinds(ws, callback) == (Action.RUN, [ReasonKind.ALWAYS_CHANGED])


def test_frozen_ignores_deps_but_not_outs(ws):
    # DVC 3.67.1: a frozen stage's deps are never checked; its outs are
    # (missing: `repro` fails; modified: re-recorded, the command never runs)
    ws.write("in", "x")
    ws.write("o", "o")
    s = stage("f", deps=("in",), outs=("o",), frozen=True)
    commit(ws, s)
    ws.write("in", "changed")
    assert kinds(ws, s) == (Action.FROZEN, [])
    ws.write("o", "tampered")
    assert kinds(ws, s) == (Action.RECORD_FROZEN, [ReasonKind.OUT_MODIFIED])
    (ws.root / "o").unlink()
    assert kinds(ws, s) == (Action.RECORD_FROZEN, [ReasonKind.OUT_MISSING])


def test_commit_errors_name_stage_and_path(ws):
    ws.write("in.txt", "x")
    with open_state(ws) as state:
        with pytest.raises(PivotError, match="stage 'a' did not produce output 'o.txt'"):
            commit_stage(stage("a", deps=("in.txt",), outs=("o.txt",)), state)
        with pytest.raises(PivotError, match="dependency 'gone' does not exist"):
            commit_stage(stage("b", deps=("gone",)), state)
        ws.write("params.yaml", "a: 1\n")
        with pytest.raises(PivotError, match="'zz'.*missing from 'params.yaml'"):
            commit_stage(stage("c", params=(("params.yaml", ("zz",)),)), state)
    assert not (ws.root / ".pivot/locks").exists() or not any((ws.root / ".pivot/locks").iterdir())


def chain(ws):
    ws.write("src", "s")
    a = stage("a", deps=("src",), outs=("a.out",))
    b = stage("b", deps=("a.out",), outs=("b.out",))
    c = stage("c", deps=("b.out",), outs=("c.out",))
    ws.write("a.out", "a")
    ws.write("b.out", "b")
    ws.write("c.out", "c")
    commit(ws, a, b, c)
    pipeline = graph.build_pipeline([a, b, c])
    return pipeline, [a, b, c]


def test_plan_propagates_upstream(ws):
    pipeline, stages = chain(ws)
    ws.write("src", "changed")
    with open_state(ws) as state:
        plan = make_plan(pipeline, stages, state)
    assert [d.action for d in plan.decisions] == [Action.RUN] * 3
    assert plan.decisions[1].reasons[0].kind is ReasonKind.UPSTREAM
    assert plan.decisions[1].reasons[0].upstream == "a"
    assert plan.decisions[2].reasons[0].upstream == "b"
    assert plan.by_reason() == {ReasonKind.DEP_MODIFIED: 1, ReasonKind.UPSTREAM: 2}


def test_plan_checkout_does_not_propagate(ws):
    pipeline, stages = chain(ws)
    (ws.root / "a.out").unlink()
    with open_state(ws) as state:
        plan = make_plan(pipeline, stages, state)
    assert [d.action for d in plan.decisions] == [Action.CHECKOUT, Action.UP_TO_DATE, Action.UP_TO_DATE]


def test_plan_force(ws):
    pipeline, stages = chain(ws)
    with open_state(ws) as state:
        plan = make_plan(pipeline, stages, state, force=True)
    assert all(d.reasons[0].kind is ReasonKind.FORCED for d in plan.decisions)
    assert len(plan.with_action(Action.RUN)) == 3 and plan.has_work


def test_plan_up_to_date(ws):
    pipeline, stages = chain(ws)
    with open_state(ws) as state:
        plan = make_plan(pipeline, stages, state)
    assert not plan.has_work and len(plan.with_action(Action.UP_TO_DATE, Action.FROZEN)) == 3


def test_status_view_reports_workspace_as_is(ws):
    pipeline, stages = chain(ws)
    (ws.root / "a.out").unlink()
    with open_state(ws) as state:
        plan = make_plan(pipeline, stages, state, assume_restored=False, explain=True)
    assert [d.action for d in plan.decisions] == [Action.CHECKOUT, Action.RUN, Action.RUN]
    assert [r.kind for r in plan.decisions[1].own_reasons] == [ReasonKind.DEP_DELETED]


def test_a_never_run_plan_with_no_run_cache_reads_no_dep_but_names_a_dangling_one(ws):
    """Without a run-cache entry anywhere there is no key to compute: the
    deps of never-run stages are only looked at (a stat), not read; what
    reading them would report still is."""
    import os

    ws.write("a.txt", "a")
    ws.write("data/b.txt", "b")
    stages = [stage("s", deps=("a.txt", "data"), outs=("s.out",)), stage("t", deps=("s.out",), outs=("t.out",))]
    pipeline = graph.build_pipeline(stages)
    with open_state(ws) as state:
        plan = make_plan(pipeline, stages, state)
        assert [d.action for d in plan.decisions] == [Action.RUN, Action.RUN]
        assert state.hasher.files_read == 1, "only the file inside the directory dep (a walk finds its links)"
    os.symlink("nowhere", ws.root / "data/dangling")
    with open_state(ws) as state, pytest.raises(PivotError, match="dangling"):
        make_plan(pipeline, stages, state)
