"""The users of a token (AWS CloudHSM's model): admins (= PKCS#11 SO) and crypto users (= PKCS#11 USER).

A user record lives in the token store's metadata under ``user/<name>`` as JSON. Its credential is the token key
wrapped under scrypt(password) (pyhsm/store/sealing.py): unwrapping it *is* the password check (AES-GCM
authentication, constant-time), so no password hash exists anywhere.

C_Login's PIN is ``name:password`` for a named user. A PIN without a colon, or whose prefix is not the name of a
user of the requested role, is the whole password of the role's default account: ``admin`` for CKU_SO (created by
C_InitToken) and ``default`` for CKU_USER (its password set by C_InitPIN). Ordinary PKCS#11 tools therefore keep
working with a plain PIN.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import asdict, dataclass, replace
from typing import Any

from pyhsm import constants as ck
from pyhsm.errors import CKRError

ADMIN = "admin"
CRYPTO_USER = "crypto-user"
ROLES = (ADMIN, CRYPTO_USER)
INITIAL_ADMIN = "admin"  # C_InitToken's SO PIN is this admin's password
DEFAULT_USER = "default"  # C_InitPIN sets this crypto user's password; plain PINs log in as it

MAX_FAILURES = 10
MAX_NAME_LEN = 31
_NAME = re.compile(r"[a-z0-9_][a-z0-9_.-]{0,30}")
USER_PREFIX = "user/"
LAST_FAILED = "last_failed/"  # + role: the user whose failures the token flags report


def role_of(user_type: int) -> str:
    return ADMIN if user_type == ck.CKU_SO else CRYPTO_USER


def default_account(role: str) -> str:
    return INITIAL_ADMIN if role == ADMIN else DEFAULT_USER


def check_name(name: str) -> str:
    """User names are case-insensitive (kept in lower case, as CloudHSM does): 1-31 of [a-z0-9_.-]."""
    lowered = name.lower()
    if not _NAME.fullmatch(lowered):
        raise CKRError(ck.CKR_ARGUMENTS_BAD, f"user names are 1 to {MAX_NAME_LEN} characters of a-z, 0-9, _ . - "
                                             "(not starting with . or -)")
    return lowered


def check_role(role: str) -> str:
    if role not in ROLES:
        raise CKRError(ck.CKR_USER_TYPE_INVALID, f"the role is one of {', '.join(ROLES)}")
    return role


@dataclass(frozen=True)
class PasswordPolicy:
    """Lengths (bytes) for passwords of users created through user management; stored in the token."""

    min_len: int = 8
    max_len: int = 32

    def check(self, password: bytes) -> None:
        if not self.min_len <= len(password) <= self.max_len:
            raise CKRError(ck.CKR_PIN_LEN_RANGE, f"passwords are {self.min_len} to {self.max_len} bytes")
        try:
            password.decode("utf-8")
        except UnicodeDecodeError:
            raise CKRError(ck.CKR_PIN_INVALID, "a password must be UTF-8") from None


@dataclass(frozen=True)
class UserRecord:
    name: str
    role: str
    wrapped_key: bytes  # the token key wrapped under scrypt(password): credential and verifier in one
    failures: int = 0
    managed: bool = True  # created through user management, so the password policy applies
    quorum_key: str | None = None  # PEM public key that signs this user's quorum approvals

    @property
    def locked(self) -> bool:
        return self.failures >= MAX_FAILURES

    def encode(self) -> bytes:
        fields: dict[str, Any] = asdict(self)
        fields["wrapped_key"] = base64.b64encode(self.wrapped_key).decode()
        return json.dumps(fields, sort_keys=True).encode()

    @classmethod
    def decode(cls, raw: bytes) -> UserRecord:
        fields = json.loads(raw)
        fields["wrapped_key"] = base64.b64decode(fields["wrapped_key"])
        return cls(**fields)

    def with_failures(self, failures: int) -> UserRecord:
        return replace(self, failures=failures)


def meta_key(name: str) -> str:
    return USER_PREFIX + name


def users_in(meta: dict[str, bytes]) -> dict[str, UserRecord]:
    return {k[len(USER_PREFIX):]: UserRecord.decode(v) for k, v in meta.items() if k.startswith(USER_PREFIX)}


def split_pin(pin: bytes, role: str, users: dict[str, UserRecord]) -> tuple[str, bytes]:
    """(account name, password) for a C_Login PIN of `role` (see the module docstring)."""
    prefix, colon, rest = pin.partition(b":")
    if colon:
        try:
            name = prefix.decode("utf-8").lower()
        except UnicodeDecodeError:
            name = ""
        record = users.get(name)
        if record is not None and record.role == role:
            return name, rest
    return default_account(role), pin
