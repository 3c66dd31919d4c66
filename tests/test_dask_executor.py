"""`pivot run --executor dask://...`: stages on a real Dask cluster.

The ``dask_cluster`` fixture (conftest.py) runs ``dask scheduler`` and two
``dask worker`` processes on 127.0.0.1: ``w1``, and ``w2`` with ``gpu=1``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

PIPELINE = """\
stages:
  gen:
    foreach: [a, b, c, d]
    do:
      cmd: sleep 0.3 && echo ${item} $PIVOT_STAGE > gen/${item}.txt
      outs:
        - gen/${item}.txt
  score:
    matrix:
      model: [m1, m2]
      k: [1, 2]
    cmd: echo ${item.model} ${item.k} > score_${item.model}_${item.k}.txt
    deps:
      - gen/a.txt
    outs:
      - score_${item.model}_${item.k}.txt
  merge:
    cmd:
      - mkdir -p report && cat gen/a.txt gen/b.txt gen/c.txt gen/d.txt > report/all.txt
      - cd report && wc -l < all.txt > count.txt && basename "$(pwd)" > where.txt
    deps: [gen/a.txt, gen/b.txt, gen/c.txt, gen/d.txt]
    outs: [report]
"""


def _files(root: Path) -> dict[str, bytes]:
    """Every file of the workspace outside .pivot, plus the lock records."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and (not rel.startswith(".pivot/") or rel.startswith(".pivot/locks/")):
            found[rel] = path.read_bytes()
    return found


def _last_run(ws) -> dict:
    return ws.pivot_json("log", "-n", "1")[0]


def _workers(run: dict) -> dict[str, str | None]:
    return {s["address"]: s["worker"] for s in run["stages"] if s["outcome"] == "ran"}


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _wait_for(path: Path, proc: subprocess.Popen | None = None, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().strip()):
        if proc is not None:
            assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)
    return path.read_text().strip()


def test_outputs_and_records_match_the_local_runner(tmp_path: Path, dask_cluster) -> None:
    from tests.conftest import Workspace

    local, remote = Workspace(tmp_path / "local"), Workspace(tmp_path / "remote")
    for ws in (local, remote):
        ws.root.mkdir()
        ws.write("dvc.yaml", PIPELINE)
    local.pivot("run", "-j", "2")
    out = remote.pivot("run", "--executor", dask_cluster.executor).stdout
    assert "9 ran, 0 restored, 0 up to date, 0 failed" in out

    assert _files(remote.root) == _files(local.root)
    assert remote.read("report/where.txt") == "report\n"  # the `cd` of the second command
    workers = _workers(_last_run(remote))
    assert len(workers) == 9
    assert set(workers.values()) == {"w1", "w2"}  # really spread over both workers
    assert "on w" in remote.pivot("log", "-n", "1").stdout

    again = remote.pivot("run", "--executor", dask_cluster.executor).stdout
    assert again.startswith("0 ran, 0 restored, 9 up to date")

    # restores are the coordinator's: nothing is sent to a worker
    (remote.root / "report" / "all.txt").unlink()
    restored = remote.pivot("run", "--executor", dask_cluster.executor).stdout
    assert "restored merge from cache" in restored
    assert remote.read("report/all.txt") == local.read("report/all.txt")


def test_failure_blocks_downstream_and_keep_going(ws, dask_cluster) -> None:
    ws.write("dvc.yaml", """\
        stages:
          bad:
            cmd: echo oops; exit 3
            outs: [bad.txt]
          after:
            cmd: cp bad.txt after.txt
            deps: [bad.txt]
            outs: [after.txt]
          other:
            cmd: echo other > other.txt
            outs: [other.txt]
        """)
    result = ws.pivot("run", "-k", "--executor", dask_cluster.executor, expect=1)
    assert "FAILED bad (exit 3): command failed: echo oops; exit 3" in result.stdout
    assert "oops" in result.stdout  # the log's tail, from .pivot/logs/
    assert "blocked after: upstream bad failed" in result.stdout
    assert ws.read("other.txt") == "other\n"
    assert not (ws.root / ".pivot/locks/bad.json").exists()
    run = _last_run(ws)
    assert {s["address"]: s["outcome"] for s in run["stages"]} == {"bad": "failed", "after": "blocked",
                                                                    "other": "ran"}


def test_stage_needing_a_gpu_runs_on_the_worker_that_has_one(ws, dask_cluster) -> None:
    ws.write("dvc.yaml", """\
        stages:
          prep:
            cmd: echo data > data.txt
            outs: [data.txt]
          train:
            foreach: [x, y, z]
            do:
              cmd: sleep 0.2 && cp data.txt model_${item}.txt
              deps: [data.txt]
              outs:
                - model_${item}.txt
        """)
    ws.write(".pivot/config", """\
        [cache]
        type = copy

        [stage "train@*"]
        resources = gpu=1
        """)
    plan = ws.pivot("plan").stdout
    assert "run       train@x  [needs gpu=1]" in plan
    assert "run       prep\n" in plan
    assert ws.pivot_json("plan")["stages"][1]["resources"] == {"gpu": 1.0}

    out = ws.pivot("run", "-j", "3", "-v", "--executor", dask_cluster.executor).stdout
    assert "train@x| > sleep 0.2 && cp data.txt model_x.txt" in out  # -v: the log, once the stage ended
    workers = _workers(_last_run(ws))
    assert {workers["train@x"], workers["train@y"], workers["train@z"]} == {"w2"}

    # a resource no worker has: refused before anything runs
    ws.write(".pivot/config", '[stage "prep"]\nresources = tpu=2\n')
    ws.write("data.txt", "changed\n")
    result = ws.pivot("run", "--executor", dask_cluster.executor, expect=1)
    assert result.stderr.strip() == (
        f"ERROR: stage 'prep' needs tpu=2, but no worker of the Dask scheduler at {dask_cluster.address}"
        ' advertises it (dask worker --resources "tpu=2")')
    assert ws.read("data.txt") == "changed\n"


def test_worker_killed_mid_stage_is_retried_elsewhere(ws, dask_cluster) -> None:
    # the first attempt notes its worker and sleeps; the retry finds the note and finishes
    ws.write("dvc.yaml", """\
        stages:
          flaky:
            cmd: >-
              if [ -e first-attempt ]; then echo done > out.txt;
              else echo partial > out.txt; touch first-attempt; sleep 60 & echo $! > sleeper.pid;
              echo $PPID > worker.pid; wait; fi
            outs: [out.txt]
        """)
    proc = subprocess.Popen([sys.executable, "-m", "pivot", "run", "--executor", dask_cluster.executor],
                            cwd=ws.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        worker_pid = int(_wait_for(ws.root / "worker.pid", proc))
        sleeper = int(_wait_for(ws.root / "sleeper.pid", proc))
        os.kill(worker_pid, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, stdout + stderr
    assert ws.read("out.txt") == "done\n"
    assert "WARNING: worker w" in stdout and "was lost while running flaky; outputs cleared, retried on w" in stdout
    deadline = time.monotonic() + 10
    while _alive(sleeper):  # the dead worker's reaper ended its command
        assert time.monotonic() < deadline, "the lost worker's command is still running"
        time.sleep(0.05)
    assert _workers(_last_run(ws))["flaky"] in {"w1", "w2"}
    dask_cluster.wait_for_workers(2)  # the nanny brings the killed worker back


def test_worker_lost_beyond_the_retries_fails_naming_it(ws, dask_cluster) -> None:
    ws.write("dvc.yaml", """\
        stages:
          doomed:
            cmd: echo partial > out.txt; echo $PPID > worker.pid; sleep 60
            outs: [out.txt]
        """)
    ws.write(".pivot/config", "[executor]\nretries = 0\n")
    proc = subprocess.Popen([sys.executable, "-m", "pivot", "run", "--executor", dask_cluster.executor],
                            cwd=ws.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        worker_pid = int(_wait_for(ws.root / "worker.pid", proc))
        (ws.root / "worker.pid").unlink()
        os.kill(worker_pid, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 1, stdout + stderr
    assert "FAILED doomed: worker w" in stdout
    assert "was lost while running the stage (1 attempts, each on a worker that died); not retried again" in stdout
    assert not (ws.root / "worker.pid").exists()  # the retry did not run the command
    assert not (ws.root / "out.txt").exists()  # the lost attempt's partial output is cleared
    assert not (ws.root / ".pivot/locks/doomed.json").exists()
    dask_cluster.wait_for_workers(2)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_stops_commands_on_the_workers(ws, dask_cluster, sig: int) -> None:
    ws.write("dvc.yaml", """\
        stages:
          quick:
            cmd: echo quick > quick.txt
            outs: [quick.txt]
          slow:
            cmd: sleep 60 & echo $! > sleep.pid; wait; echo slow > slow.txt
            deps: [quick.txt]
            outs: [slow.txt]
        """)
    proc = subprocess.Popen([sys.executable, "-m", "pivot", "run", "--executor", dask_cluster.executor],
                            cwd=ws.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        sleeper = int(_wait_for(ws.root / "sleep.pid", proc))
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, stdout + stderr
    assert "interrupted: 1 ran" in stdout
    assert not _alive(sleeper)
    assert (ws.root / ".pivot/locks/quick.json").exists()
    assert not (ws.root / ".pivot/locks/slow.json").exists()
    assert not (ws.root / "slow.txt").exists()
    outcomes = {s["address"]: s["outcome"] for s in _last_run(ws)["stages"]}
    assert outcomes == {"quick": "ran", "slow": "interrupted"}


def test_unreachable_scheduler_fails_before_anything_runs(ws) -> None:
    pytest.importorskip("distributed")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ws.write("dvc.yaml", "stages:\n  a:\n    cmd: echo a > a.txt\n    outs: [a.txt]\n")
    ws.write(".pivot/config", f"[executor]\naddress = dask://127.0.0.1:{port}\nconnect-timeout = 1\n")
    proc = ws.pivot_proc("run", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"ERROR: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}"
                                   f" ('.pivot/config' [executor] address): Timed out trying to connect to"
                                   f" tcp://127.0.0.1:{port} after 1 s")
    assert not (ws.root / "a.txt").exists()
    assert not (ws.root / ".pivot/locks").exists() or not any((ws.root / ".pivot/locks").iterdir())


def test_dask_local_cluster(ws) -> None:
    pytest.importorskip("distributed")
    ws.write("dvc.yaml", """\
        stages:
          one:
            cmd: echo 1 > one.txt
            outs: [one.txt]
          two:
            cmd: cat one.txt one.txt > two.txt
            deps: [one.txt]
            outs: [two.txt]
        """)
    proc = ws.pivot_proc("run", env=dict(os.environ, PIVOT_EXECUTOR="dask-local:2"))
    assert "2 ran, 0 restored, 0 up to date, 0 failed" in proc.stdout
    assert ws.read("two.txt") == "1\n1\n"
    workers = _workers(_last_run(ws))
    assert all(w.startswith("tcp://127.0.0.1:") for w in workers.values())
    assert not (ws.root / ".pivot/tmp").exists() or not any((ws.root / ".pivot/tmp").iterdir())


def test_cluster_file_adapts_a_cluster_to_the_plan(ws) -> None:
    """The FILE.yaml path end to end, with a cluster class that needs no
    batch system: an adaptive LocalCluster that starts with no worker."""
    pytest.importorskip("distributed")
    ws.write("cluster.yaml", """\
        distributed.LocalCluster:
          n_workers: 0
          threads_per_worker: 1
          host: 127.0.0.1
          dashboard_address: null
        """)
    ws.write("dvc.yaml", """\
        stages:
          one:
            foreach: [a, b]
            do:
              cmd: echo ${item} > ${item}.txt
              outs:
                - ${item}.txt
        """)
    proc = ws.pivot_proc("run", "--executor", "cluster.yaml")
    assert "2 ran, 0 restored, 0 up to date, 0 failed" in proc.stdout
    assert ws.read("a.txt") == "a\n" and ws.read("b.txt") == "b\n"
    assert all(w.startswith("tcp://127.0.0.1:") for w in _workers(_last_run(ws)).values())

    ws.write("bad.yaml", "distributed.NoSuchCluster: {}\n")
    ws.write("a.txt", "changed\n")
    proc = ws.pivot_proc("run", "--executor", "bad.yaml", check=False)
    assert proc.returncode == 1
    assert proc.stderr == f"ERROR: cluster file '{ws.root / 'bad.yaml'}': 'distributed' has no class 'NoSuchCluster'\n"


def test_slurm_cluster_file_job_script(tmp_path: Path) -> None:
    pytest.importorskip("dask_jobqueue")
    from pivot.backends.dask_executor import make_cluster
    from pivot.backends.executor_config import ExecutorKind, parse, read_cluster_file

    (tmp_path / "slurm.yaml").write_text("""\
dask_jobqueue.SLURMCluster:
  cores: 4
  processes: 1
  memory: 16GB
  queue: gpu
  walltime: "02:00:00"
  job_extra_directives: ["--gres=gpu:1"]
  worker_extra_args: ["--resources", "gpu=1"]
  interface: lo
  scheduler_options: {dashboard_address: "127.0.0.1:0"}
""")
    spec = parse(str(tmp_path / "slurm.yaml"), "--executor", tmp_path)
    assert spec.kind is ExecutorKind.CLUSTER_FILE
    cluster = make_cluster(read_cluster_file(tmp_path / "slurm.yaml"))
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in ("#SBATCH -p gpu", "#SBATCH --cpus-per-task=4", "#SBATCH -t 02:00:00", "#SBATCH --gres=gpu:1"):
        assert line in script.splitlines()
    worker = script.strip().splitlines()[-1]
    assert "-m distributed.cli.dask_worker tcp://127.0.0.1:" in worker
    assert "--nthreads 4" in worker and "--resources gpu=1" in worker


def test_without_distributed_the_error_names_the_pip_line(ws) -> None:
    ws.write("dvc.yaml", "stages:\n  a:\n    cmd: echo a > a.txt\n    outs: [a.txt]\n")
    hide = "import sys; sys.modules['distributed'] = None; sys.argv = ['pivot', 'run', '--executor', 'dask-local:1']; " \
           "from pivot.cli import main; main()"
    proc = subprocess.run([sys.executable, "-c", hide], cwd=ws.root, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr == "ERROR: the Dask executor needs the 'distributed' package: pip install 'pivot[dask]'\n"
    assert not (ws.root / "a.txt").exists()


def test_worker_that_cannot_see_the_project_says_so(tmp_path: Path) -> None:
    """The task's own check (the coordinator's probe uses the same function)."""
    from pivot.backends.dask_task import StageTask, run_stage
    from pivot.ir import Stage

    stage = Stage(address="a", name="a", file="dvc.yaml", wdir=".", cmds=("echo a > a.txt",))
    task = StageTask(run_id="r", root=str(tmp_path / "elsewhere"), stage=stage, log_relpath=".pivot/logs/a.log",
                     probe_relpath=".pivot/tmp/dask-r/probe", probe_token="t", attempts_relpath="x",
                     retries=2, shell=None, return_log=False)
    outcome = run_stage(task)
    assert outcome.result() is None
    assert outcome.error == (f"Dask worker pid {os.getpid()} cannot see the project at {tmp_path / 'elsewhere'}"
                             " (pivot's probe file is not there): workers need the project on a shared file"
                             " system at the same path")


def test_scheduler_lost_mid_run_fails_the_stage_in_one_line(tmp_path: Path, ws) -> None:
    pytest.importorskip("distributed")
    from tests.conftest import DaskCluster

    class OneWorker(DaskCluster):
        WORKERS = {"solo": ()}

    (tmp_path / "own-cluster").mkdir()
    cluster = OneWorker(tmp_path / "own-cluster")
    try:
        cluster.start()
        ws.write("dvc.yaml", """\
            stages:
              slow:
                cmd: echo started > started.txt; sleep 30; echo x > x.txt
                outs: [x.txt]
            """)
        proc = subprocess.Popen([sys.executable, "-m", "pivot", "run", "--executor", cluster.executor],
                                cwd=ws.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _wait_for(ws.root / "started.txt", proc)
            os.killpg(cluster.procs[0].pid, signal.SIGKILL)  # the scheduler
            stdout, stderr = proc.communicate(timeout=120)
        finally:
            proc.kill()
    finally:
        cluster.stop()
    assert proc.returncode == 1, stdout + stderr
    assert "FAILED slow: the Dask scheduler cancelled the task (connection lost?)" in stdout
    assert "Traceback" not in stderr and "Traceback" not in stdout
    assert not (ws.root / ".pivot/locks/slow.json").exists()
