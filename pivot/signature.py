"""File signatures: what identifies a file's content without reading it.

Used by the caches that skip re-reading unchanged files (the resolved
pipeline, parsed params files).  A file changed within the filesystem's
timestamp granularity may keep its signature, so a cache entry is made only
from files that were last changed ``RACY_WINDOW_NS`` before the read began
(git's racy-index rule; the stat cache in ``pivot.state.statdb`` uses the
same window).
"""

from __future__ import annotations

import os
import sys
from typing import NamedTuple

RACY_WINDOW_NS = 2_000_000_000


class Signature(NamedTuple):
    """Mode, inode, size and times of a file.  ``ctime`` moves on every
    change, even one that puts an old mtime back."""

    mode: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    def settled(self, started_ns: int) -> bool:
        """Last changed a racy window before ``started_ns``, so any change
        since then shows in the signature."""
        before = started_ns - RACY_WINDOW_NS
        return self.mtime_ns < before and self.ctime_ns < before


def code_signature(*modules: str) -> tuple:
    """Identifies the code a cache entry was made by: the Python version, the
    size and mtime of ``modules`` (paths inside ``pivot/``) and of PyYAML."""
    from importlib.util import find_spec

    package = os.path.dirname(os.path.abspath(__file__))
    paths = [os.path.join(package, module) for module in modules]
    yaml = find_spec("yaml")  # locating it does not import it
    if yaml is not None and yaml.origin:
        paths.append(yaml.origin)
    stamps = []
    for path in paths:
        signature = file_signature(path)
        stamps.append(None if signature is None else (signature.size, signature.mtime_ns))
    return (sys.version_info[:2], tuple(stamps))


def file_signature(path: str) -> Signature | None:
    """The signature of ``path`` (symlinks followed); None if it does not exist."""
    try:
        st = os.stat(path)
    except OSError:  # absent, or unreachable: a reader cannot see it either
        return None
    return Signature(st.st_mode, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
