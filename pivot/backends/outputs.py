"""Getting a stage's outputs ready before its commands run.

Outputs are removed first (DVC does the same) so a stage never sees last
run's results, unless they are ``persist: true``: those are kept but
"unprotected" -- a link into the cache, or a read-only file, becomes a
private writable copy, so appending to it can never corrupt the cache.

Removal never changes the mode of a *file*: with hardlinked checkouts the
file shares its inode (and mode) with the cache object.  Only directories
are made writable, which is all ``unlink`` needs.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pivot.containment import writable_path
from pivot.errors import PivotError
from pivot.ir import Stage

if TYPE_CHECKING:
    from pivot.state import State
    from pivot.state.locks import LockRecord

_TMP_SUFFIX = ".pivot-unprotect"


def prepare(root: Path, stage: Stage) -> None:
    """Remove (or unprotect, for persist) the outputs of ``stage`` and create
    the directories that will hold them."""
    for out in stage.outs:
        path = writable_path(root, out.path)
        if out.persist:
            unprotect(path)
        else:
            remove(path)
        path.parent.mkdir(parents=True, exist_ok=True)


def remove(path: Path) -> None:
    """Delete a file, link or directory tree, read-only or not."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        try:
            os.unlink(path)
        except PermissionError:
            # the command left the directory read-only; it is about to write there again
            _add_mode(path.parent, stat.S_IWUSR | stat.S_IXUSR)
            os.unlink(path)
        return
    _make_dirs_writable(path)
    shutil.rmtree(path)


def _make_dirs_writable(top: Path) -> None:
    """u+rwx on ``top`` and every directory below it (never through links)."""
    _add_mode(top, stat.S_IRWXU)
    for dirpath, dirnames, _ in os.walk(top):
        for name in dirnames:
            child = os.path.join(dirpath, name)
            if not os.path.islink(child):
                _add_mode(Path(child), stat.S_IRWXU)


def _add_mode(path: Path, bits: int) -> None:
    mode = stat.S_IMODE(os.lstat(path).st_mode)
    if mode & bits != bits:
        os.chmod(path, mode | bits)


def unprotect(path: Path) -> None:
    """Make a kept (persist) output safe to modify in place."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        _replace_link_with_copy(path)
    elif stat.S_ISDIR(st.st_mode):
        _make_dirs_writable(path)
        for dirpath, dirnames, filenames in os.walk(path):
            for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
                unprotect(Path(dirpath, name))
    elif st.st_nlink > 1:
        _copy_over(path, path)
    else:
        _add_mode(path, stat.S_IWUSR | stat.S_IRUSR)


def _replace_link_with_copy(link: Path) -> None:
    target = link.resolve()
    if target.is_dir():
        tmp = link.with_name(link.name + _TMP_SUFFIX)
        remove(tmp)
        shutil.copytree(target, tmp, symlinks=False)
        _make_dirs_writable(tmp)
        for dirpath, _, filenames in os.walk(tmp):
            for name in filenames:
                _add_mode(Path(dirpath, name), stat.S_IWUSR | stat.S_IRUSR)
        os.unlink(link)
        os.replace(tmp, link)
    elif target.exists():
        _copy_over(target, link)
    else:
        os.unlink(link)  # dangling: nothing to keep


def _copy_over(source: Path, dest: Path) -> None:
    """Replace ``dest`` atomically by a private writable copy of ``source``."""
    tmp = dest.with_name(dest.name + _TMP_SUFFIX)
    shutil.copyfile(source, tmp)
    shutil.copymode(source, tmp)
    _add_mode(tmp, stat.S_IWUSR | stat.S_IRUSR)
    os.replace(tmp, dest)


@dataclass(frozen=True, slots=True)
class RestoreReport:
    """What restoring a stage's outputs from the cache did, path by path."""

    restored: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()  # already as recorded
    missing: tuple[str, ...] = ()  # recorded, but not in the cache (or its object was corrupt)
    unrecorded: tuple[str, ...] = ()  # not cached (cache: false) or no record
    corrupt: tuple[str, ...] = ()  # "corrupted cache object ... removed", one per object found bad


def restore(stage: Stage, state: "State", record: "LockRecord | None" = None) -> RestoreReport:
    """Bring every cached output of ``stage`` back to its recorded content.
    An output whose cache object turns out damaged is reported missing (and
    the object removed)."""
    from pivot.state.hashing import HashInfo
    from pivot.state.store import CorruptObject

    record = record if record is not None else state.locks.read(stage.address)
    restored: list[str] = []
    unchanged: list[str] = []
    missing: list[str] = []
    unrecorded: list[str] = []
    corrupt: list[str] = []
    for out in stage.outs:
        entry = record.out(out.path) if record is not None else None
        if entry is None or not out.cache:
            unrecorded.append(out.path)
            continue
        current = state.hasher.hash_out(out.path)
        if current is not None and current.hash == entry.hash:
            unchanged.append(out.path)
            continue
        info = HashInfo(entry.hash, entry.size, entry.nfiles)
        if not state.cache.contains(info):
            missing.append(out.path)
            continue
        try:
            state.cache.checkout(out.path, info)
        except CorruptObject as exc:
            corrupt.append(str(exc))
            missing.append(out.path)
            continue
        restored.append(out.path)
    return RestoreReport(tuple(restored), tuple(unchanged), tuple(missing), tuple(unrecorded), tuple(corrupt))
