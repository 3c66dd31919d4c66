"""Quoting values for the two languages pivot emits: POSIX shell and Ninja.

Shell: every value becomes one word, single-quoted unless it is plainly
safe.  Ninja: ``$`` is the only escape character; a path on a ``build`` line
also needs ``$ `` and ``$:``.  Ninja has no escape for ``|`` on a build line
(it starts the implicit-input list) nor, before 1.14, for a newline -- the
writer binds ``|`` paths to a variable (see ``pivot.backends.ninja``) and
newlines are refused.  The functions are registered as jinja2 filters by
``register_filters``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pivot.errors import PivotError

if TYPE_CHECKING:
    import jinja2

# Characters no POSIX shell treats specially anywhere in a word.
_SHELL_SAFE = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


def sh_quote(value: str) -> str:
    """``value`` as exactly one shell word (``printf %s`` prints it back)."""
    if _SHELL_SAFE.fullmatch(value) and not value.startswith("="):
        return value
    # Inside single quotes nothing is special but the quote itself: close,
    # add an escaped quote, reopen.
    return "'" + value.replace("'", "'\\''") + "'"


def sh_path(path: str) -> str:
    """A relative path as a shell word that can never be read as an option."""
    if path.startswith("-"):
        path = "./" + path
    return sh_quote(path)


class NinjaEscapeError(PivotError):
    """A value cannot be written in a Ninja file."""


def ninja_escape(value: str, *, what: str = "value") -> str:
    """``value`` for the right-hand side of a Ninja binding (``name = ...``).

    ``$`` doubles; a leading space, which Ninja would strip, becomes ``$ ``.
    Newlines cannot be written (Ninja < 1.14).
    """
    _refuse_newline(value, what)
    escaped = value.replace("$", "$$")
    if escaped.startswith(" "):
        escaped = "$" + escaped  # Ninja strips leading spaces of a value
    return escaped


def ninja_escape_path(path: str, *, what: str = "path") -> str:
    """``path`` as one token of a Ninja ``build`` line.

    Raises for ``|`` (no escape exists: bind the path to a variable and use
    ``$name`` instead, see ``needs_binding``), for newlines, and for tabs
    (Ninja's build log is tab-separated: such an output would rebuild forever).
    """
    _refuse_newline(path, what)
    if "\t" in path:
        raise NinjaEscapeError(f"{what} {path!r} contains a tab, which Ninja's build log cannot record")
    if "|" in path:
        raise NinjaEscapeError(f"{what} '{path}' contains '|', which a Ninja build line cannot escape")
    return path.replace("$", "$$").replace(" ", "$ ").replace(":", "$:")


def needs_binding(path: str) -> bool:
    """True when ``path`` cannot appear literally on a build line."""
    return "|" in path


def check_path(path: str, *, what: str = "path") -> None:
    """Raise unless ``path`` can be written in a Ninja file, bound or not."""
    ninja_escape_path(path.replace("|", "_"), what=what)


def _refuse_newline(value: str, what: str) -> None:
    if "\n" in value or "\r" in value:
        raise NinjaEscapeError(f"{what} {value!r} contains a line break, which Ninja files cannot hold")


def comment_text(value: str) -> str:
    """``value`` safe inside a ``#`` comment of either language: a line break
    would end the comment and turn the rest into code."""
    return value.replace("\r", "\\r").replace("\n", "\\n")


def register_filters(env: "jinja2.Environment") -> None:
    """Make the quoting functions available to templates as filters."""
    env.filters["sh"] = sh_quote
    env.filters["sh_path"] = sh_path
    env.filters["ninja"] = ninja_escape
    env.filters["ninja_path"] = ninja_escape_path
    env.filters["comment"] = comment_text
