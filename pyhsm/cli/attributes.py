"""Key attributes by their cloudhsm-cli names (`label`, `key-type`, `sign`, ...), both directions.

One table says, per name, which PKCS#11 attribute it is and how its value reads and prints; `key list` renders with
it, `--filter attr.NAME=VALUE`, `--attributes NAME=VALUE` and `key set-attribute --name` parse with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pyhsm import constants as ck
from pyhsm.cli.errors import UsageError
from pyhsm.objects.keys import CURVES

CLASSES = {"public-key": ck.CKO_PUBLIC_KEY, "private-key": ck.CKO_PRIVATE_KEY, "secret-key": ck.CKO_SECRET_KEY,
           "data": ck.CKO_DATA, "certificate": ck.CKO_CERTIFICATE}
KEY_TYPES = {"rsa": ck.CKK_RSA, "ec": ck.CKK_EC, "aes": ck.CKK_AES, "generic-secret": ck.CKK_GENERIC_SECRET,
             "des3": ck.CKK_DES3, "ec-edwards": ck.CKK_EC_EDWARDS, "ec-montgomery": ck.CKK_EC_MONTGOMERY,
             "sha1-hmac": ck.CKK_SHA_1_HMAC, "sha224-hmac": ck.CKK_SHA224_HMAC, "sha256-hmac": ck.CKK_SHA256_HMAC,
             "sha384-hmac": ck.CKK_SHA384_HMAC, "sha512-hmac": ck.CKK_SHA512_HMAC}
CURVE_NAMES = {params: curve.name for params, curve in CURVES.items()}
BOOLEANS = {"true": True, "false": False}


def _enum(names: Mapping[str, int]) -> tuple[Callable[[str], Any], Callable[[Any], Any]]:
    by_value = {v: k for k, v in names.items()}

    def parse(text: str) -> int:
        try:
            return names[text.lower()]
        except KeyError:
            raise UsageError(f"expected one of {', '.join(names)}, not {text!r}") from None

    return parse, lambda value: by_value.get(value, f"0x{value:x}")


def _parse_bool(text: str) -> bool:
    try:
        return BOOLEANS[text.lower()]
    except KeyError:
        raise UsageError(f"expected true or false, not {text!r}") from None


def _parse_hex(text: str) -> bytes:
    digits = text[2:] if text.lower().startswith("0x") else text
    try:
        return bytes.fromhex(digits)
    except ValueError:
        raise UsageError(f"expected hexadecimal bytes such as 0x0102, not {text!r}") from None


def _parse_int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise UsageError(f"expected a number, not {text!r}") from None


def _show_hex(value: bytes) -> str:
    return "0x" + bytes(value).hex() if value else ""


@dataclass(frozen=True)
class AttrSpec:
    name: str
    cka: int | None  # None: computed from other attributes (see derive())
    parse: Callable[[str], Any]
    show: Callable[[Any], Any]
    settable: bool = False  # by `key set-attribute` and `--attributes`


_class_parse, _class_show = _enum(CLASSES)
_type_parse, _type_show = _enum(KEY_TYPES)
_BOOL_NAMES = {
    "always-authenticate": ck.CKA_ALWAYS_AUTHENTICATE, "always-sensitive": ck.CKA_ALWAYS_SENSITIVE,
    "copyable": ck.CKA_COPYABLE, "decrypt": ck.CKA_DECRYPT, "derive": ck.CKA_DERIVE,
    "destroyable": ck.CKA_DESTROYABLE, "encrypt": ck.CKA_ENCRYPT, "extractable": ck.CKA_EXTRACTABLE,
    "local": ck.CKA_LOCAL, "modifiable": ck.CKA_MODIFIABLE, "never-extractable": ck.CKA_NEVER_EXTRACTABLE,
    "private": ck.CKA_PRIVATE, "sensitive": ck.CKA_SENSITIVE, "sign": ck.CKA_SIGN, "token": ck.CKA_TOKEN,
    "trusted": ck.CKA_TRUSTED, "unwrap": ck.CKA_UNWRAP, "verify": ck.CKA_VERIFY, "wrap": ck.CKA_WRAP,
    "wrap-with-trusted": ck.CKA_WRAP_WITH_TRUSTED,
}
# Set by the token, never by the caller (PKCS#11 section 4.9/4.10).
_TOKEN_SUPPLIED = {"always-sensitive", "local", "never-extractable"}

SPECS: dict[str, AttrSpec] = {spec.name: spec for spec in [
    AttrSpec("key-type", ck.CKA_KEY_TYPE, _type_parse, _type_show),
    AttrSpec("label", ck.CKA_LABEL, lambda t: t.encode("utf-8"), lambda v: bytes(v).decode("utf-8", "replace"),
             settable=True),
    AttrSpec("id", ck.CKA_ID, _parse_hex, _show_hex, settable=True),
    AttrSpec("check-value", ck.CKA_CHECK_VALUE, _parse_hex, _show_hex),
    AttrSpec("class", ck.CKA_CLASS, _class_parse, _class_show),
    *(AttrSpec(name, cka, _parse_bool, bool, settable=name not in _TOKEN_SUPPLIED)
      for name, cka in sorted(_BOOL_NAMES.items())),
    AttrSpec("key-length-bytes", ck.CKA_VALUE_LEN, _parse_int, int),
    AttrSpec("public-exponent", ck.CKA_PUBLIC_EXPONENT, _parse_hex, _show_hex),
    AttrSpec("modulus", ck.CKA_MODULUS, _parse_hex, _show_hex),
    AttrSpec("modulus-size-bits", None, _parse_int, int),
    AttrSpec("ec-point", ck.CKA_EC_POINT, _parse_hex, _show_hex),
    AttrSpec("curve", None, str.lower, str),
]}

READ_TYPES = [spec.cka for spec in SPECS.values() if spec.cka is not None] + [ck.CKA_EC_PARAMS]


def spec(name: str) -> AttrSpec:
    try:
        return SPECS[name.lower()]
    except KeyError:
        raise UsageError(f"unknown attribute {name!r}; known: {', '.join(SPECS)}") from None


def render(values: Mapping[int, Any]) -> dict[str, Any]:
    """cloudhsm-cli's `attributes` object of a key, from its readable (decoded) PKCS#11 attributes."""
    out: dict[str, Any] = {}
    for attr in SPECS.values():
        if attr.cka is not None and attr.cka in values:
            out[attr.name] = attr.show(values[attr.cka])
    if ck.CKA_MODULUS in values:
        out["modulus-size-bits"] = int.from_bytes(bytes(values[ck.CKA_MODULUS]), "big").bit_length()
    if ck.CKA_EC_PARAMS in values:
        params = bytes(values[ck.CKA_EC_PARAMS])
        out["curve"] = CURVE_NAMES.get(params, "0x" + params.hex())
    return out


def parse_assignments(pairs: list[str] | None, settable_only: bool = True) -> dict[int, Any]:
    """`--attributes NAME=VALUE ...` -> a PKCS#11 template (typed values)."""
    template: dict[int, Any] = {}
    for pair in pairs or []:
        name, sep, text = pair.partition("=")
        if not sep:
            raise UsageError(f"attributes are NAME=VALUE, not {pair!r}")
        attr = spec(name)
        if attr.cka is None or (settable_only and not attr.settable):
            raise UsageError(f"the attribute {attr.name!r} cannot be set")
        template[attr.cka] = attr.parse(text)
    return template
