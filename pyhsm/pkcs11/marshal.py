"""C <-> Python marshalling for the ABI layer.

Rules from design.md: outputs are zeroed structs copied out with memmove (Oracle passes misaligned pointers),
CK_ULONG width comes from ffi.sizeof, NULL where the spec requires a pointer is CKR_ARGUMENTS_BAD.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from pyhsm import constants as ck
from pyhsm._pkcs11 import ffi
from pyhsm.engine.token_users import MAX_PIN_LEN
from pyhsm.errors import CKRError
from pyhsm.objects import codec

NULL = ffi.NULL
ULONG_SIZE = ffi.sizeof("CK_ULONG")
ATTRIBUTE_SIZE = ffi.sizeof("CK_ATTRIBUTE")
BYTES = ffi.typeof("CK_BYTE *")


def layout(codes: str, ctype: str, fields: tuple[str, ...]) -> struct.Struct:
    """A struct.Struct (native codes, one per field) reading `ctype` from the caller's bytes in one call, whatever
    their alignment, instead of a cffi box, a memmove and a cffi access per field (pointers come out as addresses).
    Checked against cffi's layout of the same struct at import: each field's offset ("0X" aligns for X without
    adding it) and the size."""
    offsets = [struct.calcsize(f"@{codes[:i]}0{codes[i]}") for i in range(len(codes))]
    result = struct.Struct("@" + codes)
    if result.size != ffi.sizeof(ctype) or offsets != [ffi.offsetof(ctype, name) for name in fields]:
        raise RuntimeError(f"{ctype}: struct layout {codes!r} does not match the C declaration")
    return result


_ATTRIBUTE = layout("LPL", "CK_ATTRIBUTE", ("type", "pValue", "ulValueLen"))

# A CK_ULONG as bytes: packing with struct is cheaper than a cffi box and copies byte-wise, so the caller's pointer
# may be misaligned (design.md). Checked against cffi's size of CK_ULONG.
_ULONG = struct.Struct("@L")
if _ULONG.size != ULONG_SIZE:
    raise RuntimeError("CK_ULONG is not a C unsigned long on this platform")

# A caller's length is believed only up to these limits. Beyond them it is a bug or an attack, refused before a
# single byte is read: copying (CK_ULONG)-1 bytes from a small buffer would crash the host. A length that is wrong
# but plausible (100 bytes claimed for a 16-byte buffer) cannot be detected by any C library.
MAX_BUFFER_LEN = 1 << 28  # 256 MiB in one call: data, signatures, attribute values, mechanism parameters
MAX_TEMPLATE_LEN = 4096  # attributes in one template


def bad_arguments(detail: str = "") -> CKRError:
    return CKRError(ck.CKR_ARGUMENTS_BAD, detail)


def require(ptr: Any, what: str) -> None:
    if ptr == NULL:
        raise bad_arguments(f"{what} is NULL")


def read_bytes(ptr: Any, length: int, what: str = "buffer", too_long: int = ck.CKR_ARGUMENTS_BAD,
               limit: int = MAX_BUFFER_LEN) -> bytes:
    """The caller's input buffer; NULL is only acceptable with a length of zero. A length above `limit` is
    answered with `too_long` (the spec's code for that argument) without reading."""
    if ptr == NULL:
        if length:
            raise bad_arguments(f"{what} is NULL")
        return b""
    if length > limit:
        raise CKRError(too_long, f"{what}: {length} bytes is more than {limit}")
    return bytes(ffi.buffer(ptr, length))


def _read_at(address: int, length: int, what: str, too_long: int) -> bytes:
    """read_bytes for a pointer read out of a caller's struct as an address."""
    return read_bytes(ffi.cast(BYTES, address) if address else NULL, length, what, too_long)


def read_new_pin(ptr: Any, length: int, what: str) -> bytes:
    """A PIN being set: NULL is CKR_ARGUMENTS_BAD (no protected path), too long is CKR_PIN_LEN_RANGE."""
    require(ptr, what)
    return read_bytes(ptr, length, what, ck.CKR_PIN_LEN_RANGE, MAX_PIN_LEN)


def read_pin(ptr: Any, length: int, what: str) -> bytes:
    """A PIN being checked: one longer than any PIN can be is simply incorrect."""
    require(ptr, what)
    return read_bytes(ptr, length, what, ck.CKR_PIN_INCORRECT, MAX_PIN_LEN)


def check_count(count: int, what: str) -> None:
    """Array lengths (attribute templates) are bounded like buffers: an absurd count is refused before reading."""
    if count > MAX_TEMPLATE_LEN:
        raise bad_arguments(f"{what}: {count} entries is more than {MAX_TEMPLATE_LEN}")


def read_ulong(ptr: Any) -> int:
    value: int = _ULONG.unpack(ffi.buffer(ptr, ULONG_SIZE))[0]
    return value


def write_ulong(ptr: Any, value: int) -> None:
    ffi.memmove(ptr, _ULONG.pack(value), ULONG_SIZE)


_STRUCT_TYPES: dict[str, tuple[Any, int]] = {}  # "CK_SESSION_INFO" -> (its pointer type, its size)


def struct_type(ctype: str) -> tuple[Any, int]:
    """A struct's pointer type and size, resolved by name once: cffi parses a type given as a string on every
    ffi.new / ffi.sizeof, which showed up on the per-call path."""
    try:
        return _STRUCT_TYPES[ctype]
    except KeyError:
        found = _STRUCT_TYPES[ctype] = ffi.typeof(ctype + " *"), ffi.sizeof(ctype)
        return found


def write_struct(ptr: Any, ctype: str, fill: Callable[[Any], None]) -> None:
    """Build the struct zeroed on our side, fill it, then copy it out in one memmove."""
    require(ptr, ctype)
    pointer_type, size = struct_type(ctype)
    out = ffi.new(pointer_type)
    fill(out)
    ffi.memmove(ptr, out, size)


def blank_padded(field: Any, text: bytes) -> None:
    """Fixed-size CK_UTF8CHAR fields are padded with blanks, never NUL-terminated."""
    size = len(field)
    ffi.memmove(field, text[:size].ljust(size, b" "), size)


def write_list(array: Any, count_ptr: Any, items: list[int]) -> None:
    """The length-query convention for arrays of CK_ULONG (slot lists, mechanism lists, ...)."""
    require(count_ptr, "count pointer")
    if array == NULL:
        write_ulong(count_ptr, len(items))
        return
    capacity = read_ulong(count_ptr)
    write_ulong(count_ptr, len(items))
    if capacity < len(items):
        raise CKRError(ck.CKR_BUFFER_TOO_SMALL)
    if items:
        ffi.memmove(array, ffi.new("CK_ULONG[]", items), ULONG_SIZE * len(items))


def output_capacity(out_ptr: Any, len_ptr: Any) -> int | None:
    """None for a length query (NULL output buffer), else the caller's buffer size."""
    require(len_ptr, "length pointer")
    return None if out_ptr == NULL else read_ulong(len_ptr)


def deliver(out_ptr: Any, len_ptr: Any, result: tuple[int, bytes | None]) -> int:
    """Write an engine Output; returns the CK_RV for the length convention."""
    length, data = result
    ffi.memmove(len_ptr, _ULONG.pack(length), ULONG_SIZE)  # write_ulong, inlined on this hot path
    if data is None:
        return ck.CKR_OK if out_ptr == NULL else ck.CKR_BUFFER_TOO_SMALL
    if data:
        ffi.memmove(out_ptr, data, len(data))
    return ck.CKR_OK


def deliver_bytes(out_ptr: Any, len_ptr: Any, data: bytes) -> int:
    """Length convention for stateless outputs (C_WrapKey): compute, then fit or report."""
    capacity = output_capacity(out_ptr, len_ptr)
    return deliver(out_ptr, len_ptr, (len(data), data if capacity is not None and capacity >= len(data) else None))


def read_template(ptr: Any, count: int) -> list[tuple[int, bytes]]:
    if count == 0:
        return []
    require(ptr, "template")
    check_count(count, "template")
    template = []
    for attr_type, address, length in _ATTRIBUTE.iter_unpack(ffi.buffer(ptr, count * ATTRIBUTE_SIZE)):
        if codec.is_template(attr_type):
            # The value is itself a CK_ATTRIBUTE array pointing into the caller's memory: flatten it now.
            if length % ATTRIBUTE_SIZE:
                raise CKRError(ck.CKR_ATTRIBUTE_VALUE_INVALID, "attribute array has the wrong size")
            nested = ffi.cast("CK_ATTRIBUTE *", address) if length else NULL
            value = codec.pack_attributes(read_template(nested, length // ATTRIBUTE_SIZE))
        else:
            value = _read_at(address, length, "attribute value", ck.CKR_ATTRIBUTE_VALUE_INVALID)
        template.append((attr_type, value))
    return template


def write_attribute(attr: Any, answer: bytes, attr_type: int) -> int:
    """One C_GetAttributeValue answer under the length convention (section 5.7); returns its CKR_*."""
    if codec.is_template(attr_type):
        nested = codec.unpack_attributes(answer)
        needed = len(nested) * ATTRIBUTE_SIZE
        if attr.pValue == NULL:
            attr.ulValueLen = needed
            return ck.CKR_OK
        if attr.ulValueLen < needed:
            attr.ulValueLen = ck.CK_UNAVAILABLE_INFORMATION
            return ck.CKR_BUFFER_TOO_SMALL
        array = ffi.cast("CK_ATTRIBUTE *", attr.pValue)
        rv = ck.CKR_OK
        for i, (nested_type, raw) in enumerate(nested):
            array[i].type = nested_type
            rv = write_attribute(array[i], raw, nested_type) if rv == ck.CKR_OK else rv
        attr.ulValueLen = needed
        return rv
    if attr.pValue == NULL:
        attr.ulValueLen = len(answer)
    elif attr.ulValueLen >= len(answer):
        ffi.memmove(attr.pValue, answer, len(answer))
        attr.ulValueLen = len(answer)
    else:
        attr.ulValueLen = ck.CK_UNAVAILABLE_INFORMATION
        return ck.CKR_BUFFER_TOO_SMALL
    return ck.CKR_OK
