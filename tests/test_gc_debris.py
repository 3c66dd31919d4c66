"""`pivot gc` removes what interrupted writes leave behind: the atomic
writer's temporary files under `.pivot/` and checkout temporaries beside
outputs -- once they are older than a grace period, so that a writer still
at work is never hurt."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pivot import atomic
from pivot.state.gc import GRACE_SECONDS
from pivot.state.store import _temp_name as checkout_temp_name

PIPELINE = """\
    stages:
      gen:
        cmd: mkdir -p d && echo a > d/a && echo b > d/b
        outs: [d]
      sum:
        cmd: cat d/a d/b > sum.txt
        deps: [d]
        outs: [sum.txt]
    """


@pytest.fixture
def project(ws):
    ws.write("dvc.yaml", PIPELINE)
    ws.pivot("run", "-j", "1")
    return ws


def _age(*paths: Path) -> None:
    """Make ``paths`` look untouched for longer than the grace period."""
    old = time.time() - GRACE_SECONDS - 60
    for path in paths:
        os.utime(path, (old, old))


def _leave_temp_file(target: Path, text: str = "half written") -> Path:
    """What the atomic writer leaves when killed before its rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic.temp_path(target)
    tmp.write_text(text)
    return tmp


def _kill_a_writer(target: Path) -> Path:
    """Start a real process writing ``target`` through the atomic writer,
    kill -9 it before it renames, and return the file it left."""
    script = textwrap.dedent(f"""\
        import sys, time
        from pivot import atomic
        with atomic.writing({str(target)!r}) as handle:
            handle.write(b'{{"half": ')
            handle.flush()
            print("writing", flush=True)
            time.sleep(60)
        """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "writing\n"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    (left,) = [p for p in target.parent.iterdir() if atomic.is_temp_name(p.name)]
    return left


def test_gc_removes_what_a_killed_writer_left_in_every_state_directory(project):
    ws = project
    state = ws.root / ".pivot"
    killed = _kill_a_writer(state / "locks" / "sum.json")
    object_dir = next((state / "cache/files").iterdir())
    debris = [
        killed,
        _leave_temp_file(state / "runcache/ab/cdef.json"),
        _leave_temp_file(object_dir / "0123456789abcdef"),
        _leave_temp_file(state / "ninja/keys/sum"),
        _leave_temp_file(state / "pipeline.pickle"),
        _leave_temp_file(state / "parser/statements/0123.pickle"),
    ]
    _age(*debris)
    out = ws.pivot("gc").stdout
    assert f"Removed {len(debris)} temporary files left by interrupted writes." in out
    assert [p for p in debris if p.exists()] == []
    assert (state / "locks/sum.json").is_file(), "the record the killed writer was replacing is whole"
    assert ws.pivot("status").stdout == "Pipelines are up to date.\n"


def test_gc_removes_leftovers_of_older_pivots_in_the_cache(project):
    old_style = next((project.root / ".pivot/cache/files").iterdir()) / ".tmp-k2j3h4"
    old_style.write_text("half an object")
    _age(old_style)
    project.pivot("gc")
    assert not old_style.exists()


def test_a_fresh_temporary_file_may_belong_to_a_live_writer_and_stays(project):
    fresh = _leave_temp_file(project.root / ".pivot/ninja/keys/sum")
    out = project.pivot("gc").stdout
    assert fresh.exists()
    assert "temporary file" not in out


def test_dry_lists_the_debris_and_removes_nothing(project):
    ws = project
    tmp = _leave_temp_file(ws.root / ".pivot/locks/gen.json")
    _age(tmp)
    out = ws.pivot("gc", "--dry").stdout
    assert "Would remove 1 temporary file left by interrupted writes:" in out
    assert f"  .pivot/locks/{tmp.name}\n" in out
    assert tmp.exists()


def test_gc_removes_checkout_temporaries_beside_outputs_and_inside_output_directories(project):
    ws = project
    beside = Path(checkout_temp_name(ws.root / "sum.txt"))  # the name a killed checkout leaves
    inside = Path(checkout_temp_name(ws.root / "d/a"))
    for path in (beside, inside):
        path.write_text("half restored")
    users = ws.write(".sum.txt.pivot-notes", "not pivot's: the name does not match")
    _age(beside, inside, users)
    out = ws.pivot("gc", "--dry").stdout
    assert f"  {beside.name}\n" in out and f"  d/{inside.name}\n" in out
    ws.pivot("gc")
    assert not beside.exists() and not inside.exists()
    assert users.exists()
    assert ws.read("sum.txt") == "a\nb\n"


def test_checkout_temporaries_of_an_output_without_a_lock_record_go_too(ws):
    ws.write("dvc.yaml", PIPELINE)  # never run: only the pipeline declares sum.txt
    ws.pivot("status")
    (ws.root / ".pivot").mkdir(exist_ok=True)
    beside = Path(checkout_temp_name(ws.root / "sum.txt"))
    beside.write_text("half restored")
    _age(beside)
    ws.pivot("gc")
    assert not beside.exists()
