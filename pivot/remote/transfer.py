"""Push and fetch: cache objects and run-cache entries between
``.pivot/cache/`` and a remote.

What moves is what the selected stages' current lock records name (files,
directory manifests and the files they list), plus run-cache entries: on
push every local entry of those stages whose objects are all cached, on
fetch the entry of each current record.  Only what the other side lacks is
sent.  Order keeps every state a reader can see usable, even after an
interruption: files before the manifests naming them, objects before the
run-cache entries naming them.

Every download lands in a temporary file inside the cache, is hashed
(a manifest must also parse and hash to its name) and only then renamed
into place: a corrupt or truncated object is reported, never placed.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from pivot.errors import PivotError
from pivot.remote.storage import ENTRIES, OBJECTS, RemoteError, RemoteStorage
from pivot.state.hashing import DIR_SUFFIX, ManifestEntry, file_digest, manifest_digest
from pivot.state.runcache import RunEntry, eligible, record_key
from pivot.state.store import OBJECT_MODE, valid_digest, valid_relpath

if TYPE_CHECKING:
    from pivot.ir import Stage
    from pivot.state import State
    from pivot.state.locks import LockEntry
    from pivot.state.runcache import RunCache
    from pivot.state.store import Cache


class CorruptDownload(PivotError):
    """A remote object whose content does not match its name."""


class Progress:
    """Where transfers report as they go; the CLI draws it on a terminal.
    Called from worker threads."""

    def start(self, objects: int, size: int) -> None:  # noqa: B027 -- optional hook
        pass

    def advance(self, size: int) -> None:  # noqa: B027 -- optional hook
        pass


@dataclass
class TransferReport:
    """What one push or fetch did."""

    action: str  # "push" or "fetch"
    remote: str
    url: str
    objects: int = 0  # objects sent or received
    bytes: int = 0
    already: int = 0  # objects the other side had
    entries: int = 0  # run-cache entries sent or received
    missing: list[str] = field(default_factory=list)  # needed, but on neither side
    failed: list[str] = field(default_factory=list)  # errors, one per object
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.missing and not self.failed

    def to_json(self) -> dict[str, object]:
        return {
            "action": self.action,
            "remote": self.remote,
            "url": self.url,
            "objects": self.objects,
            "bytes": self.bytes,
            "already": self.already,
            "run_cache_entries": self.entries,
            "missing": self.missing,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class Need:
    """An object a stage's output needs, for messages."""

    digest: str
    size: int
    why: str  # "'model' (train)"


def recorded_outputs(stages: Sequence["Stage"], state: "State") -> list[tuple["Stage", "LockEntry"]]:
    """The cached outputs of ``stages`` as their lock records name them."""
    found: list[tuple[Stage, LockEntry]] = []
    for stage in stages:
        record = state.locks.read(stage.address)
        if record is None:
            continue
        for out in stage.outs:
            entry = record.out(out.path)
            if out.cache and entry is not None:
                found.append((stage, entry))
    return found


# -- push --------------------------------------------------------------------


def push(
    stages: Sequence["Stage"],
    state: "State",
    storage: RemoteStorage,
    *,
    run_cache: bool = True,
    progress: Progress | None = None,
) -> TransferReport:
    """Upload what ``stages``' records (and their run-cache entries) need."""
    started = time.monotonic()
    report = TransferReport("push", storage.name, storage.url)
    if storage.read_only:
        raise RemoteError(f"remote '{storage.name}' ({storage.url}) is read-only: it can be fetched from, not pushed to")
    cache = state.cache
    files: dict[str, Need] = {}
    manifests: dict[str, Need] = {}
    for stage, entry in recorded_outputs(stages, state):
        why = f"'{entry.path}' ({stage.address})"
        if not _collect_local(cache, entry.hash, entry.size, why, files, manifests):
            report.missing.append(f"not in the local cache: {why}")
    entries: list[Path] = []
    if run_cache:
        addresses = {stage.address for stage in stages}
        for path, run in state.runcache.entries():
            if run is None or run.address not in addresses:
                continue
            run_files: dict[str, Need] = {}
            run_manifests: dict[str, Need] = {}
            why = f"run-cache entry of {run.address}"
            if all(
                o.hash in files or o.hash in manifests  # the current outputs, usually: collected above
                or _collect_local(cache, o.hash, o.size, why, run_files, run_manifests)
                for o in run.outs
            ):
                for digest, need in run_files.items():
                    files.setdefault(digest, need)
                for digest, need in run_manifests.items():
                    manifests.setdefault(digest, need)
                entries.append(path)
    keys = {path.parent.name + path.name[: -len(".json")]: path for path in entries}
    # entries are asked about now, with the objects, though they go up last
    known = storage.present_each({OBJECTS: [*files, *manifests], ENTRIES: keys})
    on_remote = known[OBJECTS]
    report.already = len(on_remote)
    to_send = [n for n in files.values() if n.digest not in on_remote]
    to_send_manifests = [n for n in manifests.values() if n.digest not in on_remote]
    sink = progress or Progress()
    sink.start(len(to_send) + len(to_send_manifests), sum(n.size for n in (*to_send, *to_send_manifests)))
    lock = threading.Lock()
    stop = _Stop()

    def send(need: Need) -> None:
        if stop.skip():
            return
        try:
            storage.upload(cache.object_path(need.digest), OBJECTS, need.digest)
        except (RemoteError, OSError) as exc:
            stop.set()  # the remote is unreachable or refuses: do not try every object
            with lock:
                report.failed.append(_message(exc, storage, need))
            return
        size = need.size
        with lock:
            report.objects += 1
            report.bytes += size
        sink.advance(size)

    storage.map(send, to_send)
    if not report.failed:  # a manifest goes up only once all its files are there
        storage.map(send, to_send_manifests)
    stop.report(report)
    if entries and not report.failed:  # an entry goes up only once its objects are there
        def send_entry(key: str) -> None:
            try:
                storage.upload(keys[key], ENTRIES, key)
            except (RemoteError, OSError) as exc:
                with lock:
                    report.failed.append(f"run-cache entry {key[:8]}: {exc}")
                return
            with lock:
                report.entries += 1

        storage.map(send_entry, sorted(set(keys) - known[ENTRIES]))
    report.seconds = time.monotonic() - started
    return report


def in_cache(cache: "Cache", digest: str) -> bool:
    """Whether the local cache holds object ``digest`` (a stat; no Path
    objects: this runs once per file of every directory output)."""
    return os.path.isfile(f"{cache.objects}/{digest[:2]}/{digest[2:]}")


def _collect_local(
    cache: "Cache", digest: str, size: int, why: str, files: dict[str, Need], manifests: dict[str, Need]
) -> bool:
    """Add the objects of one output to ``files``/``manifests``; False when
    any of them is not in the local cache."""
    if not digest.endswith(DIR_SUFFIX):
        if not in_cache(cache, digest):
            return False
        files.setdefault(digest, Need(digest, size, why))
        return True
    listing = cache.load_manifest(digest)
    if listing is None:
        return False
    present = True
    for item in listing:
        if in_cache(cache, item.hash):
            files.setdefault(item.hash, Need(item.hash, item.size, why))
        else:
            present = False
    if present:
        manifests.setdefault(digest, Need(digest, _size(cache.object_path(digest)), why))
    return present


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _message(exc: BaseException, storage: RemoteStorage, need: Need) -> str:
    text = str(exc)
    if isinstance(exc, OSError) and not isinstance(exc, PivotError):
        text = f"remote '{storage.name}': {storage.shown(OBJECTS, need.digest)}: {exc.strerror or exc}"
    return f"{text} (for {need.why})"


# -- fetch -------------------------------------------------------------------


def fetch(
    stages: Sequence["Stage"],
    state: "State",
    storage: RemoteStorage,
    *,
    run_cache: bool = True,
    progress: Progress | None = None,
) -> TransferReport:
    """Download into the cache what ``stages``' records need and lacks."""
    started = time.monotonic()
    report = TransferReport("fetch", storage.name, storage.url)
    outputs = recorded_outputs(stages, state)
    needs = [Need(entry.hash, entry.size, f"'{entry.path}' ({stage.address})") for stage, entry in outputs]
    fetch_needs(needs, state.cache, storage, report, progress or Progress())
    if run_cache:
        keys = []
        for stage in stages:
            record = state.locks.read(stage.address)
            if record is not None and eligible(stage):
                key = record_key(stage, record)
                if state.runcache.lookup(key) is None:
                    keys.append(key)
        lock = threading.Lock()

        def get_entry(key: str) -> None:
            try:
                found = fetch_run_entry(storage, state.runcache, key) is not None
            except (PivotError, OSError) as exc:
                with lock:
                    report.failed.append(str(exc))
                return
            if found:
                with lock:
                    report.entries += 1

        storage.map(get_entry, sorted(storage.present(ENTRIES, keys)))
    report.seconds = time.monotonic() - started
    return report


def fetch_needs(
    needs: Iterable[Need], cache: "Cache", storage: RemoteStorage, report: TransferReport, progress: Progress
) -> None:
    """Download the objects of ``needs`` (outputs: a file, or a directory's
    manifest and then its files) that the cache lacks."""
    needs = list(needs)
    manifests = {n.digest: n for n in needs if n.digest.endswith(DIR_SUFFIX)}
    files = {n.digest: n for n in needs if not n.digest.endswith(DIR_SUFFIX)}
    wanted_manifests = [n for d, n in manifests.items() if not in_cache(cache, d)]
    report.already += len(manifests) - len(wanted_manifests)
    progress.start(len(wanted_manifests), 0)
    _download_all(wanted_manifests, cache, storage, report, progress)
    for digest, need in manifests.items():
        listing = cache.load_manifest(digest)
        for item in listing or ():
            files.setdefault(item.hash, Need(item.hash, item.size, need.why))
    wanted = [n for d, n in files.items() if not in_cache(cache, d)]
    report.already += len(files) - len(wanted)
    progress.start(len(wanted), sum(n.size for n in wanted))
    _download_all(wanted, cache, storage, report, progress)


def _download_all(
    needs: list[Need], cache: "Cache", storage: RemoteStorage, report: TransferReport, progress: Progress
) -> None:
    lock = threading.Lock()
    stop = _Stop()

    def get(need: Need) -> None:
        if stop.skip():
            return
        try:
            size = download_object(storage, cache, need.digest)
        except FileNotFoundError:
            with lock:
                report.missing.append(
                    f"not on remote '{storage.name}': {storage.shown(OBJECTS, need.digest)} (for {need.why})"
                )
            return
        except (PivotError, OSError) as exc:
            if not isinstance(exc, CorruptDownload):
                stop.set()  # unreachable, refused, disk full: do not try every object
            with lock:
                report.failed.append(_message(exc, storage, need))
            return
        with lock:
            report.objects += 1
            report.bytes += size
        progress.advance(size)

    storage.map(get, needs)
    stop.report(report)


class _Stop:
    """After the first error that is not about one object, the remaining
    transfers are skipped (and counted) instead of each failing in turn."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self.skipped = 0

    def set(self) -> None:
        self._event.set()

    def skip(self) -> bool:
        if not self._event.is_set():
            return False
        with self._lock:
            self.skipped += 1
        return True

    def report(self, report: TransferReport) -> None:
        if self.skipped:
            report.failed.append(f"{self.skipped} more object{'s' if self.skipped != 1 else ''} not attempted after that error")


def download_object(storage: RemoteStorage, cache: "Cache", digest: str) -> int:
    """Download one object into the cache, verified; its size in bytes.
    ``FileNotFoundError`` when the remote lacks it, ``CorruptDownload`` when
    its content does not match ``digest`` (nothing is placed then)."""
    if not valid_digest(digest):
        raise PivotError(f"refusing to fetch {digest!r}: not a cache hash")
    problem_of = lambda path: _verify(path, digest)  # noqa: E731
    return place_download(storage, OBJECTS, digest, cache.object_path(digest), problem_of,
                          what=f"remote '{storage.name}'", mode=OBJECT_MODE)


def place_download(storage: RemoteStorage, kind, name: str, target: Path, problem_of, *, what: str,
                   mode: int) -> int:
    """Download ``name`` to a temporary name beside ``target`` (the atomic
    writer's, which gc sweeps), check it with ``problem_of`` (why it is not
    what was asked for, or None), then rename it into place; its size.
    ``CorruptDownload`` when the check fails: nothing is placed then."""
    from pivot import atomic

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic.temp_path(target)
    try:
        storage.download(kind, name, tmp)
        problem = problem_of(tmp)
        if problem is not None:
            raise CorruptDownload(f"{what}: {storage.shown(kind, name)} is corrupt ({problem}); not placed")
        size = os.path.getsize(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
        return size
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def _verify(path: Path, digest: str) -> str | None:
    """Why the file at ``path`` is not object ``digest``; None when it is."""
    if not digest.endswith(DIR_SUFFIX):
        actual = file_digest(path)
        return None if actual == digest else f"its content hashes to {actual}, expected {digest}"
    try:
        entries = parse_manifest(path.read_bytes())
    except ValueError as exc:
        return f"not a directory manifest: {exc}"
    actual = manifest_digest(entries)
    return None if actual == digest else f"the manifest hashes to {actual}, expected {digest}"


def parse_manifest(raw: bytes) -> tuple[ManifestEntry, ...]:
    """A manifest object's entries, held to the cache's rules (safe relative
    paths, file hashes only); ``ValueError`` otherwise."""
    try:
        entries = tuple(
            ManifestEntry(relpath=e["relpath"], hash=e["hash"], size=e["size"], isexec=e["isexec"])
            for e in json.loads(raw)
        )
    except (KeyError, TypeError, UnicodeDecodeError) as exc:
        raise ValueError(str(exc)) from None
    for entry in entries:
        if not valid_relpath(entry.relpath):
            raise ValueError(f"unsafe path {entry.relpath!r}")
        if not valid_digest(entry.hash) or entry.hash.endswith(DIR_SUFFIX):
            raise ValueError(f"bad hash {entry.hash!r} for {entry.relpath!r}")
        if type(entry.size) is not int or type(entry.isexec) is not bool:
            raise ValueError(f"bad size or mode for {entry.relpath!r}")
    return entries


def fetch_run_entry(storage: RemoteStorage, runcache: "RunCache", key: str) -> RunEntry | None:
    """Download the run-cache entry ``key`` into ``.pivot/runcache/`` (not
    its objects); None when the remote has none.  A malformed entry, or one
    filed under another key, is refused."""
    if not valid_digest(key) or key.endswith(DIR_SUFFIX):
        raise PivotError(f"refusing to fetch run-cache entry {key!r}: not a run key")
    try:
        raw = storage.read(ENTRIES, key)
    except FileNotFoundError:
        return None
    try:
        entry = RunEntry.from_json(json.loads(raw))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CorruptDownload(f"remote '{storage.name}': {storage.shown(ENTRIES, key)} is corrupt ({exc}); not placed")
    if entry.key != key:
        raise CorruptDownload(
            f"remote '{storage.name}': {storage.shown(ENTRIES, key)} is filed under the wrong key; not placed"
        )
    path = runcache.path_for(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    from pivot import atomic

    atomic.write_text(path, json.dumps(entry.to_json(), sort_keys=True, ensure_ascii=False))
    return entry
