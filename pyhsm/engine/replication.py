"""Key replication between tokens of one lineage (a token and the tokens restored from its backups).

Tokens of a lineage share the token key, so a key's sealed values are copied as they are: the secret never
appears in plaintext, not even in memory, and needs no wrapping key, so non-extractable keys replicate too (as
CloudHSM replicates keys between clusters restored from one backup). Every attribute travels, CKA_UNIQUE_ID
included: it names the same key on every token of the lineage, which makes replication idempotent.

Replication is refused between lineages; a lineage id is a fingerprint of the token key, computed from the key
itself on both sides, so equal ids prove equal keys.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass

from pyhsm import constants as ck
from pyhsm.engine import Engine
from pyhsm.engine.backup import lineage, logged_in
from pyhsm.engine.objects import P11Object

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
        chosen = sorted((h, o) for h, o in src.objects.items() if o.object_class in KEY_CLASSES and select(h, o))
        if not chosen:
            raise ReplicationError("no key on the source token matches the filter")
        if len(chosen) > 1 and not allow_many:
            raise ReplicationError(f"the filter matches {len(chosen)} keys; refine it to select one key, or "
                                   "replicate them all on purpose")
        present = {bytes(o.attrs[ck.CKA_UNIQUE_ID]): h for h, o in dst.objects.items() if ck.CKA_UNIQUE_ID in o.attrs}
        done = []
        for handle, obj in chosen:
            existing = present.get(bytes(obj.attrs[ck.CKA_UNIQUE_ID]))
            if existing is not None:
                done.append(Replicated(handle, existing, _public_attrs(obj), copied=False))
                continue
            copy = dst.add_token_object(dict(obj.attrs))  # sealed values stay sealed, byte for byte
            done.append(Replicated(handle, copy.handle, _public_attrs(obj), copied=True))
        return done
