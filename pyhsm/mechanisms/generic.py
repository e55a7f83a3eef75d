"""Building blocks shared by the mechanism families, and the generic secret key generation mechanism.

The operation classes here are deliberately tiny: each C_*Update / C_*Final crosses into Python, so an operation
holds a couple of slots and calls straight into pyca/cryptography, hashlib or libcrypto.

- `HashSignOp` / `HashVerifyOp`: hash-then-sign mechanisms (CKM_SHA256_RSA_PKCS, CKM_ECDSA_SHA384, ...). A
  single-part call hands the whole message to the library (one call, GIL released); a multi-part operation hashes
  incrementally and signs the digest as `Prehashed`.
- `BufferedSignOp` / `BufferedVerifyOp` / `BufferedCipherOp`: mechanisms defined over one input (raw RSA,
  CKM_ECDSA, key wrap, GCM decryption) accept Update calls by collecting input up to a limit and act at Final.
- `MacSignOp` / `MacVerifyOp`: incremental MACs (HMAC, CMAC); verification compares in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from pyhsm import constants as ck
from pyhsm.errors import CKRError
from pyhsm.mechanisms.params import MechanismParam
from pyhsm.mechanisms.registry import Mechanism, MechanismInfo, SignOp, Template, register

# ---- hash algorithms ------------------------------------------------------------------------------------------
HASH_ALGS: dict[int, hashes.HashAlgorithm] = {
    ck.CKM_SHA_1: hashes.SHA1(),
    ck.CKM_SHA224: hashes.SHA224(),
    ck.CKM_SHA256: hashes.SHA256(),
    ck.CKM_SHA384: hashes.SHA384(),
    ck.CKM_SHA512: hashes.SHA512(),
    ck.CKM_SHA3_224: hashes.SHA3_224(),
    ck.CKM_SHA3_256: hashes.SHA3_256(),
    ck.CKM_SHA3_384: hashes.SHA3_384(),
    ck.CKM_SHA3_512: hashes.SHA3_512(),
}
HASHLIB: dict[int, Callable[..., Any]] = {
    ck.CKM_SHA_1: hashlib.sha1,
    ck.CKM_SHA224: hashlib.sha224,
    ck.CKM_SHA256: hashlib.sha256,
    ck.CKM_SHA384: hashlib.sha384,
    ck.CKM_SHA512: hashlib.sha512,
    ck.CKM_SHA3_224: hashlib.sha3_224,
    ck.CKM_SHA3_256: hashlib.sha3_256,
    ck.CKM_SHA3_384: hashlib.sha3_384,
    ck.CKM_SHA3_512: hashlib.sha3_512,
}
MGF1_HASHES: dict[int, hashes.HashAlgorithm] = {
    ck.CKG_MGF1_SHA1: HASH_ALGS[ck.CKM_SHA_1],
    ck.CKG_MGF1_SHA224: HASH_ALGS[ck.CKM_SHA224],
    ck.CKG_MGF1_SHA256: HASH_ALGS[ck.CKM_SHA256],
    ck.CKG_MGF1_SHA384: HASH_ALGS[ck.CKM_SHA384],
    ck.CKG_MGF1_SHA512: HASH_ALGS[ck.CKM_SHA512],
    ck.CKG_MGF1_SHA3_224: HASH_ALGS[ck.CKM_SHA3_224],
    ck.CKG_MGF1_SHA3_256: HASH_ALGS[ck.CKM_SHA3_256],
    ck.CKG_MGF1_SHA3_384: HASH_ALGS[ck.CKM_SHA3_384],
    ck.CKG_MGF1_SHA3_512: HASH_ALGS[ck.CKM_SHA3_512],
}

# A signer takes (data, algorithm) where algorithm is a HashAlgorithm (data is the message) or Prehashed (data is
# its digest) — exactly pyca/cryptography's sign() convention, so a family's signer is usually a bound lambda.
Signer = Callable[[bytes, Any], bytes]
Verifier = Callable[[bytes, bytes, Any], None]  # (data, signature, algorithm); raises CKRError


def param_invalid(detail: str = "") -> CKRError:
    return CKRError(ck.CKR_MECHANISM_PARAM_INVALID, detail)


def hash_alg(ckm: int) -> hashes.HashAlgorithm:
    """The hash a mechanism parameter names (OAEP/PSS hashAlg); unknown ones are CKR_MECHANISM_PARAM_INVALID."""
    alg = HASH_ALGS.get(ckm)
    if alg is None:
        raise param_invalid(f"unsupported hash mechanism 0x{ckm:X}")
    return alg


def mgf1_hash(mgf: int) -> hashes.HashAlgorithm:
    alg = MGF1_HASHES.get(mgf)
    if alg is None:
        raise param_invalid(f"unsupported MGF 0x{mgf:X}")
    return alg


def random_bytes(n: int) -> bytes:
    return os.urandom(n)


def required_len(template: Template, what: str = "CKA_VALUE_LEN") -> int:
    """The template's CKA_VALUE_LEN: missing is CKR_TEMPLATE_INCOMPLETE."""
    value = template.get(ck.CKA_VALUE_LEN)
    if value is None:
        raise CKRError(ck.CKR_TEMPLATE_INCOMPLETE, f"{what} is required")
    return int(value)


def pair_params(public: Template, private: Template) -> bytes:
    """CKA_EC_PARAMS for a key pair: from either template (required), the same in both if both give it."""
    params = public.get(ck.CKA_EC_PARAMS, private.get(ck.CKA_EC_PARAMS))
    if params is None:
        raise CKRError(ck.CKR_TEMPLATE_INCOMPLETE, "CKA_EC_PARAMS is required")
    params = bytes(params)
    if private.get(ck.CKA_EC_PARAMS, params) != params:
        raise CKRError(ck.CKR_TEMPLATE_INCONSISTENT, "the templates name different curves")
    return params


# ---- hash-then-sign operations ---------------------------------------------------------------------------------
class HashSignOp:
    __slots__ = ("_alg", "_hash", "_sign")

    def __init__(self, alg: hashes.HashAlgorithm, sign: Signer) -> None:
        self._alg, self._sign = alg, sign
        self._hash: hashes.Hash | None = None

    def update(self, data: bytes) -> None:
        if self._hash is None:
            self._hash = hashes.Hash(self._alg)
        self._hash.update(data)

    def final(self) -> bytes:
        h = self._hash or hashes.Hash(self._alg)
        return self._sign(h.finalize(), Prehashed(self._alg))

    def oneshot(self, data: bytes) -> bytes:
        return self._sign(data, self._alg)


class HashVerifyOp:
    __slots__ = ("_alg", "_hash", "_verify")

    def __init__(self, alg: hashes.HashAlgorithm, verify: Verifier) -> None:
        self._alg, self._verify = alg, verify
        self._hash: hashes.Hash | None = None

    def update(self, data: bytes) -> None:
        if self._hash is None:
            self._hash = hashes.Hash(self._alg)
        self._hash.update(data)

    def final(self, signature: bytes) -> None:
        h = self._hash or hashes.Hash(self._alg)
        self._verify(h.finalize(), signature, Prehashed(self._alg))

    def oneshot(self, data: bytes, signature: bytes) -> None:
        self._verify(data, signature, self._alg)


class HashThenSign(Mechanism):
    """Base of CKM_<hash>_<signature> mechanisms: a family supplies `signer` and `verifier` for a key."""

    hash_ckm: int

    def signer(self, key: Any, param: MechanismParam) -> Signer:
        raise NotImplementedError

    def verifier(self, key: Any, param: MechanismParam) -> Verifier:
        raise NotImplementedError

    def sign(self, key: Any, param: MechanismParam) -> HashSignOp:
        return HashSignOp(HASH_ALGS[self.hash_ckm], self.signer(key, param))

    def verify(self, key: Any, param: MechanismParam) -> HashVerifyOp:
        return HashVerifyOp(HASH_ALGS[self.hash_ckm], self.verifier(key, param))


# ---- single-input operations accepting Update calls -----------------------------------------------------------
class _Collecting:
    """Input collected across Update calls up to a limit (beyond it: `too_long`). The parts list is made by the
    first Update: single-part calls, nearly all of them, never need one."""

    __slots__ = ("_limit", "_parts", "_size", "_too_long")

    def __init__(self, limit: int, too_long: int) -> None:
        self._limit, self._too_long = limit, too_long
        self._parts: list[bytes] | None = None
        self._size = 0

    def _add(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._limit:
            raise CKRError(self._too_long)
        if self._parts is None:
            self._parts = []
        self._parts.append(bytes(data))

    def _take(self) -> bytes:
        data = b"".join(self._parts or ())
        self._parts = None
        return data


class BufferedSignOp(_Collecting):
    __slots__ = ("_sign",)

    def __init__(self, sign: Callable[[bytes], bytes], limit: int) -> None:
        super().__init__(limit, ck.CKR_DATA_LEN_RANGE)
        self._sign = sign

    def update(self, data: bytes) -> None:
        self._add(data)

    def final(self) -> bytes:
        return self._sign(self._take())

    def oneshot(self, data: bytes) -> bytes:
        return self._sign(data)


class BufferedVerifyOp(_Collecting):
    __slots__ = ("_verify",)

    def __init__(self, verify: Callable[[bytes, bytes], None], limit: int) -> None:
        super().__init__(limit, ck.CKR_DATA_LEN_RANGE)
        self._verify = verify

    def update(self, data: bytes) -> None:
        self._add(data)

    def final(self, signature: bytes) -> None:
        self._verify(self._take(), signature)

    def oneshot(self, data: bytes, signature: bytes) -> None:
        self._verify(data, signature)


class BufferedCipherOp(_Collecting):
    """A cipher defined over one input: Update returns nothing, Final processes everything collected."""

    __slots__ = ("_fn",)

    def __init__(self, fn: Callable[[bytes], bytes], limit: int, too_long: int) -> None:
        super().__init__(limit, too_long)
        self._fn = fn

    def update(self, data: bytes) -> bytes:
        self._add(data)
        return b""

    def final(self) -> bytes:
        return self._fn(self._take())

    def oneshot(self, data: bytes) -> bytes:
        return self._fn(data)


# Operations that must see all their input before answering (GCM decryption, key wrap) collect it across Update
# calls. This bound (the ABI's limit for one call's input, 256 MiB) keeps a host that never calls Final from growing
# the process without end; beyond it the operation fails with its *_LEN_RANGE code.
MAX_COLLECTED = 1 << 28


_WRAP_ERRORS = {ck.CKR_DATA_LEN_RANGE: ck.CKR_KEY_SIZE_RANGE, ck.CKR_DATA_INVALID: ck.CKR_KEY_SIZE_RANGE}
_UNWRAP_ERRORS = {ck.CKR_ENCRYPTED_DATA_LEN_RANGE: ck.CKR_WRAPPED_KEY_LEN_RANGE,
                  ck.CKR_ENCRYPTED_DATA_INVALID: ck.CKR_WRAPPED_KEY_INVALID}


def _remapped(fn: Callable[[bytes], bytes], data: bytes, errors: dict[int, int]) -> bytes:
    try:
        return fn(data)
    except CKRError as exc:
        rv = errors.get(exc.rv)
        if rv is None:
            raise
        raise CKRError(rv, str(exc)) from None


class WrapsWithCipher(Mechanism):
    """Wrapping is single-part encryption of the key material; unwrapping is single-part decryption.

    Length and padding errors take their C_WrapKey / C_UnwrapKey names (CKR_KEY_SIZE_RANGE,
    CKR_WRAPPED_KEY_LEN_RANGE, CKR_WRAPPED_KEY_INVALID).
    """

    def wrap(self, wrapping_key: Any, param: MechanismParam, key_material: bytes) -> bytes:
        return _remapped(self.encrypt(wrapping_key, param).oneshot, key_material, _WRAP_ERRORS)

    def unwrap(self, unwrapping_key: Any, param: MechanismParam, wrapped: bytes) -> bytes:
        return _remapped(self.decrypt(unwrapping_key, param).oneshot, wrapped, _UNWRAP_ERRORS)


# ---- MACs -----------------------------------------------------------------------------------------------------
class MacSignOp:
    """`start()` makes an incremental context, `finish(ctx)` returns the tag, `once(data)` is the fast path."""

    __slots__ = ("_ctx", "_finish", "_once", "_start")

    def __init__(self, start: Callable[[], Any], finish: Callable[[Any], bytes],
                 once: Callable[[bytes], bytes]) -> None:
        self._start, self._finish, self._once = start, finish, once
        self._ctx: Any = None

    def update(self, data: bytes) -> None:
        if self._ctx is None:
            self._ctx = self._start()
        self._ctx.update(data)

    def final(self) -> bytes:
        if self._ctx is None:
            self._ctx = self._start()
        return self._finish(self._ctx)

    def oneshot(self, data: bytes) -> bytes:
        return self._once(data)


class MacVerifyOp:
    """Verification by computing the MAC with `mac` (a MacSignOp or a family's own MAC operation)."""

    __slots__ = ("_length", "_mac")

    def __init__(self, mac: SignOp, length: int) -> None:
        self._mac, self._length = mac, length

    def update(self, data: bytes) -> None:
        self._mac.update(data)

    def _check(self, tag: bytes, signature: bytes) -> None:
        if len(signature) != self._length:
            raise CKRError(ck.CKR_SIGNATURE_LEN_RANGE)
        if not hmac.compare_digest(tag, signature):
            raise CKRError(ck.CKR_SIGNATURE_INVALID)

    def final(self, signature: bytes) -> None:
        self._check(self._mac.final(), signature)

    def oneshot(self, data: bytes, signature: bytes) -> None:
        self._check(self._mac.oneshot(data), signature)


# ---- CKM_GENERIC_SECRET_KEY_GEN -------------------------------------------------------------------------------
GENERIC_SECRET_MAX_BYTES = 512


@register
class GenericSecretKeyGen(Mechanism):
    """CKA_VALUE_LEN bytes of randomness. Key sizes are reported in bits, as the spec defines for this mechanism."""

    ckm = ck.CKM_GENERIC_SECRET_KEY_GEN
    generates = ck.CKK_GENERIC_SECRET
    info = MechanismInfo(8, GENERIC_SECRET_MAX_BYTES * 8, ck.CKF_GENERATE)

    def generate_key(self, template: Template) -> Template:
        length = required_len(template)
        if not 1 <= length <= GENERIC_SECRET_MAX_BYTES:
            raise CKRError(ck.CKR_ATTRIBUTE_VALUE_INVALID, f"CKA_VALUE_LEN must be 1..{GENERIC_SECRET_MAX_BYTES}")
        return {ck.CKA_VALUE: random_bytes(length)}
