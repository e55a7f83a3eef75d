"""Key derivation functions (PKCS#11 v3.0 sections 2.43.x HKDF and 2.42 SP 800-108).

- CKM_HKDF_DERIVE / CKM_HKDF_DATA (RFC 5869): extract and/or expand with CK_HKDF_PARAMS. The salt is none (a string
  of hash-length zeros), caller data, or another secret key's value (the engine resolves hSaltKey). With bExpand
  FALSE the result is the PRK itself, so CKA_VALUE_LEN may only be the hash length. CKM_HKDF_DATA makes a data
  object holding the bytes instead of a key.
- CKM_HKDF_KEY_GEN: a random CKK_HKDF key of CKA_VALUE_LEN bytes.
- CKM_SP800_108_COUNTER_KDF (NIST SP 800-108 counter mode) with CK_SP800_108_KDF_PARAMS: the PRF input is the data
  parameters in the caller's order — the iteration variable (the counter, CK_SP800_108_COUNTER_FORMAT), an optional
  DKM length (CK_SP800_108_DKM_LENGTH_FORMAT) and byte arrays; PRFs are the HMACs of SHA-1/2/3 and AES-CMAC.
  Additional derived keys (ulAdditionalDerivedKeys > 0) are not supported: CKR_MECHANISM_PARAM_INVALID.

CloudHSM's vendor number for SP 800-108 (CKM_VENDOR_DEFINED | 1) uses a different parameter layout that the
project's CloudHSM notes do not document, so only the standard mechanism is offered.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import algorithms

from pyhsm import constants as ck
from pyhsm.errors import CKRError
from pyhsm.mechanisms.generic import GENERIC_SECRET_MAX_BYTES, HASHLIB, param_invalid, random_bytes, required_len
from pyhsm.mechanisms.params import (
    CounterFormat,
    DkmLengthFormat,
    HkdfParams,
    KeyHandle,
    MechanismParam,
    ParamKind,
    Sp800108Params,
)
from pyhsm.mechanisms.registry import KeyView, Mechanism, MechanismInfo, Template, register
from pyhsm.objects.keys import SECRET_KEY_LENGTHS

HKDF_KEY_TYPES = frozenset({ck.CKK_HKDF, ck.CKK_GENERIC_SECRET})
MAX_DERIVED_BYTES = GENERIC_SECRET_MAX_BYTES


def _value(key: KeyView) -> bytes:
    return bytes(key.attrs[ck.CKA_VALUE])


def derived_length(template: Template, default: int | None = None) -> int:
    """CKA_VALUE_LEN, or the fixed length of the key type being derived (AES keys must say which)."""
    length = template.get(ck.CKA_VALUE_LEN)
    if length is None:
        fixed = SECRET_KEY_LENGTHS.get(template.get(ck.CKA_KEY_TYPE, -1), ())
        if len(fixed) == 1:
            return fixed[0]
        if default is None:
            raise CKRError(ck.CKR_TEMPLATE_INCOMPLETE, "CKA_VALUE_LEN is required")
        return default
    length = int(length)
    if not 1 <= length <= MAX_DERIVED_BYTES:
        raise CKRError(ck.CKR_TEMPLATE_INCONSISTENT, f"CKA_VALUE_LEN must be 1..{MAX_DERIVED_BYTES}")
    return length


# ---- HKDF -------------------------------------------------------------------------------------------------------
def _hkdf(param: MechanismParam) -> HkdfParams:
    if not isinstance(param, HkdfParams):
        raise param_invalid("CK_HKDF_PARAMS required")
    if param.prf_hash not in HASHLIB:
        raise param_invalid(f"unsupported prfHashMechanism 0x{param.prf_hash:X}")
    if not (param.extract or param.expand):
        raise param_invalid("bExtract and bExpand are both FALSE")
    if param.extract:
        if param.salt_type not in (ck.CKF_HKDF_SALT_NULL, ck.CKF_HKDF_SALT_DATA, ck.CKF_HKDF_SALT_KEY):
            raise param_invalid("ulSaltType must be exactly one of CKF_HKDF_SALT_NULL, _DATA, _KEY")
        if param.salt_type == ck.CKF_HKDF_SALT_DATA and not param.salt:
            raise param_invalid("CKF_HKDF_SALT_DATA needs a salt")
    return param


def hkdf(p: HkdfParams, ikm: bytes, length: int) -> bytes:
    name = HASHLIB[p.prf_hash]().name
    size = HASHLIB[p.prf_hash]().digest_size
    prk = ikm
    if p.extract:
        salt = bytes(size)
        if p.salt_type == ck.CKF_HKDF_SALT_DATA:
            salt = p.salt
        elif p.salt_type == ck.CKF_HKDF_SALT_KEY:
            if not isinstance(p.salt_key, KeyHandle) or p.salt_key.key is None:
                raise CKRError(ck.CKR_KEY_HANDLE_INVALID, "hSaltKey was not resolved")
            salt = _value(p.salt_key.key)
        prk = hmac.digest(salt, ikm, name)
    if not p.expand:
        if length != len(prk):
            raise CKRError(ck.CKR_TEMPLATE_INCONSISTENT, "without expansion the result is the PRK (hash length)")
        return prk
    if length > 255 * size:
        raise CKRError(ck.CKR_TEMPLATE_INCONSISTENT, "HKDF output is at most 255 hash lengths")
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.digest(prk, block + p.info + bytes([counter]), name)
        okm += block
        counter += 1
    return okm[:length]


class HkdfMechanism(Mechanism):
    key_types = HKDF_KEY_TYPES
    info = MechanismInfo(1, MAX_DERIVED_BYTES, ck.CKF_DERIVE)
    param_kind = ParamKind.HKDF

    def check_param(self, param: MechanismParam) -> None:
        _hkdf(param)

    def derive(self, base_key: KeyView, param: MechanismParam, template: Template) -> Template:
        p = _hkdf(param)
        default = None if p.expand else HASHLIB[p.prf_hash]().digest_size
        return {ck.CKA_VALUE: hkdf(p, _value(base_key), derived_length(template, default))}


@register
class HkdfDerive(HkdfMechanism):
    ckm = ck.CKM_HKDF_DERIVE


@register
class HkdfData(HkdfMechanism):
    ckm = ck.CKM_HKDF_DATA
    derives_data = True


@register
class HkdfKeyGen(Mechanism):
    ckm = ck.CKM_HKDF_KEY_GEN
    generates = ck.CKK_HKDF
    info = MechanismInfo(1, MAX_DERIVED_BYTES, ck.CKF_GENERATE)

    def generate_key(self, template: Template) -> Template:
        length = required_len(template)
        if not 1 <= length <= MAX_DERIVED_BYTES:
            raise CKRError(ck.CKR_ATTRIBUTE_VALUE_INVALID, f"CKA_VALUE_LEN must be 1..{MAX_DERIVED_BYTES}")
        return {ck.CKA_VALUE: random_bytes(length)}


# ---- SP 800-108 counter mode ---------------------------------------------------------------------------------------
HMAC_PRFS = {
    ck.CKM_SHA_1_HMAC: ck.CKM_SHA_1, ck.CKM_SHA224_HMAC: ck.CKM_SHA224, ck.CKM_SHA256_HMAC: ck.CKM_SHA256,
    ck.CKM_SHA384_HMAC: ck.CKM_SHA384, ck.CKM_SHA512_HMAC: ck.CKM_SHA512, ck.CKM_SHA3_224_HMAC: ck.CKM_SHA3_224,
    ck.CKM_SHA3_256_HMAC: ck.CKM_SHA3_256, ck.CKM_SHA3_384_HMAC: ck.CKM_SHA3_384,
    ck.CKM_SHA3_512_HMAC: ck.CKM_SHA3_512,
}
PRF = Callable[[bytes], bytes]


def _prf(prf_type: int, key: bytes) -> tuple[PRF, int]:
    if prf_type == ck.CKM_AES_CMAC:
        if len(key) not in (16, 24, 32):
            raise CKRError(ck.CKR_KEY_SIZE_RANGE, "AES-CMAC needs a 16, 24 or 32-byte base key")

        def mac(data: bytes) -> bytes:
            ctx = cmac.CMAC(algorithms.AES(key))
            ctx.update(data)
            return ctx.finalize()

        return mac, 16
    name = HASHLIB[HMAC_PRFS[prf_type]]().name
    return (lambda data: hmac.digest(key, data, name)), hashlib.new(name).digest_size


def _width_ok(width: int) -> bool:
    return width in (8, 16, 24, 32)


def _sp800_108(param: MechanismParam) -> Sp800108Params:
    if not isinstance(param, Sp800108Params):
        raise param_invalid("CK_SP800_108_KDF_PARAMS required")
    if param.prf not in HMAC_PRFS and param.prf != ck.CKM_AES_CMAC:
        raise param_invalid(f"unsupported prfType 0x{param.prf:X}")
    if param.additional_keys:
        raise param_invalid("additional derived keys are not supported")
    kinds = [d.type for d in param.data]
    if kinds.count(ck.CK_SP800_108_ITERATION_VARIABLE) != 1 or kinds.count(ck.CK_SP800_108_DKM_LENGTH) > 1:
        raise param_invalid("counter mode needs one iteration variable and at most one DKM length")
    for item in param.data:
        if item.type == ck.CK_SP800_108_OPTIONAL_COUNTER:
            raise param_invalid("an optional counter has no place in counter mode (the iteration variable is it)")
        if item.type == ck.CK_SP800_108_ITERATION_VARIABLE and (
                not isinstance(item.value, CounterFormat) or not _width_ok(item.value.width_bits)):
            raise param_invalid("the iteration variable needs a counter format of 8, 16, 24 or 32 bits")
        if item.type == ck.CK_SP800_108_DKM_LENGTH and (
                not isinstance(item.value, DkmLengthFormat) or not _width_ok(item.value.width_bits)
                or item.value.method not in (ck.CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS,
                                             ck.CK_SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS)):
            raise param_invalid("bad CK_SP800_108_DKM_LENGTH_FORMAT")
    return param


def _encode(value: int, width_bits: int, little_endian: bool) -> bytes:
    return value.to_bytes(width_bits // 8, "little" if little_endian else "big")


def sp800_108_counter(p: Sp800108Params, key: bytes, length: int) -> bytes:
    prf, block = _prf(p.prf, key)
    blocks = -(-length // block)
    counter = next(d.value for d in p.data if d.type == ck.CK_SP800_108_ITERATION_VARIABLE)
    assert isinstance(counter, CounterFormat)
    if blocks >= 1 << counter.width_bits:
        raise CKRError(ck.CKR_TEMPLATE_INCONSISTENT, "the counter is too narrow for CKA_VALUE_LEN")
    out = []
    for i in range(1, blocks + 1):
        parts = []
        for item in p.data:
            value = item.value
            if isinstance(value, CounterFormat):
                parts.append(_encode(i, value.width_bits, value.little_endian))
            elif isinstance(value, DkmLengthFormat):
                bits = 8 * (length if value.method == ck.CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS else blocks * block)
                parts.append(_encode(bits % (1 << value.width_bits), value.width_bits, value.little_endian))
            elif isinstance(value, bytes):
                parts.append(value)
        out.append(prf(b"".join(parts)))
    return b"".join(out)[:length]


@register
class Sp800108CounterKdf(Mechanism):
    ckm = ck.CKM_SP800_108_COUNTER_KDF
    key_types = frozenset({ck.CKK_GENERIC_SECRET, ck.CKK_AES, ck.CKK_SHA_1_HMAC, ck.CKK_SHA224_HMAC,
                           ck.CKK_SHA256_HMAC, ck.CKK_SHA384_HMAC, ck.CKK_SHA512_HMAC, ck.CKK_SHA3_224_HMAC,
                           ck.CKK_SHA3_256_HMAC, ck.CKK_SHA3_384_HMAC, ck.CKK_SHA3_512_HMAC})
    info = MechanismInfo(1, MAX_DERIVED_BYTES, ck.CKF_DERIVE)
    param_kind = ParamKind.SP800_108

    def check_param(self, param: MechanismParam) -> None:
        _sp800_108(param)

    def derive(self, base_key: KeyView, param: MechanismParam, template: Template) -> Template:
        p = _sp800_108(param)
        return {ck.CKA_VALUE: sp800_108_counter(p, _value(base_key), derived_length(template))}
