"""The settled memo for a pipeline nothing has run in (pivot.state.settled):
``plan`` and ``run -n`` of the whole pipeline answer "never run" for every
stage without loading it -- with exactly what planning prints -- until
anything the plan could have seen otherwise changes; ``pivot run`` always
plans as usual, and ``status`` and ``--explain``, which list every dep and
out, take an entry of their own (as for any plan with work:
``tests/test_settled_with_work.py``).

Entries are made only from files settled for the racy window (2 s, mtime
and ctime); ``os.utime`` cannot age a ctime, so these tests wait for real."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pivot.optimizer import Action, SettledPlan

from tests._statehelp import TWO_STAGES, cold_outputs, outputs, recalled, settle, write_two_pipelines
from tests.conftest import Workspace

pytestmark = pytest.mark.slow  # waits out the racy window

DVC_YAML = TWO_STAGES

NEVER_RUN_PLAN = "".join(f"run       {address}\n            - never run (no lock record)\n" for address in (
    "prep", "report", "norm@x", "norm@y", "summary")) + "5 to run, 0 up to date (5 no record).\n"
PRINTED = (("plan",), ("plan", "--json"), ("run", "--dry"), ("plan", "--check"))
PLANNED = (("status",), ("plan", "--explain"), ("plan", "--no-run-cache"))


def _recalled(root: Path, *, printed_only: bool = True) -> SettledPlan | None:
    return recalled(root, printed_only=printed_only)


def _outputs(ws: Workspace, commands=PRINTED + PLANNED) -> list[tuple[int, str, str]]:
    return outputs(ws, commands)


def _cold_outputs(ws: Workspace, where: Path) -> list[tuple[int, str, str]]:
    return cold_outputs(ws, where, PRINTED + PLANNED)


@pytest.fixture
def never_run(ws) -> Workspace:
    write_two_pipelines(ws)
    (ws.root / ".pivot").mkdir()
    settle()
    ws.pivot("plan")  # every stage never run: the plan is united
    return ws


def test_a_never_run_pipeline_is_planned_without_loading_it(never_run, tmp_path, monkeypatch) -> None:
    ws = never_run
    recalled = _recalled(ws.root)
    assert recalled is not None and recalled.has_work
    assert {(d.address, d.action) for d in recalled.decisions} == {
        ("prep", Action.RUN), ("report", Action.RUN), ("norm@x", Action.RUN), ("norm@y", Action.RUN),
        ("summary", Action.RUN)}
    # commands that run or explain never take it
    assert _recalled(ws.root, printed_only=False) is None

    def no_loading(*args, **kwargs):
        raise AssertionError("the pipeline was loaded")

    with monkeypatch.context() as patched:
        patched.setattr("pivot.cli.common.load", no_loading)
        warm = _outputs(ws, PRINTED)
    assert warm[0] == (0, NEVER_RUN_PLAN, "")
    assert warm[3][0] == 1  # --check: there is work
    assert warm + _outputs(ws, PLANNED) == _cold_outputs(ws, tmp_path / "cold")


def test_status_of_a_never_run_pipeline_is_recalled_after_one_status(never_run, tmp_path, monkeypatch) -> None:
    ws = never_run
    explained = (("status",), ("status", "--json"), ("plan", "--explain"))
    ws.pivot("status")  # lists every dep and out of each stage: an explained entry of its own
    recalled_plan = recalled(ws.root, printed_only=True, explained=True)
    assert recalled_plan is not None and recalled_plan.has_work

    def no_loading(*args, **kwargs):
        raise AssertionError("the pipeline was loaded")

    with monkeypatch.context() as patched:
        patched.setattr("pivot.cli.common.load", no_loading)
        warm = _outputs(ws, explained)
    assert warm == cold_outputs(ws, tmp_path / "cold", explained)
    assert "\tdeleted:            prep/out.txt\n" in warm[0][1], warm[0][1]
    assert _recalled(ws.root) is not None, "the never-run entry is kept beside it"


def test_pivot_run_plans_as_usual(never_run) -> None:
    ws = never_run
    result = ws.pivot("run")
    assert "5 ran" in result.stdout
    assert (ws.root / "summary.txt").read_text() == "1\n2\n"
    assert _recalled(ws.root) is None  # records now exist


def _record_one_stage(ws: Workspace) -> None:
    ws.pivot("run", "prep")


def _dangling_dep(ws: Workspace) -> None:
    (ws.root / "a.txt").unlink()
    (ws.root / "a.txt").symlink_to(ws.root / "nowhere.txt")


def _missing_dep_appears(ws: Workspace) -> None:
    ws.write("prep/out.txt", "by hand\n")


def _deleted_dep(ws: Workspace) -> None:
    (ws.root / "data" / "y.csv").unlink()


def _broken_params(ws: Workspace) -> None:
    ws.write("params.yaml", "lr: [0.1\n")


def _run_cache_entry(ws: Workspace) -> None:
    ws.pivot("run", "prep")  # a run-cache entry, then no record again
    shutil.rmtree(ws.root / ".pivot" / "locks")
    shutil.rmtree(ws.root / "prep")


def _dvc_lock_entry(ws: Workspace) -> None:
    ws.write("dvc.lock", "schema: '2.0'\nstages:\n  prep:\n    cmd: mkdir -p prep && cp a.txt prep/out.txt\n")


def _teammates_run_on_the_remote(ws: Workspace) -> None:
    teammate = Workspace(ws.root.parent / "teammate")
    shutil.copytree(ws.root, teammate.root, symlinks=True)
    teammate.pivot("remote", "add", "-d", "store", "../store")
    teammate.pivot("run", "prep")
    teammate.pivot("push")
    ws.pivot("remote", "add", "-d", "store", "../store")  # the plan now asks the remote's run cache


def _directory_dep(ws: Workspace) -> None:
    (ws.root / "data" / "x.csv").unlink()
    ws.write("data/x.csv/inner.txt", "1\n")


def _link_out_dir_outside(ws: Workspace) -> None:
    outside = ws.root.parent / "elsewhere"
    outside.mkdir()
    (ws.root / "norm").symlink_to(outside, target_is_directory=True)


def _edit_stage(ws: Workspace) -> None:
    ws.write("dvc.yaml", DVC_YAML.replace("cat prep/out.txt", "sort prep/out.txt"))


# (change, whether the plan it makes says more than "never run" for each stage)
CHANGES = [
    (_record_one_stage, True), (_dangling_dep, True), (_broken_params, True), (_run_cache_entry, True),
    (_dvc_lock_entry, True), (_link_out_dir_outside, True), (_teammates_run_on_the_remote, True),
    # the same plan, but the memo cannot know that without planning
    (_missing_dep_appears, False), (_deleted_dep, False), (_directory_dep, False), (_edit_stage, False),
]


@pytest.mark.parametrize("change, seen", CHANGES, ids=[change.__name__.strip("_") for change, _ in CHANGES])
def test_anything_the_plan_could_see_otherwise_means_planning_again(never_run, tmp_path, change, seen) -> None:
    ws = never_run
    change(ws)
    if change is not _teammates_run_on_the_remote:  # the remote is attached by the commands only
        assert _recalled(ws.root) is None
    warm = _outputs(ws)
    assert warm == _cold_outputs(ws, tmp_path / "cold")
    assert seen == (warm[0] != (0, NEVER_RUN_PLAN, ""))


def test_racy_inputs_are_not_united(ws) -> None:
    ws.write("dvc.yaml", DVC_YAML)
    ws.write("a.txt", "a\n")
    ws.write("params.yaml", "lr: 0.1\n")
    (ws.root / ".pivot").mkdir()
    ws.pivot("plan")  # a.txt was written less than a racy window ago
    assert _recalled(ws.root) is None
    settle()
    ws.pivot("plan")
    assert _recalled(ws.root) is not None
    os.utime(ws.root / "a.txt")  # a touch moves the signature
    assert _recalled(ws.root) is None


def test_a_directory_dep_is_never_united(ws, tmp_path) -> None:
    """A directory's signature does not show an edit inside it: a plan that
    read one is not united, and a dangling link added inside is reported."""
    ws.write("dvc.yaml", "stages:\n  listing:\n    cmd: ls d > listing.txt\n    deps: [d]\n    outs: [listing.txt]\n")
    ws.write("d/one.txt", "1\n")
    (ws.root / ".pivot").mkdir()
    settle()
    ws.pivot("plan")
    assert _recalled(ws.root) is None
    (ws.root / "d" / "gone.txt").symlink_to(ws.root / "nowhere.txt")
    warm = _outputs(ws)
    assert warm == _cold_outputs(ws, tmp_path / "cold")
    assert warm[0][0] != 0 and "gone.txt" in warm[0][2]
