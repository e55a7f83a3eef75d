"""Key replication between tokens of one lineage (a token and the tokens restored from its backups).

Tokens of a lineage share the token key, so a key's sealed values are copied as they are: the secret never
appears in plaintext, not even in memory, and needs no wrapping key, so non-extractable keys replicate too (as
CloudHSM replicates keys between clusters restored from one backup). Every attribute travels, CKA_UNIQUE_ID
included: it names the same key on every token of the lineage, which makes replication idempotent.

Replication is refused between lineages; a lineage id is a fingerprint of the token key, computed from the key
itself on both sides, so equal ids prove equal keys. As for every other way a key leaves a token, only its owner may
replicate it (CloudHSM's rule for sharing, wrapping and deleting), and the owner and every user it is shared with
must exist on the destination, so the copy keeps its owner and its sharing there.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass

from pyhsm import constants as ck
from pyhsm.engine import Engine
from pyhsm.engine.backup import lineage, logged_in
from pyhsm.engine.objects import P11Object
from pyhsm.engine.ownership import owner_of, require_manager, shared_with, visible
from pyhsm.engine.token import Token
from pyhsm.errors import CKRError

KEY_CLASSES = (ck.CKO_PUBLIC_KEY, ck.CKO_PRIVATE_KEY, ck.CKO_SECRET_KEY)


class ReplicationError(Exception):
    pass


@dataclass(frozen=True)
class Replicated:
    source_handle: int
    destination_handle: int
    attrs: dict[int, object]  # the key's non-sensitive attributes as replicated
    copied: bool  # False: the destination held this key already


def _public_attrs(obj: P11Object) -> dict[int, object]:
    return {t: v for t, v in obj.attrs.items() if t not in obj.schema.sensitive}


def replicate_keys(eng: Engine, source: int, destination: int, pin: bytes, destination_pin: bytes,
                   select: Callable[[int, P11Object], bool], allow_many: bool = False) -> list[Replicated]:
    """Copy the source token's keys chosen by `select(handle, key)` to the destination token.

    Both logins are the user's; more than one matching key needs `allow_many` (a filter that matches more than
    meant is a mistake to report, not to act on)."""
    if source == destination:
        raise ReplicationError("the source and the destination are the same token")
    with logged_in(eng, source, ck.CKU_USER, pin) as src, logged_in(eng, destination, ck.CKU_USER,
                                                                    destination_pin) as dst:
        src_lineage, dst_lineage = lineage(src), lineage(dst)
        if not hmac.compare_digest(src_lineage, dst_lineage):
            raise ReplicationError(f"the tokens are of different lineages ({src_lineage} and {dst_lineage}): keys "
                                   "replicate only between a token and the tokens restored from its backups")
        chosen = sorted((h, o) for h, o in src.objects.items()
                        if o.object_class in KEY_CLASSES and visible(src, o) and select(h, o))
        if not chosen:
            raise ReplicationError("no key on the source token matches the filter")
        if len(chosen) > 1 and not allow_many:
            raise ReplicationError(f"the filter matches {len(chosen)} keys; refine it to select one key, or "
                                   "replicate them all on purpose")
        for _, obj in chosen:
            _check_owner(src, dst, obj)
        present = {bytes(o.attrs[ck.CKA_UNIQUE_ID]): h for h, o in dst.objects.items() if ck.CKA_UNIQUE_ID in o.attrs}
        done = []
        for handle, obj in chosen:
            existing = present.get(bytes(obj.attrs[ck.CKA_UNIQUE_ID]))
            if existing is not None:
                done.append(Replicated(handle, existing, _public_attrs(obj), copied=False))
                continue
            copy = dst.add_token_object(dict(obj.attrs))  # sealed values stay sealed, byte for byte
            detail: dict[str, object] = {"from": _text(src.serial), "to": _text(dst.serial), "unique_id": bytes(
                obj.attrs[ck.CKA_UNIQUE_ID]).decode()}
            src.record("key-replicate", obj=handle, detail=detail)
            dst.record("key-replicate", obj=copy.handle, detail=detail)
            done.append(Replicated(handle, copy.handle, _public_attrs(obj), copied=True))
        return done


def _text(value: bytes) -> str:
    return value.decode(errors="replace").strip()


def _check_owner(src: Token, dst: Token, obj: P11Object) -> None:
    label = bytes(obj.attrs.get(ck.CKA_LABEL, b"")).decode(errors="replace")
    try:
        require_manager(src, obj, ck.CKR_ACTION_PROHIBITED, "replicate")
    except CKRError as exc:
        raise ReplicationError(f"key {label!r}: {exc}") from None
    missing = sorted({owner_of(obj.attrs), *shared_with(obj.attrs)} - set(dst.users()))
    if missing:
        raise ReplicationError(f"key {label!r}: {', '.join(missing)} must exist on the destination token first "
                               "(its owner and every user it is shared with)")
