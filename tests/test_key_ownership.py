"""Key ownership and sharing (CloudHSM model, docs/architecture.md) through the module, two users in two processes.

This process (python-pkcs11) is alice, the owner; the C host (tests/c_host/users.c) and pkcs11-tool run as bob
(a shared user) and carol (a stranger) in processes of their own.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pkcs11
import pytest
from p11_helpers import SO_PIN, USER_PIN, init_token, module_path, raises_rv
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from users_helpers import build_users_host, create_users, manage, ok, run_c_host

from pyhsm import constants as ck

ALICE, BOB, CAROL = "alice:alice-password", "bob:bob-password", "carol:carol-password"


@pytest.fixture(scope="module")
def users_host(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_users_host(tmp_path_factory)


@pytest.fixture(scope="module")
def shared_token(lib):  # type: ignore[no-untyped-def]
    """alice owns an AES key and an RSA key pair; both private keys are shared with bob, not with carol."""
    label = f"own-{uuid.uuid4().hex[:8]}"
    init_token(label)
    create_users(label, SO_PIN, ("alice", "alice-password"), ("bob", "bob-password"), ("carol", "carol-password"))
    token = lib.get_token(token_label=label)
    with token.open(rw=True, user_pin=ALICE) as s:
        s.generate_key(KeyType.AES, 256, label="alice-aes", store=True)
        s.generate_key(KeyType.AES, 256, label="alice-only", store=True)
        s.generate_keypair(KeyType.RSA, 2048, label="alice-rsa", store=True)
    ok(manage(label, ALICE, ("share_key", {"label": "alice-aes"}, "bob")))
    with token.open(rw=True, user_pin=ALICE) as s:
        rsa = s.get_key(object_class=ObjectClass.PRIVATE_KEY, label="alice-rsa")
    ok(manage(label, ALICE, ("share_key", rsa.handle, "bob")))
    return label


def test_the_creator_owns_the_key_and_the_owner_attribute_is_read_only(users_host: Path, shared_token: str) -> None:
    run_c_host(users_host, shared_token, ALICE, "owner", "alice-aes", "alice")


def test_a_shared_user_uses_the_key_but_cannot_destroy_modify_copy_or_wrap_it(users_host: Path,
                                                                             shared_token: str) -> None:
    run_c_host(users_host, shared_token, BOB, "shared", "alice-aes", "alice")


def test_an_unshared_users_key_is_invisible_and_its_handle_invalid(lib, users_host: Path,  # type: ignore[no-untyped-def]
                                                                   shared_token: str) -> None:
    with lib.get_token(token_label=shared_token).open(user_pin=ALICE) as s:
        handle = s.get_key(label="alice-only").handle
    run_c_host(users_host, shared_token, BOB, "stranger", "alice-only", str(handle))
    run_c_host(users_host, shared_token, CAROL, "stranger", "alice-aes", str(handle))


def test_a_shared_user_signs_with_pkcs11_tool_and_a_stranger_cannot(tmp_path: Path, shared_token: str) -> None:
    data = tmp_path / "data"
    data.write_bytes(b"signed by bob with alice's key")
    base = ["pkcs11-tool", "--module", module_path(), "--token-label", shared_token, "--login", "--sign",
            "-m", "SHA256-RSA-PKCS", "--label", "alice-rsa", "--input-file", str(data)]
    signed = subprocess.run([*base, "--pin", BOB, "--output-file", str(tmp_path / "sig")], capture_output=True,
                            timeout=120)
    assert signed.returncode == 0, signed.stderr
    assert len((tmp_path / "sig").read_bytes()) == 256
    refused = subprocess.run([*base, "--pin", CAROL, "--output-file", str(tmp_path / "sig2")], capture_output=True,
                             text=True, timeout=120)
    assert refused.returncode != 0 and "not found" in (refused.stderr + refused.stdout).lower()


def test_a_key_unwrapped_with_a_shared_key_belongs_to_the_unwrapping_user(lib,  # type: ignore[no-untyped-def]
                                                                         shared_token: str) -> None:
    with lib.get_token(token_label=shared_token).open(rw=True, user_pin=BOB) as s:
        shared = s.get_key(label="alice-aes")
        mine = s.generate_key(KeyType.AES, 128, label="bob-plain", template={Attribute.EXTRACTABLE: True})
        wrapped = shared.wrap_key(mine, mechanism=Mechanism.AES_KEY_WRAP_PAD)  # wrapping *with* it is a use
        shared.unwrap_key(ObjectClass.SECRET_KEY, KeyType.AES, wrapped, label="bob-unwrapped", store=True,
                          mechanism=Mechanism.AES_KEY_WRAP_PAD)
    assert "owner='bob'" in ok(manage(shared_token, BOB, ("key_sharing", {"label": "bob-unwrapped"})))[0]["ok"]


def test_public_keys_are_visible_to_every_user(lib, shared_token: str) -> None:  # type: ignore[no-untyped-def]
    with lib.get_token(token_label=shared_token).open(user_pin=CAROL) as s:
        public = s.get_key(object_class=ObjectClass.PUBLIC_KEY, label="alice-rsa")
        assert public[Attribute.MODULUS_BITS] == 2048
        with pytest.raises(pkcs11.NoSuchKey):
            s.get_key(object_class=ObjectClass.PRIVATE_KEY, label="alice-rsa")


def test_only_the_owner_shares_and_unshares(shared_token: str) -> None:
    results = manage(shared_token, BOB, ("share_key", {"label": "alice-aes"}, "carol"),
                     ("unshare_key", {"label": "alice-aes"}, "bob"))
    assert [r.get("rv") for r in results] == [ck.CKR_ACTION_PROHIBITED] * 2


def test_sharing_with_an_unknown_user_or_oneself_is_refused(shared_token: str) -> None:
    results = manage(shared_token, ALICE, ("share_key", {"label": "alice-only"}, "nobody"),
                     ("share_key", {"label": "alice-only"}, "alice"),
                     ("share_key", {"label": "alice-only"}, "admin"))
    assert [r.get("rv") for r in results] == [ck.CKR_ARGUMENTS_BAD] * 3


def test_unsharing_takes_the_key_away_from_another_process(lib, shared_token: str) -> None:  # type: ignore[no-untyped-def]
    token = lib.get_token(token_label=shared_token)
    ok(manage(shared_token, ALICE, ("share_key", {"label": "alice-only"}, "carol")))
    with token.open(user_pin=CAROL) as s:
        key = s.get_key(label="alice-only")
        assert key.encrypt(b"0" * 16, mechanism=Mechanism.AES_ECB)
    ok(manage(shared_token, ALICE, ("unshare_key", {"label": "alice-only"}, "carol")))
    with token.open(user_pin=CAROL) as s, pytest.raises(pkcs11.NoSuchKey):
        s.get_key(label="alice-only")


def test_the_admin_sees_public_keys_but_cannot_use_them(lib, shared_token: str) -> None:  # type: ignore[no-untyped-def]
    with lib.get_token(token_label=shared_token).open(rw=True, so_pin=SO_PIN) as s:
        public = s.get_key(object_class=ObjectClass.PUBLIC_KEY, label="alice-rsa")
        with raises_rv(ck.CKR_KEY_FUNCTION_NOT_PERMITTED):
            public.encrypt(b"x", mechanism=Mechanism.RSA_PKCS)
        assert not list(s.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY}))


def test_an_admin_uses_no_key_by_any_function(users_host: Path, shared_token: str) -> None:
    run_c_host(users_host, shared_token, SO_PIN, "admin", "admin-made", "-")


def test_objects_of_the_plain_pin_user_belong_to_the_default_user(lib) -> None:  # type: ignore[no-untyped-def]
    label = f"dflt-{uuid.uuid4().hex[:8]}"
    init_token(label)
    create_users(label, SO_PIN, ("alice", "alice-password"))
    token = lib.get_token(token_label=label)
    with token.open(rw=True, user_pin=USER_PIN) as s:
        s.generate_key(KeyType.AES, 128, label="default-key", store=True)
    sharing = ok(manage(label, USER_PIN, ("key_sharing", {"label": "default-key"})))[0]["ok"]
    assert "owner='default'" in sharing
    with token.open(user_pin=ALICE) as s, pytest.raises(pkcs11.NoSuchKey):
        s.get_key(label="default-key")


def test_deleting_a_user_who_owns_keys_is_refused_until_the_keys_are_gone(lib) -> None:  # type: ignore[no-untyped-def]
    label = f"del-{uuid.uuid4().hex[:8]}"
    init_token(label)
    create_users(label, SO_PIN, ("dave", "dave-password"))
    token = lib.get_token(token_label=label)
    with token.open(rw=True, user_pin="dave:dave-password") as s:
        key = s.generate_key(KeyType.AES, 128, label="dave-key", store=True)
    refused = manage(label, SO_PIN, ("delete_user", "dave"), so=True)[0]
    assert refused["rv"] == ck.CKR_ACTION_PROHIBITED and "owns 1 object" in refused["message"]
    with token.open(rw=True, user_pin="dave:dave-password") as s:
        s.get_key(label="dave-key").destroy()
    del key
    ok(manage(label, SO_PIN, ("delete_user", "dave"), so=True))
    with pytest.raises(pkcs11.exceptions.PinIncorrect):
        token.open(user_pin="dave:dave-password")
