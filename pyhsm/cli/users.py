"""`pyhsm user create|delete|list|change-password` and `user change-quorum token-sign register`.

New passwords never come from arguments: --password-file FILE, $PYHSM_NEW_PASSWORD, or a prompt (asked twice).
$PYHSM_PASSWORD stays the password of whoever runs the command.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import Any

from pyhsm.cli import quorum
from pyhsm.cli.context import Context, read_password
from pyhsm.cli.errors import CliError, UsageError
from pyhsm.cli.hsm import ROLES, Hsm
from pyhsm.cli.tree import SubParsers, command, group

ENV_NEW_PASSWORD = "PYHSM_NEW_PASSWORD"


def new_password(path: str | None) -> bytes:
    if path is not None:
        return read_password(path).encode("utf-8")
    if os.environ.get(ENV_NEW_PASSWORD):
        return os.environ[ENV_NEW_PASSWORD].encode("utf-8")
    if sys.stdin is not None and sys.stdin.isatty():
        first = getpass.getpass("New password: ")
        if getpass.getpass("New password (again): ") != first:
            raise UsageError("the two passwords differ")
        if first:
            return first.encode("utf-8")
    raise UsageError(f"no new password: use --password-file FILE, ${ENV_NEW_PASSWORD}, or a terminal")


def cmd_create(ctx: Context, args: argparse.Namespace) -> dict[str, str]:
    password = new_password(args.password_file)
    hsm = ctx.hsm(args)
    quorum.apply_approval(hsm, args)
    info = hsm.eng.create_user(hsm.session, args.username, args.role, password)
    return {"username": info.name, "role": info.role}


def cmd_delete(ctx: Context, args: argparse.Namespace) -> dict[str, str]:
    hsm = ctx.hsm(args)
    role = _role_of(hsm, args.username, args.role)
    quorum.apply_approval(hsm, args)
    hsm.eng.delete_user(hsm.session, args.username)
    return {"username": args.username.lower(), "role": role}


def cmd_change_password(ctx: Context, args: argparse.Namespace) -> dict[str, str]:
    password = new_password(args.password_file)
    hsm = ctx.hsm(args)
    role = _role_of(hsm, args.username, args.role)
    quorum.apply_approval(hsm, args)
    hsm.eng.change_password(hsm.session, args.username, password)
    return {"username": args.username.lower(), "role": role}


def _role_of(hsm: Hsm, name: str, expected: str | None) -> str:
    for info in hsm.eng.list_users(hsm.session):
        if info.name == name.lower():
            if expected is not None and info.role != expected:
                raise CliError(f"{info.name!r} is a{'n' if info.role == 'admin' else ''} {info.role}, not {expected}")
            return str(info.role)
    raise CliError(f"no user named {name!r}")


def cmd_list(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    hsm = ctx.hsm(args)
    users = [{"username": u.name, "role": u.role, "locked": "true" if u.locked else "false", "mfa": [],
              "quorum": [{"strategy": "token-sign", "status": "enabled"}] if u.has_quorum_key else [],
              "cluster-coverage": "full"} for u in hsm.eng.list_users(hsm.session)]
    return {"users": users}


def cmd_register_quorum_key(ctx: Context, args: argparse.Namespace) -> dict[str, str]:
    try:
        pem = Path(args.public_key).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {args.public_key}: {exc.strerror or exc}") from None
    hsm = ctx.hsm(args)
    hsm.eng.register_quorum_key(hsm.session, pem)
    return {"username": hsm.username or "", "role": hsm.role or ""}


def add_parser(sub: SubParsers) -> None:
    user = group(sub, "user", "manage the token's admins and crypto users (admins)")
    create = command(user, "create", "create a user", cmd_create)
    create.add_argument("--username", required=True, help="1-31 characters of a-z 0-9 _ . -")
    create.add_argument("--role", required=True, choices=ROLES)
    delete = command(user, "delete", "delete a user who owns no keys", cmd_delete)
    delete.add_argument("--username", required=True)
    change = command(user, "change-password", "set a user's password (yours, or anyone's as an admin)",
                     cmd_change_password)
    change.add_argument("--username", required=True)
    for parser in (create, change):
        parser.add_argument("--password-file", metavar="FILE",
                            help=f"the new password (first line of FILE; else ${ENV_NEW_PASSWORD} or a prompt)")
    for parser in (delete, change):
        parser.add_argument("--role", choices=ROLES, help="the user's role (as cloudhsm-cli asks; checked)")
    for parser in (create, delete, change):
        quorum.add_approval(parser)
    command(user, "list", "list users, their roles and lockout state", cmd_list)

    change_quorum = group(user, "change-quorum", "register your quorum key")
    token_sign = group(change_quorum, "token-sign", "quorum approvals by signed tokens")
    register = command(token_sign, "register", "register the public key whose private key signs your approvals",
                       cmd_register_quorum_key)
    register.add_argument("--public-key", required=True, metavar="PEM",
                          help="RSA (2048 bits or more) or EC P-256/384/521 public key, PEM")
