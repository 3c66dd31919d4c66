"""Keeping every write inside the project.

pivot runs on cloned repositories, so a path read from a checkout (an out
in a pipeline file, a path in a lock record or a run-cache entry) is data
from someone else.  Before anything is removed, replaced, linked or written
at such a path, ``writable_path`` checks it twice:

- lexically: relative, no ``..`` leaving the root, not the root itself;
- for real: the real path of its parent directory (symlinks resolved) is
  inside the real root, so a committed ``link -> /elsewhere`` cannot carry
  a write outside.  The final component itself may be a symlink: pivot
  replaces or removes the link, never follows it.

Load-time checks (``outside_reason``) give the user an error naming the
pipeline file; ``writable_path`` is the last line of defence in every code
path that touches the disk.
"""

from __future__ import annotations

import os
import re
import posixpath
import stat
from pathlib import Path

from pivot.errors import PivotError


_DRIVE = re.compile(r"[A-Za-z]:[\\/]")  # C:/data, C:\data; a name like `a:b` is a plain relative path


class OutsideProject(PivotError):
    """A path pivot was asked to write would leave the project."""


def outside_reason(relpath: str) -> str | None:
    """Why root-relative POSIX ``relpath`` names no place inside the project
    (absolute, the root itself, or leaving it through ``..``), else None."""
    if not relpath or relpath.startswith("/") or _DRIVE.match(relpath):
        return "it is an absolute path"
    normal = posixpath.normpath(relpath)
    if normal == ".":
        return "it is the project root itself"
    if normal == ".." or normal.startswith("../"):
        return "it is outside the project root"
    return None


def writable_path(root: Path, relpath: str, *, what: str = "output") -> Path:
    """The absolute path of ``relpath`` under ``root``, once it is known that
    writing there stays inside the project; else ``OutsideProject``."""
    reason = outside_reason(relpath)
    if reason is not None:
        raise OutsideProject(f"refusing to write {what} '{relpath}': {reason}")
    path = root / posixpath.normpath(relpath)
    parent = os.path.realpath(path.parent)
    real_root = os.path.realpath(root)
    if parent != real_root and not parent.startswith(real_root.rstrip(os.sep) + os.sep):
        raise OutsideProject(
            f"refusing to write {what} '{relpath}': a symlink on its way leads outside the project "
            f"(to {parent})"
        )
    return path


STATE_SUBDIRS = ("", "locks", "cache", "runcache", "logs", "runs", "ninja", "parser")


def state_dir_escape(root: Path) -> str | None:
    """Why ``<root>/.pivot`` (or a directory of it) cannot hold pivot's state:
    a symlink leading outside the project, as a checkout could commit one so
    that pivot's writes and ``gc``'s deletions land elsewhere.  None if fine."""
    real_root = os.path.realpath(root)
    for sub in STATE_SUBDIRS:
        path = os.path.join(root, ".pivot", sub) if sub else os.path.join(root, ".pivot")
        if not os.path.islink(path) and not (sub == "" or os.path.islink(os.path.dirname(path))):
            continue
        real = os.path.realpath(path)
        if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
            shown = ".pivot" + (f"/{sub}" if sub else "")
            return f"'{shown}' leads outside the project (to {real}); pivot keeps its state inside the project"
    return None


def is_inside(root: Path, relpath: str) -> bool:
    try:
        writable_path(root, relpath)
    except OutsideProject:
        return False
    return True


class RealParents:
    """Whether a symlinked directory on the way to a path leads outside the
    real root, for many paths at once: each directory is ``lstat``-ed once
    and only symlinks are resolved, so checking every out of a large
    pipeline costs one system call per distinct directory."""

    def __init__(self, root: Path) -> None:
        self.root = str(root).rstrip(os.sep) or os.sep
        self.real_root = os.path.realpath(root)
        self._escapes: dict[str, str | None] = {"": None}  # directory relpath -> real path outside, or None

    def escape(self, relpath: str) -> str | None:
        """The real path outside the project that the parent directory of
        normalised root-relative ``relpath`` leads to, else None."""
        return self.dir_escape(relpath.rpartition("/")[0])

    def dir_escape(self, directory: str) -> str | None:
        """Like :meth:`escape`, for the directory ``directory`` itself."""
        known = self._escapes.get(directory)
        if known is not None or directory in self._escapes:
            return known
        parts = directory.split("/")
        escape: str | None = None
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            if prefix in self._escapes:
                escape = self._escapes[prefix]
            elif escape is None:
                escape = self._escapes[prefix] = self._symlink_escape(prefix)
            else:
                self._escapes[prefix] = escape  # below a directory that already left
        return escape

    def link_escape(self, relpath: str, allowed: str | None = None) -> str | None:
        """The real path outside the project that ``relpath`` itself leads
        to when it is a symlink, else None.  A link into the real directory
        ``allowed`` (pivot's cache, wherever it lives) is fine."""
        real = self._symlink_escape(relpath)
        if real is None or allowed is None:
            return real
        return None if real.startswith(allowed.rstrip(os.sep) + os.sep) else real

    def _symlink_escape(self, prefix: str) -> str | None:
        full = f"{self.root}/{prefix}" if self.root != os.sep else f"/{prefix}"
        try:
            if not stat.S_ISLNK(os.lstat(full).st_mode):
                return None
        except OSError:  # absent (made later, by the stage) or unreadable
            return None
        real = os.path.realpath(full)
        if real == self.real_root or real.startswith(self.real_root.rstrip(os.sep) + os.sep):
            return None
        return real
