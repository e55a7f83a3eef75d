"""SqliteTokenStore: one SQLite database (WAL) per token, shared safely by several processes.

synchronous=NORMAL in WAL mode: a committed transaction survives the process being killed (kill -9); only an
operating-system crash or power loss can lose the last transactions (FULL would fsync every commit, several times
slower key generation). Files are created 0600.
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pyhsm.store.base import ObjectAttrs

if TYPE_CHECKING:
    import sqlite3

SCHEMA_VERSION = 1
_ENTRY = struct.Struct("<QI")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS objects (id INTEGER PRIMARY KEY AUTOINCREMENT, seq INTEGER NOT NULL, attrs BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS objects_seq ON objects(seq);
CREATE TABLE IF NOT EXISTS tombstones (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS tombstones_seq ON tombstones(seq);
"""


class StoreError(Exception):
    pass


def pack(attrs: Mapping[int, bytes]) -> bytes:
    return b"".join(_ENTRY.pack(t, len(v)) + v for t, v in sorted(attrs.items()))


def unpack(blob: bytes) -> ObjectAttrs:
    attrs: ObjectAttrs = {}
    offset = 0
    while offset < len(blob):
        attr_type, size = _ENTRY.unpack_from(blob, offset)
        offset += _ENTRY.size
        attrs[attr_type] = blob[offset:offset + size]
        offset += size
    return attrs


class SqliteTokenStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._pid = -1
        self._conn: sqlite3.Connection | None = None
        self._data_version = -1
        self._shm: int | None = None  # fd of the WAL index, read-only: its header says whether anyone committed
        self._seen_header: bytes | None = None

    # ---- connection ------------------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        """One connection per process: a forked child never reuses its parent's connection."""
        if self._conn is None or self._pid != os.getpid():
            import sqlite3  # with its datetime, on the first use of a token rather than in every C_Initialize

            old_umask = os.umask(0o077)
            try:
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(_SCHEMA)
            finally:
                os.umask(old_umask)
            for suffix in ("", "-wal", "-shm"):
                try:
                    os.chmod(f"{self.path}{suffix}", 0o600)
                except FileNotFoundError:
                    pass
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION).encode(),))
            elif int(row[0]) > SCHEMA_VERSION:
                raise StoreError(f"{self.path} has schema {int(row[0])}; this pyhsm knows {SCHEMA_VERSION}")
            self._conn, self._pid, self._data_version = conn, os.getpid(), -1
            self._forget_shm()
        return self._conn

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            db = self._db()
            if db.in_transaction:  # nested: the outer transaction commits
                yield
                return
            db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _next_seq(self, db: sqlite3.Connection) -> int:
        row = db.execute("SELECT MAX(s) FROM (SELECT MAX(seq) AS s FROM objects UNION ALL "
                         "SELECT MAX(seq) FROM tombstones)").fetchone()
        return int(row[0] or 0) + 1

    # ---- metadata ----------------------------------------------------------------------------------
    def all_meta(self) -> dict[str, bytes]:
        with self._lock:
            return {k: bytes(v) for k, v in self._db().execute("SELECT key, value FROM meta")}

    def set_meta(self, items: Mapping[str, bytes | None]) -> None:
        with self.transaction():
            db = self._db()
            for key, value in items.items():
                if value is None:
                    db.execute("DELETE FROM meta WHERE key=?", (key,))
                else:
                    db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # ---- objects -----------------------------------------------------------------------------------
    def insert_object(self, attrs: Mapping[int, bytes]) -> int:
        with self.transaction():
            db = self._db()
            cur = db.execute("INSERT INTO objects (seq, attrs) VALUES (?, ?)", (self._next_seq(db), pack(attrs)))
            return int(cur.lastrowid or 0)

    def update_object(self, oid: int, attrs: Mapping[int, bytes]) -> None:
        with self.transaction():
            db = self._db()
            db.execute("UPDATE objects SET seq=?, attrs=? WHERE id=?", (self._next_seq(db), pack(attrs), oid))

    def delete_object(self, oid: int) -> bool:
        with self.transaction():
            db = self._db()
            seq = self._next_seq(db)
            deleted = db.execute("DELETE FROM objects WHERE id=?", (oid,)).rowcount > 0
            if deleted:
                db.execute("INSERT OR REPLACE INTO tombstones VALUES (?, ?)", (oid, seq))
            return deleted

    def load_objects(self) -> dict[int, ObjectAttrs]:
        with self._lock:
            return {int(i): unpack(bytes(b)) for i, b in self._db().execute("SELECT id, attrs FROM objects")}

    def refresh_needed(self) -> bool:
        """True when another connection committed since we last looked.

        Every commit in WAL mode rewrites the WAL-index header, the first 48 bytes of the -shm file (SQLite's
        documented WAL format): while those bytes are the ones we saw at the last check, nobody committed, and
        the check costs a memory compare instead of a query, which matters because every use of an object
        checks. When they differ, PRAGMA data_version decides (it ignores this connection's own commits).
        """
        with self._lock:
            db = self._db()
            header = self._wal_index_header()
            if header is not None and header == self._seen_header:
                return False
            version = int(db.execute("PRAGMA data_version").fetchone()[0])
            changed, self._data_version = version != self._data_version, version
            self._seen_header = header  # read before the query: a commit in between shows up next time
            return changed

    def change_stamp(self) -> tuple[str, bytes] | None:
        """A file and the bytes it holds while no process has committed since the last refresh_needed(): the -shm
        path and the WAL-index header seen then (None when there is none). The native data plane
        (csrc/dataplane.c) compares them before it runs an operation the engine authorised."""
        header = self._seen_header
        return None if header is None else (f"{self.path}-shm", header)

    def _wal_index_header(self) -> bytes | None:
        """The -shm file's first WAL-index header copy, or None when it cannot be read (then always query).

        Read with pread, never mmap: a process that opens the database as the only user truncates the -shm file,
        and touching a mapping past the end of a truncated file is SIGBUS, which would kill the host."""
        if self._shm is None:
            try:
                self._shm = os.open(f"{self.path}-shm", os.O_RDONLY | os.O_CLOEXEC)
            except OSError:  # not there yet
                return None
        if os.fstat(self._shm).st_nlink == 0:  # deleted (all connections closed) and maybe made anew: reopen
            self._forget_shm()
            return None
        header = os.pread(self._shm, 48, 0)
        return header if len(header) == 48 else None

    def _forget_shm(self) -> None:
        if self._shm is not None:
            try:
                os.close(self._shm)
            except OSError:
                pass
        self._shm, self._seen_header = None, None

    def changes_since(self, seq: int) -> tuple[int, dict[int, ObjectAttrs | None]]:
        with self.transaction():
            db = self._db()
            changes: dict[int, ObjectAttrs | None] = {}
            top = seq
            for oid, dead_seq in db.execute("SELECT id, seq FROM tombstones WHERE seq > ?", (seq,)):
                changes[int(oid)] = None
                top = max(top, int(dead_seq))
            for oid, row_seq, blob in db.execute("SELECT id, seq, attrs FROM objects WHERE seq > ?", (seq,)):
                changes[int(oid)] = unpack(bytes(blob))
                top = max(top, int(row_seq))
            return top, changes

    def close(self) -> None:
        with self._lock:
            self._forget_shm()
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
