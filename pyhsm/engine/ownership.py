"""Who may see, use and manage an object (AWS CloudHSM's key ownership model, docs/architecture.md).

- The crypto user who creates, generates, imports, unwraps, derives or copies an object owns it
  (CKA_PYHSM_OWNER). Objects created without a login, and objects from before users existed, belong to the
  default crypto user. Objects an admin creates (the SO may create public objects only, e.g. a trusted wrapping
  key) belong to the token: every user may see and use them, only admins may change or destroy them.
- The owner may share a private or secret key with other crypto users (CKA_PYHSM_SHARED_USERS). Shared users may
  use it (encrypt, decrypt, sign, verify, MAC, wrap and unwrap *with* it) and read its attributes; only the owner
  may destroy, modify, copy, wrap (export), derive from, share or unshare it.
- Public objects (CKA_PRIVATE false) other than private and secret keys are visible to everyone; another user's
  private objects and private/secret keys are invisible (CKR_OBJECT_HANDLE_INVALID, as if they did not exist).
- Admins never use keys (CKR_KEY_FUNCTION_NOT_PERMITTED).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pyhsm import constants as ck
from pyhsm.engine.accounts import ADMIN, CRYPTO_USER, DEFAULT_USER
from pyhsm.engine.objects import P11Object
from pyhsm.engine.policy import MAX_QUORUM
from pyhsm.engine.token import Token
from pyhsm.errors import CKRError

KEYS_KEPT_BY_OWNER = (ck.CKO_PRIVATE_KEY, ck.CKO_SECRET_KEY)
QUORUM_ATTRS = (ck.CKA_PYHSM_MANAGE_QUORUM, ck.CKA_PYHSM_USE_QUORUM)


def owner_of(attrs: Mapping[int, Any]) -> str:
    return bytes(attrs.get(ck.CKA_PYHSM_OWNER, b"")).decode("utf-8") or DEFAULT_USER


def shared_with(attrs: Mapping[int, Any]) -> list[str]:
    raw = bytes(attrs.get(ck.CKA_PYHSM_SHARED_USERS, b""))
    return [n for n in raw.decode("utf-8").split(",") if n]


def encode_names(names: Iterable[str]) -> bytes:
    return ",".join(sorted(set(names))).encode()


def acting_name(token: Token) -> str:
    """The crypto user on whose behalf this process acts: the logged-in user, else the default user."""
    return token.username or DEFAULT_USER


def _owned_by_admin(token: Token, attrs: Mapping[int, Any]) -> bool:
    record = token.users().get(owner_of(attrs))
    return record is not None and record.role == ADMIN


def users_of(obj: P11Object) -> frozenset[str]:
    """The owner and shared users, decoded once per object version (every object use asks; the cache is cleared
    whenever the attributes change)."""
    result: frozenset[str] = obj.cached("ownership.users",
                                        lambda: frozenset((owner_of(obj.attrs), *shared_with(obj.attrs))))
    return result


def visible(token: Token, obj: P11Object) -> bool:
    attrs = obj.attrs
    if token.user == ck.CKU_USER and token.username in users_of(obj):
        return True
    if obj.is_private:
        return False
    if obj.object_class in KEYS_KEPT_BY_OWNER and not _owned_by_admin(token, attrs):
        return False
    return True


def require_manager(token: Token, obj: P11Object, refusal: int, action: str) -> None:
    """Only the owner (for token-owned objects: an admin) may `action` the object; shared users may not."""
    if _owned_by_admin(token, obj.attrs):
        if token.user != ck.CKU_SO:
            raise CKRError(refusal, f"only an admin may {action} this object (it belongs to the token)")
        return
    if token.user == ck.CKU_SO or acting_name(token) != owner_of(obj.attrs):
        raise CKRError(refusal, f"only the owner ({owner_of(obj.attrs)}) may {action} this object")


def require_key_user(token: Token) -> None:
    if token.user == ck.CKU_SO:
        raise CKRError(ck.CKR_KEY_FUNCTION_NOT_PERMITTED, "admins manage users; they do not use keys")


def stamp_new_object(token: Token, attrs: dict[int, Any]) -> None:
    """Owner of a new object; check the sharing and quorum values a template may set at creation."""
    owner = token.username or DEFAULT_USER
    attrs[ck.CKA_PYHSM_OWNER] = owner.encode()
    if ck.CKA_PYHSM_SHARED_USERS in attrs:
        names = shared_with(attrs)
        for name in names:
            check_share_target(token, owner, name)
        attrs[ck.CKA_PYHSM_SHARED_USERS] = encode_names(names)
    check_quorum_values(attrs)


def check_share_target(token: Token, owner: str, name: str) -> None:
    record = token.users().get(name)
    if record is None or record.role != CRYPTO_USER:
        raise CKRError(ck.CKR_ARGUMENTS_BAD, f"{name!r} is not a crypto user of this token")
    if name == owner:
        raise CKRError(ck.CKR_ARGUMENTS_BAD, "a key is not shared with its own owner")


def check_quorum_values(attrs: Mapping[int, Any], shared: int | None = None) -> None:
    """Per-key quorum values: at most 8 and at most the number of users who can approve (owner + shared)."""
    approvers = 1 + (len(shared_with(attrs)) if shared is None else shared)
    for attr in QUORUM_ATTRS:
        value = int(attrs.get(attr, 0))
        if value > MAX_QUORUM:
            raise CKRError(ck.CKR_ATTRIBUTE_VALUE_INVALID, f"key quorum values are at most {MAX_QUORUM}")
        if value > approvers:
            raise CKRError(ck.CKR_ATTRIBUTE_VALUE_INVALID if shared is None else ck.CKR_ACTION_PROHIBITED,
                           f"a key quorum value of {value} needs that many users among owner and shared users "
                           f"(there are {approvers})")
