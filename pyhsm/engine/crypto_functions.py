"""Encryption, decryption, digest, signing and verification functions (PKCS#11 v3.0 sections 5.8–5.13).

The engine checks the key and the policy (usage attributes, key type, CKA_ALLOWED_MECHANISMS,
CKA_ALWAYS_AUTHENTICATE); the mechanism does the cryptography; the session applies the operation rules.
"""

from __future__ import annotations

from pyhsm import constants as ck
from pyhsm.engine import approvals, ownership, policy
from pyhsm.engine.native_offers import NativeOffers
from pyhsm.engine.object_functions import ObjectFunctions
from pyhsm.engine.objects import P11Object
from pyhsm.engine.session import Operation, OpKind, Output, Session, Stage
from pyhsm.errors import CKRError
from pyhsm.mechanisms import registry
from pyhsm.mechanisms.params import MechanismParam

# Which key attribute permits which operation, and which mechanism flag advertises it.
USAGE = {
    OpKind.ENCRYPT: (ck.CKA_ENCRYPT, ck.CKF_ENCRYPT),
    OpKind.DECRYPT: (ck.CKA_DECRYPT, ck.CKF_DECRYPT),
    OpKind.SIGN: (ck.CKA_SIGN, ck.CKF_SIGN),
    OpKind.VERIFY: (ck.CKA_VERIFY, ck.CKF_VERIFY),
}

# The mechanism method that starts each kind of operation (kind.value is a Python-level property: slow per call).
_METHOD = {kind: kind.value for kind in USAGE}


class CryptoFunctions(ObjectFunctions):
    native = NativeOffers()  # offers nothing until the ABI layer connects the data plane (pyhsm/pkcs11/native.py)

    def usable_key(self, session: Session, mech: registry.Mechanism, key_handle: int, usage_attr: int,
                   invalid: int = ck.CKR_KEY_HANDLE_INVALID) -> P11Object:
        """Find a key and check it may be used with this mechanism for this purpose."""
        key = self.object(session, key_handle, invalid)
        ownership.require_key_user(session.token)
        if key.object_class not in (ck.CKO_PUBLIC_KEY, ck.CKO_PRIVATE_KEY, ck.CKO_SECRET_KEY):
            raise CKRError(invalid, "not a key")
        if key.attrs.get(ck.CKA_KEY_TYPE) not in mech.key_types:
            raise CKRError(ck.CKR_KEY_TYPE_INCONSISTENT)
        if not key.attrs.get(usage_attr, False):
            raise CKRError(ck.CKR_KEY_FUNCTION_NOT_PERMITTED)
        allowed = key.attrs.get(ck.CKA_ALLOWED_MECHANISMS, ())
        if allowed and mech.ckm not in allowed:
            raise CKRError(ck.CKR_MECHANISM_INVALID, "not in the key's CKA_ALLOWED_MECHANISMS")
        approvals.require_key_quorum(session.token, key, policy.SERVICE_KEY_USAGE, ck.CKR_KEY_FUNCTION_NOT_PERMITTED,
                                     session.handle)
        return session.token.unseal(key)

    def _mechanism(self, session: Session, mechanism: int, flag: int, param: MechanismParam) -> registry.Mechanism:
        mech = registry.lookup(mechanism)
        if not mech.info.flags & flag:
            raise CKRError(ck.CKR_MECHANISM_INVALID)
        if not policy.mechanism_flags(mechanism, mech.info.flags, session.token.fips) & flag:
            raise CKRError(ck.CKR_MECHANISM_INVALID, "not allowed in this token's FIPS mode")
        mech.check_param(param)
        return mech

    def crypto_init(self, kind: OpKind, handle: int, mechanism: int, param: MechanismParam,
                    key_handle: int) -> None:
        session = self.session(handle)
        with session.lock:
            if kind in session.ops:
                raise CKRError(ck.CKR_OPERATION_ACTIVE)
            usage_attr, flag = USAGE[kind]
            # Taken before the checks: an offer must never outlive a change the checks did not see.
            stamp = session.token.store_stamp() if self.native.wanted(kind, mechanism) else None
            mech = self._mechanism(session, mechanism, flag, param)
            key = self.usable_key(session, mech, key_handle, usage_attr)
            impl = getattr(mech, _METHOD[kind])(key, param)
            needs_login = kind in (OpKind.SIGN, OpKind.DECRYPT) and bool(key.attrs.get(ck.CKA_ALWAYS_AUTHENTICATE))
            session.start(Operation(kind, impl, key, needs_context_login=needs_login))
            if stamp is not None:
                self.native.offer(session, kind, mechanism, stamp, key_handle, key)

    def digest_init(self, handle: int, mechanism: int, param: MechanismParam) -> None:
        session = self.session(handle)
        with session.lock:
            if OpKind.DIGEST in session.ops:
                raise CKRError(ck.CKR_OPERATION_ACTIVE)
            mech = self._mechanism(session, mechanism, ck.CKF_DIGEST, param)
            session.start(Operation(OpKind.DIGEST, mech.digest(param)))
            if self.native.wanted(OpKind.DIGEST, mechanism):
                self.native.offer(session, OpKind.DIGEST, mechanism, None)

    def end_operation(self, kind: OpKind, handle: int) -> None:
        """End an operation whose call failed before it reached the engine (the ABI refused its arguments)."""
        session = self.session(handle)
        with session.lock:
            session.end(kind)

    # ---- data-producing steps: encrypt, decrypt, sign, digest ---------------------------------------------
    def single(self, kind: OpKind, handle: int, data: bytes, capacity: int | None) -> Output:
        session = self.session(handle)
        with session.lock:
            return session.produce(kind, Stage.SINGLE, capacity, lambda op: op.impl.oneshot(data), ends=True)

    def update(self, kind: OpKind, handle: int, data: bytes, capacity: int | None) -> Output:
        """EncryptUpdate / DecryptUpdate: output as whole blocks become ready."""
        session = self.session(handle)
        with session.lock:
            return session.produce(kind, Stage.MULTI, capacity, lambda op: op.impl.update(data), ends=False)

    def final(self, kind: OpKind, handle: int, capacity: int | None) -> Output:
        session = self.session(handle)
        with session.lock:
            return session.produce(kind, Stage.MULTI, capacity, lambda op: op.impl.final(), ends=True)

    def absorb(self, kind: OpKind, handle: int, data: bytes) -> None:
        """SignUpdate / VerifyUpdate / DigestUpdate: input only."""
        session = self.session(handle)
        with session.lock:
            session.consume(kind, Stage.MULTI, lambda op: op.impl.update(data), ends=False)

    def digest_key(self, handle: int, key_handle: int) -> None:
        """C_DigestKey: continue a digest with a secret key's value, which never leaves the token."""
        session = self.session(handle)

        def absorb_key(op: Operation) -> None:  # any error here ends the digest, as for DigestUpdate
            key = self.object(session, key_handle, ck.CKR_KEY_HANDLE_INVALID)
            ownership.require_key_user(session.token)
            if key.object_class != ck.CKO_SECRET_KEY:
                raise CKRError(ck.CKR_KEY_INDIGESTIBLE, "only secret keys can be digested")
            approvals.require_key_quorum(session.token, key, policy.SERVICE_KEY_USAGE,
                                         ck.CKR_KEY_FUNCTION_NOT_PERMITTED, session.handle)
            op.impl.update(bytes(session.token.unseal(key).attrs[ck.CKA_VALUE]))

        with session.lock:
            session.consume(OpKind.DIGEST, Stage.MULTI, absorb_key, ends=False)

    # ---- verification -------------------------------------------------------------------------------------
    def verify(self, handle: int, data: bytes, signature: bytes) -> None:
        session = self.session(handle)
        with session.lock:
            session.consume(OpKind.VERIFY, Stage.SINGLE, lambda op: op.impl.oneshot(data, signature), ends=True)

    def verify_final(self, handle: int, signature: bytes) -> None:
        session = self.session(handle)
        with session.lock:
            session.consume(OpKind.VERIFY, Stage.MULTI, lambda op: op.impl.final(signature), ends=True)
