"""Deciding what is stale, and why: one decision function for every command.

``check_stage`` compares one stage with its lock record and returns a
``Decision`` holding typed ``Reason``s.  The fast path (``explain=False``)
stops at the first reason that forces a run; the explain path collects all
of them.  ``make_plan`` applies it to the selected stages in run order and
propagates "upstream stage X will rerun".  ``status``, ``plan``, ``why``,
``run`` and ``emit`` all go through here, so they cannot disagree.

The rules are DVC's: a stage runs when it has no record, its command
changed, a dep or an out is modified, deleted or new, a tracked param is
modified, deleted or new, an out is missing from the cache, or it is
``always_changed`` / a callback stage (no deps, no outs).  Removing a dep
or a param from the definition does not make a stage stale.  Staleness is
equality of content hashes, never "newer than".
"""

from __future__ import annotations

import enum
import gc
import posixpath
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Mapping, Sequence, assert_never

from pivot.ir import Pipeline, Stage
# Importing pivot.state.restore loads the pivot.state package (hashing,
# runcache among it): naming them here costs nothing, while an import
# statement inside a function runs once per stage (20,000 times a plan).
from pivot.state import runcache
from pivot.state.hashing import HashInfo
from pivot.state.restore import RestoreSource

if TYPE_CHECKING:
    from pivot.state import State
    from pivot.state.locks import LockRecord
    from pivot.state.runcache import RunEntry

# The hash of a dep holding a path an earlier step restores: known only
# after the restore, equal to no recorded hash.
UNKNOWN_HASH = "(known after restore)"


class ReasonKind(enum.Enum):
    NO_RECORD = "no record"
    CMD_CHANGED = "command changed"
    DEP_MODIFIED = "dep modified"
    DEP_DELETED = "dep deleted"
    DEP_NEW = "dep new"
    PARAM_MODIFIED = "param modified"
    PARAM_DELETED = "param deleted"
    PARAM_NEW = "param new"
    OUT_MISSING = "out missing"
    OUT_MODIFIED = "out modified"
    OUT_NOT_IN_CACHE = "out not in cache"
    ALWAYS_CHANGED = "always changed"
    UPSTREAM = "upstream"
    FORCED = "forced"

    __hash__ = object.__hash__  # as Action's

    @property
    def is_out_damage(self) -> bool:
        """Reasons a checkout from the cache can repair."""
        return self in (ReasonKind.OUT_MISSING, ReasonKind.OUT_MODIFIED)


@dataclass(frozen=True)
class Reason:
    """Why a stage is stale.  ``path`` names the dep, out or params file,
    ``key`` the param; ``old``/``new`` are hashes, values or commands."""

    kind: ReasonKind
    path: str | None = None
    key: str | None = None
    old: Any = None
    new: Any = None
    upstream: str | None = None

    def describe(self) -> str:
        """One line for people, e.g. ``param 'lr' in 'params.yaml' modified``."""
        template = _WHOLE_FILE_TEMPLATES.get(self.kind) if self.key is None else None
        # ``.value`` only when needed: an Enum's value is a Python property
        template = template or _TEMPLATES.get(self.kind) or self.kind.value
        if "{" not in template:  # "never run (no lock record)", 20,000 times in a fresh plan
            return template
        return template.format(path=self.path, key=self.key, upstream=self.upstream)


_NEVER_RUN = (Reason(ReasonKind.NO_RECORD),)  # the reasons of a stage without a record, at a glance

_TEMPLATES = {
    ReasonKind.NO_RECORD: "never run (no lock record)",
    ReasonKind.UPSTREAM: "upstream stage '{upstream}' will rerun",
    ReasonKind.DEP_MODIFIED: "dep '{path}' modified",
    ReasonKind.DEP_DELETED: "dep '{path}' deleted",
    ReasonKind.DEP_NEW: "dep '{path}' new",
    ReasonKind.PARAM_MODIFIED: "param '{key}' in '{path}' modified",
    ReasonKind.PARAM_DELETED: "param '{key}' in '{path}' deleted",
    ReasonKind.PARAM_NEW: "param '{key}' in '{path}' new",
    ReasonKind.OUT_MISSING: "out '{path}' missing",
    ReasonKind.OUT_MODIFIED: "out '{path}' modified",
    ReasonKind.OUT_NOT_IN_CACHE: "out '{path}' not in cache",
}
# a params file deleted or new as a whole (no key)
_WHOLE_FILE_TEMPLATES = {
    ReasonKind.PARAM_DELETED: "params file '{path}' deleted",
    ReasonKind.PARAM_NEW: "params file '{path}' new",
}


class Action(enum.Enum):
    """What a back end does with a stage.  Every back end matches on every
    member (no default), so a new one fails loudly until each knows it."""

    # members are singletons: hash them by identity, in C (Enum's own
    # __hash__ is Python code, run for each stage of each plan in sets and counts)
    __hash__ = object.__hash__

    RUN = "run"
    CHECKOUT = "checkout"  # outs damaged, everything else matches, a cache has them (``Decision.source``)
    RESTORE_RUN = "restore from run cache"  # stale, but an earlier run with this key is cached
    RECORD_FROZEN = "record frozen"  # frozen, outs changed: verify them and re-record, never run
    UP_TO_DATE = "up to date"
    FROZEN = "frozen"


_ACTION_BY_VALUE = {action.value: action for action in Action}

# Actions that change the workspace (or its records).
WORK_ACTIONS = frozenset({Action.RUN, Action.CHECKOUT, Action.RESTORE_RUN, Action.RECORD_FROZEN})


@dataclass(frozen=True)
class Decision:
    """What to do with one stage and why."""

    stage: Stage
    action: Action
    reasons: tuple[Reason, ...] = ()
    adopted: bool = False  # up to date by adopting its dvc.lock entry
    # the lock record it was compared with; None for a verdict recalled from
    # the memo (pivot.state.verdicts: up to date or frozen, nothing to restore)
    record: "LockRecord | None" = None
    run_entry: "RunEntry | None" = None  # RESTORE_RUN: the earlier run whose outputs come back
    source: RestoreSource | None = None  # CHECKOUT and RESTORE_RUN: where the outputs come from

    def __post_init__(self) -> None:
        restores = self.action in (Action.CHECKOUT, Action.RESTORE_RUN)
        if restores != (self.source is not None):
            raise ValueError(f"{self.action.name} decision for '{self.stage.address}' with source {self.source}")

    @property
    def address(self) -> str:
        return self.stage.address

    @property
    def will_run(self) -> bool:
        return self.action is Action.RUN

    @property
    def own_reasons(self) -> tuple[Reason, ...]:
        """Reasons about the stage itself (not upstream or forced)."""
        return _own(self.reasons)


@dataclass(frozen=True)
class Plan:
    """Decisions for the selected stages, in run order."""

    decisions: tuple[Decision, ...]

    def with_action(self, *actions: "Action") -> tuple[Decision, ...]:
        """The decisions whose action is one of ``actions``, in run order."""
        return tuple(d for d in self.decisions if d.action in actions)

    @property
    def adopted(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if d.adopted)

    @property
    def has_work(self) -> bool:
        return any(d.action in WORK_ACTIONS for d in self.decisions)

    def counts(self) -> dict[Action, int]:
        counts = Counter(d.action for d in self.decisions)
        return {action: counts.get(action, 0) for action in Action}

    def by_reason(self) -> dict[ReasonKind, int]:
        """Stages to run or restore, counted by their first reason."""
        counts = Counter(d.reasons[0].kind for d in self.decisions if d.reasons and d.action in WORK_ACTIONS)
        return {kind: counts[kind] for kind in ReasonKind if counts.get(kind)}

    def decision(self, address: str) -> Decision | None:
        for decision in self.decisions:
            if decision.address == address:
                return decision
        return None


@dataclass(frozen=True, slots=True)
class Recalled:
    """A decision recalled with its whole pipeline (a :class:`SettledPlan`):
    up to date or frozen, nothing to do, and no ``Stage`` loaded for it.
    It has what reports read of a :class:`Decision`."""

    address: str
    action: Action
    adopted: ClassVar[bool] = False
    reasons: ClassVar[tuple[Reason, ...]] = ()
    own_reasons: ClassVar[tuple[Reason, ...]] = ()
    source: ClassVar[RestoreSource | None] = None
    run_entry: ClassVar[None] = None


class RecalledNeverRun(Recalled):
    """A stage of a pipeline nothing has run in, recalled with it: it runs,
    never run (no lock record)."""

    __slots__ = ()
    reasons = own_reasons = _NEVER_RUN  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class RecalledRun:
    """A stage to run, recalled with its whole pipeline and its reasons
    (a plan with work, only printed: :mod:`pivot.state.settled`)."""

    address: str
    action: Action
    reasons: tuple[Reason, ...]
    adopted: ClassVar[bool] = False
    source: ClassVar[RestoreSource | None] = None
    run_entry: ClassVar[None] = None

    @property
    def own_reasons(self) -> tuple[Reason, ...]:
        return _own(self.reasons)


def _own(reasons: tuple[Reason, ...]) -> tuple[Reason, ...]:
    return tuple(r for r in reasons if r.kind not in (ReasonKind.UPSTREAM, ReasonKind.FORCED))


@dataclass(frozen=True)
class SettledPlan(Plan):
    """The plan of every stage of a pipeline in which nothing has changed
    since each stage was found up to date or frozen, or each one never run
    (:mod:`pivot.state.settled`): its decisions are :class:`Recalled`
    records, made without loading the pipeline; only commands that print
    a plan (``plan``, ``status``, ``run -n``) receive it."""

    # frozen stages (other than tracked data), in pipeline order: `status` warns about each
    frozen_notices: tuple[str, ...] = ()
    # the stages to run, in pipeline order (only kept for explained plans): `status` lists them so
    stale_order: tuple[str, ...] = ()

    def in_pipeline_order(self) -> Plan:
        """The decisions of stages to run in pipeline order, as ``status``
        lists them (the others, which it does not list, after them)."""
        place = {address: index for index, address in enumerate(self.stale_order)}
        last = len(place)
        return Plan(tuple(sorted(self.decisions, key=lambda d: place.get(d.address, last))))


def recall_settled(state: "State", identity: str | None, *, printed_only: bool = False,
                   explained: bool = False) -> SettledPlan | None:
    """The plan of the whole pipeline ``identity`` (``pivot.frontends.cached_identity``)
    when it is settled: every stage up to date or frozen, nothing changed
    since; with ``printed_only`` (a plan that is only printed, not forced,
    run cache on) also one with stages to run.  ``explained``: every
    reason is listed (``status``, ``--explain``)."""
    from pivot.state.settled import NEVER_RUN, WITH_WORK, WORK_FREE

    settled = state.settled.recall(identity, printed_only=printed_only, explained=explained)
    if settled is None:
        return None
    decisions: tuple[Recalled | RecalledRun, ...]
    stale_order: tuple[str, ...] = ()
    if settled.kind == WORK_FREE:
        decisions = tuple([Recalled(address, _ACTION_BY_VALUE[action]) for address, action in settled.verdicts])
    elif settled.kind == NEVER_RUN:
        decisions = tuple([RecalledNeverRun(address, Action.RUN) for address in settled.verdicts])
    elif settled.kind == WITH_WORK:
        decisions = tuple([
            Recalled(verdict[0], _ACTION_BY_VALUE[verdict[1]]) if len(verdict) == 2
            else RecalledRun(verdict[0], _ACTION_BY_VALUE[verdict[1]], tuple([_unpacked_reason(r) for r in verdict[2]]))
            for verdict in settled.verdicts
        ])
        stale_order = tuple([v[0] for v in sorted([v for v in settled.verdicts if len(v) > 2], key=lambda v: v[3])])
    else:
        return None  # written by other code: the key would not have matched
    return SettledPlan(decisions, settled.frozen_notices, stale_order)  # type: ignore[arg-type]


class _Stop(Exception):
    """Fast path: a reason forcing a run was found."""


def check_stage(
    stage: Stage,
    state: "State",
    *,
    explain: bool = False,
    restored: Mapping[str, str] | None = None,
) -> Decision:
    """The stage's own status against its lock record.

    ``restored`` maps paths an upstream checkout will restore to the hash
    they will have; such deps are compared by that hash, not the disk.

    A stage without a pivot record is compared with its ``dvc.lock`` entry
    (adopted outright when it matches; else its md5s are compared with the
    workspace's, so the reasons are DVC's).  A frozen stage, as in DVC, is
    checked for its command and outs only, and is never run: changed outs
    are re-recorded (``RECORD_FROZEN``), and a missing one fails the run."""
    # a verdict is remembered with the stage's lock file: none without one
    if state.locks.may_hold(stage.address) and (
            not restored or not any(_touched_by(dep.path, restored) for dep in stage.deps)):
        remembered = state.verdicts.recall(stage)
        if remembered is not None:  # nothing it read has changed since: the same verdict
            return Decision(stage, _ACTION_BY_VALUE[remembered])
    reasons: list[Reason] = []
    frozen = stage.frozen

    def add(reason: Reason) -> None:
        reasons.append(reason)
        if not explain and not frozen and not reason.kind.is_out_damage:
            raise _Stop

    record = state.locks.read(stage.address)
    adopted = False
    hash_of = state.hasher.hash
    dvc_view = False
    if record is None:
        record = state.adopt(stage)
        if record is not None:
            from pivot.state.dvclock import DvcLockRecord

            dvc_view = isinstance(record, DvcLockRecord)
            if dvc_view:
                hash_of = _md5_view(record, restored)  # md5s, DVC's way
                restored = None
            else:
                adopted = True
    if record is None and not (explain or frozen or stage.always_changed or stage.is_callback):
        return Decision(stage, Action.RUN, _NEVER_RUN)  # all a plan without details says of it
    try:
        if stage.always_changed or stage.is_callback:
            add(Reason(ReasonKind.ALWAYS_CHANGED))
        if record is None:
            if not frozen:
                add(Reason(ReasonKind.NO_RECORD))
            _no_record_reasons(stage, state, add, deps=not frozen)
        else:
            if tuple(record.cmd) != stage.cmds:
                add(Reason(ReasonKind.CMD_CHANGED, old="\n".join(record.cmd), new="\n".join(stage.cmds)))
            if not frozen:
                _dep_reasons(stage, state, record, add, restored or {}, hash_of)
                _param_reasons(stage, state, record, add)
            # an adopted record's outs go into the cache when the adoption is written
            _out_reasons(stage, state, record, add, hash_of, check_cache=not adopted)
    except _Stop:
        pass

    if adopted and explain and not reasons:
        # DVC's status also calls an out whose object DVC's cache lacks "not in
        # cache"; adoption takes the matching file into pivot's cache instead
        return Decision(stage, Action.FROZEN if frozen else Action.UP_TO_DATE,
                        tuple(Reason(ReasonKind.OUT_NOT_IN_CACHE, path=p) for p in state.outs_not_in_dvc_cache(stage)),
                        adopted=adopted, record=record)
    if frozen:
        # DVC's repro ignores "always changed" for frozen stages (its status shows it)
        work = any(r.kind is not ReasonKind.ALWAYS_CHANGED for r in reasons)
        if (stage.is_tracked_data and dvc_view and reasons
                and all(r.kind is ReasonKind.OUT_MISSING for r in reasons)
                and _restorable(stage, state, record, reasons, dvc_view)):
            # tracked data deleted from the workspace: back from DVC's cache, as `dvc checkout` does
            return Decision(stage, Action.CHECKOUT, tuple(reasons), record=record, source=RestoreSource.DVC_CACHE)
        action = Action.RECORD_FROZEN if work else Action.FROZEN
        if not reasons and not adopted and not dvc_view and record is not None:
            state.verdicts.remember(stage, action.value, record)
        return Decision(stage, action, tuple(reasons), adopted=adopted, record=record)
    if not reasons:
        if not adopted and not dvc_view and record is not None:
            state.verdicts.remember(stage, Action.UP_TO_DATE.value, record)
        return Decision(stage, Action.UP_TO_DATE, adopted=adopted, record=record)
    if all(r.kind.is_out_damage for r in reasons) and _restorable(stage, state, record, reasons, dvc_view):
        source = RestoreSource.DVC_CACHE if dvc_view else RestoreSource.CACHE
        return Decision(stage, Action.CHECKOUT, tuple(reasons), adopted=adopted, record=record, source=source)
    if _pullable(stage, state, record, reasons, dvc_view):
        return Decision(stage, Action.CHECKOUT, tuple(reasons), adopted=adopted, record=record,
                        source=RestoreSource.REMOTE)
    return Decision(stage, Action.RUN, tuple(reasons), adopted=adopted, record=record)


def _pullable(stage: Stage, state: "State", record: Any, reasons: list[Reason], dvc_view: bool) -> bool:
    """Whether the only trouble is outputs the local cache cannot give back
    and the remote (``state.remote``) holds every cached one as recorded:
    a pull instead of a run."""
    if state.remote is None or record is None or dvc_view:
        return False
    repairable = (ReasonKind.OUT_MISSING, ReasonKind.OUT_MODIFIED, ReasonKind.OUT_NOT_IN_CACHE)
    if not all(r.kind in repairable for r in reasons):
        return False
    cached = {out.path for out in stage.outs if out.cache}
    if any(r.path not in cached for r in reasons):
        return False  # an uncached out cannot be pulled
    return state.remote.can_restore([e for e in record.outs if e.path in cached])


def _md5_view(record: Any, restored: Mapping[str, str] | None):
    """How a ``dvc.lock`` entry sees the workspace: md5s of the disk, or of
    what an upstream restore from DVC's cache will put there.  A path some
    other restore changes is unknown (pivot's hash of it says nothing)."""
    if not restored:
        return record.current_hash
    md5s = getattr(restored, "md5s", {})

    def hash_of(path: str):
        if path in md5s:
            return HashInfo(md5s[path], 0)
        if _touched_by(path, restored):
            return HashInfo(UNKNOWN_HASH, 0)
        return record.current_hash(path)

    return hash_of


def _touched_by(path: str, restored: Mapping[str, str]) -> bool:
    """Whether a restore changes ``path``, something inside it, or a directory holding it."""
    if path in restored or any(a in restored for a in _ancestors(path)):
        return True
    if isinstance(restored, Restored):
        return path in restored.holders
    return any(p.startswith(path + "/") for p in restored)


def _no_record_reasons(stage: Stage, state: "State", add, *, deps: bool = True) -> None:
    """What DVC shows for a stage without lock entry: every dep, param file
    and out, as modified, new or deleted (only the outs of a frozen stage)."""
    for dep in stage.deps if deps else ():
        info = state.hasher.hash(dep.path)
        add(Reason(ReasonKind.DEP_NEW if info else ReasonKind.DEP_DELETED, path=dep.path,
                   new=info.hash if info else None))
    for pdep in dict.fromkeys(p.path for p in stage.params) if deps else ():
        exists = state.params.read(pdep) is not None
        add(Reason(ReasonKind.PARAM_NEW if exists else ReasonKind.PARAM_DELETED, path=pdep))
    for out in stage.outs:
        info = state.hasher.hash_out(out.path)
        add(Reason(ReasonKind.OUT_MODIFIED if info else ReasonKind.OUT_MISSING, path=out.path,
                   new=info.hash if info else None))


def _dep_reasons(stage: Stage, state: "State", record: "LockRecord", add, restored: Mapping[str, str],
                 hash_of) -> None:
    for dep in stage.deps:
        entry = record.dep(dep.path)
        assumed = assumed_hash(dep.path, restored, state) if restored else _NOT_RESTORED
        if assumed is not _NOT_RESTORED:
            if assumed is None:
                add(Reason(ReasonKind.DEP_DELETED, path=dep.path, old=entry.hash if entry else None))
            elif entry is None or entry.hash != assumed:
                add(Reason(ReasonKind.DEP_MODIFIED if entry else ReasonKind.DEP_NEW, path=dep.path,
                           old=entry.hash if entry else None, new=assumed))
            continue
        info = hash_of(dep.path)
        if info is None:
            add(Reason(ReasonKind.DEP_DELETED, path=dep.path, old=entry.hash if entry else None))
        elif entry is None:
            add(Reason(ReasonKind.DEP_NEW, path=dep.path, new=info.hash))
        elif entry.hash != info.hash:
            add(Reason(ReasonKind.DEP_MODIFIED, path=dep.path, old=entry.hash, new=info.hash))


_NOT_RESTORED = object()


class Restored(dict):
    """Output path -> the hash an earlier step (checkout, run-cache restore)
    gives it, plus every directory holding such a path."""

    def __init__(self) -> None:
        super().__init__()
        self.holders: set[str] = set()
        self.sizes: dict[str, int] = {}
        self.md5s: dict[str, str] = {}  # DVC's md5 of paths restored from DVC's cache

    def add(self, path: str, digest: str, size: int = 0, md5: str | None = None) -> None:
        self[path] = digest
        self.sizes[path] = size
        if md5 is not None:
            self.md5s[path] = md5
        parent = posixpath.dirname(path)
        while parent and parent not in self.holders:
            self.holders.add(parent)
            parent = posixpath.dirname(parent)
        self.holders.add(".")


def assumed_hash(path: str, restored: Mapping[str, str], state: "State") -> Any:
    """The hash ``path`` will have once earlier steps restored their outputs:
    ``_NOT_RESTORED`` when no restored path is involved (hash the disk), None
    when it will not exist, ``UNKNOWN_HASH`` for a directory holding a
    restored path.  A path inside a restored directory is looked up in the
    directory's manifest.  Cost: the depth of ``path``, not the number of
    restored paths."""
    if path in restored:
        return restored[path]
    parent = posixpath.dirname(path)
    while parent:
        if parent in restored:
            return _hash_inside(restored[parent], path[len(parent) + 1:], state)
        parent = posixpath.dirname(parent)
    holders = restored.holders if isinstance(restored, Restored) else {
        h for p in restored for h in (*_ancestors(p), ".")}
    if path not in holders:
        return _NOT_RESTORED
    return _predicted_dir_hash(path, restored, state)


def _predicted_dir_hash(path: str, restored: Mapping[str, str], state: "State") -> str:
    """The hash directory ``path`` will have once the restored outputs below
    it are in place: its manifest on disk with those outputs' entries swapped
    for the restored ones.  ``UNKNOWN_HASH`` when a restored directory's
    manifest is not in the cache."""
    from pivot.state.hashing import DIR_SUFFIX, ManifestEntry, manifest_digest

    entries = {e.relpath: e for e in state.hasher.manifest(path)}
    sizes = restored.sizes if isinstance(restored, Restored) else {}
    prefix = "" if path == "." else path + "/"
    for out_path, digest in restored.items():
        if not out_path.startswith(prefix):
            continue
        inner = out_path[len(prefix):]
        on_disk = entries.get(inner)
        for relpath in [r for r in entries if r == inner or r.startswith(inner + "/")]:
            del entries[relpath]
        if digest.endswith(DIR_SUFFIX):
            below = state.cache.load_manifest(digest)
            if below is None:
                return UNKNOWN_HASH
            for e in below:
                entries[f"{inner}/{e.relpath}"] = ManifestEntry(f"{inner}/{e.relpath}", e.hash, e.size, e.isexec)
        else:
            isexec = on_disk.isexec if on_disk is not None else False
            entries[inner] = ManifestEntry(inner, digest, sizes.get(out_path, 0), isexec)
    if not entries:
        return UNKNOWN_HASH
    return manifest_digest(tuple(entries[r] for r in sorted(entries)))


def _ancestors(path: str) -> list[str]:
    found = []
    while parent := posixpath.dirname(path):
        found.append(parent)
        path = parent
    return found


def _hash_inside(dir_hash: str, inner: str, state: "State") -> str | None:
    from pivot.state.hashing import DIR_SUFFIX, ManifestEntry, manifest_digest

    if not dir_hash.endswith(DIR_SUFFIX):
        return None  # a file where the path wants a directory
    entries = state.cache.load_manifest(dir_hash)
    if entries is None:
        return UNKNOWN_HASH
    prefix = inner + "/"
    for entry in entries:
        if entry.relpath == inner:
            return entry.hash
    below = tuple(
        ManifestEntry(e.relpath[len(prefix):], e.hash, e.size, e.isexec) for e in entries if e.relpath.startswith(prefix)
    )
    return manifest_digest(below) if below else None


def _param_reasons(stage: Stage, state: "State", record: "LockRecord", add) -> None:
    for pdep in stage.params:
        current = state.params.values(pdep)
        recorded = record.params.get(pdep.path)
        if current is None:
            add(Reason(ReasonKind.PARAM_DELETED, path=pdep.path))
            continue
        if recorded is None:
            add(Reason(ReasonKind.PARAM_NEW, path=pdep.path))
            continue
        # whole-file tracking compares every top-level key, old and new
        keys = pdep.keys if pdep.keys is not None else tuple(dict.fromkeys([*current, *recorded]))
        for key in keys:
            if key not in recorded:
                if key in current:
                    add(Reason(ReasonKind.PARAM_NEW, path=pdep.path, key=key, new=current[key]))
                else:
                    add(Reason(ReasonKind.PARAM_DELETED, path=pdep.path, key=key))
            elif key not in current:
                add(Reason(ReasonKind.PARAM_DELETED, path=pdep.path, key=key, old=recorded[key]))
            elif current[key] != recorded[key]:
                add(Reason(ReasonKind.PARAM_MODIFIED, path=pdep.path, key=key, old=recorded[key], new=current[key]))


def _out_reasons(stage: Stage, state: "State", record: "LockRecord", add, hash_of, *, check_cache: bool) -> None:
    """DVC's order: a cached out whose recorded object is in no cache is
    "not in cache", whatever the workspace holds; only then is the
    workspace compared ("deleted", "modified")."""
    in_cache = getattr(record, "in_dvc_cache", None)
    if in_cache is None:
        in_cache = lambda entry: state.cache.contains(HashInfo(entry.hash, entry.size, entry.nfiles))  # noqa: E731
    if hash_of == state.hasher.hash:
        hash_of = state.hasher.hash_out  # a dangling link at an out is a missing out
    for out in stage.outs:
        entry = record.out(out.path)
        if check_cache and out.cache and entry is not None and entry.hash and not in_cache(entry):
            info = hash_of(out.path)
            add(Reason(ReasonKind.OUT_NOT_IN_CACHE, path=out.path, old=entry.hash, new=info.hash if info else None))
            continue
        info = hash_of(out.path)
        if info is None:
            add(Reason(ReasonKind.OUT_MISSING, path=out.path, old=entry.hash if entry else None))
        elif entry is None or entry.hash != info.hash:
            add(Reason(ReasonKind.OUT_MODIFIED, path=out.path, old=entry.hash if entry else None, new=info.hash))


def _restorable(stage: Stage, state: "State", record: "LockRecord | None", reasons: list[Reason],
                dvc_view: bool = False) -> bool:
    """Whether every damaged out can be checked out as recorded (from DVC's
    cache for a ``dvc.lock`` entry: files only)."""
    if record is None:
        return False
    for reason in reasons:
        out = next((o for o in stage.outs if o.path == reason.path), None)
        entry = record.out(reason.path) if reason.path else None
        if out is None or entry is None or not out.cache:
            return False
        if dvc_view:
            if record.dvc_object(out.path) is None:  # type: ignore[attr-defined]
                return False
        elif not state.cache.contains(HashInfo(entry.hash, entry.size, entry.nfiles)):
            return False
    return True


def _restored_outs(decision: Decision, state: "State") -> list[tuple[str, str, int, str | None]]:
    """(path, pivot hash, size, md5 if from DVC's cache) of each out a
    CHECKOUT or RESTORE_RUN gives back."""
    match decision.source:
        case None:
            return []
        case RestoreSource.RUN_CACHE | RestoreSource.REMOTE_RUN_CACHE:
            assert decision.run_entry is not None
            return [(e.path, e.hash, e.size, None) for e in decision.run_entry.outs]
        case RestoreSource.CACHE | RestoreSource.REMOTE:
            assert decision.record is not None
            return [(e.path, e.hash, e.size, None) for e in decision.record.outs]
        case RestoreSource.DVC_CACHE:
            # the pivot hash of each object in DVC's cache (read once; stat-cached inside the project)
            record = decision.record
            found = []
            for entry in record.outs:  # type: ignore[union-attr]
                obj = record.dvc_object(entry.path)  # type: ignore[union-attr]
                info = state.hasher.hash_file_anywhere(obj) if obj is not None else None
                if info is not None:
                    found.append((entry.path, info.hash, info.size, entry.hash))
            return found
    assert_never(decision.source)


def make_plan(
    pipeline: Pipeline,
    stages: Sequence[Stage],
    state: "State",
    *,
    force: bool = False,
    explain: bool = False,
    assume_restored: bool = True,
    run_cache: bool = True,
    printed_only: bool = False,
) -> Plan:
    """Decisions for ``stages`` (already in run order), with upstream reruns
    propagated downstream and ``force`` turning every non-frozen stage into a run.

    With ``run_cache`` a stage that would run for reasons of its own but
    whose current key is in the run cache (outputs cached) is restored
    from there instead (RESTORE_RUN).  With ``assume_restored`` (what
    ``run`` will do) a stage downstream of a CHECKOUT or RESTORE_RUN sees
    the restored outs; ``status`` turns it off to report the workspace as
    it is, like DVC.  ``printed_only``: the plan is printed, not carried
    out (``plan``, ``run -n``): a plan of a pipeline nothing has run in is
    worth remembering whole (:mod:`pivot.state.settled`)."""
    refuse_url_paths(stages)
    started_ns = time.time_ns()
    if printed_only:  # the run-cache entries looked for, should the plan be united with its work
        state.runcache.looked_for = {}
    with _cyclic_gc_paused(), state.verdicts.planning(pipeline):
        plan = _plan(pipeline, stages, state, force=force, explain=explain,
                     assume_restored=assume_restored, run_cache=run_cache)
        if force or len(stages) != len(pipeline.stages):
            return plan  # only a plan of everything, as it stands, is worth uniting
        if not plan.has_work:
            state.settled.remember(pipeline, [(d.address, d.action.value) for d in plan.decisions])
        elif printed_only and run_cache and state.remote is None:
            if (not explain and all(d.reasons is _NEVER_RUN for d in plan.decisions)  # the fast path's verdicts
                    and not state.runcache.may_hold_entries()):
                state.settled.remember_never_run(pipeline, [d.address for d in plan.decisions], started_ns)
            else:
                _remember_with_work(pipeline, plan, state, explained=explain)
    return plan


def _remember_with_work(pipeline: Pipeline, plan: Plan, state: "State", *, explained: bool) -> None:
    """Offer the settled memo a plan of every stage with stages to run:
    only plain runs, each for reasons of its own (worked out in this plan)
    or because an upstream stage runs; nothing restored or adopted."""
    from pivot.state.settled import Worked

    decided: list[tuple] = []
    worked_out: dict[str, Worked] = {}
    # `status` lists stale stages in pipeline order, which a recall does not load
    position = {stage.address: index for index, stage in enumerate(pipeline.stages)} if explained else {}
    looked_for = state.runcache.looked_for or {}  # by consult_run_cache: none when the run cache was empty
    for decision in plan.decisions:
        if not _unitable(decision.action):
            return  # restores change what downstream stages compare with
        if decision.action is not Action.RUN:
            if decision.adopted:
                return
            decided.append((decision.address, decision.action.value))
            continue
        stage = decision.stage
        address = stage.address
        decided.append((address, decision.action.value, tuple([_packed_reason(r) for r in decision.reasons]),
                        position.get(address, 0)))
        if all(r.kind is ReasonKind.UPSTREAM for r in decision.reasons):
            continue  # its own verdict was up to date: the verdict memo's entry tells what it read
        key = looked_for.get(address)
        worked_out[address] = Worked(stage, decision.record, None if key is None else state.runcache.entry_file(key))
    state.settled.remember(pipeline, decided, worked_out, explained=explained)


def _unitable(action: Action) -> bool:
    """Whether a plan with work holding ``action`` may be united: plain runs
    and stages without work, not restores or re-recorded frozen stages."""
    match action:
        case Action.RUN | Action.UP_TO_DATE | Action.FROZEN:
            return True
        case Action.CHECKOUT | Action.RESTORE_RUN | Action.RECORD_FROZEN:
            return False
    assert_never(action)


def _packed_reason(reason: Reason) -> tuple:
    """A reason as plain data for the settled memo (``_unpacked_reason`` reads it)."""
    return (reason.kind.name, reason.path, reason.key, reason.old, reason.new, reason.upstream)


def _unpacked_reason(packed: tuple) -> Reason:
    name, path, key, old, new, upstream = packed
    return Reason(_REASON_KIND_BY_NAME[name], path, key, old, new, upstream)


# a dict, not ReasonKind[name] (a Python-level __getitem__): a recalled status reads 100,000 reasons
_REASON_KIND_BY_NAME = {kind.name: kind for kind in ReasonKind}


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Deciding allocates a few objects per stage and frees none of them
    until the plan is done, and makes no reference cycles: the collector's
    passes over a pipeline of 20,000 stages only cost time (about a fifth
    of a no-op plan)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _plan(pipeline: Pipeline, stages: Sequence[Stage], state: "State", *, force: bool, explain: bool,
          assume_restored: bool, run_cache: bool) -> Plan:
    decided: dict[str, Decision] = {}
    running: set[str] = set()  # addresses decided RUN
    restored = Restored()
    # planning writes nothing: whether the run cache holds entries is asked once
    local_run_cache = run_cache and state.runcache.may_hold_entries()
    for stage in stages:
        decision = check_stage(stage, state, explain=explain, restored=restored)
        rerun: Sequence[str] = ()
        if stage.frozen:
            if force and decision.action is Action.FROZEN:  # DVC: -f verifies and re-records
                decision = replace(decision, action=Action.RECORD_FROZEN,
                                   reasons=(Reason(ReasonKind.FORCED), *decision.reasons))
        else:
            if force:
                decision = replace(decision, action=Action.RUN, source=None,
                                   reasons=(Reason(ReasonKind.FORCED), *decision.reasons))
            upstream_of = pipeline.upstream.get(stage.address, ())
            if running and upstream_of and not running.isdisjoint(upstream_of):
                rerun = [u for u in upstream_of if u in running]
            if rerun and (decision.action is not Action.RUN or explain):
                upstream = tuple(Reason(ReasonKind.UPSTREAM, upstream=u) for u in rerun)
                decision = replace(decision, action=Action.RUN, source=None,
                                   reasons=(*decision.reasons, *upstream))
        # an upstream stage reruns: the inputs the run cache would be asked about are not known yet
        if run_cache and decision.action is Action.RUN and not rerun:
            decision = consult_run_cache(decision, state, restored, local=local_run_cache)
        if assume_restored and decision.source is not None:
            for path, digest, size, md5 in _restored_outs(decision, state):
                restored.add(path, digest, size, md5)
        decided[stage.address] = decision
        if decision.action is Action.RUN:
            running.add(stage.address)
    return Plan(tuple(decided[stage.address] for stage in stages))


def refuse_url_paths(stages: Sequence[Stage]) -> None:
    """A dep or out that is a URL (``https://…``, ``s3://…``) cannot be
    checked here (DVC compares its ETag over the network): refuse to decide
    anything about such a stage rather than run it and fail."""
    from pivot.errors import PipelineError
    from pivot.ir import is_url

    for stage in stages:
        # "://" is part of every URL: the plain substring test skips the regex for ordinary
        # paths (plain loops: this runs for every path of every stage of every plan)
        for items in (stage.deps, stage.outs):
            for item in items:
                if "://" in item.path:
                    break
            else:
                continue
            break
        else:
            continue
        for item, what in [*((d, "depends on") for d in stage.deps), *((o, "writes") for o in stage.outs)]:
            if is_url(item.path):
                where = f" ({stage.location})" if stage.location else ""
                raise PipelineError(
                    f"stage '{stage.address}'{where} {what} the URL '{item.path}': pivot cannot check "
                    "URL dependencies or outputs; select other stages, or see docs/dvcyaml.md#url-dependencies"
                )


def consult_run_cache(decision: Decision, state: "State", restored: Mapping[str, str] | None = None,
                      *, local: bool | None = None) -> Decision:
    """``decision`` (a RUN) turned into RESTORE_RUN when the stage's current
    key is in the run cache and every output it names is in the cache.
    Stages forced, ``always_changed`` or waiting for an upstream run keep
    running; so do stages the run cache does not apply to (see
    ``runcache.eligible``).  ``local``: whether the local run cache may hold
    entries, when the caller knows (a plan asks once, not once a stage)."""
    blocking = (ReasonKind.UPSTREAM, ReasonKind.FORCED, ReasonKind.ALWAYS_CHANGED)
    if decision.action is not Action.RUN or any(r.kind in blocking for r in decision.reasons):
        return decision
    stage = decision.stage
    if not runcache.eligible(stage):
        return decision
    if local is None:
        local = state.runcache.may_hold_entries()
    if not (local or state.remote is not None):
        # no key to look up: only what reading the inputs would report (a
        # dangling dep) is still owed, and a stat says it for a file that is there
        _check_inputs_readable(stage, state, restored or {})
        return decision
    inputs = _current_inputs(stage, state, restored or {})
    if inputs is None:
        return decision
    key = runcache.run_key(stage, stage.cmds, *inputs)
    paths = [o.path for o in stage.outs]
    entry = state.runcache.lookup(key, stage.address) if local else None
    if entry is not None and [e.path for e in entry.outs] == paths and all(
            state.cache.contains(HashInfo(e.hash, e.size, e.nfiles)) for e in entry.outs):
        return replace(decision, action=Action.RESTORE_RUN, run_entry=entry, source=RestoreSource.RUN_CACHE)
    if state.remote is not None:  # a teammate's or CI's run, on the remote
        entry = state.remote.peek_run_entry(key)
        if entry is not None and [e.path for e in entry.outs] == paths and state.remote.can_restore(entry.outs):
            return replace(decision, action=Action.RESTORE_RUN, run_entry=entry,
                           source=RestoreSource.REMOTE_RUN_CACHE)
    return decision


def _check_inputs_readable(stage: Stage, state: "State", restored: Mapping[str, str]) -> None:
    """Raise what reading the stage's run key would raise (a dangling dep, a
    params file that cannot be read), without hashing the deps that are there."""
    for dep in stage.deps:
        if not (restored and _touched_by(dep.path, restored)):
            state.hasher.refuse_dangling(dep.path)
    runcache.current_params(stage, state)


def _current_inputs(
    stage: Stage, state: "State", restored: Mapping[str, str]
) -> tuple[list[tuple[str, str]], dict[str, dict[str, Any]]] | None:
    """What the stage's run key is made of as the workspace will be when it
    starts: (dep path, hash) pairs and tracked params; None when a dep or
    param is missing or not known before an upstream restore."""
    deps: list[tuple[str, str]] = []
    for dep in stage.deps:
        digest = assumed_hash(dep.path, restored, state) if restored else _NOT_RESTORED
        if digest is _NOT_RESTORED:
            info = state.hasher.hash(dep.path)
            digest = info.hash if info is not None else None
        if digest is None or digest == UNKNOWN_HASH:
            return None
        deps.append((dep.path, digest))
    params = runcache.current_params(stage, state)
    if params is None:
        return None
    return deps, params
