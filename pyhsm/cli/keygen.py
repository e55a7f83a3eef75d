"""`pyhsm key generate-symmetric aes|generic-secret|des3` and `key generate-asymmetric-pair rsa|ec`.

Templates start from cloudhsm-cli's defaults (token, private, sensitive, extractable; sign/verify on;
encrypt/decrypt/wrap/unwrap/derive off) and `--attributes NAME=VALUE` changes them.
"""

from __future__ import annotations

import argparse
from typing import Any

from pyhsm import constants as ck
from pyhsm.cli import attributes, output
from pyhsm.cli.context import Context
from pyhsm.cli.errors import UsageError
from pyhsm.cli.keys import describe
from pyhsm.cli.tree import SubParsers, command, group
from pyhsm.objects.keys import CURVES

SECRET_DEFAULTS = {ck.CKA_PRIVATE: True, ck.CKA_SENSITIVE: True, ck.CKA_EXTRACTABLE: True, ck.CKA_SIGN: True,
                   ck.CKA_VERIFY: True, ck.CKA_ENCRYPT: False, ck.CKA_DECRYPT: False, ck.CKA_WRAP: False,
                   ck.CKA_UNWRAP: False, ck.CKA_DERIVE: False}
PUBLIC_DEFAULTS = {ck.CKA_VERIFY: True, ck.CKA_ENCRYPT: False, ck.CKA_WRAP: False, ck.CKA_DERIVE: False}
PRIVATE_DEFAULTS = {ck.CKA_PRIVATE: True, ck.CKA_SENSITIVE: True, ck.CKA_EXTRACTABLE: True, ck.CKA_SIGN: True,
                    ck.CKA_DECRYPT: False, ck.CKA_UNWRAP: False, ck.CKA_DERIVE: False}

# name -> (key generation mechanism, CKK_*, allowed lengths in bytes or None for a range)
SYMMETRIC = {
    "aes": (ck.CKM_AES_KEY_GEN, ck.CKK_AES, (16, 24, 32)),
    "generic-secret": (ck.CKM_GENERIC_SECRET_KEY_GEN, ck.CKK_GENERIC_SECRET, None),
    "des3": (ck.CKM_DES3_KEY_GEN, ck.CKK_DES3, (24,)),
}
CURVE_ALIASES = {"prime256v1": "secp256r1"}
CURVE_BY_NAME = {curve.name: params for params, curve in CURVES.items()}
GENERIC_SECRET_MAX = 800


def _label(text: str) -> bytes:
    label = text.encode("utf-8")
    if len(label) > 127:
        raise UsageError("labels are at most 127 bytes")
    return label


def cmd_symmetric(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    mechanism, key_type, lengths = SYMMETRIC[args.kind]
    length = args.key_length_bytes or (lengths[0] if lengths and len(lengths) == 1 else None)
    if length is None:
        raise UsageError("--key-length-bytes is required")
    if (lengths and length not in lengths) or not 1 <= length <= GENERIC_SECRET_MAX:
        allowed = ", ".join(map(str, lengths)) if lengths else f"1 to {GENERIC_SECRET_MAX}"
        raise UsageError(f"{args.kind} keys are {allowed} bytes long")
    template: dict[int, Any] = {ck.CKA_CLASS: ck.CKO_SECRET_KEY, ck.CKA_KEY_TYPE: key_type,
                                ck.CKA_TOKEN: not args.session, ck.CKA_LABEL: _label(args.label),
                                **SECRET_DEFAULTS}
    if args.kind != "des3":
        template[ck.CKA_VALUE_LEN] = length
    template |= attributes.parse_assignments(args.attributes) | owner_controls(args)
    hsm = ctx.hsm(args)
    handle = hsm.generate_key(mechanism, template)
    return {"key": describe(hsm, handle)}


def cmd_rsa(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    if args.modulus_size_bits < 2048 or args.modulus_size_bits % 256:
        raise UsageError("--modulus-size-bits is 2048 to 4096 in steps of 256")
    if args.public_exponent < 65537 or args.public_exponent % 2 == 0:
        raise UsageError("--public-exponent must be odd and at least 65537")
    exponent = args.public_exponent.to_bytes((args.public_exponent.bit_length() + 7) // 8, "big")
    public = {ck.CKA_MODULUS_BITS: args.modulus_size_bits, ck.CKA_PUBLIC_EXPONENT: exponent}
    return _pair(ctx, args, ck.CKM_RSA_PKCS_KEY_PAIR_GEN, public, f"RSA-{args.modulus_size_bits}")


def cmd_ec(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    name = CURVE_ALIASES.get(args.curve, args.curve)
    return _pair(ctx, args, ck.CKM_EC_KEY_PAIR_GEN, {ck.CKA_EC_PARAMS: CURVE_BY_NAME[name]}, name)


def _pair(ctx: Context, args: argparse.Namespace, mechanism: int, public_material: dict[int, Any],
          what: str) -> dict[str, Any]:
    token = not args.session
    public = {ck.CKA_TOKEN: token, ck.CKA_LABEL: _label(args.public_label), **PUBLIC_DEFAULTS, **public_material}
    private = {ck.CKA_TOKEN: token, ck.CKA_LABEL: _label(args.private_label), **PRIVATE_DEFAULTS}
    public |= attributes.parse_assignments(args.public_attributes)
    private |= attributes.parse_assignments(args.private_attributes) | owner_controls(args)
    hsm = ctx.hsm(args)
    with output.progress(f"Generating an {what} key pair"):
        pub, priv = hsm.generate_key_pair(mechanism, public, private)
    return {"public_key": describe(hsm, pub), "private_key": describe(hsm, priv)}


def owner_controls(args: argparse.Namespace) -> dict[int, Any]:
    """Sharing and key quorum values, which only the template that makes a key may set."""
    template: dict[int, Any] = {}
    if args.share_crypto_users:
        template[ck.CKA_PYHSM_SHARED_USERS] = ",".join(u.lower() for u in args.share_crypto_users).encode()
    if args.manage_quorum is not None:
        template[ck.CKA_PYHSM_MANAGE_QUORUM] = args.manage_quorum
    if args.use_quorum is not None:
        template[ck.CKA_PYHSM_USE_QUORUM] = args.use_quorum
    return template


def _common(parser: argparse.ArgumentParser, which: str = "key") -> None:
    parser.add_argument("--session", action="store_true", help="a session key, gone when the session ends")
    parser.add_argument("--share-crypto-users", nargs="+", metavar="USER",
                        help=f"crypto users who may use the {which.replace('-', ' ')} from the start")
    parser.add_argument(f"--manage-{which}-quorum-value", dest="manage_quorum", type=int, metavar="M",
                        help="approvals needed to share, unshare, wrap or change the key (1-8; default none)")
    parser.add_argument(f"--use-{which}-quorum-value", dest="use_quorum", type=int, metavar="M",
                        help="approvals needed to use the key (1-8; default none)")


def add_parsers(key: SubParsers) -> None:
    sym = group(key, "generate-symmetric", "generate a secret key")
    for kind, (_, _, lengths) in SYMMETRIC.items():
        parser = command(sym, kind, f"generate a {kind} key", cmd_symmetric)
        parser.set_defaults(kind=kind)
        parser.add_argument("--label", required=True, help="the key's label (at most 127 bytes)")
        choices = ", ".join(map(str, lengths)) if lengths else f"1-{GENERIC_SECRET_MAX}"
        parser.add_argument("--key-length-bytes", type=int, required=kind != "des3", metavar="N",
                            help=f"key length in bytes ({choices})")
        parser.add_argument("--attributes", nargs="+", metavar="NAME=VALUE",
                            help="attributes changing the defaults, e.g. encrypt=true decrypt=true")
        _common(parser)

    pair = group(key, "generate-asymmetric-pair", "generate a key pair")
    rsa = command(pair, "rsa", "generate an RSA key pair", cmd_rsa)
    rsa.add_argument("--modulus-size-bits", type=int, required=True, metavar="BITS", help="2048 to 4096")
    rsa.add_argument("--public-exponent", type=lambda t: int(t, 0), default=65537, metavar="E",
                     help="odd, at least 65537 (default)")
    ec = command(pair, "ec", "generate an EC key pair", cmd_ec)
    ec.add_argument("--curve", required=True, choices=sorted([*CURVE_BY_NAME, *CURVE_ALIASES]))
    for parser in (rsa, ec):
        parser.add_argument("--public-label", required=True, help="the public key's label")
        parser.add_argument("--private-label", required=True, help="the private key's label")
        parser.add_argument("--public-attributes", nargs="+", metavar="NAME=VALUE", help="public key attributes")
        parser.add_argument("--private-attributes", nargs="+", metavar="NAME=VALUE",
                            help="private key attributes")
        _common(parser, "private-key")

