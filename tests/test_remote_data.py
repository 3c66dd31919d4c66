"""Both halves of ``--executor-data remote`` without Dask: the coordinator's
``RemoteData`` and the worker's ``run_remote_stage`` called in this process,
with a local-directory remote (the Dask and S3 path: test_dask_remote_data.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pivot.backends.dask_remote_task import RemoteStageTask, run_remote_stage
from pivot.backends.remote_data import RemoteData, open_default_remote
from pivot.errors import PivotError
from pivot.ir import Dep, Out, ParamsDep, Stage
from pivot.project import Project
from pivot.state import State
from pivot.state.locks import LockEntry

STAGE = Stage(address="count", name="count", file="dvc.yaml", wdir="work",
              cmds=("mkdir -p ../out && cat ../data/a.txt ../data/sub/b.txt > ../out/all.txt && wc -l < ../params.yaml > n.txt",
                    "pwd > where.txt"),
              deps=(Dep("data", "../data"),), params=(ParamsDep("params.yaml", "../params.yaml", ("k",)),),
              outs=(Out("out", "../out"), Out("work/n.txt", "n.txt"), Out("work/where.txt", "where.txt", cache=False)))


@pytest.fixture
def project(ws):
    ws.write("data/a.txt", "a\n")
    ws.write("data/sub/b.txt", "b\n")
    ws.write("params.yaml", "k: 1\n")
    ws.write(".dvcignore", "*.tmp\n")
    ws.write("work/.keep", "")
    ws.pivot("remote", "add", "-d", "store", "../store")
    return ws


@pytest.mark.slow
def test_inputs_go_up_the_stage_runs_elsewhere_and_its_outputs_come_back(project) -> None:
    with State.open(Project(project.root, project.root)) as state:
        data = RemoteData(state, open_default_remote(project.root, project.root / ".pivot"))
        inputs = data.stage_inputs(STAGE)
        assert [e.path for e in inputs] == [".dvcignore", "data", "params.yaml"]
        worker_url = Path(data.worker_remote.url)  # absolute: workers do not start in the project
        assert worker_url.is_absolute() and worker_url.resolve() == (project.root.parent / "store").resolve()
        outcome = run_remote_stage(RemoteStageTask("r1", STAGE, data.worker_remote, inputs, None))
        assert (outcome.error, outcome.exit_code) == (None, 0)
        assert [e.path for e in outcome.outputs] == ["out", "work/n.txt", "work/where.txt"]
        assert b"> pwd > where.txt" in outcome.log  # the worker's log comes back with the outcome
        data.place_outputs(STAGE, outcome.outputs)
    assert project.read("out/all.txt") == "a\nb\n"
    assert project.read("work/n.txt") == "1\n"
    scratch = Path(project.read("work/where.txt").strip())
    assert scratch.name == "work" and not scratch.is_relative_to(project.root)
    assert not scratch.parent.parent.exists()  # the scratch directory is gone


def test_a_missing_dep_and_a_foreign_output_are_refused(project) -> None:
    with State.open(Project(project.root, project.root)) as state:
        data = RemoteData(state, open_default_remote(project.root, project.root / ".pivot"))
        lost = Stage(address="x", name="x", file="dvc.yaml", wdir=".", cmds=("true",), deps=(Dep("nope", "nope"),))
        with pytest.raises(PivotError, match="'nope' does not exist"):
            data.stage_inputs(lost)
        with pytest.raises(PivotError, match="the worker returned 'params.yaml'"):
            data.place_outputs(STAGE, [LockEntry("params.yaml", "0" * 32, 1)])
    assert project.read("params.yaml") == "k: 1\n"


def test_a_worker_that_cannot_fetch_an_input_names_the_remote(project, tmp_path) -> None:
    with State.open(Project(project.root, project.root)) as state:
        data = RemoteData(state, open_default_remote(project.root, project.root / ".pivot"))
        inputs = data.stage_inputs(STAGE)
    missing = (LockEntry("data", "0" * 32 + ".dir", 4, 2), *inputs[2:])
    outcome = run_remote_stage(RemoteStageTask("r2", STAGE, data.worker_remote, missing, None))
    assert outcome.exit_code is None and outcome.outputs is None
    assert outcome.error.startswith("worker pid ")
    assert "cannot fetch the stage's inputs: not on remote 'store': files/xxh3/00/" in outcome.error
