"""CK_MECHANISM -> (CKM_*, decoded parameter). The only place that knows C parameter struct layouts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyhsm import constants as ck
from pyhsm._pkcs11 import ffi
from pyhsm.errors import CKRError
from pyhsm.mechanisms import registry
from pyhsm.mechanisms.params import (
    CcmParams,
    CounterFormat,
    CtrParams,
    DkmLengthFormat,
    Ecdh1Params,
    EddsaParams,
    GcmParams,
    HkdfParams,
    KeyHandle,
    MechanismParam,
    OaepParams,
    ParamKind,
    PrfDataParam,
    PssParams,
    RsaAesWrapParams,
    Sp800108Params,
)
from pyhsm.pkcs11.marshal import BYTES, layout, read_bytes, read_ulong, require, struct_type

# The layouts read on every crypto Init (pointers come out as integers).
_MECHANISM = layout("LPL", "CK_MECHANISM", ("mechanism", "pParameter", "ulParameterLen"))
_GCM = layout("PLLPLL", "CK_GCM_PARAMS", ("pIv", "ulIvLen", "ulIvBits", "pAAD", "ulAADLen", "ulTagBits"))


def _invalid(detail: str) -> CKRError:
    return CKRError(ck.CKR_MECHANISM_PARAM_INVALID, detail)


def _pointer(ptr: Any) -> Any:
    """A cffi pointer, from a cffi pointer or an address (what the struct.Struct layouts give)."""
    return ffi.cast(BYTES, ptr) if isinstance(ptr, int) else ptr


def _struct(ctype: str, ptr: Any, length: int) -> Any:
    """Copy the caller's struct (possibly misaligned) into an aligned one of ours, checking its size."""
    pointer_type, size = struct_type(ctype)
    if not ptr or length != size:  # cffi's NULL is false, like address 0
        raise _invalid(f"expected a {ctype}")
    box = ffi.new(pointer_type)
    ffi.memmove(box, _pointer(ptr), length)
    return box


def _param_bytes(ptr: Any, length: int, what: str) -> bytes:
    """A buffer a parameter points to: NULL with a length, or an absurd length, make the parameter invalid."""
    ptr = _pointer(ptr)
    try:
        return read_bytes(ptr, length, what)
    except CKRError as error:
        raise _invalid(str(error)) from None


def _oaep(address: int, length: int) -> OaepParams:
    return _oaep_struct(_struct("CK_RSA_PKCS_OAEP_PARAMS", address, length))


def _oaep_struct(p: Any) -> OaepParams:
    return OaepParams(int(p.hashAlg), int(p.mgf), int(p.source),
                      _param_bytes(p.pSourceData, int(p.ulSourceDataLen), "OAEP label"))


def _pss(address: int, length: int) -> PssParams:
    p = _struct("CK_RSA_PKCS_PSS_PARAMS", address, length)
    return PssParams(int(p.hashAlg), int(p.mgf), int(p.sLen))


def _gcm(address: int, length: int) -> GcmParams:
    """A NULL pIv decodes as an empty IV whatever ulIvLen says (CKM_CLOUDHSM_AES_GCM requires it NULL; for
    CKM_AES_GCM an empty IV is invalid anyway)."""
    if not address or length != _GCM.size:
        raise _invalid("expected a CK_GCM_PARAMS")
    iv_ptr, iv_len, iv_bits, aad_ptr, aad_len, tag_bits = _GCM.unpack(ffi.buffer(_pointer(address), length))
    iv = _param_bytes(iv_ptr, iv_len, "GCM IV") if iv_ptr else b""
    aad = _param_bytes(aad_ptr, aad_len, "GCM AAD") if aad_len else b""  # most callers have none: skip the call
    return GcmParams(iv, iv_bits, aad, tag_bits)


def _ctr(address: int, length: int) -> CtrParams:
    p = _struct("CK_AES_CTR_PARAMS", address, length)
    return CtrParams(int(p.ulCounterBits), bytes(ffi.buffer(p.cb, 16)))


def _ecdh1(address: int, length: int) -> Ecdh1Params:
    p = _struct("CK_ECDH1_DERIVE_PARAMS", address, length)
    return Ecdh1Params(int(p.kdf), _param_bytes(p.pSharedData, int(p.ulSharedDataLen), "shared data"),
                       _param_bytes(p.pPublicData, int(p.ulPublicDataLen), "public data"))


def _rsa_aes_wrap(address: int, length: int) -> RsaAesWrapParams:
    p = _struct("CK_RSA_AES_KEY_WRAP_PARAMS", address, length)
    if p.pOAEPParams == ffi.NULL:
        raise _invalid("pOAEPParams is NULL")
    oaep = ffi.new("CK_RSA_PKCS_OAEP_PARAMS *")
    ffi.memmove(oaep, p.pOAEPParams, ffi.sizeof("CK_RSA_PKCS_OAEP_PARAMS"))
    return RsaAesWrapParams(int(p.ulAESKeyBits), _oaep_struct(oaep))


def _ccm(address: int, length: int) -> CcmParams:
    p = _struct("CK_CCM_PARAMS", address, length)
    return CcmParams(int(p.ulDataLen), _param_bytes(p.pNonce, int(p.ulNonceLen), "CCM nonce"),
                     _param_bytes(p.pAAD, int(p.ulAADLen), "CCM AAD"), int(p.ulMACLen))


def _eddsa(address: int, length: int) -> EddsaParams | None:
    if not address and not length:
        return None  # pure EdDSA (Ed25519 / Ed448 without context)
    p = _struct("CK_EDDSA_PARAMS", address, length)
    return EddsaParams(bool(p.phFlag), _param_bytes(p.pContextData, int(p.ulContextDataLen), "EdDSA context"))


def _hkdf(address: int, length: int) -> HkdfParams:
    p = _struct("CK_HKDF_PARAMS", address, length)
    salt_type = int(p.ulSaltType)
    salt = _param_bytes(p.pSalt, int(p.ulSaltLen), "HKDF salt") if salt_type == ck.CKF_HKDF_SALT_DATA else b""
    salt_key = KeyHandle(int(p.hSaltKey)) if salt_type == ck.CKF_HKDF_SALT_KEY else None
    return HkdfParams(bool(p.bExtract), bool(p.bExpand), int(p.prfHashMechanism), salt_type, salt, salt_key,
                      _param_bytes(p.pInfo, int(p.ulInfoLen), "HKDF info"))


MAX_PRF_DATA_PARAMS = 64


def _prf_data(item: Any) -> PrfDataParam:
    kind, ptr, length = int(item.type), item.pValue, int(item.ulValueLen)
    if kind in (ck.CK_SP800_108_ITERATION_VARIABLE, ck.CK_SP800_108_OPTIONAL_COUNTER):
        if kind == ck.CK_SP800_108_ITERATION_VARIABLE and ptr == ffi.NULL and not length:
            return PrfDataParam(kind, None)
        c = _struct("CK_SP800_108_COUNTER_FORMAT", ptr, length)
        return PrfDataParam(kind, CounterFormat(bool(c.bLittleEndian), int(c.ulWidthInBits)))
    if kind == ck.CK_SP800_108_DKM_LENGTH:
        d = _struct("CK_SP800_108_DKM_LENGTH_FORMAT", ptr, length)
        return PrfDataParam(kind, DkmLengthFormat(int(d.dkmLengthMethod), bool(d.bLittleEndian), int(d.ulWidthInBits)))
    if kind == ck.CK_SP800_108_BYTE_ARRAY:
        return PrfDataParam(kind, _param_bytes(ptr, length, "byte array"))
    raise _invalid(f"unknown CK_PRF_DATA_TYPE 0x{kind:X}")


def _sp800_108(address: int, length: int) -> Sp800108Params:
    p = _struct("CK_SP800_108_KDF_PARAMS", address, length)
    count = int(p.ulNumberOfDataParams)
    if count > MAX_PRF_DATA_PARAMS or (count and p.pDataParams == ffi.NULL):
        raise _invalid("bad pDataParams")
    items = ffi.new("CK_PRF_DATA_PARAM[]", max(count, 1))
    if count:
        ffi.memmove(items, p.pDataParams, count * ffi.sizeof("CK_PRF_DATA_PARAM"))
    return Sp800108Params(int(p.prfType), tuple(_prf_data(items[i]) for i in range(count)),
                          int(p.ulAdditionalDerivedKeys))


def _ulong(address: int, length: int) -> int:
    if not address or length != ffi.sizeof("CK_ULONG"):
        raise _invalid("expected a CK_ULONG")
    return read_ulong(_pointer(address))


def _raw(address: int, length: int) -> bytes | None:
    if not address and not length:
        return None
    return _param_bytes(address, length, "pParameter")


_DECODERS: dict[ParamKind, Callable[[Any, int], MechanismParam]] = {
    ParamKind.NONE: _raw,
    ParamKind.BYTES: _raw,
    ParamKind.OAEP: _oaep,
    ParamKind.PSS: _pss,
    ParamKind.GCM: _gcm,
    ParamKind.CTR: _ctr,
    ParamKind.ECDH1: _ecdh1,
    ParamKind.ULONG: _ulong,
    ParamKind.KEY_HANDLE: lambda address, length: KeyHandle(_ulong(address, length)),
    ParamKind.RSA_AES_WRAP: _rsa_aes_wrap,
    ParamKind.CCM: _ccm,
    ParamKind.EDDSA: _eddsa,
    ParamKind.HKDF: _hkdf,
    ParamKind.SP800_108: _sp800_108,
}


_DECODER_OF: dict[int, Callable[[Any, int], MechanismParam]] = {}  # CKM_* -> its decoder, filled on first use


def read_mechanism(ptr: Any) -> tuple[int, MechanismParam]:
    require(ptr, "pMechanism")
    ckm, param, length = _MECHANISM.unpack(ffi.buffer(ptr, _MECHANISM.size))
    decode = _DECODER_OF.get(ckm)
    if decode is None:
        decode = _DECODER_OF[ckm] = _DECODERS[registry.lookup(ckm).param_kind]
    return ckm, decode(param, length)
