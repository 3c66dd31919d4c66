"""Adopting a dvc.lock written by real DVC (fixtures/dvclock)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pivot.state.dvclock import md5_dir, md5_file

FIXTURES = Path(__file__).parent / "fixtures" / "dvclock"


@pytest.fixture
def project(ws):
    shutil.copytree(FIXTURES / "project", ws.root, dirs_exist_ok=True)
    return ws


def test_md5_matches_what_dvc_recorded(project):
    assert md5_file(project.root / "data/raw.txt") == "12ef4b45f1d7deca7a489e8cb4ecaa44"
    assert md5_dir(project.root / "data/dir") == ("6ea46d53348e675e87743182f72de908.dir", 4, 2)
    assert md5_dir(project.root / "model")[0] == "32f07ddb1f030d09105ff6be02e9b966.dir"


def test_legacy_md5_converts_crlf_in_text_only(tmp_path):
    (tmp_path / "t.txt").write_bytes(b"a\r\nb\r\n")
    (tmp_path / "u.txt").write_bytes(b"a\nb\n")
    (tmp_path / "bin").write_bytes(b"\x00\r\n")
    assert md5_file(tmp_path / "t.txt", dos2unix=True) == md5_file(tmp_path / "u.txt")
    assert md5_file(tmp_path / "t.txt") != md5_file(tmp_path / "u.txt")
    assert md5_file(tmp_path / "bin", dos2unix=True) == md5_file(tmp_path / "bin")


def test_matching_dvc_lock_is_adopted_once(project):
    plan = json.loads(project.pivot("plan", "--json").stdout)
    assert plan["summary"]["adopted"] == 5 and plan["summary"]["run"] == 0
    assert all(stage["adopted"] for stage in plan["stages"])
    assert not (project.root / ".pivot").exists()  # an inspection: decided, not written
    assert json.loads(project.pivot("plan", "--json").stdout)["summary"]["adopted"] == 5
    assert project.pivot("run").stdout.startswith("0 ran, 0 restored, 5 up to date")
    record = json.loads((project.root / ".pivot/locks/train.json").read_text())
    assert record["adopted_from"] == "dvc.lock"
    assert json.loads((project.root / ".pivot/locks/sub%2Fdvc%2Eyaml%3Asummary.json").read_text())[
        "adopted_from"] == "sub/dvc.lock"
    again = json.loads(project.pivot("plan", "--json").stdout)
    assert again["summary"]["adopted"] == 0 and again["summary"]["up_to_date"] == 5


def test_status_and_plan_say_what_was_adopted(project):
    text = project.pivot("plan").stdout
    assert "Adopted from dvc.lock (up to date): prepare, train, score@0.5, score@1.5" in text


def test_mismatch_is_not_adopted(project):
    (project.root / "data/raw.txt").write_text("different\n")
    plan = json.loads(project.pivot("plan", "--json").stdout)
    by_address = {s["address"]: s for s in plan["stages"]}
    assert by_address["prepare"]["action"] == "run" and not by_address["prepare"]["adopted"]
    # compared with its dvc.lock entry: DVC's exact reason, not "never run"
    assert [(r["kind"], r.get("path")) for r in by_address["prepare"]["reasons"]] == [
        ("dep_modified", "data/raw.txt")]
    # stages whose own entry still matches are adopted, but rerun for upstream
    assert by_address["train"]["adopted"] and by_address["train"]["action"] == "run"


def test_changed_command_or_params_are_not_adopted(project):
    dvc_yaml = project.root / "dvc.yaml"
    dvc_yaml.write_text(dvc_yaml.read_text().replace("tr a-z A-Z", "tr a-z A-Z "))
    params = project.root / "params.yaml"
    params.write_text(params.read_text().replace("lr: 0.1", "lr: 0.3"))
    plan = json.loads(project.pivot("plan", "--json").stdout)
    by_address = {s["address"]: s for s in plan["stages"]}
    assert not by_address["prepare"]["adopted"] and not by_address["train"]["adopted"]
    assert by_address["score@0.5"]["adopted"]


def test_legacy_entry_without_hash_key_is_adopted(project):
    """DVC 2 entries (no ``hash:``) hashed text with CRLF turned into LF."""
    lock = project.root / "dvc.lock"
    lock.write_text(lock.read_text().replace("      hash: md5\n", ""))
    (project.root / "data/raw.txt").write_bytes(b"Hello World\r\nsecond line\r\n")
    plan = json.loads(project.pivot("plan", "--json").stdout)
    assert plan["summary"]["adopted"] == 5 and plan["summary"]["run"] == 0


def test_dvc3_entry_does_not_ignore_crlf(project):
    (project.root / "data/raw.txt").write_bytes(b"Hello World\r\nsecond line\r\n")
    plan = json.loads(project.pivot("plan", "--json").stdout)
    assert {s["address"] for s in plan["stages"] if not s["adopted"]} == {"prepare"}


def test_corrupt_dvc_lock_warns_and_is_ignored(project):
    (project.root / "dvc.lock").write_text("stages: [unclosed\n")
    result = project.pivot("plan", "--json")
    assert "dvc.lock" in result.stderr
    assert json.loads(result.stdout)["summary"]["adopted"] == 1  # only sub/dvc.lock


def test_md5s_are_computed_once_then_stat_cached(project):
    """A DVC project pivot never ran: every status compares md5s with
    dvc.lock.  They are remembered by stat like pivot's own hashes, so only
    the first command reads the files (and one edited since)."""
    from pivot.optimizer import make_plan
    from pivot.project import Project
    from pivot.state import State
    from pivot import targets
    from pivot.frontends import load_pipeline

    from tests._statehelp import age

    (project.root / ".pivot").mkdir()  # caches are kept only in an existing .pivot/
    age(project.root)  # out of the racy window

    def plan_reading():
        proj = Project(root=project.root, cwd=project.root)
        pipeline = load_pipeline(proj)
        with State.open(proj, inspect=True) as state:
            plan = make_plan(pipeline, targets.select(pipeline, proj), state)
            return plan, state._adopter.files_read

    first, read_first = plan_reading()
    assert read_first > 0 and len(first.adopted) == 5
    again, read_again = plan_reading()
    assert read_again == 0 and [d.address for d in again.adopted] == [d.address for d in first.adopted]
    (project.root / "data/raw.txt").write_text("different\n")
    changed, read_changed = plan_reading()
    assert read_changed == 1 and "prepare" not in {d.address for d in changed.adopted}
    assert not list((project.root / ".pivot").glob("locks/*")), "an inspection records nothing"
