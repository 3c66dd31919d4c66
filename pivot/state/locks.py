"""Per-stage lock records: what a stage's last completed run saw and made.

One JSON file per stage under ``.pivot/locks/`` (sorted keys, indented, so
diffs stay readable), named after the stage address with every character
outside ``[A-Za-z0-9_-]`` percent-encoded (``sub/dvc.yaml:build@0.5`` ->
``sub%2Fdvc%2Eyaml%3Abuild%400%2E5.json``).  Records are written atomically
(temporary file + ``os.replace``) and only ever one stage's at a time.
"""

from __future__ import annotations

import errno
import json
import marshal
import os
import re
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import xxhash

from pivot.errors import StateError
from pivot.signature import file_signature
from pivot.state.hashing import DIGEST_PATTERN
from pivot.state.notices import warn

if TYPE_CHECKING:
    from pivot.state.statdb import StatDB

LOCK_VERSION = 1
MEMO_FORMAT = 1  # bump when the tuples below change
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_MAX_NAME = 200  # bytes; file names are limited to 255
_SCAN_LIMIT = 8  # entries a record's lookups scan; longer lists are indexed by path


@dataclass(frozen=True, slots=True)
class LockEntry:
    """A dep or out as it was: root-relative path, content hash, size."""

    path: str
    hash: str
    size: int
    nfiles: int | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": self.path, "hash": self.hash, "size": self.size}
        if self.nfiles is not None:
            data["nfiles"] = self.nfiles
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "LockEntry":
        path, digest, size, nfiles = data["path"], data["hash"], data["size"], data.get("nfiles")
        if type(path) is not str or type(digest) is not str or type(size) is not int or (
            nfiles is not None and type(nfiles) is not int
        ):
            raise ValueError(f"malformed entry {dict(data)!r}")
        if DIGEST_PATTERN.fullmatch(digest) is None:  # it names a cache object: never a path
            raise ValueError(f"bad hash {digest!r} for '{path}'")
        return cls(path, digest, size, nfiles)


@dataclass(frozen=True)
class LockRecord:
    """The state of one stage after its last completed run (or commit)."""

    address: str
    cmd: tuple[str, ...]
    deps: tuple[LockEntry, ...] = ()
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    outs: tuple[LockEntry, ...] = ()
    adopted_from: str | None = None  # the dvc.lock this record was adopted from

    def dep(self, path: str) -> LockEntry | None:
        if len(self.deps) <= _SCAN_LIMIT:
            return _find(self.deps, path)
        return self._deps_by_path.get(path)

    def out(self, path: str) -> LockEntry | None:
        if len(self.outs) <= _SCAN_LIMIT:
            return _find(self.outs, path)
        return self._outs_by_path.get(path)

    # A summary stage over 10,000 inputs looks each of them up: a scan per
    # lookup made that quadratic (seconds).  The indexes are built on first
    # use; the first entry for a path wins, as in a scan.
    @cached_property
    def _deps_by_path(self) -> dict[str, LockEntry]:
        return {entry.path: entry for entry in reversed(self.deps)}

    @cached_property
    def _outs_by_path(self) -> dict[str, LockEntry]:
        return {entry.path: entry for entry in reversed(self.outs)}

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "version": LOCK_VERSION,
            "address": self.address,
            "cmd": list(self.cmd),
            "deps": [entry.to_json() for entry in self.deps],
            "params": {path: dict(values) for path, values in self.params.items()},
            "outs": [entry.to_json() for entry in self.outs],
        }
        if self.adopted_from is not None:
            data["adopted_from"] = self.adopted_from
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "LockRecord":
        # one pass per list, no generator frames: this runs once per stage per command
        params = _typed(data.get("params", {}), dict)
        cmd = _typed(data["cmd"], list)
        if not all(isinstance(c, str) for c in cmd):
            raise ValueError(f"expected str, got {type(next(c for c in cmd if not isinstance(c, str))).__name__}")
        entry = LockEntry.from_json
        return cls(
            address=_typed(data["address"], str),
            cmd=tuple(cmd),
            deps=tuple([entry(e) for e in _typed(data.get("deps", []), list)]),
            params={_typed(k, str): _typed(v, dict) for k, v in params.items()},
            outs=tuple([entry(e) for e in _typed(data.get("outs", []), list)]),
            adopted_from=data.get("adopted_from"),
        )


def _escape_char(match: re.Match[str]) -> str:
    return "".join(f"%{b:02X}" for b in match.group().encode("utf-8"))


def _find(entries: tuple[LockEntry, ...], path: str) -> LockEntry | None:
    for entry in entries:
        if entry.path == path:
            return entry
    return None


def _typed(value: Any, kind: type) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value


# str.translate table for the common all-ASCII address (one C call, no regex callbacks)
_ASCII_ESCAPES = {
    code: f"%{code:02X}" for code in range(128) if _UNSAFE.fullmatch(chr(code))
}


def lock_filename(address: str) -> str:
    """A file name for ``address``: reversible escaping, bounded length."""
    return address_filename(address, ".json")


def address_filename(address: str, suffix: str) -> str:
    """A file name for a stage address, shared by lock records and logs:
    everything outside ``[A-Za-z0-9_-]`` percent-encoded, and names longer
    than 200 bytes cut and given an xxh3-64 suffix (file names are limited
    to 255 bytes)."""
    if address.isascii():
        escaped = address.translate(_ASCII_ESCAPES)
    else:
        escaped = _UNSAFE.sub(_escape_char, address)
    if len(escaped) > _MAX_NAME:
        digest = xxhash.xxh3_64_hexdigest(address.encode("utf-8"))
        escaped = f"{escaped[:_MAX_NAME - 18]}~{digest}"
    return escaped + suffix


class LockStore:
    """Reads and writes the records under ``.pivot/locks/``.

    With ``memo`` (the stat cache), parsed records are remembered by the lock
    file's signature: a warm command checks each file with one ``stat``
    instead of opening and parsing it.  Entries are made only from settled
    files (:mod:`pivot.signature`), like every stat-gated cache here.
    """

    def __init__(self, locks_dir: Path, project_root: Path | None = None, memo: "StatDB | None" = None) -> None:
        self.dir = locks_dir
        self._dir_str = str(locks_dir)
        self._root = project_root
        self._memo = memo
        self._memo_key: tuple | None = None
        # The file names in the directory, listed once: a stage without a
        # record then costs a set lookup instead of a failed stat and open
        # (a never-run pipeline of 20,000 stages).  Kept up to date by this
        # store's own removals; None when the directory cannot be listed, or
        # once this store made a new record.
        self._names: set[str] | None = None
        self._listed = False

    def path_for(self, address: str) -> Path:
        return self.dir / lock_filename(address)

    def _listing(self) -> set[str] | None:
        if not self._listed:
            self._listed = True
            try:
                self._names = set(os.listdir(self._dir_str))
            except FileNotFoundError:
                self._names = set()
            except OSError:  # unreadable: every record is looked for on its own
                self._names = None
        return self._names

    def may_hold(self, address: str) -> bool:
        """False when the stage surely has no record (the directory, as
        listed once, has no file for it); True when it may."""
        names = self._listing()
        return names is None or (bool(names) and lock_filename(address) in names)

    def read(self, address: str) -> LockRecord | None:
        """The stage's record; None if absent or unreadable (with a warning)."""
        names = self._listing()
        if names is not None and not names:  # no records at all: no name to compute
            return None
        name = lock_filename(address)
        if names is not None and name not in names:
            return None
        path = f"{self._dir_str}/{name}"
        if self._memo is None:
            return self._read_file(address, path)
        started = time.time_ns()
        signature = file_signature(path)
        if signature is None:
            return self._read_file(address, path)  # absent or unreadable: as without a memo
        key = self._key()
        remembered = self._remembered(address, key, tuple(signature))
        if remembered is not None:
            return remembered
        record = self._read_file(address, path)
        if record is not None and signature.settled(started) and not self._memo.readonly:
            try:
                entry = marshal.dumps((key, tuple(signature), _as_tuple(record)))
            except ValueError:  # a value marshal cannot hold: just not remembered
                return record
            self._memo.remember_lock(address, entry)
        return record

    def _key(self) -> tuple:
        if self._memo_key is None:
            from pivot.signature import code_signature

            self._memo_key = (MEMO_FORMAT, code_signature("state/locks.py"))
        return self._memo_key

    def _remembered(self, address: str, key: tuple, signature: tuple) -> LockRecord | None:
        assert self._memo is not None
        entry = self._memo.lock_memo(address)
        if entry is None:
            return None
        try:
            entry_key, entry_signature, data = marshal.loads(entry)
            if entry_key != key or entry_signature != signature:
                return None
            return _from_tuple(data)
        except (ValueError, EOFError, TypeError):  # damaged: read the file
            return None

    def _read_file(self, address: str, path: str) -> LockRecord | None:
        try:
            raw = _read_bytes(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            warn(f"cannot read lock record '{self._show(path)}': {exc.strerror}; treating '{address}' as never run")
            return None
        try:
            record = LockRecord.from_json(json.loads(raw))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            warn(f"lock record '{self._show(path)}' is corrupt ({exc}); treating '{address}' as never run")
            return None
        if record.address != address:
            warn(f"lock record '{self._show(path)}' belongs to '{record.address}', not '{address}'; ignoring it")
            return None
        return record

    def write(self, record: LockRecord) -> Path:
        """Replace the stage's record atomically; ``StateError`` naming the
        record when that is impossible (a directory in its place, a
        read-only project, a full disk)."""
        path = self.path_for(record.address)
        from pivot import atomic

        try:
            if os.path.isdir(path) and not os.path.islink(path):
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
            self.dir.mkdir(parents=True, exist_ok=True)
            atomic.write_text(path, json.dumps(record.to_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n")
            if self._names is not None and path.name not in self._names:
                # a new record: rather than growing the listing by a name per
                # stage of a long run, look each record up on its own from now on
                self._names = None
        except OSError as exc:
            hint = "; remove it" if exc.errno == errno.EISDIR else ""
            raise StateError(
                f"cannot write lock record '{self._show(path)}' of '{record.address}': {exc.strerror or exc}{hint}"
            ) from None
        return path

    def remove(self, address: str) -> None:
        path = self.path_for(address)
        _unlink_quietly(path)
        if self._names is not None:
            self._names.discard(path.name)

    def _show(self, path: str | Path) -> str:
        if self._root is not None:
            try:
                return Path(path).relative_to(self._root).as_posix()
            except ValueError:
                pass
        return str(path)


def _read_bytes(path: str) -> bytes:
    """A file's bytes, read through the descriptor: ``open()``'s file object
    costs more than reading a record (17 against 8 us; the first plan after
    a run reads 20,000)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def _as_tuple(record: LockRecord) -> tuple:
    """A record as plain data for ``marshal`` (which rebuilds it fastest)."""
    return (
        record.address,
        record.cmd,
        tuple((e.path, e.hash, e.size, e.nfiles) for e in record.deps),
        {path: dict(values) for path, values in record.params.items()},
        tuple((e.path, e.hash, e.size, e.nfiles) for e in record.outs),
        record.adopted_from,
    )


def _from_tuple(data: tuple) -> LockRecord:
    address, cmd, deps, params, outs, adopted_from = data
    return LockRecord(
        address=address,
        cmd=cmd,
        deps=tuple([LockEntry(*e) for e in deps]),
        params=params,
        outs=tuple([LockEntry(*e) for e in outs]),
        adopted_from=adopted_from,
    )


def _unlink_quietly(path: str | os.PathLike[str]) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
