"""EC mechanisms (PKCS#11 v3.0 section 2.3) through the module, checked against pyca/cryptography."""

from __future__ import annotations

import hashlib

import pkcs11
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from p11_helpers import raises_rv
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

CURVES = {"secp256r1": ec.SECP256R1(), "secp384r1": ec.SECP384R1(), "secp521r1": ec.SECP521R1(),
          "secp256k1": ec.SECP256K1()}


def _pair(session, curve: str):  # type: ignore[no-untyped-def]
    params = session.create_domain_parameters(
        KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(curve)}, local=True)
    return params.generate_keypair(store=True, label=f"ec-{curve}")


def _public(pub, curve: str) -> ec.EllipticCurvePublicKey:  # type: ignore[no-untyped-def]
    point = pub[Attribute.EC_POINT]
    assert point[0] == 0x04  # DER OCTET STRING around the uncompressed point
    raw = point[2:] if point[1] < 0x80 else point[3:]
    return ec.EllipticCurvePublicKey.from_encoded_point(CURVES[curve], raw)


def _der(sig: bytes) -> bytes:
    half = len(sig) // 2
    return encode_dss_signature(int.from_bytes(sig[:half], "big"), int.from_bytes(sig[half:], "big"))


@pytest.mark.parametrize("curve", sorted(CURVES))
def test_ecdsa_sha256_signature_is_raw_r_s_and_verifies_independently(session, curve) -> None:
    pub, priv = _pair(session, curve)
    sig = priv.sign(b"message", mechanism=Mechanism.ECDSA_SHA256)
    size = (CURVES[curve].key_size + 7) // 8
    assert len(sig) == 2 * size
    _public(pub, curve).verify(_der(sig), b"message", ec.ECDSA(hashes.SHA256()))
    assert pub.verify(b"message", sig, mechanism=Mechanism.ECDSA_SHA256)


def test_raw_ecdsa_over_a_hash_verifies_independently(session) -> None:
    pub, priv = _pair(session, "secp384r1")
    digest = hashlib.sha384(b"m").digest()
    sig = priv.sign(digest, mechanism=Mechanism.ECDSA)
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    _public(pub, "secp384r1").verify(_der(sig), digest, ec.ECDSA(Prehashed(hashes.SHA384())))


def test_ec_point_is_readable_on_the_private_key(session) -> None:
    pub, priv = _pair(session, "secp256r1")
    assert priv[Attribute.EC_POINT] == pub[Attribute.EC_POINT]
    assert priv[Attribute.EC_PARAMS] == pub[Attribute.EC_PARAMS]


def test_unsupported_curve_is_refused(session) -> None:
    params = session.create_domain_parameters(
        KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp224r1")}, local=True)
    with raises_rv(0x140):  # CKR_CURVE_NOT_SUPPORTED
        params.generate_keypair()


def test_ecdh1_derive_agrees_with_cryptography(session) -> None:
    pub, priv = _pair(session, "secp256r1")
    peer = ec.generate_private_key(ec.SECP256R1())
    peer_point = peer.public_key().public_bytes(serialization.Encoding.X962,
                                                serialization.PublicFormat.UncompressedPoint)
    derived = priv.derive_key(KeyType.GENERIC_SECRET, 256, mechanism_param=(pkcs11.KDF.NULL, None, peer_point),
                              template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True})
    expected = peer.exchange(ec.ECDH(), _public(pub, "secp256r1"))
    assert derived[Attribute.VALUE] == expected
    assert derived[Attribute.CLASS] == ObjectClass.SECRET_KEY
