"""pivot.background: work finished by a forked child, waited for before the
process exits.  Each case runs in a fresh interpreter, which has one
thread (the test runner's workers may have more)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def run_script(tmp_path: Path, body: str) -> list[str]:
    script = "import os, sys, threading, time\nfrom pivot import background\n" + textwrap.dedent(body)
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_the_work_runs_in_a_child_on_a_snapshot(tmp_path):
    lines = run_script(tmp_path, """
        done = []
        def work():
            done.append(1)
            with open("pid", "w") as f:
                f.write(str(os.getpid()))
        background.run(work)
        background.wait()
        print(os.getpid(), open("pid").read(), len(done))
    """)
    parent, child, appended = lines[-1].split()
    assert child != parent
    assert appended == "0", "the child's changes stay in the child"


def test_with_another_thread_alive_the_work_runs_inline(tmp_path):
    lines = run_script(tmp_path, """
        stop = threading.Event()
        threading.Thread(target=stop.wait).start()
        done = []
        background.run(lambda: done.append(os.getpid()))
        stop.set()
        print(done == [os.getpid()])
    """)
    assert lines == ["True"]


def test_an_error_in_the_child_never_returns_into_the_callers_code(tmp_path):
    lines = run_script(tmp_path, """
        def work():
            raise KeyboardInterrupt
        background.run(work)
        def broken():
            raise OSError("disk full")
        background.run(broken)
        background.wait()
        print("after", os.getpid())
    """)
    assert len(lines) == 1 and lines[0].startswith("after "), lines


def test_wait_reaps_every_child(tmp_path):
    lines = run_script(tmp_path, """
        for _ in range(3):
            background.run(lambda: time.sleep(0.1))
        background.wait()
        try:
            os.waitpid(-1, os.WNOHANG)
            print("a child is left")
        except ChildProcessError:
            print("none left")
    """)
    assert lines == ["none left"]


def test_a_process_that_never_waits_still_waits_at_exit(tmp_path):
    run_script(tmp_path, """
        def work():
            time.sleep(0.3)
            open("written", "w").close()
        background.run(work)
    """)
    assert (tmp_path / "written").exists(), "the interpreter's exit waited for the child"
