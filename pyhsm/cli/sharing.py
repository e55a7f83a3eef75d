"""`pyhsm key share|unshare`: the owner of a private or secret key lets other crypto users use it."""

from __future__ import annotations

import argparse

from pyhsm.cli import quorum, select
from pyhsm.cli.context import Context
from pyhsm.cli.errors import UsageError
from pyhsm.cli.tree import SubParsers, add_filter, command


def _change(ctx: Context, args: argparse.Namespace, share: bool) -> dict[str, str]:
    if args.role != "crypto-user":
        raise UsageError("keys are shared with crypto users only (admins never use keys)")
    hsm = ctx.hsm(args)
    key = select.one(hsm, args.filter)
    quorum.apply_approval(hsm, args)
    (hsm.eng.share_key if share else hsm.eng.unshare_key)(hsm.session, key, args.username)
    return {"message": "Key shared successfully" if share else "Key unshared successfully"}


def cmd_share(ctx: Context, args: argparse.Namespace) -> dict[str, str]:
    return _change(ctx, args, share=True)


def cmd_unshare(ctx: Context, args: argparse.Namespace) -> dict[str, str]:
    return _change(ctx, args, share=False)


def add_parsers(key: SubParsers) -> None:
    for name, handler in (("share", cmd_share), ("unshare", cmd_unshare)):
        parser = command(key, name, f"{name} one of your keys with a crypto user", handler)
        add_filter(parser, what=f"the key to {name}")
        parser.add_argument("--username", required=True, help="the crypto user")
        parser.add_argument("--role", default="crypto-user", choices=("crypto-user", "admin"),
                            help="crypto-user (the only role keys are shared with)")
        quorum.add_approval(parser)
