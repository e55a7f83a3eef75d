"""A backup is authenticated as a whole: any modified byte, a truncation, trailing data, a wrong SO PIN or a
mode mismatch make restore fail with a clear message, and no token appears."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest
from backup_helpers import create_backup, refused, restore
from p11_helpers import SO_PIN, USER_PIN, init_token, pyhsm_cli
from pkcs11 import KeyType


@pytest.fixture(scope="module")
def token_label(lib) -> str:  # type: ignore[no-untyped-def]
    label = f"i-{uuid.uuid4().hex[:8]}"
    init_token(label)
    with lib.get_token(token_label=label).open(rw=True, user_pin=USER_PIN) as s:
        s.generate_key(KeyType.AES, 256, store=True, label="aes")
    return label


@pytest.fixture(scope="module")
def pristine(token_label, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    return create_backup(token_label, tmp_path_factory.mktemp("backups"))


@pytest.fixture
def backup(pristine, tmp_path) -> Path:  # type: ignore[no-untyped-def]
    """A copy of the token's backup for one test to damage."""
    return Path(shutil.copy(pristine, tmp_path / pristine.name))


def _labels() -> set[str]:
    return {t["label"] for t in json.loads(pyhsm_cli("token", "list", "--json").stdout)}  # the bare list


def _refused_restore(path: Path, *extra: str, so_pin: str = SO_PIN) -> str:
    label = f"x-{uuid.uuid4().hex[:8]}"
    message = refused("backup", "restore", str(path), "--label", label, "--so-pin", so_pin, *extra)
    assert label not in _labels()
    return message


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _header_end(path: Path) -> int:
    return 12 + int.from_bytes(path.read_bytes()[8:12], "big")


def test_a_flipped_payload_byte_fails_authentication(backup) -> None:
    _flip(backup, (_header_end(backup) + backup.stat().st_size) // 2)
    assert "failed authentication" in _refused_restore(backup)


def test_a_flipped_tag_byte_fails_authentication(backup) -> None:
    _flip(backup, backup.stat().st_size - 1)
    assert "failed authentication" in _refused_restore(backup)


def test_a_flipped_header_byte_fails(backup) -> None:
    header = backup.read_bytes()[12:_header_end(backup)]
    _flip(backup, 12 + header.index(b'"lineage":"') + len(b'"lineage":"'))  # still valid JSON
    assert "failed authentication" in _refused_restore(backup)


def test_a_flip_anywhere_is_refused_before_anything_is_decrypted(backup, tmp_path) -> None:
    """Each of the first 12 bytes, then one position every 4001 bytes (in-process: the CLI is slow to start)."""
    from pyhsm.store.backup_file import BackupError, open_backup

    original = backup.read_bytes()
    assert open_backup(backup, SO_PIN.encode())[1].startswith(b"SQLite format 3\0")
    copy = tmp_path / "flipped.pyhsm-backup"
    for offset in [*range(12), *range(12, len(original), 4001), len(original) - 1]:
        copy.write_bytes(original)
        _flip(copy, offset)
        with pytest.raises(BackupError):
            open_backup(copy, SO_PIN.encode())


def test_a_truncated_file_says_truncated(backup) -> None:
    data = backup.read_bytes()
    for size in (len(data) - 1, len(data) // 2, 20, 5):
        backup.write_bytes(data[:size])
        message = _refused_restore(backup)
        assert "truncated" in message or "not a pyhsm backup" in message, message


def test_trailing_data_is_refused(backup) -> None:
    backup.write_bytes(backup.read_bytes() + b"\0")
    assert "longer than written" in _refused_restore(backup)


def test_a_wrong_so_pin_does_not_unlock(backup) -> None:
    assert "SO PIN does not unlock" in _refused_restore(backup, so_pin="not-the-so-pin")


def test_a_file_that_is_no_backup_is_refused(tmp_path) -> None:
    path = tmp_path / "junk.pyhsm-backup"
    path.write_bytes(b"SQLite format 3\0" + bytes(100))
    assert "not a pyhsm backup" in _refused_restore(path)


def test_restore_refuses_another_fips_mode(backup) -> None:
    assert "cannot become a FIPS-mode token" in _refused_restore(backup, "--fips")
    assert restore(backup, f"nf-{uuid.uuid4().hex[:8]}", "--no-fips")["backup"]["fips_mode"] is False


def test_restore_refuses_an_existing_label(backup, token_label) -> None:
    assert "exists already" in refused("backup", "restore", str(backup), "--label", token_label,
                                       "--so-pin", SO_PIN)
