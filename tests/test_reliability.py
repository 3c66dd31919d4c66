"""Faults of the machine, not of the pipeline: a full disk, a read-only
project, a directory where pivot keeps a file.  Every command either
answers or stops with one ``ERROR:`` line naming the path at fault; none
prints a traceback, and the stat cache is never thrown away for it.

Disk-full cases run pivot on a real 1 MiB tmpfs filled to the last block
(mounting needs root, as in CI); permission cases run pivot as a real
unprivileged user (``tests/unprivileged.py``), since root ignores modes.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pivot.project import Project
from pivot.state import State
from tests._statehelp import age
from tests.unprivileged import make_read_only

PIPELINE = """\
stages:
  a:
    cmd: cp in.txt a.txt
    deps: [in.txt]
    outs: [a.txt]
  b:
    cmd: cp a.txt b.txt
    deps: [a.txt]
    outs: [b.txt]
"""


def pivot(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pivot", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The command failed with exit 1 and a single ``ERROR:`` line (warnings aside)."""
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("WARNING: ")]
    assert len(errors) == 1 and errors[0].startswith("ERROR: "), proc.stderr
    return errors[0]


def stat_rows(db: Path) -> set[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return {path for (path,) in conn.execute("SELECT path FROM stat")}


# -- a full disk -------------------------------------------------------------------


class SmallDisk:
    def __init__(self, mountpoint: Path) -> None:
        self.mountpoint = mountpoint
        self.filler = mountpoint / "filler"

    def fill(self) -> None:
        """Write until the file system refuses another byte."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            for size in (65536, 4096, 1):
                try:
                    while os.write(fd, b"\0" * size):
                        pass
                except OSError:
                    continue
        finally:
            os.close(fd)
        assert os.statvfs(self.mountpoint).f_bavail == 0

    def free(self) -> None:
        self.filler.unlink()


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 1 MiB tmpfs (needs root, as CI has; skipped where mounting is impossible)."""
    mountpoint = tmp_path / "small"
    mountpoint.mkdir()
    try:
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(mountpoint)],
                              capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("no mount command: cannot make a small file system to fill")
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill (root only): {proc.stderr.strip()}")
    try:
        yield SmallDisk(mountpoint)
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True)


def _project_on(disk: SmallDisk) -> Path:
    root = disk.mountpoint / "project"
    root.mkdir()
    (root / "dvc.yaml").write_text(PIPELINE)
    (root / "in.txt").write_text("one\n")
    assert pivot(root, "run").returncode == 0
    (root / "in.txt").write_text("two\n")
    return root


@pytest.mark.slow
def test_status_plan_and_why_answer_on_a_full_disk(small_disk) -> None:
    root = _project_on(small_disk)
    age(root)  # rows are kept only for files out of the racy window
    expected = {args: pivot(root, *args).stdout for args in [("status",), ("plan",), ("why", "b")]}
    rows = stat_rows(root / ".pivot/state.db")
    (root / "in.txt").write_text("three\n")  # a new row to remember
    age(root)
    expected = {args: pivot(root, *args).stdout for args in expected}  # out of the racy window
    (root / "in.txt").write_text("four\n")
    age(root)  # a row worth writing, on a full disk
    small_disk.fill()
    for args, stdout in expected.items():
        proc = pivot(root, *args)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stdout == stdout
        assert "'.pivot/state.db' cannot be written (No space left on device)" in proc.stderr
    assert stat_rows(root / ".pivot/state.db") >= rows, "the stat cache was thrown away"


@pytest.mark.slow
def test_the_stat_cache_keeps_answering_when_it_cannot_write(small_disk) -> None:
    root = _project_on(small_disk)
    age(root)
    assert pivot(root, "status").returncode == 0  # rows for every file, trusted from now on
    small_disk.fill()
    with State.open(Project.discover(root)) as state:
        for path in ("in.txt", "a.txt", "b.txt"):
            state.hasher.hash(path)
        assert state.hasher.files_read == 0


@pytest.mark.slow
@pytest.mark.parametrize("command", [("run",), ("checkout",), ("commit",), ("gc",), ("emit", "ninja")])
def test_writing_commands_stop_with_one_line_on_a_full_disk(small_disk, command) -> None:
    root = _project_on(small_disk)
    small_disk.fill()
    line = one_error_line(pivot(root, *command))
    assert "No space left on device" in line and "'.pivot" in line, line


@pytest.mark.slow
def test_a_disk_that_fills_during_a_run_fails_the_stage_with_one_line(small_disk) -> None:
    root = small_disk.mountpoint / "project"
    root.mkdir()
    (root / "dvc.yaml").write_text("stages:\n  big:\n    cmd: head -c 400000 /dev/zero > big.bin\n"
                                   "    outs: [big.bin]\n")
    small_disk.filler.write_bytes(b"\0" * 500_000)  # room for the output, not for its cache copy
    proc = pivot(root, "run")
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert "FAILED big: cannot save to the cache" in proc.stdout and "No space left on device" in proc.stdout
    small_disk.free()
    assert pivot(root, "run").returncode == 0  # nothing half-written in the way


# -- a read-only project, as a user who cannot write it --------------------------


READ_COMMANDS = [("status",), ("status", "--json"), ("plan",), ("why", "b"), ("run", "--dry")]


@pytest.mark.slow
def test_a_read_only_project_answers_status_plan_and_why(unprivileged) -> None:
    root = unprivileged.project()
    (root / "dvc.yaml").write_text(PIPELINE)
    (root / "in.txt").write_text("one\n")
    unprivileged.chown(root)
    unprivileged.pivot(root, "run", "a")
    expected = {args: unprivileged.pivot(root, *args).stdout for args in READ_COMMANDS}
    make_read_only(root)
    for args, stdout in expected.items():
        proc = unprivileged.pivot(root, *args)
        assert "Traceback" not in proc.stderr and proc.stdout == stdout, (args, proc.stdout, proc.stderr)
        assert "WARNING" not in proc.stderr, proc.stderr  # nothing to warn about: it only reads


@pytest.mark.slow
def test_a_read_only_project_never_run_answers_too(unprivileged) -> None:
    root = unprivileged.project()
    (root / "dvc.yaml").write_text(PIPELINE)
    (root / "in.txt").write_text("one\n")
    unprivileged.chown(root)
    make_read_only(root)  # no .pivot/ at all, and none can be made
    proc = unprivileged.pivot(root, "status", "--json")
    assert "Traceback" not in proc.stderr
    assert set(__import__("json").loads(proc.stdout)) == {"a", "b"}
    assert "run       a" in unprivileged.pivot(root, "plan").stdout


@pytest.mark.slow
@pytest.mark.parametrize("command", [("run",), ("run", "a"), ("checkout",), ("commit",), ("emit", "ninja"), ("gc",)])
def test_writing_commands_stop_with_one_line_in_a_read_only_project(unprivileged, command) -> None:
    root = unprivileged.project()
    (root / "dvc.yaml").write_text(PIPELINE)
    (root / "in.txt").write_text("one\n")
    unprivileged.chown(root)
    unprivileged.pivot(root, "run", "a")  # `run a` then has nothing to do
    make_read_only(root)
    line = one_error_line(unprivileged.pivot(root, *command, check=False))
    assert "Permission denied: '.pivot/" in line or "lock '.pivot/" in line, line


@pytest.mark.slow
def test_a_read_only_stat_cache_is_read_and_kept(unprivileged) -> None:
    """Only the database is read-only (the directory is not): it used to be
    deleted as 'unusable' on the first write."""
    root = unprivileged.project()
    (root / "dvc.yaml").write_text(PIPELINE)
    (root / "in.txt").write_text("one\n")
    unprivileged.chown(root)
    unprivileged.pivot(root, "run")
    db = root / ".pivot/state.db"
    age(root)  # rows are kept only for files out of the racy window
    expected = unprivileged.pivot(root, "status").stdout
    rows = stat_rows(db)
    (root / "in.txt").write_text("two\n")
    unprivileged.chown(root)
    age(root)
    expected = unprivileged.pivot(root, "status").stdout
    unprivileged.pivot(root, "checkout")  # settle the WAL into the main file
    os.chmod(db, 0o444)
    (root / "in.txt").write_text("three\n")
    age(root)  # a row worth writing
    proc = unprivileged.pivot(root, "status")
    assert proc.stdout == expected and "Traceback" not in proc.stderr
    assert "'.pivot/state.db' cannot be written (attempt to write a readonly database)" in proc.stderr
    assert db.is_file() and stat_rows(db) >= rows


# -- a directory where pivot keeps a file ------------------------------------------


def test_a_lock_record_that_is_a_directory_is_named_not_a_traceback(ws) -> None:
    ws.write("dvc.yaml", "stages:\n  a:\n    cmd: echo a > a.txt\n    outs: [a.txt]\n")
    (ws.root / ".pivot/locks/a.json").mkdir(parents=True)
    status = ws.pivot("status")
    assert "cannot read lock record '.pivot/locks/a.json': Is a directory" in status.stderr
    run = ws.pivot("run", expect=1)
    assert "FAILED a: cannot write lock record '.pivot/locks/a.json' of 'a': Is a directory; remove it" in run.stdout
    commit = ws.pivot("commit", expect=1)
    assert commit.stderr.strip() == ("ERROR: cannot write lock record '.pivot/locks/a.json' of 'a':"
                                     " Is a directory; remove it")
    assert (ws.root / ".pivot/locks/a.json").is_dir()  # never removed for the user
    assert not [p for p in (ws.root / ".pivot/locks").iterdir() if p.name != "a.json"]


@pytest.mark.parametrize("name", ["run.lock", "cache.lock"])
def test_a_lock_file_that_is_a_directory_is_named(ws, name) -> None:
    ws.write("dvc.yaml", "stages:\n  a:\n    cmd: echo a > a.txt\n    outs: [a.txt]\n")
    (ws.root / ".pivot" / name).mkdir(parents=True)
    result = ws.pivot("run" if name == "run.lock" else "commit", expect=1)
    assert result.stderr.strip() == f"ERROR: cannot take the {name[:-5]} lock '.pivot/{name}': Is a directory"


def test_an_os_error_outside_pivot_state_names_its_path(ws) -> None:
    """The last guard at the command line: an OSError no layer below turned
    into a message still comes out as one line with its path."""
    ws.write("dvc.yaml", "stages:\n  a:\n    cmd: echo a > a.txt\n    outs: [a.txt]\n")
    ws.pivot("run")
    (ws.root / ".pivot/ninja").write_text("a file where a directory belongs")
    result = ws.pivot("emit", "ninja", expect=1)
    assert result.stderr.startswith("ERROR: ") and "'.pivot/ninja" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
