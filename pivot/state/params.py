"""Params files, each read once per command.

The format follows the suffix as DVC does: ``.json``, ``.toml``, ``.py``
(top-level and class-level literal assignments), anything else YAML 1.2.
Keys are dotted (``train.lr``), list items by index (``layers.0``).
Values are normalised to what JSON can hold (string keys, lists, strings
for dates) so a value read now compares equal to one read back from a lock
record.
"""

from __future__ import annotations

import ast
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Mapping

from pivot.errors import StateError
from pivot.ir import ParamsDep

_MISSING = object()


class ParamsReader:
    """Parsed params files of one command, memoised by root-relative path.

    With ``memo_dir`` (``.pivot/``), parsed files are also remembered between
    commands, by file signature, so a warm command need not parse YAML."""

    def __init__(self, root: Path, memo_dir: Path | None = None) -> None:
        self.root = root
        self._files: dict[str, Mapping[str, Any] | None] = {}
        self._memo = ParsedMemo(memo_dir / MEMO_NAME) if memo_dir is not None else None

    def read(self, relpath: str) -> Mapping[str, Any] | None:
        """The parsed file, or None when it does not exist."""
        try:
            return self._files[relpath]
        except KeyError:
            pass
        if self._memo is None:
            data = _load(self.root / relpath, relpath)
        else:
            data = self._memo.parsed(self.root, relpath)
        self._files[relpath] = data
        return data

    def values(self, dep: ParamsDep) -> dict[str, Any] | None:
        """``{key: value}`` for the keys of ``dep`` found in its file (every
        top-level key when the whole file is tracked); None if the file is missing."""
        data = self.read(dep.path)
        if data is None:
            return None
        try:
            if dep.keys is None:
                return {str(key): normalise(value) for key, value in data.items()}
            found: dict[str, Any] = {}
            for key in dep.keys:
                value = lookup(data, key)
                if value is not _MISSING:
                    found[key] = normalise(value)
            return found
        except RecursionError:  # a deep file parses (see yaml12.parse_deep), but its values cannot be compared
            what = "the whole file" if dep.keys is None else "a tracked key"
            raise StateError(
                f"params file '{dep.path}': {what} holds values nested too deeply to compare;"
                " track keys whose values are less deeply nested"
            ) from None

    def invalidate(self, relpath: str) -> None:
        self._files.pop(relpath, None)


MEMO_NAME = "params.pickle"
MEMO_FORMAT = 1
_MEMO_CODE = ("state/params.py", "yaml12.py", "signature.py")  # what decides the parsed data


class ParsedMemo:
    """Parsed params files kept in one pickle: ``relpath -> (signature, data)``.

    An entry is used only while the file's signature is unchanged and is made
    only from a settled file (:mod:`pivot.signature`); the file is replaced
    atomically.  Unreadable or damaged, it is only a miss.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, tuple[Any, Mapping[str, Any]]] | None = None
        self._key: tuple = ()

    def parsed(self, root: Path, relpath: str) -> Mapping[str, Any] | None:
        from pivot.signature import file_signature

        entries = self._read()
        started = time.time_ns()
        signature = file_signature(f"{root}/{relpath}")
        entry = entries.get(relpath)
        if signature is not None and entry is not None and entry[0] == signature:
            return entry[1]
        data = _load(root / relpath, relpath)
        if data is not None and signature is not None and signature.settled(started):
            entries[relpath] = (signature, data)
            self._write(entries)
        return data

    def _read(self) -> dict[str, tuple[Any, Mapping[str, Any]]]:
        if self._entries is None:
            from pivot.signature import code_signature

            self._key = (MEMO_FORMAT, code_signature(*_MEMO_CODE))
            self._entries = {}
            try:
                with open(self.path, "rb") as handle:
                    raw = handle.read()
            except OSError:
                return self._entries
            import pickle

            try:
                key, entries = pickle.loads(raw)
            except Exception:  # damaged: start afresh
                return self._entries
            if key == self._key and isinstance(entries, dict):  # else made by other code
                self._entries = entries
        return self._entries

    def _write(self, entries: dict[str, tuple[Any, Mapping[str, Any]]]) -> None:
        import pickle

        if not self.path.parent.is_dir():
            return
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as handle:
                pickle.dump((self._key, entries), handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.path)
        except (OSError, pickle.PicklingError, TypeError, AttributeError, RecursionError):
            try:
                os.unlink(tmp)
            except OSError:
                pass


def lookup(data: Any, dotted: str) -> Any:
    """``data[a][b][0]`` for ``a.b.0``; ``_MISSING`` when absent."""
    node = data
    for part in dotted.split("."):
        if type(node) is dict and part in node:  # the common case, without ABC checks
            node = node[part]
            continue
        if isinstance(node, Mapping):
            if part in node:
                node = node[part]
                continue
            # YAML may have read an int key (``2021:``)
            if part.lstrip("-").isdigit() and int(part) in node:
                node = node[int(part)]
                continue
            return _MISSING
        if isinstance(node, list) and part.lstrip("-").isdigit():
            index = int(part)
            if -len(node) <= index < len(node):
                node = node[index]
                continue
        return _MISSING
    return node


def is_missing(value: Any) -> bool:
    return value is _MISSING


def normalise(value: Any) -> Any:
    """The value as it survives a JSON round trip (lock records are JSON)."""
    kind = type(value)
    if value is None or kind is str or kind is bool or kind is int:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    return str(value)


def _load(path: Path, relpath: str) -> Mapping[str, Any] | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise StateError(f"params file '{relpath}' is a directory") from None
    except OSError as exc:
        raise StateError(f"cannot read params file '{relpath}': {exc.strerror}") from None
    suffix = path.suffix.lower()
    text = raw.decode("utf-8", "replace")
    if suffix == ".json":
        from pivot.yaml12 import load_json  # deep nesting: parsed anyway, or an error naming the file

        try:
            data = load_json(text, relpath)
        except json.JSONDecodeError as exc:
            raise StateError(f"'{relpath}':{exc.lineno}: invalid JSON: {exc.msg}") from None
    elif suffix == ".toml":
        import tomllib

        from pivot.yaml12 import parse_deep

        try:
            data = parse_deep(lambda: tomllib.loads(text), relpath)
        except tomllib.TOMLDecodeError as exc:
            raise StateError(f"'{relpath}': invalid TOML: {exc}") from None
    elif suffix == ".py":
        data = _load_python(text, relpath)
    else:
        data = load_yaml_text(text, relpath)
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise StateError(f"params file '{relpath}' must hold a mapping, not {type(data).__name__}")
    return data


def load_yaml_text(text: str, relpath: str) -> Any:
    """YAML 1.2 as DVC reads it (``pivot.yaml12`` when available)."""
    try:
        from pivot import yaml12
    except ImportError:  # pragma: no cover - the loader ships with pivot
        yaml12 = None  # type: ignore[assignment]
    if yaml12 is not None:
        return yaml12.load_text(text, relpath)
    import yaml

    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{relpath}:{mark.line + 1}" if mark is not None else relpath
        raise StateError(f"'{where}': invalid YAML: {getattr(exc, 'problem', exc)}") from None


def _load_python(text: str, relpath: str) -> dict[str, Any]:
    """DVC's Python params: literal assignments at top level and in classes."""
    try:
        tree = ast.parse(text, filename=relpath)
    except SyntaxError as exc:
        raise StateError(f"'{relpath}':{exc.lineno}: invalid Python: {exc.msg}") from None
    return _assignments(tree.body)


def _assignments(body: list[ast.stmt]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for node in body:
        if isinstance(node, ast.ClassDef):
            found[node.name] = _assignments(node.body)
            continue
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        try:
            literal = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError):
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                found[target.id] = literal
    return found
