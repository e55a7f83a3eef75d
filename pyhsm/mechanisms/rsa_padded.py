"""RSA mechanisms built on pyca/cryptography's paddings (PKCS#11 v3.0 section 2.1): CKM_RSA_PKCS_PSS, the
hash-then-sign CKM_SHA*_RSA_PKCS and CKM_SHA*_RSA_PKCS_PSS, and CKM_RSA_PKCS_OAEP."""

from __future__ import annotations

from cryptography.hazmat.backends.openssl.backend import backend
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from pyhsm import constants as ck
from pyhsm.errors import CKRError
from pyhsm.mechanisms.generic import (
    HASH_ALGS,
    BufferedCipherOp,
    BufferedSignOp,
    BufferedVerifyOp,
    HashThenSign,
    Signer,
    Verifier,
    WrapsWithCipher,
    hash_alg,
    mgf1_hash,
    param_invalid,
)
from pyhsm.mechanisms.params import MechanismParam, OaepParams, ParamKind, PssParams
from pyhsm.mechanisms.registry import KeyView, MechanismInfo, register
from pyhsm.mechanisms.rsa import (
    ENCRYPT_DECRYPT,
    OP_MAX_BITS,
    OP_MIN_BITS,
    PKCS1V15,
    WRAP_UNWRAP,
    RsaMechanism,
    private_decrypt,
    pyca_verifier,
)
from pyhsm.mechanisms.rsa_keys import modulus_len, private_key, public_key


def _err(rv: int, detail: str = "") -> CKRError:
    return CKRError(rv, detail)


# ---- PSS --------------------------------------------------------------------------------------------------------
def _pss(param: MechanismParam, key_bits: int | None = None, expected_hash: int | None = None) -> padding.PSS:
    if not isinstance(param, PssParams):
        raise param_invalid("CK_RSA_PKCS_PSS_PARAMS required")
    if expected_hash is not None and param.hash_alg != expected_hash:
        raise param_invalid("the PSS hashAlg must match the mechanism's hash")
    alg = hash_alg(param.hash_alg)
    mgf = mgf1_hash(param.mgf)
    if param.salt_len < 0 or (key_bits is not None
                               and param.salt_len > (key_bits - 1 + 7) // 8 - alg.digest_size - 2):
        raise param_invalid("PSS salt length out of range for this key")
    return padding.PSS(padding.MGF1(mgf), param.salt_len)


@register
class RsaPkcsPss(RsaMechanism):
    """PSS over a digest the caller computed: the input length must be the PSS hash's digest length."""

    ckm = ck.CKM_RSA_PKCS_PSS
    param_kind = ParamKind.PSS

    def check_param(self, param: MechanismParam) -> None:
        _pss(param)

    def sign(self, key: KeyView, param: MechanismParam) -> BufferedSignOp:
        priv = private_key(key)
        pad = _pss(param, priv.key_size)
        prehashed = Prehashed(HASH_ALGS[param.hash_alg])  # type: ignore[union-attr]

        def sign(digest: bytes) -> bytes:
            if len(digest) != prehashed.digest_size:
                raise _err(ck.CKR_DATA_LEN_RANGE, "input must be a digest of the PSS hash")
            return priv.sign(digest, pad, prehashed)

        return BufferedSignOp(sign, prehashed.digest_size)

    def verify(self, key: KeyView, param: MechanismParam) -> BufferedVerifyOp:
        pub = public_key(key)
        pad = _pss(param, pub.key_size)
        prehashed = Prehashed(HASH_ALGS[param.hash_alg])  # type: ignore[union-attr]
        check = pyca_verifier(pub, pad)

        def verify(digest: bytes, signature: bytes) -> None:
            if len(digest) != prehashed.digest_size:
                raise _err(ck.CKR_DATA_LEN_RANGE, "input must be a digest of the PSS hash")
            check(digest, signature, prehashed)

        return BufferedVerifyOp(verify, prehashed.digest_size)


class HashRsaPkcs(RsaMechanism, HashThenSign):
    """The signing and verifying functions take no parameter: made once per key object version."""

    def signer(self, key: KeyView, param: MechanismParam) -> Signer:
        def load() -> Signer:
            priv = private_key(key)
            return lambda data, alg: priv.sign(data, PKCS1V15, alg)

        result: Signer = key.cached("rsa.pkcs1_signer", load)
        return result

    def verifier(self, key: KeyView, param: MechanismParam) -> Verifier:
        result: Verifier = key.cached("rsa.pkcs1_verifier", lambda: pyca_verifier(public_key(key), PKCS1V15))
        return result


class HashRsaPss(RsaMechanism, HashThenSign):
    param_kind = ParamKind.PSS

    def check_param(self, param: MechanismParam) -> None:
        _pss(param, expected_hash=self.hash_ckm)

    def signer(self, key: KeyView, param: MechanismParam) -> Signer:
        priv = private_key(key)
        pad = _pss(param, priv.key_size, self.hash_ckm)
        return lambda data, alg: priv.sign(data, pad, alg)

    def verifier(self, key: KeyView, param: MechanismParam) -> Verifier:
        pub = public_key(key)
        return pyca_verifier(pub, _pss(param, pub.key_size, self.hash_ckm))


@register
class Sha1RsaPkcs(HashRsaPkcs):
    ckm, hash_ckm = ck.CKM_SHA1_RSA_PKCS, ck.CKM_SHA_1


@register
class Sha224RsaPkcs(HashRsaPkcs):
    ckm, hash_ckm = ck.CKM_SHA224_RSA_PKCS, ck.CKM_SHA224


@register
class Sha256RsaPkcs(HashRsaPkcs):
    ckm, hash_ckm = ck.CKM_SHA256_RSA_PKCS, ck.CKM_SHA256


@register
class Sha384RsaPkcs(HashRsaPkcs):
    ckm, hash_ckm = ck.CKM_SHA384_RSA_PKCS, ck.CKM_SHA384


@register
class Sha512RsaPkcs(HashRsaPkcs):
    ckm, hash_ckm = ck.CKM_SHA512_RSA_PKCS, ck.CKM_SHA512


@register
class Sha1RsaPss(HashRsaPss):
    ckm, hash_ckm = ck.CKM_SHA1_RSA_PKCS_PSS, ck.CKM_SHA_1


@register
class Sha224RsaPss(HashRsaPss):
    ckm, hash_ckm = ck.CKM_SHA224_RSA_PKCS_PSS, ck.CKM_SHA224


@register
class Sha256RsaPss(HashRsaPss):
    ckm, hash_ckm = ck.CKM_SHA256_RSA_PKCS_PSS, ck.CKM_SHA256


@register
class Sha384RsaPss(HashRsaPss):
    ckm, hash_ckm = ck.CKM_SHA384_RSA_PKCS_PSS, ck.CKM_SHA384


@register
class Sha512RsaPss(HashRsaPss):
    ckm, hash_ckm = ck.CKM_SHA512_RSA_PKCS_PSS, ck.CKM_SHA512


# SHA-3 (v3.0 section 2.1.x): (CKM_SHA3_*_RSA_PKCS, CKM_SHA3_*_RSA_PKCS_PSS, hash).
for _pkcs, _pss_ckm, _hash in (
    (ck.CKM_SHA3_224_RSA_PKCS, ck.CKM_SHA3_224_RSA_PKCS_PSS, ck.CKM_SHA3_224),
    (ck.CKM_SHA3_256_RSA_PKCS, ck.CKM_SHA3_256_RSA_PKCS_PSS, ck.CKM_SHA3_256),
    (ck.CKM_SHA3_384_RSA_PKCS, ck.CKM_SHA3_384_RSA_PKCS_PSS, ck.CKM_SHA3_384),
    (ck.CKM_SHA3_512_RSA_PKCS, ck.CKM_SHA3_512_RSA_PKCS_PSS, ck.CKM_SHA3_512),
):
    register(type(f"HashRsaPkcs_{_pkcs:X}", (HashRsaPkcs,), {"ckm": _pkcs, "hash_ckm": _hash}))
    register(type(f"HashRsaPss_{_pss_ckm:X}", (HashRsaPss,), {"ckm": _pss_ckm, "hash_ckm": _hash}))


# ---- OAEP -------------------------------------------------------------------------------------------------------
def oaep_padding(param: MechanismParam) -> padding.OAEP:
    """CK_RSA_PKCS_OAEP_PARAMS -> padding. pyca/cryptography's OpenSSL binding refuses OAEP over SHA-3 (hash or
    MGF1), so those are CKR_MECHANISM_PARAM_INVALID at init rather than a failure mid-operation."""
    if not isinstance(param, OaepParams):
        raise param_invalid("CK_RSA_PKCS_OAEP_PARAMS required")
    if param.source not in (0, ck.CKZ_DATA_SPECIFIED) or (param.source == 0 and param.source_data):
        raise param_invalid("OAEP source must be CKZ_DATA_SPECIFIED")
    pad = padding.OAEP(padding.MGF1(mgf1_hash(param.mgf)), hash_alg(param.hash_alg), param.source_data or None)
    if not backend.rsa_padding_supported(pad):
        raise param_invalid("OAEP with this hash or MGF is not supported")
    return pad


@register
class RsaPkcsOaep(RsaMechanism, WrapsWithCipher):
    ckm = ck.CKM_RSA_PKCS_OAEP
    info = MechanismInfo(OP_MIN_BITS, OP_MAX_BITS, ENCRYPT_DECRYPT | WRAP_UNWRAP)
    param_kind = ParamKind.OAEP

    def check_param(self, param: MechanismParam) -> None:
        oaep_padding(param)

    def encrypt(self, key: KeyView, param: MechanismParam) -> BufferedCipherOp:
        pub = public_key(key)
        pad = oaep_padding(param)
        limit = modulus_len(pub) - 2 * pad.algorithm.digest_size - 2

        def encrypt(data: bytes) -> bytes:
            if len(data) > limit:
                raise _err(ck.CKR_DATA_LEN_RANGE)
            return pub.encrypt(data, pad)

        return BufferedCipherOp(encrypt, max(limit, 0), ck.CKR_DATA_LEN_RANGE)

    def decrypt(self, key: KeyView, param: MechanismParam) -> BufferedCipherOp:
        priv = private_key(key)
        return BufferedCipherOp(private_decrypt(priv, oaep_padding(param)), modulus_len(priv),
                                ck.CKR_ENCRYPTED_DATA_LEN_RANGE)
