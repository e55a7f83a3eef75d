"""RSA mechanisms (PKCS#11 v3.0 section 2.1) through the module, checked against pyca/cryptography."""

from __future__ import annotations

import hashlib

import pkcs11
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from p11_helpers import raises_rv
from pkcs11 import MGF, Attribute, KeyType, Mechanism
from pkcs11.util.rsa import encode_rsa_public_key


@pytest.fixture
def keypair(session):  # type: ignore[no-untyped-def]
    return session.generate_keypair(KeyType.RSA, 2048, store=True, label="rsa")


def _public(pub) -> rsa.RSAPublicKey:  # type: ignore[no-untyped-def]
    key = serialization.load_der_public_key(encode_rsa_public_key(pub))
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def test_generated_pair_has_matching_modulus_and_bits(keypair) -> None:
    pub, priv = keypair
    assert pub[Attribute.MODULUS_BITS] == 2048
    assert pub[Attribute.MODULUS] == priv[Attribute.MODULUS]
    assert pub[Attribute.PUBLIC_EXPONENT] == b"\x01\x00\x01"
    with pytest.raises(pkcs11.exceptions.AttributeSensitive):
        priv[Attribute.PRIVATE_EXPONENT]


@pytest.mark.parametrize("mech,hash_", [(Mechanism.SHA1_RSA_PKCS, hashes.SHA1()),
                                        (Mechanism.SHA224_RSA_PKCS, hashes.SHA224()),
                                        (Mechanism.SHA256_RSA_PKCS, hashes.SHA256()),
                                        (Mechanism.SHA384_RSA_PKCS, hashes.SHA384()),
                                        (Mechanism.SHA512_RSA_PKCS, hashes.SHA512())])
def test_hash_rsa_pkcs_signature_verifies_independently(keypair, mech, hash_) -> None:
    pub, priv = keypair
    sig = priv.sign(b"message", mechanism=mech)
    _public(pub).verify(sig, b"message", padding.PKCS1v15(), hash_)
    assert pub.verify(b"message", sig, mechanism=mech)
    assert not pub.verify(b"other message", sig, mechanism=mech)


def test_multi_part_sign_equals_single_part(keypair) -> None:
    pub, priv = keypair
    single = priv.sign(b"abcdef", mechanism=Mechanism.SHA256_RSA_PKCS)
    multi = priv.sign((b"ab", b"cd", b"ef"), mechanism=Mechanism.SHA256_RSA_PKCS)
    assert single == multi  # PKCS#1 v1.5 is deterministic


def test_rsa_pkcs_signs_a_digest_info(keypair) -> None:
    pub, priv = keypair
    digest_info = bytes.fromhex("3031300d060960864801650304020105000420") + hashlib.sha256(b"m").digest()
    sig = priv.sign(digest_info, mechanism=Mechanism.RSA_PKCS)
    _public(pub).verify(sig, b"m", padding.PKCS1v15(), hashes.SHA256())


def test_pss_signature_verifies_independently(keypair) -> None:
    pub, priv = keypair
    params = (Mechanism.SHA256, MGF.SHA256, 32)
    sig = priv.sign(b"pss message", mechanism=Mechanism.SHA256_RSA_PKCS_PSS, mechanism_param=params)
    _public(pub).verify(sig, b"pss message", padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    digest = hashlib.sha256(b"pss message").digest()
    sig2 = priv.sign(digest, mechanism=Mechanism.RSA_PKCS_PSS, mechanism_param=params)
    assert pub.verify(digest, sig2, mechanism=Mechanism.RSA_PKCS_PSS, mechanism_param=params)


def test_raw_rsa_x_509_round_trip(keypair) -> None:
    pub, priv = keypair
    message = b"\x00" * 200 + b"raw message"
    sig = priv.sign(message, mechanism=Mechanism.RSA_X_509)
    n = int.from_bytes(pub[Attribute.MODULUS], "big")
    assert pow(int.from_bytes(sig, "big"), 65537, n) == int.from_bytes(message, "big")


@pytest.mark.parametrize("hash_mech,mgf,hash_", [(Mechanism.SHA_1, MGF.SHA1, hashes.SHA1()),
                                                 (Mechanism.SHA256, MGF.SHA256, hashes.SHA256())])
def test_oaep_decrypts_what_cryptography_encrypts_with_a_label(keypair, hash_mech, mgf, hash_) -> None:
    pub, priv = keypair
    ct = _public(pub).encrypt(b"secret", padding.OAEP(padding.MGF1(hash_), hash_, b"ABC"))
    pt = priv.decrypt(ct, mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=(hash_mech, mgf, b"ABC"))
    assert pt == b"secret"


def test_pkcs1_v15_encrypt_decrypt_round_trip(keypair) -> None:
    pub, priv = keypair
    ct = pub.encrypt(b"hello", mechanism=Mechanism.RSA_PKCS)
    assert priv.decrypt(ct, mechanism=Mechanism.RSA_PKCS) == b"hello"


def test_short_signature_does_not_verify(keypair) -> None:
    pub, _ = keypair  # python-pkcs11 folds CKR_SIGNATURE_LEN_RANGE into False; the C host checks the exact code
    assert not pub.verify(b"m", b"\x00" * 10, mechanism=Mechanism.SHA256_RSA_PKCS)


def test_signing_with_an_aes_key_is_key_type_inconsistent(session) -> None:
    key = session.generate_key(KeyType.AES, 128)
    with pytest.raises(pkcs11.exceptions.KeyTypeInconsistent):
        key.sign(b"m", mechanism=Mechanism.SHA256_RSA_PKCS)


def test_key_without_sign_permission_is_key_function_not_permitted(session) -> None:
    _, priv = session.generate_keypair(KeyType.RSA, 2048)
    priv[Attribute.SIGN] = False  # after retrieval, so python-pkcs11 still offers .sign()
    with raises_rv(0x68):  # CKR_KEY_FUNCTION_NOT_PERMITTED
        priv.sign(b"m", mechanism=Mechanism.SHA256_RSA_PKCS)


def test_imported_private_key_signs_like_the_original(session) -> None:
    key = rsa.generate_private_key(65537, 2048)
    n = key.private_numbers()
    priv = session.create_object({
        Attribute.CLASS: pkcs11.ObjectClass.PRIVATE_KEY, Attribute.KEY_TYPE: KeyType.RSA,
        Attribute.MODULUS: n.public_numbers.n.to_bytes(256, "big"),
        Attribute.PUBLIC_EXPONENT: b"\x01\x00\x01",
        Attribute.PRIVATE_EXPONENT: n.d.to_bytes(256, "big"), Attribute.SIGN: True,
    })
    sig = priv.sign(b"imported", mechanism=Mechanism.SHA256_RSA_PKCS)
    key.public_key().verify(sig, b"imported", padding.PKCS1v15(), hashes.SHA256())


def test_oaep_wraps_an_aes_key_that_unwraps_to_the_same_value(session, keypair) -> None:
    pub, priv = keypair
    secret = bytes(range(32))
    aes = session.create_object({Attribute.CLASS: pkcs11.ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES,
                                 Attribute.VALUE: secret, Attribute.EXTRACTABLE: True})
    params = (Mechanism.SHA256, MGF.SHA256, None)
    wrapped = pub.wrap_key(aes, mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=params)
    assert len(wrapped) == 256
    plain = priv.decrypt(wrapped, mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=params)
    assert plain == secret
    unwrapped = priv.unwrap_key(pkcs11.ObjectClass.SECRET_KEY, KeyType.AES, wrapped,
                                mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=params,
                                template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True})
    assert unwrapped[Attribute.VALUE] == secret
    assert unwrapped[Attribute.LOCAL] is False and unwrapped[Attribute.ALWAYS_SENSITIVE] is False
