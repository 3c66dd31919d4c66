"""Params files, each read once per command.

Files are parsed by :mod:`pivot.formats` (the format follows the suffix
as DVC picks it), the reader the front ends use for vars too.
Keys are dotted (``train.lr``), list items by index (``layers.0``).
Values are normalised to what JSON can hold (string keys, lists, strings
for dates) so a value read now compares equal to one read back from a lock
record.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Mapping

from pivot import formats
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
        if dep.keys is None:
            return {str(key): normalise(value) for key, value in data.items()}
        found: dict[str, Any] = {}
        for key in dep.keys:
            value = lookup_pattern(data, key, dep.path) if _GLOB_CHARS.intersection(key) else lookup(data, key)
            if value is not _MISSING:
                found[key] = normalise(value)
        return found

    def invalidate(self, relpath: str) -> None:
        self._files.pop(relpath, None)


MEMO_NAME = "params.pickle"
MEMO_FORMAT = 1
_MEMO_CODE = ("state/params.py", "formats.py", "yaml12.py", "signature.py")  # what decides the parsed data


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
        from pivot import atomic

        try:
            with atomic.writing(self.path) as handle:
                pickle.dump((self._key, entries), handle, protocol=pickle.HIGHEST_PROTOCOL)
        except (OSError, pickle.PicklingError, TypeError, AttributeError, RecursionError):
            pass  # only a cache: a read-only .pivot/ or a concurrent writer costs a parse


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


_GLOB_CHARS = frozenset("*?[")


def lookup_pattern(data: Any, pattern: str, relpath: str) -> Any:
    """The one value whose dotted path matches ``pattern`` segment by segment
    (``kw.moon*``: fnmatch per segment, as DVC's ``dpath.get``); ``_MISSING``
    when nothing matches.  Several matches are an error, as in DVC: the key
    is recorded under the pattern, so it must name one value."""
    from fnmatch import fnmatchcase

    nodes: list[tuple[str, Any]] = [("", data)]
    for segment in pattern.split("."):
        matched: list[tuple[str, Any]] = []
        for path, node in nodes:
            if isinstance(node, Mapping):
                children = ((str(k), v) for k, v in node.items())
            elif isinstance(node, list):
                children = ((str(i), v) for i, v in enumerate(node))
            else:
                continue
            matched.extend((f"{path}.{name}" if path else name, value) for name, value in children
                           if fnmatchcase(name, segment))
        nodes = matched
    if not nodes:
        return _MISSING
    if len(nodes) > 1:
        from pivot.errors import StateError

        names = ", ".join(path for path, _ in nodes)
        raise StateError(f"{relpath}: the parameter pattern '{pattern}' matches several keys ({names});"
                         " it must match exactly one")
    return nodes[0][1]


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
    """The parsed params file (see :mod:`pivot.formats`); None when absent."""
    try:
        data = formats.load(path, relpath)
    except FileNotFoundError:
        return None
    except formats.FormatError as exc:
        raise StateError(str(exc)) from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise StateError(f"params file '{relpath}' must hold a mapping, not {type(data).__name__}")
    return data


def load_yaml_text(text: str, relpath: str) -> Any:
    """YAML 1.2 as DVC reads it (for ``dvc.lock``)."""
    from pivot import yaml12

    return yaml12.load_text(text, relpath)
