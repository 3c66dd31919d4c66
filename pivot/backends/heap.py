"""Giving the memory a long run has freed back to the system.

A run drops what each stage needed once the stage settles, and Python's
live objects do not grow with the stages done (tracemalloc).  glibc's
malloc, though, keeps the pages it was given back inside its heap whenever
a live block sits above them, so the resident set still crept up: 4 MB over
a 20,001-stage run, every byte of it returned by one ``malloc_trim(0)``
(docs/performance.md).  The runner therefore calls it every ``TRIM_EVERY``
settled stages: a few milliseconds each time.  Where the C library has no
``malloc_trim`` (macOS, musl) this does nothing.
"""

from __future__ import annotations

import sys
from typing import Callable

TRIM_EVERY = 1000  # settled stages between two trims

_trim: Callable[[int], int] | None = None
_looked_up = False


def _malloc_trim() -> Callable[[int], int] | None:
    global _trim, _looked_up
    if not _looked_up:
        _looked_up = True
        if sys.platform.startswith("linux"):
            import ctypes  # only once a run has settled TRIM_EVERY stages

            try:
                _trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
            except OSError:
                _trim = None
    return _trim


def available() -> bool:
    """Whether this C library can give freed heap memory back (glibc's ``malloc_trim``)."""
    return _malloc_trim() is not None


def release_free_memory() -> bool:
    """Give the heap's free pages back to the system; True when it could be asked."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
