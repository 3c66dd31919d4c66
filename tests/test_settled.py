"""The settled-pipeline memo (pivot.state.settled): once every stage was
found up to date, ``plan`` and ``status`` of the whole pipeline answer
without loading it -- with exactly what planning prints -- until anything
any verdict read changes; then they plan as usual.

The memo is made from verdicts, which are made only from files settled for
the racy window (2 s, mtime and ctime); ``os.utime`` cannot age a ctime, so
these tests wait for real."""

from __future__ import annotations

import marshal
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from pivot.optimizer import Action
from pivot.project import Project
from pivot.state import State

from tests._statehelp import cold_outputs, outputs, recalled, settle
from tests.conftest import Workspace

pytestmark = pytest.mark.slow  # waits out the racy window

DVC_YAML = """\
stages:
  prep:
    cmd: cp a.txt prep/out.txt
    deps: [a.txt]
    params: [lr]
    outs: [prep/out.txt]
  listing:
    cmd: ls data/d > listing.txt
    deps: [data/d]
    outs: [listing.txt]
  report:
    cmd: mkdir -p report && cat prep/out.txt listing.txt > report/r.txt
    deps: [prep/out.txt, listing.txt]
    outs: [report/r.txt]
  fixed:
    cmd: echo never run > fixed.txt
    outs: [fixed.txt]
    frozen: true
"""

COMMANDS = (("plan",), ("plan", "--json"), ("status",), ("status", "--json"))


def _settled_rows(root: Path) -> int:
    with sqlite3.connect(root / ".pivot" / "state.db") as conn:
        return conn.execute("SELECT count(*) FROM settled").fetchone()[0]


def _outputs(ws: Workspace) -> list[tuple[int, str, str]]:
    return outputs(ws, COMMANDS)


def _cold_outputs(ws: Workspace, where: Path) -> list[tuple[int, str, str]]:
    return cold_outputs(ws, where, COMMANDS)


@pytest.fixture
def united(ws) -> Workspace:
    ws.write("dvc.yaml", DVC_YAML)
    ws.write("a.txt", "a\n")
    ws.write("params.yaml", "lr: 0.1\n")
    ws.write("data/d/one.txt", "1\n")
    ws.write("data/d/sub/two.txt", "2\n")
    ws.write(".dvcignore", "*.tmp\n")
    ws.write("fixed.txt", "made by hand\n")
    (ws.root / "prep").mkdir()
    ws.pivot("run")
    settle()
    ws.pivot("status")  # every verdict remembered, and united
    assert _settled_rows(ws.root) == 1
    return ws


def test_a_settled_pipeline_answers_without_loading_it(united, tmp_path, monkeypatch) -> None:
    ws = united
    plan = recalled(ws.root)
    assert plan is not None
    assert [(d.address, d.action) for d in plan.decisions] == [
        ("prep", Action.UP_TO_DATE), ("listing", Action.UP_TO_DATE),
        ("report", Action.UP_TO_DATE), ("fixed", Action.FROZEN),
    ]
    assert plan.frozen_notices == ("fixed",)

    def no_loading(*args, **kwargs):
        raise AssertionError("the pipeline was loaded")

    with monkeypatch.context() as patched:
        patched.setattr("pivot.cli.common.load", no_loading)
        warm = _outputs(ws)
        dry = ws.pivot("run", "--dry").stdout
        ran = ws.pivot("run").stdout
    assert warm == _cold_outputs(ws, tmp_path / "cold")
    assert dry == warm[0][1]
    assert ran.startswith("0 ran, 0 restored, 4 up to date, 0 failed in ")
    last = ws.pivot_json("log", "-n", "1")[0]  # the no-op run is recorded as any other
    assert {(s["address"], s["outcome"], s["message"]) for s in last["stages"]} == {
        ("prep", "skipped", "up to date"), ("listing", "skipped", "up to date"),
        ("report", "skipped", "up to date"), ("fixed", "skipped", "frozen"),
    }
    assert "WARNING: stage: 'fixed' is frozen" in warm[2][2]
    assert ws.pivot("plan", "--check").exit_code == 0


def _edit_dep(ws: Workspace) -> None:
    ws.write("a.txt", "a, edited\n")


def _touch_dep(ws: Workspace) -> None:  # the same bytes: only the signature moves
    ws.write("a.txt", "a\n")


def _edit_params(ws: Workspace) -> None:
    ws.write("params.yaml", "lr: 0.2\n")


def _add_to_dir_dep(ws: Workspace) -> None:
    ws.write("data/d/two.txt", "2\n")


def _edit_in_dir_dep(ws: Workspace) -> None:  # in place: the directory's own signature stays
    with open(ws.root / "data" / "d" / "one.txt", "r+") as handle:
        handle.write("9")


def _add_deep_in_dir_dep(ws: Workspace) -> None:
    ws.write("data/d/sub/three.txt", "3\n")


def _ignore_in_dir_dep(ws: Workspace) -> None:  # the ignore file is edited in place
    with open(ws.root / ".dvcignore", "a") as handle:
        handle.write("one.txt\n")


def _new_ignore_file_above_dir_dep(ws: Workspace) -> None:  # discovery lists data/, but reads no new file
    ws.write("data/.dvcignore", "one.txt\n")


def _new_ignore_file_in_dir_dep(ws: Workspace) -> None:
    ws.write("data/d/sub/.dvcignore", "two.txt\n")


def _delete_out(ws: Workspace) -> None:
    (ws.root / "report" / "r.txt").unlink()


def _drop_cached_object(ws: Workspace) -> None:
    project = Project(root=ws.root, cwd=ws.root)
    with State.open(project) as state:
        entry = state.locks.read("listing").outs[0]
        os.unlink(state.cache.object_path(entry.hash))


def _rewrite_lock_record(ws: Workspace) -> None:
    with State.open(Project(root=ws.root, cwd=ws.root)) as state:
        lock = state.locks.path_for("report")
    lock.write_bytes(lock.read_bytes())


def _new_pipeline_file(ws: Workspace) -> None:
    ws.write("sub/dvc.yaml", "stages:\n  extra:\n    cmd: echo x > x.txt\n    outs: [x.txt]\n")


def _edit_stage(ws: Workspace) -> None:
    ws.write("dvc.yaml", DVC_YAML.replace("ls data/d > listing.txt", "ls -a data/d > listing.txt"))


def _link_out_dir_outside(ws: Workspace) -> None:
    outside = ws.root.parent / "elsewhere"
    shutil.move(ws.root / "prep", outside)
    (ws.root / "prep").symlink_to(outside, target_is_directory=True)


def _drop_pipeline_cache(ws: Workspace) -> None:
    (ws.root / ".pivot" / "pipeline.pickle").unlink()


@pytest.mark.parametrize("change", [
    _edit_dep, _touch_dep, _edit_params, _add_to_dir_dep, _edit_in_dir_dep, _add_deep_in_dir_dep,
    _ignore_in_dir_dep, _new_ignore_file_above_dir_dep, _new_ignore_file_in_dir_dep, _delete_out,
    _drop_cached_object,
    _rewrite_lock_record, _new_pipeline_file, _edit_stage, _link_out_dir_outside, _drop_pipeline_cache,
], ids=lambda change: change.__name__.strip("_"))
def test_any_change_to_what_a_verdict_read_means_planning_again(united, tmp_path, change) -> None:
    ws = united
    change(ws)
    assert recalled(ws.root) is None
    assert _outputs(ws) == _cold_outputs(ws, tmp_path / "cold")


def test_a_directory_dep_is_checked_by_the_signatures_below_it(united) -> None:
    """Not hashed again: the entry holds no directory to hash, but the
    signature of the directory, each one and each file below it, and the
    ignore files that apply (the ones in directories holding it)."""
    with sqlite3.connect(united.root / ".pivot" / "state.db") as conn:
        entry = marshal.loads(conn.execute("SELECT entry FROM settled").fetchone()[0])
    files, dirs, absent = entry[6], entry[8], entry[12]
    assert dirs == ()
    assert {"data/d", "data/d/one.txt", "data/d/sub", "data/d/sub/two.txt", ".dvcignore"} <= set(files)
    assert {".pivotignore", "data/.dvcignore", "data/.pivotignore"} <= set(absent)


def test_the_memo_is_united_again_once_the_change_settled(united) -> None:
    ws = united
    _touch_dep(ws)
    ws.pivot("status")  # a.txt is racy: its verdict is not remembered, nothing is united
    assert recalled(ws.root) is None
    settle()
    ws.pivot("status")
    assert recalled(ws.root) is not None


def test_selections_and_force_plan_as_usual(united) -> None:
    ws = united
    assert "run       report" in ws.pivot("plan", "--force").stdout
    assert ws.pivot("status", "report").stdout == "Pipelines are up to date.\n"
    assert recalled(ws.root) is not None  # the whole pipeline's entry is left as it was


def test_signatures_are_compared_a_chunk_at_a_time_to_the_last_path(tmp_path) -> None:
    """More paths than one chunk: a change in the last one, or one path more
    than was packed, is still seen."""
    import os

    from pivot.state.settled import _CHUNK, _packed, _unchanged
    from pivot.state.verdicts import stat_signature

    paths = [f"f{i}" for i in range(_CHUNK + 3)]
    for path in paths:
        (tmp_path / path).write_text("x")
    prefix = f"{tmp_path}/"
    packed = _packed([stat_signature(prefix + path) for path in paths])
    assert _unchanged(prefix, paths, packed)
    assert not _unchanged(prefix, [*paths, paths[0]], packed)
    os.utime(tmp_path / paths[-1], ns=(1, 1))
    assert not _unchanged(prefix, paths, packed)
