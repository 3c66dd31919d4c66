"""The verdict memo: "this stage was up to date" remembered by the
signatures of everything that verdict read.

Deciding that a stage is up to date means reading its lock record, hashing
each dep and out, reading its params files and finding its objects in the
cache.  At 20,000 stages that is most of a no-op ``pivot plan``.  When a
stage was found up to date (or frozen with nothing to do), the memo keeps,
per stage:

- a fingerprint of the stage's definition (commands, wdir, dep, params and
  out declarations, flags): an edited stage never matches;
- the signature (mode, inode, size, mtime, ctime) of its lock file, of each
  file it depends on or writes, and of each params file read;
- for a directory, its hash instead (a file's edit below it does not move
  the directory's signature: it is hashed again, through the stat cache);
- each cached out's object, which must still be in the cache.

The next command checks those with one ``stat`` each and a comparison; any
difference, or anything it cannot tell, means deciding as before.  Entries
are made only when every signature was settled before the command began
(:mod:`pivot.signature`'s racy rule): a change since then shows in the
signature.  Entries live in ``.pivot/state.db`` (table ``verdict``), loaded
with one query and written in the stat cache's transaction; like the stat
cache they are a cache of the disk: deleting them is always safe.
"""

from __future__ import annotations

import marshal
import os
import stat as stat_mod
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import xxhash

from pivot.errors import StateError
from pivot.signature import RACY_WINDOW_NS
from pivot.state.hashing import HashInfo
from pivot.state.locks import lock_filename

if TYPE_CHECKING:
    from pivot.ir import Pipeline, Stage
    from pivot.state import State
    from pivot.state.locks import LockRecord

FORMAT = 3

_UNKNOWN = object()  # a path not stat'ed yet in this plan


def fingerprint(stage: "Stage") -> int:
    """What of the stage's definition a verdict depends on, as one number."""
    return xxhash.xxh3_64_intdigest(marshal.dumps((
        stage.address, stage.cmds, stage.wdir,
        tuple(dep.path for dep in stage.deps),
        tuple((p.path, p.keys) for p in stage.params),
        tuple((out.path, out.cache) for out in stage.outs),
        stage.frozen, stage.always_changed,
    )))


class VerdictMemo:
    """Recalls and remembers verdicts for one command (see the module doc)."""

    def __init__(self, state: "State") -> None:
        self._state = state
        self._statdb = state.statdb
        self._prefix = str(state.project.root).rstrip("/") + "/"
        self._locks_prefix = str(state.locks.dir) + "/"
        self.started_ns = time.time_ns()  # when the command began: what is settled is older
        self._key: int | None = None
        # while a plan is made nothing on disk changes: each path is stat'ed once
        # (an out of one stage is a dep of the next); outside, always afresh
        self._seen: dict[str, tuple | None] | None = None
        # the pipeline being planned: its identity and its very stage objects
        self._identity: str | None = None
        self._stages: "dict[str, Stage]" = {}
        # the entries recalled or made while planning, by address: what the
        # settled memo (pivot.state.settled) unites when every stage has one
        self.confirmed: dict[str, tuple] = {}

    @contextmanager
    def planning(self, pipeline: "Pipeline | None" = None) -> Iterator[None]:
        """Within the block, a path's signature is read once and reused, and
        the stages of ``pipeline`` are known by its identity (``Pipeline.identity``)."""
        self._seen = {}
        self.confirmed = {}
        if pipeline is not None and pipeline.identity is not None:
            self._identity = pipeline.identity
            self._stages = pipeline.by_address
        try:
            yield
        finally:
            self._seen = None
            self._identity = None
            self._stages = {}
            self.confirmed = {}

    def _code_key(self) -> int:
        """The code that decides, as one number (compared once per stage)."""
        if self._key is None:
            from pivot.signature import code_signature

            key = (FORMAT, code_signature("optimizer.py", "state/verdicts.py", "state/hashing.py",
                                          "state/params.py", "state/locks.py", "state/store.py"))
            self._key = xxhash.xxh3_64_intdigest(marshal.dumps(key))
        return self._key

    # -- recalling -----------------------------------------------------------

    def recall(self, stage: "Stage") -> str | None:
        """The remembered action's value ("up to date", "frozen") when every
        signature the verdict read is unchanged; None otherwise."""
        raw = self._statdb.verdict(stage.address)
        if raw is None:
            return None
        try:
            entry = marshal.loads(raw)
            (key, identity, stage_fp, action, lock_name, lock_sig,
             files, file_sigs, dirs, file_objects, dir_objects) = entry
        except (ValueError, EOFError, TypeError):
            return None  # damaged: decide as before
        if key != self._code_key():
            return None
        # the same pipeline as then: the same definition, no need to compare it
        same_pipeline = identity is not None and identity == self._identity \
            and self._stages.get(stage.address) is stage
        if not same_pipeline and stage_fp != fingerprint(stage):
            return None
        if stat_signature(self._locks_prefix + lock_name) != lock_sig:
            return None
        # the loops below run for every path of every stage of a no-op plan: kept plain
        prefix = self._prefix
        known = self._seen if self._seen is not None else {}
        for relpath, seen in zip(files, file_sigs):
            current = known.get(relpath, _UNKNOWN)
            if current is _UNKNOWN:
                current = known[relpath] = stat_signature(prefix + relpath)
            if current != seen:
                return None
        if not contents_unchanged(self._state, dirs, file_objects, dir_objects):
            return None
        if self._seen is not None:
            self.confirmed[stage.address] = entry
        return action

    # -- remembering ---------------------------------------------------------

    def remember(self, stage: "Stage", action: str, record: "LockRecord") -> None:
        """Keep the verdict just reached for ``stage`` (up to date, or frozen
        with nothing to do, compared with ``record``), if everything it read
        is settled."""
        if self._statdb.readonly:
            return
        lock_name = lock_filename(stage.address)
        lock_sig = stat_signature(self._locks_prefix + lock_name)
        if lock_sig is None or not is_settled(lock_sig, self.started_ns):
            return
        consulted: Iterable[str] = [out.path for out in stage.outs]
        if not stage.frozen:  # a frozen stage's verdict reads its outs only
            consulted = [*(dep.path for dep in stage.deps), *(p.path for p in stage.params), *consulted]
        files: list[str] = []
        file_sigs: list[tuple] = []
        dirs: list[tuple[str, str]] = []
        for relpath in dict.fromkeys(consulted):
            try:
                st = os.stat(self._prefix + relpath)
            except OSError:
                return  # absent or unreachable: nothing to remember it by
            if stat_mod.S_ISDIR(st.st_mode):
                entry = record.out(relpath) or record.dep(relpath)
                if entry is None:
                    return
                dirs.append((relpath, entry.hash))
                continue
            signature = signature_of(st)
            if not is_settled(signature, self.started_ns):
                return
            files.append(relpath)
            file_sigs.append(signature)
        cached = {out.path for out in stage.outs if out.cache}
        objects = [HashInfo(e.hash, e.size, e.nfiles) for e in record.outs if e.path in cached and e.hash]
        file_objects = tuple(info.hash for info in objects if not info.is_dir)
        dir_objects = tuple((info.hash, info.size, info.nfiles) for info in objects if info.is_dir)
        entry = (self._code_key(), self._identity, fingerprint(stage), action, lock_name, lock_sig,
                 tuple(files), tuple(file_sigs), tuple(dirs), file_objects, dir_objects)
        try:
            entry_bytes = marshal.dumps(entry)
        except ValueError:
            return
        self._statdb.remember_verdict(stage.address, entry_bytes)
        if self._seen is not None:
            self.confirmed[stage.address] = entry


def contents_unchanged(state: "State", dirs: Iterable[tuple[str, str]], file_objects: Iterable[str],
                       dir_objects: Iterable[tuple[str, int, int]]) -> bool:
    """Whether each directory still hashes as recorded (through the stat
    cache: an edit below a directory does not move its own signature) and
    each cached object is still in the cache."""
    hasher = state.hasher
    for relpath, digest in dirs:
        try:
            info = hasher.hash(relpath)
        except StateError:  # a dangling link, an unreadable file: decide as before (and say so)
            return False
        if info is None or info.hash != digest:
            return False
    cache = state.cache
    for digest in file_objects:
        if not cache.has_object(digest):
            return False
    for digest, size, nfiles in dir_objects:
        if not cache.contains(HashInfo(digest, size, nfiles)):
            return False
    return True


def stat_signature(path: str) -> tuple[int, int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return signature_of(st)


def signature_of(st: os.stat_result) -> tuple[int, int, int, int, int]:
    """What the memos compare a path by: mode, inode, size, mtime, ctime."""
    return (st.st_mode, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def is_settled(signature: tuple, started_ns: int) -> bool:
    before = started_ns - RACY_WINDOW_NS
    return signature[3] < before and signature[4] < before
