"""atheris over the Python marshalling layer: C templates and mechanism parameters built from fuzz bytes in cffi
memory, decoded by pyhsm/pkcs11/marshal.py and params.py, then by the attribute codec and each mechanism's
parameter check; answers written back under the length convention.

A finding is any exception other than CKRError (the ABI layer would turn it into CKR_GENERAL_ERROR), a decoded value
that does not survive encode -> decode unchanged, or an answer written against the length rules of section 5.7.
Like the C harness, it never lies about its own buffers except with lengths of 2^31 and above.

    python fuzz/marshal_fuzzer.py -max_total_time=60 CORPUS_DIR      (fuzz/run_marshal.sh does the set-up)
    python fuzz/marshal_fuzzer.py FILE...                             (replay inputs)
"""

from __future__ import annotations

import sys
from typing import Any

import atheris

with atheris.instrument_imports(include=["pyhsm"]):
    from pyhsm import constants as ck
    from pyhsm.errors import CKRError
    from pyhsm.mechanisms import registry
    from pyhsm.mechanisms.params import ParamKind
    from pyhsm.objects import codec
    from pyhsm.pkcs11 import marshal, params

from pyhsm._pkcs11 import ffi

TYPES = sorted(codec.KINDS)
MECHANISMS = sorted(registry.all_mechanisms())
ABSURD = (1 << 31, 1 << 40, (1 << 64) - 1)
STRUCTS = {
    ParamKind.OAEP: "CK_RSA_PKCS_OAEP_PARAMS",
    ParamKind.PSS: "CK_RSA_PKCS_PSS_PARAMS",
    ParamKind.GCM: "CK_GCM_PARAMS",
    ParamKind.CTR: "CK_AES_CTR_PARAMS",
    ParamKind.ECDH1: "CK_ECDH1_DERIVE_PARAMS",
    ParamKind.ULONG: "CK_ULONG",
    ParamKind.KEY_HANDLE: "CK_ULONG",
    ParamKind.RSA_AES_WRAP: "CK_RSA_AES_KEY_WRAP_PARAMS",
    ParamKind.CCM: "CK_CCM_PARAMS",
    ParamKind.EDDSA: "CK_EDDSA_PARAMS",
    ParamKind.HKDF: "CK_HKDF_PARAMS",
}
POINTER_FREE = {ParamKind.NONE, ParamKind.BYTES, ParamKind.PSS, ParamKind.CTR, ParamKind.ULONG, ParamKind.KEY_HANDLE}


class Builder:
    """Turns fuzz bytes into C arguments, keeping every cffi object alive until the call is over."""

    def __init__(self, data: bytes) -> None:
        self.fdp = atheris.FuzzedDataProvider(data)
        self.keep: list[Any] = []

    def length(self, have: int) -> int:
        how = self.fdp.ConsumeIntInRange(0, 15)
        if how == 0:
            return 0
        if how == 1:
            return self.fdp.PickValueInList(list(ABSURD))
        if how == 2 and have:
            return have - 1
        return have

    def buffer(self) -> tuple[Any, int]:
        raw = self.fdp.ConsumeBytes(self.fdp.ConsumeIntInRange(0, 80))
        if self.fdp.ConsumeIntInRange(0, 31) == 0:
            return ffi.NULL, self.length(len(raw))
        buf = ffi.new("unsigned char[]", max(len(raw), 1))
        ffi.memmove(buf, raw, len(raw))
        self.keep.append(buf)
        return buf, self.length(len(raw))

    def template(self, depth: int = 0) -> tuple[Any, int]:
        count = self.fdp.ConsumeIntInRange(0, 8)
        array = ffi.new("CK_ATTRIBUTE[]", max(count, 1))
        self.keep.append(array)
        for i in range(count):
            attr_type = self.fdp.PickValueInList(TYPES) if self.fdp.ConsumeBool() else self.fdp.ConsumeIntInRange(
                0, (1 << 64) - 1)
            if depth and codec.is_template(attr_type):
                attr_type = ck.CKA_LABEL
            array[i].type = attr_type
            if codec.is_template(attr_type):  # an array of CK_ATTRIBUTE: raw bytes would be wild pointers
                nested, n = self.template(depth + 1)
                array[i].pValue = nested
                array[i].ulValueLen = self.length(n * marshal.ATTRIBUTE_SIZE)
            else:
                array[i].pValue, array[i].ulValueLen = self.buffer()
        if depth == 0 and self.fdp.ConsumeIntInRange(0, 31) == 0:
            return array, self.fdp.PickValueInList(list(ABSURD))
        return (array if count or self.fdp.ConsumeBool() else ffi.NULL), count

    def mechanism(self) -> Any:
        mech = ffi.new("CK_MECHANISM *")
        self.keep.append(mech)
        if self.fdp.ConsumeIntInRange(0, 15) == 0:
            mech.mechanism = self.fdp.ConsumeIntInRange(0, (1 << 64) - 1)
            return mech
        ckm = self.fdp.PickValueInList(MECHANISMS)
        mech.mechanism = ckm
        kind = registry.lookup(ckm).param_kind
        how = self.fdp.ConsumeIntInRange(0, 3)
        if how == 0 or (kind not in STRUCTS and kind not in POINTER_FREE):
            mech.pParameter, mech.ulParameterLen = ffi.NULL, self.fdp.PickValueInList([0, 0, 16])
        elif how == 1 and kind in POINTER_FREE or kind not in STRUCTS:
            mech.pParameter, mech.ulParameterLen = self.buffer()
        else:
            ctype = STRUCTS[kind]
            struct = ffi.new(ctype + " *")
            self.keep.append(struct)
            self.fill(struct, kind)
            skew = self.fdp.ConsumeIntInRange(-8, 8) if self.fdp.ConsumeIntInRange(0, 7) == 0 else 0
            mech.pParameter, mech.ulParameterLen = struct, max(ffi.sizeof(ctype) + skew, 0)
        return mech

    def fill(self, struct: Any, kind: ParamKind) -> None:
        take = self.fdp.ConsumeIntInRange
        if kind in (ParamKind.ULONG, ParamKind.KEY_HANDLE):
            struct[0] = take(0, (1 << 64) - 1) if self.fdp.ConsumeBool() else take(0, 64)
        elif kind is ParamKind.OAEP:
            struct.hashAlg, struct.mgf, struct.source = self.fdp.PickValueInList(MECHANISMS), take(0, 6), take(0, 2)
            struct.pSourceData, struct.ulSourceDataLen = self.buffer()
        elif kind is ParamKind.PSS:
            struct.hashAlg, struct.mgf, struct.sLen = self.fdp.PickValueInList(MECHANISMS), take(0, 6), take(0, 600)
        elif kind is ParamKind.GCM:
            struct.pIv, struct.ulIvLen = self.buffer()
            struct.ulIvBits = take(0, 1 << 12)
            struct.pAAD, struct.ulAADLen = self.buffer()
            struct.ulTagBits = take(0, 256)
        elif kind is ParamKind.CTR:
            struct.ulCounterBits = take(0, 256)
            raw = self.fdp.ConsumeBytes(16)
            ffi.memmove(struct.cb, raw, len(raw))
        elif kind is ParamKind.RSA_AES_WRAP:
            struct.ulAESKeyBits = self.fdp.PickValueInList([128, 192, 256, take(0, 1 << 20)])
            if self.fdp.ConsumeIntInRange(0, 15):
                oaep = ffi.new("CK_RSA_PKCS_OAEP_PARAMS *")
                self.keep.append(oaep)
                self.fill(oaep, ParamKind.OAEP)
                struct.pOAEPParams = oaep
        elif kind is ParamKind.CCM:
            struct.ulDataLen = take(0, 1 << 20)
            struct.pNonce, struct.ulNonceLen = self.buffer()
            struct.pAAD, struct.ulAADLen = self.buffer()
            struct.ulMACLen = take(0, 20)
        elif kind is ParamKind.EDDSA:
            struct.phFlag = take(0, 1)
            struct.pContextData, struct.ulContextDataLen = self.buffer()
        elif kind is ParamKind.HKDF:
            struct.bExtract, struct.bExpand = take(0, 1), take(0, 1)
            struct.prfHashMechanism, struct.ulSaltType = self.fdp.PickValueInList(MECHANISMS), take(0, 5)
            struct.pSalt, struct.ulSaltLen = self.buffer()
            struct.hSaltKey = take(0, 1 << 32)
            struct.pInfo, struct.ulInfoLen = self.buffer()
        elif kind is ParamKind.ECDH1:
            struct.kdf = take(0, 10)
            struct.pSharedData, struct.ulSharedDataLen = self.buffer()
            struct.pPublicData, struct.ulPublicDataLen = self.buffer()


def check_template(b: Builder) -> None:
    array, count = b.template()
    try:
        decoded = marshal.read_template(array, count)
    except CKRError:
        return
    for attr_type, raw in decoded:
        try:
            value = codec.decode(attr_type, raw)
        except CKRError:
            continue
        again = codec.decode(attr_type, codec.encode(attr_type, value))
        assert again == value, f"0x{attr_type:X}: {value!r} came back as {again!r}"


def check_mechanism(b: Builder) -> None:
    try:
        ckm, param = params.read_mechanism(b.mechanism())
        registry.lookup(ckm).check_param(param)
    except CKRError:
        pass


def check_answer(b: Builder) -> None:
    """C_GetAttributeValue's writing side: fits exactly, or CKR_BUFFER_TOO_SMALL with -1, never past capacity."""
    attr_type = b.fdp.PickValueInList(TYPES)
    if codec.is_template(attr_type):
        answer = codec.pack_attributes([(ck.CKA_LABEL, b.fdp.ConsumeBytes(b.fdp.ConsumeIntInRange(0, 40)))
                                        for _ in range(b.fdp.ConsumeIntInRange(0, 3))])
        needed = len(codec.unpack_attributes(answer)) * marshal.ATTRIBUTE_SIZE
    else:
        answer = b.fdp.ConsumeBytes(b.fdp.ConsumeIntInRange(0, 300))
        needed = len(answer)
    capacity = b.fdp.ConsumeIntInRange(0, 400)
    out = ffi.new("unsigned char[]", capacity + 64)  # zeroed: nested pValues are NULL; 64 guard bytes
    attr = ffi.new("CK_ATTRIBUTE *")
    attr.type, attr.ulValueLen = attr_type, capacity
    attr.pValue = ffi.NULL if b.fdp.ConsumeIntInRange(0, 7) == 0 else out
    rv = marshal.write_attribute(attr, answer, attr_type)
    assert bytes(ffi.buffer(out + capacity, 64)) == bytes(64), "wrote past the caller's capacity"
    if attr.pValue == ffi.NULL:
        assert rv == ck.CKR_OK and attr.ulValueLen == needed
    elif capacity >= needed:
        assert rv == ck.CKR_OK and attr.ulValueLen == needed
    else:
        assert rv == ck.CKR_BUFFER_TOO_SMALL and attr.ulValueLen == ck.CK_UNAVAILABLE_INFORMATION


CHECKS = (check_template, check_mechanism, check_answer)


def test_one_input(data: bytes) -> None:
    b = Builder(data)
    b.fdp.PickValueInList(list(CHECKS))(b)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
