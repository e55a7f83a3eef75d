"""Quotas per token (keys, users) and per application (sessions): a clear error, and everything stays usable."""

from __future__ import annotations

import uuid

import pkcs11
import pytest
from p11_helpers import SO_PIN, USER_PIN, init_token
from pkcs11 import KeyType, ObjectClass
from users_helpers import manage, ok

from pyhsm import constants as ck


@pytest.fixture
def token(lib):  # type: ignore[no-untyped-def]
    label = f"quota-{uuid.uuid4().hex[:8]}"
    init_token(label)
    return lib.get_token(token_label=label)


def test_the_key_quota_is_device_memory_and_deleting_a_key_frees_a_place(token) -> None:  # type: ignore[no-untyped-def]
    ok(manage(token.label, SO_PIN, ("set_limits", 3), so=True))
    with token.open(rw=True, user_pin=USER_PIN) as s:
        keys = [s.generate_key(KeyType.AES, 128, store=True, label=f"k{i}") for i in range(3)]
        with pytest.raises(pkcs11.exceptions.DeviceMemory):
            s.generate_key(KeyType.AES, 128, store=True, label="one-too-many")
        session_key = s.generate_key(KeyType.AES, 128, store=False)  # session keys are not stored on the token
        assert session_key.encrypt(b"0" * 16, mechanism=pkcs11.Mechanism.AES_ECB)
        s.create_object({pkcs11.Attribute.CLASS: ObjectClass.DATA, pkcs11.Attribute.TOKEN: True,
                         pkcs11.Attribute.LABEL: "data objects are not keys"})
        keys[0].destroy()
        s.generate_key(KeyType.AES, 128, store=True, label="fits-again")
        assert len(list(s.get_objects({pkcs11.Attribute.CLASS: ObjectClass.SECRET_KEY}))) == 4


def test_a_key_pair_that_does_not_fit_leaves_no_half_behind(token) -> None:  # type: ignore[no-untyped-def]
    ok(manage(token.label, SO_PIN, ("set_limits", 1), so=True))
    with token.open(rw=True, user_pin=USER_PIN) as s:
        with pytest.raises(pkcs11.exceptions.DeviceMemory):
            s.generate_keypair(KeyType.RSA, 2048, store=True, label="pair")
        assert not list(s.get_objects({pkcs11.Attribute.LABEL: "pair"}))
        s.generate_key(KeyType.AES, 128, store=True)


def test_the_user_quota_is_device_memory(token) -> None:  # type: ignore[no-untyped-def]
    results = manage(token.label, SO_PIN, ("set_limits", None, 3),
                     ("create_user", "alice", "crypto-user", {"bytes": "alice-password"}),
                     ("create_user", "bob", "crypto-user", {"bytes": "bob-password"}),
                     ("delete_user", "alice"),
                     ("create_user", "bob", "crypto-user", {"bytes": "bob-password"}), so=True)
    assert [r.get("rv") for r in results] == [None, None, ck.CKR_DEVICE_MEMORY, None, None]
    assert "quota of 3 users" in results[2]["message"]


def test_the_session_quota_is_session_count_per_application(token) -> None:  # type: ignore[no-untyped-def]
    ok(manage(token.label, SO_PIN, ("set_limits", None, None, 3), so=True))
    sessions = [token.open() for _ in range(3)]
    with pytest.raises(pkcs11.exceptions.SessionCount):
        token.open()
    sessions.pop().close()
    with token.open():
        pass
    for s in sessions:
        s.close()


def test_limits_must_be_positive_and_only_admins_set_them(token) -> None:  # type: ignore[no-untyped-def]
    assert manage(token.label, SO_PIN, ("set_limits", 0), so=True)[0]["rv"] == ck.CKR_ARGUMENTS_BAD
    assert manage(token.label, USER_PIN, ("set_limits", 10))[0]["rv"] == ck.CKR_USER_TYPE_INVALID
    defaults = ok(manage(token.label, USER_PIN, ("get_settings",)))[0]["ok"]
    assert "max_keys=16666, max_users=1024, max_sessions=1024" in defaults
