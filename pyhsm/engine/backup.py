"""Backups of whole tokens and their restoration as new tokens of the same lineage.

A backup is the token's database as one consistent image (pyhsm/store/snapshot.py) in an encrypted, authenticated
file (pyhsm/store/backup_file.py). It holds whatever the store holds (users and their credential verifiers, keys,
ownership, quorum settings, FIPS mode, audit chain), so nothing here depends on the store's schema.

Creating and restoring a backup needs the SO: its login proves the right to copy the token, and its PIN unlocks
the token key that authenticates the file. A restored token is a new token (new slot, label and serial) with the
same lineage id and the same token key, so its users log in with their passwords and use their keys at once, and
keys replicate between it and its origin (pyhsm/engine/replication.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pyhsm import __version__
from pyhsm import constants as ck
from pyhsm.engine import Engine
from pyhsm.engine.token import Token
from pyhsm.store.backup_catalog import file_name
from pyhsm.store.backup_file import BackupError, BackupHeader, Progress, Source, now_utc, open_backup, write_backup
from pyhsm.store.snapshot import install_image, take_snapshot


def _text(value: bytes) -> str:
    return value.decode("utf-8", errors="replace").rstrip(" \0")


@contextmanager
def logged_in(eng: Engine, slot: int, user_type: int, pin: bytes) -> Iterator[Token]:
    """A read-write session logged in as `user_type` (the engine counts failed PINs as for any host)."""
    handle = eng.open_session(slot, ck.CKF_SERIAL_SESSION | ck.CKF_RW_SESSION)
    try:
        eng.login(handle, user_type, pin)
        yield eng.session(handle).token
    finally:
        eng.close_session(handle)  # the last session of the token: the login and the token key go with it


def lineage(token: Token) -> str:
    """The token's lineage id: a fingerprint (HKDF) of its token key, which C_InitToken makes anew and a restore
    keeps. Equal ids prove equal keys, so no metadata can make two tokens claim one lineage falsely; reading it
    needs a login, like everything else that touches the key."""
    if token.token_key is None:
        raise BackupError("the lineage of a token is known only while someone is logged in")
    return token.token_key.derive(b"", b"pyhsm lineage v1", 16).hex()


@dataclass(frozen=True)
class Restored:
    slot: int
    label: str
    serial: str
    header: BackupHeader


def create_backup(eng: Engine, slot: int, so_pin: bytes, target: Path, progress: Progress | None = None,
                  encrypt_progress: Progress | None = None) -> tuple[Path, BackupHeader]:
    """Back up the token in `slot` to a new file: `target`, or a file named after the token in `target` if that
    is a directory."""
    with logged_in(eng, slot, ck.CKU_SO, so_pin) as token:
        assert token.token_key is not None
        lineage_id = lineage(token)
        image = take_snapshot(eng.token_directory().path(slot), progress)
        created, label = now_utc(), _text(token.label)
        meta = {"lineage": lineage_id, "created": created, "source": Source(label, _text(token.serial), slot),
                "fips_mode": token.fips, "pyhsm_version": __version__}
        path = target / file_name(label, datetime.fromisoformat(created), lineage_id) if target.is_dir() else target
        header = write_backup(path, meta, image, token.token_key, so_pin, encrypt_progress)
        token.record("backup-create", detail={"file": path.name, "created": created})
        return path, header


def restore_backup(eng: Engine, path: Path, so_pin: bytes, label: str, fips: bool | None = None,
                   progress: Progress | None = None) -> Restored:
    """Create a new token labelled `label` from the backup at `path` (the caller checks that the label is new).

    `fips`, when given, is the mode the new token must have: a backup of another mode is refused (keys made
    under one mode's rules must not silently move to the other)."""
    header, image = open_backup(path, so_pin, progress)
    if fips is not None and fips != header.fips_mode:
        raise BackupError(f"the backup is of a {_mode(header.fips_mode)} token; it cannot become a "
                          f"{_mode(fips)} token")
    serial = os.urandom(8).hex()
    provenance: dict[str, object] = {"file": path.name, "created": header.created, "source": header.source.__dict__}
    slot = install_image(eng.token_directory(), image, {
        "label": label.encode(), "serial": serial.encode(), "restored_from": json.dumps(provenance).encode()})
    with logged_in(eng, slot, ck.CKU_SO, so_pin) as token:  # the SO of the backup opens the new token
        if lineage(token) != header.lineage:
            raise BackupError(f"the token restored into slot {slot} is not of the backup's lineage")
        token.record("backup-restore", detail=provenance)
    return Restored(slot, label, serial, header)


def _mode(fips: bool) -> str:
    return "FIPS-mode" if fips else "non-FIPS"
