"""CK_MECHANISM -> (CKM_*, decoded parameter). The only place that knows C parameter struct layouts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyhsm import constants as ck
from pyhsm._pkcs11 import ffi
from pyhsm.errors import CKRError
from pyhsm.mechanisms import registry
from pyhsm.mechanisms.params import (
    CtrParams,
    Ecdh1Params,
    GcmParams,
    KeyHandle,
    MechanismParam,
    OaepParams,
    ParamKind,
    PssParams,
)
from pyhsm.pkcs11.marshal import read_bytes, read_ulong, require


def _invalid(detail: str) -> CKRError:
    return CKRError(ck.CKR_MECHANISM_PARAM_INVALID, detail)


def _struct(ctype: str, ptr: Any, length: int) -> Any:
    """Copy the caller's struct (possibly misaligned) into an aligned one of ours, checking its size."""
    if ptr == ffi.NULL or length != ffi.sizeof(ctype):
        raise _invalid(f"expected a {ctype}")
    box = ffi.new(ctype + " *")
    ffi.memmove(box, ptr, length)
    return box


def _param_bytes(ptr: Any, length: int, what: str) -> bytes:
    """A buffer a parameter points to: NULL with a length, or an absurd length, make the parameter invalid."""
    try:
        return read_bytes(ptr, length, what)
    except CKRError as error:
        raise _invalid(str(error)) from None


def _oaep(ptr: Any, length: int) -> OaepParams:
    p = _struct("CK_RSA_PKCS_OAEP_PARAMS", ptr, length)
    return OaepParams(int(p.hashAlg), int(p.mgf), int(p.source),
                      _param_bytes(p.pSourceData, int(p.ulSourceDataLen), "OAEP label"))


def _pss(ptr: Any, length: int) -> PssParams:
    p = _struct("CK_RSA_PKCS_PSS_PARAMS", ptr, length)
    return PssParams(int(p.hashAlg), int(p.mgf), int(p.sLen))


def _gcm(ptr: Any, length: int) -> GcmParams:
    p = _struct("CK_GCM_PARAMS", ptr, length)
    return GcmParams(_param_bytes(p.pIv, int(p.ulIvLen), "GCM IV"), int(p.ulIvBits),
                     _param_bytes(p.pAAD, int(p.ulAADLen), "GCM AAD"), int(p.ulTagBits))


def _ctr(ptr: Any, length: int) -> CtrParams:
    p = _struct("CK_AES_CTR_PARAMS", ptr, length)
    return CtrParams(int(p.ulCounterBits), bytes(ffi.buffer(p.cb, 16)))


def _ecdh1(ptr: Any, length: int) -> Ecdh1Params:
    p = _struct("CK_ECDH1_DERIVE_PARAMS", ptr, length)
    return Ecdh1Params(int(p.kdf), _param_bytes(p.pSharedData, int(p.ulSharedDataLen), "shared data"),
                       _param_bytes(p.pPublicData, int(p.ulPublicDataLen), "public data"))


def _ulong(ptr: Any, length: int) -> int:
    if ptr == ffi.NULL or length != ffi.sizeof("CK_ULONG"):
        raise _invalid("expected a CK_ULONG")
    return read_ulong(ptr)


def _raw(ptr: Any, length: int) -> bytes | None:
    if ptr == ffi.NULL and not length:
        return None
    return _param_bytes(ptr, length, "pParameter")


_DECODERS: dict[ParamKind, Callable[[Any, int], MechanismParam]] = {
    ParamKind.NONE: _raw,
    ParamKind.BYTES: _raw,
    ParamKind.OAEP: _oaep,
    ParamKind.PSS: _pss,
    ParamKind.GCM: _gcm,
    ParamKind.CTR: _ctr,
    ParamKind.ECDH1: _ecdh1,
    ParamKind.ULONG: _ulong,
    ParamKind.KEY_HANDLE: lambda ptr, length: KeyHandle(_ulong(ptr, length)),
}


def read_mechanism(ptr: Any) -> tuple[int, MechanismParam]:
    require(ptr, "pMechanism")
    mechanism = ffi.new("CK_MECHANISM *")
    ffi.memmove(mechanism, ptr, ffi.sizeof("CK_MECHANISM"))
    ckm = int(mechanism.mechanism)
    kind = registry.lookup(ckm).param_kind
    return ckm, _DECODERS[kind](mechanism.pParameter, int(mechanism.ulParameterLen))
