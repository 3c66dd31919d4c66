"""The files under ``.pivot/ninja/``, each directory checked once.

``pivot emit ninja`` writes tens of thousands of small files there (output
stamps, fresh markers).  Checking each with ``containment.writable_path``
resolved its parent directory again every time; here each directory is
checked once per command and opened as a directory descriptor, walking its
real path down from the real project root without following symlinks, and
every file is then created, read, replaced and removed relative to that
descriptor, never through a symlink (``O_NOFOLLOW``).  A symlink planted in
``.pivot/ninja/`` -- a directory or a file -- can therefore never carry a
write outside the project: a symlinked directory leading outside is refused
by the check, one planted after it is not followed, and a symlinked file is
replaced or removed, never written through.
"""

from __future__ import annotations

import fcntl
import os
import posixpath
import stat
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Iterator

from pivot import atomic
from pivot.containment import writable_path

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW


class BridgeFiles:
    """Reads and writes of root-relative bridge file paths, through one
    checked directory descriptor per directory.  Use as a context manager
    (the descriptors are closed at the end)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._dirs: dict[str, int] = {}

    def __enter__(self) -> "BridgeFiles":
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()

    def directory(self, relpath: str, *, create: bool = True) -> int | None:
        """The descriptor of directory ``relpath`` (created with its parents
        when missing and ``create``; None when missing otherwise), once it
        is known to lie inside the project."""
        fd = self._dirs.get(relpath)
        if fd is not None:
            return fd
        # The lexical check and the real parent's, with writable_path's
        # messages; then the real path, walked without following symlinks.
        path = writable_path(self.root, f"{relpath}/x", what="Ninja bridge file").parent
        real_root = os.path.realpath(self.root)
        parts = Path(os.path.relpath(os.path.realpath(path), real_root)).parts
        fd = os.open(real_root, _DIRECTORY)
        done = Path(real_root)
        try:
            for part in parts:
                done /= part
                try:
                    child = os.open(part, _DIRECTORY, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        os.close(fd)
                        return None
                    try:
                        os.mkdir(part, dir_fd=fd)
                    except FileExistsError:
                        pass
                    child = os.open(part, _DIRECTORY, dir_fd=fd)
                os.close(fd)
                fd = child
        except OSError as exc:
            os.close(fd)
            exc.filename = str(done)  # the descriptor-relative name alone would not say where
            raise
        except BaseException:
            os.close(fd)
            raise
        self._dirs[relpath] = fd
        return fd

    @contextmanager
    def _naming(self, relpath: str) -> Iterator[None]:
        """An OSError names ``relpath`` (the call itself saw only its last part)."""
        try:
            yield
        except OSError as exc:
            exc.filename, exc.filename2 = str(self.root / relpath), None
            raise

    def _where(self, relpath: str, *, create: bool = True) -> tuple[int | None, str]:
        parent, name = posixpath.split(posixpath.normpath(relpath))
        return self.directory(parent, create=create), name

    def read_text(self, relpath: str) -> str | None:
        """The text of ``relpath``; None when it is missing, not a regular
        file (a symlink is not followed) or not UTF-8."""
        fd, name = self._where(relpath, create=False)
        if fd is None:
            return None
        try:
            handle = os.open(name, os.O_RDONLY | _NOFOLLOW, dir_fd=fd)
        except OSError:
            return None
        try:
            chunks = []
            while chunk := os.read(handle, 65536):
                chunks.append(chunk)
            return b"".join(chunks).decode("utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        finally:
            os.close(handle)

    def write_if_changed(self, relpath: str, text: str) -> bool:
        """Atomically write ``text`` unless ``relpath`` already holds it (its
        mtime is what Ninja looks at).  True when written."""
        if self.read_text(relpath) == text:
            return False
        fd, name = self._where(relpath)
        assert fd is not None
        with self._naming(relpath):
            atomic.write_bytes_at(fd, name, text.encode("utf-8"))
        return True

    def touch(self, relpath: str) -> None:
        """Create ``relpath`` or set its mtime to now; a symlink there is
        replaced by an empty file."""
        handle = self._open_own(relpath, os.O_WRONLY)
        try:
            os.utime(handle)
        finally:
            os.close(handle)

    @contextmanager
    def exclusive(self, relpath: str) -> Iterator[None]:
        """Hold an exclusive ``flock`` on ``relpath`` (created when missing; a
        symlink there is replaced, never followed): one holder at a time
        among the commands Ninja runs side by side."""
        handle = self._open_own(relpath, os.O_RDWR)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)  # the kernel drops it if we die
            yield
        finally:
            os.close(handle)

    def _open_own(self, relpath: str, mode: int) -> int:
        """A descriptor of file ``relpath``, created when missing; a symlink
        planted there is removed and a file of ours created in its place."""
        fd, name = self._where(relpath)
        assert fd is not None
        flags = mode | os.O_CREAT | _NOFOLLOW
        with self._naming(relpath):
            try:
                return os.open(name, flags, 0o666, dir_fd=fd)
            except OSError:
                if not self._is_link(fd, name):
                    raise
                os.unlink(name, dir_fd=fd)
                return os.open(name, flags | os.O_EXCL, 0o666, dir_fd=fd)

    @staticmethod
    def _is_link(fd: int, name: str) -> bool:
        try:
            return stat.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
        except OSError:
            return False

    def set_mtime_ns(self, relpath: str, ns: int) -> None:
        """Set the mtime (and atime) of ``relpath`` itself."""
        fd, name = self._where(relpath)
        with self._naming(relpath):
            os.utime(name, ns=(ns, ns), dir_fd=fd, follow_symlinks=False)

    def exists(self, relpath: str) -> bool:
        fd, name = self._where(relpath, create=False)
        if fd is None:
            return False
        try:
            os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError:
            return False
        return True

    def unlink(self, relpath: str) -> None:
        """Remove ``relpath`` (a symlink itself, never its target) if it is there."""
        fd, name = self._where(relpath, create=False)
        if fd is None:
            return
        try:
            with self._naming(relpath):
                os.unlink(name, dir_fd=fd)
        except FileNotFoundError:
            pass

    def file_names(self, relpath: str) -> list[str]:
        """The names of the regular files and symlinks in directory ``relpath``."""
        fd = self.directory(relpath, create=False)
        if fd is None:
            return []
        with os.scandir(fd) as entries:
            return [e.name for e in entries if not e.is_dir(follow_symlinks=False)]
