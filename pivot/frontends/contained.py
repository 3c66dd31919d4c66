"""Refusing, at load time, stages that would write outside the project.

A pipeline file comes with the checkout, so its outs are someone else's
data.  Like DVC, pivot refuses an out (outs, metrics, plots) that is
absolute outside the root, is the root itself or leaves it through ``..``,
and a ``wdir`` outside the root; also an out whose parent directory is
(or lies under) a symlink leading outside the real root, and an out that is
itself a symlink leading outside (other than into pivot's cache): it would
be hashed and cached through the link, its content read from outside.  (Outs inside
``.git``, ``.dvc``, ``.pivot`` or holding pipeline files are refused by
:mod:`pivot.graph`.)  Deps may be anywhere: reading a shared
file next to the project is ordinary (``deps: [../shared.txt]``).

The same check runs on a freshly loaded pipeline and on one taken from
the pipeline cache, so a cached pipeline can never bypass it.  It is the
first line of defence; every writer checks again at write time
(:func:`pivot.containment.writable_path`).
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import Iterable

from pivot.containment import RealParents, outside_reason
from pivot.errors import PipelineError
from pivot.ir import Out, Stage

_SECTION = {"out": "output", "metric": "metric", "plot": "plot"}


def refuse_outside(root: Path, stages: Iterable[Stage], *, out_links: bool = True) -> None:
    """PipelineError naming the file, stage and path of the first out or
    wdir of ``stages`` that leaves the project (see the module docstring).

    ``out_links``: also look at every out for a symlink leading outside
    (an ``lstat`` each, or a listing of a directory holding many).  Noise
    beside parsing the pipeline but not beside taking it from the cache; a
    cached pipeline was checked so when it was loaded, and writers never
    follow such a link."""
    parents = _LazyParents(root)
    cache = _LazyRealPath(root / ".pivot" / "cache")  # outs linked into the cache (symlink mode) are fine
    links = _Links(root)
    inside: set[str] = set()  # parent directories already known to stay inside
    wdirs_inside: set[str] = {"."}  # (thousands of stages share a few wdirs)
    for stage in stages:
        if stage.wdir not in wdirs_inside:
            reason = _wdir_reason(stage.wdir)
            if reason is None:
                real = parents.get().dir_escape(stage.wdir)
                if real is not None:
                    reason = f"it leads through a symlink to '{real}', outside the project"
            if reason is not None:
                raise _refused(stage, "wdir", f"'{stage.wdir}'", reason)
            wdirs_inside.add(stage.wdir)
        for out in stage.outs:
            path = out.path
            # Inline fast path (pipelines have thousands of outs): relative,
            # no drive, no component starting with a dot, so no '.' or '..'.
            if path and path[0] not in "/." and "/." not in path and path[1:2] != ":":
                parent = path.rpartition("/")[0]
                reason = None
            else:
                path = posixpath.normpath(path)
                parent = posixpath.dirname(path)
                reason = outside_reason(path)
            if reason is None and parent not in inside:
                real = parents.get().dir_escape(parent)
                if real is not None:
                    reason = f"a symlinked directory on its way leads to '{real}', outside the project"
                else:
                    inside.add(parent)
            if reason is None and not out_links:
                continue
            if reason is None:
                # An out that is itself a link to outside would be hashed and
                # cached through the link: its content read from outside.
                if not links.may_be_link(path, parent):
                    continue
                real = parents.get().link_escape(path, cache.get())
                if real is None:
                    continue
                reason = f"it is a symlink to '{real}', outside the project"
            if out.def_path.startswith("/") and reason == "it is outside the project root":
                reason = "it is an absolute path outside the project"
            raise _refused(stage, _SECTION[out.kind.value], _shown(out), reason)


class _LazyParents:
    """A :class:`RealParents` made when first needed (it resolves the root)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._parents: RealParents | None = None

    def get(self) -> RealParents:
        if self._parents is None:
            self._parents = RealParents(self.root)
        return self._parents


class _Links:
    """Which outs may be symlinks, asked a directory at a time: after a few
    outs in the same directory it is listed once (the entry types come with
    the listing), instead of one ``lstat`` an out -- a fresh Pivotfile of
    100,000 outputs in two directories costs two listings."""

    _LIST_AFTER = 8  # outs in one directory before it is listed: a big directory holding one out is not

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self._seen: dict[str, int] = {}
        self._links: dict[str, frozenset[str] | None] = {}  # directory -> names of the symlinks in it

    def may_be_link(self, path: str, parent: str) -> bool:
        links = self._links.get(parent)
        if links is None and parent not in self._links:
            seen = self._seen[parent] = self._seen.get(parent, 0) + 1
            if seen < self._LIST_AFTER:
                return True  # asked with an lstat of its own
            links = self._links[parent] = self._list(parent)
        if links is None:
            return True  # the directory could not be listed: ask each out
        return path.rpartition("/")[2] in links

    def _list(self, parent: str) -> frozenset[str] | None:
        try:
            with os.scandir(f"{self.root}/{parent}" if parent else self.root) as listing:
                return frozenset(entry.name for entry in listing if entry.is_symlink())
        except (FileNotFoundError, NotADirectoryError):
            return frozenset()  # no directory yet: nothing in it is a link
        except OSError:
            return None


class _LazyRealPath:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._real: str | None = None

    def get(self) -> str:
        if self._real is None:
            self._real = os.path.realpath(self.path)
        return self._real


def _wdir_reason(wdir: str) -> str | None:
    if wdir.startswith("/") or (len(wdir) > 1 and wdir[1] == ":"):
        return "it is an absolute path"
    reason = outside_reason(wdir)
    return None if reason == "it is the project root itself" else reason


def _shown(out: Out) -> str:
    """The path as written, and where it lands when that differs."""
    if out.def_path == out.path or out.def_path.startswith("/"):
        return f"'{out.def_path}'"
    return f"'{out.def_path}' (resolves to '{out.path}')"


def _refused(stage: Stage, what: str, path: str, reason: str) -> PipelineError:
    where = str(stage.location) if stage.location is not None else stage.file
    return PipelineError(
        f"{where}: stage '{stage.name}': refusing {what} {path}: {reason}"
        " (outputs and wdir must stay inside the project)"
    )
