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
from pathlib import Path
from pivot.containment import writable_path
from pivot.ir import Stage

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
