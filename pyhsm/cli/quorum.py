"""`pyhsm quorum token-sign generate|list|list-quorum-values|set-quorum-value|delete` and `--approval FILE`.

A quorum token file (written by `generate`) is JSON:
  {"version": "pyhsm-quorum-1", "token_id": ..., "service": ..., "key_reference": ..., "expires": ...,
   "unsigned": <base64 of the bytes to sign>, "signatures": [{"username": "", "signature": ""}]}
Each approver signs the decoded "unsigned" bytes with the private key of their registered quorum key
(`openssl dgst -sha256 -sign approver.key`) and adds {"username", "signature": <base64>} to "signatures".
The command that needs the approval then takes `--approval FILE`: the CLI hands every signature to the token,
which checks them, and the action consumes the token.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyhsm.cli import select
from pyhsm.cli.context import Context
from pyhsm.cli.errors import CliError, UsageError
from pyhsm.cli.hsm import Hsm
from pyhsm.cli.tree import SubParsers, add_filter, command, group

VERSION = "pyhsm-quorum-1"
SERVICES = ("user", "quorum", "key-management", "key-usage")
TOKEN_SERVICES = ("user", "quorum")


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def add_approval(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--approval", metavar="FILE", help="a quorum token file holding the approvers' signatures")


def apply_approval(hsm: Hsm, args: argparse.Namespace) -> None:
    """Hand the signatures of an --approval file to the token before the action that needs them."""
    path = getattr(args, "approval", None)
    if path is None:
        return
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        token_id = str(document["token_id"])
        signatures = [(str(s["username"]), base64.b64decode(s["signature"], validate=True))
                      for s in document["signatures"] if s.get("signature")]
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise UsageError(f"{path} is not a quorum token file with base64 signatures") from None
    for username, signature in signatures:
        hsm.eng.quorum_approve(hsm.session, token_id, username, signature)


def cmd_generate(ctx: Context, args: argparse.Namespace) -> dict[str, str]:
    hsm = ctx.hsm(args)
    key = None
    if args.service in TOKEN_SERVICES:
        if args.key_filter:
            raise UsageError(f"the {args.service} service is not about a key: drop --key-filter")
    elif not args.key_filter:
        raise UsageError(f"the {args.service} service needs --key-filter to name the key")
    else:
        key = select.one(hsm, args.key_filter)
    token = hsm.eng.quorum_generate(hsm.session, args.service, key)
    document = {"version": VERSION, "token_id": token.id, "service": token.service,
                "key_reference": None if key is None else f"0x{key:016x}", "expires": _when(token.expires),
                "unsigned": base64.b64encode(token.payload()).decode(),
                "signatures": [{"username": "", "signature": ""}]}
    Path(args.token_file).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return {"filepath": str(args.token_file)}


def cmd_list(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    hsm = ctx.hsm(args)
    tokens = [{"token_id": t.id, "service": t.service, "username": t.user, "approvals": len(t.approvals),
               "approved_by": list(t.approvals), "expires": _when(t.expires)}
              for t in hsm.eng.quorum_list(hsm.session)]
    return {"tokens": tokens}


def cmd_values(ctx: Context, args: argparse.Namespace) -> dict[str, int]:
    hsm = ctx.hsm(args)
    return dict(hsm.eng.quorum_values(hsm.session))


def cmd_set_value(ctx: Context, args: argparse.Namespace) -> dict[str, str]:
    hsm = ctx.hsm(args)
    apply_approval(hsm, args)
    hsm.eng.set_quorum_value(hsm.session, args.service, args.value)
    return {"message": "Set quorum value successfully"}


def cmd_delete(ctx: Context, args: argparse.Namespace) -> dict[str, str]:
    hsm = ctx.hsm(args)
    known = {t.id for t in hsm.eng.quorum_list(hsm.session)}
    if args.token_id not in known:
        raise CliError(f"no quorum token {args.token_id!r}")
    hsm.eng.quorum_delete(hsm.session, args.token_id)
    return {"message": "Deleted quorum token successfully"}


def add_parser(sub: SubParsers) -> None:
    quorum = group(sub, "quorum", "M-of-N approval of sensitive actions")
    token_sign = group(quorum, "token-sign", "approvals by tokens that approvers sign")
    generate = command(token_sign, "generate", "generate a quorum token for a service and write it to a file",
                       cmd_generate, token_option=False)
    generate.add_argument("--service", required=True, choices=SERVICES)
    generate.add_argument("--token", dest="token_file", required=True, metavar="FILE",
                          help="the token file to write (select the HSM token with `pyhsm --token LABEL`)")
    add_filter(generate, "--key-filter", required=False, what="the key (key-management and key-usage)")
    command(token_sign, "list", "list the quorum tokens the login may see", cmd_list)
    command(token_sign, "list-quorum-values", "the quorum value of each token service", cmd_values)
    setv = command(token_sign, "set-quorum-value", "set how many approvals a token service needs (admins)",
                   cmd_set_value)
    setv.add_argument("--service", required=True, choices=TOKEN_SERVICES)
    setv.add_argument("--value", required=True, type=int, help="1 (no quorum) to 8")
    add_approval(setv)
    delete = command(token_sign, "delete", "delete a quorum token", cmd_delete)
    delete.add_argument("--token-id", required=True)
