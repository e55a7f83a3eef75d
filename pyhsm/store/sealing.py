"""Secrets at rest: the token key and AES-256-GCM sealing of sensitive attribute values.

The token key is random; each credential (SO PIN, user PIN) holds a copy wrapped under scrypt(PIN). A wrong PIN
fails GCM authentication, so no PIN hash is stored and the check is constant-time by construction.
scrypt n=2**15, r=8, p=1 (32 MiB, ~60-100 ms here); the parameters travel in the blob so they can be raised later.
Python cannot guarantee wiping: the key lives in a bytearray that clear() zeroes, but copies made by the
cryptography library's objects cannot be reached.

cryptography and ctypes are imported on first use (a login, a token initialisation): importing them here made
about a tenth of the first C_Initialize, which needs neither.
"""

from __future__ import annotations

import os
import struct

_WRAP_V1 = b"PW1"
_SEAL_V1 = b"\x01"
_PARAMS = struct.Struct("<BBB")  # log2(n), r, p
SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P = 15, 8, 1


class WrongPin(Exception):
    pass


class SealError(Exception):
    pass


def _kek(pin: bytes, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=32, n=1 << log2_n, r=r, p=p).derive(pin)


class TokenKey:
    def __init__(self, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._key = bytearray(key)
        self._aead = AESGCM(bytes(self._key))

    @classmethod
    def generate(cls) -> TokenKey:
        return cls(os.urandom(32))

    def wrap_for_pin(self, pin: bytes) -> bytes:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        salt, nonce = os.urandom(16), os.urandom(12)
        params = _PARAMS.pack(SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P)
        kek = _kek(pin, salt, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P)
        return _WRAP_V1 + params + salt + nonce + AESGCM(kek).encrypt(nonce, bytes(self._key), _WRAP_V1 + params)

    @classmethod
    def unwrap_with_pin(cls, blob: bytes, pin: bytes) -> TokenKey:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if not blob.startswith(_WRAP_V1):
            raise SealError("unknown wrapped-key format")
        params = blob[3:6]
        log2_n, r, p = _PARAMS.unpack(params)
        salt, nonce, body = blob[6:22], blob[22:34], blob[34:]
        try:
            key = AESGCM(_kek(pin, salt, log2_n, r, p)).decrypt(nonce, body, _WRAP_V1 + params)
        except InvalidTag:
            raise WrongPin() from None
        return cls(key)

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        return _SEAL_V1 + nonce + self._aead.encrypt(nonce, plaintext, _SEAL_V1 + aad)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        from cryptography.exceptions import InvalidTag

        if not sealed.startswith(_SEAL_V1):
            raise SealError("unknown sealed-value format")
        try:
            return self._aead.decrypt(sealed[1:13], sealed[13:], _SEAL_V1 + aad)
        except InvalidTag:
            raise SealError("sealed value failed authentication") from None

    def derive(self, salt: bytes, info: bytes, length: int = 32) -> bytes:
        """A key for another purpose (backup files, key checks): HKDF-SHA256 of the token key, never the key itself."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(bytes(self._key))

    def clear(self) -> None:
        wipe(self._key)


def wipe(secret: bytearray) -> None:
    """Overwrite a mutable secret in place, in one memset. Immutable copies (bytes objects, the key held inside
    cryptography's AESGCM, scrypt's output) cannot be reached from Python: they are freed unwiped."""
    import ctypes

    if secret:
        ctypes.memset((ctypes.c_char * len(secret)).from_buffer(secret), 0, len(secret))
