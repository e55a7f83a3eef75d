"""AES-CCM and AES-CTS (PKCS#11 v3.0 section 2.10) through the module: CCM checked against pyca/cryptography's
AESCCM and the SP 800-38C example, CTS against the RFC 3962 vectors (CBC-CS3, zero IV)."""

from __future__ import annotations

import os

import pkcs11
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from mech_params import (
    CCM,
    Packed,
    shared_session,  # noqa: F401  (one token per module)
)
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

KEY = bytes(range(0x40, 0x50))  # SP 800-38C appendix C.1 key
CTS_KEY = b"chicken teriyaki"  # RFC 3962 appendix B
RFC3962 = [
    (b"I would like the ", "c6353568f2bf8cb4d8a580362da7ff7f97"),
    (b"I would like the General Gau's ", "fc00783e0efdb2c1d445d4c8eff7ed2297687268d6ecccc0c07b25e25ecfe5"),
    (b"I would like the General Gau's C", "39312523a78662d5be7fcbcc98ebf5a897687268d6ecccc0c07b25e25ecfe584"),
]


def _aes(session, value: bytes):  # type: ignore[no-untyped-def]
    return session.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES,
                                  Attribute.VALUE: value, Attribute.ENCRYPT: True, Attribute.DECRYPT: True})


def ccm(packed: Packed, data_len: int, nonce: bytes, aad: bytes = b"", mac_len: int = 16) -> bytes:
    return packed.struct(CCM(data_len, packed.buf(nonce), len(nonce), packed.buf(aad) if aad else None, len(aad),
                             mac_len))


def test_ccm_sp800_38c_example_1(session) -> None:
    # SP 800-38C C.1: 7-byte nonce, 8-byte AAD, 4-byte payload, 4-byte MAC.
    key, packed = _aes(session, KEY), Packed()
    param = ccm(packed, 4, bytes(range(0x10, 0x17)), bytes(range(8)), 4)
    ct = key.encrypt(bytes(range(0x20, 0x24)), mechanism=Mechanism.AES_CCM, mechanism_param=param)
    assert ct == bytes.fromhex("7162015b4dac255d")
    assert key.decrypt(ct, mechanism=Mechanism.AES_CCM, mechanism_param=param) == bytes(range(0x20, 0x24))


@pytest.mark.parametrize("nonce_len,mac_len", [(7, 4), (12, 16), (13, 10)])
def test_ccm_matches_cryptography_single_and_multi_part(session, nonce_len, mac_len) -> None:
    key, packed = _aes(session, KEY), Packed()
    nonce, data = os.urandom(nonce_len), os.urandom(50)
    param = ccm(packed, len(data), nonce, b"header", mac_len)
    expected = AESCCM(KEY, tag_length=mac_len).encrypt(nonce, data, b"header")
    assert key.encrypt(data, mechanism=Mechanism.AES_CCM, mechanism_param=param) == expected
    parts = [data[:20], data[20:]]
    assert b"".join(key.encrypt(parts, mechanism=Mechanism.AES_CCM, mechanism_param=param)) == expected
    assert key.decrypt(expected, mechanism=Mechanism.AES_CCM, mechanism_param=param) == data


def test_ccm_input_other_than_ul_data_len_is_a_length_error(session) -> None:
    key, packed = _aes(session, KEY), Packed()
    param = ccm(packed, 10, bytes(12))
    with pytest.raises(pkcs11.exceptions.DataLenRange):
        key.encrypt(bytes(11), mechanism=Mechanism.AES_CCM, mechanism_param=param)
    with pytest.raises(pkcs11.exceptions.EncryptedDataLenRange):
        key.decrypt(bytes(10), mechanism=Mechanism.AES_CCM, mechanism_param=param)


def test_ccm_tampered_mac_is_encrypted_data_invalid(session) -> None:
    key, packed = _aes(session, KEY), Packed()
    param = ccm(packed, 5, bytes(12))
    ct = bytearray(key.encrypt(b"hello", mechanism=Mechanism.AES_CCM, mechanism_param=param))
    ct[-1] ^= 1
    with pytest.raises(pkcs11.exceptions.EncryptedDataInvalid):
        key.decrypt(bytes(ct), mechanism=Mechanism.AES_CCM, mechanism_param=param)


@pytest.mark.parametrize("nonce_len,mac_len", [(6, 16), (14, 16), (12, 5), (12, 18)])
def test_ccm_bad_nonce_or_mac_length_is_mechanism_param_invalid(session, nonce_len, mac_len) -> None:
    key, packed = _aes(session, KEY), Packed()
    with pytest.raises(pkcs11.exceptions.MechanismParamInvalid):
        key.encrypt(b"x", mechanism=Mechanism.AES_CCM, mechanism_param=ccm(packed, 1, bytes(nonce_len), b"", mac_len))


@pytest.mark.parametrize("plaintext,expected", RFC3962)
def test_cts_rfc3962_vectors(session, plaintext, expected) -> None:
    key = _aes(session, CTS_KEY)
    ct = key.encrypt(plaintext, mechanism=Mechanism.AES_CTS, mechanism_param=bytes(16))
    assert ct.hex() == expected
    assert key.decrypt(ct, mechanism=Mechanism.AES_CTS, mechanism_param=bytes(16)) == plaintext


def test_cts_multi_part_and_every_length_round_trips(session) -> None:
    key, iv = _aes(session, KEY), os.urandom(16)
    data = os.urandom(70)
    single = key.encrypt(data, mechanism=Mechanism.AES_CTS, mechanism_param=iv)
    assert len(single) == 70
    assert b"".join(key.encrypt([data[:33], data[33:]], mechanism=Mechanism.AES_CTS, mechanism_param=iv)) == single
    for n in (16, 17, 31, 32, 33, 48):
        assert key.decrypt(key.encrypt(data[:n], mechanism=Mechanism.AES_CTS, mechanism_param=iv),
                           mechanism=Mechanism.AES_CTS, mechanism_param=iv) == data[:n]


def test_cts_shorter_than_a_block_is_a_length_error(session) -> None:
    key = _aes(session, KEY)
    with pytest.raises(pkcs11.exceptions.DataLenRange):
        key.encrypt(bytes(15), mechanism=Mechanism.AES_CTS, mechanism_param=bytes(16))
    with pytest.raises(pkcs11.exceptions.EncryptedDataLenRange):
        key.decrypt(bytes(15), mechanism=Mechanism.AES_CTS, mechanism_param=bytes(16))
    with pytest.raises(pkcs11.exceptions.MechanismParamInvalid):
        key.encrypt(bytes(32), mechanism=Mechanism.AES_CTS, mechanism_param=bytes(8))
