"""Atomic file writes: a reader sees the old file or the new one, never half.

Every file pivot keeps for itself -- lock records, run-cache entries, cache
objects, Ninja bridge stamps, the pipeline, params and parser caches -- is
written here.  The data goes to a temporary file beside the target (same
filesystem), which then replaces the target with ``os.replace``; on any
failure the temporary file is removed and the target is untouched.

The temporary name is ``.<name>.<pid>-<token>.tmp`` (``is_temp_name``
recognises it): a writer killed between creating it and the rename leaves
it behind, and ``pivot gc`` removes such debris (see ``pivot.state.gc``).
The random token keeps two processes with the same pid (containers sharing
a volume) from ever choosing the same name.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

TEMP_SUFFIX = ".tmp"
# ``.<name>.<pid>-<token>.tmp``; ``<token>`` is hex (earlier pivots wrote the
# thread id there, in decimal: their leftovers match too).
_TEMP_NAME = re.compile(r"\..+\.[0-9]+-[0-9a-f]+\.tmp\Z", re.DOTALL)
# File names are limited to 255 bytes; the target's name is only a hint.
_MAX_HINT_BYTES = 200


def temp_path(path: str | os.PathLike[str]) -> Path:
    """A fresh temporary name beside ``path`` (nothing is created)."""
    path = Path(path)
    hint = path.name.encode("utf-8", "surrogateescape")[:_MAX_HINT_BYTES].decode("utf-8", "ignore")
    return path.with_name(f".{hint}.{os.getpid()}-{os.urandom(4).hex()}{TEMP_SUFFIX}")


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is a temporary file of this writer."""
    return _TEMP_NAME.match(name) is not None


@contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary name beside ``path`` for the caller to create and
    fill (a copy, a clone, a file a library writes itself); on success it
    replaces ``path``, on any error it is removed."""
    tmp = temp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


@contextmanager
def writing(path: str | os.PathLike[str], *, mode: int = 0o666) -> Iterator[BinaryIO]:
    """A binary handle whose content replaces ``path`` when the block ends
    without error (for writers that stream, such as ``pickle.dump``);
    ``mode`` is filtered by the umask."""
    with replacing(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as handle:
            yield handle


def write_bytes(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o666) -> None:
    """Replace ``path`` with ``data``; ``mode`` is filtered by the umask."""
    with writing(path, mode=mode) as handle:
        handle.write(data)


def write_bytes_at(dir_fd: int, name: str, data: bytes, *, mode: int = 0o666) -> None:
    """Replace ``name`` in the directory open as ``dir_fd`` with ``data``,
    never through a symlink: the temporary file is created with
    ``O_NOFOLLOW``, and a symlink at ``name`` is replaced, not followed."""
    tmp = temp_path(name).name
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode, dir_fd=dir_fd)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass
        raise


def write_text(path: str | os.PathLike[str], text: str, *, mode: int = 0o666) -> None:
    """Replace ``path`` with ``text`` (UTF-8, newlines as given)."""
    write_bytes(path, text.encode("utf-8"), mode=mode)
