"""Quorum (M of N) approvals: token services through the engine API, key-usage through the module.

Each `App` is one application (its own Engine, as a separate process would have) on the shared token store.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from p11_helpers import SO_PIN, init_token, raises_rv
from pkcs11 import Mechanism

from pyhsm import constants as ck
from pyhsm.engine import Engine
from pyhsm.engine.approvals import TOKEN_LIFETIME, QuorumToken
from pyhsm.errors import CKRError
from pyhsm.objects.codec import encode

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
IV = b"\x01" * 16


class App:
    """One application logged in to the token as one user."""

    def __init__(self, label: str, pin: str, so: bool = False, clock_skip: float = 0.0) -> None:
        self.eng = Engine(clock=lambda: time.time() + clock_skip)
        self.eng.initialize(0)
        slot = next(s for s in self.eng.get_slot_list(False)
                    if self.eng.get_token_info(s).label.rstrip() == label.encode())
        self.h = self.eng.open_session(slot, ck.CKF_SERIAL_SESSION | ck.CKF_RW_SESSION)
        self.eng.login(self.h, ck.CKU_SO if so else ck.CKU_USER, pin.encode())

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        method = getattr(self.eng, name)
        return lambda *args: method(self.h, *args)

    def close(self) -> None:
        self.eng.finalize()


def sign(key: PrivateKey, token: QuorumToken) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(token.payload(), padding.PKCS1v15(), hashes.SHA256())
    return key.sign(token.payload(), ec.ECDSA(hashes.SHA256()))


def pem(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def rv_of(call) -> int:  # type: ignore[no-untyped-def]
    with pytest.raises(CKRError) as info:
        call()
    return info.value.rv


@pytest.fixture(scope="module")
def quorum_keys() -> dict[str, PrivateKey]:
    return {"admin": rsa.generate_private_key(65537, 2048), "admin2": ec.generate_private_key(ec.SECP256R1()),
            "alice": ec.generate_private_key(ec.SECP384R1()), "bob": rsa.generate_private_key(65537, 2048)}


class Team(dict[str, App]):
    label = ""


@pytest.fixture
def apps(quorum_keys: dict[str, PrivateKey]) -> Iterator[Team]:
    """A token with admins admin/admin2 and crypto users alice/bob, each with a registered quorum key."""
    label = f"q-{uuid.uuid4().hex[:8]}"
    init_token(label)
    admin = App(label, SO_PIN, so=True)
    admin.create_user("admin2", "admin", b"admin2-password")
    admin.create_user("alice", "crypto-user", b"alice-password")
    admin.create_user("bob", "crypto-user", b"bob-password")
    admin.register_quorum_key(pem(quorum_keys["admin"]))
    opened = Team({"admin": admin, "admin2": App(label, "admin2:admin2-password", so=True),
                   "alice": App(label, "alice:alice-password"), "bob": App(label, "bob:bob-password")})
    for name in ("admin2", "alice", "bob"):
        opened[name].register_quorum_key(pem(quorum_keys[name]))
    opened.label = label
    yield opened
    for app in opened.values():
        app.close()


def approve_all(app: App, token: QuorumToken, keys: dict[str, PrivateKey], *names: str) -> QuorumToken:
    for name in names:
        token = app.quorum_approve(token.id, name, sign(keys[name], token))
    return token


def test_a_service_with_a_quorum_refuses_without_an_approved_token(apps: Team) -> None:
    admin = apps["admin"]
    admin.set_quorum_value("user", 2)
    with pytest.raises(CKRError) as info:
        admin.create_user("carol", "crypto-user", b"carol-password")
    assert info.value.rv == ck.CKR_ACTION_PROHIBITED and "quorum of 2" in str(info.value)
    assert "carol" not in [u.name for u in admin.list_users()]


def test_m_distinct_approvals_allow_the_action_once(apps: Team,
                                                    quorum_keys: dict[str, PrivateKey]) -> None:
    admin = apps["admin"]
    admin.set_quorum_value("user", 2)
    token = admin.quorum_generate("user")
    token = approve_all(admin, token, quorum_keys, "admin")
    assert rv_of(lambda: admin.create_user("carol", "crypto-user", b"carol-password")) == ck.CKR_ACTION_PROHIBITED
    approve_all(apps["admin2"], token, quorum_keys, "admin2")  # another process approves
    admin.create_user("carol", "crypto-user", b"carol-password")
    assert rv_of(lambda: admin.create_user("dave", "crypto-user", b"dave-password")) == ck.CKR_ACTION_PROHIBITED
    assert admin.quorum_list() == []  # used once, then gone


def test_approvals_need_an_eligible_registered_signer_and_a_valid_signature(
        apps: Team, quorum_keys: dict[str, PrivateKey]) -> None:
    admin = apps["admin"]
    token = admin.quorum_generate("user")
    bad = sign(quorum_keys["admin2"], token)
    assert rv_of(lambda: admin.quorum_approve(token.id, "admin", bad)) == ck.CKR_SIGNATURE_INVALID
    other = admin.quorum_generate("quorum")
    wrong_payload = sign(quorum_keys["admin"], other)
    assert rv_of(lambda: admin.quorum_approve(token.id, "admin", wrong_payload)) == ck.CKR_SIGNATURE_INVALID
    alice = sign(quorum_keys["alice"], token)
    assert rv_of(lambda: admin.quorum_approve(token.id, "alice", alice)) == ck.CKR_ACTION_PROHIBITED
    assert rv_of(lambda: admin.quorum_approve(token.id, "nobody", alice)) == ck.CKR_ARGUMENTS_BAD
    approve_all(admin, token, quorum_keys, "admin")
    again = sign(quorum_keys["admin"], token)
    assert rv_of(lambda: admin.quorum_approve(token.id, "admin", again)) == ck.CKR_ARGUMENTS_BAD


def test_a_token_expires_after_ten_minutes(apps: Team, quorum_keys: dict[str, PrivateKey]) -> None:
    admin = apps["admin"]
    admin.set_quorum_value("user", 2)
    token = approve_all(admin, admin.quorum_generate("user"), quorum_keys, "admin", "admin2")
    later = App(apps.label, SO_PIN, so=True, clock_skip=TOKEN_LIFETIME + 1)
    try:
        with pytest.raises(CKRError) as info:
            later.create_user("carol", "crypto-user", b"carol-password")
        assert info.value.rv == ck.CKR_ACTION_PROHIBITED and "expired" in str(info.value)
        assert later.quorum_list() == []
    finally:
        later.close()
    assert token.expires - token.created == TOKEN_LIFETIME


def test_generating_a_new_token_replaces_the_users_previous_one(apps: Team) -> None:
    admin = apps["admin"]
    first = admin.quorum_generate("user")
    second = admin.quorum_generate("user")
    assert [t.id for t in admin.quorum_list()] == [second.id] and first.id != second.id


def test_changing_the_quorum_value_needs_a_quorum_once_it_is_above_one(
        apps: Team, quorum_keys: dict[str, PrivateKey]) -> None:
    admin = apps["admin"]
    assert rv_of(lambda: admin.set_quorum_value("quorum", 3)) == ck.CKR_ARGUMENTS_BAD  # only two admins
    admin.set_quorum_value("quorum", 2)
    assert rv_of(lambda: admin.set_quorum_value("user", 2)) == ck.CKR_ACTION_PROHIBITED
    approve_all(admin, admin.quorum_generate("quorum"), quorum_keys, "admin", "admin2")
    admin.set_quorum_value("user", 2)
    assert admin.quorum_values() == {"user": 2, "quorum": 2}


def _quorum_key(app: App, label: str, template: dict[int, object]) -> int:
    values = {ck.CKA_VALUE_LEN: 32, ck.CKA_TOKEN: True, ck.CKA_LABEL: label.encode(), **template}
    return int(app.generate_key(ck.CKM_AES_KEY_GEN, None, [(t, encode(t, v)) for t, v in values.items()]))


def test_key_quorum_values_are_bounded_by_eight_and_by_owner_plus_shared_users(apps: Team) -> None:
    alice = apps["alice"]
    too_many = {ck.CKA_PYHSM_USE_QUORUM: 2}
    assert rv_of(lambda: _quorum_key(alice, "k", too_many)) == ck.CKR_ATTRIBUTE_VALUE_INVALID
    assert rv_of(lambda: _quorum_key(alice, "k", {ck.CKA_PYHSM_MANAGE_QUORUM: 9})) == ck.CKR_ATTRIBUTE_VALUE_INVALID
    key = _quorum_key(alice, "k", {**too_many, ck.CKA_PYHSM_SHARED_USERS: b"bob"})
    assert alice.key_sharing(key).use_quorum == 2
    assert rv_of(lambda: alice.unshare_key(key, "bob")) == ck.CKR_ACTION_PROHIBITED
    set_later = [(ck.CKA_PYHSM_USE_QUORUM, encode(ck.CKA_PYHSM_USE_QUORUM, 1))]
    assert rv_of(lambda: alice.set_attribute_value(key, set_later)) == ck.CKR_ATTRIBUTE_READ_ONLY


def test_key_management_quorum_protects_sharing(apps: Team, quorum_keys: dict[str, PrivateKey]) -> None:
    alice, bob = apps["alice"], apps["bob"]
    key = _quorum_key(alice, "managed", {ck.CKA_PYHSM_MANAGE_QUORUM: 2, ck.CKA_PYHSM_SHARED_USERS: b"bob"})
    apps["admin"].create_user("carol", "crypto-user", b"carol-password")
    assert rv_of(lambda: alice.share_key(key, "carol")) == ck.CKR_ACTION_PROHIBITED
    token = alice.quorum_generate("key-management", key)
    approve_all(bob, token, quorum_keys, "alice", "bob")
    alice.share_key(key, "carol")
    assert alice.key_sharing(key).shared_users == ("bob", "carol")


_USE_KEY = r"""
import sys, pkcs11
from pkcs11 import Mechanism
token = pkcs11.lib(sys.argv[1]).get_token(token_label=sys.argv[2])
with token.open(user_pin="alice:alice-password") as s:
    try:
        s.get_key(label="used").encrypt(b"x" * 16, mechanism=Mechanism.AES_CBC_PAD, mechanism_param=b"\1" * 16)
        print("ok")
    except pkcs11.exceptions.PKCS11Error as exc:
        print(exc)
"""


def test_key_usage_quorum_through_the_module(lib, module: str, apps: Team,  # type: ignore[no-untyped-def]
                                             quorum_keys: dict[str, PrivateKey]) -> None:
    alice = apps["alice"]
    label = apps.label
    key = _quorum_key(alice, "used", {ck.CKA_PYHSM_USE_QUORUM: 2, ck.CKA_PYHSM_SHARED_USERS: b"bob"})
    refused = f"Unmapped error code {hex(ck.CKR_KEY_FUNCTION_NOT_PERMITTED)}"

    def use(skip: float = 0) -> str:  # alice, in another process, through the module
        env = {**os.environ, "PYHSM_CLOCK_SKIP_SECONDS": str(skip)}
        out = subprocess.run([sys.executable, "-c", _USE_KEY, module, label], capture_output=True, text=True,
                             env=env, timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    assert use() == refused
    approve_all(apps["bob"], alice.quorum_generate("key-usage", key), quorum_keys, "alice", "bob")
    assert use(skip=TOKEN_LIFETIME + 1) == refused  # expired in that process's clock
    assert use() == "ok"
    assert use() == refused  # used once
    with lib.get_token(token_label=label).open(user_pin="bob:bob-password") as s:  # bob needs his own token
        with raises_rv(ck.CKR_KEY_FUNCTION_NOT_PERMITTED):
            s.get_key(label="used").encrypt(b"x" * 16, mechanism=Mechanism.AES_CBC_PAD, mechanism_param=IV)
