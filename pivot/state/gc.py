"""Reclaiming cache space: ``pivot gc``.

What stays: every object a lock record names (the workspace's current
outputs; a directory's manifest and its files), and every object named by a
run-cache entry that is kept -- per stage, the ``keep_last`` most recent
entries plus the entry of its current record.  Everything else in
``.pivot/cache/`` and ``.pivot/runcache/`` goes.

Removal order keeps every state a reader can see consistent, even if gc is
interrupted: run-cache entries first (no entry names a missing object),
then directory manifests (no manifest names a missing file), then files.
``plan``/``status`` running meanwhile at worst find an entry gone and plan
a real run.

Debris of interrupted writes goes too: temporary files of the atomic writer
(:mod:`pivot.atomic`) anywhere under ``.pivot/`` (lock records, run-cache
entries, cache objects, Ninja bridge files, the pipeline/params/parser
caches), and checkout temporaries (``.NAME.pivot-XXXXXXXX``) beside the
outputs of the pipeline and of the lock records and inside output
directories.  The caller holds the run lock and the cache lock, so no run,
checkout or commit is writing; inspection commands and Ninja bridge
helpers may still write caches and stamps meanwhile, so only temporaries
untouched for ``GRACE_SECONDS`` are taken (see there).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from pivot import atomic
from pivot.containment import is_inside
from pivot.errors import StateError
from pivot.state.hashing import DIR_SUFFIX, HashInfo
from pivot.state.locks import LockEntry, LockRecord
from pivot.state.runcache import RunCache, RunEntry
from pivot.state.store import Cache

if TYPE_CHECKING:
    from pivot.state import State

DEFAULT_KEEP_LAST = 5
# A writer's temporary file is written, then renamed at once: its mtime (set
# by each write) is at most milliseconds old while the writer lives, unless
# the process is stopped or the filesystem's clock (a network server's)
# disagrees with ours.  Five minutes is far beyond both, and all it costs is
# that debris younger than that waits for the next gc.
GRACE_SECONDS = 300.0
# What ``Cache._place`` leaves beside an output when killed mid-checkout:
# ``.NAME.pivot-`` and the 8 characters ``tempfile`` picks (see
# ``pivot.state.store._temp_name``; tests create one with it).
_CHECKOUT_TEMP = re.compile(r"\.(?P<name>.+)\.pivot-[a-z0-9_]{8}\Z", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Doomed:
    """A file gc removes (or would remove), with its size."""

    path: Path
    size: int


@dataclass(frozen=True)
class GcPlan:
    """What ``collect`` found; ``sweep`` carries it out."""

    entries: tuple[Doomed, ...]  # run-cache entry files
    manifests: tuple[Doomed, ...]  # directory manifest objects
    files: tuple[Doomed, ...]  # file objects
    leftovers: tuple[Doomed, ...]  # temporary files of interrupted writes, older than GRACE_SECONDS
    kept_objects: int
    kept_bytes: int
    kept_entries: int
    records: int

    @property
    def objects(self) -> tuple[Doomed, ...]:
        return self.manifests + self.files

    @property
    def freed_bytes(self) -> int:
        return sum(d.size for d in (*self.entries, *self.objects, *self.leftovers))


def read_records(locks_dir: Path) -> list[LockRecord]:
    """Every lock record.  A damaged one stops gc: what it protects is unknown."""
    records: list[LockRecord] = []
    if not locks_dir.is_dir():
        return records
    for path in sorted(locks_dir.glob("*.json")):
        try:
            records.append(LockRecord.from_json(json.loads(path.read_bytes())))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StateError(
                f"lock record '.pivot/locks/{path.name}' is unreadable ({exc}); repair or delete it before gc"
            ) from None
    return records


def collect(
    cache: Cache, runcache: RunCache, locks_dir: Path, keep_last: int, *,
    outs: Iterable[str] = (), now: float | None = None,
) -> GcPlan:
    """Decide what goes; reads only, removes nothing.  ``outs``: the
    pipeline's declared outputs (root-relative), whose checkout debris goes
    too, as does that of the lock records' outputs."""
    if keep_last < 0:
        raise StateError("--keep-last must be 0 or more")
    records = read_records(locks_dir)
    current_outs = {record.address: record.outs for record in records}

    kept: list[LockEntry] = [entry for record in records for entry in record.outs]
    doomed_entries: list[Doomed] = []
    kept_entries = 0
    by_stage: dict[str, list[tuple[Path, RunEntry]]] = defaultdict(list)
    for path, entry in runcache.entries():
        if entry is None or not all(cache.contains(_info(e)) for e in entry.outs):
            doomed_entries.append(_doomed(path))  # unreadable, or its objects are gone: useless
        else:
            by_stage[entry.address].append((path, entry))
    for address, found in by_stage.items():
        found.sort(key=lambda item: item[1].time, reverse=True)
        for rank, (path, entry) in enumerate(found):
            if rank < keep_last or entry.outs == current_outs.get(address):
                kept.extend(entry.outs)
                kept_entries += 1
            else:
                doomed_entries.append(_doomed(path))

    needed = _needed_digests(cache, kept)
    manifests: list[Doomed] = []
    files: list[Doomed] = []
    kept_objects = kept_bytes = 0
    for obj in cache.iter_objects():
        digest = obj.parent.name + obj.name
        doomed = _doomed(obj)
        if digest in needed:
            kept_objects += 1
            kept_bytes += doomed.size
        elif digest.endswith(DIR_SUFFIX):
            manifests.append(doomed)
        else:
            files.append(doomed)
    state_dir = cache.dir.parent  # .pivot/
    recorded = [entry.path for record in records for entry in record.outs]
    leftovers = [
        _doomed(p) for p in debris(state_dir, cache.root, [*outs, *recorded], time.time() if now is None else now)
    ]
    return GcPlan(
        entries=tuple(doomed_entries),
        manifests=tuple(manifests),
        files=tuple(files),
        leftovers=tuple(leftovers),
        kept_objects=kept_objects,
        kept_bytes=kept_bytes,
        kept_entries=kept_entries,
        records=len(records),
    )


def sweep(plan: GcPlan) -> None:
    """Remove what ``plan`` lists, in the order that keeps readers safe."""
    for group in (plan.entries, plan.manifests, plan.files, plan.leftovers):
        for doomed in group:
            _unlink_quietly(doomed.path)
    for doomed in (*plan.entries, *plan.objects):
        _rmdir_if_empty(doomed.path.parent)


def _needed_digests(cache: Cache, entries: Iterable[LockEntry]) -> set[str]:
    """The objects restoring ``entries`` takes: each hash, and for a
    directory every file its manifest lists."""
    needed: set[str] = set()
    for entry in entries:
        if entry.hash in needed:
            continue
        needed.add(entry.hash)
        if entry.hash.endswith(DIR_SUFFIX):
            needed.update(e.hash for e in cache.load_manifest(entry.hash) or ())
    return needed


def _info(entry: LockEntry) -> HashInfo:
    return HashInfo(entry.hash, entry.size, entry.nfiles)


def debris(state_dir: Path, root: Path, outs: Iterable[str], now: float) -> list[Path]:
    """Temporary files of interrupted writes not touched for GRACE_SECONDS:
    the atomic writer's under ``state_dir``, checkout temporaries beside
    ``outs`` (root-relative) and inside output directories."""
    found = [*_state_temp_files(state_dir), *_checkout_temp_files(root, outs)]
    return sorted(path for path in dict.fromkeys(found) if _untouched_since(path, now - GRACE_SECONDS))


def _state_temp_files(state_dir: Path) -> Iterable[Path]:
    for directory, _subdirs, names in os.walk(state_dir):
        for name in names:
            # ``.tmp-*``: the cache's and run cache's temporary names before
            # they went through the atomic writer
            if atomic.is_temp_name(name) or name.startswith(".tmp-"):
                yield Path(directory, name)


def _checkout_temp_files(root: Path, outs: Iterable[str]) -> Iterable[Path]:
    listings: dict[Path, list[str]] = {}  # outputs often share a directory
    for relpath in sorted(set(outs)):
        if not is_inside(root, relpath):  # never look outside the project
            continue
        target = root / relpath
        if target.parent not in listings:
            try:
                listings[target.parent] = os.listdir(target.parent)
            except OSError:
                listings[target.parent] = []
        for name in listings[target.parent]:
            found = _CHECKOUT_TEMP.match(name)
            if found and found.group("name") == target.name:
                yield target.parent / name
        if target.is_dir() and not target.is_symlink():  # each file was placed beside itself
            for directory, _subdirs, names in os.walk(target):
                yield from (Path(directory, n) for n in names if _CHECKOUT_TEMP.match(n))


def _untouched_since(path: Path, cutoff: float) -> bool:
    try:
        return os.lstat(path).st_mtime < cutoff
    except FileNotFoundError:
        return False


def _doomed(path: Path) -> Doomed:
    try:
        return Doomed(path, os.lstat(path).st_size)
    except FileNotFoundError:
        return Doomed(path, 0)


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _rmdir_if_empty(directory: Path) -> None:
    try:
        directory.rmdir()
    except OSError:
        pass


def prune_state(root: Path, state: "State") -> int:
    """Forget what ``state.db`` remembers of files and lock records that no
    longer exist (it only grows otherwise); the number of rows dropped."""
    return state.statdb.prune(
        lambda path: not os.path.lexists(root / path),
        lambda address: not state.locks.path_for(address).exists(),
    )
