"""Triple-DES mechanisms (PKCS#11 v3.0 "Triple DES") through the module, checked against pyca/cryptography,
stock `openssl enc` and the SP 800-67 / SP 800-20 style known answers."""

from __future__ import annotations

import os
import subprocess

import pkcs11
import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from mech_params import shared_session  # noqa: F401  (one token per module)
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

KEY = bytes.fromhex("0123456789abcdef23456789abcdef01456789abcdef0123")  # SP 800-67 example key (K1, K2, K3)


@pytest.fixture
def key(session):  # type: ignore[no-untyped-def]
    return session.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.DES3,
                                   Attribute.VALUE: KEY, Attribute.ENCRYPT: True, Attribute.DECRYPT: True,
                                   Attribute.WRAP: True, Attribute.UNWRAP: True})


def _expected(mode: modes.Mode, data: bytes) -> bytes:
    enc = Cipher(TripleDES(KEY), mode).encryptor()
    return enc.update(data) + enc.finalize()


def test_generated_key_is_24_bytes_with_odd_parity(session) -> None:
    key = session.generate_key(KeyType.DES3, template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True})
    value = key[Attribute.VALUE]
    assert len(value) == 24 and key[Attribute.VALUE_LEN] == 24
    assert all(bin(b).count("1") % 2 == 1 for b in value)
    assert key[Attribute.KEY_GEN_MECHANISM] == Mechanism.DES3_KEY_GEN
    enc = Cipher(TripleDES(value), modes.ECB()).encryptor()
    assert key[Attribute.CHECK_VALUE] == (enc.update(bytes(8)) + enc.finalize())[:3]


def test_known_answer_ecb(key) -> None:
    # SP 800-67 Rev. 2 appendix B example: "The qufck brown fox jump" under the key above.
    plaintext = b"The qufck brown fox jump"
    expected = bytes.fromhex("a826fd8ce53b855fcce21c8112256fe668d5c05dd9b6b900")
    assert key.encrypt(plaintext, mechanism=Mechanism.DES3_ECB) == expected
    assert key.decrypt(expected, mechanism=Mechanism.DES3_ECB) == plaintext


def test_cbc_matches_cryptography_single_and_multi_part(key) -> None:
    iv, data = os.urandom(8), os.urandom(64)
    expected = _expected(modes.CBC(iv), data)
    assert key.encrypt(data, mechanism=Mechanism.DES3_CBC, mechanism_param=iv) == expected
    parts = [data[i:i + 5] for i in range(0, len(data), 5)]
    assert b"".join(key.encrypt(parts, mechanism=Mechanism.DES3_CBC, mechanism_param=iv)) == expected
    assert key.decrypt(expected, mechanism=Mechanism.DES3_CBC, mechanism_param=iv) == data


def test_cbc_pad_matches_cryptography_single_and_multi_part(key) -> None:
    iv, data = os.urandom(8), os.urandom(61)
    padder = padding.PKCS7(64).padder()
    expected = _expected(modes.CBC(iv), padder.update(data) + padder.finalize())
    assert key.encrypt(data, mechanism=Mechanism.DES3_CBC_PAD, mechanism_param=iv) == expected
    parts = [data[i:i + 7] for i in range(0, len(data), 7)]
    assert b"".join(key.encrypt(parts, mechanism=Mechanism.DES3_CBC_PAD, mechanism_param=iv)) == expected
    ct_parts = [expected[i:i + 3] for i in range(0, len(expected), 3)]
    assert b"".join(key.decrypt(ct_parts, mechanism=Mechanism.DES3_CBC_PAD, mechanism_param=iv)) == data


def test_cbc_pad_agrees_with_openssl_enc(key, tmp_path) -> None:
    iv, data = bytes(range(8)), b"des3 through stock openssl\n"
    ct = key.encrypt(data, mechanism=Mechanism.DES3_CBC_PAD, mechanism_param=iv)
    (tmp_path / "ct.bin").write_bytes(ct)
    result = subprocess.run(["openssl", "enc", "-d", "-des-ede3-cbc", "-K", KEY.hex(), "-iv", iv.hex(),
                             "-in", str(tmp_path / "ct.bin")], capture_output=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == data


def test_wrong_iv_length_is_mechanism_param_invalid(key) -> None:
    with pytest.raises(pkcs11.exceptions.MechanismParamInvalid):
        key.encrypt(bytes(8), mechanism=Mechanism.DES3_CBC, mechanism_param=bytes(16))


def test_partial_block_is_data_len_range(key) -> None:
    with pytest.raises(pkcs11.exceptions.DataLenRange):
        key.encrypt(bytes(12), mechanism=Mechanism.DES3_ECB)
    with pytest.raises(pkcs11.exceptions.EncryptedDataLenRange):
        key.decrypt(bytes(12), mechanism=Mechanism.DES3_CBC_PAD, mechanism_param=bytes(8))


def test_bad_padding_is_encrypted_data_invalid(key) -> None:
    ct = _expected(modes.CBC(bytes(8)), bytes(8) + bytes([0] * 7 + [9]))
    with pytest.raises(pkcs11.exceptions.EncryptedDataInvalid):
        key.decrypt(ct, mechanism=Mechanism.DES3_CBC_PAD, mechanism_param=bytes(8))


def test_key_of_the_wrong_length_is_refused_at_creation(session) -> None:
    with pytest.raises(pkcs11.exceptions.AttributeValueInvalid):
        session.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.DES3,
                               Attribute.VALUE: bytes(16)})


def test_aes_key_wrapped_with_des3_cbc_pad_round_trips(session, key) -> None:
    target = session.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES,
                                    Attribute.VALUE: bytes(range(16)), Attribute.EXTRACTABLE: True})
    iv = bytes(8)
    wrapped = key.wrap_key(target, mechanism=Mechanism.DES3_CBC_PAD, mechanism_param=iv)
    padder = padding.PKCS7(64).padder()
    assert wrapped == _expected(modes.CBC(iv), padder.update(bytes(range(16))) + padder.finalize())
    unwrapped = key.unwrap_key(ObjectClass.SECRET_KEY, KeyType.AES, wrapped, mechanism=Mechanism.DES3_CBC_PAD,
                               mechanism_param=iv, template={Attribute.SENSITIVE: False,
                                                             Attribute.EXTRACTABLE: True})
    assert unwrapped[Attribute.VALUE] == bytes(range(16))
