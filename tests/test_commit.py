"""``pivot commit``: what emitted scripts call after each stage."""

from __future__ import annotations

import json
import subprocess
import stat

import pytest

DVC_YAML = """\
stages:
  make:
    cmd: sh make.sh
    deps: [make.sh]
    outs: [out, single.txt]
"""


@pytest.fixture
def project(ws):
    ws.write("dvc.yaml", DVC_YAML)
    ws.write("make.sh", "mkdir -p out && echo a > out/a && echo s > single.txt\n")
    return ws


def run_by_hand(ws) -> None:
    subprocess.run(["sh", "make.sh"], cwd=ws.root, check=True)


def test_commit_after_running_by_hand_makes_stage_up_to_date(project):
    assert project.pivot_json("plan")["summary"]["run"] == 1
    run_by_hand(project)
    assert project.pivot("commit", "make").stdout == "Recorded 'make'.\n"
    assert project.pivot_json("plan")["summary"]["up_to_date"] == 1
    record = json.loads((project.root / ".pivot/locks/make.json").read_text())
    assert [o["path"] for o in record["outs"]] == ["out", "single.txt"]
    objects = [p for p in (project.root / ".pivot/cache/files").rglob("*") if p.is_file()]
    assert len(objects) == 3 and all(stat.S_IMODE(p.stat().st_mode) == 0o444 for p in objects)


def test_commit_missing_output_is_an_error_and_writes_nothing(project):
    result = project.pivot("commit", "make", expect=1)
    assert "stage 'make' did not produce output 'out'" in result.stderr
    assert not (project.root / ".pivot/locks/make.json").exists()


def test_commit_in_subprocess(project):
    run_by_hand(project)
    proc = project.pivot_proc("commit", "-q")
    assert proc.stdout == ""
    assert project.pivot_json("status") == {}


def test_damaged_output_is_restored_not_rerun(project):
    run_by_hand(project)
    project.pivot("commit", "-q")
    (project.root / "single.txt").unlink()
    decision = project.pivot_json("plan")["stages"][0]
    assert decision["action"] == "checkout"
    assert project.pivot_json("status") == {"make": [{"changed outs": {"single.txt": "deleted"}}]}
