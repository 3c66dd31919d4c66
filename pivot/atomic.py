"""Atomic file writes: a reader sees the old file or the new one, never half.

The data goes to a temporary file beside the target (same filesystem), which
then replaces the target with ``os.replace``; on any failure the temporary
file is removed and the target is untouched.  No ``tempfile`` import: the
temporary name is made unique by pid and thread, and ``O_EXCL`` refuses a
leftover of a killed process.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


def write_bytes(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o666) -> None:
    """Replace ``path`` with ``data``; ``mode`` is filtered by the umask."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:  # left by a killed process with our pid
        os.unlink(tmp)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_text(path: str | os.PathLike[str], text: str, *, mode: int = 0o666) -> None:
    """Replace ``path`` with ``text`` (UTF-8, newlines as given)."""
    write_bytes(path, text.encode("utf-8"), mode=mode)
