"""SHA-3 mechanisms (PKCS#11 v3.0 section 2.25 and the SHA3 forms of RSA, ECDSA, OAEP and PSS) through the module,
checked against FIPS 202 known answers, the standard library and pyca/cryptography."""

from __future__ import annotations

import hashlib
import hmac
import struct

import pkcs11
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from mech_params import (
    mechanism,
    shared_session,  # noqa: F401  (one token per module)
)
from pkcs11 import MGF, Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters
from pkcs11.util.rsa import decode_rsa_private_key

from pyhsm import constants as ck

SHA3 = {224: hashes.SHA3_224(), 256: hashes.SHA3_256(), 384: hashes.SHA3_384(), 512: hashes.SHA3_512()}
DIGEST = {224: Mechanism.SHA3_224, 256: Mechanism.SHA3_256, 384: Mechanism.SHA3_384, 512: Mechanism.SHA3_512}
HMAC_KEY_TYPES = {224: KeyType.SHA3_224_HMAC, 256: KeyType.SHA3_256_HMAC, 384: KeyType.SHA3_384_HMAC,
                  512: KeyType.SHA3_512_HMAC}
ECDSA_SHA3 = {bits: mechanism(value, f"ECDSA_SHA3_{bits}") for bits, value in
              ((224, ck.CKM_ECDSA_SHA3_224), (256, ck.CKM_ECDSA_SHA3_256), (384, ck.CKM_ECDSA_SHA3_384),
               (512, ck.CKM_ECDSA_SHA3_512))}
MGF1 = {224: MGF.SHA3_224, 256: MGF.SHA3_256, 384: MGF.SHA3_384, 512: MGF.SHA3_512}


def _mech(name: str) -> Mechanism:
    return Mechanism[name]


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


@pytest.fixture
def rsa_priv(session, rsa_key):  # type: ignore[no-untyped-def]
    der = rsa_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    return session.create_object({**decode_rsa_private_key(der), Attribute.SIGN: True, Attribute.DECRYPT: True})


def test_sha3_256_of_abc_is_the_fips_202_answer(session) -> None:
    assert session.digest(b"abc", mechanism=Mechanism.SHA3_256) == bytes.fromhex(
        "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532")


@pytest.mark.parametrize("bits", sorted(DIGEST))
def test_digests_single_and_multi_part_match_hashlib(session, bits) -> None:
    data = bytes(range(256)) * 3
    expected = hashlib.new(f"sha3_{bits}", data).digest()
    assert session.digest(data, mechanism=DIGEST[bits]) == expected
    assert session.digest([data[:100], data[100:]], mechanism=DIGEST[bits]) == expected


@pytest.mark.parametrize("bits", sorted(DIGEST))
def test_hmac_matches_the_standard_library(session, bits) -> None:
    value = bytes(range(40))
    key = session.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: HMAC_KEY_TYPES[bits],
                                 Attribute.VALUE: value, Attribute.SIGN: True, Attribute.VERIFY: True})
    expected = hmac.digest(value, b"message", f"sha3_{bits}")
    assert key.sign(b"message", mechanism=_mech(f"SHA3_{bits}_HMAC")) == expected
    assert key.verify(b"message", expected, mechanism=_mech(f"SHA3_{bits}_HMAC"))
    general = mechanism(getattr(ck, f"CKM_SHA3_{bits}_HMAC_GENERAL"), f"SHA3_{bits}_HMAC_GENERAL")
    assert key.sign(b"message", mechanism=general, mechanism_param=struct.pack("L", 10)) == expected[:10]


def test_hmac_general_length_zero_is_mechanism_param_invalid(session) -> None:
    key = session.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.GENERIC_SECRET,
                                 Attribute.VALUE: bytes(16), Attribute.SIGN: True})
    general = mechanism(ck.CKM_SHA3_256_HMAC_GENERAL, "SHA3_256_HMAC_GENERAL")
    with pytest.raises(pkcs11.exceptions.MechanismParamInvalid):
        key.sign(b"m", mechanism=general, mechanism_param=struct.pack("L", 0))


@pytest.mark.parametrize("bits", sorted(DIGEST))
def test_rsa_pkcs_and_pss_signatures_verify_independently(rsa_priv, rsa_key, bits) -> None:
    sig = rsa_priv.sign(b"sha3 message", mechanism=_mech(f"SHA3_{bits}_RSA_PKCS"))
    rsa_key.public_key().verify(sig, b"sha3 message", padding.PKCS1v15(), SHA3[bits])
    multi = rsa_priv.sign([b"sha3 ", b"message"], mechanism=_mech(f"SHA3_{bits}_RSA_PKCS"))
    assert multi == sig
    params = struct.pack("LLL", DIGEST[bits], MGF1[bits], bits // 8)  # CK_RSA_PKCS_PSS_PARAMS
    pss = rsa_priv.sign(b"sha3 message", mechanism=_mech(f"SHA3_{bits}_RSA_PKCS_PSS"), mechanism_param=params)
    rsa_key.public_key().verify(pss, b"sha3 message", padding.PSS(padding.MGF1(SHA3[bits]), bits // 8), SHA3[bits])


def test_pss_with_a_hash_other_than_the_mechanisms_is_mechanism_param_invalid(rsa_priv) -> None:
    with pytest.raises(pkcs11.exceptions.MechanismParamInvalid):
        rsa_priv.sign(b"m", mechanism=Mechanism.SHA3_256_RSA_PKCS_PSS,
                      mechanism_param=struct.pack("LLL", Mechanism.SHA256, MGF.SHA3_256, 32))


def test_oaep_over_sha3_is_mechanism_param_invalid(session, rsa_priv) -> None:
    # pyca/cryptography (our RSA backend) has no OAEP over SHA-3: refused precisely at C_DecryptInit.
    for params in ((Mechanism.SHA3_256, MGF.SHA3_256, None), (Mechanism.SHA256, MGF.SHA3_256, None),
                   (Mechanism.SHA3_256, MGF.SHA256, None)):
        with pytest.raises(pkcs11.exceptions.MechanismParamInvalid):
            rsa_priv.decrypt(bytes(256), mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=params)


@pytest.mark.parametrize("bits", sorted(ECDSA_SHA3))
def test_ecdsa_sha3_signatures_verify_independently(session, bits) -> None:
    params = session.create_domain_parameters(
        KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp384r1")}, local=True)
    pub, priv = params.generate_keypair()
    sig = priv.sign(b"ecdsa sha3", mechanism=ECDSA_SHA3[bits])
    point = pub[Attribute.EC_POINT][2:]
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP384R1(), point)
    der = encode_dss_signature(int.from_bytes(sig[:48], "big"), int.from_bytes(sig[48:], "big"))
    key.verify(der, b"ecdsa sha3", ec.ECDSA(SHA3[bits]))
    assert pub.verify(b"ecdsa sha3", sig, mechanism=ECDSA_SHA3[bits])
    assert not pub.verify(b"ecdsa sha3!", sig, mechanism=ECDSA_SHA3[bits])
