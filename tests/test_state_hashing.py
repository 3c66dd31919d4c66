"""Hashing: files, directory manifests, symlinks, the stat cache."""

from __future__ import annotations

import os

import pytest
import xxhash

from pivot.errors import PivotError
from pivot.project import Project
from pivot.state import State
from pivot.state import hashing as hashing_mod

from tests._statehelp import age


def open_state(ws):
    return State.open(Project(root=ws.root, cwd=ws.root))


def test_file_hash_is_xxh3_128_of_bytes(ws):
    ws.write("a.txt", "hello\n")
    with open_state(ws) as state:
        info = state.hasher.hash("a.txt")
    assert info.hash == xxhash.xxh3_128_hexdigest(b"hello\n")
    assert info.size == 6 and info.nfiles is None and not info.is_dir


def test_missing_path_hashes_to_none(ws):
    with open_state(ws) as state:
        assert state.hasher.hash("nope") is None


def test_directory_hash_follows_content_not_mtime(ws):
    ws.write("d/x.txt", "1")
    ws.write("d/sub/y.txt", "22")
    with open_state(ws) as state:
        first = state.hasher.hash("d")
        manifest = state.hasher.manifest("d")
    assert first.is_dir and first.nfiles == 2 and first.size == 3
    assert [e.relpath for e in manifest] == ["sub/y.txt", "x.txt"]
    os.utime(ws.root / "d/x.txt", (1, 1))
    with open_state(ws) as state:
        assert state.hasher.hash("d") == first
    ws.write("d/x.txt", "3")
    with open_state(ws) as state:
        assert state.hasher.hash("d") != first


def test_shared_directory_is_walked_once_per_command(ws, monkeypatch):
    for i in range(5):
        ws.write(f"d/{i}.txt", str(i))
    walks = []
    original = hashing_mod.Hasher._walk

    def counting(self, *args):
        walks.append(args[0])
        return original(self, *args)

    monkeypatch.setattr(hashing_mod.Hasher, "_walk", counting)
    with open_state(ws) as state:
        for _ in range(50):
            state.hasher.hash("d")
    assert walks == ["d"]


def test_symlinked_file_and_dir_hash_by_content(ws):
    ws.write("real/a.txt", "data")
    (ws.root / "link.txt").symlink_to("real/a.txt")
    (ws.root / "linkdir").symlink_to("real")
    with open_state(ws) as state:
        assert state.hasher.hash("link.txt").hash == state.hasher.hash("real/a.txt").hash
        assert state.hasher.hash("linkdir").hash == state.hasher.hash("real").hash


def test_dangling_symlink_is_a_clear_error(ws):
    (ws.root / "broken").symlink_to("nowhere")
    with open_state(ws) as state, pytest.raises(PivotError, match="'broken' is a dangling symlink"):
        state.hasher.hash("broken")


def test_symlink_loop_is_a_clear_error(ws):
    (ws.root / "a").symlink_to("b")
    (ws.root / "b").symlink_to("a")
    with open_state(ws) as state, pytest.raises(PivotError, match="'a' is a symlink loop"):
        state.hasher.hash("a")


def test_directory_walk_never_loops(ws):
    # like DVC (followlinks=False), a link to a directory inside a walk is not descended
    ws.write("d/x.txt", "x")
    (ws.root / "d/up").symlink_to("..", target_is_directory=True)
    with open_state(ws) as state:
        state.hasher.hash("d")
        assert [entry.relpath for entry in state.hasher.manifest("d")] == ["x.txt"]


def test_dangling_link_inside_directory_is_named(ws):
    ws.write("d/x.txt", "x")
    (ws.root / "d/gone").symlink_to("missing")
    with open_state(ws) as state, pytest.raises(PivotError, match="'d/gone' is a dangling symlink"):
        state.hasher.hash("d")


def test_warm_hash_reads_no_file_content(ws, monkeypatch):
    for i in range(20):
        ws.write(f"d/{i}.txt", str(i))
    ws.write("f.txt", "f")
    age(ws.root)
    with open_state(ws) as state:
        state.hasher.hash("d")
        state.hasher.hash("f.txt")
        assert state.hasher.files_read == 21

    def no_reads(path):
        raise AssertionError(f"read {path}")

    monkeypatch.setattr(hashing_mod, "file_digest", no_reads)
    with open_state(ws) as state:
        assert state.hasher.hash("d").nfiles == 20
        assert state.hasher.hash("f.txt") is not None
        assert state.hasher.files_read == 0


def test_racy_file_is_read_again(ws):
    """A file hashed right after it was written may change within the
    mtime granularity without a stat change: it is not trusted yet."""
    ws.write("f.txt", "one")
    with open_state(ws) as state:
        state.hasher.hash("f.txt")
    st = os.stat(ws.root / "f.txt")
    ws.write("f.txt", "two")  # same size
    os.utime(ws.root / "f.txt", ns=(st.st_atime_ns, st.st_mtime_ns))
    with open_state(ws) as state:
        assert state.hasher.hash("f.txt").hash == xxhash.xxh3_128_hexdigest(b"two")
        assert state.hasher.files_read == 1


def test_corrupt_state_db_is_rebuilt_with_a_warning(ws, capsys):
    ws.write("f.txt", "f")
    with open_state(ws) as state:
        state.hasher.hash("f.txt")
    db = ws.root / ".pivot/state.db"
    for suffix in ("-wal", "-shm"):
        if os.path.exists(f"{db}{suffix}"):
            os.unlink(f"{db}{suffix}")
    db.write_bytes(b"this is not a database" * 100)
    with open_state(ws) as state:
        assert state.hasher.hash("f.txt").hash == xxhash.xxh3_128_hexdigest(b"f")
    assert "state.db" in capsys.readouterr().err
    age(ws.root)
    with open_state(ws) as state:  # the rebuilt database works again
        state.hasher.hash("f.txt")
    with open_state(ws) as state:
        state.hasher.hash("f.txt")
        assert state.hasher.files_read == 0


def test_invalidate_forgets_path_and_parents(ws):
    ws.write("d/x.txt", "1")
    with open_state(ws) as state:
        before = state.hasher.hash("d")
        state.hasher.hash("d/x.txt")
        ws.write("d/x.txt", "2")
        assert state.hasher.hash("d") == before  # memoised
        state.hasher.invalidate("d/x.txt")
        assert state.hasher.hash("d") != before
