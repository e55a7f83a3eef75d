"""`pyhsm login` and `pyhsm logout`.

In the interactive shell the login lasts until `logout`; in single-command mode `login` checks the credentials
(every other command logs in by itself from $PYHSM_ROLE/$PYHSM_USERNAME/$PYHSM_PASSWORD).
"""

from __future__ import annotations

import argparse
import os

from pyhsm.cli.context import ENV_USERNAME, Context, read_password, role_from
from pyhsm.cli.errors import CliError
from pyhsm.cli.hsm import ROLES
from pyhsm.cli.tree import SubParsers, command


def cmd_login(ctx: Context, args: argparse.Namespace) -> dict[str, str]:
    role = role_from(args.role)
    username = args.username or os.environ.get(ENV_USERNAME) or ""
    hsm = ctx.hsm(args, login=False)
    if hsm.logged_in:
        raise CliError(f"already logged in as {hsm.username or hsm.role}: run `logout` first")
    hsm.login(username or None, role, read_password(args.password_file))
    return {"username": username, "role": role}


def cmd_logout(ctx: Context, args: argparse.Namespace) -> str:
    hsm = ctx.current
    if hsm is None or not hsm.logged_in:
        raise CliError("not logged in")
    hsm.logout()
    return "Logout successful"


def add_parser(sub: SubParsers) -> None:
    login = command(sub, "login", "log in as an admin or a crypto user", cmd_login,
                    description="Log in. The password comes from --password-file, else $PYHSM_PASSWORD, else a "
                                "prompt; it is never an argument (arguments show in `ps`).")
    login.add_argument("--username", help="the user (default $PYHSM_USERNAME)")
    login.add_argument("--role", choices=ROLES, help="default $PYHSM_ROLE, else crypto-user")
    login.add_argument("--password-file", metavar="FILE", help="read the password from FILE's first line")
    command(sub, "logout", "log out (interactive shell)", cmd_logout)
