"""`pivot gc`: keeps what the lock records and the kept run-cache entries
need, frees the rest, and is safe next to readers and writers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pivot.project import Project
from pivot.state.runlock import CacheLock, RunLock

PIPELINE = """\
    stages:
      gen:
        cmd: mkdir -p d && echo "v=$(cat v.txt)" > d/a && echo "$(cat v.txt)$(cat v.txt)" > d/b && echo gen >> runs.log
        deps: [v.txt]
        outs: [d]
      sum:
        cmd: cat d/a d/b > sum.txt && echo sum >> runs.log
        deps: [d]
        outs: [sum.txt]
    """


@pytest.fixture
def history(ws):
    """Runs for v=1, 2, 3 (in that order); v=3 is current."""
    ws.write("dvc.yaml", PIPELINE)
    for value in ("1", "2", "3"):
        ws.write("v.txt", value)
        ws.pivot("run", "-j", "1")
        time.sleep(0.01)  # distinct entry times
    return ws


def _objects(root: Path) -> set[str]:
    base = root / ".pivot/cache/files"
    return {p.parent.name + p.name for p in base.glob("*/*")}


def _entries(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in (root / ".pivot/runcache").glob("*/*.json")]


def _runs(ws) -> int:
    return len(ws.read("runs.log").split())


def _assert_consistent(root: Path) -> None:
    """No entry names a missing object; no manifest names a missing file."""
    objects = _objects(root)
    for entry in _entries(root):
        for out in entry["outs"]:
            assert out["hash"] in objects
    for digest in objects:
        if digest.endswith(".dir"):
            manifest = json.loads((root / ".pivot/cache/files" / digest[:2] / digest[2:]).read_text())
            assert all(e["hash"] in objects for e in manifest)


def test_gc_keeps_everything_current_and_frees_the_rest(history):
    ws = history
    before = _objects(ws.root)
    result = ws.pivot("gc", "--keep-last", "0")
    assert result.stdout.startswith("Removed 8 cache objects and 4 run-cache entries, freeing ")
    # v=3: d's manifest, d/a, d/b, sum.txt
    assert len(_objects(ws.root)) == 4 and _objects(ws.root) < before
    assert "Kept 4 objects" in result.stdout
    assert {e["address"] for e in _entries(ws.root)} == {"gen", "sum"}
    _assert_consistent(ws.root)
    assert ws.pivot("status").stdout == "Pipelines are up to date.\n"
    # the current outputs can still be restored
    for path in ("d", "sum.txt"):
        os.system(f"rm -rf {ws.root / path}")
    ws.pivot("checkout")
    assert ws.read("sum.txt") == "v=3\n33\n"
    # earlier runs are gone: going back runs again
    ws.write("v.txt", "1")
    assert {s["action"] for s in ws.pivot_json("plan")["stages"]} == {"run"}


def test_keep_last_keeps_the_most_recent_runs_per_stage(history):
    ws = history
    ws.pivot("gc", "--keep-last", "2")  # v=3 (current) and v=2
    _assert_consistent(ws.root)
    runs = _runs(ws)
    ws.write("v.txt", "2")
    ws.pivot("run", "-j", "1")
    assert _runs(ws) == runs  # restored
    ws.write("v.txt", "1")
    ws.pivot("run", "-j", "1")
    assert _runs(ws) == runs + 2  # collected: ran again


def test_current_entry_is_kept_even_when_older(history):
    ws = history
    ws.write("v.txt", "1")
    ws.pivot("run", "-j", "1")  # restored from the oldest entries
    ws.pivot("gc", "--keep-last", "1")  # keeps v=3 (newest) and v=1 (current)
    _assert_consistent(ws.root)
    runs = _runs(ws)
    for value in ("3", "1"):
        ws.write("v.txt", value)
        ws.pivot("run", "-j", "1")
    assert _runs(ws) == runs


def test_dry_removes_nothing(history):
    ws = history
    before = _objects(ws.root), len(_entries(ws.root))
    result = ws.pivot("gc", "--dry", "--keep-last", "0")
    assert result.stdout.startswith("Would remove 8 cache objects and 4 run-cache entries")
    assert (_objects(ws.root), len(_entries(ws.root))) == before


def test_default_keeps_five_runs(history):
    assert "Removed 0 cache objects and 0 run-cache entries" in history.pivot("gc").stdout


def test_gc_removes_leftovers_of_interrupted_writes(history):
    ws = history
    leftover = ws.root / ".pivot/cache/files/ab/.tmp-12345"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_text("half an object")
    os.utime(leftover, (time.time() - 3600, time.time() - 3600))  # older than gc's grace period
    ws.pivot("gc")
    assert not leftover.exists()


def test_gc_never_runs_during_a_run_or_a_commit(history):
    ws = history
    proj = Project.discover(ws.root)
    with RunLock(proj, "run"):
        result = ws.pivot("gc", expect=1)
        assert "is already changing this project" in result.stderr
    with CacheLock(proj):  # a `pivot commit` writing objects
        result = ws.pivot("gc", expect=1)
        assert "another pivot command is writing to the cache" in result.stderr
    ws.pivot("gc")


def test_a_damaged_lock_record_stops_gc(history):
    ws = history
    (ws.root / ".pivot/locks/sum.json").write_text("{not json")
    before = _objects(ws.root)
    result = ws.pivot("gc", "--keep-last", "0", expect=1)
    assert "lock record '.pivot/locks/sum.json' is unreadable" in result.stderr
    assert "Traceback" not in result.stderr
    assert _objects(ws.root) == before


@pytest.mark.slow
def test_gc_during_concurrent_status(history):
    """A real status/plan loop in another process while runs and gc churn
    the cache: every status succeeds and says something coherent."""
    ws = history
    loop = (
        "import subprocess, sys, time\n"
        "end = time.time() + float(sys.argv[1])\n"
        "bad = 0\n"
        "while time.time() < end:\n"
        "    for cmd in ('status', 'plan'):\n"
        "        p = subprocess.run([sys.executable, '-m', 'pivot', cmd, '--json'], capture_output=True, text=True)\n"
        "        if p.returncode != 0 or 'Traceback' in p.stderr or not p.stdout.strip().startswith('{'):\n"
        "            bad += 1; print(p.stdout, p.stderr)\n"
        "print('BAD', bad)\n"
    )
    reader = subprocess.Popen([sys.executable, "-c", loop, "4"], cwd=ws.root, stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 3.5
    rounds = 0
    while time.time() < deadline:
        ws.write("v.txt", str(rounds % 4))
        ws.pivot("run", "-j", "1")
        ws.pivot("gc", "--keep-last", str(rounds % 2))
        rounds += 1
    out, _ = reader.communicate(timeout=60)
    assert reader.returncode == 0
    assert out.strip().endswith("BAD 0"), out
    assert rounds >= 2
    _assert_consistent(ws.root)
    assert ws.pivot("status").stdout == "Pipelines are up to date.\n"


def test_gc_forgets_stat_rows_and_lock_memos_of_what_is_gone(history):
    import sqlite3

    from tests._statehelp import age

    # stat rows are kept only for files out of the racy window: settle, then hash
    age(history.root)
    history.pivot("status")  # sum.txt's row
    history.write("dvc.yaml", PIPELINE.replace("      sum:", "      total:").replace("sum.txt", "total.txt"))
    history.pivot("run", "-j", "1")  # total runs; sum is no stage any more
    age(history.root)
    history.pivot("status")  # total.txt's row
    (history.root / ".pivot/locks/sum.json").unlink()
    (history.root / "sum.txt").unlink()
    db = history.root / ".pivot/state.db"
    # A lock record is remembered only once its file is 2 s old; plant the
    # rows a command would have left for sum's and total's records.
    with sqlite3.connect(db) as conn:
        conn.executemany("INSERT INTO lock_memo VALUES (?, ?)", [("sum", b"x"), ("total", b"x")])

    def rows() -> tuple[set[str], set[str]]:
        with sqlite3.connect(db) as conn:
            paths = {row[0] for row in conn.execute("SELECT path FROM stat")}
            memos = {row[0] for row in conn.execute("SELECT address FROM lock_memo")}
        return paths, memos

    paths, memos = rows()
    assert "sum.txt" in paths
    out = history.pivot("gc").stdout
    assert "Dropped 2 stat-cache rows" in out, out
    paths, memos = rows()
    assert "sum.txt" not in paths and memos == {"total"}
    assert {"v.txt", "total.txt", "d/a"} <= paths
    assert "Dropped" not in history.pivot("gc").stdout, "nothing left to drop"
    assert "Pipelines are up to date" in history.pivot("status").stdout
