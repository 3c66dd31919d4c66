"""Data tracked with .dvc files (`dvc add`, DVC 2 and 3 formats) against
real DVC: the project, its DVC cache and DVC's `dvc status --json` after
each edit were recorded with DVC 3.67.1 by fixtures/dvcfiles/record.py."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "dvcfiles"
sys.path.insert(0, str(FIXTURES))
from dvcfile_scenarios import SCENARIOS  # noqa: E402


@pytest.fixture
def project(ws):
    shutil.copytree(FIXTURES / "project", ws.root, dirs_exist_ok=True)
    return ws


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_status_json_matches_dvc(project, scenario):
    SCENARIOS[scenario](project.root)
    expected = json.loads((FIXTURES / "status" / f"{scenario}.json").read_text())
    result = project.pivot("status", "--json")
    assert json.loads(result.stdout) == expected
    assert list(json.loads(result.stdout)) == list(expected)  # DVC's order too
    assert "is frozen" not in result.stderr  # tracked data is no frozen stage for DVC's warning


def test_tracked_data_is_listed_as_a_kind_of_its_own_and_graphed(project):
    stages = {s["address"]: s for s in project.pivot_json("list")["stages"]}
    assert stages["data/raw.csv.dvc"]["kind"] == "data" and "kind" not in stages["prep"]
    assert stages["data/images.dvc"]["outs"][0]["path"] == "data/images"
    assert stages["data/raw.csv.dvc"]["cmd"] == []
    assert "prep  <- data/raw.csv.dvc, legacy.txt.dvc" in project.pivot("dag").stdout


def test_changed_data_is_recorded_as_new_input_and_its_users_rerun(project):
    SCENARIOS["file_modified"](project.root)
    plan = {s["address"]: s["action"] for s in project.pivot_json("plan")["stages"]}
    assert plan["data/raw.csv.dvc"] == "record frozen" and plan["prep"] == "run"
    project.pivot("run")
    assert project.read("prep.txt").startswith("a,b\n1,3\n")
    assert project.pivot_json("status") == {}
    assert project.read("data/raw.csv.dvc") == (FIXTURES / "project/data/raw.csv.dvc").read_text()  # DVC's file untouched


def test_deleted_data_comes_back_from_dvcs_cache(project):
    SCENARIOS["file_deleted"](project.root)
    [decision] = [s for s in project.pivot_json("plan")["stages"] if s["address"] == "data/raw.csv.dvc"]
    assert (decision["action"], decision["source"]) == ("checkout", "dvc_cache")
    result = project.pivot("run")
    assert "0 ran" in result.stdout
    assert project.read("data/raw.csv") == "a,b\n1,2\n"


def test_deleted_data_missing_from_every_cache_fails_its_stage(project):
    SCENARIOS["fresh_clone_file_deleted"](project.root)
    result = project.pivot("run", expect=1)
    assert "missing output 'data/raw.csv'" in result.stdout and "blocked prep" in result.stdout


def test_a_dvc_file_pointing_outside_is_refused_at_load(project):
    project.write("evil.dvc", "outs:\n- md5: 0123456789abcdef0123456789abcdef\n  path: ../outside.txt\n")
    result = project.pivot("status", expect=1)
    assert "evil.dvc" in result.stderr and "outside the project" in result.stderr


def test_a_malformed_dvc_file_is_a_one_line_error(project):
    project.write("bad.dvc", "outs: 3\n")
    result = project.pivot("list", expect=1)
    assert result.stderr == "ERROR: bad.dvc: 'outs' must be a non-empty list\n"
