"""RSA mechanisms (PKCS#11 v3.0 section 2.1): key pair generation, CKM_RSA_PKCS, CKM_RSA_X_509.

PSS, OAEP and the hash-then-sign mechanisms are in `rsa_padded.py`, key loading in `rsa_keys.py`.
pyca/cryptography does key generation and PKCS#1 v1.5 encryption (its OpenSSL
does implicit rejection: a ciphertext with bad padding decrypts to a pseudo-random message instead of failing, so
there is no padding oracle). The raw private operation and PKCS#1 v1.5 signing of arbitrary input go to the system
libcrypto (`libcrypto.py`), blinded and constant-time.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from pyhsm import constants as ck
from pyhsm.errors import CKRError
from pyhsm.mechanisms import libcrypto
from pyhsm.mechanisms.generic import (
    BufferedCipherOp,
    BufferedSignOp,
    BufferedVerifyOp,
    Verifier,
    WrapsWithCipher,
)
from pyhsm.mechanisms.params import MechanismParam
from pyhsm.mechanisms.registry import (
    KeyView,
    Mechanism,
    MechanismInfo,
    Template,
    register,
)
from pyhsm.mechanisms.rsa_keys import (
    evp_private,
    evp_public,
    modulus_len,
    private_key,
    public_key,
    to_bytes,
    to_int,
)

GEN_MIN_BITS, GEN_MAX_BITS = 2048, 4096
OP_MIN_BITS, OP_MAX_BITS = 1024, 16384  # what the operations accept (imported keys)
PKCS1_OVERHEAD = 11
SIGN_VERIFY = ck.CKF_SIGN | ck.CKF_VERIFY
ENCRYPT_DECRYPT = ck.CKF_ENCRYPT | ck.CKF_DECRYPT
WRAP_UNWRAP = ck.CKF_WRAP | ck.CKF_UNWRAP
PKCS1V15 = padding.PKCS1v15()


def _err(rv: int, detail: str = "") -> CKRError:
    return CKRError(rv, detail)


class RsaMechanism(Mechanism):
    key_types = frozenset({ck.CKK_RSA})
    info = MechanismInfo(OP_MIN_BITS, OP_MAX_BITS, SIGN_VERIFY)


def pyca_verifier(pub: rsa.RSAPublicKey, pad: padding.AsymmetricPadding) -> Verifier:
    k = modulus_len(pub)

    def verify(data: bytes, signature: bytes, algorithm: Any) -> None:
        if len(signature) != k:
            raise _err(ck.CKR_SIGNATURE_LEN_RANGE)
        try:
            pub.verify(signature, data, pad, algorithm)
        except InvalidSignature:
            raise _err(ck.CKR_SIGNATURE_INVALID) from None

    return verify


# ---- key pair generation --------------------------------------------------------------------------------------
@register
class RsaPkcsKeyPairGen(Mechanism):
    """Public: CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_MODULUS_BITS; private: n, e, d, p, q, dP, dQ, qInv."""

    ckm = ck.CKM_RSA_PKCS_KEY_PAIR_GEN
    generates = ck.CKK_RSA
    info = MechanismInfo(GEN_MIN_BITS, GEN_MAX_BITS, ck.CKF_GENERATE_KEY_PAIR)

    def generate_key_pair(self, public: Template, private: Template) -> tuple[Template, Template]:
        bits = public.get(ck.CKA_MODULUS_BITS)
        if bits is None:
            raise _err(ck.CKR_TEMPLATE_INCOMPLETE, "CKA_MODULUS_BITS is required")
        bits = int(bits)
        if not GEN_MIN_BITS <= bits <= GEN_MAX_BITS or bits % 8:
            raise _err(ck.CKR_KEY_SIZE_RANGE, f"RSA keys are {GEN_MIN_BITS}..{GEN_MAX_BITS} bits, multiples of 8")
        exponent = public.get(ck.CKA_PUBLIC_EXPONENT)
        e = to_int(exponent) if exponent else 65537
        if e != 65537:
            raise _err(ck.CKR_ATTRIBUTE_VALUE_INVALID, "only the public exponent 65537 is supported")
        numbers = rsa.generate_private_key(e, bits).private_numbers()
        n, e = numbers.public_numbers.n, numbers.public_numbers.e
        pub = {ck.CKA_MODULUS: to_bytes(n), ck.CKA_PUBLIC_EXPONENT: to_bytes(e), ck.CKA_MODULUS_BITS: bits}
        priv = {
            ck.CKA_MODULUS: to_bytes(n), ck.CKA_PUBLIC_EXPONENT: to_bytes(e),
            ck.CKA_PRIVATE_EXPONENT: to_bytes(numbers.d),
            ck.CKA_PRIME_1: to_bytes(numbers.p), ck.CKA_PRIME_2: to_bytes(numbers.q),
            ck.CKA_EXPONENT_1: to_bytes(numbers.dmp1), ck.CKA_EXPONENT_2: to_bytes(numbers.dmq1),
            ck.CKA_COEFFICIENT: to_bytes(numbers.iqmp),
        }
        return pub, priv


# ---- CKM_RSA_PKCS -----------------------------------------------------------------------------------------------
@register
class RsaPkcs(RsaMechanism, WrapsWithCipher):
    ckm = ck.CKM_RSA_PKCS
    info = MechanismInfo(OP_MIN_BITS, OP_MAX_BITS, SIGN_VERIFY | ENCRYPT_DECRYPT | WRAP_UNWRAP)

    def sign(self, key: KeyView, param: MechanismParam) -> BufferedSignOp:
        evp = evp_private(key)
        limit = evp.size - PKCS1_OVERHEAD

        def sign(data: bytes) -> bytes:
            if len(data) > limit:
                raise _err(ck.CKR_DATA_LEN_RANGE)
            try:
                return libcrypto.sign_pkcs1_type1(evp, data)
            except libcrypto.LibcryptoError:
                raise _err(ck.CKR_FUNCTION_FAILED) from None

        return BufferedSignOp(sign, limit)

    def verify(self, key: KeyView, param: MechanismParam) -> BufferedVerifyOp:
        pub = public_key(key)
        k = modulus_len(pub)

        def verify(data: bytes, signature: bytes) -> None:
            if len(signature) != k:
                raise _err(ck.CKR_SIGNATURE_LEN_RANGE)
            if len(data) > k - PKCS1_OVERHEAD:
                raise _err(ck.CKR_DATA_LEN_RANGE)
            try:
                recovered = pub.recover_data_from_signature(signature, PKCS1V15, None)
            except InvalidSignature:
                raise _err(ck.CKR_SIGNATURE_INVALID) from None
            if not hmac.compare_digest(recovered, data):
                raise _err(ck.CKR_SIGNATURE_INVALID)

        return BufferedVerifyOp(verify, k - PKCS1_OVERHEAD)

    def encrypt(self, key: KeyView, param: MechanismParam) -> BufferedCipherOp:
        pub = public_key(key)
        limit = modulus_len(pub) - PKCS1_OVERHEAD

        def encrypt(data: bytes) -> bytes:
            if len(data) > limit:
                raise _err(ck.CKR_DATA_LEN_RANGE)
            return pub.encrypt(data, PKCS1V15)

        return BufferedCipherOp(encrypt, limit, ck.CKR_DATA_LEN_RANGE)

    def decrypt(self, key: KeyView, param: MechanismParam) -> BufferedCipherOp:
        priv = private_key(key)
        return BufferedCipherOp(private_decrypt(priv, PKCS1V15), modulus_len(priv), ck.CKR_ENCRYPTED_DATA_LEN_RANGE)


def private_decrypt(priv: rsa.RSAPrivateKey, pad: padding.AsymmetricPadding) -> Callable[[bytes], bytes]:
    k = modulus_len(priv)

    def decrypt(data: bytes) -> bytes:
        if len(data) != k:
            raise _err(ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
        try:
            return priv.decrypt(data, pad)
        except ValueError:
            raise _err(ck.CKR_ENCRYPTED_DATA_INVALID) from None

    return decrypt


# ---- CKM_RSA_X_509 (raw) ----------------------------------------------------------------------------------------
def _raw(evp: libcrypto.PKey, fn: Callable[[libcrypto.PKey, bytes], bytes], too_long: int,
         invalid: int) -> Callable[[bytes], bytes]:
    """Input left-padded with zeros to the modulus length; a value not below the modulus is `invalid`."""
    k = evp.size

    def run(data: bytes) -> bytes:
        if len(data) > k:
            raise _err(too_long)
        try:
            return fn(evp, data.rjust(k, b"\x00"))
        except libcrypto.LibcryptoError:
            raise _err(invalid) from None

    return run


@register
class RsaX509(RsaMechanism):
    ckm = ck.CKM_RSA_X_509
    info = MechanismInfo(OP_MIN_BITS, OP_MAX_BITS, SIGN_VERIFY | ENCRYPT_DECRYPT)

    def sign(self, key: KeyView, param: MechanismParam) -> BufferedSignOp:
        evp = evp_private(key)
        return BufferedSignOp(_raw(evp, libcrypto.raw_private, ck.CKR_DATA_LEN_RANGE, ck.CKR_DATA_INVALID),
                              evp.size)

    def verify(self, key: KeyView, param: MechanismParam) -> BufferedVerifyOp:
        evp = evp_public(key)
        k = evp.size
        recover = _raw(evp, libcrypto.raw_public, ck.CKR_SIGNATURE_LEN_RANGE, ck.CKR_SIGNATURE_INVALID)

        def verify(data: bytes, signature: bytes) -> None:
            if len(signature) != k:
                raise _err(ck.CKR_SIGNATURE_LEN_RANGE)
            if len(data) > k:
                raise _err(ck.CKR_DATA_LEN_RANGE)
            if not hmac.compare_digest(recover(signature), data.rjust(k, b"\x00")):
                raise _err(ck.CKR_SIGNATURE_INVALID)

        return BufferedVerifyOp(verify, k)

    def encrypt(self, key: KeyView, param: MechanismParam) -> BufferedCipherOp:
        evp = evp_public(key)
        return BufferedCipherOp(_raw(evp, libcrypto.raw_public, ck.CKR_DATA_LEN_RANGE, ck.CKR_DATA_INVALID),
                                evp.size, ck.CKR_DATA_LEN_RANGE)

    def decrypt(self, key: KeyView, param: MechanismParam) -> BufferedCipherOp:
        evp = evp_private(key)
        k = evp.size
        run = _raw(evp, libcrypto.raw_private, ck.CKR_ENCRYPTED_DATA_LEN_RANGE, ck.CKR_ENCRYPTED_DATA_INVALID)

        def decrypt(data: bytes) -> bytes:
            if len(data) != k:
                raise _err(ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
            return run(data)

        return BufferedCipherOp(decrypt, k, ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
