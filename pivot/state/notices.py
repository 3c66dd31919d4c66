"""Warnings about pivot's own state (a corrupt record, a rebuilt database).

They go to stderr as ``WARNING: ...`` lines, the way DVC prints them, and
never stop the command.
"""

from __future__ import annotations

import sys


def warn(message: str) -> None:
    print(f"WARNING: {message}", file=sys.stderr)
