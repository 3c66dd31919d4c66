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
import stat as stat_mod
import sys
from pathlib import Path
from typing import Iterable

from pivot.errors import StateError
from pivot.state.hashing import HashInfo, Hasher, ManifestEntry

OBJECT_MODE = 0o444


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
        self._present: set[str] = set()

    def object_path(self, digest: str) -> Path:
        return self.objects / digest[:2] / digest[2:]

    # -- saving ----------------------------------------------------------------

    def save(self, relpath: str, info: HashInfo) -> None:
        """Store ``relpath`` (whose current hash is ``info``); idempotent."""
        source = self.root / relpath
        if not info.is_dir:
            self._save_file(source, info.hash)
            return
        entries = self.hasher.manifest(relpath)
        for entry in entries:
            self._save_file(source / entry.relpath, entry.hash)
        manifest = json.dumps(
            [{"relpath": e.relpath, "hash": e.hash, "size": e.size, "isexec": e.isexec} for e in entries],
            separators=(",", ":"),
        ).encode("utf-8", "surrogateescape")
        self._write_object(info.hash, lambda tmp: Path(tmp).write_bytes(manifest))

    def _save_file(self, source: Path, digest: str) -> None:
        if self._has_object(digest):
            return
        self._write_object(digest, lambda tmp: _copy_bytes(source, tmp, self.mode))

    def _write_object(self, digest: str, fill) -> None:
        target = self.object_path(digest)
        if target.exists():
            self._present.add(digest)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        import tempfile  # imported where writes happen: cheap no-op commands
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        os.close(fd)
        try:
            fill(tmp)
            os.chmod(tmp, OBJECT_MODE)
            os.replace(tmp, target)
        except OSError as exc:
            _unlink_quietly(tmp)
            raise StateError(f"cannot save to the cache ({target}): {exc.strerror or exc}") from None
        except BaseException:
            _unlink_quietly(tmp)
            raise
        self._present.add(digest)

    def relink(self, relpath: str, info: HashInfo) -> None:
        """After ``save``: in hardlink and symlink mode, make the workspace
        copy of ``relpath`` a read-only link to its object, as a checkout
        would leave it.  Files already linked are left alone (saving again
        rewrites nothing).  Copy mode keeps the file; so does reflink mode,
        where ``save`` already cloned the object from it."""
        if self.mode not in (LinkMode.HARDLINK, LinkMode.SYMLINK):
            return
        target = self.root / relpath
        if not info.is_dir:
            self._relink_file(target, info.hash, _is_exec(target))
            return
        for entry in self.hasher.manifest(relpath):
            self._relink_file(target / entry.relpath, entry.hash, entry.isexec)

    def _relink_file(self, path: Path, digest: str, isexec: bool) -> None:
        # a link would carry the object's mode (0444): executables stay copies
        obj = self.object_path(digest)
        if isexec or _same_file(path, obj):
            return
        tmp = _temp_name(path)
        try:
            if self.mode is LinkMode.HARDLINK:
                if not _try(os.link, obj, tmp):
                    return  # another device: the copy stays
            else:
                os.symlink(obj.resolve(), tmp)
            os.replace(tmp, path)
        except BaseException:
            _unlink_quietly(tmp)
            raise

    # -- queries -------------------------------------------------------------

    def _has_object(self, digest: str) -> bool:
        if digest in self._present:
            return True
        if os.path.isfile(f"{self._objects_str}/{digest[:2]}/{digest[2:]}"):
            self._present.add(digest)
            return True
        return False

    def contains(self, info: HashInfo) -> bool:
        """Whether everything needed to restore ``info`` is in the cache."""
        if not self._has_object(info.hash):
            return False
        if not info.is_dir:
            return True
        entries = self.load_manifest(info.hash)
        return entries is not None and all(self._has_object(e.hash) for e in entries)

    def load_manifest(self, digest: str) -> tuple[ManifestEntry, ...] | None:
        try:
            data = json.loads(self.object_path(digest).read_bytes())
            return tuple(
                ManifestEntry(relpath=e["relpath"], hash=e["hash"], size=e["size"], isexec=e["isexec"])
                for e in data
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    # -- checkout ------------------------------------------------------------

    def checkout(self, relpath: str, info: HashInfo) -> None:
        """Make ``relpath`` hold ``info`` again, replacing whatever is there
        (read-only files and links included)."""
        if not self.contains(info):
            raise StateError(f"cannot restore '{relpath}': it is not in the cache")
        target = self.root / relpath
        if info.is_dir:
            entries = self.load_manifest(info.hash) or ()
            _remove(target)
            target.mkdir(parents=True, exist_ok=True)
            for entry in entries:
                self._place(self.object_path(entry.hash), target / entry.relpath, entry.isexec)
            self.hasher.invalidate(relpath)
            return
        _remove(target)
        self._place(self.object_path(info.hash), target, False)
        self.hasher.invalidate(relpath)

    def _place(self, obj: Path, target: Path, isexec: bool) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        import tempfile  # imported where writes happen: cheap no-op commands
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.pivot-")
        os.close(fd)
        os.unlink(tmp)
        try:
            if isexec:  # a link would carry the object's mode (0444)
                _copy_bytes(obj, tmp, self.mode)
                os.chmod(tmp, 0o755)
            elif self.mode is LinkMode.HARDLINK and _try(os.link, obj, tmp):
                pass
            elif self.mode is LinkMode.SYMLINK:
                os.symlink(obj.resolve(), tmp)
            else:
                _copy_bytes(obj, tmp, self.mode)
                os.chmod(tmp, 0o755 if isexec else 0o644)
            os.replace(tmp, target)
        except BaseException:
            _unlink_quietly(tmp)
            raise

    def iter_objects(self) -> Iterable[Path]:
        if self.objects.is_dir():
            yield from (p for p in self.objects.glob("*/*") if not p.name.startswith(".tmp-"))


def _copy_bytes(source: Path | str, target: str, mode: LinkMode) -> None:
    """Copy file contents (a clone when reflinks are asked for and possible).
    ``source`` is opened, so a symlink is read through, never copied as a link."""
    with open(source, "rb") as src, open(target, "wb") as dst:
        if mode is LinkMode.REFLINK and _reflink(src.fileno(), dst.fileno()):
            return
        import shutil  # imported where writes happen: cheap no-op commands
        shutil.copyfileobj(src, dst, 1 << 20)


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


def _temp_name(target: Path) -> str:
    """A free name beside ``target`` (the caller creates it)."""
    import tempfile  # imported where writes happen: cheap no-op commands
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.pivot-")
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
