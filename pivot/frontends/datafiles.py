"""Reading params and vars files once per invocation.

DVC picks the parser by suffix: ``.json``, ``.toml``, ``.py`` (top-level
constants), anything else is YAML 1.2.  Every file read is remembered as a
pipeline source.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pivot.errors import PivotError
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
        path = self.root / relpath
        if not path.exists():
            raise ContextError(f"'{relpath}' does not exist")
        if path.is_dir():
            raise ContextError(f"'{relpath}' is a directory")
        try:
            data = parse_data_file(path, relpath)
        except PivotError as exc:
            raise ContextError(str(exc)) from None
        self._parsed[relpath] = data
        self.sources[relpath] = None
        return data


def parse_data_file(path: Path, display: str) -> Any:
    """Parse a params/vars file by its suffix."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            from pivot.yaml12 import load_json

            with open(path, encoding="utf-8") as handle:
                return load_json(handle.read(), display)
        if suffix == ".toml":
            import tomllib

            from pivot.yaml12 import parse_deep

            with open(path, "rb") as handle:
                raw = handle.read()
            return parse_deep(lambda: tomllib.loads(raw.decode("utf-8")), display)
        if suffix == ".py":
            return _python_constants(path.read_text(encoding="utf-8"), display)
    except (ValueError, OSError) as exc:  # JSONDecodeError, TOMLDecodeError, UnicodeDecodeError are ValueErrors
        raise PivotError(f"'{display}' is invalid: {exc}") from None
    from pivot import yaml12

    return yaml12.load_file(path, display)


def _python_constants(text: str, display: str) -> dict[str, Any]:
    """Top-level ``NAME = literal`` assignments and class attributes, as DVC reads ``.py`` params."""
    import ast

    try:
        tree = ast.parse(text, filename=display)
    except SyntaxError as exc:
        raise PivotError(f"'{display}' is invalid: {exc.msg} (line {exc.lineno})") from None

    def constants(body: list[ast.stmt]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for node in body:
            if isinstance(node, ast.ClassDef):
                found[node.name] = constants(node.body)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                try:
                    value = ast.literal_eval(node.value)
                except ValueError:
                    continue
                for target in targets:
                    if isinstance(target, ast.Name):
                        found[target.id] = value
        return found

    return constants(tree.body)
