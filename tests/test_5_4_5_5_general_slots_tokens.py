"""PKCS#11 v3.0 sections 5.4 (general purpose) and 5.5 (slot and token management), through python-pkcs11."""

from __future__ import annotations

import pkcs11
import pytest
from p11_helpers import SO_PIN, USER_PIN, init_token
from pkcs11 import Mechanism, MechanismFlag, TokenFlag


def test_get_info_reports_manufacturer_and_cryptoki_version(lib) -> None:
    assert lib.manufacturer_id == "pyhsm"
    assert lib.cryptoki_version[0] >= 2
    assert lib.library_description == "pyhsm software HSM"


def test_slot_list_always_offers_a_slot_with_an_uninitialised_token(lib) -> None:
    flags = [slot.get_token().flags for slot in lib.get_slots(token_present=True)]
    assert any(not f & TokenFlag.TOKEN_INITIALIZED for f in flags)


def test_initialised_token_reports_label_flags_and_rng(token) -> None:
    assert token.flags & TokenFlag.TOKEN_INITIALIZED
    assert token.flags & TokenFlag.USER_PIN_INITIALIZED
    assert token.flags & TokenFlag.LOGIN_REQUIRED
    assert token.flags & TokenFlag.RNG
    assert not token.flags & TokenFlag.WRITE_PROTECTED  # Oracle refuses to create keys on such a token
    assert token.manufacturer_id == "pyhsm"
    assert len(token.serial) == 16


REQUIRED_MECHANISMS = [
    Mechanism.RSA_PKCS_KEY_PAIR_GEN, Mechanism.RSA_PKCS, Mechanism.RSA_PKCS_PSS, Mechanism.RSA_PKCS_OAEP,
    Mechanism.RSA_X_509, Mechanism.SHA256_RSA_PKCS, Mechanism.SHA256_RSA_PKCS_PSS, Mechanism.EC_KEY_PAIR_GEN,
    Mechanism.ECDSA, Mechanism.ECDSA_SHA256, Mechanism.ECDH1_DERIVE, Mechanism.AES_KEY_GEN, Mechanism.AES_ECB,
    Mechanism.AES_CBC, Mechanism.AES_CBC_PAD, Mechanism.AES_CTR, Mechanism.AES_GCM, Mechanism.AES_CMAC,
    Mechanism.AES_KEY_WRAP, Mechanism.AES_KEY_WRAP_PAD, Mechanism.GENERIC_SECRET_KEY_GEN,
    Mechanism.SHA256_HMAC, Mechanism.SHA_1, Mechanism.SHA224, Mechanism.SHA256, Mechanism.SHA384,
    Mechanism.SHA512,
]


def test_mechanism_list_contains_every_required_mechanism(token) -> None:
    offered = set(token.slot.get_mechanisms())
    missing = [m for m in REQUIRED_MECHANISMS if m not in offered]
    assert not missing


def test_mechanism_info_reports_key_sizes_and_flags(token) -> None:
    info = token.slot.get_mechanism_info(Mechanism.RSA_PKCS_KEY_PAIR_GEN)
    assert (info.min_key_length, info.max_key_length) == (2048, 4096)
    assert info.flags & MechanismFlag.GENERATE_KEY_PAIR
    info = token.slot.get_mechanism_info(Mechanism.ECDSA_SHA256)
    assert info.flags & MechanismFlag.SIGN and info.flags & MechanismFlag.VERIFY
    assert info.min_key_length == 256


def test_unknown_mechanism_info_is_mechanism_invalid(token) -> None:
    with pytest.raises(pkcs11.exceptions.MechanismInvalid):
        token.slot.get_mechanism_info(0x7FFFFFF0)


def test_reinitialising_a_token_needs_the_so_pin_and_erases_objects(lib) -> None:
    init_token("reinit-me")
    tok = lib.get_token(token_label="reinit-me")
    with tok.open(rw=True, user_pin=USER_PIN) as s:
        s.create_object({pkcs11.Attribute.CLASS: pkcs11.ObjectClass.DATA, pkcs11.Attribute.TOKEN: True,
                         pkcs11.Attribute.LABEL: "doomed"})
    from p11_helpers import pyhsm_cli

    wrong = pyhsm_cli("token", "init", "--slot", str(tok.slot.slot_id), "--label", "reinit-me",
                      "--so-pin", "wrong-so-pin", "--pin", USER_PIN)
    assert wrong.returncode != 0 and "CKR_PIN_INCORRECT" in wrong.stderr
    init = pyhsm_cli("token", "init", "--slot", str(tok.slot.slot_id), "--label", "reinit-me",
                     "--so-pin", SO_PIN, "--pin", USER_PIN)
    assert init.returncode == 0, init.stderr
    with tok.open(user_pin=USER_PIN) as s:
        assert list(s.get_objects({pkcs11.Attribute.LABEL: "doomed"})) == []
