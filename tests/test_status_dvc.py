"""``pivot status`` against real DVC: same project, same edits, same answer.

The project, its dvc.lock files and DVC's ``dvc status`` outputs were
recorded with DVC 3.67.1 by ``fixtures/dvclock/record.py``.  pivot first
adopts the dvc.lock (one status), then sees the edit.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "dvclock"
sys.path.insert(0, str(FIXTURES))
from scenarios import BEFORE_ADOPTION_ONLY, SCENARIOS  # noqa: E402


@pytest.fixture
def project(ws):
    shutil.copytree(FIXTURES / "project", ws.root, dirs_exist_ok=True)
    return ws


@pytest.mark.parametrize("scenario", sorted(set(SCENARIOS) - BEFORE_ADOPTION_ONLY))
@pytest.mark.slow
def test_status_json_matches_dvc(project, scenario):
    project.pivot("run")  # adopts dvc.lock
    SCENARIOS[scenario](project.root)
    expected = json.loads((FIXTURES / "status" / f"{scenario}.json").read_text())
    result = project.pivot("status", "--json")
    assert json.loads(result.stdout) == expected
    assert int((FIXTURES / "status" / f"{scenario}.rc").read_text()) == result.exit_code


@pytest.mark.parametrize("scenario", ["param_modified", "out_deleted", "cmd_changed", "dep_modified"])
def test_status_text_matches_dvc(project, scenario):
    project.pivot("status")
    SCENARIOS[scenario](project.root)
    expected = (FIXTURES / "status" / f"{scenario}.txt").read_text()
    assert project.pivot("status").stdout == expected


def test_clean_status_text(project):
    project.pivot("status")
    assert project.pivot("status").stdout == "Pipelines are up to date.\n"


def test_status_quiet_exit_code(project):
    project.pivot("status", "-q")
    SCENARIOS["dep_modified"](project.root)
    assert project.pivot("status", "-q", expect=1).stdout == ""


def test_status_targets_only_that_stage(project):
    project.pivot("status")
    SCENARIOS["dep_modified"](project.root)
    assert json.loads(project.pivot("status", "train", "--json").stdout) == {}
    assert list(json.loads(project.pivot("status", "train", "--with-deps", "--json").stdout)) == ["prepare"]


def test_warm_status_reads_no_file_content(project, monkeypatch):
    import os
    import time

    from pivot.state import hashing

    project.pivot("run")  # adopts, hashes and caches everything
    past = time.time() - 10  # out of the racy window
    for dirpath, dirs, files in os.walk(project.root):
        dirs[:] = [d for d in dirs if d != ".pivot"]
        for name in files:
            os.utime(os.path.join(dirpath, name), (past, past))
    project.pivot("status")  # refreshes the stat rows once

    def no_reads(path):
        raise AssertionError(f"warm status read {path}")

    monkeypatch.setattr(hashing, "file_digest", no_reads)
    assert project.pivot("status", "--json").stdout.strip() == "{}"
