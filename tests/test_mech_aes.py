"""AES mechanisms (PKCS#11 v3.0 section 2.10) through the module, checked against pyca/cryptography."""

from __future__ import annotations

import os

import pkcs11
import pytest
from cryptography.hazmat.primitives import cmac, keywrap, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

KEY = bytes(range(32))


@pytest.fixture
def key(session):  # type: ignore[no-untyped-def]
    return session.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES,
                                   Attribute.VALUE: KEY, Attribute.ENCRYPT: True, Attribute.DECRYPT: True,
                                   Attribute.SIGN: True, Attribute.VERIFY: True, Attribute.WRAP: True,
                                   Attribute.UNWRAP: True})


def test_generated_key_has_requested_length(session) -> None:
    for bits in (128, 192, 256):
        assert session.generate_key(KeyType.AES, bits)[Attribute.VALUE_LEN] == bits // 8


def test_cbc_pad_matches_cryptography_and_round_trips(key) -> None:
    iv = os.urandom(16)
    data = b"x" * 37
    ct = key.encrypt(data, mechanism=Mechanism.AES_CBC_PAD, mechanism_param=iv)
    padder = padding.PKCS7(128).padder()
    enc = Cipher(algorithms.AES(KEY), modes.CBC(iv)).encryptor()
    assert ct == enc.update(padder.update(data) + padder.finalize()) + enc.finalize()
    assert key.decrypt(ct, mechanism=Mechanism.AES_CBC_PAD, mechanism_param=iv) == data


def test_multi_part_cbc_pad_equals_single_part(key) -> None:
    iv = bytes(16)
    data = os.urandom(100)
    single = key.encrypt(data, mechanism=Mechanism.AES_CBC_PAD, mechanism_param=iv)
    parts = [data[i:i + 7] for i in range(0, len(data), 7)]
    multi = b"".join(key.encrypt(parts, mechanism=Mechanism.AES_CBC_PAD, mechanism_param=iv))
    assert single == multi


def test_cbc_without_padding_refuses_partial_blocks(key) -> None:
    with pytest.raises(pkcs11.exceptions.DataLenRange):
        key.encrypt(b"x" * 15, mechanism=Mechanism.AES_CBC, mechanism_param=bytes(16))


def test_ecb_matches_cryptography(key) -> None:
    enc = Cipher(algorithms.AES(KEY), modes.ECB()).encryptor()
    assert key.encrypt(bytes(32), mechanism=Mechanism.AES_ECB) == enc.update(bytes(32)) + enc.finalize()


def test_gcm_output_is_ciphertext_and_tag(key) -> None:
    iv = os.urandom(12)
    params = pkcs11.GCMParams(iv, b"aad", 128)
    ct = key.encrypt(b"gcm data", mechanism=Mechanism.AES_GCM, mechanism_param=params)
    assert ct == AESGCM(KEY).encrypt(iv, b"gcm data", b"aad")
    assert key.decrypt(ct, mechanism=Mechanism.AES_GCM, mechanism_param=params) == b"gcm data"


def test_gcm_with_a_bad_tag_fails(key) -> None:
    params = pkcs11.GCMParams(os.urandom(12), b"", 128)
    ct = bytearray(key.encrypt(b"gcm data", mechanism=Mechanism.AES_GCM, mechanism_param=params))
    ct[-1] ^= 1
    with pytest.raises(pkcs11.exceptions.EncryptedDataInvalid):
        key.decrypt(bytes(ct), mechanism=Mechanism.AES_GCM, mechanism_param=params)


def test_cmac_matches_cryptography(key) -> None:
    mac = cmac.CMAC(algorithms.AES(KEY))
    mac.update(b"cmac me")
    assert key.sign(b"cmac me", mechanism=Mechanism.AES_CMAC) == mac.finalize()


def test_key_wrap_matches_rfc3394(session, key) -> None:
    target = session.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES,
                                    Attribute.VALUE: bytes(16), Attribute.EXTRACTABLE: True,
                                    Attribute.SENSITIVE: True})
    wrapped = key.wrap_key(target, mechanism=Mechanism.AES_KEY_WRAP)
    assert wrapped == keywrap.aes_key_wrap(KEY, bytes(16))
    unwrapped = key.unwrap_key(ObjectClass.SECRET_KEY, KeyType.AES, wrapped, mechanism=Mechanism.AES_KEY_WRAP,
                               template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True})
    assert unwrapped[Attribute.VALUE] == bytes(16)
    assert unwrapped[Attribute.LOCAL] is False


def test_unextractable_key_cannot_be_wrapped(session, key) -> None:
    target = session.generate_key(KeyType.AES, 128)
    with pytest.raises(pkcs11.exceptions.KeyUnextractable):
        key.wrap_key(target, mechanism=Mechanism.AES_KEY_WRAP)


def test_kwp_wrap_of_an_rsa_private_key_is_rfc5649_over_pkcs8(session, key) -> None:
    _, priv = session.generate_keypair(KeyType.RSA, 2048, private_template={Attribute.EXTRACTABLE: True})
    wrapped = key.wrap_key(priv, mechanism=Mechanism.AES_KEY_WRAP_KWP)
    der = keywrap.aes_key_unwrap_with_padding(KEY, wrapped)
    from cryptography.hazmat.primitives.serialization import load_der_private_key

    assert load_der_private_key(der, None).private_numbers().public_numbers.n == int.from_bytes(
        priv[Attribute.MODULUS], "big")


def test_gcm_wraps_and_unwraps_a_key(session, key) -> None:
    target = session.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES,
                                    Attribute.VALUE: bytes(range(24)), Attribute.EXTRACTABLE: True})
    iv = os.urandom(12)
    params = pkcs11.GCMParams(iv, b"wrap aad", 128)
    wrapped = key.wrap_key(target, mechanism=Mechanism.AES_GCM, mechanism_param=params)
    assert wrapped == AESGCM(KEY).encrypt(iv, bytes(range(24)), b"wrap aad")
    unwrapped = key.unwrap_key(ObjectClass.SECRET_KEY, KeyType.AES, wrapped, mechanism=Mechanism.AES_GCM,
                               mechanism_param=params, template={Attribute.SENSITIVE: False,
                                                                 Attribute.EXTRACTABLE: True})
    assert unwrapped[Attribute.VALUE] == bytes(range(24))
    with pytest.raises(pkcs11.exceptions.WrappedKeyInvalid):
        key.unwrap_key(ObjectClass.SECRET_KEY, KeyType.AES, wrapped[:-1] + bytes([wrapped[-1] ^ 1]),
                       mechanism=Mechanism.AES_GCM, mechanism_param=params)
