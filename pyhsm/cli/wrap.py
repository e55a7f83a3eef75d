"""`pyhsm key wrap <mechanism>` and `pyhsm key unwrap <mechanism>`, cloudhsm-cli's names for PKCS#11 wrapping.

The wrapped bytes go to stdout as base64 (`wrapped_key_data`) or to a file (--path); unwrap reads them back from
--data (base64) or --data-path (the raw bytes).
"""

from __future__ import annotations

import argparse
import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyhsm import constants as ck
from pyhsm.cli import attributes, quorum, select
from pyhsm.cli.context import Context
from pyhsm.cli.errors import UsageError
from pyhsm.cli.hashes import HASHES, MGFS
from pyhsm.cli.hsm import Hsm, key_reference
from pyhsm.cli.keygen import PRIVATE_DEFAULTS, SECRET_DEFAULTS
from pyhsm.cli.keys import describe
from pyhsm.cli.tree import SubParsers, add_filter, command, group
from pyhsm.mechanisms.params import GcmParams, MechanismParam, OaepParams, RsaAesWrapParams

GCM_IV_BYTES = 12

ParamMaker = Callable[[Hsm, argparse.Namespace, bool], tuple[MechanismParam, dict[str, str]]]


def _none(hsm: Hsm, args: argparse.Namespace, wrapping: bool) -> tuple[MechanismParam, dict[str, str]]:
    return None, {}


def _oaep(hsm: Hsm, args: argparse.Namespace, wrapping: bool) -> tuple[MechanismParam, dict[str, str]]:
    return OaepParams(HASHES[args.hash_function].mechanism, MGFS[args.mgf], ck.CKZ_DATA_SPECIFIED, b""), {}


def _rsa_aes(hsm: Hsm, args: argparse.Namespace, wrapping: bool) -> tuple[MechanismParam, dict[str, str]]:
    oaep, _ = _oaep(hsm, args, wrapping)
    assert isinstance(oaep, OaepParams)
    return RsaAesWrapParams(args.aes_key_bits, oaep), {}


def _gcm(hsm: Hsm, args: argparse.Namespace, wrapping: bool) -> tuple[MechanismParam, dict[str, str]]:
    aad = _hex(args.aad, "--aad") if args.aad else b""
    if wrapping:
        iv = hsm.eng.generate_random(hsm.session, GCM_IV_BYTES)
    elif args.iv is None:
        raise UsageError("--iv is required to unwrap with aes-gcm (the wrap command printed it)")
    else:
        iv = _hex(args.iv, "--iv")
    return GcmParams(iv, len(iv) * 8, aad, args.tag_length_bits), {"iv": "0x" + iv.hex()}


def _cloudhsm_gcm(hsm: Hsm, args: argparse.Namespace, wrapping: bool) -> tuple[MechanismParam, dict[str, str]]:
    # The token makes the IV and puts it in front of the wrapped data; the caller passes none.
    aad = _hex(args.aad, "--aad") if args.aad else b""
    return GcmParams(b"", 0, aad, args.tag_length_bits), {}


@dataclass(frozen=True)
class WrapKind:
    mechanism: int
    make_param: ParamMaker
    options: str  # which extra options the command takes: "", "gcm", "oaep"
    help: str


KINDS = {
    "aes-gcm": WrapKind(ck.CKM_AES_GCM, _gcm, "gcm", "AES-GCM, IV made by the token and printed"),
    "aes-no-pad": WrapKind(ck.CKM_CLOUDHSM_AES_KEY_WRAP_NO_PAD, _none, "", "AES key wrap (RFC 3394), no padding"),
    "aes-pkcs5-pad": WrapKind(ck.CKM_CLOUDHSM_AES_KEY_WRAP_PKCS5_PAD, _none, "", "AES key wrap, PKCS#5 padding"),
    "aes-zero-pad": WrapKind(ck.CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD, _none, "",
                             "AES key wrap, zero padding (RFC 5649)"),
    "cloudhsm-aes-gcm": WrapKind(ck.CKM_CLOUDHSM_AES_GCM, _cloudhsm_gcm, "gcm", "AES-GCM with the IV prepended"),
    "rsa-aes": WrapKind(ck.CKM_RSA_AES_KEY_WRAP, _rsa_aes, "oaep",
                        "a fresh AES key under RSA-OAEP, the key under it (RFC 5649)"),
    "rsa-oaep": WrapKind(ck.CKM_RSA_PKCS_OAEP, _oaep, "oaep", "RSA-OAEP"),
    "rsa-pkcs": WrapKind(ck.CKM_RSA_PKCS, _none, "", "RSA PKCS#1 v1.5"),
}

UNWRAP_CLASSES = {
    "aes": (ck.CKO_SECRET_KEY, ck.CKK_AES), "des3": (ck.CKO_SECRET_KEY, ck.CKK_DES3),
    "generic-secret": (ck.CKO_SECRET_KEY, ck.CKK_GENERIC_SECRET),
    "rsa-private": (ck.CKO_PRIVATE_KEY, ck.CKK_RSA), "ec-private": (ck.CKO_PRIVATE_KEY, ck.CKK_EC),
}


def _hex(text: str, option: str) -> bytes:
    try:
        return bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise UsageError(f"{option} is hexadecimal (0x...), not {text!r}") from None


def cmd_wrap(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    kind = KINDS[args.kind]
    hsm = ctx.hsm(args)
    payload = select.one(hsm, args.payload_filter, "payload key")
    wrapping = select.one(hsm, args.wrapping_filter, "wrapping key")
    param, extra = kind.make_param(hsm, args, True)
    quorum.apply_approval(hsm, args)
    wrapped = hsm.wrap(kind.mechanism, param, wrapping, payload)
    data: dict[str, Any] = {"payload_key_reference": key_reference(payload),
                            "wrapping_key_reference": key_reference(wrapping), **extra}
    if args.path:
        Path(args.path).write_bytes(wrapped)
        data["wrapped_key_path"] = str(args.path)
    else:
        data["wrapped_key_data"] = base64.b64encode(wrapped).decode()
    return data


def cmd_unwrap(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    kind = KINDS[args.kind]
    if args.data_path:
        try:
            wrapped = Path(args.data_path).read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {args.data_path}: {exc.strerror or exc}") from None
    else:
        try:
            wrapped = base64.b64decode(args.data, validate=True)
        except binascii.Error:
            raise UsageError("--data is base64") from None
    object_class, key_type = UNWRAP_CLASSES[args.key_type_class]
    defaults = SECRET_DEFAULTS if object_class == ck.CKO_SECRET_KEY else PRIVATE_DEFAULTS
    template: dict[int, Any] = {ck.CKA_CLASS: object_class, ck.CKA_KEY_TYPE: key_type, ck.CKA_TOKEN: not args.session,
                                ck.CKA_LABEL: args.label.encode("utf-8"), **defaults}
    template |= attributes.parse_assignments(args.attributes)
    hsm = ctx.hsm(args)
    unwrapping = select.one(hsm, args.filter, "unwrapping key")
    param, _ = kind.make_param(hsm, args, False)
    quorum.apply_approval(hsm, args)
    return {"key": describe(hsm, hsm.unwrap(kind.mechanism, param, unwrapping, wrapped, template))}


def _options(parser: argparse.ArgumentParser, kind: WrapKind, unwrapping: bool) -> None:
    if kind.options == "gcm":
        parser.add_argument("--aad", metavar="HEX", help="additional authenticated data")
        parser.add_argument("--tag-length-bits", type=int, default=128, metavar="BITS", help="default 128")
        if unwrapping and kind.make_param is _gcm:
            parser.add_argument("--iv", metavar="HEX", help="the IV the wrap command printed")
    elif kind.options == "oaep":
        parser.add_argument("--hash-function", choices=HASHES, default="sha256", help="OAEP hash (default sha256)")
        parser.add_argument("--mgf", choices=MGFS, default="mgf1-sha256",
                            help="OAEP mask generation (default mgf1-sha256)")
        if kind.make_param is _rsa_aes:
            parser.add_argument("--aes-key-bits", type=int, choices=(128, 192, 256), default=256,
                                help="size of the intermediate AES key (default 256)")


def add_parsers(key: SubParsers) -> None:
    wrap = group(key, "wrap", "wrap (export, encrypted) a key with another key")
    unwrap = group(key, "unwrap", "unwrap (import) a wrapped key")
    for name, kind in KINDS.items():
        w = command(wrap, name, f"wrap with {kind.help}", cmd_wrap)
        w.set_defaults(kind=name)
        add_filter(w, "--payload-filter", what="the key to wrap")
        add_filter(w, "--wrapping-filter", what="the wrapping key")
        w.add_argument("--path", help="write the wrapped key to this file instead of printing it as base64")
        _options(w, kind, False)
        quorum.add_approval(w)

        u = command(unwrap, name, f"unwrap with {kind.help}", cmd_unwrap)
        u.set_defaults(kind=name)
        add_filter(u, what="the unwrapping key")
        u.add_argument("--key-type-class", required=True, choices=UNWRAP_CLASSES, help="what the wrapped key is")
        u.add_argument("--label", required=True, help="the new key's label")
        source = u.add_mutually_exclusive_group(required=True)
        source.add_argument("--data-path", metavar="FILE", help="the wrapped key as raw bytes")
        source.add_argument("--data", metavar="BASE64", help="the wrapped key as base64")
        u.add_argument("--attributes", nargs="+", metavar="NAME=VALUE", help="attributes of the new key")
        u.add_argument("--session", action="store_true", help="a session key, gone when the session ends")
        _options(u, kind, True)
        quorum.add_approval(u)
