"""The content cache in every link mode, and lock records on disk."""

from __future__ import annotations

import json
import os
import stat

import pytest

from pivot.errors import PivotError
from pivot.project import Project
from pivot.state import LinkMode, State
from pivot.state.locks import LockRecord, lock_filename
from pivot.state.record import commit_stage

from tests._statehelp import stage

MODES = [mode.value for mode in LinkMode]


def open_state(ws):
    return State.open(Project(root=ws.root, cwd=ws.root))


@pytest.fixture(params=MODES)
def mode_ws(ws, request, monkeypatch):
    monkeypatch.setenv("PIVOT_CACHE_TYPE", request.param)
    return ws


def objects(ws):
    root = ws.root / ".pivot/cache/files"
    return sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink())


def test_save_twice_is_idempotent_and_objects_are_read_only(mode_ws):
    ws = mode_ws
    ws.write("d/a.txt", "a")
    ws.write("d/b.txt", "b")
    ws.write("f.txt", "f")
    s = stage("s", outs=("d", "f.txt"))
    with open_state(ws) as state:
        commit_stage(s, state)
    first = objects(ws)
    assert len(first) == 4  # a, b, f and the manifest of d
    for obj in first:
        assert not obj.is_symlink()
        assert stat.S_IMODE(obj.stat().st_mode) == 0o444
    with open_state(ws) as state:
        commit_stage(s, state)
    assert objects(ws) == first


def test_checkout_restores_and_replaces_read_only_files(mode_ws):
    ws = mode_ws
    ws.write("d/a.txt", "a")
    ws.write("d/sub/b.txt", "b")
    ws.write("f.txt", "f")
    s = stage("s", outs=("d", "f.txt"))
    with open_state(ws) as state:
        record = commit_stage(s, state)
    # damage: a read-only file in place of f.txt, d partly deleted
    (ws.root / "f.txt").unlink()
    ws.write("f.txt", "junk")
    os.chmod(ws.root / "f.txt", 0o444)
    (ws.root / "d/sub/b.txt").unlink()
    os.chmod(ws.root / "d/a.txt", 0o444)
    from pivot.state.hashing import HashInfo

    with open_state(ws) as state:
        for entry in record.outs:
            state.cache.checkout(entry.path, HashInfo(entry.hash, entry.size, entry.nfiles))
    assert ws.read("f.txt") == "f"
    assert ws.read("d/sub/b.txt") == "b" and ws.read("d/a.txt") == "a"
    # a second save over checked-out (possibly linked) files never loops
    with open_state(ws) as state:
        commit_stage(s, state)
    for obj in objects(ws):
        assert not obj.is_symlink()
        assert obj.read_bytes() in (b"a", b"b", b"f") or obj.read_bytes().startswith(b"[")


def test_symlinked_output_is_copied_into_cache_not_linked(ws):
    ws.write("real.txt", "content")
    (ws.root / "out.txt").symlink_to(ws.root / "real.txt")
    s = stage("s", outs=("out.txt",))
    with open_state(ws) as state:
        commit_stage(s, state)
        commit_stage(s, state)
    (obj,) = objects(ws)
    assert not obj.is_symlink() and obj.read_text() == "content"


def test_unknown_cache_type_is_a_clear_error(ws, monkeypatch):
    monkeypatch.setenv("PIVOT_CACHE_TYPE", "teleport")
    with pytest.raises(PivotError, match="unknown cache type 'teleport'"):
        open_state(ws)


def test_cache_type_from_config(ws, monkeypatch):
    monkeypatch.delenv("PIVOT_CACHE_TYPE", raising=False)
    ws.write(".pivot/config", "[cache]\ntype = symlink\n")
    with open_state(ws) as state:
        assert state.cache.mode is LinkMode.SYMLINK


def test_lock_filenames_are_safe_and_distinct():
    addresses = ["train", "sub/dvc.yaml:build@0.5", "a b", "ünï", "a.b", "a%2Eb", "x" * 400, "x" * 401]
    names = [lock_filename(a) for a in addresses]
    assert len(set(names)) == len(names)
    for name in names:
        assert "/" not in name and len(name.encode()) < 255 and not name.startswith(".")
    assert lock_filename("sub/dvc.yaml:build@0.5") == "sub%2Fdvc%2Eyaml%3Abuild%400%2E5.json"


def test_lock_record_round_trip_and_format(ws):
    ws.write("in.txt", "i")
    ws.write("o.txt", "o")
    ws.write("params.yaml", "a:\n  b: [1, 2]\n")
    s = stage("sub/dvc.yaml:x@1", deps=("in.txt",), outs=("o.txt",), params=(("params.yaml", ("a.b",)),))
    with open_state(ws) as state:
        record = commit_stage(s, state)
        assert state.locks.read(s.address) == record
        path = state.locks.path_for(s.address)
    data = json.loads(path.read_text())
    assert data["cmd"] == ["true"] and data["params"] == {"params.yaml": {"a.b": [1, 2]}}
    assert data["deps"][0]["path"] == "in.txt" and data["outs"][0]["path"] == "o.txt"
    assert path.read_text().startswith('{\n  "address"')
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp")]


@pytest.mark.parametrize("garbage", ['{"address": "s"', "[]", '{"address": "s", "cmd": 3}', '{"address": "other", "cmd": []}'])
def test_corrupt_lock_record_warns_and_counts_as_none(ws, capsys, garbage):
    ws.write("o", "o")
    s = stage("s", outs=("o",))
    with open_state(ws) as state:
        commit_stage(s, state)
        state.locks.path_for("s").write_text(garbage)
        assert state.locks.read("s") is None
    err = capsys.readouterr().err
    assert "WARNING" in err and ".pivot/locks/s.json" in err
    from pivot.optimizer import ReasonKind, check_stage

    with open_state(ws) as state:
        assert check_stage(s, state).reasons[0].kind is ReasonKind.NO_RECORD


def test_lock_record_keeps_adopted_from():
    record = LockRecord(address="a", cmd=("x",), adopted_from="dvc.lock")
    assert LockRecord.from_json(json.loads(json.dumps(record.to_json()))) == record


def test_objects_are_found_by_listing_their_directory_once_it_is_asked_twice(ws):
    """At 20,000 objects a directory of objects is listed once instead of
    each object stat'ed: what the listing says must equal what stat says,
    including for objects removed before or after it."""
    from pivot.state.hashing import HashInfo

    for i in range(600):  # about two objects per directory
        ws.write(f"f/{i}.txt", f"{i}\n")
    with open_state(ws) as state:
        infos = [state.hasher.hash(f"f/{i}.txt") for i in range(600)]
        for i, info in enumerate(infos):
            state.cache.save(f"f/{i}.txt", info)
    gone_before = infos[0]
    os.unlink(ws.root / ".pivot/cache/files" / gone_before.hash[:2] / gone_before.hash[2:])
    with open_state(ws) as state:
        assert not state.cache.contains(gone_before)
        assert all(state.cache.contains(info) for info in infos[1:])
        assert state.cache._listed, "some directory was listed"
        absent = HashInfo(infos[1].hash[:2] + "0" * (len(infos[1].hash) - 2), 1)
        assert not state.cache.contains(absent)  # a listed directory without it: looked for, not there
        # an object another command adds after the listing is still found
        ws.write("late.txt", "late\n")
        late = state.hasher.hash("late.txt")
        with open_state(ws) as other:
            other.cache.save("late.txt", late)
        assert state.cache.contains(late)
