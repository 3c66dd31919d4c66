"""The verdict memo (pivot.state.verdicts): an up-to-date stage is recalled
while nothing it read has changed, and decided afresh -- with the same
result as without any memo -- as soon as anything did.

Entries are made only from files settled for the racy window (2 s, mtime
and ctime), and ``os.utime`` cannot age a ctime: these tests wait for real."""

from __future__ import annotations

import os
import time
from dataclasses import replace

import pytest

from pivot.ir import Pipeline
from pivot.optimizer import Action, ReasonKind, make_plan
from pivot.project import Project
from pivot.signature import RACY_WINDOW_NS
from pivot.state import State
from pivot.state.record import commit_stage

from tests._statehelp import stage

pytestmark = pytest.mark.slow  # waits out the racy window

STAGES = {
    "file_dep": stage("file_dep", deps=("a.txt",), outs=("o_file_dep.txt",)),
    "same_content": stage("same_content", deps=("b.txt",), outs=("o_same_content.txt",)),
    "dir_dep": stage("dir_dep", deps=("d",), outs=("o_dir_dep.txt",)),
    "param": stage("param", params=(("params.yaml", ("lr",)),), outs=("o_param.txt",)),
    "object_gone": stage("object_gone", deps=("c.txt",), outs=("o_object_gone.txt",)),
    "out_deleted": stage("out_deleted", deps=("c.txt",), outs=("o_out_deleted.txt",)),
    "cmd": stage("cmd", deps=("c.txt",), outs=("o_cmd.txt",)),
    "record_rewritten": stage("record_rewritten", deps=("c.txt",), outs=("o_record_rewritten.txt",)),
    "untouched": stage("untouched", deps=("c.txt",), outs=("o_untouched.txt",)),
    "frozen": stage("frozen", deps=("a.txt",), outs=("o_frozen.txt",), frozen=True),
}


def _open(ws) -> State:
    return State.open(Project(root=ws.root, cwd=ws.root), inspect=True)


def _plan(ws, stages):
    with _open(ws) as state:
        return {d.address: d for d in make_plan(Pipeline(tuple(stages), {}), list(stages), state,
                                                   explain=True).decisions}


def _settle() -> None:
    time.sleep(RACY_WINDOW_NS / 1e9 + 0.2)


@pytest.fixture
def settled(ws):
    ws.write("a.txt", "a\n")
    ws.write("b.txt", "b\n")
    ws.write("c.txt", "c\n")
    ws.write("d/one.txt", "1\n")
    ws.write("params.yaml", "lr: 0.1\n")
    for name in STAGES:
        ws.write(f"o_{name}.txt", f"{name}\n")
    with State.open(Project(root=ws.root, cwd=ws.root)) as state:
        for s in STAGES.values():
            commit_stage(s, state)
    _settle()
    first = _plan(ws, STAGES.values())  # decided afresh, and remembered
    assert all(d.record is not None for d in first.values())
    again = _plan(ws, STAGES.values())
    assert all(d.record is None for d in again.values()), "every verdict recalled"
    assert {a: d.action for a, d in again.items()} == {a: d.action for a, d in first.items()}
    return ws


def test_a_change_to_anything_read_decides_afresh_the_rest_is_recalled(settled) -> None:
    ws = settled
    root = ws.root
    ws.write("a.txt", "a, edited\n")
    same = root / "b.txt"
    st = same.stat()
    same.write_text("b\n")  # the same bytes: only the ctime moves
    os.utime(same, ns=(st.st_atime_ns, st.st_mtime_ns))
    ws.write("d/two.txt", "2\n")  # the directory's own signature does not say this
    ws.write("params.yaml", "lr: 0.2\n")
    with _open(ws) as state:
        entry = next(e for e in state.locks.read("object_gone").outs)
        os.unlink(state.cache.object_path(entry.hash))
        (root / "o_out_deleted.txt").unlink()
        lock = state.locks.path_for("record_rewritten")
    lock.write_bytes(lock.read_bytes())
    stages = {**STAGES, "cmd": replace(STAGES["cmd"], cmds=("true --changed",))}

    warm = _plan(ws, stages.values())
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        (root / ".pivot" / name).unlink(missing_ok=True)
    cold = _plan(ws, stages.values())

    def summary(decisions):
        return {a: (d.action, [(r.kind, r.path) for r in d.reasons]) for a, d in decisions.items()}

    assert summary(warm) == summary(cold)
    assert summary(warm) == {
        "file_dep": (Action.RUN, [(ReasonKind.DEP_MODIFIED, "a.txt")]),
        "same_content": (Action.UP_TO_DATE, []),
        "dir_dep": (Action.RUN, [(ReasonKind.DEP_MODIFIED, "d")]),
        "param": (Action.RUN, [(ReasonKind.PARAM_MODIFIED, "params.yaml")]),
        "object_gone": (Action.RUN, [(ReasonKind.OUT_NOT_IN_CACHE, "o_object_gone.txt")]),
        "out_deleted": (Action.CHECKOUT, [(ReasonKind.OUT_MISSING, "o_out_deleted.txt")]),
        "cmd": (Action.RUN, [(ReasonKind.CMD_CHANGED, None)]),
        "record_rewritten": (Action.UP_TO_DATE, []),
        "untouched": (Action.UP_TO_DATE, []),
        "frozen": (Action.FROZEN, []),  # a frozen stage does not read its deps
    }
    recalled = {a for a, d in warm.items() if d.record is None}
    assert recalled == {"untouched", "frozen"}


def test_a_readonly_state_recalls_but_never_remembers(settled) -> None:
    ws = settled
    with State.open(Project(root=ws.root, cwd=ws.root), readonly=True) as state:
        decisions = make_plan(Pipeline(tuple(STAGES.values()), {}), list(STAGES.values()), state).decisions
        assert all(d.record is None for d in decisions)
    (ws.root / "o_untouched.txt").write_text("changed\n")
    with State.open(Project(root=ws.root, cwd=ws.root), readonly=True) as state:
        decisions = make_plan(Pipeline(tuple(STAGES.values()), {}), list(STAGES.values()), state).decisions
        assert {d.address for d in decisions if d.record is not None} == {"untouched"}
        assert not state.statdb._pending_verdicts  # nothing to be written
