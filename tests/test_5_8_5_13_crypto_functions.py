"""PKCS#11 v3.0 sections 5.8-5.13 (encryption, digest, signing): the precise codes, through python-pkcs11.

The same rules, with the operation lifecycle around them, are checked from C in tests/c_host/conformance.c, which
also covers CKA_ALLOWED_MECHANISMS: python-pkcs11 0.10 cannot encode that attribute (and crashes freeing its
half-built template when asked to).
"""

from __future__ import annotations

import pkcs11
import pytest
from p11_helpers import raises_rv
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

IV = b"\x00" * 16


def _aes(session, extra: dict | None = None):  # type: ignore[no-untyped-def]
    template = {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES,
                Attribute.VALUE: b"k" * 16, **(extra or {})}
    return session.create_object(template)


def test_key_lacking_the_usage_attribute_is_key_function_not_permitted(session) -> None:
    key = _aes(session)
    key[Attribute.ENCRYPT] = False  # python-pkcs11 decides which methods a key has from its attributes at creation
    with raises_rv(0x68):  # CKR_KEY_FUNCTION_NOT_PERMITTED: python-pkcs11 has no exception class for it
        key.encrypt(b"x" * 16, mechanism=Mechanism.AES_CBC, mechanism_param=IV)


def test_key_of_the_wrong_type_is_key_type_inconsistent(session) -> None:
    key = _aes(session)
    with pytest.raises(pkcs11.exceptions.KeyTypeInconsistent):
        key.sign(b"data", mechanism=Mechanism.SHA256_RSA_PKCS)


def test_bad_iv_is_mechanism_param_invalid(session) -> None:
    key = _aes(session)
    with pytest.raises(pkcs11.exceptions.MechanismParamInvalid):
        key.encrypt(b"x" * 16, mechanism=Mechanism.AES_CBC, mechanism_param=b"short")


def test_partial_block_without_padding_is_data_len_range(session) -> None:
    key = _aes(session)
    with pytest.raises(pkcs11.exceptions.DataLenRange):
        key.encrypt(b"x" * 17, mechanism=Mechanism.AES_CBC, mechanism_param=IV)


def test_partial_ciphertext_block_is_encrypted_data_len_range(session) -> None:
    key = _aes(session)
    with pytest.raises(pkcs11.exceptions.EncryptedDataLenRange):
        key.decrypt(b"x" * 17, mechanism=Mechanism.AES_CBC_PAD, mechanism_param=IV)


def test_a_failed_operation_leaves_the_session_ready_for_the_next(session) -> None:
    key = _aes(session)
    with pytest.raises(pkcs11.exceptions.DataLenRange):
        key.encrypt(b"x" * 17, mechanism=Mechanism.AES_CBC, mechanism_param=IV)
    assert len(key.encrypt(b"x" * 16, mechanism=Mechanism.AES_CBC, mechanism_param=IV)) == 16
