"""``status``, ``plan``, ``why``, ``list``, ``dag`` and ``log`` only inspect:
no lock record, cache object or run-cache entry is written, on a DVC
project or anywhere else, and a read-only project still gets answers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.unprivileged import make_read_only

FIXTURES = Path(__file__).parent / "fixtures"
INSPECTIONS = (("status",), ("status", "--json"), ("plan",), ("plan", "--json"), ("why", "train"), ("list",),
               ("dag",), ("run", "--dry"))


def _git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True, text=True).stdout


def _listing(top: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under ``top`` with its mtime and content, the stat cache excepted."""
    found = {}
    for path in sorted(top.rglob("*")):
        if path.is_file() and not path.name.startswith("state.db"):
            found[path.relative_to(top).as_posix()] = (path.stat().st_mtime_ns, path.read_bytes())
    return found


@pytest.fixture
def dvc_project(ws):
    shutil.copytree(FIXTURES / "dvclock" / "project", ws.root, dirs_exist_ok=True)
    return ws


def test_inspecting_a_dvc_project_changes_nothing_git_can_see(dvc_project):
    root = dvc_project.root
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "dvc project")
    (root / "data/raw.txt").write_text("changed\n")  # something stale, something adoptable
    before = _git(root, "status", "--porcelain")
    for args in INSPECTIONS:
        dvc_project.pivot(*args, expect=None)
    assert _git(root, "status", "--porcelain") == before
    assert not (root / ".pivot").exists()


def test_inspection_writes_no_record_cache_object_or_run_cache_entry(dvc_project):
    root = dvc_project.root
    dvc_project.pivot("run")  # adopts what matches: .pivot/ now exists
    (root / "params.yaml").write_text((root / "params.yaml").read_text().replace("0.5", "0.25"))
    (root / "prepared.txt").unlink()  # a checkout to plan
    before = _listing(root / ".pivot")
    for args in (*INSPECTIONS, ("log",)):
        dvc_project.pivot(*args, expect=None)
    assert _listing(root / ".pivot") == before


def test_adoption_is_decided_by_status_and_written_by_run(dvc_project):
    assert dvc_project.pivot_json("plan")["summary"]["adopted"] == 5
    assert not (dvc_project.root / ".pivot").exists()
    dvc_project.pivot("run")
    records = sorted(p.name for p in (dvc_project.root / ".pivot/locks").iterdir())
    assert len(records) == 5
    assert dvc_project.pivot_json("plan")["summary"] == {**dvc_project.pivot_json("plan")["summary"], "adopted": 0}


@pytest.mark.slow
@pytest.mark.parametrize("ran_before", [False, True], ids=["never-run", "after-a-run"])
def test_status_answers_on_a_read_only_project_as_a_normal_user(unprivileged, ran_before):
    root = unprivileged.project()
    shutil.copytree(FIXTURES / "dvclock" / "project", root, dirs_exist_ok=True)
    unprivileged.chown(root)
    if ran_before:
        unprivileged.pivot(root, "run")
    (root / "data/raw.txt").write_text("changed\n")
    make_read_only(root)
    status = json.loads(unprivileged.pivot(root, "status", "--json").stdout)
    assert status == {"prepare": [{"changed deps": {"data/raw.txt": "modified"}}]}
    plan = json.loads(unprivileged.pivot(root, "plan", "--json").stdout)
    assert [s["address"] for s in plan["stages"] if s["action"] == "run"][:2] == ["prepare", "train"]
    assert "will run" in unprivileged.pivot(root, "why", "prepare").stdout
