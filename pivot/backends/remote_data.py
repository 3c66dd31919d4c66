"""The coordinator's side of ``--executor-data remote``: stage inputs up to
the default remote, stage outputs down into the workspace.

Before a stage is sent to a worker, every file it reads -- its deps, its
params files, its ``persist`` outputs as they are now, and the project's
root ignore files (they shape directory hashes) -- is hashed with the
run's hasher, saved into ``.pivot/cache/`` and, where the remote lacks
it, uploaded (files before the manifests naming them).  The worker
(``dask_remote_task``) gets those entries and the remote's settings, no
path on this machine.

When the worker returns its outputs' hashes, the objects are downloaded
(verified, as ``pivot fetch`` does) and checked out into the workspace;
the runner then commits the stage exactly as after a local run.  Every
method runs on the coordinator's thread, the only one that touches the
State.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from pivot.backends.executor_config import ExecutorError
from pivot.errors import PivotError
from pivot.ir import Stage
from pivot.state.hashing import HashInfo
from pivot.state.locks import LockEntry

if TYPE_CHECKING:
    from pivot.remote.config import Remote
    from pivot.remote.storage import RemoteStorage
    from pivot.state import State

# hashed with the inputs: they decide what a directory's manifest holds
ROOT_IGNORE_FILES = (".dvcignore", ".pivotignore")


def open_default_remote(root: Path, state_dir: Path) -> "RemoteStorage":
    """The project's default remote, opened; a one-line ``ExecutorError``
    when there is none (or its backend is missing)."""
    from pivot.remote import config
    from pivot.remote.storage import RemoteStorage

    try:
        settings = config.load(state_dir)
        if settings.default is None:
            raise ExecutorError("--executor-data remote needs a default remote: add one with"
                                " `pivot remote add -d NAME URL` (see docs/remotes.md)")
        storage = RemoteStorage(settings.get(None), root)
    except ExecutorError:
        raise
    except PivotError as exc:
        raise ExecutorError(f"--executor-data remote: {exc}") from None
    if storage.read_only:
        raise ExecutorError(f"--executor-data remote: remote '{storage.name}' ({storage.url}) is read-only;"
                            " workers must upload outputs to it")
    return storage


def remote_for_workers(storage: "RemoteStorage") -> "Remote":
    """The remote's settings as a worker needs them: a local remote's
    relative path made absolute (workers do not start in the project)."""
    from pivot.remote.fs import LOCAL

    remote = storage.remote
    if storage.backend is LOCAL:
        return replace(remote, url=storage.base)  # already resolved against the project root
    return remote


class RemoteData:
    """Inputs up, outputs down, for one run (see the module docstring)."""

    def __init__(self, state: "State", storage: "RemoteStorage") -> None:
        self.state = state
        self.storage = storage
        self._on_remote: set[str] = set()  # objects known to be there (immutable: never forgotten)

    @property
    def worker_remote(self) -> "Remote":
        return remote_for_workers(self.storage)

    # -- before dispatching ----------------------------------------------------

    def stage_inputs(self, stage: Stage) -> tuple[LockEntry, ...]:
        """Hash, cache and push what ``stage`` reads; the entries the worker
        materialises, parents before what lies inside them."""
        from pivot.containment import writable_path
        from pivot.remote.objects import push_objects

        state = self.state
        root = state.project.root
        paths: dict[str, None] = dict.fromkeys(dep.path for dep in stage.deps)
        paths.update(dict.fromkeys(p.path for p in stage.params))
        paths.update(dict.fromkeys(out.path for out in stage.outs
                                   if out.persist and os.path.lexists(root / out.path)))
        paths.update(dict.fromkeys(name for name in ROOT_IGNORE_FILES if (root / name).is_file()))
        entries: list[LockEntry] = []
        for path in sorted(paths):
            writable_path(root, path)  # never read (and ship) anything outside the project
            info = state.hasher.hash(path)
            if info is None:
                raise PivotError(f"'{path}' does not exist")
            state.cache.save(path, info)
            entries.append(LockEntry(path, info.hash, info.size, info.nfiles))
        push_objects(self.storage, state.cache, entries, self._on_remote)
        return tuple(entries)

    # -- after a worker returned -------------------------------------------------

    def place_outputs(self, stage: Stage, outs: Sequence[LockEntry]) -> None:
        """Download ``outs`` (verified) and check them out into the workspace;
        an output the worker did not return (its commands did not make it) is
        removed, as a local run would have before the commands ran, so the
        commit names it.  ``PivotError`` naming what could not be placed."""
        from pivot.backends import outputs
        from pivot.containment import writable_path
        from pivot.remote.index import RemoteIndex
        from pivot.state.store import Cache, LinkMode, valid_digest

        state = self.state
        declared = {out.path for out in stage.outs}
        for entry in outs:  # a worker's answer is data: only the stage's own outputs, by a real hash
            if entry.path not in declared or not valid_digest(entry.hash):
                raise PivotError(f"the worker returned '{entry.path}' ({entry.hash!r}), not an output of the stage")
        returned = {entry.path for entry in outs}
        for out in stage.outs:
            if out.path not in returned:
                outputs.remove(writable_path(state.project.root, out.path))
                state.hasher.invalidate(out.path)
        report = RemoteIndex(self.storage, state).fetch_outputs(outs)
        if not report.ok:
            raise PivotError(f"cannot download the outputs the worker uploaded: {(report.failed or report.missing)[0]}")
        uncached = {out.path for out in stage.outs if not out.cache}
        # a cache: false output is a plain copy, never a link into the cache
        copier = Cache(state.cache.root, state.cache.dir, state.hasher, LinkMode.COPY)
        for entry in outs:
            info = HashInfo(entry.hash, entry.size, entry.nfiles)
            (copier if entry.path in uncached else state.cache).checkout(entry.path, info)
            self._on_remote.add(entry.hash)
