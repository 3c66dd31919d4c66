"""Interrupting a real `pivot run` process: SIGINT/SIGTERM, kill -9, and a
second run while one is going."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

PIPELINE = """\
stages:
  quick:
    cmd: echo quick > quick.txt
    outs: [quick.txt]
  slow:
    cmd: sleep $(cat delay.txt) & echo $! > sleep.pid; wait; echo slow > slow.txt
    deps: [quick.txt]
    outs: [slow.txt]
"""


def _start_run(ws) -> subprocess.Popen[str]:
    ws.write("dvc.yaml", PIPELINE)
    ws.write("delay.txt", "30\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pivot", "run", "-j", "2"],
        cwd=ws.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    pidfile = ws.root / "sleep.pid"
    deadline = time.monotonic() + 20
    while not (pidfile.exists() and pidfile.read_text().strip()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the slow stage never started"
        time.sleep(0.02)
    return proc


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _lock(ws, address: str) -> Path:
    return ws.root / ".pivot" / "locks" / f"{address}.json"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.slow
def test_interrupt_ends_commands_and_keeps_completed_records(ws, sig: int) -> None:
    proc = _start_run(ws)
    sleeper = int((ws.root / "sleep.pid").read_text())
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, out + err
    assert "interrupted" in out
    assert _lock(ws, "quick").exists()
    assert not _lock(ws, "slow").exists()
    assert not (ws.root / "slow.txt").exists()
    time.sleep(0.05)
    assert not _alive(sleeper), "the interrupted command's child survived"
    from pivot import atomic

    leftovers = [p for p in (ws.root / ".pivot").rglob("*") if atomic.is_temp_name(p.name)]
    assert not leftovers, "half-written state left behind"
    (run,) = json.loads(ws.pivot("log", "--json").stdout)
    assert run["status"] == "interrupted"
    outcomes = {s["address"]: s["outcome"] for s in run["stages"]}
    assert outcomes == {"quick": "ran", "slow": "interrupted"}


def test_kill_9_loses_only_the_running_stage(ws) -> None:
    proc = _start_run(ws)
    sleeper = int((ws.root / "sleep.pid").read_text())
    proc.kill()
    proc.wait(10)
    os.killpg(os.getpgid(sleeper), signal.SIGKILL)  # pivot could not: it was killed first
    # the lock died with the process; the next run reruns exactly the lost stage
    (ws.root / "sleep.pid").unlink()
    ws.write("delay.txt", "0\n")  # not a dep: the stage reruns only for lack of a record
    result = ws.pivot("run")
    assert "ran slow" in result.stdout and "ran quick" not in result.stdout
    assert "1 ran, 0 restored, 1 up to date" in result.stdout
    record = json.loads(ws.pivot("log", "--json", "-n", "2").stdout)[1]
    assert record["status"] == "incomplete"


def test_second_run_fails_naming_the_first(ws) -> None:
    proc = _start_run(ws)
    try:
        result = ws.pivot("run", expect=1)
        assert f"another pivot run (pid {proc.pid})" in result.stderr
        ws.pivot("checkout", expect=1)
        ws.pivot("log")  # readers never wait for the lock
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
