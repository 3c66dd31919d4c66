"""Every `Action` means the same thing in every back end.

For each member of `Action` a small workspace puts one stage in that state
(checked against `pivot plan`); then `pivot run`, the script of `pivot emit
sh` run by bash and the file of `pivot emit ninja` run by real Ninja each
handle it in a copy of that workspace, and must leave the same files and
the same lock records.  A new `Action` member fails here until it has a
scenario, and the back ends fail on it until they know it (their `match`
statements have no default).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Callable

import pytest

from pivot.optimizer import Action
from tests.conftest import Workspace
from tests.emit_helpers import NINJA, results

STAGE = """\
stages:
  s:
    cmd: echo "ran $(cat in.txt)" > out.txt
    deps: [in.txt]
    outs: [out.txt]
"""

FROZEN = """\
stages:
  s:
    cmd: echo ran > out.txt
    frozen: true
    outs: [out.txt]
"""


def _run(ws: Workspace) -> None:
    ws.pivot("run", "-j", "1")


def _never_run(ws: Workspace) -> str:
    ws.write("dvc.yaml", STAGE)
    ws.write("in.txt", "1\n")
    return "ran 1\n"


def _output_deleted(ws: Workspace) -> str:
    _never_run(ws)
    _run(ws)
    (ws.root / "out.txt").unlink()
    return "ran 1\n"


def _earlier_run_cached(ws: Workspace) -> str:
    _never_run(ws)
    _run(ws)
    ws.write("in.txt", "2\n")
    _run(ws)
    ws.write("in.txt", "1\n")  # back to a key the run cache holds
    return "ran 1\n"


def _frozen_output_made_by_hand(ws: Workspace) -> str:
    ws.write("dvc.yaml", FROZEN)
    ws.write("out.txt", "manual\n")
    return "manual\n"


def _nothing_changed(ws: Workspace) -> str:
    _never_run(ws)
    _run(ws)
    return "ran 1\n"


def _frozen_and_recorded(ws: Workspace) -> str:
    _frozen_output_made_by_hand(ws)
    _run(ws)
    return "manual\n"


# Action -> a workspace where stage `s` gets that action; returns what out.txt
# must hold once any back end is done.
SCENARIOS: dict[Action, Callable[[Workspace], str]] = {
    Action.RUN: _never_run,
    Action.CHECKOUT: _output_deleted,
    Action.RESTORE_RUN: _earlier_run_cached,
    Action.RECORD_FROZEN: _frozen_output_made_by_hand,
    Action.UP_TO_DATE: _nothing_changed,
    Action.FROZEN: _frozen_and_recorded,
}


def _with_pivot_run(root: Path) -> None:
    Workspace(root).pivot("run", "-j", "1")


def _with_sh(root: Path) -> None:
    Workspace(root).pivot("emit", "sh", "-o", "plan.sh")
    proc = subprocess.run(["bash", "plan.sh"], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _with_ninja(root: Path) -> None:
    Workspace(root).pivot("emit", "ninja")
    proc = subprocess.run([NINJA], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


BACKENDS = {"run": _with_pivot_run, "sh": _with_sh, "ninja": _with_ninja}


@pytest.mark.slow
@pytest.mark.parametrize("action", list(Action), ids=lambda a: a.name)
def test_every_back_end_does_what_pivot_run_does(ws, tmp_path, action):
    if action not in SCENARIOS:
        pytest.fail(f"no scenario for {action}: add one, and teach every back end (sh, ninja, run) about it")
    expected = SCENARIOS[action](ws)
    planned = {s["address"]: s["action"] for s in ws.pivot_json("plan")["stages"]}
    assert planned == {"s": action.value}

    after: dict[str, dict[str, object]] = {}
    for name, backend in BACKENDS.items():
        copy = tmp_path / name
        shutil.copytree(ws.root, copy, symlinks=True)
        backend(copy)
        assert (copy / "out.txt").read_text() == expected, name
        assert "Pipelines are up to date" in Workspace(copy).pivot("status").stdout, name
        after[name] = results(copy)
    assert after["sh"] == after["run"]
    assert after["ninja"] == after["run"]


@pytest.mark.slow
def test_a_checkout_from_dvcs_cache_restores_in_every_back_end(ws, tmp_path):
    """CHECKOUT from DVC's own cache (a stage known only from dvc.lock):
    `pivot checkout` alone would not find it in pivot's cache; every back
    end restores it as `pivot run` does."""
    import hashlib

    shutil.copytree(Path(__file__).parent / "fixtures" / "dvclock" / "project", ws.root, dirs_exist_ok=True)
    data = (ws.root / "prepared.txt").read_bytes()
    md5 = hashlib.md5(data).hexdigest()
    ws.write(f".dvc/cache/files/md5/{md5[:2]}/{md5[2:]}", data.decode())
    (ws.root / "prepared.txt").unlink()
    planned = {s["address"]: s["action"] for s in ws.pivot_json("plan")["stages"]}
    assert planned["prepare"] == Action.CHECKOUT.value

    for name, backend in BACKENDS.items():
        copy = tmp_path / name
        shutil.copytree(ws.root, copy, symlinks=True)
        backend(copy)
        assert (copy / "prepared.txt").read_bytes() == data, name
        assert "Pipelines are up to date" in Workspace(copy).pivot("status").stdout, name
