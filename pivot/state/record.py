"""Recording a stage as done: hash it, cache its outs, write its lock record.

The runner calls this after a stage succeeded, ``pivot commit`` calls it for
stages run by someone else (emitted scripts, by hand).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pivot.containment import writable_path
from pivot.errors import PivotError, StateError
from pivot.ir import Stage
from pivot.state.locks import LockEntry, LockRecord

if TYPE_CHECKING:
    from typing import Iterable

    from pivot.optimizer import Decision
    from pivot.state import State
    from pivot.state.runcache import RunEntry


def snapshot(stage: Stage, state: "State", *, adopted_from: str | None = None) -> LockRecord:
    """The stage's current deps, params and outs as a record (nothing written)."""
    hasher = state.hasher
    deps: list[LockEntry] = []
    for dep in stage.deps:
        info = hasher.hash(dep.path)
        if info is None:
            raise StateError(f"stage '{stage.address}': dependency '{dep.path}' does not exist")
        deps.append(LockEntry(dep.path, info.hash, info.size, info.nfiles))

    params: dict[str, dict[str, Any]] = {}
    for pdep in stage.params:
        values = state.params.values(pdep)
        if values is None:
            raise StateError(f"stage '{stage.address}': params file '{pdep.path}' does not exist")
        missing = [key for key in pdep.keys or () if key not in values]
        if missing:
            raise StateError(
                f"stage '{stage.address}': parameters {', '.join(repr(k) for k in missing)}"
                f" are missing from '{pdep.path}'"
            )
        params.setdefault(pdep.path, {}).update(values)

    outs: list[LockEntry] = []
    for out in stage.outs:
        info = hasher.hash_out(out.path)
        if info is None:
            raise StateError(f"stage '{stage.address}' did not produce output '{out.path}'")
        outs.append(LockEntry(out.path, info.hash, info.size, info.nfiles))

    return LockRecord(
        address=stage.address,
        cmd=stage.cmds,
        deps=tuple(deps),
        params=params,
        outs=tuple(outs),
        adopted_from=adopted_from,
    )


def commit_stage(stage: Stage, state: "State", *, adopted_from: str | None = None) -> LockRecord:
    """Hash deps, params and outs, save cached outs, write the lock record.

    Outs are hashed afresh (the stage may just have rewritten them).  The
    record is written last, so it only ever describes completed work.
    """
    if state.readonly:
        raise StateError("cannot record stages: the state was opened read-only")
    from pivot.optimizer import refuse_url_paths

    refuse_url_paths([stage])
    for out in stage.outs:
        # an out reached through a link to elsewhere would be cached (and relinked) from outside
        writable_path(state.project.root, out.path)
        state.hasher.invalidate(out.path)
    record = snapshot(stage, state, adopted_from=adopted_from)
    for out, entry in zip(stage.outs, record.outs):
        if out.cache:
            info = state.hasher.hash(out.path)
            assert info is not None  # hashed just above
            state.cache.save(out.path, info)
            # hardlink/symlink/reflink modes: the workspace file becomes the object
            state.cache.relink(out.path, info)
    state.locks.write(record)
    _remember_run(stage, state, record)
    return record


def restore_run(stage: Stage, state: "State", entry: "RunEntry") -> LockRecord:
    """Bring back the outputs of the earlier run ``entry`` instead of running
    ``stage``, then write its lock record.  The outputs are placed with the
    configured link mode and their hashes come from the entry (nothing is
    read back); deps and params are hashed as for a run."""
    from pivot.state.hashing import HashInfo

    if state.readonly:
        raise StateError("cannot restore stages: the state was opened read-only")
    if [e.path for e in entry.outs] != [out.path for out in stage.outs]:
        raise StateError(f"run-cache entry {entry.key[:8]} does not match the outputs of stage '{stage.address}'")
    for out_entry in entry.outs:
        info = HashInfo(out_entry.hash, out_entry.size, out_entry.nfiles)
        current = state.hasher.hash_out(out_entry.path)
        if current is None or current.hash != info.hash:
            state.cache.checkout(out_entry.path, info)
        manifest = (state.cache.load_manifest(info.hash) or ()) if info.is_dir else ()
        state.hasher.remember(out_entry.path, info, manifest)
    record = snapshot(stage, state)
    state.locks.write(record)
    return record


def persist_adoptions(decisions: "Iterable[Decision]", state: "State") -> list[str]:
    """Write the records (and cache the outs) of the stages the optimizer
    adopted from ``dvc.lock``: inspection only decides adoption, commands
    that write (``run``, ``emit``, ``checkout``) make it stick.  Returns
    the addresses recorded."""
    return [d.address for d in decisions
            if d.adopted and d.record is not None and persist_adoption(d.stage, state, d.record)]


def persist_adoption(stage: Stage, state: "State", adopted: LockRecord) -> bool:
    """Record ``stage`` as adopted unless it already has a record or its
    files changed since ``adopted`` was taken."""
    if adopted.adopted_from is None or state.locks.read(stage.address) is not None:
        return False
    try:
        if snapshot(stage, state, adopted_from=adopted.adopted_from) != adopted:
            return False
        commit_stage(stage, state, adopted_from=adopted.adopted_from)
    except PivotError:
        return False
    return True


def _remember_run(stage: Stage, state: "State", record: LockRecord) -> None:
    """Add the completed run to the run cache (after its record: an entry
    never names outputs that were not saved)."""
    from pivot.state import runcache

    if runcache.eligible(stage):
        state.runcache.remember(runcache.record_key(stage, record), stage.address, record.outs)
