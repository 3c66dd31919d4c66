"""Reading params and vars files once per invocation.

The files are parsed by :mod:`pivot.formats`, the reader the state layer
uses for tracked params too.  Every file read is remembered as a pipeline
source.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pivot import formats
from pivot.frontends.interpolate import ContextError


class DataFiles:
    """A per-invocation cache of parsed data files, keyed by root-relative path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._parsed: dict[str, Any] = {}
        self.sources: dict[str, None] = {}  # ordered set of every file read
        self.consulted: dict[str, None] = {}  # ... and of every file looked for

    def exists(self, relpath: str) -> bool:
        self.consulted[relpath] = None
        return relpath in self._parsed or os.path.isfile(self.root / relpath)

    def load(self, relpath: str) -> Any:
        """Parsed content of ``relpath``; ContextError if missing or unreadable."""
        self.consulted[relpath] = None
        if relpath in self._parsed:
            return self._parsed[relpath]
        try:
            data = formats.load(self.root / relpath, relpath)
        except FileNotFoundError:
            raise ContextError(f"'{relpath}' does not exist") from None
        except formats.FormatError as exc:
            raise ContextError(str(exc)) from None
        self._parsed[relpath] = data
        self.sources[relpath] = None
        return data
