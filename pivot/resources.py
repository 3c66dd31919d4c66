"""Locating the grammar and template files.

In a wheel they are packaged under ``pivot/_data/``; in a source checkout
(editable install, tests) they are the top-level ``grammar/`` and
``templates/`` directories.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def data_dir(name: str) -> Path:
    """The directory ``name`` (``"grammar"`` or ``"templates"``)."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"pivot installation is missing its '{name}' directory")


def grammar_path(filename: str) -> Path:
    return data_dir("grammar") / filename


def template_dir() -> Path:
    return data_dir("templates")
