"""The layout on a remote and the few operations pivot needs there.

::

    <url>/files/xxh3/<hash[:2]>/<hash[2:]>     cache objects (files and .dir manifests)
    <url>/runcache/<key[:2]>/<key[2:]>.json    run-cache entries

Objects are named as in ``.pivot/cache/files/``; the ``xxh3`` level names
the hash, so a bucket shared with DVC (``files/md5/...``) never mixes the
two.  Objects are immutable.  Uploads are atomic for readers: a single put
on object stores (an interrupted multipart upload is never visible), a
temporary name then a rename on filesystems (local, network, SSH).
Existence is found by listing the two-character prefix directories (or the
whole tree when that is cheaper), not one request per object.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence, TypeVar

from pivot.errors import PivotError
from pivot.remote.fs import Backend, open_fs

if TYPE_CHECKING:
    from pivot.remote.config import Remote

FILES = "files/xxh3"
RUNCACHE = "runcache"
DEFAULT_JOBS = 16
RETRIES = 3  # attempts per request
_BACKOFF = 0.25  # seconds, doubled per attempt
_FEW = 32  # up to this many names: one existence check each
_T = TypeVar("_T")
_A = TypeVar("_A")


class RemoteError(PivotError):
    """A remote that cannot be reached or refuses a request (after retries)."""


@dataclass(frozen=True)
class Kind:
    """A family of named things on the remote: where they live, how named."""

    top: str
    suffix: str


OBJECTS = Kind(FILES, "")
ENTRIES = Kind(RUNCACHE, ".json")
DVC_OBJECTS = Kind("files/md5", "")  # DVC 3's layout
DVC_LEGACY_OBJECTS = Kind("", "")  # DVC 2's: <url>/xx/rest


class RemoteStorage:
    """One opened remote: its filesystem, base path and request helpers."""

    def __init__(self, remote: "Remote", root: Path, jobs: int | None = None) -> None:
        self.remote = remote
        self.name = remote.name
        self.url = remote.url
        self.fs, self.base, self.backend = open_fs(remote, root)
        self.jobs = jobs or _configured_jobs(remote) or DEFAULT_JOBS

    @property
    def read_only(self) -> bool:
        return self.backend.read_only

    def path(self, kind: Kind, name: str) -> str:
        return f"{self.base}/{self.shown(kind, name)}"

    def shown(self, kind: Kind, name: str) -> str:
        """The remote path for messages: relative to the remote's URL."""
        top = f"{kind.top}/" if kind.top else ""
        return f"{top}{name[:2]}/{name[2:]}{kind.suffix}"

    # -- existence -------------------------------------------------------------

    def present(self, kind: Kind, names: Iterable[str]) -> set[str]:
        """Which of ``names`` the remote holds, with few requests."""
        wanted = set(names)
        if not wanted:
            return set()
        if len(wanted) <= _FEW or not self.backend.listable:
            found = self.map(lambda n: n if self._exists(kind, n) else None, sorted(wanted))
            return {n for n in found if n is not None}
        prefixes = sorted({n[:2] for n in wanted})
        if len(prefixes) >= 32 and self._whole_tree_is_cheaper(kind, prefixes[0], len(wanted)):
            listed = self._list_tree(kind)
        else:
            listed = set().union(*self.map(lambda p: self._list_prefix(kind, p), prefixes))
        return wanted & listed

    def present_each(self, wanted: dict[Kind, Iterable[str]]) -> dict[Kind, set[str]]:
        """``present`` for several kinds at once: their listings overlap, so
        a push asks about objects and run-cache entries in one round trip's time."""
        kinds = list(wanted)
        found = self.map(lambda kind: self.present(kind, wanted[kind]), kinds)
        return dict(zip(kinds, found))

    def _exists(self, kind: Kind, name: str) -> bool:
        return self.retry(f"checking {self.shown(kind, name)}", lambda: self.fs.exists(self.path(kind, name)))

    def _list_prefix(self, kind: Kind, prefix: str) -> set[str]:
        directory = f"{self.base}/{kind.top}/{prefix}"

        def listing() -> list[str]:
            try:
                return self.fs.ls(directory, detail=False)
            except FileNotFoundError:
                return []

        names = self.retry(f"listing {kind.top}/{prefix}/", listing)
        return {prefix + _strip(_basename(p), kind.suffix) for p in names if _is_final(p, kind)}

    def _whole_tree_is_cheaper(self, kind: Kind, sample: str, wanted: int) -> bool:
        """One recursive listing beats a listing per prefix unless the remote
        holds many more names than we ask about (estimated from one prefix)."""
        estimate = len(self._list_prefix(kind, sample)) * 256
        return estimate <= max(4 * wanted, 20_000)

    def _list_tree(self, kind: Kind) -> set[str]:
        top = f"{self.base}/{kind.top}"

        def listing() -> list[str]:
            try:
                return self.fs.find(top)
            except FileNotFoundError:
                return []

        found: set[str] = set()
        for path in self.retry(f"listing {kind.top}/", listing):
            parts = path.rstrip("/").rsplit("/", 2)
            if len(parts) == 3 and len(parts[1]) == 2 and _is_final(path, kind):
                found.add(parts[1] + _strip(parts[2], kind.suffix))
        return found

    # -- transfers -------------------------------------------------------------

    def upload(self, local: Path, kind: Kind, name: str) -> None:
        target = self.path(kind, name)
        what = f"uploading {self.shown(kind, name)}"
        if self.backend.atomic_put:
            self.retry(what, lambda: self.fs.put_file(str(local), target))
            return
        # a filesystem: readers must never see a half-written object
        temporary = f"{target}.tmp-{uuid.uuid4().hex}"

        def put_and_rename() -> None:
            self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            try:
                self.fs.put_file(str(local), temporary)
                self.fs.mv(temporary, target)
            except BaseException as exc:
                try:
                    self.fs.rm_file(temporary)
                except Exception:  # noqa: BLE001 -- best effort; the original error matters
                    pass
                # SFTP's rename never replaces: another clone placed the same
                # object first, which is as good (objects are named by content)
                if isinstance(exc, Exception) and self.fs.exists(target):
                    return
                raise

        self.retry(what, put_and_rename)

    def download(self, kind: Kind, name: str, local: Path) -> None:
        """Copy the remote's object into ``local``; FileNotFoundError when absent."""
        self.retry(f"downloading {self.shown(kind, name)}", lambda: self.fs.get_file(self.path(kind, name), str(local)))

    def list_all(self, kind: Kind) -> set[str]:
        """Every finished name of ``kind`` on the remote (one recursive listing)."""
        return self._list_tree(kind)

    def remove(self, kind: Kind, name: str) -> None:
        if self.read_only:
            raise RemoteError(f"remote '{self.name}' ({self.url}) is read-only: nothing can be removed from it")

        def remove_file() -> None:
            try:
                self.fs.rm_file(self.path(kind, name))
            except FileNotFoundError:
                pass  # removed meanwhile: as good

        self.retry(f"removing {self.shown(kind, name)}", remove_file)

    def read(self, kind: Kind, name: str) -> bytes:
        return self.retry(f"reading {self.shown(kind, name)}", lambda: self.fs.cat_file(self.path(kind, name)))

    # -- helpers ---------------------------------------------------------------

    def retry(self, what: str, action: Callable[[], _T]) -> _T:
        """``action`` with bounded retries on network trouble; then a
        ``RemoteError`` naming the remote and ``what`` was being done."""
        for attempt in range(RETRIES):
            try:
                return action()
            except (FileNotFoundError, PivotError, ImportError):
                raise
            except PermissionError as exc:
                raise RemoteError(f"remote '{self.name}' ({self.url}): {what}: permission denied ({exc})") from None
            except Exception as exc:  # noqa: BLE001 -- backends raise their own error types
                if attempt == RETRIES - 1:
                    detail = " ".join(str(exc).split()) or type(exc).__name__
                    raise RemoteError(
                        f"remote '{self.name}' ({self.url}): {what} failed after {RETRIES} attempts: {detail}"
                    ) from None
                time.sleep(_BACKOFF * 2**attempt)
        raise AssertionError("unreachable")

    def map(self, func: Callable[[_A], _T], items: Sequence[_A]) -> list[_T]:
        """``func`` over ``items`` on ``jobs`` threads, in order.  On an
        interrupt (Ctrl-C) the transfers not yet started are dropped and the
        running ones end (each leaves nothing partial behind)."""
        if len(items) <= 1 or self.jobs == 1:
            return [func(item) for item in items]
        pool = ThreadPoolExecutor(max_workers=min(self.jobs, len(items)))
        try:
            futures = [pool.submit(func, item) for item in items]
            return [future.result() for future in futures]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _configured_jobs(remote: "Remote") -> int | None:
    value = remote.option("jobs")
    if value is None:
        return None
    if not value.strip().isdigit() or int(value) < 1:
        raise PivotError(f"remote '{remote.name}': jobs must be a positive integer, not '{value}'")
    return int(value)


def _basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _strip(name: str, suffix: str) -> str:
    return name[: -len(suffix)] if suffix and name.endswith(suffix) else name


def _is_final(path: str, kind: Kind) -> bool:
    """A finished object or entry, not a temporary name of an upload."""
    name = _basename(path)
    return ".tmp-" not in name and (not kind.suffix or name.endswith(kind.suffix))


def describe_backend(backend: Backend) -> str:
    if not backend.installed():
        return f"needs `{backend.pip_line()}`"
    return "read-only" if backend.read_only else "read-write"
