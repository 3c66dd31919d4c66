"""Errors meant for the user: the CLI prints their message, never a traceback."""

from __future__ import annotations

import errno
import os
from pathlib import Path


class PivotError(Exception):
    """A problem with the user's input or workspace, with a readable message.

    The message should name the file, line, key or stage at fault.
    """

    exit_code = 1


class PipelineError(PivotError):
    """A pipeline definition is invalid (schema, interpolation, graph)."""


class StateError(PivotError):
    """The workspace or pivot's state cannot be read or written."""


def os_error_message(exc: OSError) -> str:
    """``No space left on device: '.pivot/run.lock'``: why, and the path at
    fault (relative to the project root when inside it)."""
    why = exc.strerror or str(exc)
    paths = [shown_path(name) for name in (exc.filename, exc.filename2) if isinstance(name, (str, bytes))]
    if paths:
        return f"{why}: {' -> '.join(paths)}"
    if exc.errno == errno.ENOSPC:  # a write to an open file: no name, but we know where pivot writes
        try:
            from pivot.project import Project

            state_dir = Project.discover().state_dir
            if os.statvfs(state_dir).f_bavail == 0:
                return f"{why} (the file system holding {shown_path(str(state_dir))} is full)"
        except OSError:
            pass
    return why


def shown_path(name: str | bytes) -> str:
    """A path as pivot prints paths: relative to the project root when inside it."""
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    try:
        from pivot.project import find_root

        cwd = os.getcwd()
        root = str(find_root(Path(cwd)))
        absolute = os.path.normpath(os.path.join(cwd, name))
        if absolute.startswith(root.rstrip(os.sep) + os.sep):
            name = Path(os.path.relpath(absolute, root)).as_posix()
    except OSError:
        pass
    return f"'{name}'"
