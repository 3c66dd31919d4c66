"""Remotes on a local directory (no extra needed): push from one clone,
pull into another, incremental transfers, verified downloads, the run
cache, interrupted pushes.  The S3 cases are in test_remote_s3.py."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from pivot import atomic
from pivot.remote.transfer import parse_manifest
from pivot.state.hashing import file_digest
from tests.remote_helpers import clone, make_project, outputs, remote_objects, runs


@pytest.fixture
def project(ws, tmp_path):
    """A run project with a default local remote ``../store``."""
    make_project(ws)
    ws.pivot("remote", "add", "-d", "store", "../store")
    return ws


def test_push_then_pull_into_a_fresh_clone_gives_identical_outputs(project, tmp_path):
    pushed = project.pivot_json("push")
    # data/a.txt, data/sub/b.sh, the data manifest, model.bin
    assert (pushed["objects"], pushed["already"], pushed["failed"]) == (4, 0, [])
    assert pushed["run_cache_entries"] == 1  # prep; train has a cache: false metric, so no entry

    other = clone(project, tmp_path / "other")
    result = other.pivot("pull")
    assert "4 objects" in result.stdout and "2 restored, 0 unchanged, 0 not restored" in result.stdout
    assert outputs(other) == outputs(project)
    assert other.pivot("status").stdout == "Pipelines are up to date.\n"
    assert {s["action"] for s in other.pivot_json("plan")["stages"]} == {"up to date"}
    assert runs(other) == []  # nothing ran there
    other.pivot("run")
    assert runs(other) == []


def test_a_second_push_sends_nothing_and_a_new_run_sends_only_what_changed(project):
    project.pivot("push")
    again = project.pivot_json("push")
    assert (again["objects"], again["already"], again["run_cache_entries"]) == (0, 4, 0)
    assert "pushed 0 objects, 0 B" in project.pivot("push").stdout

    project.write("params.yaml", "train:\n  lr: 0.2\n")
    project.pivot("run")
    changed = project.pivot_json("push")
    # new data/a.txt, new manifest, new model.bin; already there: data/sub/b.sh and
    # the objects of the lr=0.1 run-cache entry (its data/a.txt and manifest)
    assert (changed["objects"], changed["already"], changed["run_cache_entries"]) == (3, 3, 1)


def test_fetch_is_incremental_and_leaves_the_workspace_alone(project, tmp_path):
    project.pivot("push")
    other = clone(project, tmp_path / "other")
    first = other.pivot_json("fetch")
    assert (first["objects"], first["already"]) == (4, 0)
    assert not (other.root / "model.bin").exists()
    second = other.pivot_json("fetch")
    assert (second["objects"], second["already"], second["run_cache_entries"]) == (0, 4, 0)
    other.pivot("checkout")
    assert outputs(other) == outputs(project)


def test_targets_select_what_moves(project, tmp_path):
    result = project.pivot_json("push", "train", "--no-run-cache")
    assert (result["objects"], result["run_cache_entries"]) == (1, 0)  # model.bin only
    other = clone(project, tmp_path / "other")
    other.pivot("pull", "train")
    assert (other.root / "model.bin").read_bytes() == (project.root / "model.bin").read_bytes()
    assert not (other.root / "data").exists()


def test_a_corrupted_remote_object_is_refused(project, tmp_path):
    project.pivot("push")
    store = tmp_path / "store"
    digest = file_digest(project.root / "model.bin")
    obj = store / "files" / "xxh3" / digest[:2] / digest[2:]
    obj.write_bytes(b"tampered\n")

    other = clone(project, tmp_path / "other")
    result = other.pivot("pull", expect=1)
    assert f"remote 'store': files/xxh3/{digest[:2]}/{digest[2:]} is corrupt" in result.stderr
    assert f"expected {digest}" in result.stderr and "not placed" in result.stderr
    assert "not restored, not in the cache: model.bin (train)" in result.stderr
    assert "Traceback" not in result.output
    assert not (other.root / ".pivot" / "cache" / "files" / digest[:2] / digest[2:]).exists()
    assert not list((other.root / ".pivot" / "cache").rglob(".tmp-*"))
    assert not (other.root / "model.bin").exists()
    assert (other.root / "data" / "a.txt").exists()  # the rest is restored


def test_a_corrupted_remote_manifest_is_refused(project, tmp_path):
    project.pivot("push")
    record = json.loads((project.root / ".pivot/locks/prep.json").read_text())
    digest = record["outs"][0]["hash"]
    manifest = tmp_path / "store" / "files" / "xxh3" / digest[:2] / digest[2:]
    entries = json.loads(manifest.read_text())
    entries[0]["relpath"] = "../../escape.txt"
    manifest.write_text(json.dumps(entries))

    other = clone(project, tmp_path / "other")
    result = other.pivot("fetch", "--json", expect=1)
    failed = json.loads(result.stdout)["failed"]
    assert len(failed) == 1 and "not a directory manifest: unsafe path '../../escape.txt'" in failed[0]
    assert not (tmp_path / "escape.txt").exists()


def test_an_object_missing_from_the_remote_is_reported(project, tmp_path):
    project.pivot("push")
    digest = file_digest(project.root / "model.bin")
    (tmp_path / "store" / "files" / "xxh3" / digest[:2] / digest[2:]).unlink()
    other = clone(project, tmp_path / "other")
    result = other.pivot("fetch", expect=1)
    assert f"WARNING: not on remote 'store': files/xxh3/{digest[:2]}/{digest[2:]} (for 'model.bin' (train))" in result.stderr


def test_outputs_missing_from_the_local_cache_are_reported_on_push(project):
    digest = file_digest(project.root / "model.bin")
    obj = project.root / ".pivot" / "cache" / "files" / digest[:2] / digest[2:]
    obj.chmod(0o644)
    obj.unlink()
    result = project.pivot("push", expect=1)
    assert "WARNING: not in the local cache: 'model.bin' (train)" in result.stderr
    assert "pushed 3 objects" in result.stdout


def test_the_run_cache_travels_with_push_and_fetch(project, tmp_path):
    project.pivot("push")
    entries = sorted((tmp_path / "store" / "runcache").glob("*/*.json"))
    assert [json.loads(p.read_text())["address"] for p in entries] == ["prep"]

    other = clone(project, tmp_path / "other")
    assert other.pivot_json("fetch")["run_cache_entries"] == 1
    local = sorted((other.root / ".pivot" / "runcache").glob("*/*.json"))
    assert [p.read_bytes() for p in local] == [p.read_bytes() for p in entries]
    assert other.pivot_json("fetch", "--no-run-cache")["run_cache_entries"] == 0


def test_older_runs_in_the_run_cache_are_pushed_too(project, tmp_path):
    """A teammate going back to lr=0.1 restores instead of recomputing."""
    project.write("params.yaml", "train:\n  lr: 0.2\n")
    project.pivot("run")
    assert project.pivot_json("push")["run_cache_entries"] == 2
    other = clone(project, tmp_path / "other")
    other.pivot("pull")
    # the entry of the lr=0.1 run and its objects are on the remote
    old_entry = next(
        json.loads(p.read_text())
        for p in (tmp_path / "store" / "runcache").glob("*/*.json")
        if json.loads(p.read_text())["key"] not in {e.name for e in (other.root / ".pivot/runcache").glob("*/*")}
    )
    assert old_entry["address"] == "prep"


@pytest.mark.slow
def test_an_interrupted_push_leaves_no_partial_object_and_a_rerun_finishes(ws, tmp_path):
    """kill -9 in the middle of a push: every finished name on the remote
    holds exactly its content; pushing again completes the job."""
    ws.write("dvc.yaml", """\
        stages:
          many:
            cmd: mkdir -p out && for i in $(seq 1 200); do head -c 100000 /dev/urandom > out/f$i; done
            deps: [seed.txt]
            outs: [out]
        """)
    ws.write("seed.txt", "1\n")
    ws.pivot("run")
    ws.pivot("remote", "add", "-d", "store", "../store")
    store = tmp_path / "store"
    proc = subprocess.Popen([sys.executable, "-m", "pivot", "push", "-j", "2"], cwd=ws.root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(remote_objects(store)) < 20 and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = remote_objects(store)
    assert 0 < len(finished) < 201, "the push was not interrupted in the middle"
    for obj in finished:
        digest = obj.parent.name + obj.name
        if digest.endswith(".dir"):
            parse_manifest(obj.read_bytes())
        else:
            assert file_digest(obj) == digest
    again = ws.pivot_json("push")
    assert again["objects"] + again["already"] == 201 and again["failed"] == []
    assert ".tmp-" not in " ".join(p.name for p in remote_objects(store))

    other = clone(ws, tmp_path / "other")
    (other.root / "seed.txt").write_text("1\n")
    other.pivot("pull")
    assert other.pivot("status").stdout == "Pipelines are up to date.\n"


def test_no_remote_configured_is_one_line(ws):
    make_project(ws)
    result = ws.pivot("push", expect=1)
    assert result.stderr == "ERROR: no remote given and no default remote: add one with `pivot remote add -d NAME URL`, or pass -r NAME\n"
    assert ws.pivot("pull", "-r", "nope", expect=1).stderr == (
        "ERROR: unknown remote 'nope' (not in .pivot/config or .pivot/config.local)\n"
    )


def test_pull_json_names_what_was_restored(project, tmp_path):
    project.pivot("push")
    other = clone(project, tmp_path / "other")
    data = other.pivot_json("pull")
    assert data["action"] == "pull" and data["objects"] == 4
    assert data["restored"] == [{"stage": "prep", "path": "data"}, {"stage": "train", "path": "model.bin"}]
    assert (data["unchanged"], data["not_restored"]) == (0, [])
    again = other.pivot_json("pull")
    assert (again["objects"], again["restored"], again["unchanged"]) == (0, [], 2)


@pytest.fixture
def http_server(tmp_path):
    """A static file server for ../store on the loopback interface."""
    store = tmp_path / "store"
    store.mkdir(exist_ok=True)
    # -u: the "Serving HTTP on ..." line must not wait in a pipe's buffer
    proc = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "-d", str(store)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    line = proc.stdout.readline()  # "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
    port = int(line.split(" port ")[1].split()[0])
    yield f"http://127.0.0.1:{port}"
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=10)


def test_an_http_remote_is_read_only(project, tmp_path, http_server):
    pytest.importorskip("aiohttp")
    project.pivot("push")
    other = clone(project, tmp_path / "other")
    other.pivot("remote", "add", "-d", "web", http_server)
    assert other.pivot_json("remote", "list")[1]["backend"] == "read-only"
    data = other.pivot_json("pull", "-r", "web")
    assert (data["objects"], data["run_cache_entries"], data["failed"]) == (4, 1, [])
    assert outputs(other) == outputs(project)
    result = other.pivot("push", "-r", "web", expect=1)
    assert result.stderr == f"ERROR: remote 'web' ({http_server}) is read-only: it can be fetched from, not pushed to\n"


@pytest.mark.slow
def test_two_clones_pushing_the_same_objects_at_once(project, tmp_path):
    twin = tmp_path / "twin"
    shutil.copytree(project.root, twin, symlinks=True)
    procs = [
        subprocess.Popen([sys.executable, "-m", "pivot", "push", "--json", "-j", "4"], cwd=root,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for root in (project.root, twin)
    ]
    results = [json.loads(proc.communicate(timeout=120)[0]) for proc in procs]
    assert all(r["failed"] == [] for r in results)
    assert all(r["objects"] + r["already"] == 4 for r in results)
    for obj in remote_objects(tmp_path / "store"):
        digest = obj.parent.name + obj.name
        assert digest.endswith(".dir") or file_digest(obj) == digest
    other = clone(project, tmp_path / "other")
    other.pivot("pull")
    assert outputs(other) == outputs(project)


@pytest.mark.slow
def test_an_interrupted_fetch_places_nothing_partial_and_a_rerun_finishes(ws, tmp_path):
    ws.write("dvc.yaml", """\
        stages:
          many:
            cmd: mkdir -p out && for i in $(seq 1 200); do head -c 100000 /dev/urandom > out/f$i; done
            deps: [seed.txt]
            outs: [out]
        """)
    ws.write("seed.txt", "1\n")
    ws.pivot("run")
    ws.pivot("remote", "add", "-d", "store", "../store")
    ws.pivot("push")
    other = clone(ws, tmp_path / "other")
    (other.root / "seed.txt").write_text("1\n")
    objects = other.root / ".pivot" / "cache" / "files"
    proc = subprocess.Popen([sys.executable, "-m", "pivot", "fetch", "-j", "2"], cwd=other.root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None and len(list(objects.glob("*/*"))) < 20:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    placed = [p for p in objects.glob("*/*") if not atomic.is_temp_name(p.name)]
    assert 0 < len(placed) < 201, "the fetch was not interrupted in the middle"
    for obj in placed:
        digest = obj.parent.name + obj.name
        assert digest.endswith(".dir") or file_digest(obj) == digest
    again = other.pivot_json("fetch")
    assert again["objects"] + again["already"] == 201 and again["failed"] == []
    other.pivot("checkout")
    assert other.pivot("status").stdout == "Pipelines are up to date.\n"


def test_the_remote_index_api_on_a_local_remote(project, tmp_path):
    """What `pivot run` will call to restore from a remote instead of running."""
    from pivot.frontends import load_pipeline
    from pivot.project import Project
    from pivot.remote.index import RemoteIndex
    from pivot.state import State
    from pivot.state.runcache import record_key

    project.pivot("push")
    other = clone(project, tmp_path / "other")
    proj = Project.discover(other.root)
    with State.open(proj) as state:
        index = RemoteIndex.open(proj, state)
        assert index is not None and index.name == "store"
        prep = load_pipeline(proj).stage("prep")
        record = state.locks.read("prep")
        key = record_key(prep, record)
        assert index.has_run_entries([key, "f" * 32]) == {key}
        entry = index.fetch_run_entry(key)
        assert entry is not None and state.runcache.lookup(key) == entry
        assert index.contains([entry.outs[0].hash, "0" * 32]) == {entry.outs[0].hash}
        assert index.has_outputs(entry.outs)
        report = index.fetch_outputs(entry.outs)
        assert report.ok and report.objects == 2  # the manifest came with has_outputs
        assert index.fetch_objects([record.outs[0].hash]).objects == 0
        missing = type(entry.outs[0])("x", "1" * 32, 1)
        assert not index.has_outputs([missing])
    with State.open(Project.discover(project.root)) as state:
        (tmp_path / "store" / "files").rename(tmp_path / "elsewhere")
        assert RemoteIndex.open(Project.discover(project.root), state).contains([record.outs[0].hash]) == set()
    (other.root / ".pivot" / "config").unlink()
    with State.open(proj) as state:
        assert RemoteIndex.open(proj, state) is None  # no default remote: no index
