"""One reader for the data files of a pipeline: params, vars and configfiles.

The front ends (``vars`` of dvc.yaml, ``configfile`` of a Pivotfile) and the
state layer (tracked params) read these files here, so a file means the same
everywhere and every problem reads the same: a :class:`FormatError` saying
``file:line: what is wrong``.  The format follows the suffix as DVC picks
it: ``.json``, ``.toml``, ``.py`` (literal assignments, as DVC's
``dvc/utils/serialize/_py.py`` reads them), anything else YAML 1.2
(:mod:`pivot.yaml12`).
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

from pivot.errors import PivotError


class FormatError(PivotError):
    """A data file that cannot be read: ``file:line: what is wrong``."""


def load(path: Path, display: str) -> Any:
    """The parsed content of the file at ``path``; ``display`` names it in
    errors.  An absent file raises ``FileNotFoundError``: what that means
    is the caller's to say."""
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):  # a parent that is a file: absent too
        raise FileNotFoundError(path) from None
    except IsADirectoryError:
        raise FormatError(f"'{display}' is a directory") from None
    except OSError as exc:
        raise FormatError(f"cannot read '{display}': {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")  # the byte order mark some editors write is dropped
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise FormatError(f"{display}:{line}: not UTF-8 text: {exc.reason}") from None
    return parse(text, path.suffix, display)


def parse(text: str, suffix: str, display: str) -> Any:
    """``text`` parsed by the format ``suffix`` (``.json``...) stands for."""
    suffix = suffix.lower()
    if suffix == ".json":
        return _json(text, display)
    if suffix == ".toml":
        return _toml(text, display)
    if suffix == ".py":
        return _python(text, display)
    from pivot import yaml12

    try:
        return yaml12.load_text(text, display)
    except PivotError as exc:  # already file:line:col
        raise FormatError(str(exc)) from None


def _json(text: str, display: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"{display}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None


_TOML_WHERE = re.compile(r"\s*\(at line (\d+), column (\d+)\)\Z")


def _toml(text: str, display: str) -> Any:
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        where = _TOML_WHERE.search(message)
        if where is None:  # "(at end of document)"
            raise FormatError(f"{display}: invalid TOML: {message}") from None
        line, column = where.groups()
        raise FormatError(f"{display}:{line}:{column}: invalid TOML: {message[: where.start()]}") from None


def _python(text: str, display: str) -> dict[str, Any]:
    """Literal assignments at module level, in classes (one dict per class)
    and ``self.NAME = ...`` in ``__init__``, as DVC reads ``.py`` params."""
    try:
        tree = ast.parse(text, filename=display)
    except SyntaxError as exc:
        raise FormatError(f"{display}:{exc.lineno}: invalid Python: {exc.msg}") from None
    return _assignments(tree.body, display, in_init=False)


def _assignments(body: list[ast.stmt], display: str, *, in_init: bool) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for node in body:
        if isinstance(node, ast.ClassDef):
            found[node.name] = _assignments(node.body, display, in_init=False)
        elif isinstance(node, ast.FunctionDef) and node.name == "__init__":
            found.update(_assignments(node.body, display, in_init=True))
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            name = _assigned_name(node, in_init)
            if name is None:
                continue
            try:
                found[name] = ast.literal_eval(node.value)  # type: ignore[arg-type]
            except ValueError:  # not a literal (a call, arithmetic, `x: int`): DVC skips it too
                continue
            except TypeError as exc:  # {[1]: 2}: a literal no Python value can hold; DVC stops here too
                raise FormatError(f"{display}:{node.lineno}: '{name}' is not a value: {exc}") from None
    return found


def _assigned_name(node: ast.Assign | ast.AnnAssign, in_init: bool) -> str | None:
    """``NAME`` of ``NAME = ...`` (not inside ``__init__``) or of
    ``self.NAME = ...``; None for anything else, as DVC skips it (several
    targets, tuples, subscripts, other attributes)."""
    if isinstance(node, ast.Assign):
        if len(node.targets) != 1:
            return None
        target = node.targets[0]
    else:
        target = node.target
    if isinstance(target, ast.Name) and not in_init:
        return target.id
    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
        return target.attr
    return None
