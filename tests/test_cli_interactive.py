"""The interactive shell driven through a real pseudo-terminal (stdlib pty): prompt, login with the password
typed at a no-echo prompt, commands sharing the login, tab completion, history across runs, logout and quit."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import time
from pathlib import Path

import pytest
from cli_helpers import LABEL, PYHSM, USER_PIN, Cli, cli_fixture  # noqa: F401  (fixture)

TIMEOUT = 60.0


class Terminal:
    """A child process on a pty: write keystrokes, read until a pattern shows up."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: a session leader whose controlling terminal is the pty
            os.execve(argv[0], argv, env)
        self.seen = ""

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def expect(self, pattern: str) -> str:
        """Everything read up to and including `pattern` (a regex); earlier output is consumed."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            match = re.search(pattern, self.seen)
            if match:
                before, self.seen = self.seen[:match.end()], self.seen[match.end():]
                return before
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {pattern!r} in {self.seen!r}")
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"the shell ended before {pattern!r}; output: {self.seen!r}")
                self.seen += chunk.decode(errors="replace").replace("\r\n", "\n").replace("\a", "")  # no bells

    def wait(self) -> int:
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)


def _envelope(text: str) -> dict:  # type: ignore[type-arg]
    return json.loads(text[text.index("{"):text.rindex("}") + 1])


@pytest.fixture
def shell(cli: Cli) -> Terminal:
    env = cli.environment(PYHSM_PASSWORD=None, PYHSM_ROLE=None, TERM="dumb")
    return Terminal([PYHSM], env)


def test_shell_logs_in_once_and_runs_commands_until_quit(shell: Terminal) -> None:
    shell.expect(r"pyhsm > ")
    shell.send("key list\n")
    refused = _envelope(shell.expect(r"pyhsm > "))
    assert refused["error_code"] == 1 and "not logged in" in refused["data"]
    shell.send("login --username default --role crypto-user\n")
    shell.expect("Password: ")
    shell.send(USER_PIN + "\n")
    out = shell.expect(rf"pyhsm \[default@{LABEL}\] > ")
    assert USER_PIN not in out  # typed without echo
    assert _envelope(out) == {"error_code": 0, "data": {"username": "default", "role": "crypto-user"}}
    shell.send("key generate-symmetric aes --label typed --key-length-bytes 16\n")
    assert _envelope(shell.expect(r"\] > "))["data"]["key"]["attributes"]["label"] == "typed"
    shell.send("key list --filter attr.label=typed\n")
    assert _envelope(shell.expect(r"\] > "))["data"]["total_key_count"] == 1
    shell.send("key list --no-such-option\n")
    assert "unrecognized arguments" in shell.expect(r"\] > ")  # a usage error does not end the shell
    shell.send("logout\n")
    assert _envelope(shell.expect(r"pyhsm > "))["data"] == "Logout successful"
    shell.send("quit\n")
    assert shell.wait() == 0  # the status of the last command (logout)


def test_tab_completes_commands_and_options(shell: Terminal) -> None:
    shell.expect(r"pyhsm > ")
    shell.send("key gen\t")
    shell.expect(r"key generate-")
    shell.send("sym\t")
    shell.expect(r"symmetric ")  # the terminal shows what was typed, then what completion added
    shell.send("a\t")
    shell.expect(r"aes ")
    shell.send("--key-l\t")
    shell.expect(r"length-bytes ")
    shell.send("\x15quit\n")  # ^U clears the line
    assert shell.wait() == 0


def test_history_is_kept_between_runs(cli: Cli) -> None:
    env = cli.environment(PYHSM_PASSWORD=None, TERM="dumb")
    first = Terminal([PYHSM], env)
    first.expect(r"pyhsm > ")
    first.send("token status\n")
    first.expect(r"pyhsm > ")
    first.send("quit\n")
    assert first.wait() == 0
    assert "token status" in Path(env["PYHSM_HISTORY"]).read_text()
    second = Terminal([PYHSM, "interactive"], env)
    second.expect(r"pyhsm > ")
    second.send("\x1b[A\x1b[A")  # up arrow twice: `quit`, then the command before it
    second.expect(r"token status")
    second.send("\x15quit\n")
    assert second.wait() == 0


def test_piped_commands_run_without_a_prompt(cli: Cli) -> None:
    result = cli.run("interactive", stdin="token status\nquit\n")
    assert result.status == 0 and "pyhsm >" not in result.stdout
    assert json.loads(result.stdout)["data"]["label"] == LABEL


def test_long_work_shows_progress_on_a_terminal_only(cli: Cli) -> None:
    args = ["key", "generate-asymmetric-pair", "rsa", "--modulus-size-bits", "3072", "--public-label", "p",
            "--private-label", "s"]
    on_terminal = Terminal([PYHSM, *args], cli.environment(TERM="xterm"))
    shown = on_terminal.expect(r"\}\s*\}\s*\}")
    assert on_terminal.wait() == 0
    assert "Generating an RSA-3072 key pair" in shown
    piped = cli.run(*args)  # stdout and stderr are pipes: JSON only, no progress anywhere
    assert piped.status == 0 and "Generating" not in piped.stdout + piped.stderr
