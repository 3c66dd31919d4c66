"""The one home for putting a stage's recorded outputs back in the workspace.

Every back end that restores instead of running -- the runner, ``pivot
checkout``, the emitted shell script and the Ninja bridge -- calls
``restore_stage`` with where the outputs come from (``RestoreSource``, as
the optimizer decided it).  What it returns says path by path what
happened; a restore that cannot happen (an object missing, or found
corrupt and removed) is reported, never half-done silently, so a runner
can fall back to running the stage.

Every path is checked with ``containment.writable_path`` before anything
is removed or placed: a lock record, run-cache entry or ``dvc.lock`` from a
checkout can never make pivot write outside the project.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, assert_never

from pivot.containment import writable_path
from pivot.errors import PivotError
from pivot.ir import Stage

if TYPE_CHECKING:
    from pivot.state import State
    from pivot.state.locks import LockRecord
    from pivot.state.runcache import RunEntry


class RestoreSource(enum.Enum):
    """Where a decision to restore (not run) takes the outputs from."""

    CACHE = "cache"  # pivot's cache, as the stage's lock record names them
    RUN_CACHE = "run cache"  # an earlier run with the same key (its outputs, then a new record)
    DVC_CACHE = "DVC's cache"  # DVC's cache, as the stage's dvc.lock entry names them (then adopted)
    REMOTE = "remote"  # the default remote, as the stage's lock record names them (a pull)
    REMOTE_RUN_CACHE = "remote run cache"  # an earlier run with the same key, on the remote

    def describe(self) -> str:
        match self:
            case RestoreSource.CACHE:
                return "the cache"
            case RestoreSource.RUN_CACHE:
                return "the run cache"
            case RestoreSource.DVC_CACHE:
                return "DVC's cache"
            case RestoreSource.REMOTE:
                return "the remote"
            case RestoreSource.REMOTE_RUN_CACHE:
                return "the remote's run cache"
        assert_never(self)


@dataclass(frozen=True, slots=True)
class RestoreReport:
    """What restoring a stage's outputs did, path by path."""

    restored: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()  # already as recorded
    missing: tuple[str, ...] = ()  # recorded, but not in the cache (or its object was corrupt)
    unrecorded: tuple[str, ...] = ()  # not cached (cache: false) or no record
    problems: tuple[str, ...] = ()  # why an output could not be restored ("corrupted cache object ... removed")
    unsaved: tuple[str, ...] = ()  # workspace files a restore would lose (not in the cache): left alone

    @property
    def complete(self) -> bool:
        """Every recorded output is now as recorded."""
        return not (self.missing or self.problems or self.unsaved)


def restore_stage(
    stage: Stage,
    state: "State",
    source: RestoreSource,
    *,
    record: "LockRecord | None" = None,
    run_entry: "RunEntry | None" = None,
    keep_unsaved: bool = False,
) -> RestoreReport:
    """Restore ``stage``'s outputs from ``source``.

    ``CACHE`` restores what ``record`` (default: the stage's lock record)
    names; ``RUN_CACHE`` what ``run_entry`` names, then writes the stage's
    record; ``DVC_CACHE`` what ``record`` (a ``dvc.lock`` view) names, then
    records the stage as adopted.  ``REMOTE`` and ``REMOTE_RUN_CACHE`` first
    download (verified) what the local cache lacks from ``state.remote``,
    then restore as ``CACHE`` and ``RUN_CACHE`` do.  With ``keep_unsaved`` (``pivot checkout``
    without ``--force``) an output whose current content is not in the cache
    is left as it is and reported in ``unsaved``, as DVC refuses to discard
    unsaved work."""
    for out in stage.outs:
        writable_path(state.project.root, out.path)  # before anything is touched
    match source:
        case RestoreSource.CACHE:
            if record is None:
                record = state.locks.read(stage.address)
            return _from_cache(stage, state, record, keep_unsaved=keep_unsaved)
        case RestoreSource.RUN_CACHE:
            if run_entry is None:
                raise PivotError(f"stage '{stage.address}': no run-cache entry to restore from")
            return _from_run_cache(stage, state, run_entry)
        case RestoreSource.REMOTE:
            if record is None:
                record = state.locks.read(stage.address)
            if record is None:
                raise PivotError(f"stage '{stage.address}': no lock record to pull outputs for")
            cached = {o.path for o in stage.outs if o.cache}
            failed = _download(stage, state, [e for e in record.outs if e.path in cached])
            if failed is not None:
                return failed
            return _from_cache(stage, state, record, keep_unsaved=keep_unsaved)
        case RestoreSource.REMOTE_RUN_CACHE:
            if run_entry is None or state.remote is None:
                raise PivotError(f"stage '{stage.address}': no remote run-cache entry to restore from")
            failed = _download(stage, state, list(run_entry.outs))
            if failed is not None:
                return failed
            state.remote.fetch_run_entry(run_entry.key)  # now a local run-cache entry too
            return _from_run_cache(stage, state, run_entry)
        case RestoreSource.DVC_CACHE:
            if record is None:
                raise PivotError(f"stage '{stage.address}': no dvc.lock entry to restore from")
            if keep_unsaved:
                unsaved = [p for out in stage.outs if _differs(record, out.path, record.current_hash(out.path))
                           for p in unsaved_files(out.path, state)]
                if unsaved:
                    return RestoreReport(unsaved=tuple(unsaved))
            return _from_dvc_cache(stage, state, record)
    assert_never(source)


def _download(stage: Stage, state: "State", outs: list) -> RestoreReport | None:
    """Fetch, verified, what the local cache lacks for ``outs`` from the
    remote; a report of what went wrong, or None when all is local now."""
    if state.remote is None:
        raise PivotError(f"stage '{stage.address}': no remote to restore from")
    report = state.remote.fetch_outputs(outs)
    if report.ok:
        return None
    return RestoreReport(missing=tuple(e.path for e in outs),
                         problems=tuple(report.failed) or tuple(f"not on remote '{report.remote}': {m}"
                                                                 for m in report.missing))


def prefetch_from_remote(decisions: Iterable, state: "State") -> None:
    """Download at once, verified and in parallel, what the decisions that
    restore from the remote (``REMOTE``, ``REMOTE_RUN_CACHE``) need and the
    local cache lacks, so that a fresh clone's ``pivot run`` does not wait
    for one stage's downloads before asking for the next's.  Nothing is
    reported here: each stage's restore checks its own objects again and
    reports (and retries) what is still missing."""
    outs: list = []
    for decision in decisions:
        match decision.source:
            case RestoreSource.REMOTE:
                if decision.record is not None:
                    cached = {o.path for o in decision.stage.outs if o.cache}
                    outs.extend(e for e in decision.record.outs if e.path in cached)
            case RestoreSource.REMOTE_RUN_CACHE:
                if decision.run_entry is not None:
                    outs.extend(decision.run_entry.outs)
            case RestoreSource.CACHE | RestoreSource.RUN_CACHE | RestoreSource.DVC_CACHE | None:
                pass  # nothing to download
    if outs and state.remote is not None:
        try:
            state.remote.fetch_outputs(outs)
        except (PivotError, OSError):
            pass  # the stages' own restores meet it again, and say so


def checkout_stages(stages: Iterable[Stage], state: "State", *, keep_unsaved: bool = True,
                    ) -> list[tuple[str, RestoreReport]]:
    """``pivot checkout``: each stage's outputs as its record says -- pivot's
    lock record, else its ``dvc.lock`` entry (adopted as it is when the
    workspace matches, restored from DVC's cache when not)."""
    from pivot.state.dvclock import DvcLockRecord
    from pivot.state.record import persist_adoption

    reports = []
    for stage in stages:
        record = state.locks.read(stage.address)
        if record is None:
            record = state.adopt(stage)
            if isinstance(record, DvcLockRecord):
                reports.append((stage.address, restore_stage(stage, state, RestoreSource.DVC_CACHE, record=record,
                                                             keep_unsaved=keep_unsaved)))
                continue
            if record is not None:  # matches the workspace: adopt it, nothing to restore
                persist_adoption(stage, state, record)
                reports.append((stage.address, RestoreReport(unchanged=tuple(o.path for o in stage.outs))))
                continue
        reports.append((stage.address, restore_stage(stage, state, RestoreSource.CACHE, record=record,
                                                     keep_unsaved=keep_unsaved)))
    return reports


def _differs(record: "LockRecord", path: str, current) -> bool:
    entry = record.out(path)
    return entry is not None and (current is None or current.hash != entry.hash)


def unsaved_files(relpath: str, state: "State") -> list[str]:
    """Files at ``relpath`` (an output) whose content is not in the cache:
    what replacing it would lose for good."""
    current = state.hasher.hash_out(relpath)
    if current is None:
        return []
    if not current.is_dir:
        return [] if state.cache.contains(current) else [relpath]
    from pivot.state.hashing import HashInfo

    return [f"{relpath}/{entry.relpath}" for entry in state.hasher.manifest(relpath)
            if not state.cache.contains(HashInfo(entry.hash, entry.size))]


def _from_cache(stage: Stage, state: "State", record: "LockRecord | None", *, keep_unsaved: bool) -> RestoreReport:
    from pivot.state.hashing import HashInfo
    from pivot.state.store import CorruptObject

    restored: list[str] = []
    unchanged: list[str] = []
    missing: list[str] = []
    unrecorded: list[str] = []
    problems: list[str] = []
    unsaved: list[str] = []
    for out in stage.outs:
        entry = record.out(out.path) if record is not None else None
        if entry is None or not out.cache:
            unrecorded.append(out.path)
            continue
        current = state.hasher.hash_out(out.path)
        if current is not None and current.hash == entry.hash:
            unchanged.append(out.path)
            continue
        info = HashInfo(entry.hash, entry.size, entry.nfiles)
        if not state.cache.contains(info):
            missing.append(out.path)
            continue
        if keep_unsaved:
            lost = unsaved_files(out.path, state)
            if lost:
                unsaved.extend(lost)
                continue
        try:
            state.cache.checkout(out.path, info)
        except CorruptObject as exc:
            problems.append(str(exc))
            missing.append(out.path)
            continue
        restored.append(out.path)
    return RestoreReport(tuple(restored), tuple(unchanged), tuple(missing), tuple(unrecorded), tuple(problems),
                         tuple(unsaved))


def _from_run_cache(stage: Stage, state: "State", entry: "RunEntry") -> RestoreReport:
    """The outputs of an earlier run, then the stage's record (written only
    once every output is in place)."""
    from pivot.state.hashing import HashInfo
    from pivot.state.record import snapshot
    from pivot.state.store import CorruptObject

    if [e.path for e in entry.outs] != [out.path for out in stage.outs]:
        raise PivotError(f"run-cache entry {entry.key[:8]} does not match the outputs of stage '{stage.address}'")
    restored: list[str] = []
    unchanged: list[str] = []
    for out_entry in entry.outs:
        info = HashInfo(out_entry.hash, out_entry.size, out_entry.nfiles)
        current = state.hasher.hash_out(out_entry.path)
        if current is not None and current.hash == info.hash:
            unchanged.append(out_entry.path)
        elif not state.cache.contains(info):
            return RestoreReport(tuple(restored), tuple(unchanged), missing=(out_entry.path,))
        else:
            try:
                state.cache.checkout(out_entry.path, info)
            except CorruptObject as exc:
                return RestoreReport(tuple(restored), tuple(unchanged), missing=(out_entry.path,),
                                     problems=(str(exc),))
            restored.append(out_entry.path)
        manifest = (state.cache.load_manifest(info.hash) or ()) if info.is_dir else ()
        state.hasher.remember(out_entry.path, info, manifest)
    state.locks.write(snapshot(stage, state))
    return RestoreReport(tuple(restored), tuple(unchanged))


def _from_dvc_cache(stage: Stage, state: "State", record: "LockRecord") -> RestoreReport:
    """The outputs DVC's cache holds as ``dvc.lock`` recorded them, then the
    stage recorded as adopted."""
    from pivot.state import dvclock

    if not isinstance(record, dvclock.DvcLockRecord):
        raise PivotError(f"stage '{stage.address}': its record is not a dvc.lock entry")
    before = {out.path: record.current_hash(out.path) for out in stage.outs}
    try:
        dvclock.restore_from_dvc_cache(stage, state, record)
    except PivotError as exc:  # not in DVC's cache, or its content is not what dvc.lock says
        return RestoreReport(missing=tuple(before), problems=(str(exc),))
    restored = tuple(path for path, info in before.items()
                     if (entry := record.out(path)) is not None and (info is None or info.hash != entry.hash))
    return RestoreReport(restored=restored, unchanged=tuple(p for p in before if p not in restored))
