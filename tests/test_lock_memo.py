"""Parsed lock records remembered in the stat cache by lock-file signature:
used only while the file is unchanged, never made from a racy file."""

from __future__ import annotations

import sqlite3

import pytest

import pivot.signature
from pivot.project import Project
from pivot.state import State, locks

PIPELINE = """\
stages:
  copy:
    cmd: cp in.txt out.txt
    deps:
      - in.txt
    outs:
      - out.txt
"""


@pytest.fixture
def file_reads(monkeypatch):
    """Trust files at once (no racy window) and count lock files parsed."""
    monkeypatch.setattr(pivot.signature, "RACY_WINDOW_NS", 0)
    calls: list[str] = []
    real = locks.LockStore._read_file

    def counting(self, address, path):
        calls.append(address)
        return real(self, address, path)

    monkeypatch.setattr(locks.LockStore, "_read_file", counting)
    return calls


@pytest.fixture
def project(ws):
    ws.write("dvc.yaml", PIPELINE)
    ws.write("in.txt", "hello\n")
    ws.write("out.txt", "hello\n")
    ws.pivot("commit")
    return ws


def read_record(ws, *, readonly=False):
    with State.open(Project(ws.root, ws.root), readonly=readonly) as state:
        return state.locks.read("copy")


def memo_rows(ws) -> int:
    db = ws.root / ".pivot" / "state.db"
    if not db.exists():  # nothing was ever worth remembering
        return 0
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM lock_memo").fetchone()[0]


def test_unchanged_record_is_not_parsed_again(project, file_reads):
    first = read_record(project)
    assert first is not None and first.cmd == ("cp in.txt out.txt",)
    assert memo_rows(project) == 1
    assert read_record(project) == first
    assert file_reads == ["copy"]


def test_rewritten_record_is_parsed_again(project, file_reads):
    read_record(project)
    project.write("in.txt", "changed, and longer\n")
    project.write("out.txt", "changed, and longer\n")
    project.pivot("commit")
    record = read_record(project)
    assert record is not None and record.dep("in.txt").size == len("changed, and longer\n")
    assert file_reads.count("copy") >= 2


def test_removed_record_reads_as_none(project, file_reads):
    read_record(project)
    (project.root / ".pivot" / "locks" / locks.lock_filename("copy")).unlink()
    assert read_record(project) is None


def test_racy_record_is_not_remembered(project):
    # the real window: the record was written just now
    read_record(project)
    assert memo_rows(project) == 0


def test_readonly_state_remembers_nothing(project, file_reads):
    read_record(project, readonly=True)
    assert memo_rows(project) == 0


def test_damaged_or_foreign_entries_fall_back_to_the_file(project, file_reads, monkeypatch):
    first = read_record(project)
    with sqlite3.connect(project.root / ".pivot" / "state.db") as conn:
        conn.execute("UPDATE lock_memo SET entry = ?", (b"\x00garbage",))
    assert read_record(project) == first
    monkeypatch.setattr(locks, "MEMO_FORMAT", locks.MEMO_FORMAT + 1)
    assert read_record(project) == first
    assert file_reads == ["copy", "copy", "copy"]


def test_status_through_the_memo_sees_an_edit(project, file_reads):
    assert project.pivot_json("status") == {}
    assert project.pivot_json("status") == {}
    project.write("in.txt", "edited\n")
    assert project.pivot_json("status") == {"copy": [{"changed deps": {"in.txt": "modified"}}]}
