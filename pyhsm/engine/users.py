"""User management and key sharing: the engine API behind `pyhsm user ...` and `pyhsm key share/unshare`.

Every call takes the handle of a session on the token, like the C_* functions, and raises CKRError. Who may do what
(CloudHSM's rules): any logged-in user lists users and changes their own password or quorum key; admins create and
delete users, reset other users' passwords and change the token's password policy and quotas (quorum service
"user"); a key's owner shares and unshares it (quorum service "key-management" of that key).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pyhsm import constants as ck
from pyhsm.engine import approvals, ownership, policy
from pyhsm.engine.accounts import ADMIN, PasswordPolicy, UserRecord, check_name, check_role
from pyhsm.engine.key_functions import KeyFunctions
from pyhsm.engine.session import Session
from pyhsm.engine.token import Token
from pyhsm.errors import CKRError


@dataclass(frozen=True)
class UserInfo:
    name: str
    role: str  # "admin" or "crypto-user"
    locked: bool
    has_quorum_key: bool


@dataclass(frozen=True)
class KeySharing:
    owner: str
    shared_users: tuple[str, ...]
    manage_quorum: int
    use_quorum: int


def _existing_user(token: Token, name: str) -> UserRecord:
    record = token.users().get(name)
    if record is None:
        raise CKRError(ck.CKR_ARGUMENTS_BAD, f"no user {name!r}")
    return record


class UserFunctions(KeyFunctions):
    # ---- who is calling ---------------------------------------------------------------------------------------
    def _logged_in(self, handle: int) -> Session:
        session = self.session(handle)
        if session.token.user is None or session.token.username is None:
            raise CKRError(ck.CKR_USER_NOT_LOGGED_IN, "log in first")
        session.token.sync()
        return session

    def _admin(self, handle: int) -> Session:
        session = self._logged_in(handle)
        if session.token.user != ck.CKU_SO:
            raise CKRError(ck.CKR_USER_TYPE_INVALID, "only an admin may do this")
        if not session.rw:
            raise CKRError(ck.CKR_SESSION_READ_ONLY)
        return session

    def whoami(self, handle: int) -> tuple[str, str] | None:
        """(name, role) of the user logged in to this session's token, or None."""
        token = self.session(handle).token
        if token.user is None or token.username is None:
            return None
        return token.username, ADMIN if token.user == ck.CKU_SO else "crypto-user"

    # ---- users --------------------------------------------------------------------------------------------------
    def list_users(self, handle: int) -> list[UserInfo]:
        token = self._logged_in(handle).token
        return [UserInfo(r.name, r.role, r.locked, r.quorum_key is not None)
                for r in sorted(token.users().values(), key=lambda r: r.name)]

    def create_user(self, handle: int, name: str, role: str, password: bytes) -> UserInfo:
        session = self._admin(handle)
        token = session.token
        name, role = check_name(name), check_role(role)
        token.settings.password.check(password)
        with token.audited("user.create", handle, obj=name, detail={"role": role}):
            if name in token.users():
                raise CKRError(ck.CKR_ARGUMENTS_BAD, f"user {name!r} already exists")
            limit = token.settings.limits.max_users
            if len(token.users()) >= limit:
                raise CKRError(ck.CKR_DEVICE_MEMORY, f"the token holds its quota of {limit} users")
            approvals.require_token_quorum(token, policy.SERVICE_USER, handle)
            token.put_user(token.new_account(name, role, password, managed=True))
        return UserInfo(name, role, False, False)

    def delete_user(self, handle: int, name: str) -> None:
        session = self._admin(handle)
        token = session.token
        name = check_name(name)
        with token.audited("user.delete", handle, obj=name):
            record = _existing_user(token, name)
            if name == token.username:
                raise CKRError(ck.CKR_ACTION_PROHIBITED, "you cannot delete the user you are logged in as")
            if record.role == ADMIN and sum(r.role == ADMIN for r in token.users().values()) == 1:
                raise CKRError(ck.CKR_ACTION_PROHIBITED, "the last admin cannot be deleted")
            owned = [o for o in token.objects.values() if ownership.owner_of(o.attrs) == name]
            if owned:
                raise CKRError(ck.CKR_ACTION_PROHIBITED, f"{name!r} owns {len(owned)} object(s) on the token: "
                                                         "they must be deleted first")
            approvals.require_token_quorum(token, policy.SERVICE_USER, handle)
            self._forget_shares(session, name)
            token.remove_user(name)

    def _forget_shares(self, session: Session, name: str) -> None:
        """A deleted user's access to keys shared with them goes with them."""
        for obj in list(session.token.objects.values()):
            shared = ownership.shared_with(obj.attrs)
            if name in shared:
                remaining = ownership.encode_names(n for n in shared if n != name)
                self.save_attributes(session, obj, {ck.CKA_PYHSM_SHARED_USERS: remaining})

    def change_password(self, handle: int, name: str, new_password: bytes) -> None:
        """Your own password, or (admins) anyone's: which also unlocks a locked account."""
        session = self._logged_in(handle)
        token = session.token
        name = check_name(name)
        with token.audited("user.change-password", handle, obj=name):
            _existing_user(token, name)
            token.settings.password.check(new_password)
            if name != token.username:
                if token.user != ck.CKU_SO:
                    raise CKRError(ck.CKR_USER_TYPE_INVALID, "only admins change other users' passwords")
                approvals.require_token_quorum(token, policy.SERVICE_USER, handle)
            assert token.token_key is not None
            token.set_password(name, new_password, token.token_key)

    def register_quorum_key(self, handle: int, public_key_pem: bytes) -> None:
        """Register (or replace) the logged-in user's quorum public key (PEM)."""
        token = self._logged_in(handle).token
        approvals.load_quorum_key(public_key_pem)
        assert token.username is not None
        token.put_user(replace(token.users()[token.username], quorum_key=public_key_pem.decode("ascii")))
        token.record("user.register-quorum-key", handle, obj=token.username)

    # ---- token settings ------------------------------------------------------------------------------------------
    def get_settings(self, handle: int) -> policy.Settings:
        return self._logged_in(handle).token.settings

    def _change_settings(self, session: Session, settings: policy.Settings, event: str,
                         detail: dict[str, object]) -> None:
        token = session.token
        with token.audited(event, session.handle, detail=detail):
            approvals.require_token_quorum(token, policy.SERVICE_USER, session.handle)
            token.write_meta({policy.SETTINGS_KEY: settings.encode()})

    def set_password_policy(self, handle: int, min_len: int, max_len: int) -> None:
        session = self._admin(handle)
        new = PasswordPolicy(min_len, max_len)
        policy.check_password_policy(new)
        self._change_settings(session, replace(session.token.settings, password=new), "token.set-password-policy",
                              {"min": min_len, "max": max_len})

    def set_limits(self, handle: int, max_keys: int | None = None, max_users: int | None = None,
                   max_sessions: int | None = None) -> None:
        session = self._admin(handle)
        current = session.token.settings
        changes = {k: v for k, v in (("max_keys", max_keys), ("max_users", max_users),
                                     ("max_sessions", max_sessions)) if v is not None}
        limits = replace(current.limits, **changes)
        limits.check()
        self._change_settings(session, replace(current, limits=limits), "token.set-limits", dict(changes))

    # ---- key sharing -----------------------------------------------------------------------------------------------
    def key_sharing(self, handle: int, key_handle: int) -> KeySharing:
        obj = self.object(self.session(handle), key_handle, ck.CKR_KEY_HANDLE_INVALID)
        return KeySharing(ownership.owner_of(obj.attrs), tuple(ownership.shared_with(obj.attrs)),
                          int(obj.attrs.get(ck.CKA_PYHSM_MANAGE_QUORUM, 0)),
                          int(obj.attrs.get(ck.CKA_PYHSM_USE_QUORUM, 0)))

    def share_key(self, handle: int, key_handle: int, name: str) -> None:
        self._change_sharing(handle, key_handle, check_name(name), share=True)

    def unshare_key(self, handle: int, key_handle: int, name: str) -> None:
        self._change_sharing(handle, key_handle, check_name(name), share=False)

    def _change_sharing(self, handle: int, key_handle: int, name: str, share: bool) -> None:
        session = self._logged_in(handle)
        token: Token = session.token
        obj = self.object(session, key_handle, ck.CKR_KEY_HANDLE_INVALID)
        event = "key.share" if share else "key.unshare"
        try:
            if obj.object_class not in ownership.KEYS_KEPT_BY_OWNER:
                raise CKRError(ck.CKR_KEY_TYPE_INCONSISTENT, "only private and secret keys are shared")
            ownership.require_manager(token, obj, ck.CKR_ACTION_PROHIBITED, "share or unshare")
            self._check_may_store(session, obj.attrs)
            shared = ownership.shared_with(obj.attrs)
            if share:
                ownership.check_share_target(token, ownership.owner_of(obj.attrs), name)
                if name in shared:
                    raise CKRError(ck.CKR_ARGUMENTS_BAD, f"the key is already shared with {name!r}")
                shared.append(name)
            else:
                if name not in shared:
                    raise CKRError(ck.CKR_ARGUMENTS_BAD, f"the key is not shared with {name!r}")
                shared.remove(name)
                ownership.check_quorum_values(obj.attrs, shared=len(shared))
            approvals.require_key_quorum(token, obj, policy.SERVICE_KEY_MANAGEMENT, ck.CKR_ACTION_PROHIBITED, handle)
            self.save_attributes(session, obj, {ck.CKA_PYHSM_SHARED_USERS: ownership.encode_names(shared)})
        except CKRError as exc:
            self.audit_object(session, event, obj, result=exc, detail={"user": name})
            raise
        self.audit_object(session, event, obj, detail={"user": name})
