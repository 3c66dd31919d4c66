"""The stat cache: ``(path, inode, mtime_ns, size) -> hash`` in SQLite.

``.pivot/state.db`` holds one row per file pivot hashed.  The whole table is
loaded with one query the first time a command needs it, lookups are dict
hits, and new rows are written in one transaction when the command ends.

Racy files: a file rewritten within the filesystem's mtime granularity
after it was hashed keeps its stat.  A row is therefore trusted only when
the file's mtime was at least ``RACY_WINDOW_NS`` older than the moment it
was hashed; otherwise the file is read again (and the row refreshed), like
git's racy-index check.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Callable

from pivot.state.notices import warn

RACY_WINDOW_NS = 2_000_000_000
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stat (
    path TEXT PRIMARY KEY,
    inode INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL,
    hash TEXT NOT NULL,
    hashed_ns INTEGER NOT NULL
) WITHOUT ROWID
"""

# Parsed lock records by file signature (pivot.state.locks builds and reads the entries).
_LOCK_MEMO_SCHEMA = """
CREATE TABLE IF NOT EXISTS lock_memo (
    address TEXT PRIMARY KEY,
    entry BLOB NOT NULL
) WITHOUT ROWID
"""

# path -> (inode, mtime_ns, size, hash, hashed_ns)
Row = tuple[int, int, int, str, int]


class StatDB:
    """Stat rows for one command; ``close()`` commits the new ones."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        self._conn: sqlite3.Connection | None = None
        self._rows: dict[str, Row] | None = None
        self._pending: dict[str, Row] = {}
        self._lock_memo: dict[str, bytes] | None = None
        self._pending_memo: dict[str, bytes] = {}
        self._shown = f"{path.parent.name}/{path.name}"  # .pivot/state.db
        self._disabled = False  # unusable and not removable: this command runs without it

    # -- lookups -------------------------------------------------------------

    def lookup(self, relpath: str, st: os.stat_result) -> str | None:
        """The recorded hash if the file's stat is unchanged and not racy."""
        if self._rows is None:
            self._rows = self._load()
        row = self._pending.get(relpath) or self._rows.get(relpath)
        if row is None:
            return None
        inode, mtime_ns, size, digest, hashed_ns = row
        if inode != st.st_ino or mtime_ns != st.st_mtime_ns or size != st.st_size:
            return None
        if hashed_ns - mtime_ns < RACY_WINDOW_NS:
            return None
        return digest

    def store(self, relpath: str, st: os.stat_result, digest: str) -> None:
        self._pending[relpath] = (st.st_ino, st.st_mtime_ns, st.st_size, digest, time.time_ns())

    def lock_memo(self, address: str) -> bytes | None:
        """The remembered entry for a stage's lock record (loaded with one query)."""
        if self._lock_memo is None:
            self._lock_memo = self._load_lock_memo()
        return self._pending_memo.get(address) or self._lock_memo.get(address)

    def remember_lock(self, address: str, entry: bytes) -> None:
        self._pending_memo[address] = entry

    # -- storage -------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(_SCHEMA)
            conn.execute(_LOCK_MEMO_SCHEMA)
            self._conn = conn
        return self._conn

    def _load(self) -> dict[str, Row]:
        if self._disabled or not self.path.exists():
            return {}
        try:
            cursor = self._connect().execute(
                "SELECT path, inode, mtime_ns, size, hash, hashed_ns FROM stat"
            )
            return {row[0]: row[1:] for row in cursor}
        except sqlite3.DatabaseError as exc:
            self._rebuild(exc)
            return {}

    def _load_lock_memo(self) -> dict[str, bytes]:
        if self._disabled or not self.path.exists():
            return {}
        try:
            return dict(self._connect().execute("SELECT address, entry FROM lock_memo"))
        except sqlite3.DatabaseError as exc:
            self._rebuild(exc)
            return {}

    def _rebuild(self, exc: Exception) -> None:
        """A damaged database is only a cache: warn, drop it, start afresh.
        One that cannot be removed (a directory, no permission) is left
        alone, and this command runs without a stat cache."""
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._conn = None
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(f"{self.path}{suffix}")
            except FileNotFoundError:
                pass
            except OSError as error:
                warn(f"'{self._shown}' is unusable ({exc}) and cannot be removed ({error.strerror});"
                     " running without the stat cache")
                self._disabled = True
                return
        warn(f"'{self._shown}' is unreadable ({exc}); rebuilding the stat cache")

    def prune(self, path_gone: Callable[[str], bool], record_gone: Callable[[str], bool]) -> int:
        """Delete the stat rows of files that are gone and the remembered
        entries of lock records that are gone (``pivot gc``); the number of
        rows deleted.  Only rows loaded now are judged: a row another command
        adds meanwhile stays."""
        if self.readonly or self._disabled or not self.path.exists():
            return 0
        stale = [path for path in (self._rows if self._rows is not None else self._load()) if path_gone(path)]
        memo = self._lock_memo if self._lock_memo is not None else self._load_lock_memo()
        forgotten = [address for address in memo if record_gone(address)]
        if not stale and not forgotten:
            return 0
        try:
            conn = self._connect()
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("DELETE FROM stat WHERE path = ?", ((path,) for path in stale))
            conn.executemany("DELETE FROM lock_memo WHERE address = ?", ((address,) for address in forgotten))
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            warn(f"'{self._shown}' could not be pruned ({exc})")
            return 0
        self._rows = None
        self._lock_memo = None
        return len(stale) + len(forgotten)

    def close(self) -> None:
        """Write the new rows in one transaction and close."""
        try:
            if (self._pending or self._pending_memo) and not self.readonly:
                self._flush()
        finally:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _flush(self) -> None:
        rows = [(path, *row) for path, row in self._pending.items()]
        for attempt in range(2):
            if self._disabled:
                return
            try:
                conn = self._connect()
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("INSERT OR REPLACE INTO stat VALUES (?, ?, ?, ?, ?, ?)", rows)
                conn.executemany("INSERT OR REPLACE INTO lock_memo VALUES (?, ?)", self._pending_memo.items())
                conn.execute("COMMIT")
                break
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    warn(f"'{self._shown}' is busy; stat cache not updated this time")
                    return
                if attempt:
                    raise
                self._rebuild(exc)
            except sqlite3.DatabaseError as exc:
                if attempt:
                    raise
                self._rebuild(exc)
        self._pending.clear()
        self._pending_memo.clear()
