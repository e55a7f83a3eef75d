"""Decoded mechanism parameters.

The ABI layer turns the caller's C parameter struct into one of these (it alone knows C layouts); mechanisms
only ever see these Python values. They are NamedTuples: immutable like frozen dataclasses, but defining one
costs a sixth as much (this module is imported by the first C_Initialize, where 14 frozen dataclasses took 9 ms)
and making one on every Init is cheaper too. KeyHandle and HkdfParams stay dataclasses: the engine fills in the
keys that parameters name by handle through dataclasses.replace.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, NamedTuple


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
    RSA_AES_WRAP = "rsa-aes-wrap"  # CK_RSA_AES_KEY_WRAP_PARAMS
    CCM = "ccm"  # CK_CCM_PARAMS
    EDDSA = "eddsa"  # CK_EDDSA_PARAMS, or None when pParameter is NULL
    HKDF = "hkdf"  # CK_HKDF_PARAMS
    SP800_108 = "sp800-108"  # CK_SP800_108_KDF_PARAMS


@dataclass(frozen=True)
class KeyHandle:
    """A parameter naming another key (CKM_CONCATENATE_BASE_AND_KEY, HKDF's hSaltKey).

    The ABI decodes only `handle`; the engine, after its access checks, fills in `key` (a registry.KeyView, unsealed)
    before the mechanism runs. A mechanism that finds `key` None answers CKR_KEY_HANDLE_INVALID."""

    handle: int
    key: Any = None


class OaepParams(NamedTuple):
    hash_alg: int  # CKM_SHA_1, CKM_SHA256, ...
    mgf: int  # CKG_MGF1_*
    source: int  # 0 or CKZ_DATA_SPECIFIED
    source_data: bytes  # the OAEP label


class PssParams(NamedTuple):
    hash_alg: int
    mgf: int
    salt_len: int


class GcmParams(NamedTuple):
    iv: bytes
    iv_bits: int
    aad: bytes
    tag_bits: int


class CtrParams(NamedTuple):
    counter_bits: int
    counter_block: bytes  # 16 bytes


class Ecdh1Params(NamedTuple):
    kdf: int  # CKD_NULL, CKD_SHA256_KDF, ...
    shared_data: bytes
    public_data: bytes  # peer's EC point (raw 04||X||Y or DER OCTET STRING)


class RsaAesWrapParams(NamedTuple):
    aes_key_bits: int
    oaep: OaepParams


class CcmParams(NamedTuple):
    data_len: int  # the plaintext length, declared in advance (CCM needs it before the first block)
    nonce: bytes
    aad: bytes
    mac_len: int  # bytes


class EddsaParams(NamedTuple):
    prehash: bool  # phFlag: Ed25519ph / Ed448ph
    context: bytes


@dataclass(frozen=True)
class HkdfParams:
    extract: bool
    expand: bool
    prf_hash: int  # CKM_SHA256, ...
    salt_type: int  # CKF_HKDF_SALT_NULL / _DATA / _KEY
    salt: bytes
    salt_key: KeyHandle | None  # set for CKF_HKDF_SALT_KEY; the engine resolves it
    info: bytes


class CounterFormat(NamedTuple):
    """CK_SP800_108_COUNTER_FORMAT (the iteration variable or an optional counter)."""

    little_endian: bool
    width_bits: int


class DkmLengthFormat(NamedTuple):
    """CK_SP800_108_DKM_LENGTH_FORMAT."""

    method: int  # CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS / _SUM_OF_SEGMENTS
    little_endian: bool
    width_bits: int


class PrfDataParam(NamedTuple):
    """One CK_PRF_DATA_PARAM: its type and decoded value (a format, or the bytes of a byte array)."""

    type: int
    value: CounterFormat | DkmLengthFormat | bytes | None


class Sp800108Params(NamedTuple):
    prf: int  # CKM_SHA256_HMAC, CKM_AES_CMAC, ...
    data: tuple[PrfDataParam, ...]
    additional_keys: int  # ulAdditionalDerivedKeys


MechanismParam = (None | bytes | int | KeyHandle | OaepParams | PssParams | GcmParams | CtrParams | Ecdh1Params
                  | RsaAesWrapParams | CcmParams | EddsaParams | HkdfParams | Sp800108Params)
