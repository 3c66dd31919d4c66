"""Content hashes of files and directories: xxh3-128, stat-gated, memoised.

A file's hash is its xxh3-128 digest (hex).  A directory's hash is the
xxh3-128 of its manifest -- every file below it, sorted by relative path,
with its hash and size -- suffixed ``.dir``.  The manifest also keeps each
file's executable bit (checkout restores it), but like DVC the hash leaves
it out: ``chmod +x`` changes no directory's hash.  One
``Hasher`` lives for one command: every path it hashed is remembered, so a
directory shared by fifty stages is walked once, and a file whose stat
matches the stat cache (``statdb``) is never read again.

A path that is itself a symlink is hashed by its target's content.  Inside
a directory, walks match DVC (``followlinks=False``): a symlink to a file
counts by the file's content, a symlink to a directory is left out, and
files or directories that ``.dvcignore`` / ``.pivotignore`` ignore are left
out.  A dangling link is a ``PivotError`` naming the path.
"""

from __future__ import annotations

import errno
import os
import re
import stat as stat_mod
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING

import xxhash

from pivot.errors import StateError
from pivot.ignore import IgnoreTree, is_ignored

if TYPE_CHECKING:
    from pivot.state.statdb import StatDB

DIR_SUFFIX = ".dir"
CHUNK = 1 << 20
# what a pivot hash looks like (lock records, run-cache entries, cache object names)
DIGEST_PATTERN = re.compile(r"[0-9a-f]{32}(\.dir)?")
_CACHE_LINK = re.compile(r"(^|/)\.(pivot|dvc)/cache/")
_STATE_DIRS = frozenset({".pivot", ".git", ".dvc"})  # never part of the root directory's manifest
_NESTED_PROJECT = frozenset({".dvc", ".pivot"})  # below a walked directory: a separate project


@dataclass(frozen=True, slots=True)
class HashInfo:
    """Content hash of a file or a directory (``hash`` ends in ``.dir``)."""

    hash: str
    size: int
    nfiles: int | None = None

    @property
    def is_dir(self) -> bool:
        return self.hash.endswith(DIR_SUFFIX)


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One file of a directory: path relative to the directory, POSIX."""

    relpath: str
    hash: str
    size: int
    isexec: bool = False


def manifest_digest(entries: tuple[ManifestEntry, ...]) -> str:
    """The directory hash of a manifest (entries already sorted by relpath).

    NUL separates fields and records: it cannot occur in a path.  The
    executable bit is not part of it (DVC's directory hash ignores it too)."""
    digest = xxhash.xxh3_128()
    for entry in entries:
        digest.update(
            f"{entry.relpath}\0{entry.hash}\0{entry.size}\0".encode(
                "utf-8", "surrogateescape"
            )
        )
    return digest.hexdigest() + DIR_SUFFIX


def file_digest(path: str | os.PathLike[str]) -> str:
    """xxh3-128 of a file's bytes (reads it; callers go through the stat cache).

    Read through the descriptor itself: most files hashed are small, and
    ``open()``'s buffered file object cost more than reading them (11 us
    against 5 us a file, 50,000 data files in a first plan)."""
    digest = xxhash.xxh3_128()
    fd = os.open(path, os.O_RDONLY)  # not inherited by commands: Python's default (PEP 446)
    try:
        while chunk := os.read(fd, CHUNK):
            digest.update(chunk)
    finally:
        os.close(fd)
    return digest.hexdigest()


_VANISHED_RETRIES = 3


class _Vanished(Exception):
    """What was being hashed (a file, the directory being walked) was removed meanwhile."""


class Hasher:
    """Hashes root-relative paths, once each per command."""

    def __init__(self, root: Path, statdb: "StatDB | None" = None) -> None:
        self.root = root
        self._prefix = str(root).rstrip("/") + "/"  # cheaper than os.path.join per path
        self.statdb = statdb
        self._hashes: dict[str, HashInfo | None] = {}
        self._manifests: dict[str, tuple[ManifestEntry, ...]] = {}
        # regular files ``refuse_dangling`` found, with what it saw: a plan
        # that ends in a memo signs them with it instead of a second stat
        self.found_regular: dict[str, os.stat_result] = {}
        self.files_read = 0  # how many files had their content read (tests, benchmarks)
        self._ignores: IgnoreTree | None = None  # read at the first directory walk

    @property
    def ignores(self) -> IgnoreTree:
        """The project's ignore files, read once per command."""
        if self._ignores is None:
            self._ignores = IgnoreTree(self.root)
        return self._ignores

    def hash(self, relpath: str) -> HashInfo | None:
        """The hash of ``relpath``, or None when nothing is there."""
        try:
            return self._hashes[relpath]
        except KeyError:
            pass
        info = self._compute(relpath)
        self._hashes[relpath] = info
        return info

    def seen_present(self, relpath: str) -> bool:
        """Whether this command found something at ``relpath`` (hashed it,
        or found it a regular file)."""
        return relpath in self.found_regular or self._hashes.get(relpath) is not None

    def hash_file_anywhere(self, path: Path) -> HashInfo | None:
        """The hash of the file at absolute ``path``: stat-cached inside the
        project, read every time outside it (DVC's cache may live elsewhere)."""
        try:
            relpath = path.relative_to(self.root).as_posix()
        except ValueError:
            try:
                return HashInfo(file_digest(path), os.stat(path).st_size)
            except OSError:
                return None
        return self.hash(relpath)

    def refuse_dangling(self, relpath: str) -> None:
        """Raise what ``hash`` would raise for ``relpath`` (a dangling
        symlink, an unreadable path, one inside a directory), at the cost of
        a stat for a file that is there: nothing is read or looked up."""
        if relpath in self._hashes:
            return
        try:
            st = os.stat(self._prefix + relpath)
        except OSError:
            st = None
        if st is None or not stat_mod.S_ISREG(st.st_mode):
            self.hash(relpath)
        else:
            self.found_regular[relpath] = st

    def hash_out(self, relpath: str) -> HashInfo | None:
        """``hash`` for an output: a dangling link or a link loop there counts
        as missing (the stage makes the output again, or it is restored);
        only a dep that dangles is an error."""
        try:
            return self.hash(relpath)
        except StateError:
            path = self._prefix + relpath
            if os.path.islink(path) and not os.path.exists(path):
                self._hashes[relpath] = None
                return None
            raise

    def manifest(self, relpath: str) -> tuple[ManifestEntry, ...]:
        """The sorted file list of directory ``relpath`` (empty for a file)."""
        info = self.hash(relpath)
        if info is None or not info.is_dir:
            return ()
        return self._manifests[relpath]

    def invalidate(self, relpath: str) -> None:
        """Forget ``relpath``, the directories holding it and, for a directory,
        everything below it: a stage rewrote it."""
        self.found_regular.clear()  # what the plan saw is past
        was_dir = relpath in self._manifests or os.path.isdir(os.path.join(self.root, relpath))
        self._forget(relpath)
        parent = os.path.dirname(relpath)
        while parent:
            self._forget(parent)
            parent = os.path.dirname(parent)
        self._forget(".")
        if was_dir:
            prefix = "" if relpath == "." else relpath + "/"
            for known in [p for p in self._hashes if p.startswith(prefix)]:
                self._forget(known)

    def forget(self, relpath: str) -> None:
        """Drop what is memoised of ``relpath`` alone: nothing will ask for it
        again in this command (a long run keeps memory flat)."""
        self._forget(relpath)

    def _forget(self, relpath: str) -> None:
        self._hashes.pop(relpath, None)
        self._manifests.pop(relpath, None)

    def remember(self, relpath: str, info: HashInfo, manifest: tuple[ManifestEntry, ...] = ()) -> None:
        """Record a hash known without reading (after a checkout from the cache)."""
        self._hashes[relpath] = info
        if info.is_dir:
            self._manifests[relpath] = manifest

    # -- computing ---------------------------------------------------------

    def _compute(self, relpath: str) -> HashInfo | None:
        # A file or directory removed while it is hashed (a run beside this
        # command replacing an output) is looked at again: absent, or as remade.
        for _ in range(_VANISHED_RETRIES):
            try:
                return self._compute_once(relpath)
            except _Vanished:
                continue
        raise StateError(f"cannot read '{relpath}': it kept vanishing while being read")

    def _compute_once(self, relpath: str) -> HashInfo | None:
        path = self._prefix + relpath
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            if os.path.islink(path) and not _links_into_a_cache(path):
                raise StateError(f"'{relpath}' is a dangling symlink (-> {os.readlink(path)})") from None
            return None  # nothing there (a link to a vanished cache object holds nothing either)
        except OSError as exc:
            raise _link_error(relpath, exc) from None
        if stat_mod.S_ISDIR(st.st_mode):
            entries = tuple(self._walk(relpath, path, st))
            self._manifests[relpath] = entries
            return HashInfo(
                hash=manifest_digest(entries),
                size=sum(e.size for e in entries),
                nfiles=len(entries),
            )
        if not stat_mod.S_ISREG(st.st_mode):
            raise StateError(f"'{relpath}' is not a regular file or directory")
        return HashInfo(hash=self._file_hash(relpath, path, st), size=st.st_size)

    def _file_hash(self, relpath: str, path: str, st: os.stat_result) -> str:
        if self.statdb is not None:
            known = self.statdb.lookup(relpath, st)
            if known is not None:
                return known
        try:
            digest = file_digest(path)
        except FileNotFoundError:
            raise _Vanished from None  # removed since its stat: look again
        except OSError as exc:
            raise StateError(f"cannot read '{relpath}': {exc.strerror}") from None
        self.files_read += 1
        if self.statdb is not None:
            self.statdb.store(relpath, st, digest)
        return digest

    def _walk(self, relpath: str, path: str, st: os.stat_result) -> list[ManifestEntry]:
        """Every file below a directory, as DVC walks it: symlinks to files
        count, symlinks to directories are not descended, ignored paths are
        left out."""
        entries: list[ManifestEntry] = []
        base = "" if relpath == "." else relpath + "/"
        at_root = relpath == "."
        ignores = self.ignores
        # the loop below runs once per file: keep lookups local, ask the stat cache directly
        file_hash = self._file_hash
        lookup = self.statdb.lookup if self.statdb is not None else None
        is_reg, is_dir, exec_bit = stat_mod.S_ISREG, stat_mod.S_ISDIR, stat_mod.S_IXUSR
        stack: list[tuple[str, str]] = [(path, "")]  # (directory path, path inside the walked dir)
        while stack:
            directory, inner = stack.pop()
            try:
                with os.scandir(directory) as listing:
                    children = list(listing)
            except FileNotFoundError:
                if not inner:
                    raise _Vanished from None
                continue  # removed meanwhile (a run beside this command): not part of the directory now
            except OSError as exc:
                raise StateError(f"cannot list '{base}{inner}': {exc.strerror}") from None
            skip = _STATE_DIRS if at_root and not inner else ()
            if inner and any(child.name in _NESTED_PROJECT and child.is_dir() for child in children):
                continue  # a project of its own inside this directory: DVC leaves it out too
            chain = ignores.chain((base + inner).rstrip("/"), {child.name for child in children})
            for child in children:
                child_inner = inner + child.name
                if child_inner in skip:
                    continue
                try:
                    child_st = child.stat()  # follows symlinks
                except FileNotFoundError:
                    if not child.is_symlink() or _links_into_a_cache(child.path):
                        continue  # removed meanwhile, or its cache object is gone: the file is missing
                    raise StateError(
                        f"'{base}{child_inner}' is a dangling symlink (-> {os.readlink(child.path)})"
                    ) from None
                except OSError as exc:
                    raise _link_error(base + child_inner, exc) from None
                mode = child_st.st_mode
                if is_reg(mode):
                    child_rel = base + child_inner
                    if chain and is_ignored(chain, child_rel, False):
                        continue
                    digest = lookup(child_rel, child_st) if lookup is not None else None
                    if digest is None:
                        digest = file_hash(child_rel, child.path, child_st)
                    entries.append(ManifestEntry(child_inner, digest, child_st.st_size, bool(mode & exec_bit)))
                elif is_dir(mode):
                    if child.is_symlink():
                        continue  # DVC walks with followlinks=False
                    if chain and is_ignored(chain, base + child_inner, True):
                        continue
                    stack.append((child.path, child_inner + "/"))
        entries.sort(key=attrgetter("relpath"))
        return entries


def _links_into_a_cache(path: str) -> bool:
    """Whether the symlink ``path`` points into pivot's or DVC's cache: a
    checkout placed it, so if it dangles the output is simply gone."""
    try:
        target = os.readlink(path)
    except OSError:
        return False
    return _CACHE_LINK.search(target.replace(os.sep, "/")) is not None


def _link_error(relpath: str, exc: OSError) -> StateError:
    if exc.errno == errno.ELOOP:
        return StateError(f"'{relpath}' is a symlink loop")
    return StateError(f"cannot read '{relpath}': {exc.strerror}")
