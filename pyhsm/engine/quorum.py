"""Quorum tokens and quorum values: the engine API behind `pyhsm quorum ...` (rules in approvals.py)."""

from __future__ import annotations

from pyhsm import constants as ck
from pyhsm.engine import approvals, ownership, policy
from pyhsm.engine.accounts import ADMIN
from pyhsm.engine.approvals import QuorumToken
from pyhsm.engine.session import Session
from pyhsm.engine.users import UserFunctions
from pyhsm.errors import CKRError


class QuorumFunctions(UserFunctions):
    def quorum_generate(self, handle: int, service: str, key_handle: int | None = None) -> QuorumToken:
        """A new quorum token for the logged-in user; key services name the key it is for."""
        session = self._logged_in(handle)
        token = session.token
        key_ref = None
        if service in policy.KEY_SERVICES:
            if key_handle is None:
                raise CKRError(ck.CKR_ARGUMENTS_BAD, f"the {service} service needs a key")
            key = self.object(session, key_handle, ck.CKR_KEY_HANDLE_INVALID)
            key_ref = approvals.key_reference(key)
        elif service not in policy.TOKEN_SERVICES:
            services = ", ".join(policy.TOKEN_SERVICES + policy.KEY_SERVICES)
            raise CKRError(ck.CKR_ARGUMENTS_BAD, f"quorum services are {services}")
        assert token.username is not None
        new = approvals.generate(token, service, key_ref, token.username)
        token.record("quorum.generate", handle, obj=new.id, detail={"service": service, "key": key_ref})
        return new

    def quorum_list(self, handle: int) -> list[QuorumToken]:
        return approvals.live_tokens(self._logged_in(handle).token)

    def quorum_approve(self, handle: int, token_id: str, approver: str, signature: bytes) -> QuorumToken:
        """Record one approval: `approver`'s signature over the token's payload (QuorumToken.payload())."""
        session = self.session(handle)
        token = session.token
        token.sync()
        with token.audited("quorum.approve", handle, obj=token_id, detail={"approver": approver}):
            target = approvals.find(token, token_id)
            return approvals.approve(token, token_id, approver, signature, self._eligible(session, target))

    def _eligible(self, session: Session, target: QuorumToken) -> list[str]:
        token = session.token
        if target.key is None:
            return [name for name, record in token.users().items() if record.role == ADMIN]
        keys = [o for o in token.all_objects() if bytes(o.attrs.get(ck.CKA_UNIQUE_ID, b"")).decode() == target.key]
        if not keys:
            raise CKRError(ck.CKR_KEY_HANDLE_INVALID, "the quorum token's key no longer exists")
        return [ownership.owner_of(keys[0].attrs), *ownership.shared_with(keys[0].attrs)]

    def quorum_delete(self, handle: int, token_id: str) -> None:
        session = self._logged_in(handle)
        token = session.token
        target = approvals.find(token, token_id)
        if target.user != token.username and token.user != ck.CKU_SO:
            raise CKRError(ck.CKR_ACTION_PROHIBITED, "only its owner or an admin deletes a quorum token")
        approvals.delete(token, token_id)
        token.record("quorum.delete", handle, obj=token_id)

    def quorum_values(self, handle: int) -> dict[str, int]:
        return dict(self._logged_in(handle).token.settings.quorum)

    def set_quorum_value(self, handle: int, service: str, value: int) -> None:
        """An admin sets a token service's quorum value; once "quorum" is above 1, changing it needs a quorum."""
        session = self._admin(handle)
        token = session.token
        with token.audited("quorum.set-value", handle, detail={"service": service, "value": value}):
            settings = token.settings.with_quorum(service, value)
            admins = sum(1 for r in token.users().values() if r.role == ADMIN)
            if value > admins:
                raise CKRError(ck.CKR_ARGUMENTS_BAD, f"a quorum of {value} needs as many admins (there are {admins})")
            approvals.require_token_quorum(token, policy.SERVICE_QUORUM, handle)
            token.write_meta({policy.SETTINGS_KEY: settings.encode()})
