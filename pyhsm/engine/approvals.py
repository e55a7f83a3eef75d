"""Quorum (M of N) approvals, after AWS CloudHSM's quorum tokens.

A user who wants to perform a quorum-protected action generates a *quorum token* for a service (and, for the key
services, a key). Other users approve it by signing its payload with the private key whose public key they
registered (RSA: PKCS#1 v1.5 with SHA-256; EC: ECDSA with SHA-256, DER, i.e. what `openssl dgst -sha256 -sign`
writes). Once M distinct eligible users approved it, the generating user's next protected action for that service
(and key) consumes it: a token is used once, and expires TOKEN_LIFETIME seconds after it was generated. A user
holds at most one token per service and key; generating another replaces it.

Who may approve: admins for the token services ("user", "quorum"); the key's owner and shared users for the key
services ("key-management", "key-usage"). M is the token's quorum value for the service, or the key's
CKA_PYHSM_MANAGE_QUORUM / CKA_PYHSM_USE_QUORUM; values 0 and 1 mean no quorum.

Tokens live in the token store's metadata under ``quorum/<id>`` so that every process sees them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

from pyhsm import constants as ck
from pyhsm.engine.accounts import ADMIN, DEFAULT_USER
from pyhsm.engine.objects import P11Object
from pyhsm.engine.ownership import owner_of, shared_with
from pyhsm.engine.policy import SERVICE_KEY_MANAGEMENT, SERVICE_KEY_USAGE
from pyhsm.engine.token_users import TokenUsers
from pyhsm.errors import CKRError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

PREFIX = "quorum/"
TOKEN_LIFETIME = 600.0  # seconds: CloudHSM's quorum tokens live ten minutes
MIN_RSA_BITS = 2048
KEY_QUORUM_ATTR = {SERVICE_KEY_MANAGEMENT: ck.CKA_PYHSM_MANAGE_QUORUM, SERVICE_KEY_USAGE: ck.CKA_PYHSM_USE_QUORUM}


@dataclass(frozen=True)
class QuorumToken:
    id: str
    service: str
    key: str | None  # CKA_UNIQUE_ID of the key, for the key services
    user: str  # who generated it: only they can use it
    challenge: str
    created: float
    expires: float
    approvals: tuple[str, ...] = ()

    def payload(self) -> bytes:
        """The bytes approvers sign: everything that identifies what is being approved, for whom, until when."""
        return (f"pyhsm-quorum-token-v1\nid={self.id}\nservice={self.service}\nkey={self.key or '-'}\n"
                f"user={self.user}\nchallenge={self.challenge}\nexpires={int(self.expires)}\n").encode()

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def decode(cls, raw: bytes) -> QuorumToken:
        fields = json.loads(raw)
        fields["approvals"] = tuple(fields["approvals"])
        return cls(**fields)


def load_quorum_key(pem: bytes) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    """A registrable quorum public key: RSA >= 2048 bits or EC P-256/P-384/P-521, PEM (SubjectPublicKeyInfo)."""
    # cryptography's serialization, RSA and EC modules are imported on use: importing them with the engine was a
    # large part of the first C_Initialize, which never needs them.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise CKRError(ck.CKR_ARGUMENTS_BAD, "not a PEM public key") from None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= MIN_RSA_BITS:
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)):
        return key
    raise CKRError(ck.CKR_ARGUMENTS_BAD, "quorum keys are RSA (2048 bits or more) or EC P-256/P-384/P-521")


def signature_valid(pem: str, payload: bytes, signature: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    key = load_quorum_key(pem.encode())
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
        else:
            key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def _all(token: TokenUsers) -> dict[str, QuorumToken]:
    return {k[len(PREFIX):]: QuorumToken.decode(v) for k, v in token.store.all_meta().items() if k.startswith(PREFIX)}


def _expired(tokens: Iterable[QuorumToken], now: float) -> dict[str, bytes | None]:
    return {PREFIX + t.id: None for t in tokens if t.expires <= now}


def live_tokens(token: TokenUsers) -> list[QuorumToken]:
    now = token.clock()
    return sorted((t for t in _all(token).values() if t.expires > now), key=lambda t: t.created)


def generate(token: TokenUsers, service: str, key: str | None, user: str) -> QuorumToken:
    now = token.clock()
    new = QuorumToken(os.urandom(8).hex(), service, key, user, os.urandom(16).hex(), now, now + TOKEN_LIFETIME)
    with token.store.transaction():
        existing = _all(token)
        doomed = _expired(existing.values(), now)
        doomed.update({PREFIX + t.id: None for t in existing.values()
                       if (t.user, t.service, t.key) == (user, service, key)})
        token.store.set_meta({**doomed, PREFIX + new.id: new.encode()})
    token.sync_meta()
    return new


def approve(token: TokenUsers, token_id: str, approver: str, signature: bytes, eligible: Iterable[str]) -> QuorumToken:
    """Record `approver`'s approval of a token after checking their signature over its payload."""
    record = token.users().get(approver)
    if record is None or record.quorum_key is None:
        raise CKRError(ck.CKR_ARGUMENTS_BAD, f"{approver!r} has no registered quorum key")
    if approver not in set(eligible):
        raise CKRError(ck.CKR_ACTION_PROHIBITED, f"{approver!r} may not approve this token")
    with token.store.transaction():
        raw = token.store.all_meta().get(PREFIX + token_id)
        current = QuorumToken.decode(raw) if raw is not None else None
        if current is None or current.expires <= token.clock():
            raise CKRError(ck.CKR_ARGUMENTS_BAD, "no such quorum token (it expired or was used)")
        if approver in current.approvals:
            raise CKRError(ck.CKR_ARGUMENTS_BAD, f"{approver!r} already approved this token")
        if not signature_valid(record.quorum_key, current.payload(), signature):
            raise CKRError(ck.CKR_SIGNATURE_INVALID, "the signature does not verify with the approver's quorum key")
        current = replace(current, approvals=(*current.approvals, approver))
        token.store.set_meta({PREFIX + token_id: current.encode()})
    token.sync_meta()
    return current


def find(token: TokenUsers, token_id: str) -> QuorumToken:
    found = _all(token).get(token_id)
    if found is None or found.expires <= token.clock():
        raise CKRError(ck.CKR_ARGUMENTS_BAD, "no such quorum token (it expired or was used)")
    return found


def delete(token: TokenUsers, token_id: str) -> None:
    token.write_meta({PREFIX + token_id: None})


def consume(token: TokenUsers, service: str, key: str | None, user: str, needed: int,
            eligible: Iterable[str], refusal: int) -> QuorumToken:
    """Use up `user`'s approved token for (service, key), or refuse: the action needs a quorum."""
    eligible = set(eligible)
    with token.store.transaction():
        now = token.clock()
        tokens = _all(token)
        mine = [t for t in tokens.values() if (t.user, t.service, t.key) == (user, service, key)]
        live = [t for t in mine if t.expires > now]
        approved = [t for t in live if len(set(t.approvals) & eligible) >= needed]
        if approved:
            token.store.set_meta({PREFIX + approved[0].id: None, **_expired(mine, now)})
    token.sync_meta()
    if not approved:
        state = ("its quorum token expired" if mine and not live else
                 f"its quorum token has {max(len(set(t.approvals) & eligible) for t in live)} of {needed} approvals"
                 if live else "no quorum token was generated")
        raise CKRError(refusal, f"the {service} service needs a quorum of {needed} approvals here; {state} "
                                "(generate one with quorum token-sign generate, have it approved, then retry)")
    return approved[0]


# ---- the checks protected actions make ----------------------------------------------------------------------
def require_token_quorum(token: TokenUsers, service: str, session: int | None) -> None:
    """Token services ("user", "quorum"): approvals by admins, M = the token's quorum value."""
    needed = token.settings.quorum.get(service, 1)
    if needed <= 1:
        return
    admins = [name for name, record in token.users().items() if record.role == ADMIN]
    used = consume(token, service, None, token.username or "", needed, admins, ck.CKR_ACTION_PROHIBITED)
    token.record("quorum.use", session, obj=used.id, detail={"service": service, "approvals": list(used.approvals)})


def key_reference(key: P11Object) -> str:
    return bytes(key.attrs[ck.CKA_UNIQUE_ID]).decode("ascii", "replace")


def require_key_quorum(token: TokenUsers, key: P11Object, service: str, refusal: int, session: int | None) -> None:
    """Key services: approvals by the key's owner and shared users, M = the key's own quorum value."""
    needed = int(key.attrs.get(KEY_QUORUM_ATTR[service], 0))
    if needed <= 1:
        return
    approvers = [owner_of(key.attrs), *shared_with(key.attrs)]
    used = consume(token, service, key_reference(key), token.username or DEFAULT_USER, needed, approvers, refusal)
    token.record("quorum.use", session, obj=used.id,
                 detail={"service": service, "key": f"0x{key.handle:x}", "approvals": list(used.approvals)})
