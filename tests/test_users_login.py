"""C_Login with named users (CloudHSM's "name:password" PINs), per-user lockout, password policy, user management.

Management calls run in another process through the engine (as the `pyhsm` CLI does); logins go through the module.
"""

from __future__ import annotations

import os
import subprocess
import uuid

import pkcs11
import pytest
from p11_helpers import SO_PIN, USER_PIN, init_token, module_path
from pkcs11 import KeyType, TokenFlag
from users_helpers import create_users, manage, ok

from pyhsm import constants as ck
from pyhsm.objects import codec
from pyhsm.store.directory import TokenDirectory
from pyhsm.store.sealing import TokenKey


@pytest.fixture
def named_token(lib):  # type: ignore[no-untyped-def]
    label = f"usr-{uuid.uuid4().hex[:8]}"
    init_token(label)
    create_users(label, SO_PIN, ("alice", "alice-password"), ("bob", "bob-password"))
    return lib.get_token(token_label=label)


def _owner(token, pin: str, key_label: str) -> str:  # type: ignore[no-untyped-def]
    with token.open(rw=True, user_pin=pin) as s:
        s.generate_key(KeyType.AES, 128, label=key_label, store=True)
    sharing = ok(manage(token.label, pin, ("key_sharing", {"label": key_label})))[0]["ok"]
    return sharing.split("owner='")[1].split("'")[0]


def test_name_colon_password_logs_in_as_that_crypto_user(named_token) -> None:  # type: ignore[no-untyped-def]
    assert _owner(named_token, "alice:alice-password", "k1") == "alice"


def test_user_names_are_case_insensitive(named_token) -> None:  # type: ignore[no-untyped-def]
    assert _owner(named_token, "ALICE:alice-password", "k2") == "alice"


def test_a_pin_without_a_colon_logs_in_as_the_default_user(named_token) -> None:  # type: ignore[no-untyped-def]
    assert _owner(named_token, USER_PIN, "k3") == "default"


def test_a_pin_whose_prefix_is_no_user_is_the_default_users_whole_password(lib) -> None:  # type: ignore[no-untyped-def]
    label = f"pfx-{uuid.uuid4().hex[:8]}"
    init_token(label, pin="not-a-user:pin")
    token = lib.get_token(token_label=label)
    with token.open(user_pin="not-a-user:pin"):
        pass
    assert _owner(token, "not-a-user:pin", "k4") == "default"


def test_pkcs11_tool_logs_in_as_a_named_user() -> None:
    label = f"tool-{uuid.uuid4().hex[:8]}"
    init_token(label)
    create_users(label, SO_PIN, ("alice", "alice-password"))
    base = ["pkcs11-tool", "--module", module_path(), "--token-label", label, "--login"]
    made = subprocess.run([*base, "--pin", "alice:alice-password", "--keygen", "--key-type", "AES:32",
                           "--label", "tool-key"], capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    assert "owner='alice'" in ok(manage(label, "alice:alice-password", ("key_sharing", {"label": "tool-key"})))[0]["ok"]
    wrong = subprocess.run([*base, "--pin", "alice:wrong-password", "--list-objects"], capture_output=True,
                           text=True, timeout=120)
    assert wrong.returncode != 0 and "CKR_PIN_INCORRECT" in wrong.stderr + wrong.stdout


def test_each_user_has_its_own_failure_counter_and_locks_after_ten(named_token) -> None:  # type: ignore[no-untyped-def]
    for attempt in range(10):
        with pytest.raises((pkcs11.exceptions.PinIncorrect, pkcs11.exceptions.PinLocked)):
            named_token.open(rw=True, user_pin="alice:wrong-password")
        flags = named_token.slot.get_token().flags
        if attempt == 8:
            assert flags & TokenFlag.USER_PIN_FINAL_TRY  # the flags describe the user who failed last
    assert named_token.slot.get_token().flags & TokenFlag.USER_PIN_LOCKED
    with pytest.raises(pkcs11.exceptions.PinLocked):
        named_token.open(user_pin="alice:alice-password")
    for other in ("bob:bob-password", USER_PIN):  # other users are not affected
        with named_token.open(user_pin=other):
            pass
    users = ok(manage(named_token.label, SO_PIN, ("list_users",), so=True))[0]["ok"]
    assert "name='alice', role='crypto-user', locked=True" in users


def test_an_admin_password_reset_unlocks_a_locked_user(named_token) -> None:  # type: ignore[no-untyped-def]
    for _ in range(10):
        with pytest.raises((pkcs11.exceptions.PinIncorrect, pkcs11.exceptions.PinLocked)):
            named_token.open(rw=True, user_pin="bob:wrong-password")
    ok(manage(named_token.label, SO_PIN, ("change_password", "bob", {"bytes": "bob-new-password"}), so=True))
    with named_token.open(user_pin="bob:bob-new-password"):
        pass
    assert not named_token.slot.get_token().flags & TokenFlag.USER_PIN_LOCKED


def test_so_login_accepts_admin_name_and_plain_so_pin(named_token) -> None:  # type: ignore[no-untyped-def]
    with named_token.open(rw=True, so_pin=f"admin:{SO_PIN}"):
        pass
    with named_token.open(rw=True, so_pin=SO_PIN):
        pass
    with pytest.raises(pkcs11.exceptions.PinIncorrect):  # crypto users are not admins
        named_token.open(rw=True, so_pin="alice:alice-password")


def test_passwords_follow_the_tokens_policy(named_token) -> None:  # type: ignore[no-untyped-def]
    label = named_token.label
    results = manage(label, SO_PIN, ("create_user", "carol", "crypto-user", {"bytes": "seven77"}),
                     ("create_user", "carol", "crypto-user", {"bytes": "x" * 33}),
                     ("set_password_policy", 12, 40),
                     ("create_user", "carol", "crypto-user", {"bytes": "eleven-char"}),
                     ("create_user", "carol", "crypto-user", {"bytes": "twelve-chars"}), so=True)
    assert [r.get("rv") for r in results] == [ck.CKR_PIN_LEN_RANGE, ck.CKR_PIN_LEN_RANGE, None,
                                              ck.CKR_PIN_LEN_RANGE, None]
    with named_token.open(rw=True, user_pin="alice:alice-password") as s:
        with pytest.raises(pkcs11.exceptions.PinLenRange):
            s.set_pin("alice-password", "too-short")
        s.set_pin("alice:alice-password", "alice:a-long-new-password")
    with named_token.open(user_pin="alice:a-long-new-password"):
        pass


def test_user_names_and_roles_are_checked(named_token) -> None:  # type: ignore[no-untyped-def]
    results = manage(named_token.label, SO_PIN, ("create_user", "x" * 32, "crypto-user", {"bytes": "password"}),
                     ("create_user", "bad name", "crypto-user", {"bytes": "password"}),
                     ("create_user", "eve", "superuser", {"bytes": "password"}),
                     ("create_user", "alice", "crypto-user", {"bytes": "password"}),
                     ("create_user", "x" * 31, "admin", {"bytes": "password"}), so=True)
    assert [r.get("rv") for r in results] == [ck.CKR_ARGUMENTS_BAD, ck.CKR_ARGUMENTS_BAD, ck.CKR_USER_TYPE_INVALID,
                                              ck.CKR_ARGUMENTS_BAD, None]
    with named_token.open(rw=True, so_pin=f"{'x' * 31}:password"):
        pass


def test_only_admins_manage_users(named_token) -> None:  # type: ignore[no-untyped-def]
    results = manage(named_token.label, "alice:alice-password",
                     ("create_user", "mallory", "admin", {"bytes": "password"}), ("delete_user", "bob"),
                     ("change_password", "bob", {"bytes": "password"}), ("list_users",))
    assert [r.get("rv") for r in results] == [ck.CKR_USER_TYPE_INVALID] * 3 + [None]


def test_the_last_admin_and_oneself_cannot_be_deleted(named_token) -> None:  # type: ignore[no-untyped-def]
    results = manage(named_token.label, SO_PIN, ("delete_user", "admin"), so=True)
    assert results[0]["rv"] == ck.CKR_ACTION_PROHIBITED


def test_a_store_from_before_users_keeps_its_pins_and_objects_belong_to_the_default_user(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = TokenDirectory(tmp_path).create(0)  # the layout single-user pyhsm wrote: one SO and one user key
    token_key = TokenKey.generate()
    store.set_meta({"initialized": b"1", "label": b"legacy", "serial": b"0123456789abcdef",
                    "so_key": token_key.wrap_for_pin(SO_PIN.encode()),
                    "user_key": token_key.wrap_for_pin(USER_PIN.encode()), "so_failures": b"0",
                    "user_failures": b"2"})
    old = {ck.CKA_CLASS: ck.CKO_DATA, ck.CKA_TOKEN: True, ck.CKA_PRIVATE: True, ck.CKA_LABEL: b"old-data",
           ck.CKA_UNIQUE_ID: b"0" * 32, ck.CKA_VALUE: b"kept"}
    store.insert_object({t: codec.encode(t, v) for t, v in old.items()})
    store.close()
    env = {**os.environ, "PYHSM_STORE_DIR": str(tmp_path)}
    listed = subprocess.run(["pkcs11-tool", "--module", module_path(), "--token-label", "legacy", "--login",
                             "--pin", USER_PIN, "--list-objects"], capture_output=True, text=True, env=env,
                            timeout=120)
    assert listed.returncode == 0 and "old-data" in listed.stdout, listed.stderr
    users = ok(manage("legacy", SO_PIN, ("list_users",), so=True, env=env))[0]["ok"]
    assert "name='admin', role='admin'" in users and "name='default', role='crypto-user'" in users
    sharing = ok(manage("legacy", USER_PIN, ("key_sharing", {"label": "old-data"}), env=env))[0]["ok"]
    assert "owner='default'" in sharing
