"""PKCS#11 v3.0 section 5.6: sessions, login and PIN management, through python-pkcs11."""

from __future__ import annotations

import pkcs11
import pytest
from p11_helpers import SO_PIN, USER_PIN
from pkcs11 import Attribute, ObjectClass, TokenFlag


def _data(label: str, private: bool) -> dict:
    return {Attribute.CLASS: ObjectClass.DATA, Attribute.TOKEN: True, Attribute.PRIVATE: private,
            Attribute.LABEL: label, Attribute.VALUE: b"payload"}


def test_wrong_user_pin_is_pin_incorrect(token) -> None:
    with pytest.raises(pkcs11.exceptions.PinIncorrect):
        token.open(user_pin="not-the-pin")


def test_pin_failures_raise_count_low_then_a_correct_login_clears_it(token) -> None:
    with pytest.raises(pkcs11.exceptions.PinIncorrect):
        token.open(user_pin="not-the-pin")
    assert token.slot.get_token().flags & TokenFlag.USER_PIN_COUNT_LOW
    with token.open(user_pin=USER_PIN):
        pass
    assert not token.slot.get_token().flags & TokenFlag.USER_PIN_COUNT_LOW


def test_pin_locks_after_ten_failures(token) -> None:
    for attempt in range(10):
        flags = token.slot.get_token().flags
        if attempt == 9:
            assert flags & TokenFlag.USER_PIN_FINAL_TRY
        with pytest.raises((pkcs11.exceptions.PinIncorrect, pkcs11.exceptions.PinLocked)):
            token.open(user_pin="not-the-pin")
    assert token.slot.get_token().flags & TokenFlag.USER_PIN_LOCKED
    with pytest.raises(pkcs11.exceptions.PinLocked):
        token.open(user_pin=USER_PIN)


def test_private_objects_are_invisible_before_login(token) -> None:
    with token.open(rw=True, user_pin=USER_PIN) as s:
        s.create_object(_data("secret-data", private=True))
        s.create_object(_data("public-data", private=False))
    with token.open() as s:
        labels = {o[Attribute.LABEL] for o in s.get_objects({Attribute.CLASS: ObjectClass.DATA})}
    assert labels == {"public-data"}


def test_creating_a_private_object_without_login_is_user_not_logged_in(token) -> None:
    with token.open(rw=True) as s, pytest.raises(pkcs11.exceptions.UserNotLoggedIn):
        s.create_object(_data("x", private=True))


def test_token_object_in_read_only_session_is_session_read_only(token) -> None:
    with token.open(user_pin=USER_PIN) as s, pytest.raises(pkcs11.exceptions.SessionReadOnly):
        s.create_object(_data("x", private=False))


def test_so_login_with_a_read_only_session_open_is_session_read_only_exists(token) -> None:
    with token.open(), pytest.raises(pkcs11.exceptions.SessionReadOnlyExists):
        token.open(rw=True, so_pin=SO_PIN)


def test_user_pin_change_takes_effect(token) -> None:
    with token.open(rw=True, user_pin=USER_PIN) as s:
        s.set_pin(USER_PIN, "a-new-user-pin")
    with pytest.raises(pkcs11.exceptions.PinIncorrect):
        token.open(user_pin=USER_PIN)
    with token.open(user_pin="a-new-user-pin"):
        pass


def test_so_init_pin_resets_a_locked_user_pin(token) -> None:
    for _ in range(10):  # RW: python-pkcs11 leaves the session of a failed login open, and SO login needs no RO one
        with pytest.raises((pkcs11.exceptions.PinIncorrect, pkcs11.exceptions.PinLocked)):
            token.open(rw=True, user_pin="not-the-pin")
    with token.open(rw=True, so_pin=SO_PIN) as s:
        s.init_pin("fresh-user-pin")
    with token.open(user_pin="fresh-user-pin"):
        pass


def test_pin_shorter_than_minimum_is_pin_len_range(token) -> None:
    with token.open(rw=True, user_pin=USER_PIN) as s, pytest.raises(pkcs11.exceptions.PinLenRange):
        s.set_pin(USER_PIN, "abc")


def test_so_pin_locks_after_ten_failures_with_the_same_flags(token) -> None:
    for attempt in range(10):
        flags = token.slot.get_token().flags
        if attempt == 1:
            assert flags & TokenFlag.SO_PIN_COUNT_LOW
        if attempt == 9:
            assert flags & TokenFlag.SO_PIN_FINAL_TRY
        with pytest.raises((pkcs11.exceptions.PinIncorrect, pkcs11.exceptions.PinLocked)):
            token.open(rw=True, so_pin="not-the-so-pin")
    assert token.slot.get_token().flags & TokenFlag.SO_PIN_LOCKED
    with pytest.raises(pkcs11.exceptions.PinLocked):
        token.open(rw=True, so_pin=SO_PIN)
    with token.open(user_pin=USER_PIN):  # the user's PIN has its own counter
        pass
