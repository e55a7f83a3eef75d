"""Offers of operations the engine has authorised to a native data plane (csrc/dataplane.c).

After an Init succeeds, the engine offers (session, kind, mechanism, key) with the key material and the store's
change stamp taken *before* the checks: the data plane may then start the same operation by itself until any call
that can change an authorisation, or any commit to the token by any process, voids the offer. What is never
offered: keys that need CKA_ALWAYS_AUTHENTICATE or a quorum approval per use (each use must reach the engine), and
anything when the store has no change stamp.

The engine knows nothing of cffi: the ABI layer installs `sink` and `supports` (pyhsm/pkcs11/native.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyhsm import constants as ck
from pyhsm.engine.approvals import KEY_QUORUM_ATTR
from pyhsm.engine.objects import P11Object
from pyhsm.engine.policy import SERVICE_KEY_USAGE
from pyhsm.engine.session import OpKind, Session

Stamp = tuple[str, bytes]
# sink(session, kind, mechanism, key handle, key material, stamp) -> 1 taken, 0 not now, NEVER for this key
Sink = Callable[[int, OpKind, int, int, bytes, Stamp | None], int]
NEVER = -1


def key_material(key: P11Object) -> bytes:
    """The key as libcrypto reads it: DER PKCS#8 (private), DER SubjectPublicKeyInfo (public), the value (secret).
    Cached with the key's parsed forms: it lives exactly as long as this version of the object."""
    return bytes(key.cached("native.material", lambda: _encode(key)))


def _encode(key: P11Object) -> bytes:
    if key.object_class == ck.CKO_SECRET_KEY:
        return bytes(key.attrs[ck.CKA_VALUE])
    from cryptography.hazmat.primitives import serialization

    from pyhsm.objects.key_material import private_key_to_pkcs8

    if key.object_class == ck.CKO_PRIVATE_KEY:
        return private_key_to_pkcs8(key.attrs)
    public: Any
    if key.attrs.get(ck.CKA_KEY_TYPE) == ck.CKK_RSA:
        from pyhsm.mechanisms import rsa_keys

        public = rsa_keys.public_key(key)
    else:
        from pyhsm.mechanisms import ec

        public = ec.public_key(key)
    return bytes(public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))


class NativeOffers:
    def __init__(self) -> None:
        self.sink: Sink | None = None
        self.supports: Callable[[OpKind, int], bool] = lambda kind, mechanism: False
        self._supported: dict[tuple[OpKind, int], bool] = {}

    def wanted(self, kind: OpKind, mechanism: int) -> bool:
        """Whether an Init of this kind and mechanism could be handed over: then take the stamp before checking."""
        if self.sink is None:
            return False
        known = self._supported.get((kind, mechanism))
        if known is None:
            known = self._supported[(kind, mechanism)] = self.supports(kind, mechanism)
        return known

    def offer(self, session: Session, kind: OpKind, mechanism: int, stamp: Stamp | None,
              key_handle: int = 0, key: P11Object | None = None) -> None:
        if self.sink is None:
            return
        if key is None:  # a digest: there is nothing to authorise but the session
            self.sink(session.handle, kind, mechanism, 0, b"", None)
            return
        if stamp is None or _checked_at_every_use(key):
            return
        refused: set[tuple[OpKind, int]] = key.cached("native.refused", set)
        if (kind, mechanism) in refused:
            return
        try:
            material = key_material(key)
        except Exception:  # a key the native code cannot take (an odd curve, say) stays with the engine
            refused.add((kind, mechanism))
            return
        if self.sink(session.handle, kind, mechanism, key_handle, material, stamp) == NEVER:
            refused.add((kind, mechanism))


def _checked_at_every_use(key: P11Object) -> bool:
    """Keys each use of which must reach the engine: CKA_ALWAYS_AUTHENTICATE, a quorum approval per use."""
    quorum = int(key.attrs.get(KEY_QUORUM_ATTR[SERVICE_KEY_USAGE], 0))
    return bool(key.attrs.get(ck.CKA_ALWAYS_AUTHENTICATE)) or quorum > 1
