"""Helpers for state/optimizer tests: hand-built IR in a real workspace."""

from __future__ import annotations

import os
import time
from pathlib import Path

from pivot.ir import Dep, Out, ParamsDep, Stage


def stage(
    name: str,
    cmd: str = "true",
    deps: tuple[str, ...] = (),
    outs: tuple[str, ...] = (),
    params: tuple[tuple[str, tuple[str, ...] | None], ...] = (),
    **flags,
) -> Stage:
    return Stage(
        address=name,
        name=name,
        file="dvc.yaml",
        wdir=".",
        cmds=(cmd,),
        deps=tuple(Dep(p, p) for p in deps),
        params=tuple(ParamsDep(path, path, keys) for path, keys in params),
        outs=tuple(Out(p, p, cache=flags.pop("cache", True)) for p in outs),
        cmd_literal=cmd,
        **flags,
    )


def age(root: Path, seconds: float = 10.0) -> None:
    """Push every mtime below ``root`` into the past, out of the racy window."""
    past = time.time() - seconds
    for dirpath, dirs, files in os.walk(root):
        if ".pivot" in dirs:
            dirs.remove(".pivot")
        for name in files:
            os.utime(os.path.join(dirpath, name), (past, past), follow_symlinks=False)


# -- memos against the plain path ---------------------------------------------

# pivot's caches of the disk: deleting them must never change an answer
CACHE_FILES = ("state.db", "state.db-wal", "state.db-shm", "pipeline.pickle", "params.pickle")


def settle() -> None:
    """Wait out the racy window: memos trust only signatures older than it
    (``os.utime`` cannot age a ctime)."""
    from pivot.signature import RACY_WINDOW_NS

    time.sleep(RACY_WINDOW_NS / 1e9 + 0.2)


def drop_caches(root: Path) -> None:
    for name in CACHE_FILES:
        (root / ".pivot" / name).unlink(missing_ok=True)


def outputs(ws, commands) -> list[tuple[int, str, str]]:
    """Exit code, stdout and stderr of each pivot command."""
    results = [ws.pivot(*command, expect=None) for command in commands]
    return [(r.exit_code, r.stdout, r.stderr) for r in results]


def cold_outputs(ws, where: Path, commands) -> list[tuple[int, str, str]]:
    """The same commands in a copy of the workspace without any cache (the
    workspace keeps its own)."""
    import shutil

    from tests.conftest import Workspace

    shutil.copytree(ws.root, where, symlinks=True)
    drop_caches(where)
    return outputs(Workspace(where), commands)


def recalled(root: Path, *, printed_only: bool = False, explained: bool = False):
    """The plan the settled memo recalls for the whole pipeline, or None."""
    from pivot.frontends import cached_identity
    from pivot.optimizer import recall_settled
    from pivot.project import Project
    from pivot.state import State

    project = Project(root=root, cwd=root)
    with State.open(project, inspect=True) as state:
        return recall_settled(state, cached_identity(project), printed_only=printed_only, explained=explained)


# -- the settled memo's workspace ----------------------------------------------

# A dvc.yaml and a Pivotfile side by side (tests of the settled memo's entries)
TWO_STAGES = """\
stages:
  prep:
    cmd: mkdir -p prep && cp a.txt prep/out.txt
    deps: [a.txt]
    params: [lr]
    outs: [prep/out.txt]
  report:
    cmd: mkdir -p report && cat prep/out.txt > report/r.txt
    deps: [prep/out.txt]
    outs: [report/r.txt]
"""

SAMPLES_PIVOTFILE = """\
SAMPLES = ["x", "y"]

rule summary:
    input: expand("norm/{s}", s=SAMPLES)
    output: "summary.txt"
    shell: "cat {input} > {output}"

rule norm:
    input: "data/{s}.csv"
    output: "norm/{s}"
    shell: "mkdir -p norm && cp {input} {output}"
"""


def write_two_pipelines(ws, dvc_yaml: str = TWO_STAGES) -> None:
    """``dvc_yaml`` and :data:`SAMPLES_PIVOTFILE` with the files they read."""
    ws.write("dvc.yaml", dvc_yaml)
    ws.write("Pivotfile", SAMPLES_PIVOTFILE)
    ws.write("a.txt", "a\n")
    ws.write("params.yaml", "lr: 0.1\n")
    ws.write("data/x.csv", "1\n")
    ws.write("data/y.csv", "2\n")
