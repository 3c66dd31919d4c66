"""The stat cache: ``(path, inode, mtime_ns, size) -> hash`` in SQLite.

``.pivot/state.db`` holds one row per file pivot hashed.  The whole table is
loaded with one query the first time a command needs it, lookups are dict
hits, and new rows are written in one transaction when the command ends.

Racy files: a file rewritten within the filesystem's mtime granularity
after it was hashed keeps its stat.  A row is therefore trusted only when
the file's mtime was at least ``RACY_WINDOW_NS`` older than the moment it
was hashed; otherwise the file is read again (and the row refreshed), like
git's racy-index check.

A database that cannot be written (a read-only project, a full disk) is
still read: lookups keep answering, new rows are just not remembered.  Only
one SQLite reports damaged (corrupt, not a database) is deleted and rebuilt.
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

# DVC's md5 of files (to adopt a dvc.lock), stat-gated like the stat table;
# ``variant`` is "md5" or "md5-dos2unix" (DVC 2's text normalisation).
_MD5_SCHEMA = """
CREATE TABLE IF NOT EXISTS md5 (
    path TEXT NOT NULL,
    variant TEXT NOT NULL,
    inode INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL,
    md5 TEXT NOT NULL,
    hashed_ns INTEGER NOT NULL,
    PRIMARY KEY (path, variant)
) WITHOUT ROWID
"""

# Verdicts ("up to date") by the signatures they read (pivot.state.verdicts builds and reads the entries).
_VERDICT_SCHEMA = """
CREATE TABLE IF NOT EXISTS verdict (
    address TEXT PRIMARY KEY,
    entry BLOB NOT NULL
) WITHOUT ROWID
"""

# The settled pipeline: the whole pipeline's verdict (pivot.state.settled), in
# two rows at most: one whose reasons were explained (keyed EXPLAINED +
# identity: ``status``, ``plan --explain``), one for everything else.
EXPLAINED = "explain:"
_SETTLED_SCHEMA = """
CREATE TABLE IF NOT EXISTS settled (
    identity TEXT PRIMARY KEY,
    entry BLOB NOT NULL
) WITHOUT ROWID
"""

# path -> (inode, mtime_ns, size, hash, hashed_ns)
Row = tuple[int, int, int, str, int]

# SQLite's primary result codes (``exc.sqlite_errorcode & 0xFF``).  Every
# other failure (read-only, full, cannot open, I/O) means "cannot write".
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6
_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_NOTADB = 10, 11, 13, 26


def _code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def _damaged(exc: sqlite3.Error) -> bool:
    """The database file itself is bad: worth deleting and rebuilding."""
    return _code(exc) in (_SQLITE_CORRUPT, _SQLITE_NOTADB)


def _busy(exc: sqlite3.Error) -> bool:
    return _code(exc) in (_SQLITE_BUSY, _SQLITE_LOCKED)


def _why(exc: BaseException, directory: Path | None = None) -> str:
    """The reason to show; SQLite reports a full disk as an I/O error when
    it cannot grow its ``-shm`` file, so a full disk is named as such."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if directory is not None and _code(exc) in (_SQLITE_IOERR, _SQLITE_FULL) and disk_full(directory):
        return "No space left on device"
    return str(exc)


def disk_full(directory: Path) -> bool:
    """Whether the file system holding ``directory`` has no free block left."""
    try:
        return os.statvfs(directory).f_bavail == 0
    except OSError:
        return False


def _row(st: os.stat_result, digest: str) -> Row | None:
    """The row to remember a hash by; None for a file changed within the
    racy window, whose row ``_trusted`` would never accept (the outputs a
    run just wrote would only fill memory and the database)."""
    hashed_ns = time.time_ns()
    if hashed_ns - st.st_mtime_ns < RACY_WINDOW_NS:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size, digest, hashed_ns)


def _trusted(row: Row | None, st: os.stat_result) -> str | None:
    """The row's hash if the file's stat is unchanged and was not racy when hashed."""
    if row is None:
        return None
    inode, mtime_ns, size, digest, hashed_ns = row
    if inode != st.st_ino or mtime_ns != st.st_mtime_ns or size != st.st_size:
        return None
    if hashed_ns - mtime_ns < RACY_WINDOW_NS:
        return None
    return digest


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
        self._verdicts: dict[str, bytes] | None = None
        self._md5_rows: dict[tuple[str, str], Row] | None = None
        self._pending_md5: dict[tuple[str, str], Row] = {}
        self._pending_verdicts: dict[str, bytes] = {}
        self._pending_settled: tuple[str, bytes, bool] | None = None
        self._shown = f"{path.parent.name}/{path.name}"  # .pivot/state.db
        self._disabled = False  # unusable and not removable: this command runs without it
        self._unwritable: str | None = None  # why it cannot be written: read, never written

    # -- lookups -------------------------------------------------------------

    def lookup(self, relpath: str, st: os.stat_result) -> str | None:
        """The recorded hash if the file's stat is unchanged and not racy."""
        if self._rows is None:
            self._rows = self._load()
        return _trusted(self._pending.get(relpath) or self._rows.get(relpath), st)

    def store(self, relpath: str, st: os.stat_result, digest: str) -> None:
        row = _row(st, digest)
        if row is not None:
            self._pending[relpath] = row

    def lookup_md5(self, relpath: str, variant: str, st: os.stat_result) -> str | None:
        """DVC's md5 of the file, as ``lookup`` (same stat and racy rules)."""
        if self._md5_rows is None:
            rows = self._query("SELECT path, variant, inode, mtime_ns, size, md5, hashed_ns FROM md5")
            self._md5_rows = {(row[0], row[1]): row[2:] for row in rows}
        key = (relpath, variant)
        return _trusted(self._pending_md5.get(key) or self._md5_rows.get(key), st)

    def store_md5(self, relpath: str, variant: str, st: os.stat_result, digest: str) -> None:
        row = _row(st, digest)
        if row is not None:
            self._pending_md5[(relpath, variant)] = row

    def lock_memo(self, address: str) -> bytes | None:
        """The remembered entry for a stage's lock record (loaded with one query)."""
        if self._lock_memo is None:
            self._lock_memo = self._load_lock_memo()
        return self._pending_memo.get(address) or self._lock_memo.get(address)

    def remember_lock(self, address: str, entry: bytes) -> None:
        self._pending_memo[address] = entry

    def verdict(self, address: str) -> bytes | None:
        """The remembered verdict entry for a stage (loaded with one query)."""
        if self._verdicts is None:
            self._verdicts = dict(self._query("SELECT address, entry FROM verdict"))
        return self._pending_verdicts.get(address) or self._verdicts.get(address)

    def remember_verdict(self, address: str, entry: bytes) -> None:
        self._pending_verdicts[address] = entry

    def settled(self, key: str) -> bytes | None:
        """The settled-pipeline entry kept under ``key`` (a pipeline's identity,
        or EXPLAINED and the identity)."""
        rows = self._query("SELECT entry FROM settled WHERE identity = ?", (key,))
        return rows[0][0] if rows else None

    def remember_settled(self, key: str, entry: bytes, *, replaces_both: bool = False) -> None:
        """Keep ``entry`` as the one settled-pipeline entry of its kind
        (explained or not, by ``key``): it replaces the other of that kind,
        or with ``replaces_both`` every other entry."""
        self._pending_settled = (key, entry, replaces_both)

    # -- storage -------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        """The read-write connection (creating the database if needed)."""
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(_SCHEMA)
                conn.execute(_LOCK_MEMO_SCHEMA)
                conn.execute(_VERDICT_SCHEMA)
                conn.execute(_SETTLED_SCHEMA)
                conn.execute(_MD5_SCHEMA)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _reader(self) -> sqlite3.Connection | None:
        """A connection to read from: read-write when this command may write,
        else (or when writing turns out impossible) read-only; None when
        there is no database."""
        if self._conn is not None:
            return self._conn
        if self._disabled or not self.path.exists():
            return None
        if not self.readonly and self._unwritable is None:
            try:
                return self._connect()
            except sqlite3.Error as exc:
                if _damaged(exc):
                    raise
                self._unwritable = _why(exc, self.path.parent)
            except OSError as exc:
                self._unwritable = _why(exc)
        return self._connect_readonly()

    def _connect_readonly(self) -> sqlite3.Connection:
        """Open without writing anything.  A WAL database in a directory we
        cannot write (or on a full disk) cannot get its ``-shm`` file, so the
        last resort is ``immutable=1``, which reads the main file only: rows
        still in a ``-wal`` are missed, which a cache can afford (a row is
        only trusted when the file's stat still matches it)."""
        from urllib.parse import quote

        uri = f"file:{quote(str(self.path))}?mode=ro"
        error: sqlite3.Error | None = None
        for suffix in ("", "&immutable=1"):
            conn = sqlite3.connect(uri + suffix, uri=True, isolation_level=None, check_same_thread=False)
            try:
                conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
            except sqlite3.Error as exc:
                conn.close()
                if _damaged(exc):
                    raise
                error = exc
                continue
            self._conn = conn
            return conn
        assert error is not None
        raise error

    def _query(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        """All rows of ``sql``; [] without a usable database (warning once)."""
        if self._disabled:
            return []
        try:
            conn = self._reader()
            return [] if conn is None else conn.execute(sql, parameters).fetchall()
        except sqlite3.Error as exc:
            if _damaged(exc):
                self._rebuild(exc)
            elif "no such table" in str(exc):  # read-only, made before the table existed
                return []
            else:
                self._close_connection()
                why = _why(exc, self.path.parent)
                warn(f"'{self._shown}' cannot be opened ({why}); running without the stat cache")
                self._disabled = True
            return []

    def _load(self) -> dict[str, Row]:
        rows = self._query("SELECT path, inode, mtime_ns, size, hash, hashed_ns FROM stat")
        return {row[0]: row[1:] for row in rows}

    def _load_lock_memo(self) -> dict[str, bytes]:
        return dict(self._query("SELECT address, entry FROM lock_memo"))

    def _close_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._conn = None

    def _rebuild(self, exc: Exception) -> None:
        """A damaged database is only a cache: warn, drop it, start afresh.
        One that cannot be removed (a directory, no permission, a read-only
        command) is left alone, and this command runs without a stat cache."""
        self._close_connection()
        if self.readonly:
            warn(f"'{self._shown}' is unreadable ({exc}); running without the stat cache")
            self._disabled = True
            return
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
        self._unwritable = None
        warn(f"'{self._shown}' is unreadable ({exc}); rebuilding the stat cache")

    def prune(self, path_gone: Callable[[str], bool], record_gone: Callable[[str], bool]) -> int:
        """Delete the stat rows of files that are gone and the remembered
        entries of lock records that are gone (``pivot gc``); the number of
        rows deleted.  Only rows loaded now are judged: a row another command
        adds meanwhile stays."""
        if self.readonly or self._disabled or not self.path.exists():
            return 0
        stale = [path for path in (self._rows if self._rows is not None else self._load()) if path_gone(path)]
        stale_md5 = sorted({path for path, in self._query("SELECT path FROM md5") if path_gone(path)})
        memo = self._lock_memo if self._lock_memo is not None else self._load_lock_memo()
        forgotten = [address for address in memo if record_gone(address)]
        verdicts = self._verdicts if self._verdicts is not None else dict(
            self._query("SELECT address, entry FROM verdict"))
        forgotten_verdicts = [address for address in verdicts if record_gone(address)]
        if self._disabled or not (stale or stale_md5 or forgotten or forgotten_verdicts):
            return 0
        if self._unwritable is not None:
            warn(f"'{self._shown}' could not be pruned ({self._unwritable})")
            return 0
        try:
            conn = self._connect()
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("DELETE FROM stat WHERE path = ?", ((path,) for path in stale))
            conn.executemany("DELETE FROM md5 WHERE path = ?", ((path,) for path in stale_md5))
            conn.executemany("DELETE FROM lock_memo WHERE address = ?", ((address,) for address in forgotten))
            conn.executemany("DELETE FROM verdict WHERE address = ?", ((address,) for address in forgotten_verdicts))
            conn.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            self._rollback()
            warn(f"'{self._shown}' could not be pruned ({_why(exc, self.path.parent)})")
            return 0
        self._rows = None
        self._lock_memo = None
        self._verdicts = None
        self._md5_rows = None
        return len(stale) + len(stale_md5) + len(forgotten) + len(forgotten_verdicts)

    def close(self) -> None:
        """Write the new rows in one transaction and close.  Writing is best
        effort: a database that cannot take them (read-only, disk full,
        busy) is left as it was, with a warning."""
        try:
            if (self._pending or self._pending_memo or self._pending_verdicts or self._pending_md5
                    or self._pending_settled) and not self.readonly:
                self._flush()
        finally:
            self._close_connection()

    def _flush(self) -> None:
        rows = [(path, *row) for path, row in self._pending.items()]
        for attempt in range(2):
            if self._disabled:
                return
            if self._unwritable is not None:
                self._not_updated(self._unwritable)
                return
            try:
                conn = self._connect()
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("INSERT OR REPLACE INTO stat VALUES (?, ?, ?, ?, ?, ?)", rows)
                conn.executemany("INSERT OR REPLACE INTO lock_memo VALUES (?, ?)", self._pending_memo.items())
                conn.executemany("INSERT OR REPLACE INTO verdict VALUES (?, ?)", self._pending_verdicts.items())
                conn.executemany("INSERT OR REPLACE INTO md5 VALUES (?, ?, ?, ?, ?, ?, ?)",
                                 [(*key, *row) for key, row in self._pending_md5.items()])
                if self._pending_settled is not None:
                    key, entry, replaces_both = self._pending_settled
                    if replaces_both:
                        conn.execute("DELETE FROM settled")
                    else:
                        same_kind = "LIKE" if key.startswith(EXPLAINED) else "NOT LIKE"
                        conn.execute(f"DELETE FROM settled WHERE identity {same_kind} ?", (EXPLAINED + "%",))
                    conn.execute("INSERT INTO settled VALUES (?, ?)", (key, entry))
                conn.execute("COMMIT")
                break
            except sqlite3.Error as exc:
                self._rollback()
                if _busy(exc):
                    warn(f"'{self._shown}' is busy; stat cache not updated this time")
                    return
                if _damaged(exc) and not attempt:
                    self._rebuild(exc)
                    continue
                self._not_updated(_why(exc, self.path.parent))
                return
            except OSError as exc:  # .pivot/ cannot be created
                self._not_updated(_why(exc))
                return
        self._pending.clear()
        self._pending_memo.clear()
        self._pending_verdicts.clear()
        self._pending_md5.clear()
        self._pending_settled = None

    def _rollback(self) -> None:
        if self._conn is not None and self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    def _not_updated(self, why: str) -> None:
        self._unwritable = why
        warn(f"'{self._shown}' cannot be written ({why}); the stat cache was not updated")
