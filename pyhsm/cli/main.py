"""Entry point of the `pyhsm` command (console script `pyhsm = pyhsm.cli.main:main`).

The tree mirrors cloudhsm-cli (login, user, quorum, key, crypto) plus pyhsm's own token, info and module-path.
Exit status: 0 success, 1 the operation failed, 2 the request was refused (usage, missing credentials),
130 interrupted. Success and failure print the cloudhsm-cli envelope {"error_code": 0|1, "data": ...}.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import pyhsm
from pyhsm.cli import output
from pyhsm.cli.context import Context
from pyhsm.cli.errors import CliError, UsageError, describe
from pyhsm.cli.pins import PinError
from pyhsm.cli.tree import Parser, ParserExit, SubParsers
from pyhsm.errors import CKRError

MODULE_NAME = "libpyhsm.so"


class ModuleMissing(Exception):
    pass


def module_path() -> Path:
    """The libpyhsm.so inside the installed pyhsm package: the file hosts load."""
    path = Path(pyhsm.__file__).resolve().parent / MODULE_NAME
    if not path.is_file():
        raise ModuleMissing(f"{path} does not exist: build and install pyhsm with `pip install .`")
    return path


def cmd_module_path(args: argparse.Namespace) -> int:
    print(module_path())
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from pyhsm.config import store_dir

    try:
        module: str | None = str(module_path())
    except ModuleMissing:
        module = None
    facts = {"version": pyhsm.__version__, "module": module, "store_dir": str(store_dir()),
             "python": sys.executable}
    if args.json:
        output.print_json(facts)
    else:
        for key, value in facts.items():
            print(f"{key + ':':11} {value if value is not None else '(not built)'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from pyhsm.cli import audit, backup, crypto, integrations, interactive, keys, quorum, session, token, users

    parser = Parser(
        prog="pyhsm", description="Manage pyhsm, a software HSM exposed as the PKCS#11 module libpyhsm.so. "
        "Without a command, starts the interactive shell.",
        epilog="Credentials in single-command mode: $PYHSM_ROLE (admin|crypto-user), $PYHSM_USERNAME, "
        "$PYHSM_PASSWORD (prompted for on a terminal). Token store: $PYHSM_STORE_DIR, else the configuration "
        "file's, else ~/.local/share/pyhsm. Exit status: 0 ok, 1 operation failed, 2 usage error.")
    parser.add_argument("--version", action="version", version=f"pyhsm {pyhsm.__version__}")
    parser.add_argument("--store-dir", metavar="DIR", help="token store directory (sets $PYHSM_STORE_DIR)")
    parser.add_argument("--token", metavar="LABEL", help="the token to use (default $PYHSM_TOKEN, else the only one)")
    parser.add_argument("--format", choices=output.FORMATS, default="json",
                        help="json: the cloudhsm-cli envelope (default); table: for people")
    sub = cast(SubParsers, parser.add_subparsers(dest="command", metavar="COMMAND"))

    mp = sub.add_parser("module-path", help="print the absolute path of libpyhsm.so, for --module / library=")
    mp.set_defaults(func=cmd_module_path)

    info = sub.add_parser("info", help="show the version, module path and token store directory")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=cmd_info)

    interactive.add_parser(sub)
    session.add_parser(sub)
    users.add_parser(sub)
    quorum.add_parser(sub)
    keys.add_parser(sub)
    crypto.add_parser(sub)
    token.add_parser(sub)
    integrations.add_parser(sub)
    backup.add_parser(sub)
    audit.add_parser(sub)
    return parser


def run(parser: argparse.ArgumentParser, ctx: Context, argv: Sequence[str],
        defaults: argparse.Namespace | None = None) -> int:
    """Parse and run one command; print its result or its error; return the exit status (-1: no command)."""
    try:
        args = parser.parse_args(argv, namespace=argparse.Namespace(**vars(defaults or argparse.Namespace())))
    except ParserExit as exc:
        if exc.message:
            sys.stderr.write(exc.message)
        return exc.status
    fmt = getattr(args, "format", None) or "json"
    if getattr(args, "store_dir", None) and not ctx.interactive:
        os.environ["PYHSM_STORE_DIR"] = str(Path(args.store_dir).expanduser().resolve())
    handler = getattr(args, "handler", None)
    if handler is None and getattr(args, "func", None) is None:
        return -1  # no command: the caller starts the interactive shell
    try:
        if handler is None:
            return int(args.func(args))  # commands that print for themselves (module-path, info, audit, ...)
        data = handler(ctx, args)
        if getattr(args, "json", False):
            output.print_json(data)  # `token list --json` & co.: the bare data, as before the envelope
        elif fmt == "table" and getattr(args, "table", None):
            args.table(data)  # a command's own layout for people
        else:
            output.emit(data, fmt)
        return 0
    except CKRError as exc:
        name, meaning = describe(exc.rv)
        detail = str(exc)
        extra = f" ({detail})" if detail and detail != name and detail != meaning else ""
        return _failed(ctx, fmt, f"{name}: {meaning}{extra}", 1)
    except (CliError, ModuleMissing) as exc:
        return _failed(ctx, fmt, str(exc), 1)
    except (UsageError, PinError) as exc:
        return _failed(ctx, fmt, str(exc), 2)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 -- never a traceback for the user, unless asked for
        if os.environ.get("PYHSM_DEBUG"):
            traceback.print_exc()
        return _failed(ctx, fmt, f"internal error: {type(exc).__name__}: {exc} (set PYHSM_DEBUG=1 for the "
                                 "traceback)", 1)


def _failed(ctx: Context, fmt: str, message: str, status: int) -> int:
    output.fail(message, fmt)
    if fmt == "json" and not ctx.interactive:
        output.error(message)  # people and logs read stderr; scripts parse the envelope on stdout
    return status


def main(argv: Sequence[str] | None = None) -> int:
    from pyhsm.cli import interactive

    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    ctx = Context()
    try:
        status = run(parser, ctx, argv)
    finally:
        ctx.close()
    if status == -1:
        return interactive.shell(parser, argv)
    return status


if __name__ == "__main__":
    sys.exit(main())
