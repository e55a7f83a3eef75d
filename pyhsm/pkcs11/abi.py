"""The C_* functions: unmarshal, call the engine, marshal, map CKRError to its CK_RV.

bootstrap.py registers every entry of IMPLEMENTED as the cffi def_extern of the same name (with
error=CKR_GENERAL_ERROR, so an unexpected exception can never become CKR_OK).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pyhsm import constants as ck
from pyhsm._pkcs11 import ffi
from pyhsm.engine import Engine
from pyhsm.engine.session import OpKind
from pyhsm.errors import CKRError
from pyhsm.pkcs11 import native
from pyhsm.pkcs11.marshal import (
    MAX_BUFFER_LEN,
    NULL,
    bad_arguments,
    blank_padded,
    check_count,
    deliver,
    deliver_bytes,
    output_capacity,
    read_bytes,
    read_new_pin,
    read_pin,
    read_template,
    require,
    write_attribute,
    write_list,
    write_struct,
    write_ulong,
)
from pyhsm.pkcs11.params import read_mechanism

IMPLEMENTED: dict[str, Callable[..., int]] = {}
engine = Engine()
native.connect(engine)


def c_function(fn: Callable[..., int | None], name: str | None = None) -> Callable[..., int]:
    """Register a C_* implementation; a CKRError becomes its code, success is CKR_OK unless fn says otherwise."""

    def call(*args: Any) -> int:
        try:
            rv = fn(*args)
        except CKRError as error:
            return error.rv
        except MemoryError:
            return ck.CKR_HOST_MEMORY
        return ck.CKR_OK if rv is None else rv

    IMPLEMENTED[name or fn.__name__] = call
    return call


def after_fork_child() -> None:
    native.reset()
    engine.reset_after_fork()


def _mechanism(session: int, mechanism: Any) -> tuple[int, Any]:
    """The session is checked first, so a bad handle is reported before a bad mechanism."""
    engine.session(session)
    return read_mechanism(mechanism)


def _version(field: Any, version: tuple[int, int]) -> None:
    field.major, field.minor = version


T = TypeVar("T")


def _or_end(kind: OpKind, session: int, read: Callable[[], T]) -> T:
    """Section 5.2: a call that fails ends its operation, also when the arguments fail before the engine sees them."""
    try:
        return read()
    except CKRError:
        engine.end_operation(kind, session)
        raise


# The code for input data longer than any buffer we accept, per operation (section 5.2's *_LEN_RANGE codes).
_DATA_TOO_LONG = {OpKind.DECRYPT: ck.CKR_ENCRYPTED_DATA_LEN_RANGE}


def _data(kind: OpKind, session: int, ptr: Any, length: int) -> bytes:
    too_long = _DATA_TOO_LONG.get(kind, ck.CKR_DATA_LEN_RANGE)
    return _or_end(kind, session, lambda: read_bytes(ptr, length, "pData", too_long))


def _capacity(kind: OpKind, session: int, out: Any, out_len: Any) -> int | None:
    return _or_end(kind, session, lambda: output_capacity(out, out_len))


def _signature(session: int, ptr: Any, length: int) -> bytes:
    return _or_end(OpKind.VERIFY, session,
                   lambda: read_bytes(ptr, length, "pSignature", ck.CKR_SIGNATURE_LEN_RANGE))


# ---- general purpose (section 5.4) ---------------------------------------------------------------------
@c_function
def C_Initialize(init_args: Any) -> None:
    flags = ck.CKF_OS_LOCKING_OK
    if init_args != NULL:
        args = ffi.new("CK_C_INITIALIZE_ARGS *")
        ffi.memmove(args, init_args, ffi.sizeof("CK_C_INITIALIZE_ARGS"))
        if args.pReserved != NULL:
            raise bad_arguments("pReserved must be NULL")
        callbacks = [args.CreateMutex, args.DestroyMutex, args.LockMutex, args.UnlockMutex]
        supplied = sum(1 for cb in callbacks if cb != NULL)
        if supplied not in (0, 4):
            raise bad_arguments("either all four mutex functions or none")
        flags = int(args.flags)
        if supplied and not flags & ck.CKF_OS_LOCKING_OK:
            # We lock with OS primitives only; the spec's answer for "use only my mutexes" is CKR_CANT_LOCK.
            raise CKRError(ck.CKR_CANT_LOCK)
    engine.initialize(flags)


@c_function
def C_Finalize(reserved: Any) -> None:
    if reserved != NULL:
        raise bad_arguments("pReserved must be NULL")
    engine.finalize()


@c_function
def C_GetInfo(info_ptr: Any) -> None:
    cryptoki, manufacturer, flags, description, library = engine.get_info()

    def fill(info: Any) -> None:
        _version(info.cryptokiVersion, cryptoki)
        blank_padded(info.manufacturerID, manufacturer)
        info.flags = flags
        blank_padded(info.libraryDescription, description)
        _version(info.libraryVersion, library)

    write_struct(info_ptr, "CK_INFO", fill)


# ---- slots and tokens (section 5.5) ---------------------------------------------------------------------
@c_function
def C_GetSlotList(token_present: int, slot_list: Any, count_ptr: Any) -> None:
    require(count_ptr, "pulCount")
    write_list(slot_list, count_ptr, engine.get_slot_list(bool(token_present)))


@c_function
def C_GetSlotInfo(slot_id: int, info_ptr: Any) -> None:
    description, manufacturer, flags = engine.get_slot_info(slot_id)

    def fill(info: Any) -> None:
        blank_padded(info.slotDescription, description)
        blank_padded(info.manufacturerID, manufacturer)
        info.flags = flags
        _version(info.hardwareVersion, (0, 0))
        _version(info.firmwareVersion, (0, 0))

    require(info_ptr, "pInfo")
    write_struct(info_ptr, "CK_SLOT_INFO", fill)


@c_function
def C_GetTokenInfo(slot_id: int, info_ptr: Any) -> None:
    require(info_ptr, "pInfo")
    token = engine.get_token_info(slot_id)

    def fill(info: Any) -> None:
        blank_padded(info.label, token.label)
        blank_padded(info.manufacturerID, token.manufacturer)
        blank_padded(info.model, token.model)
        blank_padded(info.serialNumber, token.serial)
        info.flags = token.flags
        info.ulMaxSessionCount = ck.CK_EFFECTIVELY_INFINITE
        info.ulSessionCount = token.session_count
        info.ulMaxRwSessionCount = ck.CK_EFFECTIVELY_INFINITE
        info.ulRwSessionCount = token.rw_session_count
        info.ulMaxPinLen = token.max_pin_len
        info.ulMinPinLen = token.min_pin_len
        for field in ("ulTotalPublicMemory", "ulFreePublicMemory", "ulTotalPrivateMemory", "ulFreePrivateMemory"):
            setattr(info, field, ck.CK_UNAVAILABLE_INFORMATION)
        _version(info.hardwareVersion, (0, 0))
        _version(info.firmwareVersion, (0, 1))
        blank_padded(info.utcTime, b"")

    write_struct(info_ptr, "CK_TOKEN_INFO", fill)


@c_function
def C_GetMechanismList(slot_id: int, mechanisms: Any, count_ptr: Any) -> None:
    require(count_ptr, "pulCount")
    write_list(mechanisms, count_ptr, engine.get_mechanism_list(slot_id))


@c_function
def C_GetMechanismInfo(slot_id: int, mechanism: int, info_ptr: Any) -> None:
    require(info_ptr, "pInfo")
    mech = engine.get_mechanism_info(slot_id, mechanism)

    def fill(info: Any) -> None:
        info.ulMinKeySize, info.ulMaxKeySize, info.flags = mech.min_key, mech.max_key, mech.flags

    write_struct(info_ptr, "CK_MECHANISM_INFO", fill)


@c_function
def C_InitToken(slot_id: int, pin: Any, pin_len: int, label: Any) -> None:
    so_pin = read_new_pin(pin, pin_len, "pPin")
    require(label, "pLabel")
    engine.init_token(slot_id, so_pin, read_bytes(label, 32))


@c_function
def C_InitPIN(session: int, pin: Any, pin_len: int) -> None:
    engine.init_pin(session, read_new_pin(pin, pin_len, "pPin"))


@c_function
def C_SetPIN(session: int, old: Any, old_len: int, new: Any, new_len: int) -> None:
    old_pin, new_pin = read_pin(old, old_len, "pOldPin"), read_new_pin(new, new_len, "pNewPin")
    engine.set_pin(session, old_pin, new_pin)


# ---- sessions (section 5.6) -----------------------------------------------------------------------------
@c_function
def C_OpenSession(slot_id: int, flags: int, application: Any, notify: Any, handle_ptr: Any) -> None:
    require(handle_ptr, "phSession")
    write_ulong(handle_ptr, engine.open_session(slot_id, flags))


@c_function
def C_CloseSession(session: int) -> None:
    engine.close_session(session)


@c_function
def C_CloseAllSessions(slot_id: int) -> None:
    engine.close_all_sessions(slot_id)


@c_function
def C_GetSessionInfo(session: int, info_ptr: Any) -> None:
    require(info_ptr, "pInfo")
    slot_id, state, flags = engine.get_session_info(session)

    def fill(info: Any) -> None:
        info.slotID, info.state, info.flags, info.ulDeviceError = slot_id, state, flags, 0

    write_struct(info_ptr, "CK_SESSION_INFO", fill)


@c_function
def C_Login(session: int, user_type: int, pin: Any, pin_len: int) -> None:
    engine.login(session, user_type, read_pin(pin, pin_len, "pPin"))


@c_function
def C_Logout(session: int) -> None:
    engine.logout(session)


# ---- objects (section 5.7) ------------------------------------------------------------------------------
@c_function
def C_CreateObject(session: int, template: Any, count: int, handle_ptr: Any) -> None:
    require(handle_ptr, "phObject")
    write_ulong(handle_ptr, engine.create_object(session, read_template(template, count)))


@c_function
def C_CopyObject(session: int, obj: int, template: Any, count: int, handle_ptr: Any) -> None:
    require(handle_ptr, "phNewObject")
    write_ulong(handle_ptr, engine.copy_object(session, obj, read_template(template, count)))


@c_function
def C_DestroyObject(session: int, obj: int) -> None:
    engine.destroy_object(session, obj)


@c_function
def C_GetObjectSize(session: int, obj: int, size_ptr: Any) -> None:
    require(size_ptr, "pulSize")
    write_ulong(size_ptr, engine.get_object_size(session, obj))


@c_function
def C_GetAttributeValue(session: int, obj: int, template: Any, count: int) -> int:
    if count:
        require(template, "pTemplate")
        check_count(count, "pTemplate")
    answers = engine.get_attribute_value(session, obj, [int(template[i].type) for i in range(count)])
    rv = ck.CKR_OK
    for i, answer in enumerate(answers):
        attr = template[i]
        if isinstance(answer, int):  # section 5.7: -1 for each attribute that cannot be returned
            attr.ulValueLen, rv = ck.CK_UNAVAILABLE_INFORMATION, answer
            continue
        written = write_attribute(attr, answer, int(attr.type))
        rv = written if written != ck.CKR_OK else rv
    return rv


@c_function
def C_SetAttributeValue(session: int, obj: int, template: Any, count: int) -> None:
    engine.set_attribute_value(session, obj, read_template(template, count))


@c_function
def C_FindObjectsInit(session: int, template: Any, count: int) -> None:
    engine.find_objects_init(session, read_template(template, count))


@c_function
def C_FindObjects(session: int, handles: Any, max_count: int, count_ptr: Any) -> None:
    require(count_ptr, "pulObjectCount")
    if max_count:
        require(handles, "phObject")
    found = engine.find_objects(session, max_count)
    if found:
        ffi.memmove(handles, ffi.new("CK_OBJECT_HANDLE[]", found), ffi.sizeof("CK_OBJECT_HANDLE") * len(found))
    write_ulong(count_ptr, len(found))


@c_function
def C_FindObjectsFinal(session: int) -> None:
    engine.find_objects_final(session)


# ---- cryptographic operations (sections 5.8–5.13) ---------------------------------------------------------
def _init(kind: OpKind) -> Callable[[int, Any, int], None]:
    def init(session: int, mechanism: Any, key: int) -> None:
        ckm, param = _mechanism(session, mechanism)
        engine.crypto_init(kind, session, ckm, param, key)

    return init


def _single(kind: OpKind) -> Callable[[int, Any, int, Any, Any], int]:
    too_long = _DATA_TOO_LONG.get(kind, ck.CKR_DATA_LEN_RANGE)

    def single(session: int, data: Any, data_len: int, out: Any, out_len: Any) -> int:
        # _capacity and _data inlined: this is the hottest path (every C_Encrypt / C_Sign / C_Digest).
        try:
            capacity = output_capacity(out, out_len)
            data_bytes = read_bytes(data, data_len, "pData", too_long)
        except CKRError:
            engine.end_operation(kind, session)
            raise
        return deliver(out, out_len, engine.single(kind, session, data_bytes, capacity))

    return single


def _update(kind: OpKind) -> Callable[[int, Any, int, Any, Any], int]:
    def update(session: int, data: Any, data_len: int, out: Any, out_len: Any) -> int:
        capacity = _capacity(kind, session, out, out_len)
        return deliver(out, out_len, engine.update(kind, session, _data(kind, session, data, data_len), capacity))

    return update


def _final(kind: OpKind) -> Callable[[int, Any, Any], int]:
    def final(session: int, out: Any, out_len: Any) -> int:
        return deliver(out, out_len, engine.final(kind, session, _capacity(kind, session, out, out_len)))

    return final


def _absorb(kind: OpKind) -> Callable[[int, Any, int], None]:
    def absorb(session: int, data: Any, data_len: int) -> None:
        engine.absorb(kind, session, _data(kind, session, data, data_len))

    return absorb


for _kind, _name in ((OpKind.ENCRYPT, "Encrypt"), (OpKind.DECRYPT, "Decrypt")):
    c_function(_init(_kind), f"C_{_name}Init")
    c_function(_single(_kind), f"C_{_name}")
    c_function(_update(_kind), f"C_{_name}Update")
    c_function(_final(_kind), f"C_{_name}Final")
c_function(_init(OpKind.SIGN), "C_SignInit")
c_function(_single(OpKind.SIGN), "C_Sign")
c_function(_absorb(OpKind.SIGN), "C_SignUpdate")
c_function(_final(OpKind.SIGN), "C_SignFinal")
c_function(_init(OpKind.VERIFY), "C_VerifyInit")
c_function(_absorb(OpKind.VERIFY), "C_VerifyUpdate")
c_function(_single(OpKind.DIGEST), "C_Digest")
c_function(_absorb(OpKind.DIGEST), "C_DigestUpdate")
c_function(_final(OpKind.DIGEST), "C_DigestFinal")


@c_function
def C_DigestInit(session: int, mechanism: Any) -> None:
    ckm, param = _mechanism(session, mechanism)
    engine.digest_init(session, ckm, param)


@c_function
def C_DigestKey(session: int, key: int) -> None:
    engine.digest_key(session, key)


@c_function
def C_Verify(session: int, data: Any, data_len: int, signature: Any, signature_len: int) -> None:
    data_bytes = _data(OpKind.VERIFY, session, data, data_len)
    engine.verify(session, data_bytes, _signature(session, signature, signature_len))


@c_function
def C_VerifyFinal(session: int, signature: Any, signature_len: int) -> None:
    engine.verify_final(session, _signature(session, signature, signature_len))


# ---- key management (section 5.14) -------------------------------------------------------------------------
@c_function
def C_GenerateKey(session: int, mechanism: Any, template: Any, count: int, key_ptr: Any) -> None:
    require(key_ptr, "phKey")
    ckm, param = _mechanism(session, mechanism)
    write_ulong(key_ptr, engine.generate_key(session, ckm, param, read_template(template, count)))


@c_function
def C_GenerateKeyPair(session: int, mechanism: Any, pub_template: Any, pub_count: int, priv_template: Any,
                      priv_count: int, pub_ptr: Any, priv_ptr: Any) -> None:
    require(pub_ptr, "phPublicKey")
    require(priv_ptr, "phPrivateKey")
    ckm, param = _mechanism(session, mechanism)
    public, private = engine.generate_key_pair(session, ckm, param, read_template(pub_template, pub_count),
                                               read_template(priv_template, priv_count))
    write_ulong(pub_ptr, public)
    write_ulong(priv_ptr, private)


@c_function
def C_WrapKey(session: int, mechanism: Any, wrapping_key: int, key: int, out: Any, out_len: Any) -> int:
    require(out_len, "pulWrappedKeyLen")
    ckm, param = _mechanism(session, mechanism)
    return deliver_bytes(out, out_len, engine.wrap_key(session, ckm, param, wrapping_key, key))


@c_function
def C_UnwrapKey(session: int, mechanism: Any, unwrapping_key: int, wrapped: Any, wrapped_len: int,
                template: Any, count: int, key_ptr: Any) -> None:
    require(key_ptr, "phKey")
    ckm, param = _mechanism(session, mechanism)
    wrapped_key = read_bytes(wrapped, wrapped_len, "pWrappedKey", ck.CKR_WRAPPED_KEY_LEN_RANGE)
    handle = engine.unwrap_key(session, ckm, param, unwrapping_key, wrapped_key, read_template(template, count))
    write_ulong(key_ptr, handle)


@c_function
def C_DeriveKey(session: int, mechanism: Any, base_key: int, template: Any, count: int, key_ptr: Any) -> None:
    require(key_ptr, "phKey")
    ckm, param = _mechanism(session, mechanism)
    write_ulong(key_ptr, engine.derive_key(session, ckm, param, base_key, read_template(template, count)))


# ---- random numbers (section 5.15) -------------------------------------------------------------------------
@c_function
def C_SeedRandom(session: int, seed: Any, seed_len: int) -> None:
    engine.seed_random(session, read_bytes(seed, seed_len, "pSeed"))


@c_function
def C_GenerateRandom(session: int, out: Any, length: int) -> None:
    if length:
        require(out, "pRandomData")
    if length > MAX_BUFFER_LEN:
        raise bad_arguments(f"{length} random bytes is more than {MAX_BUFFER_LEN}")
    data = engine.generate_random(session, length)
    if data:
        ffi.memmove(out, data, len(data))
