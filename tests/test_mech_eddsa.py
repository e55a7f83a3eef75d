"""Edwards-curve mechanisms (PKCS#11 v3.0 sections 2.3.6-2.3.7) through the module: RFC 8032 test vectors signed
with imported keys, generated keys checked by pyca/cryptography, the CKA_EC_PARAMS/CKA_EC_POINT encodings."""

from __future__ import annotations

import pkcs11
import pytest
from cryptography.hazmat.primitives import keywrap, serialization
from cryptography.hazmat.primitives.asymmetric import ed448, ed25519
from mech_params import shared_session  # noqa: F401  (one token per module)
from p11_helpers import raises_rv
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

from pyhsm import constants as ck

ED25519_OID = bytes.fromhex("06032b6570")
ED448_OID = bytes.fromhex("06032b6571")
EDWARDS25519 = b"\x13\x0cedwards25519"
EDWARDS448 = b"\x13\x0aedwards448"
GNUPG_ED25519 = bytes.fromhex("06092b06010401da470f01")  # what OpenSC 0.23 sends
CKR_CURVE_NOT_SUPPORTED = 0x140

# RFC 8032 section 7.1 TEST 1 and section 7.4 "Blank" (empty messages).
RFC8032 = {
    "ed25519": (EDWARDS25519,
                "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
                "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46b"
                "d25bf5f0595bbe24655141438e7a100b"),
    "ed448": (EDWARDS448,
              "6c82a562cb808d10d632be89c8513ebf6c929f34ddfa8c9f63c9960ef6e348a3528c8a3fcc2f044e39a3fc5b94492f8f03"
              "2e7549a20098f95b",
              "5fd7449b59b461fd2ce787ec616ad46a1da1342485a70e1f8a0ea75d80e96778edf124769b46c7061bd6783df1e50f6c"
              "d1fa1abeafe8256180",
              "533a37f6bbe457251f023c0d88f976ae2dfb504a843e34d2074fd823d41a591f2b233f034f628281f2fd7a22ddd47d78"
              "28c59bd0a21bfd3980ff0d2028d4b18a9df63e006c5d1c2d345b925d8dc00b4104852db99ac5c7cdda8530a113a0f4dbb6"
              "1149f05a7363268c71d95808ff2e652600"),
}


def _import(session, params: bytes, secret: bytes, extractable: bool = False):  # type: ignore[no-untyped-def]
    return session.create_object({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.KEY_TYPE: KeyType.EC_EDWARDS,
                                  Attribute.EC_PARAMS: params, Attribute.VALUE: secret, Attribute.SIGN: True,
                                  Attribute.EXTRACTABLE: extractable})


def _public(session, params: bytes, point: bytes):  # type: ignore[no-untyped-def]
    return session.create_object({Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.KEY_TYPE: KeyType.EC_EDWARDS,
                                  Attribute.EC_PARAMS: params, Attribute.EC_POINT: point, Attribute.VERIFY: True})


def _generate(session, params: bytes):  # type: ignore[no-untyped-def]
    return session.generate_keypair(KeyType.EC_EDWARDS, public_template={Attribute.EC_PARAMS: params},
                                    mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN)


@pytest.mark.parametrize("curve", sorted(RFC8032))
def test_rfc8032_vector_signed_by_an_imported_key(session, curve) -> None:
    params, secret, public, signature = (RFC8032[curve][0], *map(bytes.fromhex, RFC8032[curve][1:]))
    priv = _import(session, params, secret)
    assert priv[Attribute.EC_POINT] == bytes([0x04, len(public)]) + public  # DER OCTET STRING of the raw key
    assert priv.sign(b"", mechanism=Mechanism.EDDSA) == signature
    pub = _public(session, params, public)  # a raw public key is accepted on import
    assert pub.verify(b"", signature, mechanism=Mechanism.EDDSA)
    assert not pub.verify(b"x", signature, mechanism=Mechanism.EDDSA)


@pytest.mark.parametrize("params,cls", [(ED25519_OID, ed25519.Ed25519PublicKey), (EDWARDS25519,
                                        ed25519.Ed25519PublicKey), (GNUPG_ED25519, ed25519.Ed25519PublicKey),
                                        (ED448_OID, ed448.Ed448PublicKey), (EDWARDS448, ed448.Ed448PublicKey)])
def test_generated_key_signs_and_cryptography_verifies(session, params, cls) -> None:
    pub, priv = _generate(session, params)
    assert pub[Attribute.EC_PARAMS] == params and priv[Attribute.KEY_TYPE] == KeyType.EC_EDWARDS
    point = pub[Attribute.EC_POINT]
    assert point[0] == 0x04 and point[1] == len(point) - 2 and priv[Attribute.EC_POINT] == point
    message = b"edwards " * 100
    signature = priv.sign(message, mechanism=Mechanism.EDDSA)
    cls.from_public_bytes(point[2:]).verify(signature, message)
    assert priv.sign([message[:100], message[100:]], mechanism=Mechanism.EDDSA) == signature  # deterministic
    assert pub.verify(message, signature, mechanism=Mechanism.EDDSA)


def test_pure_params_are_accepted_and_prehash_or_context_is_mechanism_param_invalid(session) -> None:
    _, priv = _generate(session, ED25519_OID)
    assert priv.sign(b"m", mechanism=Mechanism.EDDSA, mechanism_param=(False, None)) == priv.sign(
        b"m", mechanism=Mechanism.EDDSA)
    for param in ((True, None), (False, b"context")):
        with pytest.raises(pkcs11.exceptions.MechanismParamInvalid):
            priv.sign(b"m", mechanism=Mechanism.EDDSA, mechanism_param=param)


def test_signature_of_the_wrong_length_fails_verification(session) -> None:
    # python-pkcs11 folds CKR_SIGNATURE_LEN_RANGE into False; tests/c_host/mechanisms.c checks the exact code.
    pub, _ = _generate(session, ED25519_OID)
    assert not pub.verify(b"m", bytes(63), mechanism=Mechanism.EDDSA)


def test_montgomery_curve_for_an_edwards_key_is_curve_not_supported(session) -> None:
    with raises_rv(CKR_CURVE_NOT_SUPPORTED):
        _generate(session, b"\x13\x0acurve25519")
    with pytest.raises(pkcs11.exceptions.DomainParamsInvalid):
        _generate(session, b"\x30\x00")


def test_private_value_of_the_wrong_length_is_attribute_value_invalid(session) -> None:
    with pytest.raises(pkcs11.exceptions.AttributeValueInvalid):
        _import(session, EDWARDS25519, bytes(31))


def test_wrapped_ed25519_key_is_pkcs8(session) -> None:
    kek_value = bytes(range(32))
    kek = session.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES,
                                 Attribute.VALUE: kek_value, Attribute.WRAP: True, Attribute.UNWRAP: True})
    secret = bytes.fromhex(RFC8032["ed25519"][1])
    priv = _import(session, EDWARDS25519, secret, extractable=True)
    wrapped = kek.wrap_key(priv, mechanism=Mechanism.AES_KEY_WRAP_KWP)
    key = serialization.load_der_private_key(keywrap.aes_key_unwrap_with_padding(kek_value, wrapped), None)
    assert isinstance(key, ed25519.Ed25519PrivateKey) and key.private_bytes_raw() == secret
    # Unwrapping it back is checked by tests/c_host/mechanisms.c: python-pkcs11's unwrap template always carries
    # CKA_ENCRYPT/VERIFY/WRAP, which a private key does not have (CKR_ATTRIBUTE_TYPE_INVALID).


def test_mechanism_info_reports_curve_sizes_and_ec_flags(token) -> None:
    info = token.slot.get_mechanism_info(Mechanism.EDDSA)
    assert (info.min_key_length, info.max_key_length) == (255, 448)
    wanted = ck.CKF_SIGN | ck.CKF_VERIFY | ck.CKF_EC_F_P | ck.CKF_EC_OID | ck.CKF_EC_CURVENAME
    assert int(info.flags) == wanted
    gen = token.slot.get_mechanism_info(Mechanism.EC_EDWARDS_KEY_PAIR_GEN)
    assert int(gen.flags) == wanted & ~(ck.CKF_SIGN | ck.CKF_VERIFY) | ck.CKF_GENERATE_KEY_PAIR
