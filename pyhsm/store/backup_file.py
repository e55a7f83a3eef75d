"""Backup files: one consistent image of a token database, encrypted and authenticated as a whole.

Layout:   MAGIC (8) | header length (u32, big-endian) | header (JSON, UTF-8) | payload | tag (32)

- The header is plaintext so `backup list` and retention work without a PIN; it is authenticated with the rest.
- enc_key | mac_key = HKDF-SHA256(token key, salt = header "salt", info = _INFO), 32 bytes each: a fresh pair per
  file, and a backup can only be made (or verified) by someone holding the token key.
- payload = AES-256-CTR(enc_key, header "nonce") of the database image. Secret attribute values inside the image
  are still sealed under the token key as the store holds them; the outer encryption also hides labels, user names
  and the audit log from whoever holds the file.
- tag = HMAC-SHA256(mac_key, everything before the tag): encrypt-then-MAC. Restore checks the length first (a
  truncated file says so), then the tag over every byte, and only then decrypts: a modified byte anywhere fails.
- header "unlock" is the token key wrapped under scrypt of the SO PIN given at creation (the store's own PIN
  wrapping), so restoring needs that PIN and nothing else.
"""

from __future__ import annotations

import hmac
import json
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from pyhsm.store.sealing import SealError, TokenKey, WrongPin

MAGIC = b"PYHSMBK\x00"
FORMAT_VERSION = 1
SUFFIX = ".pyhsm-backup"
_LENGTH = struct.Struct(">I")
_MAX_HEADER = 1 << 20
_TAG_SIZE = 32
_CHUNK = 1 << 20
_INFO = b"pyhsm backup v1: AES-256-CTR key | HMAC-SHA256 key"

# (done, total) in bytes or pages; the CLI turns it into a progress bar.
Progress = Callable[[int, int], None]


class BackupError(Exception):
    """A backup file that cannot be written, read, unlocked or trusted; the message says which and why."""


@dataclass(frozen=True)
class Source:
    label: str
    serial: str
    slot: int


@dataclass(frozen=True)
class BackupHeader:
    lineage: str
    created: str  # ISO 8601, UTC
    source: Source
    fips_mode: bool
    pyhsm_version: str
    payload_size: int
    salt: str  # hex
    nonce: str  # hex
    unlock: str  # hex: token key wrapped under scrypt(SO PIN)
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def created_at(self) -> datetime:
        return datetime.fromisoformat(self.created)

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> BackupHeader:
        try:
            fields = json.loads(raw.decode())
            fields["source"] = Source(**fields["source"])
            header = cls(**fields)
            header.created_at  # noqa: B018 -- validates the timestamp
        except (ValueError, TypeError, KeyError) as exc:
            raise BackupError(f"the backup header is corrupt ({exc})") from None
        if header.format_version != FORMAT_VERSION:
            raise BackupError(f"backup format {header.format_version} is not supported (this pyhsm reads "
                              f"{FORMAT_VERSION})")
        return header

    def as_json(self) -> dict[str, Any]:
        return {"lineage": self.lineage, "created": self.created, "source": asdict(self.source),
                "fips_mode": self.fips_mode, "pyhsm_version": self.pyhsm_version, "format_version":
                self.format_version, "payload_size": self.payload_size}


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _keys(token_key: TokenKey, salt: bytes) -> tuple[bytes, bytes]:
    material = token_key.derive(salt, _INFO, 64)
    return material[:32], material[32:]


def _ctr(enc_key: bytes, nonce: bytes) -> Any:
    """AES-256-CTR; encryption and decryption are the same operation."""
    return Cipher(algorithms.AES(enc_key), modes.CTR(nonce)).encryptor()


def _chunks(data: bytes) -> Iterator[bytes]:
    for offset in range(0, len(data), _CHUNK):
        yield data[offset:offset + _CHUNK]


def write_backup(path: Path, meta: dict[str, Any], image: bytes, token_key: TokenKey, so_pin: bytes,
                 progress: Progress | None = None) -> BackupHeader:
    """Write `image` (a database image) as a backup file at `path` (never over an existing file), mode 0600.

    `meta` gives lineage, created, source, fips_mode, pyhsm_version (and optionally extra)."""
    salt, nonce = os.urandom(32), os.urandom(16)
    header = BackupHeader(payload_size=len(image), salt=salt.hex(), nonce=nonce.hex(),
                          unlock=token_key.wrap_for_pin(so_pin).hex(), **meta)
    enc_key, mac_key = _keys(token_key, salt)
    raw_header = header.encode()
    mac = crypto_hmac.HMAC(mac_key, hashes.SHA256())
    encryptor = _ctr(enc_key, nonce)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            _emit(out, mac, MAGIC + _LENGTH.pack(len(raw_header)) + raw_header)
            done = 0
            for chunk in _chunks(image):
                _emit(out, mac, encryptor.update(chunk))
                done += len(chunk)
                if progress:
                    progress(done, len(image))
            _emit(out, mac, encryptor.finalize())
            out.write(mac.finalize())
            out.flush()
            os.fsync(out.fileno())
        os.link(tmp, path)  # fails rather than replace an existing backup
    except FileExistsError:
        raise BackupError(f"{path} already exists") from None
    finally:
        tmp.unlink(missing_ok=True)
    return header


def _emit(out: BinaryIO, mac: crypto_hmac.HMAC, data: bytes) -> None:
    out.write(data)
    mac.update(data)


def _read_prefix(f: BinaryIO, path: Path) -> tuple[bytes, BackupHeader]:
    prefix = f.read(len(MAGIC) + _LENGTH.size)
    if not prefix.startswith(MAGIC):
        raise BackupError(f"{path} is not a pyhsm backup file")
    if len(prefix) < len(MAGIC) + _LENGTH.size:
        raise BackupError(f"{path} is truncated (it ends inside the header)")
    (length,) = _LENGTH.unpack(prefix[len(MAGIC):])
    if length > _MAX_HEADER:
        raise BackupError(f"{path}: the header length {length} is implausible: the file is corrupt")
    raw = f.read(length)
    if len(raw) < length:
        raise BackupError(f"{path} is truncated (it ends inside the header)")
    return prefix + raw, BackupHeader.decode(raw)


def read_header(path: Path) -> BackupHeader:
    """The header as written (not yet authenticated: only `open_backup` proves it)."""
    try:
        with path.open("rb") as f:
            return _read_prefix(f, path)[1]
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror or exc}") from None


def open_backup(path: Path, so_pin: bytes, progress: Progress | None = None) -> tuple[BackupHeader, bytes]:
    """Authenticate the whole file and return its header and the database image."""
    try:
        f = path.open("rb")
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror or exc}") from None
    with f:
        prefix, header = _read_prefix(f, path)
        expected = len(prefix) + header.payload_size + _TAG_SIZE
        actual = os.fstat(f.fileno()).st_size
        if actual != expected:
            what = "truncated" if actual < expected else "longer than written"
            raise BackupError(f"{path} is {what}: {actual} bytes where the header says {expected}")
        try:
            token_key = TokenKey.unwrap_with_pin(bytes.fromhex(header.unlock), so_pin)
        except (WrongPin, SealError, ValueError):
            raise BackupError("the SO PIN does not unlock this backup (a wrong PIN, or a modified header)") from None
        try:
            enc_key, mac_key = _keys(token_key, bytes.fromhex(header.salt))
            nonce = bytes.fromhex(header.nonce)
        except ValueError:
            raise BackupError("the backup header is corrupt (salt or nonce)") from None
        finally:
            token_key.clear()
        mac = crypto_hmac.HMAC(mac_key, hashes.SHA256())
        mac.update(prefix)
        ciphertext = bytearray()
        while len(ciphertext) < header.payload_size:
            chunk = f.read(min(_CHUNK, header.payload_size - len(ciphertext)))
            if not chunk:
                raise BackupError(f"{path} is truncated")
            mac.update(chunk)
            ciphertext += chunk
            if progress:
                progress(len(ciphertext), header.payload_size)
        if not hmac.compare_digest(mac.finalize(), f.read(_TAG_SIZE)):
            raise BackupError(f"{path} failed authentication: it was modified or corrupted after it was written")
    decryptor = _ctr(enc_key, nonce)
    return header, decryptor.update(bytes(ciphertext)) + decryptor.finalize()
