"""The interactive shell (`pyhsm` alone, or `pyhsm interactive`): one command per line, the same commands as
single-command mode, a login that lasts until `logout`, history (~/.pyhsm_history or $PYHSM_HISTORY) and tab
completion of commands and options."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pyhsm.cli.context import Context
from pyhsm.cli.tree import SubParsers

QUIT = {"quit", "exit"}
HISTORY_LENGTH = 1000


def completion_tree(parser: argparse.ArgumentParser) -> dict[str, Any]:
    """{word: subtree} for subcommands, {"--option": None} at each level."""
    tree: dict[str, Any] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                tree[name] = completion_tree(child)
        else:
            tree.update((option, None) for option in action.option_strings if option.startswith("--"))
    return tree


class Completer:
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.tree = completion_tree(parser)
        self.tree.update((word, None) for word in (*QUIT, "help"))
        self.matches: list[str] = []

    def candidates(self, line: str) -> list[str]:
        words = line.split()
        current = "" if not words or line.endswith(" ") else words.pop()
        node = self.tree
        for word in words:
            child = node.get(word)
            if isinstance(child, dict):
                node = child
        return sorted(w + " " for w in node if w.startswith(current))

    def complete(self, text: str, state: int) -> str | None:
        import readline

        if state == 0:
            self.matches = self.candidates(readline.get_line_buffer()[:readline.get_endidx()])
        return self.matches[state] if state < len(self.matches) else None


def _history_file() -> Path:
    return Path(os.environ.get("PYHSM_HISTORY") or Path.home() / ".pyhsm_history")


def _setup_readline(parser: argparse.ArgumentParser) -> Any:
    try:
        import readline
    except ImportError:  # a Python without readline still gets a working, if plainer, shell
        return None
    readline.set_completer(Completer(parser).complete)
    readline.set_completer_delims(" ")
    readline.parse_and_bind("tab: complete")
    readline.set_history_length(HISTORY_LENGTH)
    try:
        readline.read_history_file(_history_file())
    except OSError:
        pass
    return readline


def _prompt(ctx: Context) -> str:
    hsm = ctx.current
    if hsm is None or not hsm.logged_in:
        return "pyhsm > "
    return f"pyhsm [{hsm.username or hsm.role}@{hsm.token_label}] > "


def shell(parser: argparse.ArgumentParser, argv: Sequence[str]) -> int:
    from pyhsm.cli.main import run

    start = parser.parse_args(list(argv))
    if start.store_dir:
        os.environ["PYHSM_STORE_DIR"] = str(Path(start.store_dir).expanduser().resolve())
    defaults = argparse.Namespace(token=start.token, format=start.format)
    tty = sys.stdin.isatty()
    readline = _setup_readline(parser) if tty else None
    ctx = Context(interactive=True)
    status = 0
    try:
        while True:
            try:
                line = input(_prompt(ctx) if tty else "")
            except EOFError:
                break
            except KeyboardInterrupt:
                print()
                continue
            try:
                words = shlex.split(line)
            except ValueError as exc:
                print(f"pyhsm: {exc}", file=sys.stderr)
                status = 2
                continue
            if not words:
                continue
            if words[0] in QUIT:
                break
            if words[0] == "help":
                words = [*words[1:], "--help"]
            if words[0] == "interactive":
                print("pyhsm: already in the interactive shell", file=sys.stderr)
                continue
            status = run(parser, ctx, words, defaults)
            if status == -1:
                status = 0
    finally:
        ctx.close()
        if readline is not None:
            try:
                readline.write_history_file(_history_file())
            except OSError:
                pass
    return status


def add_parser(sub: SubParsers) -> None:
    sub.add_parser("interactive", help="start the interactive shell (also what `pyhsm` alone does)",
                   description="A shell for pyhsm commands: prompt, history, tab completion; `quit` leaves.")
