"""What one run of the CLI (a single command, or an interactive shell) holds between commands: the open token
and its login.

Single-command mode logs in for every command from the environment, as cloudhsm-cli does with CLOUDHSM_ROLE and
CLOUDHSM_PIN: $PYHSM_ROLE (admin or crypto-user, default crypto-user), $PYHSM_USERNAME and $PYHSM_PASSWORD (prompted
for on a terminal when unset). The interactive shell logs in once with `login` and keeps the login until `logout`.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from pyhsm.cli.errors import UsageError
from pyhsm.cli.hsm import ROLES, Hsm
from pyhsm.cli.pins import first_line

ENV_USERNAME, ENV_PASSWORD, ENV_ROLE, ENV_TOKEN = "PYHSM_USERNAME", "PYHSM_PASSWORD", "PYHSM_ROLE", "PYHSM_TOKEN"


def read_password(path: str | None, prompt: str = "Password: ") -> str:
    """The password from a file's first line, else $PYHSM_PASSWORD, else a terminal prompt; never from argv."""
    if path is not None:
        password = first_line(path, "password")
    elif os.environ.get(ENV_PASSWORD):
        password = os.environ[ENV_PASSWORD]
    elif sys.stdin is not None and sys.stdin.isatty():
        password = getpass.getpass(prompt)
    else:
        raise UsageError(f"no password: set ${ENV_PASSWORD}, use --password-file FILE, or run on a terminal")
    if not password:
        raise UsageError("the password is empty")
    return password


def role_from(value: str | None) -> str:
    role = value or os.environ.get(ENV_ROLE) or "crypto-user"
    if role not in ROLES:
        raise UsageError(f"the role is admin or crypto-user, not {role!r}")
    return role


class Context:
    def __init__(self, interactive: bool = False) -> None:
        self.interactive = interactive
        self._hsm: Hsm | None = None

    def token_label(self, args: argparse.Namespace) -> str | None:
        return getattr(args, "token", None) or os.environ.get(ENV_TOKEN) or None

    def hsm(self, args: argparse.Namespace, login: bool = True) -> Hsm:
        """The selected token, logged in unless login=False (single-command mode logs in from the environment)."""
        label = self.token_label(args)
        if self._hsm is not None and label is not None and label != self._hsm.token_label:
            self.close()
        if self._hsm is None:
            self._hsm = Hsm(label)
        if login and not self._hsm.logged_in:
            if self.interactive:
                raise UsageError("not logged in: run `login --username NAME --role admin|crypto-user` first")
            username = os.environ.get(ENV_USERNAME) or None
            self._hsm.login(username, role_from(None), read_password(None))
        return self._hsm

    @property
    def current(self) -> Hsm | None:
        return self._hsm

    def close(self) -> None:
        if self._hsm is not None:
            self._hsm.close()
            self._hsm = None
