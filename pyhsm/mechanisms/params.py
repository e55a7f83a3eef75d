"""Decoded mechanism parameters.

The ABI layer turns the caller's C parameter struct into one of these (it alone knows C layouts); mechanisms
only ever see these Python values.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class ParamKind(enum.Enum):
    NONE = "none"  # pParameter must be NULL / empty
    BYTES = "bytes"  # an IV, a string, ... passed through as bytes (None when pParameter is NULL)
    OAEP = "oaep"  # CK_RSA_PKCS_OAEP_PARAMS
    PSS = "pss"  # CK_RSA_PKCS_PSS_PARAMS
    GCM = "gcm"  # CK_GCM_PARAMS
    CTR = "ctr"  # CK_AES_CTR_PARAMS
    ECDH1 = "ecdh1"  # CK_ECDH1_DERIVE_PARAMS
    ULONG = "ulong"  # a single CK_ULONG (e.g. CKM_*_HMAC_GENERAL output length)
    KEY_HANDLE = "key-handle"  # a single CK_OBJECT_HANDLE, decoded to KeyHandle


@dataclass(frozen=True)
class KeyHandle:
    """A parameter naming another key (CKM_CONCATENATE_BASE_AND_KEY, HKDF's hSaltKey).

    The ABI decodes only `handle`; the engine, after its access checks, fills in `key` (a registry.KeyView, unsealed)
    before the mechanism runs. A mechanism that finds `key` None answers CKR_KEY_HANDLE_INVALID."""

    handle: int
    key: Any = None


@dataclass(frozen=True)
class OaepParams:
    hash_alg: int  # CKM_SHA_1, CKM_SHA256, ...
    mgf: int  # CKG_MGF1_*
    source: int  # 0 or CKZ_DATA_SPECIFIED
    source_data: bytes  # the OAEP label


@dataclass(frozen=True)
class PssParams:
    hash_alg: int
    mgf: int
    salt_len: int


@dataclass(frozen=True)
class GcmParams:
    iv: bytes
    iv_bits: int
    aad: bytes
    tag_bits: int


@dataclass(frozen=True)
class CtrParams:
    counter_bits: int
    counter_block: bytes  # 16 bytes


@dataclass(frozen=True)
class Ecdh1Params:
    kdf: int  # CKD_NULL, CKD_SHA256_KDF, ...
    shared_data: bytes
    public_data: bytes  # peer's EC point (raw 04||X||Y or DER OCTET STRING)


MechanismParam = None | bytes | int | KeyHandle | OaepParams | PssParams | GcmParams | CtrParams | Ecdh1Params
