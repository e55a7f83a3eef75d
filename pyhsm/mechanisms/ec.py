"""Elliptic curve mechanisms (PKCS#11 v3.0 section 2.3) on P-256, P-384, P-521 and secp256k1; CKM_ECDH1_DERIVE
also takes X25519 / X448 base keys (`montgomery.py`).

Signatures are raw r||s, each padded to the byte length of the group order. CKM_ECDSA signs a digest the caller
computed, of any length: FIPS 186 keeps its leftmost order-length bits, which OpenSSL does given the bytes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF

from pyhsm import constants as ck
from pyhsm.errors import CKRError
from pyhsm.mechanisms import montgomery
from pyhsm.mechanisms.eddsa import OKP_FLAGS
from pyhsm.mechanisms.generic import (
    HASH_ALGS,
    BufferedSignOp,
    BufferedVerifyOp,
    HashThenSign,
    Signer,
    Verifier,
    pair_params,
    param_invalid,
)
from pyhsm.mechanisms.params import Ecdh1Params, MechanismParam, ParamKind
from pyhsm.mechanisms.registry import (
    KeyView,
    Mechanism,
    MechanismInfo,
    Template,
    register,
)
from pyhsm.objects.keys import curve_for_params, der_octet_string, der_tlv

MIN_BITS, MAX_BITS = 256, 521
EC_FLAGS = ck.CKF_EC_F_P | ck.CKF_EC_OID | ck.CKF_EC_UNCOMPRESS
RAW_ECDSA_MAX_INPUT = 1024  # CKM_ECDSA input is a digest; longer input is refused rather than buffered
KDF_HASHES = {
    ck.CKD_SHA1_KDF: HASH_ALGS[ck.CKM_SHA_1],
    ck.CKD_SHA224_KDF: HASH_ALGS[ck.CKM_SHA224],
    ck.CKD_SHA256_KDF: HASH_ALGS[ck.CKM_SHA256],
    ck.CKD_SHA384_KDF: HASH_ALGS[ck.CKM_SHA384],
    ck.CKD_SHA512_KDF: HASH_ALGS[ck.CKM_SHA512],
    ck.CKD_SHA3_224_KDF: HASH_ALGS[ck.CKM_SHA3_224],
    ck.CKD_SHA3_256_KDF: HASH_ALGS[ck.CKM_SHA3_256],
    ck.CKD_SHA3_384_KDF: HASH_ALGS[ck.CKM_SHA3_384],
    ck.CKD_SHA3_512_KDF: HASH_ALGS[ck.CKM_SHA3_512],
}


# ---- encodings --------------------------------------------------------------------------------------------------
def point_bytes(encoded: bytes, curve: ec.EllipticCurve) -> bytes:
    """The X9.62 point inside a DER OCTET STRING, or the raw point itself."""
    raw_len = 1 + 2 * order_len(curve)
    if len(encoded) != raw_len:
        tlv = der_tlv(encoded)
        if tlv is not None and tlv[0] == 0x04:
            return tlv[1]
    return encoded


def order_len(curve: ec.EllipticCurve) -> int:
    return (curve.key_size + 7) // 8


def private_key(key: KeyView) -> ec.EllipticCurvePrivateKey:
    def load() -> ec.EllipticCurvePrivateKey:
        curve = curve_for_params(key.attrs[ck.CKA_EC_PARAMS])
        try:
            return ec.derive_private_key(int.from_bytes(key.attrs[ck.CKA_VALUE], "big"), curve)
        except (KeyError, ValueError):
            raise CKRError(ck.CKR_FUNCTION_FAILED, "invalid EC private key material") from None

    result: ec.EllipticCurvePrivateKey = key.cached("ec.private", load)
    return result


def public_key(key: KeyView) -> ec.EllipticCurvePublicKey:
    def load() -> ec.EllipticCurvePublicKey:
        curve = curve_for_params(key.attrs[ck.CKA_EC_PARAMS])
        try:
            return ec.EllipticCurvePublicKey.from_encoded_point(curve, point_bytes(key.attrs[ck.CKA_EC_POINT], curve))
        except (KeyError, ValueError):
            raise CKRError(ck.CKR_FUNCTION_FAILED, "invalid EC public key material") from None

    result: ec.EllipticCurvePublicKey = key.cached("ec.public", load)
    return result


@functools.cache
def raw_digest(length: int) -> Prehashed:
    """A `Prehashed` for a digest of any length: pyca/cryptography hands the bytes to ECDSA as they are."""
    algorithm = type(f"RawDigest{length}", (hashes.HashAlgorithm,),
                     {"name": f"raw-digest-{length}", "digest_size": length, "block_size": None})
    return Prehashed(algorithm())


def _ecdsa_signer(priv: ec.EllipticCurvePrivateKey) -> Signer:
    size = order_len(priv.curve)

    def sign(data: bytes, algorithm: Any) -> bytes:
        r, s = decode_dss_signature(priv.sign(data, ec.ECDSA(algorithm)))
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")

    return sign


def _ecdsa_verifier(pub: ec.EllipticCurvePublicKey) -> Verifier:
    size = order_len(pub.curve)

    def verify(data: bytes, signature: bytes, algorithm: Any) -> None:
        if len(signature) != 2 * size:
            raise CKRError(ck.CKR_SIGNATURE_LEN_RANGE)
        r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
        try:
            pub.verify(encode_dss_signature(r, s), data, ec.ECDSA(algorithm))
        except InvalidSignature:
            raise CKRError(ck.CKR_SIGNATURE_INVALID) from None

    return verify


# The signing and verifying functions are made once per key object version (KeyView.cached): an Init only looks
# them up.
def signer(key: KeyView) -> Signer:
    result: Signer = key.cached("ecdsa.signer", lambda: _ecdsa_signer(private_key(key)))
    return result


def verifier(key: KeyView) -> Verifier:
    result: Verifier = key.cached("ecdsa.verifier", lambda: _ecdsa_verifier(public_key(key)))
    return result


def _raw_signer(key: KeyView) -> Callable[[bytes], bytes]:
    """CKM_ECDSA: the input is the digest."""
    def load() -> Callable[[bytes], bytes]:
        sign, size = signer(key), order_len(private_key(key).curve)
        return lambda data: sign(*_digest_input(data, size))

    result: Callable[[bytes], bytes] = key.cached("ecdsa.raw_signer", load)
    return result


def _raw_verifier(key: KeyView) -> Callable[[bytes, bytes], None]:
    def load() -> Callable[[bytes, bytes], None]:
        verify, size = verifier(key), order_len(public_key(key).curve)

        def check(data: bytes, signature: bytes) -> None:
            digest, algorithm = _digest_input(data, size)
            verify(digest, signature, algorithm)

        return check

    result: Callable[[bytes, bytes], None] = key.cached("ecdsa.raw_verifier", load)
    return result


def _digest_input(data: bytes, size: int) -> tuple[bytes, Prehashed]:
    """CKM_ECDSA input: bytes beyond the order length can never survive FIPS 186 truncation, drop them here."""
    if not data:
        raise CKRError(ck.CKR_DATA_LEN_RANGE, "empty input")
    data = data[:size]
    return data, raw_digest(len(data))


class EcMechanism(Mechanism):
    key_types = frozenset({ck.CKK_EC})
    info = MechanismInfo(MIN_BITS, MAX_BITS, ck.CKF_SIGN | ck.CKF_VERIFY | EC_FLAGS)


# ---- key pair generation ----------------------------------------------------------------------------------------
@register
class EcKeyPairGen(Mechanism):
    """Public: CKA_EC_PARAMS, CKA_EC_POINT; private: CKA_EC_PARAMS, CKA_VALUE, CKA_EC_POINT."""

    ckm = ck.CKM_EC_KEY_PAIR_GEN
    generates = ck.CKK_EC
    info = MechanismInfo(MIN_BITS, MAX_BITS, ck.CKF_GENERATE_KEY_PAIR | EC_FLAGS)

    def generate_key_pair(self, public: Template, private: Template) -> tuple[Template, Template]:
        params = pair_params(public, private)
        curve = curve_for_params(params)
        key = ec.generate_private_key(curve)
        point = der_octet_string(key.public_key().public_bytes(serialization.Encoding.X962,
                                                               serialization.PublicFormat.UncompressedPoint))
        value = key.private_numbers().private_value.to_bytes(order_len(curve), "big")
        return ({ck.CKA_EC_PARAMS: params, ck.CKA_EC_POINT: point},
                {ck.CKA_EC_PARAMS: params, ck.CKA_VALUE: value, ck.CKA_EC_POINT: point})


# ---- ECDSA ------------------------------------------------------------------------------------------------------
@register
class Ecdsa(EcMechanism):
    ckm = ck.CKM_ECDSA

    def sign(self, key: KeyView, param: MechanismParam) -> BufferedSignOp:
        return BufferedSignOp(_raw_signer(key), RAW_ECDSA_MAX_INPUT)

    def verify(self, key: KeyView, param: MechanismParam) -> BufferedVerifyOp:
        return BufferedVerifyOp(_raw_verifier(key), RAW_ECDSA_MAX_INPUT)


class HashEcdsa(EcMechanism, HashThenSign):
    def signer(self, key: KeyView, param: MechanismParam) -> Signer:
        return signer(key)

    def verifier(self, key: KeyView, param: MechanismParam) -> Verifier:
        return verifier(key)


@register
class EcdsaSha1(HashEcdsa):
    ckm, hash_ckm = ck.CKM_ECDSA_SHA1, ck.CKM_SHA_1


@register
class EcdsaSha224(HashEcdsa):
    ckm, hash_ckm = ck.CKM_ECDSA_SHA224, ck.CKM_SHA224


@register
class EcdsaSha256(HashEcdsa):
    ckm, hash_ckm = ck.CKM_ECDSA_SHA256, ck.CKM_SHA256


@register
class EcdsaSha384(HashEcdsa):
    ckm, hash_ckm = ck.CKM_ECDSA_SHA384, ck.CKM_SHA384


@register
class EcdsaSha512(HashEcdsa):
    ckm, hash_ckm = ck.CKM_ECDSA_SHA512, ck.CKM_SHA512


for _ckm, _hash in ((ck.CKM_ECDSA_SHA3_224, ck.CKM_SHA3_224), (ck.CKM_ECDSA_SHA3_256, ck.CKM_SHA3_256),
                   (ck.CKM_ECDSA_SHA3_384, ck.CKM_SHA3_384), (ck.CKM_ECDSA_SHA3_512, ck.CKM_SHA3_512)):
    register(type(f"EcdsaSha3_{_ckm:X}", (HashEcdsa,), {"ckm": _ckm, "hash_ckm": _hash}))


# ---- ECDH -------------------------------------------------------------------------------------------------------
def _ecdh_secret(base_key: KeyView, public_data: bytes) -> bytes:
    priv = private_key(base_key)
    try:
        peer = ec.EllipticCurvePublicKey.from_encoded_point(priv.curve, point_bytes(public_data, priv.curve))
    except ValueError:
        raise param_invalid("the peer's public point is not on the curve") from None
    return priv.exchange(ec.ECDH(), peer)


def _ecdh1(param: MechanismParam) -> Ecdh1Params:
    if not isinstance(param, Ecdh1Params):
        raise param_invalid("CK_ECDH1_DERIVE_PARAMS required")
    if param.kdf != ck.CKD_NULL and param.kdf not in KDF_HASHES:
        raise param_invalid(f"unsupported KDF 0x{param.kdf:X}")
    if param.kdf == ck.CKD_NULL and param.shared_data:
        raise param_invalid("CKD_NULL takes no shared data")
    if not param.public_data:
        raise param_invalid("the peer's public point is missing")
    return param


@register
class Ecdh1Derive(EcMechanism):
    """CKA_VALUE of CKA_VALUE_LEN bytes (default: the shared secret's length). With CKD_NULL a shorter value keeps
    the trailing bytes of the secret (truncation removes bytes from the leading end, as the spec says for
    derivation mechanisms); the CKD_SHA*_KDF functions are ANSI X9.63 with the shared data as SharedInfo."""

    ckm = ck.CKM_ECDH1_DERIVE
    key_types = frozenset({ck.CKK_EC, ck.CKK_EC_MONTGOMERY})
    info = MechanismInfo(255, MAX_BITS, ck.CKF_DERIVE | EC_FLAGS | OKP_FLAGS)
    param_kind = ParamKind.ECDH1

    def check_param(self, param: MechanismParam) -> None:
        _ecdh1(param)

    def derive(self, base_key: KeyView, param: MechanismParam, template: Template) -> Template:
        p = _ecdh1(param)
        if base_key.attrs.get(ck.CKA_KEY_TYPE) == ck.CKK_EC_MONTGOMERY:
            secret = montgomery.shared_secret(base_key, p.public_data)
        else:
            secret = _ecdh_secret(base_key, p.public_data)
        length = template.get(ck.CKA_VALUE_LEN)
        length = len(secret) if length is None else int(length)
        if length <= 0:
            raise CKRError(ck.CKR_ATTRIBUTE_VALUE_INVALID, "CKA_VALUE_LEN must be positive")
        if p.kdf == ck.CKD_NULL:
            if length > len(secret):
                raise CKRError(ck.CKR_TEMPLATE_INCONSISTENT, "CKA_VALUE_LEN exceeds the shared secret")
            return {ck.CKA_VALUE: secret[len(secret) - length:]}
        kdf = X963KDF(KDF_HASHES[p.kdf], length, p.shared_data or None)
        return {ck.CKA_VALUE: kdf.derive(secret)}
