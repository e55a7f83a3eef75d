"""RSA key objects for the RSA mechanisms, parsed once per key object version (KeyView.cached).

pyca/cryptography objects serve PKCS#1 v1.5 with a hash, PSS and OAEP; libcrypto `PKey`s serve raw RSA and
PKCS#1 v1.5 signatures over arbitrary input. Parsed keys are cached per key object version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pyhsm import constants as ck
from pyhsm.errors import CKRError
from pyhsm.mechanisms import libcrypto
from pyhsm.mechanisms.registry import KeyView
from pyhsm.objects.keys import rsa_private_key


def to_int(value: bytes) -> int:
    return int.from_bytes(value, "big")


def to_bytes(value: int) -> bytes:
    """Big-endian without leading zeros (a PKCS#11 big integer)."""
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def _bad_key(what: str) -> CKRError:
    return CKRError(ck.CKR_FUNCTION_FAILED, f"invalid RSA {what} key material")


def _load_private(attrs: Mapping[int, Any]) -> rsa.RSAPrivateKey:
    try:
        return rsa_private_key(attrs)  # the values' relations checked, not pyca's 100 ms validation (see there)
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
