"""Where PINs come from: an option, a file, an environment variable, or a prompt on a terminal.

A PIN given with --pin shows in `ps` to every user of the machine; --pin-file and the environment do not.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path


class PinError(Exception):
    """No usable PIN was given; the message says how to give one."""


def first_line(file: str, what: str) -> str:
    """The first line of a file ('-': standard input), where secrets are kept out of argv and the environment."""
    try:
        text = Path(file).read_text(encoding="utf-8") if file != "-" else sys.stdin.read()
    except OSError as exc:
        raise PinError(f"cannot read the {what} file: {exc.strerror or exc}") from None
    lines = text.splitlines()
    return lines[0] if lines else ""


def resolve(value: str | None, file: str | None, env_var: str, what: str, confirm: bool = False) -> bytes:
    """The PIN from (in order) the option value, the file's first line, $env_var, or a terminal prompt."""
    if value is not None and file is not None:
        raise PinError(f"give the {what} either on the command line or in a file, not both")
    if value is not None:
        pin = value
    elif file is not None:
        pin = first_line(file, what)
    elif os.environ.get(env_var):
        pin = os.environ[env_var]
    elif sys.stdin is not None and sys.stdin.isatty():
        pin = getpass.getpass(f"{what}: ")
        if confirm and getpass.getpass(f"{what} (again): ") != pin:
            raise PinError(f"the two {what}s differ")
    else:
        flag = "--" + what.lower().replace(" ", "-")
        raise PinError(f"no {what} given: use {flag}, {flag}-file or ${env_var}")
    if not pin:
        raise PinError(f"the {what} is empty")
    return pin.encode("utf-8")
