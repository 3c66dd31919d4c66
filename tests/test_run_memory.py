"""A long run keeps memory flat: the hash of a stage's output is kept only
while a stage still to settle in the run may read it (pivot.backends.runner),
and the lock store does not grow a listing by one name per new record."""

from __future__ import annotations

from pivot.backends.runner import _HashesInUse
from pivot.graph import build_pipeline
from pivot.project import Project
from pivot.state import State
from pivot.state.locks import LockRecord

from tests._statehelp import stage


def _memoised(hasher, path: str) -> bool:
    return path in hasher._hashes


def test_an_output_hash_is_forgotten_once_its_last_reader_settled(ws) -> None:
    # a -> b -> d, a -> c -> d; e alone
    stages = [
        stage("a", outs=("a.txt",)),
        stage("b", deps=("a.txt",), outs=("b.txt",)),
        stage("c", deps=("a.txt",), outs=("c.txt",)),
        stage("d", deps=("b.txt", "c.txt"), outs=("d.txt",)),
        stage("e", outs=("e.txt",)),
    ]
    pipeline = build_pipeline(stages)
    for name in "abcde":
        ws.write(f"{name}.txt", f"{name}\n")
    with State.open(Project(root=ws.root, cwd=ws.root)) as state:
        hasher = state.hasher
        for name in "abcde":
            hasher.hash(f"{name}.txt")
        in_use = _HashesInUse(["a", "b", "c", "d", "e"], pipeline, hasher)
        in_use.settled("e")  # nobody reads e.txt
        assert not _memoised(hasher, "e.txt")
        in_use.settled("a")
        in_use.settled("b")
        assert _memoised(hasher, "a.txt"), "c still reads a.txt"
        in_use.settled("c")
        assert not _memoised(hasher, "a.txt")
        assert _memoised(hasher, "b.txt") and _memoised(hasher, "c.txt"), "d still reads them"
        in_use.settled("d")
        assert not any(_memoised(hasher, f"{name}.txt") for name in "abcd")


def test_stages_outside_the_run_are_left_alone(ws) -> None:
    pipeline = build_pipeline([stage("a", outs=("a.txt",)), stage("b", deps=("a.txt",), outs=("b.txt",))])
    ws.write("a.txt", "a\n")
    with State.open(Project(root=ws.root, cwd=ws.root)) as state:
        state.hasher.hash("a.txt")
        in_use = _HashesInUse(["b"], pipeline, state.hasher)  # a is up to date: not part of the run
        in_use.settled("b")
        assert _memoised(state.hasher, "a.txt")


def test_new_records_are_found_without_a_growing_listing(ws) -> None:
    with State.open(Project(root=ws.root, cwd=ws.root)) as state:
        locks = state.locks
        assert locks.read("one") is None  # lists the (empty) directory
        locks.write(LockRecord(address="one", cmd=["true"], deps=[], params={}, outs=[]))
        assert locks._names is None
        assert locks.read("one") is not None and locks.read("two") is None
