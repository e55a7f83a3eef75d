"""Whole-database images of a token store: taken while other processes use the token, installed as a new token.

A snapshot is SQLite's online backup API run inside one read transaction on the source: in WAL mode that
transaction sees one committed state of the database and blocks no writer, so a backup taken while NGINX workers sign
or the CLI creates keys is neither torn nor restarted, and nobody waits for it. The image is the database file as
SQLite serialises it, whatever tables the store has: backups do not depend on the store's schema.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path

from pyhsm.store.backup_file import BackupError, Progress
from pyhsm.store.directory import TokenDirectory
from pyhsm.store.sqlite import SqliteTokenStore, StoreError

_PAGES_PER_STEP = 256


def take_snapshot(db_path: Path, progress: Progress | None = None) -> bytes:
    """A consistent image of the database at `db_path`, as bytes (no plaintext copy on disk)."""
    if not db_path.is_file():
        raise BackupError(f"{db_path} does not exist")
    old_umask = os.umask(0o077)  # if no one has the token open, this connection creates its -wal and -shm files
    source = sqlite3.connect(db_path, timeout=30, isolation_level=None)
    target = sqlite3.connect(":memory:")
    try:
        source.execute("BEGIN")
        source.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # the read transaction starts here
        source.backup(target, pages=_PAGES_PER_STEP,
                      progress=(lambda _status, left, total: progress(total - left, total)) if progress else None)
        source.execute("COMMIT")
        image = bytearray(target.serialize())
    finally:
        source.close()
        target.close()
        os.umask(old_umask)
    # The header's file format bytes say WAL (2, 2); an image to deserialise must say rollback journal (1, 1).
    # The store turns WAL back on when it opens the restored token.
    image[18:20] = b"\x01\x01"
    return bytes(image)


def check_image(image: bytes) -> None:
    """The image is an SQLite database that passes SQLite's own integrity check."""
    db = sqlite3.connect(":memory:")
    try:
        db.deserialize(image)
        result = db.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"the backup's database image is unusable: {exc}") from None
    finally:
        db.close()
    if result != [("ok",)]:
        raise BackupError(f"the backup's database image fails SQLite's integrity check: {result[:3]}")


def install_image(directory: TokenDirectory, image: bytes, meta: Mapping[str, bytes]) -> int:
    """Install `image` as the token of a new slot with `meta` changed; return the slot.

    The token appears complete or not at all: it is written under a temporary name, closed, then linked to the
    first free slot's name (a slot taken meanwhile by someone else is skipped)."""
    check_image(image)
    tmp = directory.root / f".restore-{os.getpid()}-{os.urandom(4).hex()}.sqlite3"
    try:
        memory = sqlite3.connect(":memory:")
        old_umask = os.umask(0o077)
        try:
            memory.deserialize(image)
            with sqlite3.connect(tmp) as out:
                memory.backup(out)
            out.close()
        finally:
            os.umask(old_umask)
            memory.close()
        store = SqliteTokenStore(tmp)
        try:
            store.set_meta(meta)
        except StoreError as exc:  # e.g. a backup from a newer pyhsm whose store schema this one does not know
            raise BackupError(f"the backup cannot become a token here: {exc}") from None
        finally:
            store.close()
        if Path(f"{tmp}-wal").exists():  # the last close checkpoints and removes it; a token is one file
            raise BackupError(f"could not checkpoint {tmp}; it is left for inspection")
        while True:
            slot = directory.next_free_slot()
            try:
                os.link(tmp, directory.path(slot))
                return slot
            except FileExistsError:
                continue
    finally:
        if not Path(f"{tmp}-wal").exists():
            tmp.unlink(missing_ok=True)
