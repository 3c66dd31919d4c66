"""The content-addressed cache under ``.pivot/cache/``.

Objects live at ``.pivot/cache/files/<hash[:2]>/<hash[2:]>``; a directory is
its files' objects plus a manifest object (its hash ends in ``.dir``; JSON
list of ``{"relpath", "hash", "size", "isexec"}``).  Objects are read-only
and are written by copying bytes into a temporary file inside the cache and
renaming it, so the cache never holds a link back to the workspace (a
symlinked workspace file is read through, never linked).

How the workspace gets files back (``checkout``) is the link mode, from
``PIVOT_CACHE_TYPE`` or ``.pivot/config``::

    [cache]
    type = copy        # copy (default), reflink, hardlink or symlink
"""

from __future__ import annotations

import enum
import errno
import json
import os
import re
import stat as stat_mod
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from pivot import atomic
from pivot.containment import writable_path
from pivot.errors import StateError
from pivot.state.hashing import CHUNK, DIGEST_PATTERN, HashInfo, Hasher, ManifestEntry, manifest_digest

OBJECT_MODE = 0o444


class CorruptObject(StateError):
    """A cache object whose content does not match its name; it was removed."""


def valid_digest(digest: object) -> bool:
    return isinstance(digest, str) and DIGEST_PATTERN.fullmatch(digest) is not None


def valid_relpath(relpath: object) -> bool:
    """A normalised relative POSIX path: no empty, ``.`` or ``..`` part, not absolute."""
    if not isinstance(relpath, str) or not relpath or relpath.startswith("/") or "\0" in relpath:
        return False
    return all(part not in ("", ".", "..") for part in relpath.split("/"))


class LinkMode(enum.Enum):
    """How checkout places a cached file in the workspace."""

    COPY = "copy"
    REFLINK = "reflink"  # copy-on-write clone; falls back to copy
    HARDLINK = "hardlink"  # read-only in the workspace
    SYMLINK = "symlink"  # read-only in the workspace

    @classmethod
    def configured(cls, state_dir: Path) -> "LinkMode":
        """``PIVOT_CACHE_TYPE``, else ``[cache] type`` of ``.pivot/config``, else copy."""
        value = os.environ.get("PIVOT_CACHE_TYPE")
        source = "PIVOT_CACHE_TYPE"
        if not value:
            config_path = state_dir / "config"
            if not config_path.is_file():
                return cls.COPY
            import configparser  # only when a config file exists

            parser = configparser.ConfigParser()
            try:
                parser.read(config_path, encoding="utf-8")
            except configparser.Error as exc:
                raise StateError(f"'.pivot/config' is invalid: {exc}") from None
            value = parser.get("cache", "type", fallback="copy")
            source = "'.pivot/config' [cache] type"
        try:
            return cls(value.strip().lower())
        except ValueError:
            choices = ", ".join(mode.value for mode in cls)
            raise StateError(f"{source}: unknown cache type '{value}' (choose from {choices})") from None


class Cache:
    """Saves outputs by content hash and restores them into the workspace."""

    def __init__(self, root: Path, cache_dir: Path, hasher: Hasher, mode: LinkMode = LinkMode.COPY) -> None:
        self.root = root
        self.dir = cache_dir
        self.objects = cache_dir / "files"
        self._objects_str = str(self.objects)
        self.hasher = hasher
        self.mode = mode
        self._present: set[str] = set()  # digests known to be in the cache (this command)
        self._asked: set[str] = set()  # object directories (digest[:2]) asked about once
        self._listed: set[str] = set()  # object directories listed into _present

    def object_path(self, digest: str) -> Path:
        return self.objects / digest[:2] / digest[2:]

    # -- saving ----------------------------------------------------------------

    def save(self, relpath: str, info: HashInfo) -> None:
        """Store ``relpath`` (whose current hash is ``info``); idempotent."""
        source = self.root / relpath
        if not info.is_dir:
            self._save_file(source, info.hash, info.size)
            return
        entries = self.hasher.manifest(relpath)
        for entry in entries:
            self._save_file(source / entry.relpath, entry.hash, entry.size)
        manifest = json.dumps(
            [{"relpath": e.relpath, "hash": e.hash, "size": e.size, "isexec": e.isexec} for e in entries],
            separators=(",", ":"),
        ).encode("utf-8", "surrogateescape")
        self._write_object(info.hash, lambda tmp: Path(tmp).write_bytes(manifest))

    def _save_file(self, source: Path, digest: str, size: int) -> None:
        if self.has_object(digest):
            if _size(self.object_path(digest)) == size:
                return
            self._drop(digest)  # damaged (appended to, truncated): replace it
        self._write_object(digest, lambda tmp: _copy_bytes(source, tmp, self.mode))

    def _drop(self, digest: str) -> None:
        """Remove a damaged object."""
        _unlink_quietly(self.object_path(digest))
        self._present.discard(digest)

    def _write_object(self, digest: str, fill) -> None:
        target = self.object_path(digest)
        if target.exists():
            self._present.add(digest)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            # the atomic writer's temporary name: the one `pivot gc` sweeps
            with atomic.replacing(target) as tmp:
                fill(str(tmp))
                os.chmod(tmp, OBJECT_MODE)
        except OSError as exc:
            raise StateError(f"cannot save to the cache ({target}): {exc.strerror or exc}") from None
        self._present.add(digest)

    def relink(self, relpath: str, info: HashInfo) -> None:
        """After ``save``: in hardlink and symlink mode, make the workspace
        copy of ``relpath`` a read-only link to its object, as a checkout
        would leave it.  Files already linked are left alone (saving again
        rewrites nothing).  Copy mode keeps the file; so does reflink mode,
        where ``save`` already cloned the object from it."""
        if self.mode not in (LinkMode.HARDLINK, LinkMode.SYMLINK):
            return
        target = writable_path(self.root, relpath)
        if not info.is_dir:
            sweep_temps(writable_path(self.root, relpath))
            self._relink_file(target, info.hash, _is_exec(target))
            return
        sweep_temps_below(writable_path(self.root, relpath))
        for entry in self.hasher.manifest(relpath):
            self._relink_file(target / entry.relpath, entry.hash, entry.isexec)

    def _relink_file(self, path: Path, digest: str, isexec: bool) -> None:
        # a link would carry the object's mode (0444): executables stay copies
        obj = self.object_path(digest)
        if isexec or _same_file(path, obj):
            return
        try:
            with _writable(path.parent):
                self._link_into(obj, path)
        except OSError:
            pass  # linking is only a saving: the workspace keeps its copy

    def _link_into(self, obj: Path, path: Path) -> None:
        tmp = _temp_name(path)
        try:
            if self.mode is LinkMode.HARDLINK:
                if not _try(os.link, obj, tmp):
                    return  # another device: the copy stays
            else:
                os.symlink(_link_target(obj, path, self.root), tmp)
            os.replace(tmp, path)
        except BaseException:
            _unlink_quietly(tmp)
            raise

    # -- queries -------------------------------------------------------------

    def has_object(self, digest: str) -> bool:
        """Whether the object file ``digest`` is in the cache (a manifest's
        files are not looked at: see ``contains``)."""
        if digest in self._present:
            return True
        prefix = digest[:2]
        if prefix not in self._listed:
            if prefix in self._asked:
                # the second object asked for in this directory: list it once
                # (at 20,000 objects, 256 listings instead of 20,000 stats)
                self._list(prefix)
                if digest in self._present:
                    return True
            else:
                self._asked.add(prefix)
        # not listed yet, or added since the listing (by another command)
        if os.path.isfile(f"{self._objects_str}/{prefix}/{digest[2:]}"):
            self._present.add(digest)
            return True
        return False

    def _list(self, prefix: str) -> None:
        self._listed.add(prefix)
        try:
            with os.scandir(f"{self._objects_str}/{prefix}") as listing:
                self._present.update(prefix + entry.name for entry in listing if entry.is_file())
        except OSError:  # absent or unreadable: each object is looked for on its own
            pass

    def contains(self, info: HashInfo) -> bool:
        """Whether everything needed to restore ``info`` is in the cache."""
        if not self.has_object(info.hash):
            return False
        if not info.is_dir:
            return True
        entries = self.load_manifest(info.hash)
        return entries is not None and all(self.has_object(e.hash) for e in entries)

    def load_manifest(self, digest: str) -> tuple[ManifestEntry, ...] | None:
        """The manifest object ``digest``; None when absent or damaged (a
        damaged one -- bad JSON, an unsafe relpath, a bad hash -- with a
        warning naming the object)."""
        path = self.object_path(digest)
        try:
            raw = path.read_bytes()
        except OSError:
            return None
        try:
            entries = tuple(
                ManifestEntry(relpath=e["relpath"], hash=e["hash"], size=e["size"], isexec=e["isexec"])
                for e in json.loads(raw)
            )
        except (ValueError, KeyError, TypeError) as exc:
            return self._bad_manifest(path, f"not a manifest: {exc}")
        for entry in entries:
            if not valid_relpath(entry.relpath):
                return self._bad_manifest(path, f"unsafe path {entry.relpath!r}")
            if not valid_digest(entry.hash) or entry.hash.endswith(".dir"):
                return self._bad_manifest(path, f"bad hash {entry.hash!r} for {entry.relpath!r}")
        return entries

    def _bad_manifest(self, path: Path, why: str) -> None:
        from pivot.state.notices import warn

        warn(f"cache manifest '{self._show(path)}' is corrupt ({why}); ignoring it")
        return None

    def _show(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    # -- checkout ------------------------------------------------------------

    def checkout(self, relpath: str, info: HashInfo) -> None:
        """Make ``relpath`` hold ``info`` again, replacing whatever is there
        (read-only files and links included).  Every object placed is
        verified against its name as it is copied or linked: a damaged one is
        removed and ``CorruptObject`` raised (the output is then missing)."""
        if not valid_digest(info.hash):
            raise StateError(f"cannot restore '{relpath}': {info.hash!r} is not a cache hash")
        if not self.contains(info):
            raise StateError(f"cannot restore '{relpath}': it is not in the cache")
        target = writable_path(self.root, relpath)
        try:
            # what a checkout killed mid-copy left beside the output (inside a
            # directory output, the removal below takes care of it)
            sweep_temps(writable_path(self.root, relpath))
            if info.is_dir:
                entries = self.load_manifest(info.hash) or ()
                if manifest_digest(entries) != info.hash:
                    self._corrupt(info.hash, relpath)
                _remove(target)
                target.mkdir(parents=True, exist_ok=True)
                for entry in entries:
                    self._place(entry.hash, target / entry.relpath, entry.isexec, f"{relpath}/{entry.relpath}")
            else:
                _remove(target)
                self._place(info.hash, target, False, relpath)
        finally:
            self.hasher.invalidate(relpath)

    def _corrupt(self, digest: str, relpath: str) -> None:
        self._drop(digest)
        raise CorruptObject(
            f"corrupted cache object {self._show(self.object_path(digest))} (for '{relpath}') removed"
        )

    def _place(self, digest: str, target: Path, isexec: bool, relpath: str) -> None:
        obj = self.object_path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temp_name(target)
        try:
            if isexec or self.mode in (LinkMode.COPY, LinkMode.REFLINK):
                # a link would carry the object's mode (0444): executables are copies
                placed = _copy_bytes(obj, tmp, self.mode, verify=True)
                os.chmod(tmp, 0o755 if isexec else 0o644)
            else:
                placed = _digest_of(obj)
                if placed == digest:
                    if self.mode is LinkMode.SYMLINK:
                        os.symlink(_link_target(obj, target, self.root), tmp)
                    elif not _try(os.link, obj, tmp):
                        _copy_bytes(obj, tmp, self.mode)
                        os.chmod(tmp, 0o644)
            if placed != digest:
                _unlink_quietly(tmp)
                self._corrupt(digest, relpath)
            os.replace(tmp, target)
        except BaseException:
            _unlink_quietly(tmp)
            raise

    def iter_objects(self) -> Iterable[Path]:
        if self.objects.is_dir():
            # a digest never starts with '.': those are temporary files of writes
            yield from (p for p in self.objects.glob("*/*") if not p.name.startswith("."))


def _copy_bytes(source: Path | str, target: str, mode: LinkMode, *, verify: bool = False) -> str | None:
    """Copy file contents (a clone when reflinks are asked for and possible).
    ``source`` is opened, so a symlink is read through, never copied as a link.
    With ``verify``, returns the xxh3-128 of what was copied (a clone is
    read back once; a copy is hashed as it goes)."""
    import xxhash

    digest = xxhash.xxh3_128() if verify else None
    with open(source, "rb") as src, open(target, "wb") as dst:
        if mode is LinkMode.REFLINK and _reflink(src.fileno(), dst.fileno()):
            return _digest_of(source) if verify else None
        while chunk := src.read(CHUNK):
            dst.write(chunk)
            if digest is not None:
                digest.update(chunk)
    return digest.hexdigest() if digest is not None else None


def _digest_of(path: Path | str) -> str:
    from pivot.state.hashing import file_digest

    return file_digest(path)


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def _link_target(obj: Path, link: Path, root: Path) -> str:
    """What a symlink at ``link`` to ``obj`` holds: relative when the object
    and the link both lie in the project (a moved project keeps working),
    absolute when the cache is elsewhere."""
    real_obj = os.path.realpath(obj)
    real_dir = os.path.realpath(link.parent)
    real_root = os.path.realpath(root)
    if os.path.commonpath([real_obj, real_dir, real_root]) == real_root:
        return os.path.relpath(real_obj, real_dir)
    return real_obj


@contextmanager
def _writable(directory: Path) -> Iterator[None]:
    """Make ``directory`` writable for the block, if it is not, and put its
    mode back afterwards (a command may leave its output directory read-only)."""
    try:
        mode = stat_mod.S_IMODE(os.stat(directory).st_mode)
    except OSError:
        yield
        return
    if os.access(directory, os.W_OK | os.X_OK):
        yield
        return
    os.chmod(directory, mode | stat_mod.S_IWUSR | stat_mod.S_IXUSR)
    try:
        yield
    finally:
        os.chmod(directory, mode)


def _reflink(src_fd: int, dst_fd: int) -> bool:
    try:
        import fcntl

        FICLONE = 0x40049409  # Linux ioctl; other systems copy
        fcntl.ioctl(dst_fd, FICLONE, src_fd)
        return True
    except (OSError, ImportError):
        return False


def _is_exec(path: Path) -> bool:
    try:
        return bool(os.stat(path).st_mode & stat_mod.S_IXUSR)
    except OSError:
        return False


def _same_file(path: Path, obj: Path) -> bool:
    """Whether ``path`` already is ``obj`` (a hard link or a symlink to it)."""
    try:
        return os.path.samefile(path, obj)
    except OSError:
        return False


# Temporary names beside a placed output: ``.NAME.pivot-XXXXXXXX`` (NAME the
# output's file name, cut to 200 bytes; XXXXXXXX from ``tempfile``).  A
# ``kill -9`` while a file is placed leaves one behind; the next placement of
# that output sweeps it, and ``pivot gc`` may sweep any with ``is_temp_name``.
TEMP_INFIX = ".pivot-"
_TEMP_RANDOM = re.compile(r"[a-z0-9_]{8}")
_TEMP_STEM_BYTES = 200


def _temp_stem(name: str) -> str:
    """``.NAME``, cut so that the whole temporary name fits in 255 bytes."""
    encoded = os.fsencode(name)
    if len(encoded) > _TEMP_STEM_BYTES:
        name = os.fsdecode(encoded[:_TEMP_STEM_BYTES])
    return f".{name}"


def is_temp_name(name: str, target_name: str | None = None) -> bool:
    """Whether file name ``name`` is one of pivot's temporary names for
    placing an output (for the output named ``target_name``, when given)."""
    if not name.startswith(".") or len(name) < len(TEMP_INFIX) + 10:
        return False
    stem, infix, random = name[:-15], name[-15:-8], name[-8:]
    if infix != TEMP_INFIX or _TEMP_RANDOM.fullmatch(random) is None or len(stem) < 2:
        return False
    return target_name is None or stem == _temp_stem(target_name)


def sweep_temps(target: Path) -> None:
    """Remove what a killed placement of ``target`` left beside it."""
    prefix = f"{_temp_stem(target.name)}{TEMP_INFIX}"
    try:
        names = os.listdir(target.parent)
    except OSError:
        return
    for name in names:
        if name.startswith(prefix) and is_temp_name(name, target.name):
            _unlink_leftover(target.parent / name)


def sweep_temps_below(top: Path) -> None:
    """Remove pivot's temporary names anywhere inside directory ``top``
    (links to directories, ``top`` included, are not followed)."""
    if os.path.islink(top):
        return
    for dirpath, _, filenames in os.walk(top):
        for name in filenames:
            if is_temp_name(name):
                _unlink_leftover(Path(dirpath, name))


def _unlink_leftover(path: Path) -> None:
    """Best effort: a leftover that cannot go (a read-only directory) only
    stays, as it would have without the sweep."""
    try:
        os.unlink(path)
    except OSError:
        pass


def _temp_name(target: Path) -> str:
    """A free name beside ``target`` (the caller creates it)."""
    import tempfile  # imported where writes happen: cheap no-op commands
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f"{_temp_stem(target.name)}{TEMP_INFIX}")
    os.close(fd)
    os.unlink(tmp)
    return tmp


def _try(func, *args) -> bool:
    try:
        func(*args)
        return True
    except OSError as exc:
        if exc.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            return False
        raise


def _remove(path: Path) -> None:
    """Delete a file, link or directory, read-only ones included."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        import shutil

        def make_writable_and_retry(func, failed, *_exc) -> None:
            parent = os.path.dirname(failed)
            os.chmod(parent, os.stat(parent).st_mode | stat_mod.S_IWUSR)
            func(failed)

        if sys.version_info >= (3, 12):
            shutil.rmtree(path, onexc=make_writable_and_retry)
        else:
            shutil.rmtree(path, onerror=make_writable_and_retry)


def _unlink_quietly(path: str | os.PathLike[str]) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
