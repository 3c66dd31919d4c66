"""The settled memo for a plan with stages to run (pivot.state.settled):
once a pipeline has run and something changed, ``plan``, ``run -n`` and
``status`` of the whole pipeline print the stages to run, with their
reasons, without loading it -- exactly what planning prints -- until
anything those verdicts could have read changes; ``pivot run`` and
``--no-run-cache`` always plan as usual.  Explained plans (``status``,
``--explain``: every reason) are kept apart from the others.

Entries are made only from files settled for the racy window (2 s, mtime
and ctime); ``os.utime`` cannot age a ctime, so these tests wait for real."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pivot.optimizer import Action, RecalledRun

from tests._statehelp import TWO_STAGES, cold_outputs, outputs, recalled, settle, write_two_pipelines
from tests.conftest import Workspace

pytestmark = pytest.mark.slow  # waits out the racy window

DVC_YAML = TWO_STAGES + """\
  inventory:
    cmd: ls data > inventory.txt
    deps: [data]
    outs: [inventory.txt]
"""

# a stage added after the first run: never run, beside stages with records
EXTRA = """\
  extra:
    cmd: cp a.txt extra.txt
    deps: [a.txt]
    outs: [extra.txt]
"""

PRINTED = (("plan",), ("plan", "--json"), ("run", "--dry"), ("plan", "--check"))
PLANNED = (("status",), ("status", "--json"), ("plan", "--explain"), ("plan", "--no-run-cache"))


def _outputs(ws: Workspace, commands=PRINTED + PLANNED) -> list[tuple[int, str, str]]:
    return outputs(ws, commands)


def _cold_outputs(ws: Workspace, where: Path) -> list[tuple[int, str, str]]:
    return cold_outputs(ws, where, PRINTED + PLANNED)


def _write(ws: Workspace) -> None:
    write_two_pipelines(ws, DVC_YAML)


@pytest.fixture
def with_work(ws) -> Workspace:
    """A pipeline that ran, then: a dep of `prep` edited (it runs, and
    `report` after it), a sample edited (`norm@x`, `summary`, `inventory`
    run), a stage added (`extra`, never run); the plan of that is united."""
    _write(ws)
    ws.pivot("run")
    ws.write("dvc.yaml", DVC_YAML + EXTRA)
    ws.write("a.txt", "a, edited\n")
    ws.write("data/x.csv", "10\n")
    settle()
    ws.pivot("plan")
    return ws


WORK = {
    "prep": "dep 'a.txt' modified",
    "report": "upstream stage 'prep' will rerun",
    "inventory": "dep 'data' modified",
    "extra": "never run (no lock record)",
    "norm@x": "dep 'data/x.csv' modified",
    "summary": "upstream stage 'norm@x' will rerun",
}


def test_a_plan_with_work_is_recalled_without_loading_the_pipeline(with_work, tmp_path, monkeypatch) -> None:
    ws = with_work
    plan = recalled(ws.root, printed_only=True)
    assert plan is not None and plan.has_work
    to_run = {d.address: d.reasons[0].describe() for d in plan.decisions if isinstance(d, RecalledRun)}
    assert to_run == WORK
    assert {d.address for d in plan.decisions if d.action is Action.UP_TO_DATE} == {"norm@y"}
    # commands that run never take it; explained ones have their own
    assert recalled(ws.root, printed_only=False) is None
    assert recalled(ws.root, printed_only=True, explained=True) is None

    def no_loading(*args, **kwargs):
        raise AssertionError("the pipeline was loaded")

    with monkeypatch.context() as patched:
        patched.setattr("pivot.cli.common.load", no_loading)
        warm = _outputs(ws, PRINTED)
    assert warm[0][1].endswith("6 to run, 1 up to date (1 no record, 3 dep modified, 2 upstream).\n"), warm[0][1]
    assert warm[3][0] == 1  # --check: there is work
    assert warm + _outputs(ws, PLANNED) == _cold_outputs(ws, tmp_path / "cold")


EXPLAINED = (("status",), ("status", "--json"), ("plan", "--explain"))


def test_status_and_explained_plans_are_recalled_apart(with_work, tmp_path, monkeypatch) -> None:
    ws = with_work
    ws.pivot("status")
    explained = recalled(ws.root, printed_only=True, explained=True)
    assert explained is not None and explained.has_work
    assert recalled(ws.root, printed_only=True) is not None, "the plan's entry is kept beside it"
    # pipeline order, as status lists it (run order puts `extra` after `inventory`)
    assert [d.address for d in explained.in_pipeline_order().decisions[:6]] == [
        "prep", "report", "inventory", "extra", "summary", "norm@x"]

    def no_loading(*args, **kwargs):
        raise AssertionError("the pipeline was loaded")

    with monkeypatch.context() as patched:
        patched.setattr("pivot.cli.common.load", no_loading)
        warm = _outputs(ws, EXPLAINED + PRINTED)
    assert warm == cold_outputs(ws, tmp_path / "cold", EXPLAINED + PRINTED)
    assert "\tchanged deps:\n\t\tmodified:           a.txt\n" in warm[0][1], warm[0][1]


def test_pivot_run_plans_as_usual(with_work) -> None:
    ws = with_work
    result = ws.pivot("run")
    assert "6 ran" in result.stdout
    assert (ws.root / "summary.txt").read_text() == "10\n2\n"
    assert recalled(ws.root, printed_only=True) is None


def _dep_edited_again(ws: Workspace) -> None:
    ws.write("a.txt", "a, edited twice\n")


def _dep_restored(ws: Workspace) -> None:
    ws.write("data/x.csv", "1\n")  # norm@x and summary up to date again


def _out_of_an_upstream_run_deleted(ws: Workspace) -> None:
    (ws.root / "report" / "r.txt").unlink()


def _param_edited(ws: Workspace) -> None:
    ws.write("params.yaml", "lr: 0.2\n")


def _file_added_to_a_directory_dep(ws: Workspace) -> None:
    ws.write("data/z.txt", "z\n")


def _file_in_a_directory_dep_edited_in_place(ws: Workspace) -> None:
    with open(ws.root / "data" / "y.csv", "a") as handle:
        handle.write("3\n")


def _record_of_the_never_run_stage(ws: Workspace) -> None:
    """Only the lock file appears (a teammate's record, say): the outputs are still missing."""
    other = Workspace(ws.root.parent / "other")
    shutil.copytree(ws.root, other.root, symlinks=True)
    other.pivot("run", "extra")
    shutil.copy2(other.root / ".pivot" / "locks" / "extra.json", ws.root / ".pivot" / "locks" / "extra.json")


def _dvc_lock_of_the_never_run_stage(ws: Workspace) -> None:
    ws.write("dvc.lock", "schema: '2.0'\nstages:\n  extra:\n    cmd: cp a.txt extra.txt\n")


def _run_elsewhere(ws: Workspace, stage: str) -> None:
    """Run ``stage`` in a copy of the workspace and take the run-cache
    entries and cache objects the copy added, and nothing else."""
    other = Workspace(ws.root.parent / "other")
    shutil.copytree(ws.root, other.root, symlinks=True)
    other.pivot("run", stage)
    for name in ("runcache", "cache"):
        theirs, ours = other.root / ".pivot" / name, ws.root / ".pivot" / name
        for path in theirs.rglob("*"):
            if path.is_file() and not (ours / path.relative_to(theirs)).exists():
                (ours / path.relative_to(theirs)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, ours / path.relative_to(theirs))


def _run_cache_entry_for_the_edited_dep(ws: Workspace) -> None:
    """The run cache learns the key `prep` now has: the plan restores
    `prep` instead of running it."""
    _run_elsewhere(ws, "prep")


def _stage_edited(ws: Workspace) -> None:
    ws.write("dvc.yaml", (DVC_YAML + EXTRA).replace("cp a.txt extra.txt", "cat a.txt > extra.txt"))


def _remote_set(ws: Workspace) -> None:
    (ws.root.parent / "store").mkdir()
    ws.pivot("remote", "add", "-d", "store", "../store")  # the plan now asks the remote


def _output_dir_linked_outside(ws: Workspace) -> None:
    outside = ws.root.parent / "elsewhere"
    outside.mkdir()
    (ws.root / "extra").symlink_to(outside, target_is_directory=True)
    ws.write("dvc.yaml", DVC_YAML + EXTRA.replace("extra.txt", "extra/e.txt"))


# (change, whether the plan it makes differs from the recalled one)
CHANGES = [
    (_dep_edited_again, True), (_dep_restored, True), (_out_of_an_upstream_run_deleted, True),
    (_file_added_to_a_directory_dep, True), (_record_of_the_never_run_stage, True),
    (_dvc_lock_of_the_never_run_stage, True), (_run_cache_entry_for_the_edited_dep, True),
    (_output_dir_linked_outside, True), (_file_in_a_directory_dep_edited_in_place, True),
    # the same plan, but the memo cannot know that without planning
    (_param_edited, False), (_stage_edited, False), (_remote_set, False),
]


@pytest.mark.parametrize("change, seen", CHANGES, ids=[change.__name__.strip("_") for change, _ in CHANGES])
def test_anything_the_verdicts_could_read_otherwise_means_planning_again(with_work, tmp_path, change, seen) -> None:
    ws = with_work
    before = ws.pivot("plan", "--json").stdout
    change(ws)
    if change is not _remote_set:  # the remote is attached by the commands only
        assert recalled(ws.root, printed_only=True) is None
    warm = _outputs(ws)
    assert warm == _cold_outputs(ws, tmp_path / "cold")
    assert seen == (warm[1][1] != before)


def test_racy_inputs_are_not_united(ws) -> None:
    _write(ws)
    ws.pivot("run")
    settle()
    ws.write("a.txt", "a, edited\n")
    ws.pivot("plan")  # a.txt was written less than a racy window ago
    assert recalled(ws.root, printed_only=True) is None
    settle()
    ws.pivot("plan")
    assert recalled(ws.root, printed_only=True) is not None
    os.utime(ws.root / "a.txt")  # a touch moves the signature
    assert recalled(ws.root, printed_only=True) is None


def test_a_plan_that_restores_is_not_united(ws) -> None:
    _write(ws)
    ws.pivot("run")
    (ws.root / "report" / "r.txt").unlink()  # back from the cache: a checkout, not a run
    ws.write("a.txt", "a, edited\n")
    settle()
    plan = ws.pivot("plan").stdout
    assert "checkout  report" not in plan and "run       report" in plan  # prep reruns first
    assert recalled(ws.root, printed_only=True) is not None
    ws.write("a.txt", "a\n")  # prep up to date: report is checked out
    settle()
    assert "checkout  report" in ws.pivot("plan").stdout
    assert recalled(ws.root, printed_only=True) is None


def _settled_rows(root: Path) -> list[str]:
    import sqlite3

    with sqlite3.connect(root / ".pivot" / "state.db") as conn:
        return sorted(key for (key,) in conn.execute("SELECT identity FROM settled"))


def test_a_plan_without_work_replaces_both_entries_with_work(with_work) -> None:
    ws = with_work
    ws.pivot("status")
    assert [key.startswith("explain:") for key in _settled_rows(ws.root)] == [False, True]
    ws.pivot("run")
    settle()
    ws.pivot("status")  # nothing to do: one entry answers plan and status alike
    (key,) = _settled_rows(ws.root)
    assert not key.startswith("explain:")
    assert recalled(ws.root, explained=True) is not None and recalled(ws.root) is not None


def test_with_an_empty_run_cache_no_dep_is_hashed_and_a_first_entry_is_seen(ws, tmp_path) -> None:
    import sqlite3

    _write(ws)
    ws.pivot("run")
    shutil.rmtree(ws.root / ".pivot" / "runcache")
    ws.write("big.bin", "x" * 100_000)  # a dataset a new stage reads
    ws.write("dvc.yaml", DVC_YAML + EXTRA.replace("a.txt", "big.bin"))
    settle()
    ws.pivot("plan")
    plan = recalled(ws.root, printed_only=True)
    assert plan is not None and plan.has_work
    with sqlite3.connect(ws.root / ".pivot" / "state.db") as conn:
        assert conn.execute("SELECT count(*) FROM stat WHERE path = 'big.bin'").fetchone() == (0,), \
            "the plan and its entry read nothing of a new stage's dep"
    _run_elsewhere(ws, "extra")  # the run cache's first entry: `extra` is restored, not run
    assert recalled(ws.root, printed_only=True) is None
    warm = _outputs(ws)
    assert warm == _cold_outputs(ws, tmp_path / "cold")
    assert "restore   extra" in warm[0][1], warm[0][1]


def test_a_run_cache_entry_under_a_prefix_already_there_is_seen(ws, tmp_path) -> None:
    """An entry landing in a directory of the run cache that was there
    moves nothing but that directory: the entry looked for is kept absent."""
    _write(ws)
    ws.pivot("run")
    for prefix in range(256):  # every key prefix's directory, before the plan is united
        (ws.root / ".pivot" / "runcache" / f"{prefix:02x}").mkdir(exist_ok=True)
    ws.write("a.txt", "a, edited\n")
    settle()
    ws.pivot("plan")
    assert recalled(ws.root, printed_only=True) is not None
    _run_elsewhere(ws, "prep")
    assert recalled(ws.root, printed_only=True) is None
    warm = _outputs(ws)
    assert warm == _cold_outputs(ws, tmp_path / "cold")
    assert "restore   prep" in warm[0][1], warm[0][1]


def test_a_dep_removed_while_the_plan_is_made_is_never_kept_as_absent(with_work, tmp_path, monkeypatch) -> None:
    """The plan read `a.txt`; it is gone by the time the entry is made
    (removed during the command): the entry would say "absent" for a
    verdict made with it there, so none is made."""
    from pivot.state.settled import SettledMemo

    ws = with_work
    ws.write("a.txt", "a, edited twice\n")  # prep and extra read it again: the memo misses
    settle()
    remember = SettledMemo.remember

    def removed_meanwhile(self, *args, **kwargs):
        (ws.root / "a.txt").unlink()
        return remember(self, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(SettledMemo, "remember", removed_meanwhile)
        ws.pivot("plan")
    assert recalled(ws.root, printed_only=True) is None
    assert _outputs(ws) == _cold_outputs(ws, tmp_path / "cold")
