"""Key material formats: attributes a token computes from key values, and PKCS#8 for wrapping.

Only the encodings live here; which mechanism uses them is the mechanisms' business.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from pyhsm import constants as ck
from pyhsm.errors import CKRError
from pyhsm.objects.okp_keys import OKP_KEY_TYPES, complete_okp_key, okp_from_pkcs8, okp_to_pkcs8

# DER-encoded OBJECT IDENTIFIERs (CKA_EC_PARAMS) of the named curves we support.
CURVES: dict[bytes, ec.EllipticCurve] = {
    bytes.fromhex("06082a8648ce3d030107"): ec.SECP256R1(),
    bytes.fromhex("06052b81040022"): ec.SECP384R1(),
    bytes.fromhex("06052b81040023"): ec.SECP521R1(),
    bytes.fromhex("06052b8104000a"): ec.SECP256K1(),
}
CURVE_PARAMS = {type(curve): params for params, curve in CURVES.items()}


def der_tlv(data: bytes) -> tuple[int, bytes] | None:
    """(tag, contents) when `data` is exactly one DER TLV with a definite length, else None."""
    if len(data) < 2:
        return None
    tag, first = data[0], data[1]
    if first < 0x80:
        length, start = first, 2
    else:
        size = first & 0x7F
        if not 1 <= size <= 4 or len(data) < 2 + size:
            return None
        length, start = int.from_bytes(data[2:2 + size], "big"), 2 + size
    if start + length != len(data):
        return None
    return tag, data[start:]


def curve_for_params(params: bytes) -> ec.EllipticCurve:
    """CKA_EC_PARAMS -> curve: an unknown named curve (or explicit parameters) is CKR_CURVE_NOT_SUPPORTED,
    something that is not a DER ECParameters at all is CKR_DOMAIN_PARAMS_INVALID."""
    params = bytes(params)
    curve = CURVES.get(params)
    if curve is not None:
        return curve
    tlv = der_tlv(params)
    if tlv is None or tlv[0] not in (0x06, 0x30, 0x05, 0x13) or (tlv[0] == 0x06 and not tlv[1]):
        raise CKRError(ck.CKR_DOMAIN_PARAMS_INVALID, "CKA_EC_PARAMS is not a DER ECParameters")
    raise CKRError(ck.CKR_CURVE_NOT_SUPPORTED)


def der_octet_string(data: bytes) -> bytes:
    n = len(data)
    if n < 0x80:
        return b"\x04" + bytes([n]) + data
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return b"\x04" + bytes([0x80 | len(size)]) + size + data


def _int(value: bytes) -> int:
    return int.from_bytes(value, "big")


def _bytes(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


# Secret key types with fixed value lengths (bytes).
SECRET_KEY_LENGTHS: dict[int, tuple[int, ...]] = {ck.CKK_AES: (16, 24, 32), ck.CKK_DES3: (24,)}


def check_value(key_type: int, value: bytes) -> bytes:
    """CKA_CHECK_VALUE: the first 3 bytes of ECB(key, zero block) for AES and DES3, of SHA-1(key) otherwise."""
    if key_type in (ck.CKK_AES, ck.CKK_DES3):
        cipher = algorithms.AES(value) if key_type == ck.CKK_AES else TripleDES(value)
        encryptor = Cipher(cipher, modes.ECB()).encryptor()
        return (encryptor.update(bytes(cipher.block_size // 8)) + encryptor.finalize())[:3]
    return hashlib.sha1(value).digest()[:3]


def complete_key_material(attrs: dict[int, Any]) -> None:
    """Fill in what the token derives from imported key values, validating them on the way."""
    object_class, key_type = attrs.get(ck.CKA_CLASS), attrs.get(ck.CKA_KEY_TYPE)
    if object_class == ck.CKO_SECRET_KEY:
        value = attrs[ck.CKA_VALUE]
        lengths = SECRET_KEY_LENGTHS.get(key_type or 0)
        if lengths is not None and len(value) not in lengths:
            raise CKRError(ck.CKR_ATTRIBUTE_VALUE_INVALID, f"keys of this type are {lengths} bytes long")
        if not value:
            raise CKRError(ck.CKR_ATTRIBUTE_VALUE_INVALID, "empty key value")
        attrs[ck.CKA_VALUE_LEN] = len(value)
        attrs[ck.CKA_CHECK_VALUE] = check_value(key_type or 0, value)
    elif key_type == ck.CKK_RSA and object_class == ck.CKO_PUBLIC_KEY:
        attrs[ck.CKA_MODULUS_BITS] = _int(attrs[ck.CKA_MODULUS]).bit_length()
    elif key_type == ck.CKK_RSA and object_class == ck.CKO_PRIVATE_KEY:
        _complete_rsa_private(attrs)
    elif key_type == ck.CKK_EC and object_class == ck.CKO_PRIVATE_KEY:
        curve = curve_for_params(attrs[ck.CKA_EC_PARAMS])
        try:
            key = ec.derive_private_key(_int(attrs[ck.CKA_VALUE]), curve)
        except ValueError:
            raise CKRError(ck.CKR_ATTRIBUTE_VALUE_INVALID, "EC private value out of range") from None
        point = key.public_key().public_bytes(serialization.Encoding.X962,
                                              serialization.PublicFormat.UncompressedPoint)
        attrs[ck.CKA_EC_POINT] = der_octet_string(point)
    elif key_type == ck.CKK_EC and object_class == ck.CKO_PUBLIC_KEY:
        curve_for_params(attrs[ck.CKA_EC_PARAMS])
    elif key_type in OKP_KEY_TYPES:
        complete_okp_key(attrs)


def _complete_rsa_private(attrs: dict[int, Any]) -> None:
    """Clients may import only (n, e, d); signing needs the CRT values, which follow from them."""
    n, d = _int(attrs[ck.CKA_MODULUS]), _int(attrs[ck.CKA_PRIVATE_EXPONENT])
    crt = (ck.CKA_PRIME_1, ck.CKA_PRIME_2, ck.CKA_EXPONENT_1, ck.CKA_EXPONENT_2, ck.CKA_COEFFICIENT)
    if all(t in attrs for t in crt) and ck.CKA_PUBLIC_EXPONENT in attrs:
        return
    if ck.CKA_PUBLIC_EXPONENT not in attrs:
        raise CKRError(ck.CKR_TEMPLATE_INCOMPLETE, "CKA_PUBLIC_EXPONENT is needed to import this RSA key")
    e = _int(attrs[ck.CKA_PUBLIC_EXPONENT])
    try:
        p, q = rsa.rsa_recover_prime_factors(n, e, d)
    except ValueError:
        raise CKRError(ck.CKR_ATTRIBUTE_VALUE_INVALID, "inconsistent RSA key values") from None
    attrs[ck.CKA_PRIME_1], attrs[ck.CKA_PRIME_2] = _bytes(p), _bytes(q)
    attrs[ck.CKA_EXPONENT_1] = _bytes(rsa.rsa_crt_dmp1(d, p))
    attrs[ck.CKA_EXPONENT_2] = _bytes(rsa.rsa_crt_dmq1(d, q))
    attrs[ck.CKA_COEFFICIENT] = _bytes(rsa.rsa_crt_iqmp(p, q))


# ---- RSA private keys ------------------------------------------------------------------------------------
def rsa_values_consistent(n: int, e: int, d: int, p: int, q: int, dmp1: int, dmq1: int, iqmp: int) -> bool:
    """The arithmetic relations between the RSA key values (what OpenSSL's key check verifies, less the
    primality tests of p and q): n = pq, e·d = 1 mod lcm(p-1, q-1), the CRT exponents and the coefficient."""
    if min(n, e, d, p, q, dmp1, dmq1, iqmp) <= 0 or p * q != n or e % 2 == 0:
        return False
    lcm = (p - 1) * (q - 1) // math.gcd(p - 1, q - 1)
    return ((e * d - 1) % lcm == 0 and (e * dmp1 - 1) % (p - 1) == 0 and (e * dmq1 - 1) % (q - 1) == 0
            and (iqmp * q - 1) % p == 0)


def rsa_private_key(attrs: Mapping[int, Any]) -> rsa.RSAPrivateKey:
    """A pyca/cryptography key from the object's values; ValueError when they do not fit together.

    pyca/cryptography's own validation of a private key costs about 100 ms (RSA-2048), mostly primality tests of
    p and q, and every process paid it on the first use of each key (twice with the native data plane, which
    takes the key as PKCS#8). The relations between the values are checked here instead, in tens of
    microseconds: a key whose values do not fit together is refused as before; one with composite "primes"
    (which a client could only import on purpose) merely makes wrong signatures, and OpenSSL checks each CRT
    result with the public exponent before releasing it (rsa_ossl_mod_exp), so it cannot leak the key."""
    n, e = _int(attrs[ck.CKA_MODULUS]), _int(attrs[ck.CKA_PUBLIC_EXPONENT])
    d, p, q, dmp1, dmq1, iqmp = (_int(attrs[t]) for t in (ck.CKA_PRIVATE_EXPONENT, ck.CKA_PRIME_1, ck.CKA_PRIME_2,
                                                         ck.CKA_EXPONENT_1, ck.CKA_EXPONENT_2, ck.CKA_COEFFICIENT))
    if not rsa_values_consistent(n, e, d, p, q, dmp1, dmq1, iqmp):
        raise ValueError("inconsistent RSA private key values")
    numbers = rsa.RSAPrivateNumbers(p, q, d, dmp1, dmq1, iqmp, rsa.RSAPublicNumbers(e, n))
    return numbers.private_key(unsafe_skip_rsa_key_validation=True)


# ---- PKCS#8 for wrapping private keys ----------------------------------------------------------------
def private_key_to_pkcs8(attrs: Mapping[int, Any]) -> bytes:
    key_type = attrs[ck.CKA_KEY_TYPE]
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if key_type == ck.CKK_RSA:
        key = rsa_private_key(attrs)
    elif key_type == ck.CKK_EC:
        key = ec.derive_private_key(_int(attrs[ck.CKA_VALUE]), curve_for_params(attrs[ck.CKA_EC_PARAMS]))
    elif key_type in OKP_KEY_TYPES:
        return okp_to_pkcs8(attrs)
    else:
        raise CKRError(ck.CKR_KEY_NOT_WRAPPABLE)
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def private_key_from_pkcs8(der: bytes, key_type: int) -> dict[int, Any]:
    """Attributes of an unwrapped private key; a mismatch with the template's key type is inconsistent."""
    try:
        key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError):
        raise CKRError(ck.CKR_WRAPPED_KEY_INVALID, "the unwrapped data is not a PKCS#8 private key") from None
    if isinstance(key, rsa.RSAPrivateKey) and key_type == ck.CKK_RSA:
        numbers = key.private_numbers()
        return {
            ck.CKA_MODULUS: _bytes(numbers.public_numbers.n),
            ck.CKA_PUBLIC_EXPONENT: _bytes(numbers.public_numbers.e),
            ck.CKA_PRIVATE_EXPONENT: _bytes(numbers.d),
            ck.CKA_PRIME_1: _bytes(numbers.p),
            ck.CKA_PRIME_2: _bytes(numbers.q),
            ck.CKA_EXPONENT_1: _bytes(numbers.dmp1),
            ck.CKA_EXPONENT_2: _bytes(numbers.dmq1),
            ck.CKA_COEFFICIENT: _bytes(numbers.iqmp),
        }
    if isinstance(key, ec.EllipticCurvePrivateKey) and key_type == ck.CKK_EC:
        params = CURVE_PARAMS.get(type(key.curve))
        if params is None:
            raise CKRError(ck.CKR_CURVE_NOT_SUPPORTED)
        size = (key.curve.key_size + 7) // 8
        return {ck.CKA_EC_PARAMS: params, ck.CKA_VALUE: key.private_numbers().private_value.to_bytes(size, "big")}
    okp = okp_from_pkcs8(key, key_type)
    if okp is not None:
        return okp
    raise CKRError(ck.CKR_TEMPLATE_INCONSISTENT, "the unwrapped key does not match CKA_KEY_TYPE")
