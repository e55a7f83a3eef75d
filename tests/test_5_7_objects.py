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


USAGE = (Attribute.ENCRYPT, Attribute.DECRYPT, Attribute.SIGN, Attribute.VERIFY, Attribute.WRAP, Attribute.UNWRAP,
         Attribute.DERIVE)


def _usage(obj) -> set[Attribute]:  # type: ignore[no-untyped-def]
    flags = set()
    for attr in USAGE:
        try:
            if obj[attr]:
                flags.add(attr)
        except pkcs11.exceptions.AttributeTypeInvalid:  # the class has no such flag (a private key cannot encrypt)
            pass
    return flags


# python-pkcs11's generate_key/generate_keypair always send every usage flag, so the defaults are checked on
# imported keys whose templates name none.
@pytest.mark.parametrize(("key_type", "expected"), [
    (KeyType.AES, {Attribute.ENCRYPT, Attribute.DECRYPT, Attribute.SIGN, Attribute.VERIFY, Attribute.WRAP,
                   Attribute.UNWRAP}),
    (KeyType.DES3, {Attribute.ENCRYPT, Attribute.DECRYPT, Attribute.WRAP, Attribute.UNWRAP}),
    (KeyType.GENERIC_SECRET, {Attribute.SIGN, Attribute.VERIFY, Attribute.DERIVE}),
    (KeyType.SHA256_HMAC, {Attribute.SIGN, Attribute.VERIFY}),
])
def test_secret_key_usage_flags_default_to_what_its_type_can_do(session, key_type, expected) -> None:
    key = session.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: key_type,
                                 Attribute.VALUE: bytes(range(24))})
    assert _usage(key) == expected


def test_ec_keys_sign_and_derive_but_never_encrypt_or_wrap_by_default(session) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from pkcs11.util.ec import encode_named_curve_parameters

    soft = ec.generate_private_key(ec.SECP256R1())
    params = encode_named_curve_parameters("secp256r1")
    private = session.create_object({
        Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.KEY_TYPE: KeyType.EC, Attribute.EC_PARAMS: params,
        Attribute.VALUE: soft.private_numbers().private_value.to_bytes(32, "big")})
    public = session.create_object({
        Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.KEY_TYPE: KeyType.EC, Attribute.EC_PARAMS: params,
        Attribute.EC_POINT: b"\x04\x41" + soft.public_key().public_bytes(serialization.Encoding.X962,
                                                     serialization.PublicFormat.UncompressedPoint)})
    assert _usage(public) == {Attribute.VERIFY}
    assert _usage(private) == {Attribute.SIGN, Attribute.DERIVE}


def test_rsa_keys_default_to_every_rsa_operation(session) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    numbers = rsa.generate_private_key(65537, 2048).private_numbers()

    def b(n: int) -> bytes:
        return n.to_bytes((n.bit_length() + 7) // 8, "big")

    pub = numbers.public_numbers
    public = session.create_object({Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.KEY_TYPE: KeyType.RSA,
                                    Attribute.MODULUS: b(pub.n), Attribute.PUBLIC_EXPONENT: b(pub.e)})
    private = session.create_object({
        Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.KEY_TYPE: KeyType.RSA, Attribute.MODULUS: b(pub.n),
        Attribute.PUBLIC_EXPONENT: b(pub.e), Attribute.PRIVATE_EXPONENT: b(numbers.d), Attribute.PRIME_1: b(numbers.p),
        Attribute.PRIME_2: b(numbers.q), Attribute.EXPONENT_1: b(numbers.dmp1), Attribute.EXPONENT_2: b(numbers.dmq1),
        Attribute.COEFFICIENT: b(numbers.iqmp)})
    assert _usage(public) == {Attribute.ENCRYPT, Attribute.VERIFY, Attribute.WRAP}
    assert _usage(private) == {Attribute.DECRYPT, Attribute.SIGN, Attribute.UNWRAP}


def test_usage_flag_in_the_template_overrides_the_type_default(session) -> None:
    key = session.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES,
                                 Attribute.VALUE: bytes(16), Attribute.WRAP: False})
    assert _usage(key) == {Attribute.ENCRYPT, Attribute.DECRYPT, Attribute.SIGN, Attribute.VERIFY, Attribute.UNWRAP}
