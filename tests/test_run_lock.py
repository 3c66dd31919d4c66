"""The project run lock: a second holder fails naming the first one's pid."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pivot.errors import StateError
from pivot.project import Project
from pivot.state.runlock import RunLock


def test_second_holder_fails_naming_the_pid(tmp_path: Path) -> None:
    project = Project(root=tmp_path, cwd=tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\n"
         "from pivot.project import Project\nfrom pivot.state.runlock import RunLock\n"
         f"p = Project(root=Path({str(tmp_path)!r}), cwd=Path({str(tmp_path)!r}))\n"
         "with RunLock(p, 'run'):\n    print('held', flush=True)\n    sys.stdin.read()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(StateError, match=rf"another pivot run \(pid {holder.pid}\).*\.pivot/run\.lock"):
            with RunLock(project, "checkout"):
                pass
    finally:
        holder.stdin.close()
        holder.wait(10)
    # released when the holder exits: taking it now works
    with RunLock(project) as lock:
        assert lock.path.read_text().split()[0] == str(os.getpid())


def test_lock_is_reentrant_across_sequential_uses(tmp_path: Path) -> None:
    project = Project(root=tmp_path, cwd=tmp_path)
    with RunLock(project):
        pass
    with RunLock(project):
        pass
    assert (tmp_path / ".pivot" / "run.lock").read_text() == ""
