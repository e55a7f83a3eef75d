"""`pyhsm crypto sign|verify rsa-pkcs|rsa-pkcs-pss|ecdsa|hmac` (cloudhsm-cli's crypto commands).

--data-type raw hashes on the token (CKM_SHA256_RSA_PKCS, CKM_ECDSA_SHA256, ...); digest signs a digest computed
elsewhere (CKM_RSA_PKCS over the DigestInfo, CKM_RSA_PKCS_PSS, CKM_ECDSA). ECDSA signatures are DER (X9.62
Ecdsa-Sig-Value), the form OpenSSL produces and checks; the token's raw r||s is converted both ways.
"""

from __future__ import annotations

import argparse
import base64
import binascii
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from pyhsm import constants as ck
from pyhsm.cli import quorum, select
from pyhsm.cli.context import Context
from pyhsm.cli.errors import CliError, UsageError
from pyhsm.cli.hashes import HASHES, MGFS
from pyhsm.cli.hsm import Hsm, key_reference
from pyhsm.cli.tree import SubParsers, add_filter, command, group
from pyhsm.errors import CKRError
from pyhsm.mechanisms.params import MechanismParam, PssParams

ALGORITHMS = ("rsa-pkcs", "rsa-pkcs-pss", "ecdsa", "hmac")


def _read(value: str | None, path: str | None, what: str) -> bytes:
    if path is not None:
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return base64.b64decode(value or "", validate=True)
    except binascii.Error:
        raise UsageError(f"--{what} is base64 (or use --{what}-path FILE)") from None


def mechanism_for(args: argparse.Namespace, data: bytes) -> tuple[int, MechanismParam, bytes]:
    """(mechanism, parameter, input to the token) for one algorithm, hash and data type."""
    hash_ = HASHES[args.hash_function]
    digest = args.data_type == "digest"
    if digest and args.algorithm == "hmac":
        raise UsageError("HMAC is computed over the data itself: --data-type digest does not apply")
    if digest and len(data) != hash_.size:
        raise UsageError(f"a {args.hash_function} digest is {hash_.size} bytes, the data is {len(data)}")
    if args.algorithm == "rsa-pkcs":
        return (ck.CKM_RSA_PKCS, None, hash_.digest_info + data) if digest else (hash_.rsa_pkcs, None, data)
    if args.algorithm == "rsa-pkcs-pss":
        salt = hash_.size if args.salt_length is None else args.salt_length
        param = PssParams(hash_.mechanism, MGFS[args.mgf], salt)
        return (ck.CKM_RSA_PKCS_PSS if digest else hash_.rsa_pss), param, data
    if args.algorithm == "ecdsa":
        return (ck.CKM_ECDSA if digest else hash_.ecdsa), None, data
    return hash_.hmac, None, data


def _sign(hsm: Hsm, args: argparse.Namespace) -> tuple[int, bytes]:
    key = select.one(hsm, args.key_filter)
    mechanism, param, data = mechanism_for(args, _read(args.data, args.data_path, "data"))
    quorum.apply_approval(hsm, args)
    signature = hsm.sign(mechanism, param, key, data)
    if args.algorithm == "ecdsa":
        half = len(signature) // 2
        signature = encode_dss_signature(int.from_bytes(signature[:half], "big"),
                                         int.from_bytes(signature[half:], "big"))
    return key, signature


def cmd_sign(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    key, signature = _sign(ctx.hsm(args), args)
    return {"key-reference": key_reference(key), "signature": base64.b64encode(signature).decode()}


def _raw_ecdsa(hsm: Hsm, key: int, der: bytes) -> bytes:
    """DER Ecdsa-Sig-Value -> the token's r||s, each as long as the curve order."""
    values = hsm.attributes(key, [ck.CKA_EC_PARAMS])
    from pyhsm.objects.keys import curve_for_params

    size = (curve_for_params(values[ck.CKA_EC_PARAMS]).key_size + 7) // 8
    try:
        r, s = decode_dss_signature(der)
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    except (ValueError, OverflowError):
        raise CliError("Signature verification failed: the signature is not a DER ECDSA signature") from None


def cmd_verify(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    hsm = ctx.hsm(args)
    key = select.one(hsm, args.key_filter)
    mechanism, param, data = mechanism_for(args, _read(args.data, args.data_path, "data"))
    signature = _read(args.signature, args.signature_path, "signature")
    if args.algorithm == "ecdsa":
        signature = _raw_ecdsa(hsm, key, signature)
    quorum.apply_approval(hsm, args)
    try:
        hsm.verify(mechanism, param, key, data, signature)
    except CKRError as exc:
        if exc.rv in (ck.CKR_SIGNATURE_INVALID, ck.CKR_SIGNATURE_LEN_RANGE):
            raise CliError("Signature verification failed: the signature does not match the data and key") from None
        raise
    return {"message": "Signature verified successfully"}


def add_parser(sub: SubParsers) -> None:
    crypto = group(sub, "crypto", "sign and verify with keys in the token")
    for verb, handler in (("sign", cmd_sign), ("verify", cmd_verify)):
        algorithms = group(crypto, verb, f"{verb} with a key in the token")
        for algorithm in ALGORITHMS:
            parser = command(algorithms, algorithm, f"{verb} with {algorithm}", handler)
            parser.set_defaults(algorithm=algorithm)
            add_filter(parser, "--key-filter", what=f"the key to {verb} with")
            parser.add_argument("--hash-function", choices=HASHES, required=True)
            quorum.add_approval(parser)
            data = parser.add_mutually_exclusive_group(required=True)
            data.add_argument("--data", metavar="BASE64", help="the data (or digest), base64")
            data.add_argument("--data-path", metavar="FILE", help="the data (or digest), raw bytes from a file")
            if algorithm != "hmac":
                parser.add_argument("--data-type", choices=("raw", "digest"), default="raw",
                                    help="raw: the token hashes the data (default); digest: the data is a digest")
            else:
                parser.set_defaults(data_type="raw")
            if algorithm == "rsa-pkcs-pss":
                parser.add_argument("--mgf", choices=MGFS, default="mgf1-sha256")
                parser.add_argument("--salt-length", type=int, metavar="BYTES",
                                    help="default: the hash length")
            if verb == "verify":
                sig = parser.add_mutually_exclusive_group(required=True)
                sig.add_argument("--signature", metavar="BASE64", help="the signature, base64")
                sig.add_argument("--signature-path", metavar="FILE", help="the signature, raw bytes from a file")
