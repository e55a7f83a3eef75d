"""RSA key objects for the RSA mechanisms, parsed once per key object version (KeyView.cached).

pyca/cryptography objects serve PKCS#1 v1.5 with a hash, PSS and OAEP; libcrypto `PKey`s serve raw RSA and
PKCS#1 v1.5 signatures over arbitrary input. Parsed keys are cached per key object version.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pyhsm import constants as ck
from pyhsm.errors import CKRError
from pyhsm.mechanisms import libcrypto
from pyhsm.mechanisms.registry import KeyView


def to_int(value: bytes) -> int:
    return int.from_bytes(value, "big")


def to_bytes(value: int) -> bytes:
    """Big-endian without leading zeros (a PKCS#11 big integer)."""
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def _bad_key(what: str) -> CKRError:
    return CKRError(ck.CKR_FUNCTION_FAILED, f"invalid RSA {what} key material")


def consistent(n: int, e: int, d: int, p: int, q: int, dmp1: int, dmq1: int, iqmp: int) -> bool:
    """The arithmetic relations between the RSA key values (what OpenSSL's key check verifies, less the
    primality tests of p and q): n = pq, e·d = 1 mod lcm(p-1, q-1), the CRT exponents and the coefficient."""
    if min(n, e, d, p, q, dmp1, dmq1, iqmp) <= 0 or p * q != n or e % 2 == 0:
        return False
    lcm = (p - 1) * (q - 1) // math.gcd(p - 1, q - 1)
    return ((e * d - 1) % lcm == 0 and (e * dmp1 - 1) % (p - 1) == 0 and (e * dmq1 - 1) % (q - 1) == 0
            and (iqmp * q - 1) % p == 0)


def _load_private(attrs: Mapping[int, Any]) -> rsa.RSAPrivateKey:
    """pyca/cryptography's own validation of a private key costs about 100 ms (RSA-2048), mostly primality tests
    of p and q, and every process paid it on the first use of each key. The relations between the values are
    checked here instead (tens of microseconds): a key whose values do not fit together is refused as before; one
    with composite "primes" (which a client could only import on purpose) merely makes wrong signatures, and
    OpenSSL checks each CRT result before releasing it, so it cannot leak the key."""
    try:
        n, e = to_int(attrs[ck.CKA_MODULUS]), to_int(attrs[ck.CKA_PUBLIC_EXPONENT])
        values = [to_int(attrs[t]) for t in (ck.CKA_PRIVATE_EXPONENT, ck.CKA_PRIME_1, ck.CKA_PRIME_2,
                                             ck.CKA_EXPONENT_1, ck.CKA_EXPONENT_2, ck.CKA_COEFFICIENT)]
        d, p, q, dmp1, dmq1, iqmp = values
        if not consistent(n, e, d, p, q, dmp1, dmq1, iqmp):
            raise ValueError("inconsistent RSA private key values")
        numbers = rsa.RSAPrivateNumbers(p, q, d, dmp1, dmq1, iqmp, rsa.RSAPublicNumbers(e, n))
        return numbers.private_key(unsafe_skip_rsa_key_validation=True)
    except (KeyError, ValueError):
        raise _bad_key("private") from None


def _load_public(attrs: Mapping[int, Any]) -> rsa.RSAPublicKey:
    try:
        return rsa.RSAPublicNumbers(to_int(attrs[ck.CKA_PUBLIC_EXPONENT]),
                                    to_int(attrs[ck.CKA_MODULUS])).public_key()
    except (KeyError, ValueError):
        raise _bad_key("public") from None


def private_key(key: KeyView) -> rsa.RSAPrivateKey:
    result: rsa.RSAPrivateKey = key.cached("rsa.private", lambda: _load_private(key.attrs))
    return result


def public_key(key: KeyView) -> rsa.RSAPublicKey:
    """Works on public and private key objects alike (both carry CKA_MODULUS and CKA_PUBLIC_EXPONENT)."""
    result: rsa.RSAPublicKey = key.cached("rsa.public", lambda: _load_public(key.attrs))
    return result


def modulus_len(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> int:
    return (key.key_size + 7) // 8


def evp_private(key: KeyView) -> libcrypto.PKey:
    def load() -> libcrypto.PKey:
        priv = private_key(key)
        der = priv.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
                                 serialization.NoEncryption())
        try:
            return libcrypto.rsa_private_key(der, modulus_len(priv))
        except libcrypto.LibcryptoError as exc:
            raise CKRError(ck.CKR_FUNCTION_FAILED, f"libcrypto: {exc}") from None

    result: libcrypto.PKey = key.cached("rsa.evp_private", load)
    return result


def evp_public(key: KeyView) -> libcrypto.PKey:
    def load() -> libcrypto.PKey:
        pub = public_key(key)
        der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
        try:
            return libcrypto.rsa_public_key(der, modulus_len(pub))
        except libcrypto.LibcryptoError as exc:
            raise CKRError(ck.CKR_FUNCTION_FAILED, f"libcrypto: {exc}") from None

    result: libcrypto.PKey = key.cached("rsa.evp_public", load)
    return result
