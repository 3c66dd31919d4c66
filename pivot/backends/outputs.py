"""Getting a stage's outputs ready before its commands run.

Outputs are removed first (DVC does the same) so a stage never sees last
run's results, unless they are ``persist: true``: those are kept but
"unprotected" -- a link into a cache, or a read-only file, becomes a
private writable copy, so appending to it can never corrupt the cache.

Only links into a cache (pivot's or DVC's: a checkout placed them) are
replaced.  Any other symlink, at the output or anywhere inside it, is the
user's and is left exactly as it is: never followed, never copied (a link
to a directory elsewhere would otherwise be copied whole, however big).

Removal never changes the mode of a *file*: with hardlinked checkouts the
file shares its inode (and mode) with the cache object.  Only directories
are made writable, which is all ``unlink`` needs.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from pathlib import Path
from pivot.containment import writable_path
from pivot.ir import Stage

_TMP_SUFFIX = ".pivot-unprotect"
_CACHE_LINK = re.compile(r"(^|/)\.(pivot|dvc)/cache/")  # as a checkout writes them (pivot.state.hashing)


def prepare(root: Path, stage: Stage) -> None:
    """Remove (or unprotect, for persist) the outputs of ``stage`` and create
    the directories that will hold them."""
    for out in stage.outs:
        path = writable_path(root, out.path)
        if out.persist:
            unprotect(writable_path(root, out.path), root)
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


def unprotect(path: Path, root: Path | None = None) -> None:
    """Make a kept (persist) output safe to modify in place: links into a
    cache become private copies, hardlinked files private copies, read-only
    files and directories writable.  Other links are left alone.  ``root``
    (the project) locates the caches; without it only the link's text
    (``.pivot/cache/``, ``.dvc/cache/``) tells."""
    caches = _cache_dirs(root)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        _unprotect_link(path, caches)
    elif stat.S_ISDIR(st.st_mode):
        _make_dirs_writable(path)
        for dirpath, dirnames, filenames in os.walk(path):  # never descends into links
            for name in filenames:
                _unprotect_entry(Path(dirpath, name), caches)
            for name in dirnames:
                child = Path(dirpath, name)
                if child.is_symlink():
                    _unprotect_link(child, caches)
    elif st.st_nlink > 1:
        _copy_over(path, path)
    else:
        _add_mode(path, stat.S_IWUSR | stat.S_IRUSR)


def _unprotect_entry(path: Path, caches: tuple[str, ...]) -> None:
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        _unprotect_link(path, caches)
    elif st.st_nlink > 1:
        _copy_over(path, path)
    elif stat.S_ISREG(st.st_mode):
        _add_mode(path, stat.S_IWUSR | stat.S_IRUSR)


def _cache_dirs(root: Path | None) -> tuple[str, ...]:
    if root is None:
        return ()
    return tuple(os.path.realpath(root / state / "cache") for state in (".pivot", ".dvc"))


def _unprotect_link(link: Path, caches: tuple[str, ...]) -> None:
    """A link into a cache becomes a private copy of its file (or goes,
    when its object is gone); any other link stays as it is."""
    if not points_into_a_cache(link, caches):
        return
    target = os.path.realpath(link)
    if os.path.isfile(target):
        _copy_over(Path(target), link)
    elif not os.path.exists(target):
        os.unlink(link)  # dangling: its object is gone, nothing to keep
    # a directory inside a cache is not something a checkout links to: leave it


def points_into_a_cache(link: Path, caches: tuple[str, ...] = ()) -> bool:
    """Whether symlink ``link`` leads into pivot's or DVC's cache: by its
    text (``.pivot/cache/`` or ``.dvc/cache/``, any project) or, through
    any chain of links, into one of the cache directories ``caches``."""
    try:
        text = os.readlink(link)
    except OSError:
        return False
    if _CACHE_LINK.search(text.replace(os.sep, "/")) is not None:
        return True
    real = os.path.realpath(link)
    return any(real.startswith(cache + os.sep) for cache in caches)


def _copy_over(source: Path, dest: Path) -> None:
    """Replace ``dest`` atomically by a private writable copy of ``source``."""
    tmp = dest.with_name(dest.name + _TMP_SUFFIX)
    shutil.copyfile(source, tmp)
    shutil.copymode(source, tmp)
    _add_mode(tmp, stat.S_IWUSR | stat.S_IRUSR)
    os.replace(tmp, dest)
