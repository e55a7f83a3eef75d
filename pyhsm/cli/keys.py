"""`pyhsm key list|delete|set-attribute|generate-file|import pem` (cloudhsm-cli's key commands)."""

from __future__ import annotations

import argparse
import base64
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pyhsm import constants as ck
from pyhsm.cli import attributes, output, quorum, select
from pyhsm.cli.context import Context
from pyhsm.cli.errors import CliError, UsageError
from pyhsm.cli.hsm import Hsm, key_reference
from pyhsm.cli.tree import SubParsers, add_filter, command, group
from pyhsm.objects.keys import CURVE_PARAMS, CURVES, der_octet_string, der_tlv

DEFAULT_MAX_ITEMS = 10


def describe(hsm: Hsm, handle: int, verbose: bool = True) -> dict[str, Any]:
    """One entry of `matched_keys`: the reference, and the label (brief) or every readable attribute (verbose)."""
    shown = attributes.render(hsm.attributes(handle, attributes.READ_TYPES))
    if not verbose:
        return {"key-reference": key_reference(handle), "attributes": {"label": shown.get("label", "")}}
    return {"key-reference": key_reference(handle), "key-info": key_info(hsm, handle), "attributes": shown}


def key_info(hsm: Hsm, handle: int) -> dict[str, Any]:
    """cloudhsm-cli's key-info: who owns the key, with whom it is shared, its quorum values."""
    sharing = hsm.eng.key_sharing(hsm.session, handle)
    return {"key-owners": [{"username": sharing.owner, "key-coverage": "full"}],
            "shared-users": [{"username": name, "key-coverage": "full"} for name in sharing.shared_users],
            "key-quorum-values": {"manage-key-quorum-value": sharing.manage_quorum,
                                  "use-key-quorum-value": sharing.use_quorum},
            "cluster-coverage": "full"}


def cmd_list(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    try:
        start = int(args.starting_token or 0)
    except ValueError:
        raise UsageError(f"--starting-token is a token printed as next_token, not {args.starting_token!r}") from None
    if start < 0 or args.max_items < 1:
        raise UsageError("--starting-token must be >= 0 and --max-items >= 1")
    hsm = ctx.hsm(args)
    found = select.matching(hsm, args.filter)
    page = found[start:start + args.max_items]
    matched = []
    with output.progress("Reading keys", total=len(page)) as bar:
        for handle in page:
            matched.append(describe(hsm, handle, args.verbose))
            bar.advance()
    data: dict[str, Any] = {"matched_keys": matched, "total_key_count": len(found),
                            "returned_key_count": len(matched)}
    if start + len(page) < len(found):
        data["next_token"] = str(start + len(page))
    return data


def cmd_delete(ctx: Context, args: argparse.Namespace) -> dict[str, str]:
    hsm = ctx.hsm(args)
    hsm.destroy(select.one(hsm, args.filter))
    return {"message": "Key deleted successfully"}


def cmd_set_attribute(ctx: Context, args: argparse.Namespace) -> dict[str, str]:
    template = attributes.parse_assignments([f"{args.name}={args.value}"])
    hsm = ctx.hsm(args)
    key = select.one(hsm, args.filter)
    quorum.apply_approval(hsm, args)
    hsm.set_attributes(key, template)
    return {"message": "Attribute set successfully"}


# ---- files ----------------------------------------------------------------------------------------------
def public_key_of(hsm: Hsm, handle: int) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    """The public key of an RSA or EC key pair half, from attributes anybody may read."""
    values = hsm.attributes(handle, [ck.CKA_KEY_TYPE, ck.CKA_MODULUS, ck.CKA_PUBLIC_EXPONENT, ck.CKA_EC_PARAMS,
                                     ck.CKA_EC_POINT])
    key_type = values.get(ck.CKA_KEY_TYPE)
    if key_type == ck.CKK_RSA and ck.CKA_PUBLIC_EXPONENT in values:
        return rsa.RSAPublicNumbers(int.from_bytes(values[ck.CKA_PUBLIC_EXPONENT], "big"),
                                    int.from_bytes(values[ck.CKA_MODULUS], "big")).public_key()
    if key_type == ck.CKK_EC and ck.CKA_EC_POINT in values:
        curve = CURVES.get(bytes(values[ck.CKA_EC_PARAMS]))
        tlv = der_tlv(bytes(values[ck.CKA_EC_POINT]))
        if curve is not None and tlv is not None and tlv[0] == 0x04:
            return ec.EllipticCurvePublicKey.from_encoded_point(curve, tlv[1])
    raise CliError("only RSA and EC keys have a public key to write")


def reference_uri(hsm: Hsm, handle: int) -> str:
    """An RFC 7512 URI naming the key in this token, which OpenSSL's pkcs11 engine and p11tool accept."""
    from urllib.parse import quote

    values = hsm.attributes(handle, [ck.CKA_LABEL, ck.CKA_ID, ck.CKA_CLASS])
    kind = {ck.CKO_PUBLIC_KEY: "public", ck.CKO_PRIVATE_KEY: "private", ck.CKO_SECRET_KEY: "secret-key"}
    parts = [f"token={quote(hsm.token_label, safe='')}"]
    if values.get(ck.CKA_LABEL):
        parts.append("object=" + quote(bytes(values[ck.CKA_LABEL]), safe=""))
    if values.get(ck.CKA_ID):
        parts.append("id=" + "".join(f"%{b:02X}" for b in bytes(values[ck.CKA_ID])))
    parts.append(f"type={kind[values[ck.CKA_CLASS]]}")
    return "pkcs11:" + ";".join(parts)


def cmd_generate_file(ctx: Context, args: argparse.Namespace) -> dict[str, str]:
    hsm = ctx.hsm(args)
    handle = select.one(hsm, args.filter)
    if args.encoding == "pem":
        text = public_key_of(hsm, handle).public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    else:
        # The key never leaves the token: the file only names it (cloudhsm-cli's "fake PEM" plays this role).
        body = base64.encodebytes(reference_uri(hsm, handle).encode()).decode()
        text = f"-----BEGIN PYHSM KEY REFERENCE-----\n{body}-----END PYHSM KEY REFERENCE-----\n"
    Path(args.path).write_text(text, encoding="ascii")
    return {"message": "Successfully generated key file"}


def cmd_import_pem(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    try:
        key = serialization.load_pem_public_key(Path(args.path).read_bytes())
    except OSError as exc:
        raise UsageError(f"cannot read {args.path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CliError(f"{args.path} is not a PEM public key: {exc}") from None
    template: dict[int, Any] = {ck.CKA_CLASS: ck.CKO_PUBLIC_KEY, ck.CKA_TOKEN: True,
                                ck.CKA_LABEL: args.label.encode("utf-8")}
    if args.key_type_class == "rsa-public" and isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        template |= {ck.CKA_KEY_TYPE: ck.CKK_RSA, ck.CKA_MODULUS: _be(numbers.n),
                     ck.CKA_PUBLIC_EXPONENT: _be(numbers.e)}
    elif args.key_type_class == "ec-public" and isinstance(key, ec.EllipticCurvePublicKey):
        params = CURVE_PARAMS.get(type(key.curve))
        if params is None:
            raise CliError(f"the curve {key.curve.name} is not supported")
        point = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        template |= {ck.CKA_KEY_TYPE: ck.CKK_EC, ck.CKA_EC_PARAMS: params, ck.CKA_EC_POINT: der_octet_string(point)}
    else:
        raise CliError(f"{args.path} does not hold an {args.key_type_class} key")
    template |= attributes.parse_assignments(args.attributes)
    hsm = ctx.hsm(args)
    return {"key": describe(hsm, hsm.create(template)), "message": "Successfully imported key"}


def _be(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")


def add_parser(sub: SubParsers) -> None:
    from pyhsm.cli import backup, keygen, sharing, wrap

    key = group(sub, "key", "list, generate, import, share, wrap and delete keys")
    lst = command(key, "list", "list the keys the login may see", cmd_list,
                  description="List keys (own, shared with you, and all public keys), 10 at a time by default. "
                              "--verbose shows every readable attribute.")
    add_filter(lst, required=False, what="which keys to list")
    lst.add_argument("--max-items", type=int, default=DEFAULT_MAX_ITEMS, metavar="N",
                     help=f"keys per page (default {DEFAULT_MAX_ITEMS}); the output's next_token continues")
    lst.add_argument("--starting-token", metavar="TOKEN", help="the next_token of the previous page")
    lst.add_argument("-v", "--verbose", action="store_true", help="show key-info and every attribute")

    delete = command(key, "delete", "delete one key", cmd_delete)
    add_filter(delete, what="the key to delete")

    setattr_ = command(key, "set-attribute", "change one attribute of one key", cmd_set_attribute,
                       epilog=f"Settable: {', '.join(n for n, s in attributes.SPECS.items() if s.settable)}")
    add_filter(setattr_, what="the key to change")
    setattr_.add_argument("--name", required=True, help="the attribute, e.g. label, encrypt, id")
    setattr_.add_argument("--value", required=True, help="true/false, text, or 0xHEX for id")
    quorum.add_approval(setattr_)

    gen_file = command(key, "generate-file", "write a key's public part (pem) or a reference to it "
                       "(reference-pem) to a file", cmd_generate_file)
    add_filter(gen_file, what="the key")
    gen_file.add_argument("--encoding", choices=("pem", "reference-pem"), required=True,
                          help="pem: the public key (SubjectPublicKeyInfo); reference-pem: a PEM block holding "
                               "the key's PKCS#11 URI (the key itself never leaves the token)")
    gen_file.add_argument("--path", required=True, help="the file to write")

    imp = key.add_parser("import", help="import a key from a file", description="import a key from a file")
    imp_sub = imp.add_subparsers(dest="import_command", metavar="FORMAT", required=True)
    pem = command(imp_sub, "pem", "import a PEM public key", cmd_import_pem)
    pem.add_argument("--path", required=True, help="the PEM file")
    pem.add_argument("--label", required=True, help="the new key's label")
    pem.add_argument("--key-type-class", required=True, choices=("rsa-public", "ec-public"))
    pem.add_argument("--attributes", nargs="+", metavar="NAME=VALUE", help="extra attributes")

    keygen.add_parsers(key)
    sharing.add_parsers(key)
    wrap.add_parsers(key)
    backup.add_replicate_parser(key)
