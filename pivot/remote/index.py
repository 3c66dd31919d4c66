"""What a run can ask a remote: the API for restoring from a remote.

The optimizer (a stage whose outputs are missing locally but on the remote,
or whose run key is in the remote's run cache) and the runner (download
instead of recompute) use one ``RemoteIndex`` per command::

    index = RemoteIndex.open(project, state)          # default remote; None if none configured
    entry = index.fetch_run_entry(key)                # RunEntry or None, now in .pivot/runcache/
    if entry and index.has_outputs(entry.outs):       # batched, memoised existence checks
        report = index.fetch_outputs(entry.outs)      # verified downloads into .pivot/cache/
        ok = report.ok

Existence answers are memoised for the life of the index (objects on a
remote are immutable; one that disappears meanwhile makes the fetch report
it missing, and the stage then runs).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from pivot.errors import PivotError
from pivot.remote.storage import ENTRIES, OBJECTS, RemoteStorage
from pivot.remote.transfer import (
    CorruptDownload,
    Need,
    Progress,
    TransferReport,
    download_object,
    fetch_needs,
    fetch_run_entry,
    in_cache,
    parse_manifest,
)
from pivot.state.hashing import DIR_SUFFIX

if TYPE_CHECKING:
    from pivot.project import Project
    from pivot.state import State
    from pivot.state.locks import LockEntry
    from pivot.state.runcache import RunEntry


def attach(state: "State", project: "Project", name: str | None = None) -> str | None:
    """Let ``state``'s plans and restores use remote ``name`` (default: the
    default remote, if one is configured): ``state.remote``.  Returns a
    warning when the remote cannot be used (a missing extra, bad settings);
    the plan is then made without it."""
    try:
        state.remote = RemoteIndex.open(project, state, name)
    except PivotError as exc:
        if name is not None:
            raise
        return f"{exc}; planning without the remote"
    return None


class RemoteIndex:
    """Batched, memoised questions to one remote, and verified fetches."""

    def __init__(self, storage: RemoteStorage, state: "State") -> None:
        self.storage = storage
        self.state = state
        self._known: dict[str, bool] = {}
        self._manifests: dict[str, tuple | None] = {}  # read, verified, never placed (inspection)
        self._entries: dict[str, "RunEntry | None"] = {}

    @classmethod
    def open(cls, project: "Project", state: "State", name: str | None = None) -> "RemoteIndex | None":
        """The index of remote ``name`` (default: the default remote); None
        when no name is given and no default remote is configured.  A
        configured remote whose backend is missing raises ``MissingExtra``."""
        from pivot.remote import config

        settings = config.load(project.state_dir)
        if name is None and settings.default is None:
            return None
        return cls(RemoteStorage(settings.get(name), project.root), state)

    @property
    def name(self) -> str:
        return self.storage.name

    def contains(self, digests: Iterable[str]) -> set[str]:
        """Which of the object ``digests`` the remote holds (one batched pass
        for those not asked about before)."""
        digests = set(digests)
        unknown = [d for d in digests if d not in self._known]
        if unknown:
            found = self.storage.present(OBJECTS, unknown)
            for digest in unknown:
                self._known[digest] = digest in found
        return {d for d in digests if self._known[d]}

    def has_outputs(self, outs: Sequence["LockEntry"]) -> bool:
        """Whether the remote (together with the local cache) holds everything
        needed to restore ``outs``: a directory's manifest and all its files.
        A manifest the local cache lacks is fetched (verified) to answer."""
        return self._holds(outs, self._placed_manifest)

    def _holds(self, outs: Sequence["LockEntry"], manifest_of: Callable[[str], tuple | None]) -> bool:
        """``outs`` restorable from the local cache plus the remote;
        ``manifest_of`` gives a directory's listing the local cache lacks."""
        cache = self.state.cache
        wanted = [o.hash for o in outs if not in_cache(cache, o.hash)]
        if set(wanted) - self.contains(wanted):
            return False
        files: list[str] = []
        for out in outs:
            if not out.hash.endswith(DIR_SUFFIX):
                continue
            listing = cache.load_manifest(out.hash) if in_cache(cache, out.hash) else manifest_of(out.hash)
            if listing is None:
                return False
            files.extend(e.hash for e in listing if not in_cache(cache, e.hash))
        return not set(files) - self.contains(files)

    def _placed_manifest(self, digest: str) -> tuple | None:
        """Manifests are small: fetch one now (verified, into the cache)."""
        try:
            download_object(self.storage, self.state.cache, digest)
        except (FileNotFoundError, CorruptDownload):
            return None
        return self.state.cache.load_manifest(digest)

    # -- read-only questions, for plans (inspection writes nothing) -------------

    problem: str | None = None  # why plans stopped asking this remote (unreachable...)

    def can_restore(self, outs: Sequence["LockEntry"]) -> bool:
        """Whether the remote (with the local cache) holds everything to
        restore ``outs``; a manifest the local cache lacks is read into
        memory and verified, never placed.  A remote that cannot be reached
        answers no from then on (``problem`` says why): the plan runs locally."""
        if self.problem is not None:
            return False
        try:
            return self._holds(outs, self._remote_manifest)
        except (PivotError, OSError) as exc:
            self.problem = str(exc)
            return False

    def _remote_manifest(self, digest: str) -> tuple | None:
        if digest not in self._manifests:
            from pivot.state.hashing import manifest_digest

            try:
                entries = parse_manifest(self.storage.read(OBJECTS, digest))
                self._manifests[digest] = entries if manifest_digest(entries) == digest else None
            except (FileNotFoundError, ValueError):
                self._manifests[digest] = None
        return self._manifests[digest]

    def peek_run_entry(self, key: str) -> "RunEntry | None":
        """The remote's run-cache entry for ``key``, read and checked but not
        placed; None when there is none (or it is malformed)."""
        if self.problem is not None:
            return None
        if key not in self._entries:
            from pivot.state.runcache import RunEntry

            entry = None
            try:
                parsed = RunEntry.from_json(json.loads(self.storage.read(ENTRIES, key)))
                entry = parsed if parsed.key == key else None
            except FileNotFoundError:
                pass
            except (ValueError, KeyError, TypeError, AttributeError):
                entry = None
            except (PivotError, OSError) as exc:
                self.problem = str(exc)
            self._entries[key] = entry
        return self._entries[key]

    def has_run_entries(self, keys: Iterable[str]) -> set[str]:
        """Which run keys the remote's run cache holds."""
        return self.storage.present(ENTRIES, keys)

    def fetch_run_entry(self, key: str) -> "RunEntry | None":
        """The remote's entry for ``key``, placed in the local run cache (its
        objects are not fetched); None when the remote has none."""
        return fetch_run_entry(self.storage, self.state.runcache, key)

    def fetch_outputs(self, outs: Sequence["LockEntry"], progress: Progress | None = None) -> TransferReport:
        """Download, verified, what the local cache lacks to restore ``outs``."""
        report = TransferReport("fetch", self.storage.name, self.storage.url)
        needs = [Need(o.hash, o.size, f"'{o.path}'") for o in outs]
        fetch_needs(needs, self.state.cache, self.storage, report, progress or Progress())
        return report

    def fetch_objects(self, digests: Iterable[str], progress: Progress | None = None) -> TransferReport:
        """Download, verified, the objects ``digests`` (a ``.dir`` digest
        brings its files too) that the local cache lacks."""
        report = TransferReport("fetch", self.storage.name, self.storage.url)
        needs = [Need(d, 0, d[:8]) for d in digests]
        fetch_needs(needs, self.state.cache, self.storage, report, progress or Progress())
        return report
