"""`pivot run --executor dask://... --executor-data remote`: workers that
do not see the project, data through the default remote (S3 on moto's
loopback server).

The workers are this module's own (scheduler, ``w1``, ``w2``): they start
after the S3 server, so they inherit its dummy credentials, in a directory
outside the project (one test starts a worker without credentials).  As root they also run in their own mount namespace
with the project hidden under an empty tmpfs; the stages' ``check.sh``
fails if a command runs inside the project or (hidden) sees its files.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pivot.state.locks import address_filename
from tests.conftest import DaskCluster, Workspace

pytestmark = pytest.mark.slow

PIPELINE = """\
stages:
  prep:
    cmd: sh check.sh && mkdir -p data/sub && echo "lr=${train.lr}" > data/a.txt && cp raw.txt data/sub/raw.txt
      && printf '#!/bin/sh\\necho hi\\n' > data/sub/run.sh && chmod +x data/sub/run.sh
    deps: [check.sh, raw.txt]
    params: [train.lr]
    outs: [data]
  train:
    foreach: [x, y]
    do:
      cmd: sh check.sh && cat data/a.txt data/sub/raw.txt > model_${item}.bin && echo ${item} >> model_${item}.bin
      deps: [check.sh, data]
      outs:
        - model_${item}.bin
  report:
    wdir: reports
    cmd:
      - sh ../check.sh && cat ../model_x.bin ../model_y.bin > summary.txt
      - basename "$PWD" > where.txt && echo 2 > metrics.json
    deps: [../check.sh, ../model_x.bin, ../model_y.bin]
    outs: [summary.txt, where.txt]
    metrics:
      - metrics.json:
          cache: false
"""

CHECK = """\
if [ -n "$PIVOT_TEST_PROJECT" ]; then
  case "$PWD/" in "$PIVOT_TEST_PROJECT"/*) echo "ran inside the project: $PWD" >&2; exit 9;; esac
  if [ -n "$PIVOT_TEST_HIDDEN" ] && [ -e "$PIVOT_TEST_PROJECT/dvc.yaml" ]; then
    echo "the project is visible" >&2; exit 8
  fi
fi
"""


def _can_hide() -> bool:
    """Whether workers can get their own mount namespace (root, unshare)."""
    if os.geteuid() != 0:
        return False
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                            "mount -t tmpfs tmpfs /mnt"], capture_output=True)
    return probe.returncode == 0


class BlindCluster(DaskCluster):
    """Workers that cannot see ``project`` (see the module docstring)."""

    WORKERS = {"w1": (), "w2": ()}

    def __init__(self, directory: Path, project: Path, *, credentials: bool = True) -> None:
        super().__init__(directory)
        self.project = project
        self.credentials = credentials
        self.hidden = _can_hide()

    def _spawn(self, *args: str, name: str) -> None:
        env = dict(os.environ, SHELL="/bin/sh", PIVOT_TEST_PROJECT=str(self.project),
                   PIVOT_TEST_MARKS=str(self.directory))  # where stages may leave notes for the test
        env.pop("PIVOT_SHELL", None)
        if not self.credentials:  # workers that cannot reach the remote
            for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                env.pop(key, None)
        argv = [sys.executable, "-m", "dask", *args]
        if self.hidden and name != "scheduler":
            env["PIVOT_TEST_HIDDEN"] = "1"
            argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                    'mount -t tmpfs tmpfs "$0" && exec "$@"', str(self.project), *argv]
        with open(self.directory / f"{name}.log", "wb") as log:
            self.procs.append(subprocess.Popen(argv, cwd=self.directory, env=env, stdin=subprocess.DEVNULL,
                                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True))


@pytest.fixture(scope="module")
def blind_cluster(tmp_path_factory: pytest.TempPathFactory, moto_s3):
    pytest.importorskip("distributed")
    pytest.importorskip("s3fs")
    project = tmp_path_factory.mktemp("remote-data") / "project"
    project.mkdir()
    cluster = BlindCluster(tmp_path_factory.mktemp("blind-workers"), project)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def hidden_ws(blind_cluster) -> Workspace:
    """The project the module's workers cannot see, emptied (the directory
    itself stays: it is their tmpfs's mount point)."""
    import shutil

    for child in blind_cluster.project.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    return Workspace(blind_cluster.project)


def _files(root: Path) -> dict[str, bytes]:
    """Every file outside .pivot, plus the lock records."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and (not rel.startswith(".pivot/") or rel.startswith(".pivot/locks/")):
            found[rel] = path.read_bytes()
    return found


def _make(ws: Workspace) -> None:
    ws.write("dvc.yaml", PIPELINE)
    ws.write("check.sh", CHECK)
    ws.write("raw.txt", "raw data\n")
    ws.write("params.yaml", "train:\n  lr: 0.1\n")
    ws.write("reports/.keep", "")


def _use_s3(ws: Workspace, moto_s3, bucket: str) -> None:
    ws.pivot("remote", "add", "-d", "s3", f"s3://{bucket}/store")
    ws.pivot("remote", "modify", "s3", "endpointurl", moto_s3.endpoint)


def test_workers_without_the_project_give_what_a_local_run_gives(tmp_path, blind_cluster, hidden_ws, moto_s3,
                                                                  s3_bucket) -> None:
    local, remote = Workspace(tmp_path / "local"), hidden_ws
    local.root.mkdir()
    for ws in (local, remote):
        _make(ws)
    local.pivot("run", "-j", "1")
    _use_s3(remote, moto_s3, s3_bucket)
    run = ["run", "--executor", blind_cluster.executor, "--executor-data", "remote"]
    out = remote.pivot(*run).stdout
    assert "4 ran, 0 restored, 0 up to date, 0 failed" in out

    produced = {k: v for k, v in _files(remote.root).items() if k != ".pivot/config"}
    assert produced == _files(local.root)  # outputs (the executable bit too) and lock records
    assert os.access(remote.root / "data/sub/run.sh", os.X_OK)
    assert remote.read("reports/where.txt") == "reports\n"  # the stage's wdir, in the scratch directory
    stages = remote.pivot_json("log", "-n", "1")[0]["stages"]
    workers = {s["address"]: s["worker"] for s in stages}
    assert set(workers.values()) <= {"w1", "w2"} and len(workers) == 4
    assert remote.pivot("status").stdout == "Pipelines are up to date.\n"
    assert remote.pivot(*run).stdout.startswith("0 ran, 0 restored, 4 up to date")

    # what moved: the inputs and the outputs, by hash, and nothing else
    objects = {p.rsplit("/", 2)[-2] + p.rsplit("/", 1)[-1]
               for p in moto_s3.filesystem().find(f"{s3_bucket}/store/files/xxh3")}
    train = json.loads((remote.root / ".pivot/locks" / address_filename("train@x", ".json")).read_text())
    assert {e["hash"] for e in train["outs"]} <= objects
    assert {e["hash"] for e in train["deps"]} <= objects

    # a changed param: only what depends on it runs again, remotely
    remote.write("params.yaml", "train:\n  lr: 0.2\n")
    local.write("params.yaml", "train:\n  lr: 0.2\n")
    local.pivot("run", "-j", "1")
    assert "4 ran" in remote.pivot(*run).stdout
    assert {k: v for k, v in _files(remote.root).items() if k != ".pivot/config"} == _files(local.root)


def test_a_failing_command_records_nothing_and_shows_the_workers_log(blind_cluster, hidden_ws, moto_s3,
                                                                     s3_bucket) -> None:
    ws = hidden_ws
    ws.write("dvc.yaml", """\
        stages:
          bad:
            cmd: echo oops from the worker; exit 3
            outs: [bad.txt]
        """)
    _use_s3(ws, moto_s3, s3_bucket)
    result = ws.pivot("run", "--executor", blind_cluster.executor, "--executor-data", "remote", expect=1)
    assert "FAILED bad (exit 3): command failed: echo oops from the worker; exit 3" in result.stdout
    assert "oops from the worker" in result.stdout  # the worker's log, now in .pivot/logs/
    assert "oops from the worker" in ws.read(".pivot/logs/bad.log")
    assert not (ws.root / ".pivot/locks/bad.json").exists()


class NoCredentials(BlindCluster):
    WORKERS = {"blind": ()}


def test_a_worker_that_cannot_reach_the_remote_fails_the_stage_naming_it(tmp_path, moto_s3, s3_bucket) -> None:
    ws = Workspace(tmp_path / "project")
    ws.root.mkdir()
    (tmp_path / "workers").mkdir()
    cluster = NoCredentials(tmp_path / "workers", ws.root, credentials=False)
    ws.write("dvc.yaml", """\
        stages:
          copy:
            cmd: cp raw.txt copy.txt
            deps: [raw.txt]
            outs: [copy.txt]
        """)
    ws.write("raw.txt", "raw\n")
    _use_s3(ws, moto_s3, s3_bucket)
    try:
        cluster.start()
        result = ws.pivot("run", "--executor", cluster.executor, "--executor-data", "remote", expect=1)
    finally:
        cluster.stop()
    # off a terminal each settled stage's line starts with its counter: "[1/1] FAILED copy: ..."
    line = next(line.split("] ", 1)[1] for line in result.stdout.splitlines() if line.startswith("[1/1] FAILED copy"))
    assert line.startswith(f"FAILED copy: worker blind cannot fetch the stage's inputs: remote 's3'"
                           f" (s3://{s3_bucket}/store): downloading files/xxh3/")
    assert line.endswith("failed after 3 attempts: Unable to locate credentials (for 'raw.txt')")
    assert not (ws.root / "copy.txt").exists()
    assert not (ws.root / ".pivot/locks/copy.json").exists()


def test_config_chooses_remote_data_and_needs_a_default_remote(ws) -> None:
    ws.write("dvc.yaml", "stages:\n  a:\n    cmd: echo a > a.txt\n    outs: [a.txt]\n")
    ws.write(".pivot/config", "[executor]\naddress = dask://127.0.0.1:1\ndata = remote\n")
    proc = ws.pivot_proc("run", check=False)
    assert proc.returncode == 1
    assert proc.stderr == ("ERROR: --executor-data remote needs a default remote: add one with"
                           " `pivot remote add -d NAME URL` (see docs/remotes.md)\n")
    assert not (ws.root / "a.txt").exists()
    proc = ws.pivot_proc("run", "--executor", "local", "--executor-data", "remote", check=False)
    assert proc.stderr == "ERROR: --executor-data remote needs a Dask executor (--executor dask://HOST:PORT, ...)\n"
    ws.write(".pivot/config", "[executor]\ndata = nfs\n")
    proc = ws.pivot_proc("run", "--executor", "dask://127.0.0.1:1", check=False)
    assert proc.stderr == "ERROR: '.pivot/config' [executor] data: unknown data mode 'nfs' (choose shared or remote)\n"


def test_the_workers_really_cannot_see_the_project(blind_cluster, hidden_ws, moto_s3, s3_bucket) -> None:
    if not blind_cluster.hidden:
        pytest.skip("needs root and unshare --mount: the workers only start outside the project here")
    ws = hidden_ws
    ws.write("dvc.yaml", """\
        stages:
          look:
            cmd: (test -e "$PIVOT_TEST_PROJECT/dvc.yaml" && echo visible || echo hidden) > seen.txt
            outs: [seen.txt]
        """)
    _use_s3(ws, moto_s3, s3_bucket)
    ws.pivot("run", "--executor", blind_cluster.executor, "--executor-data", "remote")
    assert ws.read("seen.txt") == "hidden\n"


def test_an_output_the_worker_did_not_make_is_not_left_from_the_last_run(blind_cluster, hidden_ws, moto_s3,
                                                                          s3_bucket) -> None:
    ws = hidden_ws
    pipeline = "stages:\n  make:\n    cmd: {cmd}\n    outs: [a.txt, b.txt]\n"
    ws.write("dvc.yaml", pipeline.format(cmd="echo a > a.txt && echo b > b.txt"))
    _use_s3(ws, moto_s3, s3_bucket)
    run = ["run", "--executor", blind_cluster.executor, "--executor-data", "remote"]
    ws.pivot(*run)
    assert ws.read("b.txt") == "b\n"
    record = ws.read(".pivot/locks/make.json")
    ws.write("dvc.yaml", pipeline.format(cmd="echo a2 > a.txt"))
    result = ws.pivot(*run, expect=1)
    assert "FAILED make: stage 'make' did not produce output 'b.txt'" in result.stdout
    assert not (ws.root / "b.txt").exists()
    assert ws.read(".pivot/locks/make.json") == record


def test_interrupt_stops_the_remote_command_and_records_nothing(blind_cluster, hidden_ws, moto_s3,
                                                               s3_bucket) -> None:
    ws = hidden_ws
    marks = blind_cluster.directory / "interrupt"
    marks.mkdir(exist_ok=True)
    ws.write("dvc.yaml", """\
        stages:
          slow:
            cmd: sleep 60 & echo "$! $PWD" > "$PIVOT_TEST_MARKS/interrupt/started"; wait; echo x > x.txt
            outs: [x.txt]
        """)
    _use_s3(ws, moto_s3, s3_bucket)
    proc = subprocess.Popen([sys.executable, "-m", "pivot", "run", "--executor", blind_cluster.executor,
                             "--executor-data", "remote"], cwd=ws.root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        started = marks / "started"
        deadline = time.monotonic() + 60
        while not (started.exists() and started.read_text().strip()):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        sleeper, scratch = started.read_text().split()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, stdout + stderr
    assert not (ws.root / "x.txt").exists() and not (ws.root / ".pivot/locks/slow.json").exists()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{sleeper}").exists() or Path(scratch).exists():  # command ended, scratch removed
        assert time.monotonic() < deadline, "the remote command or its scratch directory outlived the run"
        time.sleep(0.05)
