"""HMAC mechanisms (PKCS#11 v3.0 sections 2.20-2.22, 2.25): CKM_SHA*_HMAC, CKM_SHA3_*_HMAC and their _GENERAL forms.

Keys are CKK_GENERIC_SECRET or the CKK_SHA*_HMAC / CKK_SHA3_*_HMAC type matching the hash. The MAC is computed by
the standard library's OpenSSL-backed `hmac` (one C call for a single-part operation); the _GENERAL variants keep
the first CK_MAC_GENERAL_PARAMS bytes. Verification compares in constant time; a MAC of the wrong length is
CKR_SIGNATURE_LEN_RANGE.
"""

from __future__ import annotations

import functools
import hmac

from pyhsm import constants as ck
from pyhsm.mechanisms.generic import HASHLIB, MacVerifyOp, param_invalid
from pyhsm.mechanisms.params import MechanismParam, ParamKind
from pyhsm.mechanisms.registry import KeyView, Mechanism, MechanismInfo, register

MAX_KEY_BYTES = 512  # key sizes of the HMAC mechanisms are reported in bytes


class HmacSignOp:
    """A single-part call is one `hmac.digest` (OpenSSL's one-shot HMAC); Update calls feed an `hmac.new` context."""

    __slots__ = ("_ctx", "_hash_name", "_length", "_secret")

    def __init__(self, secret: bytes, hash_name: str, length: int) -> None:
        self._secret, self._hash_name, self._length = secret, hash_name, length
        self._ctx: hmac.HMAC | None = None

    def update(self, data: bytes) -> None:
        if self._ctx is None:
            self._ctx = hmac.new(self._secret, digestmod=self._hash_name)
        self._ctx.update(data)

    def final(self) -> bytes:
        ctx = self._ctx or hmac.new(self._secret, digestmod=self._hash_name)
        return ctx.digest()[:self._length]

    def oneshot(self, data: bytes) -> bytes:
        return hmac.digest(self._secret, data, self._hash_name)[:self._length]


class Hmac(Mechanism):
    hash_ckm: int
    info = MechanismInfo(1, MAX_KEY_BYTES, ck.CKF_SIGN | ck.CKF_VERIFY)

    @functools.cached_property
    def _hash(self) -> tuple[str, int]:
        """(hashlib name, digest length), looked up once: mechanisms are singletons, Inits are many."""
        probe = HASHLIB[self.hash_ckm]()
        return probe.name, probe.digest_size

    def mac_len(self, param: MechanismParam) -> int:
        return self._hash[1]

    def _op(self, key: KeyView, param: MechanismParam) -> tuple[HmacSignOp, int]:
        length = self.mac_len(param)
        return HmacSignOp(bytes(key.attrs[ck.CKA_VALUE]), self._hash[0], length), length

    def sign(self, key: KeyView, param: MechanismParam) -> HmacSignOp:
        return self._op(key, param)[0]

    def verify(self, key: KeyView, param: MechanismParam) -> MacVerifyOp:
        return MacVerifyOp(*self._op(key, param))


class HmacGeneral(Hmac):
    param_kind = ParamKind.ULONG

    def check_param(self, param: MechanismParam) -> None:
        self.mac_len(param)

    def mac_len(self, param: MechanismParam) -> int:
        full = self._hash[1]
        if not isinstance(param, int) or isinstance(param, bool) or not 1 <= param <= full:
            raise param_invalid(f"the MAC length must be 1..{full} bytes")
        return param


def _keys(hmac_key_type: int) -> frozenset[int]:
    return frozenset({ck.CKK_GENERIC_SECRET, hmac_key_type})


@register
class Sha1Hmac(Hmac):
    ckm, hash_ckm, key_types = ck.CKM_SHA_1_HMAC, ck.CKM_SHA_1, _keys(ck.CKK_SHA_1_HMAC)


@register
class Sha224Hmac(Hmac):
    ckm, hash_ckm, key_types = ck.CKM_SHA224_HMAC, ck.CKM_SHA224, _keys(ck.CKK_SHA224_HMAC)


@register
class Sha256Hmac(Hmac):
    ckm, hash_ckm, key_types = ck.CKM_SHA256_HMAC, ck.CKM_SHA256, _keys(ck.CKK_SHA256_HMAC)


@register
class Sha384Hmac(Hmac):
    ckm, hash_ckm, key_types = ck.CKM_SHA384_HMAC, ck.CKM_SHA384, _keys(ck.CKK_SHA384_HMAC)


@register
class Sha512Hmac(Hmac):
    ckm, hash_ckm, key_types = ck.CKM_SHA512_HMAC, ck.CKM_SHA512, _keys(ck.CKK_SHA512_HMAC)


@register
class Sha1HmacGeneral(HmacGeneral):
    ckm, hash_ckm, key_types = ck.CKM_SHA_1_HMAC_GENERAL, ck.CKM_SHA_1, _keys(ck.CKK_SHA_1_HMAC)


@register
class Sha224HmacGeneral(HmacGeneral):
    ckm, hash_ckm, key_types = ck.CKM_SHA224_HMAC_GENERAL, ck.CKM_SHA224, _keys(ck.CKK_SHA224_HMAC)


@register
class Sha256HmacGeneral(HmacGeneral):
    ckm, hash_ckm, key_types = ck.CKM_SHA256_HMAC_GENERAL, ck.CKM_SHA256, _keys(ck.CKK_SHA256_HMAC)


@register
class Sha384HmacGeneral(HmacGeneral):
    ckm, hash_ckm, key_types = ck.CKM_SHA384_HMAC_GENERAL, ck.CKM_SHA384, _keys(ck.CKK_SHA384_HMAC)


@register
class Sha512HmacGeneral(HmacGeneral):
    ckm, hash_ckm, key_types = ck.CKM_SHA512_HMAC_GENERAL, ck.CKM_SHA512, _keys(ck.CKK_SHA512_HMAC)


# SHA-3 (v3.0 section 2.25): (CKM_SHA3_*_HMAC, CKM_SHA3_*_HMAC_GENERAL, hash, key type).
_SHA3 = (
    (ck.CKM_SHA3_224_HMAC, ck.CKM_SHA3_224_HMAC_GENERAL, ck.CKM_SHA3_224, ck.CKK_SHA3_224_HMAC),
    (ck.CKM_SHA3_256_HMAC, ck.CKM_SHA3_256_HMAC_GENERAL, ck.CKM_SHA3_256, ck.CKK_SHA3_256_HMAC),
    (ck.CKM_SHA3_384_HMAC, ck.CKM_SHA3_384_HMAC_GENERAL, ck.CKM_SHA3_384, ck.CKK_SHA3_384_HMAC),
    (ck.CKM_SHA3_512_HMAC, ck.CKM_SHA3_512_HMAC_GENERAL, ck.CKM_SHA3_512, ck.CKK_SHA3_512_HMAC),
)
for _mac, _general, _hash, _key_type in _SHA3:
    register(type(f"Hmac_{_mac:X}", (Hmac,), {"ckm": _mac, "hash_ckm": _hash, "key_types": _keys(_key_type)}))
    register(type(f"HmacGeneral_{_general:X}", (HmacGeneral,),
                  {"ckm": _general, "hash_ckm": _hash, "key_types": _keys(_key_type)}))
