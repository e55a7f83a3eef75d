"""PKCS#11 v3.0 section 5.7 and chapter 4: object management and attribute rules, through python-pkcs11."""

from __future__ import annotations

import pkcs11
import pytest
from pkcs11 import Attribute, KeyType, ObjectClass


def _aes(session, **template):  # type: ignore[no-untyped-def]
    return session.generate_key(KeyType.AES, 256, store=True, label="k", template=template or None)


def test_data_object_round_trips_its_attributes(session) -> None:
    obj = session.create_object({Attribute.CLASS: ObjectClass.DATA, Attribute.LABEL: "d",
                                 Attribute.APPLICATION: "app", Attribute.VALUE: b"\x00\x01data"})
    assert obj[Attribute.VALUE] == b"\x00\x01data"
    assert obj[Attribute.APPLICATION] == "app"
    assert obj[Attribute.TOKEN] is False
    assert obj[Attribute.PRIVATE] is False


def test_missing_class_is_template_incomplete(session) -> None:
    with pytest.raises(pkcs11.exceptions.TemplateIncomplete):
        session.create_object({Attribute.LABEL: "no class"})


def test_secret_key_without_value_is_template_incomplete(session) -> None:
    with pytest.raises(pkcs11.exceptions.TemplateIncomplete):
        session.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES})


def test_attribute_foreign_to_the_class_is_attribute_type_invalid(session) -> None:
    with pytest.raises(pkcs11.exceptions.AttributeTypeInvalid):
        session.create_object({Attribute.CLASS: ObjectClass.DATA, Attribute.MODULUS: b"\x01"})


def test_token_supplied_attribute_in_create_is_attribute_read_only(session) -> None:
    with pytest.raises(pkcs11.exceptions.AttributeReadOnly):
        session.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES,
                               Attribute.VALUE: bytes(16), Attribute.LOCAL: True})


def test_sensitive_value_is_attribute_sensitive(session) -> None:
    key = _aes(session)
    with pytest.raises(pkcs11.exceptions.AttributeSensitive):
        key[Attribute.VALUE]


def test_default_secret_key_is_sensitive_private_and_unextractable(session) -> None:
    key = _aes(session)
    assert key[Attribute.SENSITIVE] is True
    assert key[Attribute.EXTRACTABLE] is False
    assert key[Attribute.PRIVATE] is True
    assert key[Attribute.ALWAYS_SENSITIVE] is True
    assert key[Attribute.NEVER_EXTRACTABLE] is True
    assert key[Attribute.LOCAL] is True
    assert key[Attribute.KEY_GEN_MECHANISM] == pkcs11.Mechanism.AES_KEY_GEN
    assert key[Attribute.VALUE_LEN] == 32


def test_imported_key_is_not_local_nor_always_sensitive(session) -> None:
    key = session.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES,
                                 Attribute.VALUE: bytes(range(16)), Attribute.SENSITIVE: False,
                                 Attribute.EXTRACTABLE: True})
    assert key[Attribute.LOCAL] is False
    assert key[Attribute.ALWAYS_SENSITIVE] is False
    assert key[Attribute.NEVER_EXTRACTABLE] is False
    assert key[Attribute.VALUE] == bytes(range(16))
    # CKA_CHECK_VALUE of an AES key: the first 3 bytes of AES-ECB(key, zero block)
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    enc = Cipher(algorithms.AES(bytes(range(16))), modes.ECB()).encryptor()
    assert key[Attribute.CHECK_VALUE] == (enc.update(bytes(16)) + enc.finalize())[:3]


def test_sensitive_can_only_become_true(session) -> None:
    key = session.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES,
                                 Attribute.VALUE: bytes(16), Attribute.SENSITIVE: False})
    key[Attribute.SENSITIVE] = True
    with pytest.raises(pkcs11.exceptions.AttributeReadOnly):
        key[Attribute.SENSITIVE] = False


def test_extractable_can_only_become_false(session) -> None:
    key = _aes(session, **{})
    with pytest.raises(pkcs11.exceptions.AttributeReadOnly):
        key[Attribute.EXTRACTABLE] = True


def test_label_is_modifiable_and_persists(session) -> None:
    key = _aes(session)
    key[Attribute.LABEL] = "renamed"
    assert key[Attribute.LABEL] == "renamed"


def test_unmodifiable_object_refuses_changes(session) -> None:
    obj = session.create_object({Attribute.CLASS: ObjectClass.DATA, Attribute.MODIFIABLE: False,
                                 Attribute.LABEL: "fixed"})
    with pytest.raises(pkcs11.exceptions.PKCS11Error):
        obj[Attribute.LABEL] = "changed"
    assert obj[Attribute.LABEL] == "fixed"


def test_copy_object_can_make_a_session_key_a_token_key(session) -> None:
    key = session.generate_key(KeyType.AES, 128, store=False, label="session-key")
    copy = key.copy({Attribute.TOKEN: True, Attribute.ID: b"\x42"})
    assert copy[Attribute.TOKEN] is True
    assert copy[Attribute.ID] == b"\x42"
    assert copy[Attribute.LABEL] == "session-key"


def test_destroyed_object_handle_is_object_handle_invalid(session) -> None:
    obj = session.create_object({Attribute.CLASS: ObjectClass.DATA, Attribute.LABEL: "tmp"})
    obj.destroy()
    with pytest.raises(pkcs11.exceptions.ObjectHandleInvalid):
        obj[Attribute.LABEL]


def test_find_by_label_and_class(session) -> None:
    for i in range(5):
        session.create_object({Attribute.CLASS: ObjectClass.DATA, Attribute.TOKEN: True,
                               Attribute.LABEL: f"find-{i % 2}"})
    found = list(session.get_objects({Attribute.CLASS: ObjectClass.DATA, Attribute.LABEL: "find-0"}))
    assert len(found) == 3


def test_token_objects_persist_across_sessions(token) -> None:
    from p11_helpers import USER_PIN

    with token.open(rw=True, user_pin=USER_PIN) as s:
        s.generate_key(KeyType.AES, 256, store=True, label="persisted")
    with token.open(user_pin=USER_PIN) as s:
        key = s.get_key(label="persisted")
        assert key[Attribute.VALUE_LEN] == 32


def test_session_objects_vanish_with_their_session(token) -> None:
    from p11_helpers import USER_PIN

    with token.open(rw=True, user_pin=USER_PIN) as s:
        s.create_object({Attribute.CLASS: ObjectClass.DATA, Attribute.LABEL: "ephemeral"})
    with token.open(user_pin=USER_PIN) as s:
        assert list(s.get_objects({Attribute.LABEL: "ephemeral"})) == []
