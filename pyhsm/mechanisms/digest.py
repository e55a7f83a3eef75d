"""Message digests: CKM_SHA_1, CKM_SHA224/256/384/512 and CKM_SHA3_224/256/384/512 (hashlib, i.e. OpenSSL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyhsm import constants as ck
from pyhsm.mechanisms.generic import HASHLIB
from pyhsm.mechanisms.params import MechanismParam
from pyhsm.mechanisms.registry import Mechanism, MechanismInfo, register


class DigestOp:
    __slots__ = ("_ctx", "_new")

    def __init__(self, new: Callable[..., Any]) -> None:
        self._new = new
        self._ctx: Any = None

    def update(self, data: bytes) -> None:
        if self._ctx is None:
            self._ctx = self._new()
        self._ctx.update(data)

    def final(self) -> bytes:
        ctx = self._ctx if self._ctx is not None else self._new()
        return bytes(ctx.digest())

    def oneshot(self, data: bytes) -> bytes:
        return bytes(self._new(data).digest())


class Digest(Mechanism):
    info = MechanismInfo(0, 0, ck.CKF_DIGEST)

    def digest(self, param: MechanismParam) -> DigestOp:
        return DigestOp(HASHLIB[self.ckm])


@register
class Sha1(Digest):
    ckm = ck.CKM_SHA_1


@register
class Sha224(Digest):
    ckm = ck.CKM_SHA224


@register
class Sha256(Digest):
    ckm = ck.CKM_SHA256


@register
class Sha384(Digest):
    ckm = ck.CKM_SHA384


@register
class Sha512(Digest):
    ckm = ck.CKM_SHA512


@register
class Sha3_224(Digest):
    ckm = ck.CKM_SHA3_224


@register
class Sha3_256(Digest):
    ckm = ck.CKM_SHA3_256


@register
class Sha3_384(Digest):
    ckm = ck.CKM_SHA3_384


@register
class Sha3_512(Digest):
    ckm = ck.CKM_SHA3_512
