"""The run cache: a stage's inputs -> the outputs a completed run made of them.

A stage's *run key* hashes everything that decides its outputs: its
commands, its wdir, each dep's path and content hash, each tracked param's
value and its out paths (not their contents).  After a stage completes
(runner, ``pivot commit``) the key is remembered with the content hashes of
its outputs -- the outputs themselves are already in the content-addressed
cache.  When a stage is stale but its current key was seen before, pivot
restores those outputs instead of running the command.

One small JSON file per entry, ``.pivot/runcache/<key[:2]>/<key[2:]>.json``,
written atomically.  Keys hold no absolute paths, inode numbers or times, so
the directory can be copied to another machine together with the cache.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

import xxhash

from pivot.ir import Stage
from pivot.state.locks import LockEntry

if TYPE_CHECKING:
    from pivot.state import State
    from pivot.state.locks import LockRecord

RUNCACHE_DIR = "runcache"
ENTRY_VERSION = 1
# Part of every key: bump it when the key's inputs change meaning.
_KEY_SCHEMA = "pivot-run-key-1"


@dataclass(frozen=True, slots=True)
class RunEntry:
    """One remembered run: which stage made which outputs from ``key``."""

    key: str
    address: str
    time: float  # Unix seconds, when the run (or commit) completed
    outs: tuple[LockEntry, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": ENTRY_VERSION,
            "key": self.key,
            "address": self.address,
            "time": self.time,
            "outs": [entry.to_json() for entry in self.outs],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "RunEntry":
        key, address, when = data["key"], data["address"], data["time"]
        if type(key) is not str or type(address) is not str or not isinstance(when, (int, float)):
            raise ValueError("malformed run-cache entry")
        return cls(key, address, float(when), tuple(LockEntry.from_json(e) for e in data["outs"]))

    def describe(self) -> str:
        """``run of 2026-01-07 04:37:04 (key 1a2b3c4d)``, local time."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.time))
        return f"run of {stamp} (key {self.key[:8]})"


def eligible(stage: Stage) -> bool:
    """Whether a stage's outputs are a function of its key, so a past run
    may stand in for a new one.  As DVC: not for ``always_changed`` stages,
    stages without deps or params, without outs, or with an output that is
    not cached or is ``persist`` (it depends on its own previous content)."""
    if stage.always_changed or stage.frozen or not stage.outs or not (stage.deps or stage.params):
        return False
    return all(out.cache and not out.persist for out in stage.outs)


def run_key(
    stage: Stage,
    cmds: Sequence[str],
    deps: Sequence[tuple[str, str]],
    params: Mapping[str, Mapping[str, Any]],
) -> str:
    """The key of ``stage`` run with ``cmds`` on deps ``(path, hash)`` and
    ``params`` (file -> key -> value).  Canonical JSON, xxh3-128, hex."""
    document = {
        "schema": _KEY_SCHEMA,
        "cmds": list(cmds),
        "wdir": stage.wdir,
        "deps": [[path, digest] for path, digest in deps],
        "params": {path: dict(values) for path, values in params.items()},
        "outs": [out.path for out in stage.outs],
    }
    text = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return xxhash.xxh3_128_hexdigest(text.encode("utf-8", "surrogateescape"))


def record_key(stage: Stage, record: "LockRecord") -> str:
    """The key of the run a lock record describes."""
    return run_key(stage, record.cmd, [(e.path, e.hash) for e in record.deps], record.params)


def current_params(stage: Stage, state: "State") -> dict[str, dict[str, Any]] | None:
    """The stage's tracked params as a record holds them; None when a params
    file or a tracked key is missing (the stage must run, and fail)."""
    params: dict[str, dict[str, Any]] = {}
    for pdep in stage.params:
        values = state.params.values(pdep)
        if values is None or any(key not in values for key in pdep.keys or ()):
            return None
        params.setdefault(pdep.path, {}).update(values)
    return params


class RunCache:
    """Reads and writes the entries under ``.pivot/runcache/``."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self._dir_str = str(directory)  # lookups build plain strings: a Path per key costs more than the open
        self._holds_entries = False
        # while a printed plan is made (None otherwise: a long run would
        # only grow it), the key each stage's entry was looked for under, by
        # address: a plan united with its stages to run keeps those absent
        self.looked_for: dict[str, str] | None = None

    def path_for(self, key: str) -> Path:
        return Path(self.entry_file(key))

    def entry_file(self, key: str) -> str:
        """The entry's file, as a plain string (planning asks for thousands)."""
        return f"{self._dir_str}/{key[:2]}/{key[2:]}.json"

    def may_hold_entries(self) -> bool:
        """False when the run cache certainly holds no entry (no directory, or
        no subdirectory in it), so no key needs computing.  A True answer is
        kept (entries are only removed by ``pivot gc``); a False one is asked
        again each time: an entry may be written meanwhile."""
        if not self._holds_entries:
            try:
                with os.scandir(self._dir_str) as listing:
                    self._holds_entries = any(entry.is_dir() for entry in listing)
            except OSError:
                return False
        return self._holds_entries

    def lookup(self, key: str, address: str | None = None) -> RunEntry | None:
        """The entry for ``key`` (``address``'s current key, noted in
        ``looked_for`` while that is kept); None if absent or unreadable (a
        damaged entry only costs a rerun)."""
        if address is not None and self.looked_for is not None:
            self.looked_for[address] = key
        try:
            with open(self.entry_file(key), "rb") as handle:
                raw = handle.read()
        except OSError:
            return None
        try:
            entry = RunEntry.from_json(json.loads(raw))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            from pivot.state.notices import warn

            warn(f"run-cache entry '.pivot/runcache/{key[:2]}/{key[2:]}.json' is corrupt ({exc}); ignoring it")
            return None
        return entry if entry.key == key else None

    def remember(self, key: str, address: str, outs: Sequence[LockEntry]) -> RunEntry:
        """Write (or replace) the entry for ``key`` atomically."""
        entry = RunEntry(key, address, time.time(), tuple(outs))
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        from pivot import atomic

        atomic.write_text(path, json.dumps(entry.to_json(), sort_keys=True, ensure_ascii=False))
        return entry

    def entries(self) -> Iterator[tuple[Path, RunEntry | None]]:
        """Every entry file with its entry (None when unreadable)."""
        if not self.dir.is_dir():
            return
        for path in sorted(self.dir.glob("*/*.json")):  # the atomic writer's temp names end in .tmp
            key = path.parent.name + path.name[: -len(".json")]
            yield path, self.lookup(key)

    def remove(self, key: str) -> None:
        _unlink_quietly(self.path_for(key))


def _unlink_quietly(path: str | os.PathLike[str]) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
