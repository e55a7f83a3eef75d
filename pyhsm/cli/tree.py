"""Building blocks of the command tree: a parser that reports instead of exiting (the interactive shell keeps
running after a typo), and `command()`, which declares one leaf command and the options every leaf takes."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from pyhsm.cli.output import FORMATS

Handler = Callable[[Any, argparse.Namespace], Any]
if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    SubParsers = argparse._SubParsersAction


class ParserExit(Exception):
    """argparse wanted to exit: after --help (status 0) or on a usage error (status 2, message set)."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Parser(argparse.ArgumentParser):
    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise ParserExit(status, message or "")

    def error(self, message: str) -> NoReturn:
        raise ParserExit(2, f"{self.format_usage()}{self.prog}: error: {message}\n")


def group(sub: SubParsers, name: str, help: str) -> SubParsers:
    parser = sub.add_parser(name, help=help, description=help)
    children: SubParsers = parser.add_subparsers(dest=f"{name}_command", metavar="COMMAND", required=True)
    return children


def command(sub: SubParsers, name: str, help: str, handler: Handler, description: str | None = None,
            epilog: str | None = None, token_option: bool = True) -> argparse.ArgumentParser:
    """A leaf command; `handler(ctx, args)` returns the data of the JSON envelope. token_option=False for a
    command whose own --token means something else (then only `pyhsm --token LABEL ...` selects the token)."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help, description=description or help,
                                                     epilog=epilog)
    parser.add_argument("--format", choices=FORMATS, default=argparse.SUPPRESS,
                        help="json: the cloudhsm-cli envelope (default); table: for people")
    if token_option:
        parser.add_argument("--token", metavar="LABEL", default=argparse.SUPPRESS,
                            help="the token to use (default $PYHSM_TOKEN, else the only token)")
    parser.set_defaults(handler=handler)
    return parser


FILTER_HELP = ("select keys: key-reference=0xHEX and/or attr.NAME=VALUE (e.g. attr.label=my-key "
               "attr.class=private-key); several terms must all match")


def add_filter(parser: argparse.ArgumentParser, flag: str = "--filter", required: bool = True,
               what: str = "the key") -> None:
    parser.add_argument(flag, nargs="+", required=required, metavar="TERM", default=[],
                        help=f"{what}: {FILTER_HELP}")
