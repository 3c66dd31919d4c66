"""``push_objects``: a stage's entries onto a remote, files before the
manifests naming them, only what the remote lacks."""

from __future__ import annotations

from pivot.project import Project
from pivot.remote.config import Remote
from pivot.remote.objects import push_objects
from pivot.remote.storage import RemoteStorage
from pivot.state import State
from pivot.state.locks import LockEntry


def test_push_objects_sends_what_is_missing_once(ws, tmp_path) -> None:
    ws.write("data/a.txt", "a\n")
    ws.write("data/sub/b.txt", "b\n")
    ws.write("one.txt", "one\n")
    storage = RemoteStorage(Remote("store", str(tmp_path / "store")), ws.root)
    with State.open(Project(ws.root, ws.root)) as state:
        entries = []
        for path in ("data", "one.txt"):
            info = state.hasher.hash(path)
            state.cache.save(path, info)
            entries.append(LockEntry(path, info.hash, info.size, info.nfiles))
        known: set[str] = set()
        assert push_objects(storage, state.cache, entries, known) == 4  # two files of data, its manifest, one.txt
        assert push_objects(storage, state.cache, entries) == 0  # asked the remote: all there
        assert push_objects(storage, state.cache, entries, known) == 0  # not even asked
    names = {p.parent.name + p.name for p in (tmp_path / "store/files/xxh3").glob("*/*")}
    assert names == {e.hash for e in entries} | {state.cache.load_manifest(entries[0].hash)[0].hash,
                                                  state.cache.load_manifest(entries[0].hash)[1].hash}
