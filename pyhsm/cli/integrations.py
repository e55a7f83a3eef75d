"""`pyhsm java-config` and `pyhsm p11-kit install|uninstall`: hand the module to hosts that find it by configuration.

Java's SunPKCS11 provider reads a small config file (name, library, slot); p11-kit (GnuTLS, p11tool, ...) loads every
module named by a `<name>.module` file in its module directories. Both only need the absolute path of libpyhsm.so,
and Java also the slot of one token: pyhsm's slot ids are stable (a token keeps its slot for its whole life), so the
config names the slot id rather than a position in the slot list.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import pyhsm
from pyhsm import constants as ck
from pyhsm.cli import output
from pyhsm.cli.errors import UsageError

MODULE_FILE = "libpyhsm.so"
# p11-kit's configuration directories on Debian (`pkg-config --variable=p11_module_configs p11-kit-1` and the user
# directory compiled into libp11-kit). p11-kit ignores the user directory for root.
P11KIT_SYSTEM_DIR = Path("/etc/pkcs11/modules")
P11KIT_USER_DIR = Path("~/.config/pkcs11/modules")
MARKER = "# Written by `pyhsm p11-kit install`"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _module() -> Path:
    path = Path(pyhsm.__file__).resolve().parent / MODULE_FILE
    if not path.is_file():
        raise UsageError(f"{path} does not exist: build and install pyhsm with `pip install .`")
    return path


def _checked_name(name: str) -> str:
    if not NAME.match(name):
        raise UsageError(f"invalid name {name!r}: use letters, digits, '.', '_' and '-'")
    return name


def _slot_of(label: str) -> int:
    """The slot id of the initialised token with this label, asked of the engine like any host would."""
    from pyhsm.engine import Engine

    eng = Engine()
    eng.initialize(0)
    try:
        slots = [slot for slot in eng.get_slot_list(True)
                 if (info := eng.get_token_info(slot)).flags & ck.CKF_TOKEN_INITIALIZED
                 and info.label.decode("utf-8", errors="replace").rstrip(" \0") == label]
    finally:
        eng.finalize()
    if not slots:
        raise UsageError(f"no initialised token is labelled {label!r} (see `pyhsm token list`)")
    return slots[0]


def java_config(label: str, name: str) -> str:
    slot = _slot_of(label)
    from pyhsm.config import store_dir

    return (f"# SunPKCS11 configuration for the pyhsm token {label!r} (written by `pyhsm java-config`).\n"
            f"# The JVM must see the same token store: PYHSM_STORE_DIR={store_dir()} (or pyhsm's config file).\n"
            f"# keytool -list -keystore NONE -storetype PKCS11 -providerName SunPKCS11-{name} "
            f"-addprovider SunPKCS11 -providerArg THIS_FILE\n"
            f"name = {name}\n"
            f"library = {_module()}\n"
            f"slot = {slot}\n")


def cmd_java_config(args: argparse.Namespace) -> int:
    text = java_config(args.token, _checked_name(args.name))
    if args.out:
        Path(args.out).write_text(text)
        output.info(f"Wrote {args.out}: provider SunPKCS11-{args.name} for token {args.token!r}.")
    else:
        sys.stdout.write(text)
    return 0


def _p11kit_dir(args: argparse.Namespace) -> Path:
    system = args.system or (not args.user and os.geteuid() == 0)
    if system:
        return P11KIT_SYSTEM_DIR
    if os.geteuid() == 0:
        raise UsageError("p11-kit ignores per-user modules for root: use --system")
    return P11KIT_USER_DIR.expanduser()


def cmd_p11kit_install(args: argparse.Namespace) -> int:
    target = _p11kit_dir(args) / f"{_checked_name(args.name)}.module"
    text = (f"{MARKER} (pyhsm {pyhsm.__version__}).\n"
            "# Hosts must resolve the same token store: PYHSM_STORE_DIR or pyhsm's config file.\n"
            f"module: {_module()}\n")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(0o644)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror} (--system needs root)") from exc
    output.info(f"Installed p11-kit module {args.name!r}: {target}")
    return 0


def cmd_p11kit_uninstall(args: argparse.Namespace) -> int:
    target = _p11kit_dir(args) / f"{_checked_name(args.name)}.module"
    if not target.exists():
        raise UsageError(f"{target} does not exist: nothing to uninstall")
    if not target.read_text().startswith(MARKER):
        raise UsageError(f"{target} was not written by pyhsm: not removing it")
    try:
        target.unlink()
    except OSError as exc:
        raise UsageError(f"cannot remove {target}: {exc.strerror}") from exc
    output.info(f"Removed p11-kit module {args.name!r}: {target}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    java = sub.add_parser("java-config", help="write a Java SunPKCS11 provider configuration for a token",
                          description="Print (or write to --out) a SunPKCS11 config naming libpyhsm.so and the "
                                      "slot of the token labelled LABEL.")
    java.add_argument("--token", required=True, metavar="LABEL", help="label of the token Java should use")
    java.add_argument("--name", default="pyhsm", help="provider name suffix: SunPKCS11-NAME (default: pyhsm)")
    java.add_argument("--out", metavar="FILE", help="write the configuration to FILE instead of stdout")
    java.set_defaults(func=cmd_java_config)

    p11kit = sub.add_parser("p11-kit", help="register libpyhsm.so with p11-kit (GnuTLS, p11tool, ...)")
    psub = p11kit.add_subparsers(dest="p11kit_command", metavar="COMMAND", required=True)
    for verb, func, what in (("install", cmd_p11kit_install, "write"), ("uninstall", cmd_p11kit_uninstall,
                                                                      "remove")):
        cmd = psub.add_parser(verb, help=f"{what} the p11-kit module file NAME.module",
                              description=f"{what.capitalize()} {P11KIT_SYSTEM_DIR}/NAME.module (--system, the "
                                          f"default for root) or {P11KIT_USER_DIR}/NAME.module (--user, the "
                                          "default for other users; p11-kit ignores it for root).")
        where = cmd.add_mutually_exclusive_group()
        where.add_argument("--system", action="store_true", help=f"in {P11KIT_SYSTEM_DIR} (needs root)")
        where.add_argument("--user", action="store_true", help=f"in {P11KIT_USER_DIR}")
        cmd.add_argument("--name", default="pyhsm", help="module name (default: pyhsm)")
        cmd.set_defaults(func=func)
