"""Token-wide rules an admin controls (password policy, quotas, quorum values) and the FIPS mechanism policy.

Settings live as one JSON value in the token store's metadata; a token starts with the defaults below, which follow
AWS CloudHSM's published limits (1,024 users, 1,024 PKCS#11 sessions per application) except the key quota, which
is the per-HSM figure this project was asked for (16,666).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from pyhsm import constants as ck
from pyhsm.engine.accounts import PasswordPolicy
from pyhsm.errors import CKRError

SETTINGS_KEY = "settings"
FIPS_KEY = "fips_mode"  # b"1" or b"0" (the backup module reads it too)

# Quorum services (CloudHSM names). Token-wide values exist for the first two; key services take their value
# from the key (CKA_PYHSM_MANAGE_QUORUM / CKA_PYHSM_USE_QUORUM).
SERVICE_USER = "user"
SERVICE_QUORUM = "quorum"
SERVICE_KEY_MANAGEMENT = "key-management"
SERVICE_KEY_USAGE = "key-usage"
TOKEN_SERVICES = (SERVICE_USER, SERVICE_QUORUM)
KEY_SERVICES = (SERVICE_KEY_MANAGEMENT, SERVICE_KEY_USAGE)
MAX_QUORUM = 8


@dataclass(frozen=True)
class Limits:
    max_keys: int = 16_666  # token keys (public, private and secret key objects stored on the token)
    max_users: int = 1_024  # admins and crypto users together
    max_sessions: int = 1_024  # open sessions per application (process) on this token

    def check(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int) or value < 1:
                raise CKRError(ck.CKR_ARGUMENTS_BAD, f"{name} must be a positive integer")


@dataclass(frozen=True)
class Settings:
    password: PasswordPolicy = PasswordPolicy()
    limits: Limits = Limits()
    quorum: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOKEN_SERVICES, 1))

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def decode(cls, raw: bytes | None) -> Settings:
        if raw is None:
            return cls()
        fields: dict[str, Any] = json.loads(raw)
        return cls(PasswordPolicy(**fields["password"]), Limits(**fields["limits"]),
                   {**dict.fromkeys(TOKEN_SERVICES, 1), **fields["quorum"]})

    def with_quorum(self, service: str, value: int) -> Settings:
        if service not in TOKEN_SERVICES:
            raise CKRError(ck.CKR_ARGUMENTS_BAD, f"token quorum services are {', '.join(TOKEN_SERVICES)}")
        check_quorum_value(value)
        return replace(self, quorum={**self.quorum, service: value})


def check_quorum_value(value: int) -> None:
    if not isinstance(value, int) or not 0 <= value <= MAX_QUORUM:
        raise CKRError(ck.CKR_ARGUMENTS_BAD, f"quorum values are 0 to {MAX_QUORUM} (0 and 1 mean no quorum)")


def check_password_policy(policy: PasswordPolicy) -> None:
    if not 1 <= policy.min_len <= policy.max_len <= 255:
        raise CKRError(ck.CKR_ARGUMENTS_BAD, "password lengths must satisfy 1 <= min <= max <= 255")


# ---- FIPS mode ---------------------------------------------------------------------------------------------
# What a FIPS-mode token refuses, per mechanism: the functions (CKF_* flags) no longer approved. Triple-DES
# encryption/generation and PKCS#1 v1.5 encryption are disallowed after 2023 (NIST SP 800-131A rev. 2); decrypting
# and unwrapping legacy data stays possible, as CloudHSM's FIPS clusters allow. Mechanisms that are not registered
# (yet) are simply absent: the table is keyed by number, so a mechanism family landing later is covered.
FIPS_REFUSED: dict[int, int] = {
    ck.CKM_DES3_KEY_GEN: ck.CKF_GENERATE,
    ck.CKM_DES3_ECB: ck.CKF_ENCRYPT | ck.CKF_WRAP,
    ck.CKM_DES3_CBC: ck.CKF_ENCRYPT | ck.CKF_WRAP,
    ck.CKM_DES3_CBC_PAD: ck.CKF_ENCRYPT | ck.CKF_WRAP,
    ck.CKM_RSA_PKCS: ck.CKF_ENCRYPT | ck.CKF_WRAP,
}

# The flags naming functions (the rest of CK_MECHANISM_INFO.flags describe properties such as CKF_EC_*).
FUNCTION_FLAGS = (ck.CKF_ENCRYPT | ck.CKF_DECRYPT | ck.CKF_DIGEST | ck.CKF_SIGN | ck.CKF_SIGN_RECOVER
                  | ck.CKF_VERIFY | ck.CKF_VERIFY_RECOVER | ck.CKF_GENERATE | ck.CKF_GENERATE_KEY_PAIR
                  | ck.CKF_WRAP | ck.CKF_UNWRAP | ck.CKF_DERIVE)


def mechanism_flags(mechanism: int, flags: int, fips: bool) -> int:
    """The flags C_GetMechanismInfo reports, and the functions the token allows, in this token's mode."""
    return flags & ~FIPS_REFUSED.get(mechanism, 0) if fips else flags


def listed(mechanism: int, flags: int, fips: bool) -> bool:
    """C_GetMechanismList leaves out mechanisms with no function left."""
    return bool(mechanism_flags(mechanism, flags, fips) & FUNCTION_FLAGS)
