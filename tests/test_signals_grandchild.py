"""SIGTERM to `pivot run` ends everything a stage started, even a grandchild
that ignores TERM: its process group is remembered after the stage's shell
died, and SIGKILLed when the grace period is over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pivot.backends import runner

# The stage's shell starts a grandchild that ignores TERM, records its pid
# and waits: TERM ends the shell at once, the grandchild stays.
PIPELINE = """\
stages:
  stubborn:
    cmd: sh -c 'trap "" TERM; echo $$ > grandchild.pid; while :; do sleep 1; done' & wait
    outs: [never.txt]
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_for(path: Path, proc: subprocess.Popen[str], seconds: float = 20) -> int:
    deadline = time.monotonic() + seconds
    while not (path.exists() and path.read_text().strip()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)
    return int(path.read_text())


@pytest.mark.slow
def test_sigterm_kills_a_grandchild_that_ignores_it_after_the_grace_period(ws) -> None:
    ws.write("dvc.yaml", PIPELINE)
    proc = subprocess.Popen([sys.executable, "-m", "pivot", "run"], cwd=ws.root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    grandchild = group = None
    try:
        grandchild = _wait_for(ws.root / "grandchild.pid", proc)
        group = os.getpgid(grandchild)
        assert group != os.getpgid(0), "the stage should run in its own process group"
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=runner.KILL_GRACE_SECONDS + 20)
        assert proc.returncode == 130, out + err
        assert "Traceback" not in err
        deadline = time.monotonic() + 5
        while _alive(grandchild) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(grandchild), "the grandchild that ignores SIGTERM survived the run"
        # it was given its grace period first, and pivot waited for it no longer than that
        assert runner.KILL_GRACE_SECONDS - 0.5 <= time.monotonic() - sent < runner.KILL_GRACE_SECONDS + 10
        assert not (ws.root / ".pivot/locks/stubborn.json").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if group is not None:  # whatever this test started and pivot did not end
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.mark.slow
def test_a_run_whose_stage_ends_on_sigterm_exits_without_waiting_the_grace_period(ws) -> None:
    """Nothing survived the TERM: no reason to wait for SIGKILL time."""
    ws.write("dvc.yaml", "stages:\n  s:\n    cmd: echo $$ > shell.pid; sleep 30\n    outs: [never.txt]\n")
    proc = subprocess.Popen([sys.executable, "-m", "pivot", "run"], cwd=ws.root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(ws.root / "shell.pid", proc)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 130, out + err
        assert time.monotonic() - sent < runner.KILL_GRACE_SECONDS - 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_an_unexpected_error_ends_the_other_stages_grandchildren_too(ws) -> None:
    """The coordinator fails (here: the cache cannot be written, a file
    stands where a directory of objects belongs) while another stage runs
    a grandchild that ignores SIGTERM: pivot stops with one line, and the
    grandchild is SIGKILLed after the grace period instead of living on."""
    import xxhash

    ws.write("dvc.yaml", """\
        stages:
          breaks:
            cmd: sleep 1; echo a > a.txt
            outs: [a.txt]
          stubborn:
            cmd: sh -c 'trap "" TERM; echo $$ > grandchild.pid; while :; do sleep 1; done' & wait
            outs: [never.txt]
        """)
    digest = xxhash.xxh3_128_hexdigest(b"a\n")
    (ws.root / ".pivot/cache/files").mkdir(parents=True)
    (ws.root / ".pivot/cache/files" / digest[:2]).write_text("not a directory")
    proc = subprocess.Popen([sys.executable, "-m", "pivot", "run", "-j", "2"], cwd=ws.root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    group = None
    try:
        grandchild = _wait_for(ws.root / "grandchild.pid", proc)
        group = os.getpgid(grandchild)
        out, err = proc.communicate(timeout=runner.KILL_GRACE_SECONDS + 30)
        assert proc.returncode == 1 and "Traceback" not in err, out + err
        assert err.strip().splitlines()[-1].startswith("ERROR: ")
        deadline = time.monotonic() + 5
        while _alive(grandchild) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(grandchild), "a grandchild outlived pivot's error exit"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if group is not None:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
