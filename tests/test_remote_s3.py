"""Remotes on a real S3 API: moto's standalone server on 127.0.0.1
(``tests/remote_fixtures.py``), reached through s3fs with the remote's
``endpointurl`` -- nothing of pivot or s3fs is mocked."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pivot.project import Project
from pivot.state.hashing import file_digest
from tests.remote_fixtures import DUMMY_KEY_ID, DUMMY_SECRET
from tests.remote_helpers import clone, make_project, outputs, runs

pytest.importorskip("s3fs")


@pytest.fixture
def s3_project(ws, moto_s3, s3_bucket):
    make_project(ws)
    ws.pivot("remote", "add", "-d", "s3", f"s3://{s3_bucket}/team/pivot")
    ws.pivot("remote", "modify", "s3", "endpointurl", moto_s3.endpoint)
    return ws


@pytest.mark.slow
def test_push_to_s3_and_pull_into_a_fresh_clone(s3_project, tmp_path, moto_s3, s3_bucket):
    pushed = s3_project.pivot_json("push")
    assert (pushed["objects"], pushed["already"], pushed["run_cache_entries"], pushed["failed"]) == (4, 0, 1, [])
    keys = sorted(moto_s3.filesystem().find(f"{s3_bucket}/team/pivot"))
    digest = file_digest(s3_project.root / "model.bin")
    assert f"{s3_bucket}/team/pivot/files/xxh3/{digest[:2]}/{digest[2:]}" in keys
    assert sum("/runcache/" in k and k.endswith(".json") for k in keys) == 1

    again = s3_project.pivot_json("push")
    assert (again["objects"], again["already"], again["run_cache_entries"]) == (0, 4, 0)

    other = clone(s3_project, tmp_path / "other")
    result = other.pivot("pull")
    assert "2 restored, 0 unchanged, 0 not restored" in result.stdout
    assert outputs(other) == outputs(s3_project)
    assert other.pivot("status").stdout == "Pipelines are up to date.\n"
    other.pivot("run")
    assert runs(other) == []
    assert other.pivot_json("fetch")["objects"] == 0  # incremental


@pytest.mark.slow
def test_many_objects_are_found_by_listing(ws, moto_s3, s3_bucket, tmp_path):
    ws.write("dvc.yaml", """\
        stages:
          many:
            cmd: mkdir -p out && for i in $(seq 1 120); do echo "$i $(cat seed.txt)" > out/f$i; done
            deps: [seed.txt]
            outs: [out]
        """)
    ws.write("seed.txt", "1\n")
    ws.pivot("run")
    ws.pivot("remote", "add", "-d", "s3", f"s3://{s3_bucket}")
    ws.pivot("remote", "modify", "s3", "endpointurl", moto_s3.endpoint)
    ws.pivot("remote", "modify", "s3", "jobs", "4")
    assert ws.pivot_json("push")["objects"] == 121
    assert ws.pivot_json("push")["already"] == 121
    ws.write("seed.txt", "2\n")
    ws.pivot("run")
    # 120 new files and a manifest; the seed=1 run-cache entry's 121 objects are there
    result = ws.pivot_json("push")
    assert (result["objects"], result["already"], result["run_cache_entries"]) == (121, 121, 1)
    other = clone(ws, tmp_path / "other")
    (other.root / "seed.txt").write_text("2\n")
    other.pivot("pull", "-j", "8")
    assert (other.root / "out" / "f7").read_text() == "7 2\n"


@pytest.mark.slow
def test_a_corrupted_object_on_s3_is_refused(s3_project, tmp_path, moto_s3, s3_bucket):
    s3_project.pivot("push")
    digest = file_digest(s3_project.root / "data" / "a.txt")
    moto_s3.filesystem().pipe_file(f"{s3_bucket}/team/pivot/files/xxh3/{digest[:2]}/{digest[2:]}", b"lr=0.1 trunc")
    other = clone(s3_project, tmp_path / "other")
    result = other.pivot("pull", expect=1)
    assert f"ERROR: remote 's3': files/xxh3/{digest[:2]}/{digest[2:]} is corrupt (its content hashes to" in result.stderr
    assert "not restored, not in the cache: data (prep)" in result.stderr
    assert not (other.root / ".pivot" / "cache" / "files" / digest[:2] / digest[2:]).exists()
    assert not (other.root / "data").exists()
    assert (other.root / "model.bin").read_bytes() == (s3_project.root / "model.bin").read_bytes()


@pytest.mark.slow
def test_credentials_never_appear_in_any_file_pivot_writes(s3_project, tmp_path):
    s3_project.pivot("push")
    other = clone(s3_project, tmp_path / "other")
    other.pivot("pull")
    other.pivot("remote", "modify", "s3", "profile", "someone", "--local")
    for root in (s3_project.root, other.root):
        for path in root.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert DUMMY_SECRET.encode() not in data and DUMMY_KEY_ID.encode() not in data, path


@pytest.mark.slow
def test_a_missing_extra_prints_the_pip_line(ws, tmp_path):
    """s3fs made unimportable for one subprocess: the remote's user is told
    what to install, in one line, with no traceback (before any request)."""
    make_project(ws)
    ws.pivot("remote", "add", "-d", "s3", "s3://bucket/team/pivot")
    ws.pivot("remote", "modify", "s3", "endpointurl", "http://127.0.0.1:9")
    shim = tmp_path / "no-s3fs"
    shim.mkdir()
    (shim / "s3fs.py").write_text("raise ImportError('No module named s3fs')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(shim), *sys.path]))
    for command in (["push"], ["pull"], ["fetch", "-r", "s3"]):
        proc = subprocess.run([sys.executable, "-m", "pivot", *command], cwd=ws.root,
                              capture_output=True, text=True, env=env)
        assert proc.returncode == 1
        assert proc.stderr == (
            "ERROR: remote 's3' (s3://bucket/team/pivot) needs the s3 backend: "
            "run `pip install 'pivot[s3]'`\n"
        )
    listed = subprocess.run([sys.executable, "-m", "pivot", "remote", "list"], cwd=ws.root,
                            capture_output=True, text=True, env=env)
    assert "(needs `pip install 'pivot[s3]'`)" in listed.stdout


@pytest.mark.slow
def test_the_remote_index_api(s3_project, tmp_path):
    """What `pivot run` will call to restore from a remote."""
    from pivot.remote.index import RemoteIndex
    from pivot.state import State
    from pivot.state.runcache import record_key

    s3_project.pivot("push")
    other = clone(s3_project, tmp_path / "other")
    project = Project.discover(other.root)
    with State.open(project) as state:
        index = RemoteIndex.open(project, state)
        assert index is not None and index.name == "s3"
        record = state.locks.read("prep")
        digests = [o.hash for o in record.outs]
        assert index.contains([*digests, "0" * 32]) == set(digests)
        assert index.has_outputs(record.outs)

        from pivot.frontends import load_pipeline

        stage = load_pipeline(project).stage("prep")
        key = record_key(stage, record)
        assert index.has_run_entries([key, "f" * 32]) == {key}
        entry = index.fetch_run_entry(key)
        assert entry is not None and entry.address == "prep" and state.runcache.lookup(key) == entry
        assert index.fetch_run_entry("e" * 32) is None

        report = index.fetch_outputs(entry.outs)
        assert report.ok and report.objects == 2  # a.txt, sub/b.sh (has_outputs fetched the manifest)
        from pivot.state.hashing import HashInfo

        assert all(state.cache.contains(HashInfo(o.hash, o.size, o.nfiles)) for o in entry.outs)


@pytest.mark.slow
def test_an_unreachable_endpoint_is_one_line_naming_the_remote(ws):
    import socket

    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    make_project(ws)
    ws.pivot("remote", "add", "-d", "s3", "s3://bucket/p")
    ws.pivot("remote", "modify", "s3", "endpointurl", f"http://127.0.0.1:{port}")
    env = dict(os.environ, AWS_ACCESS_KEY_ID=DUMMY_KEY_ID, AWS_SECRET_ACCESS_KEY=DUMMY_SECRET,
               AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    proc = subprocess.run([sys.executable, "-m", "pivot", "push"], cwd=ws.root, capture_output=True, text=True, env=env)
    assert proc.returncode == 1
    assert proc.stderr.startswith("ERROR: remote 's3' (s3://bucket/p): checking files/xxh3/")
    assert "failed after 3 attempts: Could not connect to the endpoint URL" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1
