"""AES key wrap mechanisms (PKCS#11 v3.0 section 2.14, NIST SP 800-38F).

- CKM_AES_KEY_WRAP: RFC 3394 (KW); input a multiple of 8 bytes, at least 16. Optional 8-byte IV parameter.
- CKM_AES_KEY_WRAP_PAD: as the v2.40/v3.0 text defines it — PKCS#7 padding to a multiple of the key wrap block size
  (8 bytes, always 1..8 padding bytes) followed by RFC 3394. Optional 8-byte IV. (SoftHSM uses this number for
  RFC 5649; that algorithm is CKM_AES_KEY_WRAP_KWP below.)
- CKM_AES_KEY_WRAP_KWP: RFC 5649 (KWP); any non-empty input. Optional 4-byte IV parameter.

All are single-part (Update calls are collected). pyca/cryptography does KW/KWP with the default IVs; an explicit
IV goes through `_kw_wrap` / `_kw_unwrap`, the W / W^-1 functions of SP 800-38F over AES-ECB.
"""

from __future__ import annotations

import hmac
import struct
from collections.abc import Callable

from cryptography.hazmat.primitives import keywrap
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from pyhsm import constants as ck
from pyhsm.errors import CKRError
from pyhsm.mechanisms.generic import (
    MAX_COLLECTED,
    BufferedCipherOp,
    WrapsWithCipher,
    param_invalid,
)
from pyhsm.mechanisms.params import MechanismParam, ParamKind
from pyhsm.mechanisms.registry import KeyView, MechanismInfo, register

KW_IV = bytes.fromhex("A6A6A6A6A6A6A6A6")
KWP_IV = bytes.fromhex("A65959A6")
_FLAGS = ck.CKF_ENCRYPT | ck.CKF_DECRYPT | ck.CKF_WRAP | ck.CKF_UNWRAP


def _value(key: KeyView) -> bytes:
    return bytes(key.attrs[ck.CKA_VALUE])


def _kw_wrap(kek: bytes, iv: bytes, plaintext: bytes) -> bytes:
    """W(S) of SP 800-38F with initial value `iv`; plaintext is n >= 2 semiblocks."""
    n = len(plaintext) // 8
    encrypt = Cipher(algorithms.AES(kek), modes.ECB()).encryptor().update
    a = int.from_bytes(iv, "big")
    r = [plaintext[8 * i:8 * i + 8] for i in range(n)]
    for j in range(6):
        for i in range(n):
            b = encrypt(a.to_bytes(8, "big") + r[i])
            a = int.from_bytes(b[:8], "big") ^ (n * j + i + 1)
            r[i] = b[8:]
    return a.to_bytes(8, "big") + b"".join(r)


def _kw_unwrap(kek: bytes, ciphertext: bytes) -> tuple[bytes, bytes]:
    """W^-1(C): (recovered initial value, plaintext); the caller checks the initial value."""
    n = len(ciphertext) // 8 - 1
    decrypt = Cipher(algorithms.AES(kek), modes.ECB()).decryptor().update
    a = int.from_bytes(ciphertext[:8], "big")
    r = [ciphertext[8 * (i + 1):8 * (i + 2)] for i in range(n)]
    for j in reversed(range(6)):
        for i in reversed(range(n)):
            b = decrypt((a ^ (n * j + i + 1)).to_bytes(8, "big") + r[i])
            a = int.from_bytes(b[:8], "big")
            r[i] = b[8:]
    return a.to_bytes(8, "big"), b"".join(r)


def _iv(param: MechanismParam, size: int) -> bytes | None:
    """None (use the default) or an explicit IV of exactly `size` bytes."""
    if param is None or param == b"":
        return None
    if not isinstance(param, bytes) or len(param) != size:
        raise param_invalid(f"the IV must be {size} bytes")
    return param


def _invalid() -> CKRError:
    return CKRError(ck.CKR_ENCRYPTED_DATA_INVALID)


# ---- the algorithms over bytes --------------------------------------------------------------------------------
def kw_encrypt(kek: bytes, iv: bytes | None, data: bytes) -> bytes:
    if len(data) < 16 or len(data) % 8:
        raise CKRError(ck.CKR_DATA_LEN_RANGE, "key wrap input must be a multiple of 8 bytes, at least 16")
    if iv is None or iv == KW_IV:
        return keywrap.aes_key_wrap(kek, data)
    return _kw_wrap(kek, iv, data)


def kw_decrypt(kek: bytes, iv: bytes | None, data: bytes) -> bytes:
    if len(data) < 24 or len(data) % 8:
        raise CKRError(ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
    if iv is None or iv == KW_IV:
        try:
            return keywrap.aes_key_unwrap(kek, data)
        except keywrap.InvalidUnwrap:
            raise _invalid() from None
    recovered, plaintext = _kw_unwrap(kek, data)
    if not hmac.compare_digest(recovered, iv):
        raise _invalid()
    return plaintext


def pkcs7_kw_encrypt(kek: bytes, iv: bytes | None, data: bytes) -> bytes:
    if len(data) < 8:
        raise CKRError(ck.CKR_DATA_LEN_RANGE, "the padded input must be at least two 8-byte blocks")
    pad = 8 - len(data) % 8
    return kw_encrypt(kek, iv, data + bytes([pad]) * pad)


def pkcs7_kw_decrypt(kek: bytes, iv: bytes | None, data: bytes) -> bytes:
    padded = kw_decrypt(kek, iv, data)  # integrity is checked before the padding is looked at
    pad = padded[-1]
    if not 1 <= pad <= 8 or padded[-pad:] != bytes([pad]) * pad:
        raise _invalid()
    return padded[:-pad]


def kwp_encrypt(kek: bytes, iv: bytes | None, data: bytes) -> bytes:
    if not data or len(data) >= 1 << 32:
        raise CKRError(ck.CKR_DATA_LEN_RANGE)
    if iv is None or iv == KWP_IV:
        return keywrap.aes_key_wrap_with_padding(kek, data)
    return _kwp_wrap(kek, iv, data)


def _kwp_wrap(kek: bytes, iv: bytes, data: bytes) -> bytes:
    """RFC 5649 with the 4-byte initial value `iv`."""
    aiv = iv + struct.pack(">I", len(data))
    padded = data + bytes(-len(data) % 8)
    if len(padded) == 8:
        encryptor = Cipher(algorithms.AES(kek), modes.ECB()).encryptor()
        return encryptor.update(aiv + padded) + encryptor.finalize()
    return _kw_wrap(kek, aiv, padded)


def kwp_decrypt(kek: bytes, iv: bytes | None, data: bytes) -> bytes:
    if len(data) < 16 or len(data) % 8:
        raise CKRError(ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
    if iv is None or iv == KWP_IV:
        try:
            return keywrap.aes_key_unwrap_with_padding(kek, data)
        except keywrap.InvalidUnwrap:
            raise _invalid() from None
    return _kwp_unwrap(kek, iv, data)


def _kwp_unwrap(kek: bytes, iv: bytes, data: bytes) -> bytes:
    if len(data) == 16:
        decryptor = Cipher(algorithms.AES(kek), modes.ECB()).decryptor()
        block = decryptor.update(data) + decryptor.finalize()
        aiv, padded = block[:8], block[8:]
    else:
        aiv, padded = _kw_unwrap(kek, data)
    length = int.from_bytes(aiv[4:], "big")
    ok = hmac.compare_digest(aiv[:4], iv) and len(padded) - 8 < length <= len(padded)
    if not ok or any(padded[length:]):
        raise _invalid()
    return padded[:length]


# ---- the mechanisms -------------------------------------------------------------------------------------------
Algorithm = Callable[[bytes, "bytes | None", bytes], bytes]


class AesKeyWrapBase(WrapsWithCipher):
    key_types = frozenset({ck.CKK_AES})
    info = MechanismInfo(16, 32, _FLAGS)
    param_kind = ParamKind.BYTES
    iv_size = 8
    functions: tuple[Algorithm, Algorithm]  # (encrypt, decrypt)

    def check_param(self, param: MechanismParam) -> None:
        _iv(param, self.iv_size)

    def encrypt(self, key: KeyView, param: MechanismParam) -> BufferedCipherOp:
        kek, iv, fn = _value(key), _iv(param, self.iv_size), self.functions[0]
        return BufferedCipherOp(lambda data: fn(kek, iv, data), MAX_COLLECTED, ck.CKR_DATA_LEN_RANGE)

    def decrypt(self, key: KeyView, param: MechanismParam) -> BufferedCipherOp:
        kek, iv, fn = _value(key), _iv(param, self.iv_size), self.functions[1]
        return BufferedCipherOp(lambda data: fn(kek, iv, data), MAX_COLLECTED, ck.CKR_ENCRYPTED_DATA_LEN_RANGE)


@register
class AesKeyWrap(AesKeyWrapBase):
    ckm = ck.CKM_AES_KEY_WRAP
    functions = (kw_encrypt, kw_decrypt)


@register
class AesKeyWrapPad(AesKeyWrapBase):
    ckm = ck.CKM_AES_KEY_WRAP_PAD
    functions = (pkcs7_kw_encrypt, pkcs7_kw_decrypt)


@register
class AesKeyWrapKwp(AesKeyWrapBase):
    ckm = ck.CKM_AES_KEY_WRAP_KWP
    iv_size = 4
    functions = (kwp_encrypt, kwp_decrypt)
