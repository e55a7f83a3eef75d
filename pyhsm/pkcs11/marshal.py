"""C <-> Python marshalling for the ABI layer.

Rules from design.md: outputs are zeroed structs copied out with memmove (Oracle passes misaligned pointers),
CK_ULONG width comes from ffi.sizeof, NULL where the spec requires a pointer is CKR_ARGUMENTS_BAD.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyhsm import constants as ck
from pyhsm._pkcs11 import ffi
from pyhsm.errors import CKRError
from pyhsm.objects import codec

NULL = ffi.NULL
ULONG_SIZE = ffi.sizeof("CK_ULONG")
ATTRIBUTE_SIZE = ffi.sizeof("CK_ATTRIBUTE")
_ULONG_BOX = "CK_ULONG *"


def bad_arguments(detail: str = "") -> CKRError:
    return CKRError(ck.CKR_ARGUMENTS_BAD, detail)


def require(ptr: Any, what: str) -> None:
    if ptr == NULL:
        raise bad_arguments(f"{what} is NULL")


def read_bytes(ptr: Any, length: int, what: str = "buffer") -> bytes:
    """The caller's input buffer; NULL is only acceptable with a length of zero."""
    if ptr == NULL:
        if length:
            raise bad_arguments(f"{what} is NULL")
        return b""
    return bytes(ffi.buffer(ptr, length))


def read_ulong(ptr: Any) -> int:
    box = ffi.new(_ULONG_BOX)
    ffi.memmove(box, ptr, ULONG_SIZE)
    return int(box[0])


def write_ulong(ptr: Any, value: int) -> None:
    ffi.memmove(ptr, ffi.new(_ULONG_BOX, value), ULONG_SIZE)


def write_struct(ptr: Any, ctype: str, fill: Callable[[Any], None]) -> None:
    """Build the struct zeroed on our side, fill it, then copy it out in one memmove."""
    require(ptr, ctype)
    out = ffi.new(ctype + " *")
    fill(out)
    ffi.memmove(ptr, out, ffi.sizeof(ctype))


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
    write_ulong(len_ptr, length)
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
    template = []
    for i in range(count):
        attr = ptr[i]
        attr_type, length = int(attr.type), int(attr.ulValueLen)
        if codec.is_template(attr_type):
            # The value is itself a CK_ATTRIBUTE array pointing into the caller's memory: flatten it now.
            if length % ATTRIBUTE_SIZE:
                raise CKRError(ck.CKR_ATTRIBUTE_VALUE_INVALID, "attribute array has the wrong size")
            nested = ffi.cast("CK_ATTRIBUTE *", attr.pValue) if length else NULL
            value = codec.pack_attributes(read_template(nested, length // ATTRIBUTE_SIZE))
        else:
            value = read_bytes(attr.pValue, length, "attribute value")
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
