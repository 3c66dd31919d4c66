"""Everything pivot remembers between commands, bundled per command.

``State.open(project)`` gives one object holding the stat cache, the hasher,
the params reader, the lock records and the content cache.  Use it as a
context manager: new stat rows are committed in one SQLite transaction when
it closes.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from pivot.containment import state_dir_escape
from pivot.errors import StateError
from pivot.project import Project
from pivot.state.hashing import Hasher, HashInfo, ManifestEntry
from pivot.state.locks import LockEntry, LockRecord, LockStore
from pivot.state.params import ParamsReader
from pivot.state.runcache import RunCache
from pivot.state.statdb import StatDB
from pivot.state.store import Cache, LinkMode
from pivot.state.settled import SettledMemo
from pivot.state.verdicts import VerdictMemo

if TYPE_CHECKING:
    from pivot.ir import Stage
    from pivot.state.dvclock import Adopter

__all__ = [
    "Cache",
    "HashInfo",
    "Hasher",
    "LinkMode",
    "LockEntry",
    "LockRecord",
    "LockStore",
    "ManifestEntry",
    "ParamsReader",
    "State",
]


def _writable_state_dir(project: Project) -> bool:
    """Make ``.pivot/``; False when it cannot be made or written (a
    read-only project): commands that only read then still answer, and
    commands that write fail at their lock with an error naming it."""
    try:
        state_dir = project.ensure_state_dir()
    except OSError:
        return False
    return os.access(state_dir, os.W_OK | os.X_OK)


class State:
    """The stores of one command.

    ``readonly`` never writes anything (it is also chosen when ``.pivot/``
    cannot be written).  ``inspect`` (``status``, ``plan``,
    ``why``) writes no record, cache object or run-cache entry and never
    creates ``.pivot/``; only the stat cache and the params memo, which
    are caches of the disk, are kept up to date where ``.pivot/`` exists
    and can be written."""

    def __init__(self, project: Project, *, readonly: bool = False, inspect: bool = False) -> None:
        root = project.root
        state_dir = project.state_dir
        escape = state_dir_escape(root)
        if escape is not None:
            if not (readonly or inspect):
                raise StateError(f"refusing to write pivot's state: {escape}")
            readonly, inspect = True, True  # read nothing through it either: no memos
        memos = not readonly
        if inspect:
            readonly = True
            memos = escape is None and state_dir.is_dir() and os.access(state_dir, os.W_OK | os.X_OK)
        elif not readonly:
            # a read-only project: commands that only read still answer, writers fail at their lock
            readonly = not _writable_state_dir(project)
            memos = not readonly
        self.project = project
        self.readonly = readonly
        self.statdb = StatDB(state_dir / "state.db", readonly=not memos)
        self.hasher = Hasher(root, self.statdb)
        self.params = ParamsReader(root, state_dir if memos else None)
        self.locks = LockStore(state_dir / "locks", root, memo=self.statdb)
        self.cache = Cache(root, state_dir / "cache", self.hasher, LinkMode.configured(state_dir))
        self.runcache = RunCache(state_dir / "runcache")
        self.verdicts = VerdictMemo(self)
        self.settled = SettledMemo(self)
        self._adopter: Adopter | None = None
        # the remote plans may restore from (pivot.remote.index.RemoteIndex), when a command asks
        self.remote = None

    @classmethod
    def open(cls, project: Project, *, readonly: bool = False, inspect: bool = False) -> "State":
        return cls(project, readonly=readonly, inspect=inspect)

    def __enter__(self) -> "State":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.statdb.close()

    def adopt(self, stage: "Stage") -> LockRecord | None:
        """The stage's ``dvc.lock`` entry as a record: adopted (``adopted_from``
        set, nothing written: see ``record.persist_adoptions``) when the
        workspace still matches it, else a ``DvcLockRecord`` to compare
        with, or None."""
        if not (stage.in_dvc_yaml or stage.is_tracked_data):
            return None  # a Pivotfile's stage: DVC never recorded it (and dvclock stays unimported)
        if self._adopter is None:
            from pivot.state.dvclock import Adopter

            self._adopter = Adopter(self)
        return self._adopter.adopt(stage)

    def outs_not_in_dvc_cache(self, stage: "Stage") -> list[str]:
        """Outs of an adopted stage that DVC's own cache lacks (``dvc status``
        calls them "not in cache"; pivot takes them into its cache)."""
        if self._adopter is None:
            return []
        return self._adopter.outs_not_in_dvc_cache(stage)
