"""AWS CloudHSM vendor mechanisms through the module, checked against pyca/cryptography (RFC 3394 / RFC 5649 /
AES-GCM computed independently from the same key)."""

from __future__ import annotations

import os

import pkcs11
import pytest
from cryptography.hazmat.primitives import keywrap, padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from mech_params import (
    Packed,
    gcm,
    mechanism,
    shared_session,  # noqa: F401  (one token per module)
)
from pkcs11 import Attribute, KeyType, MechanismFlag, ObjectClass

from pyhsm import constants as ck

KEK = bytes(range(32))
CLOUDHSM_AES_GCM = mechanism(ck.CKM_CLOUDHSM_AES_GCM, "CLOUDHSM_AES_GCM")
NO_PAD = mechanism(ck.CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD, "CLOUDHSM_AES_KEY_WRAP_NO_PAD")
PKCS5_PAD = mechanism(ck.CKM_CLOUDHSM_AES_KEY_WRAP_PKCS5_PAD, "CLOUDHSM_AES_KEY_WRAP_PKCS5_PAD")
ZERO_PAD = mechanism(ck.CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD, "CLOUDHSM_AES_KEY_WRAP_ZERO_PAD")
CLEAR = {Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True}


@pytest.fixture
def kek(session):  # type: ignore[no-untyped-def]
    return session.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES,
                                  Attribute.VALUE: KEK, Attribute.ENCRYPT: True, Attribute.DECRYPT: True,
                                  Attribute.WRAP: True, Attribute.UNWRAP: True})


def _secret(session, value: bytes, key_type: KeyType = KeyType.GENERIC_SECRET):  # type: ignore[no-untyped-def]
    return session.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: key_type,
                                  Attribute.VALUE: value, Attribute.EXTRACTABLE: True})


# ---- CKM_CLOUDHSM_AES_GCM --------------------------------------------------------------------------------------
def test_cloudhsm_gcm_prepends_a_fresh_12_byte_iv(kek) -> None:
    packed = Packed()
    param = gcm(packed, None, aad=b"header", iv_len=12)
    first = kek.encrypt(b"secret data", mechanism=CLOUDHSM_AES_GCM, mechanism_param=param)
    second = kek.encrypt(b"secret data", mechanism=CLOUDHSM_AES_GCM, mechanism_param=param)
    assert len(first) == 12 + 11 + 16 and first[:12] != second[:12]
    assert AESGCM(KEK).decrypt(first[:12], first[12:], b"header") == b"secret data"
    assert kek.decrypt(first, mechanism=CLOUDHSM_AES_GCM, mechanism_param=param) == b"secret data"


def test_cloudhsm_gcm_decrypts_iv_ciphertext_tag_made_elsewhere(kek) -> None:
    iv = os.urandom(12)
    blob = iv + AESGCM(KEK).encrypt(iv, b"from outside", None)
    packed = Packed()
    assert kek.decrypt(blob, mechanism=CLOUDHSM_AES_GCM, mechanism_param=gcm(packed, None)) == b"from outside"


def test_cloudhsm_gcm_with_a_caller_iv_is_mechanism_param_invalid(kek) -> None:
    packed = Packed()
    with pytest.raises(pkcs11.exceptions.MechanismParamInvalid):
        kek.encrypt(b"x", mechanism=CLOUDHSM_AES_GCM, mechanism_param=gcm(packed, bytes(12)))


def test_cloudhsm_gcm_tampered_tag_is_encrypted_data_invalid(kek) -> None:
    packed = Packed()
    param = gcm(packed, None)
    blob = bytearray(kek.encrypt(b"data", mechanism=CLOUDHSM_AES_GCM, mechanism_param=param))
    blob[-1] ^= 0x80
    with pytest.raises(pkcs11.exceptions.EncryptedDataInvalid):
        kek.decrypt(bytes(blob), mechanism=CLOUDHSM_AES_GCM, mechanism_param=param)


def test_cloudhsm_gcm_shorter_than_iv_and_tag_is_encrypted_data_len_range(kek) -> None:
    packed = Packed()
    with pytest.raises(pkcs11.exceptions.EncryptedDataLenRange):
        kek.decrypt(bytes(20), mechanism=CLOUDHSM_AES_GCM, mechanism_param=gcm(packed, None))


def test_cloudhsm_gcm_wraps_and_unwraps_a_key(session, kek) -> None:
    target = _secret(session, bytes(range(16)), KeyType.AES)
    packed = Packed()
    param = gcm(packed, None, aad=b"wrap")
    wrapped = kek.wrap_key(target, mechanism=CLOUDHSM_AES_GCM, mechanism_param=param)
    assert AESGCM(KEK).decrypt(wrapped[:12], wrapped[12:], b"wrap") == bytes(range(16))
    key = kek.unwrap_key(ObjectClass.SECRET_KEY, KeyType.AES, wrapped, mechanism=CLOUDHSM_AES_GCM,
                         mechanism_param=param, template=CLEAR)
    assert key[Attribute.VALUE] == bytes(range(16))


# ---- the AES key wraps -----------------------------------------------------------------------------------------
def test_no_pad_is_rfc3394(session, kek) -> None:
    wrapped = kek.wrap_key(_secret(session, bytes(24)), mechanism=NO_PAD)
    assert wrapped == keywrap.aes_key_wrap(KEK, bytes(24))
    key = kek.unwrap_key(ObjectClass.SECRET_KEY, KeyType.GENERIC_SECRET, wrapped, mechanism=NO_PAD, template=CLEAR)
    assert key[Attribute.VALUE] == bytes(24)


def test_no_pad_refuses_a_key_that_is_not_block_aligned(session, kek) -> None:
    with pytest.raises(pkcs11.exceptions.KeySizeRange):
        kek.wrap_key(_secret(session, bytes(20)), mechanism=NO_PAD)


def test_pkcs5_pad_is_pkcs5_then_rfc3394(session, kek) -> None:
    value = os.urandom(20)
    padder = padding.PKCS7(64).padder()
    expected = keywrap.aes_key_wrap(KEK, padder.update(value) + padder.finalize())
    assert kek.wrap_key(_secret(session, value), mechanism=PKCS5_PAD) == expected
    key = kek.unwrap_key(ObjectClass.SECRET_KEY, KeyType.GENERIC_SECRET, expected, mechanism=PKCS5_PAD,
                         template=CLEAR)
    assert key[Attribute.VALUE] == value


def test_zero_pad_is_rfc5649_and_recovers_the_length(session, kek) -> None:
    value = os.urandom(20)
    expected = keywrap.aes_key_wrap_with_padding(KEK, value)
    assert kek.wrap_key(_secret(session, value), mechanism=ZERO_PAD) == expected
    key = kek.unwrap_key(ObjectClass.SECRET_KEY, KeyType.GENERIC_SECRET, expected, mechanism=ZERO_PAD,
                         template=CLEAR)
    assert key[Attribute.VALUE] == value


def test_explicit_default_iv_is_accepted_and_any_other_is_mechanism_param_invalid(session, kek) -> None:
    target = _secret(session, bytes(16))
    wrapped = kek.wrap_key(target, mechanism=NO_PAD, mechanism_param=bytes.fromhex("A6A6A6A6A6A6A6A6"))
    assert wrapped == keywrap.aes_key_wrap(KEK, bytes(16))
    with pytest.raises(pkcs11.exceptions.MechanismParamInvalid):
        kek.wrap_key(target, mechanism=NO_PAD, mechanism_param=bytes(8))
    with pytest.raises(pkcs11.exceptions.MechanismParamInvalid):
        kek.wrap_key(target, mechanism=ZERO_PAD, mechanism_param=bytes(4))


def test_tampered_wrapped_key_is_wrapped_key_invalid(session, kek) -> None:
    wrapped = bytearray(keywrap.aes_key_wrap_with_padding(KEK, bytes(20)))
    wrapped[0] ^= 1
    with pytest.raises(pkcs11.exceptions.WrappedKeyInvalid):
        kek.unwrap_key(ObjectClass.SECRET_KEY, KeyType.GENERIC_SECRET, bytes(wrapped), mechanism=ZERO_PAD)


def test_key_wraps_are_advertised_and_usable_for_wrapping_only(token, kek) -> None:
    for mech in (NO_PAD, PKCS5_PAD, ZERO_PAD):
        info = token.slot.get_mechanism_info(mech)
        assert info.flags == MechanismFlag.WRAP | MechanismFlag.UNWRAP
        assert (info.min_key_length, info.max_key_length) == (16, 32)
        with pytest.raises(pkcs11.exceptions.MechanismInvalid):
            kek.encrypt(bytes(16), mechanism=mech)
    info = token.slot.get_mechanism_info(CLOUDHSM_AES_GCM)
    assert info.flags == (MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT | MechanismFlag.WRAP
                          | MechanismFlag.UNWRAP)
    assert {ck.CKM_CLOUDHSM_AES_GCM, ck.CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD, ck.CKM_CLOUDHSM_AES_KEY_WRAP_PKCS5_PAD,
            ck.CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD} <= {int(m) for m in token.slot.get_mechanisms()}
