"""Mechanism parameter structs for tests that drive python-pkcs11 with mechanisms it has no packer for.

python-pkcs11 passes a `bytes` mechanism parameter through as raw pParameter bytes; `Packed` builds such bytes from
a ctypes structure and keeps every buffer its pointers refer to alive for as long as it lives. `mechanism()` and
`key_type()` make enum members for numbers python-pkcs11's enums lack (vendor mechanisms, v3.0 additions), since
it insists on its enum types.
"""

from __future__ import annotations

import ctypes
import uuid
from collections.abc import Iterator
from typing import Any

import pkcs11
import pytest
from p11_helpers import USER_PIN, init_token

ULONG, BBOOL, PTR = ctypes.c_ulong, ctypes.c_ubyte, ctypes.c_void_p


@pytest.fixture(scope="module", name="session")
def shared_session(lib) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """One logged-in read-write session on one fresh token for a whole mechanism test module (every test makes its
    own keys): initialising a token costs about a second, its PIN key derivation being slow on purpose. A module
    imports this to replace conftest's per-test `session`."""
    label = f"m-{uuid.uuid4().hex[:10]}"
    init_token(label)
    with lib.get_token(token_label=label).open(rw=True, user_pin=USER_PIN) as s:
        yield s


def _member(enum: Any, value: int, name: str) -> Any:
    if value in enum._value2member_map_:
        return enum(value)
    member = int.__new__(enum, value)
    member._name_, member._value_ = name, value
    return member


def mechanism(value: int, name: str) -> pkcs11.Mechanism:
    member: pkcs11.Mechanism = _member(pkcs11.Mechanism, value, name)
    return member


def key_type(value: int, name: str) -> pkcs11.KeyType:
    """Also taught to the enum, because python-pkcs11 converts CKA_KEY_TYPE of every object it reads back."""
    member: pkcs11.KeyType = _member(pkcs11.KeyType, value, name)
    pkcs11.KeyType._value2member_map_.setdefault(value, member)
    return member


class Packed:
    """A C struct as bytes, plus the buffers it points into."""

    def __init__(self) -> None:
        self._keep: list[Any] = []

    def buf(self, data: bytes | None) -> int | None:
        if data is None:
            return None
        holder = ctypes.create_string_buffer(data, len(data) or 1)
        self._keep.append(holder)
        return ctypes.addressof(holder)

    def struct(self, value: ctypes.Structure) -> bytes:
        self._keep.append(value)
        return bytes(value)

    def ptr(self, value: ctypes.Structure) -> int:
        self._keep.append(value)
        return ctypes.addressof(value)


class OAEP(ctypes.Structure):
    _fields_ = [("hashAlg", ULONG), ("mgf", ULONG), ("source", ULONG), ("pSourceData", PTR),
                ("ulSourceDataLen", ULONG)]


class RSA_AES_KEY_WRAP(ctypes.Structure):
    _fields_ = [("ulAESKeyBits", ULONG), ("pOAEPParams", PTR)]


class GCM(ctypes.Structure):
    _fields_ = [("pIv", PTR), ("ulIvLen", ULONG), ("ulIvBits", ULONG), ("pAAD", PTR), ("ulAADLen", ULONG),
                ("ulTagBits", ULONG)]


class CCM(ctypes.Structure):
    _fields_ = [("ulDataLen", ULONG), ("pNonce", PTR), ("ulNonceLen", ULONG), ("pAAD", PTR), ("ulAADLen", ULONG),
                ("ulMACLen", ULONG)]


class HKDF(ctypes.Structure):
    _fields_ = [("bExtract", BBOOL), ("bExpand", BBOOL), ("prfHashMechanism", ULONG), ("ulSaltType", ULONG),
                ("pSalt", PTR), ("ulSaltLen", ULONG), ("hSaltKey", ULONG), ("pInfo", PTR), ("ulInfoLen", ULONG)]


class PRF_DATA_PARAM(ctypes.Structure):
    _fields_ = [("type", ULONG), ("pValue", PTR), ("ulValueLen", ULONG)]


class COUNTER_FORMAT(ctypes.Structure):
    _fields_ = [("bLittleEndian", BBOOL), ("ulWidthInBits", ULONG)]


class DKM_LENGTH_FORMAT(ctypes.Structure):
    _fields_ = [("dkmLengthMethod", ULONG), ("bLittleEndian", BBOOL), ("ulWidthInBits", ULONG)]


class SP800_108(ctypes.Structure):
    _fields_ = [("prfType", ULONG), ("ulNumberOfDataParams", ULONG), ("pDataParams", PTR),
                ("ulAdditionalDerivedKeys", ULONG), ("pAdditionalDerivedKeys", PTR)]


def oaep(packed: Packed, hash_alg: int, mgf: int, label: bytes = b"") -> OAEP:
    return OAEP(hash_alg, mgf, 1 if label else 0, packed.buf(label) if label else None, len(label))


def gcm(packed: Packed, iv: bytes | None, aad: bytes = b"", tag_bits: int = 128, iv_len: int | None = None) -> bytes:
    length = len(iv or b"") if iv_len is None else iv_len
    return packed.struct(GCM(packed.buf(iv), length, 8 * length, packed.buf(aad) if aad else None, len(aad),
                             tag_bits))
