"""Plans see the remote: a stage whose outputs are missing locally but on
the default remote is pulled, a stale stage whose run key is in the
remote's run cache is restored from it, and `pivot run` downloads instead
of recomputing.  Local-directory remote here; S3 in the last test."""

from __future__ import annotations

import shutil

import pytest

from tests.remote_helpers import clone, make_project, outputs, runs


@pytest.fixture
def project(ws):
    make_project(ws)
    ws.pivot("remote", "add", "-d", "store", "../store")
    ws.pivot("push")
    return ws


def _listing(top):
    return {p.relative_to(top).as_posix(): p.stat().st_mtime_ns for p in top.rglob("*")
            if p.is_file() and not p.name.startswith("state.db")}


def test_a_fresh_clone_plans_pulls_and_runs_nothing(project, tmp_path):
    other = clone(project, tmp_path / "other")
    before = _listing(other.root / ".pivot")
    plan = other.pivot_json("plan")
    assert [(s["address"], s["action"], s.get("source")) for s in plan["stages"]] == [
        ("prep", "checkout", "remote"), ("train", "checkout", "remote")]
    text = other.pivot("plan").stdout
    assert "pull      prep  (from the remote)" in text and "2 to pull from the remote" in text
    assert "will be restored from the remote" in other.pivot("why", "train").stdout
    assert _listing(other.root / ".pivot") == before  # planning downloaded nothing
    result = other.pivot("run")
    assert "2 restored" in result.stdout and "restored prep from the remote" in result.stdout
    assert runs(other) == [] and outputs(other) == outputs(project)
    assert other.pivot("status").stdout == "Pipelines are up to date.\n"


def test_a_clone_without_records_restores_from_the_remote_run_cache(project, tmp_path):
    other = clone(project, tmp_path / "other")
    shutil.rmtree(other.root / ".pivot/locks")  # nothing recorded here yet
    plan = other.pivot_json("plan")
    by_address = {s["address"]: s for s in plan["stages"]}
    assert (by_address["prep"]["action"], by_address["prep"]["source"]) == (
        "restore from run cache", "remote_run_cache")
    assert "(from the remote run cache: run of " in other.pivot("plan").stdout
    other.pivot("run")
    # train writes a cache: false metric, so it has no run-cache entry and runs
    assert runs(other) == ["train"]
    assert outputs(other) == outputs(project)


def test_a_teammates_new_run_is_restored_not_recomputed(project, tmp_path):
    other = clone(project, tmp_path / "other")
    other.pivot("pull")
    for ws in (project, other):
        ws.write("params.yaml", "train:\n  lr: 0.2\n")
    other.pivot("run")
    assert runs(other) == ["prep", "train"]  # a new param value: computed once, here
    other.pivot("push")
    project.pivot("run")
    assert runs(project) == ["prep", "train", "train"]  # prep came from the teammate's run
    assert (project.root / "data/a.txt").read_bytes() == (other.root / "data/a.txt").read_bytes()


def test_no_remote_keeps_a_run_local(project, tmp_path):
    other = clone(project, tmp_path / "other")
    assert {s["action"] for s in other.pivot_json("plan", "--no-remote")["stages"]} == {"run"}
    other.pivot("run", "--no-remote")
    assert runs(other) == ["prep", "train"]


def test_status_names_what_the_remote_can_restore(project, tmp_path):
    other = clone(project, tmp_path / "other")
    assert other.pivot_json("status") == other.pivot_json("status", "--remote")  # DVC's shape either way
    text = other.pivot("status", "--remote").stdout
    assert "\t(restorable from the remote)" in text
    assert "restorable" not in other.pivot("status").stdout


def test_a_remote_that_lost_an_object_is_not_planned_from(project, tmp_path):
    other = clone(project, tmp_path / "other")
    for obj in (tmp_path / "store" / "files").rglob("*"):
        if obj.is_file() and obj.stat().st_size < 200 and b"relpath" not in obj.read_bytes():
            obj.unlink()  # the small file objects, not the manifest
    plan = other.pivot_json("plan")
    assert plan["stages"][0]["action"] == "run"


@pytest.mark.slow
def test_s3_remote_plans_and_restores(ws, moto_s3, s3_bucket, tmp_path):
    pytest.importorskip("s3fs")
    make_project(ws)
    ws.pivot("remote", "add", "-d", "s3", f"s3://{s3_bucket}/plans")
    ws.pivot("remote", "modify", "s3", "endpointurl", moto_s3.endpoint)
    ws.pivot("push")
    other = clone(ws, tmp_path / "other")
    assert {s.get("source") for s in other.pivot_json("plan")["stages"]} == {"remote"}
    other.pivot("run")
    assert runs(other) == [] and outputs(other) == outputs(ws)


def test_gc_on_a_remote_lists_and_removes_only_when_asked(project, tmp_path):
    project.write("params.yaml", "train:\n  lr: 0.2\n")
    project.pivot("run")
    project.pivot("push")  # the remote now holds both runs' objects
    store = tmp_path / "store" / "files"
    before = sorted(p for p in store.rglob("*") if p.is_file())
    listed = project.pivot("gc", "--remote", "store").stdout
    assert "3 objects no current lock record of this checkout needs" in listed  # lr=0.1: data/a.txt, manifest, model.bin
    assert "Nothing was removed" in listed
    assert sorted(p for p in store.rglob("*") if p.is_file()) == before
    project.pivot("gc", "--remote", "store", "--delete-on-remote")
    assert len([p for p in store.rglob("*") if p.is_file()]) == len(before) - 3
    other = clone(project, tmp_path / "other")
    other.pivot("run")
    assert runs(other) == [] and outputs(other) == outputs(project)  # what is current stays restorable
    assert "--delete-on-remote needs --remote" in project.pivot("gc", "--delete-on-remote", expect=1).stderr


@pytest.mark.parametrize("records", [True, False], ids=["pull", "remote-run-cache"])
def test_a_run_downloads_what_its_restores_need_in_one_batch_first(project, tmp_path, records):
    """Before the first stage starts, every object the plan's remote restores
    need is fetched at once; each stage then restores from the local cache."""
    from pivot import optimizer, targets
    from pivot.frontends import load_pipeline
    from pivot.project import Project
    from pivot.remote.index import attach
    from pivot.state import State
    from pivot.state.hashing import HashInfo
    from pivot.state.restore import RestoreSource, prefetch_from_remote

    other = clone(project, tmp_path / "other")
    if not records:
        shutil.rmtree(other.root / ".pivot/locks")
    proj = Project(root=other.root, cwd=other.root)
    pipeline = load_pipeline(proj)
    with State.open(proj) as state:
        assert attach(state, proj, None) is None
        plan = optimizer.make_plan(pipeline, targets.select(pipeline, proj), state)
        remote = [d for d in plan.decisions if d.source in (RestoreSource.REMOTE, RestoreSource.REMOTE_RUN_CACHE)]
        assert remote, "the plan restores from the remote"
        needed = [e for d in remote for e in (d.record.outs if d.record is not None and records
                                              else d.run_entry.outs)
                  if next(o for o in d.stage.outs if o.path == e.path).cache]
        assert needed and not any(state.cache.contains(HashInfo(e.hash, e.size, e.nfiles)) for e in needed)
        prefetch_from_remote(plan.decisions, state)
        assert all(state.cache.contains(HashInfo(e.hash, e.size, e.nfiles)) for e in needed)
