"""Attribute value encoding: raw C bytes <-> typed Python values.

The ABI layer hands the engine attribute values as the caller's raw bytes; this module is the one place that knows
how each attribute type is laid out (CK_BBOOL is one byte, CK_ULONG is native width, ...).
"""

from __future__ import annotations

import enum
import struct
import sys
from typing import Any

from pyhsm import constants as ck
from pyhsm.errors import CKRError

ULONG_SIZE = struct.calcsize("L")
_ULONG = struct.Struct("=L")
_BYTEORDER = sys.byteorder


class Kind(enum.Enum):
    BOOL = "bool"
    ULONG = "ulong"
    BYTES = "bytes"
    DATE = "date"  # CK_DATE: 8 ASCII digits, or empty
    MECHANISMS = "mechanisms"  # CK_MECHANISM_TYPE array
    TEMPLATE = "template"  # CKF_ARRAY_ATTRIBUTE: a CK_ATTRIBUTE array (CKA_WRAP_TEMPLATE, ...)


_BOOLS = (
    ck.CKA_TOKEN, ck.CKA_PRIVATE, ck.CKA_TRUSTED, ck.CKA_SENSITIVE, ck.CKA_ENCRYPT, ck.CKA_DECRYPT, ck.CKA_WRAP,
    ck.CKA_UNWRAP, ck.CKA_SIGN, ck.CKA_SIGN_RECOVER, ck.CKA_VERIFY, ck.CKA_VERIFY_RECOVER, ck.CKA_DERIVE,
    ck.CKA_EXTRACTABLE, ck.CKA_LOCAL, ck.CKA_NEVER_EXTRACTABLE, ck.CKA_ALWAYS_SENSITIVE, ck.CKA_MODIFIABLE,
    ck.CKA_COPYABLE, ck.CKA_DESTROYABLE, ck.CKA_ALWAYS_AUTHENTICATE, ck.CKA_WRAP_WITH_TRUSTED,
    ck.CKA_RESET_ON_INIT, ck.CKA_HAS_RESET,
)
_ULONGS = (
    ck.CKA_CLASS, ck.CKA_CERTIFICATE_TYPE, ck.CKA_CERTIFICATE_CATEGORY, ck.CKA_JAVA_MIDP_SECURITY_DOMAIN,
    ck.CKA_NAME_HASH_ALGORITHM, ck.CKA_KEY_TYPE, ck.CKA_MODULUS_BITS, ck.CKA_PRIME_BITS, ck.CKA_SUBPRIME_BITS,
    ck.CKA_VALUE_BITS, ck.CKA_VALUE_LEN, ck.CKA_KEY_GEN_MECHANISM, ck.CKA_HW_FEATURE_TYPE, ck.CKA_PROFILE_ID,
    ck.CKA_PYHSM_MANAGE_QUORUM, ck.CKA_PYHSM_USE_QUORUM,
)
_DATES = (ck.CKA_START_DATE, ck.CKA_END_DATE)
_BYTES = (
    ck.CKA_LABEL, ck.CKA_UNIQUE_ID, ck.CKA_APPLICATION, ck.CKA_VALUE, ck.CKA_OBJECT_ID, ck.CKA_ISSUER,
    ck.CKA_SERIAL_NUMBER, ck.CKA_AC_ISSUER, ck.CKA_OWNER, ck.CKA_ATTR_TYPES, ck.CKA_URL,
    ck.CKA_HASH_OF_SUBJECT_PUBLIC_KEY, ck.CKA_HASH_OF_ISSUER_PUBLIC_KEY, ck.CKA_CHECK_VALUE, ck.CKA_SUBJECT,
    ck.CKA_ID, ck.CKA_MODULUS, ck.CKA_PUBLIC_EXPONENT, ck.CKA_PRIVATE_EXPONENT, ck.CKA_PRIME_1, ck.CKA_PRIME_2,
    ck.CKA_EXPONENT_1, ck.CKA_EXPONENT_2, ck.CKA_COEFFICIENT, ck.CKA_PUBLIC_KEY_INFO, ck.CKA_PRIME,
    ck.CKA_SUBPRIME, ck.CKA_BASE, ck.CKA_EC_PARAMS, ck.CKA_EC_POINT,
    ck.CKA_PYHSM_OWNER, ck.CKA_PYHSM_SHARED_USERS,
)

KINDS: dict[int, Kind] = {
    **{t: Kind.BOOL for t in _BOOLS},
    **{t: Kind.ULONG for t in _ULONGS},
    **{t: Kind.DATE for t in _DATES},
    **{t: Kind.BYTES for t in _BYTES},
    ck.CKA_ALLOWED_MECHANISMS: Kind.MECHANISMS,
    **{t: Kind.TEMPLATE for t in (ck.CKA_WRAP_TEMPLATE, ck.CKA_UNWRAP_TEMPLATE, ck.CKA_DERIVE_TEMPLATE)},
}

# An attribute array crosses the ABI as pointers into the caller's memory; the ABI layer flattens it into this
# self-contained form (type, length, value)* so that the rest of the engine and the store see plain bytes.
_HEADER = struct.Struct("=QQ")


def is_template(attr_type: int) -> bool:
    """CKA_WRAP_TEMPLATE and its kin (CKA_ALLOWED_MECHANISMS also carries CKF_ARRAY_ATTRIBUTE but holds CK_ULONGs)."""
    return KINDS.get(attr_type) is Kind.TEMPLATE


def pack_attributes(attributes: list[tuple[int, bytes]]) -> bytes:
    return b"".join(_HEADER.pack(t, len(raw)) + raw for t, raw in attributes)


def unpack_attributes(packed: bytes) -> list[tuple[int, bytes]]:
    out, offset = [], 0
    while offset < len(packed):
        attr_type, length = _HEADER.unpack_from(packed, offset)
        offset += _HEADER.size
        out.append((attr_type, packed[offset:offset + length]))
        offset += length
    return out


def _decode_template(packed: bytes) -> tuple[tuple[int, Any], ...]:
    values: dict[int, Any] = {}
    for attr_type, raw in unpack_attributes(packed):
        if kind_of(attr_type) is Kind.TEMPLATE:
            raise CKRError(ck.CKR_ATTRIBUTE_VALUE_INVALID, "attribute arrays do not nest")
        values[attr_type] = decode(attr_type, raw)
    return tuple(sorted(values.items()))  # order-free, so that templates compare equal in finds


def kind_of(attr_type: int) -> Kind:
    try:
        return KINDS[attr_type]
    except KeyError:
        raise CKRError(ck.CKR_ATTRIBUTE_TYPE_INVALID, f"unknown attribute 0x{attr_type:X}") from None


def decode(attr_type: int, raw: bytes) -> Any:
    """Caller's bytes -> typed value; a value of the wrong size is CKR_ATTRIBUTE_VALUE_INVALID."""
    kind = kind_of(attr_type)
    if kind is Kind.BYTES:
        return bytes(raw)
    if kind is Kind.BOOL:
        if len(raw) != 1:
            raise CKRError(ck.CKR_ATTRIBUTE_VALUE_INVALID, "CK_BBOOL must be one byte")
        return raw[0] != 0
    if kind is Kind.ULONG:
        if len(raw) != ULONG_SIZE:
            raise CKRError(ck.CKR_ATTRIBUTE_VALUE_INVALID, "CK_ULONG has the wrong size")
        return int.from_bytes(raw, _BYTEORDER)
    if kind is Kind.DATE:
        if len(raw) not in (0, 8) or (raw and not raw.isdigit()):
            raise CKRError(ck.CKR_ATTRIBUTE_VALUE_INVALID, "CK_DATE must be empty or YYYYMMDD")
        return bytes(raw)
    if kind is Kind.TEMPLATE:
        return _decode_template(bytes(raw))
    if len(raw) % ULONG_SIZE:
        raise CKRError(ck.CKR_ATTRIBUTE_VALUE_INVALID, "mechanism list has the wrong size")
    return tuple(v for (v,) in _ULONG.iter_unpack(raw))


def encode(attr_type: int, value: Any) -> bytes:
    """Typed value -> the bytes a caller receives from C_GetAttributeValue."""
    kind = KINDS[attr_type]
    if kind is Kind.BOOL:
        return b"\x01" if value else b"\x00"
    if kind is Kind.ULONG:
        return int(value).to_bytes(ULONG_SIZE, _BYTEORDER)
    if kind is Kind.MECHANISMS:
        return b"".join(_ULONG.pack(m) for m in value)
    if kind is Kind.TEMPLATE:
        return pack_attributes([(t, encode(t, v)) for t, v in value])
    return bytes(value)


def encode_ulong(value: int) -> bytes:
    return value.to_bytes(ULONG_SIZE, _BYTEORDER)
