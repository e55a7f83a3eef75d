"""Running the installed `pyhsm` console script against a token store of the test's own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

SO_PIN = "so-pin-1234"
USER_PIN = "user-pin-1234"
LABEL = "cli"
PYHSM = str(Path(sys.executable).parent / "pyhsm")


@dataclass
class Result:
    status: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def data(self) -> Any:
        """The data of a successful command's envelope."""
        envelope = self.json
        assert self.status == 0 and envelope["error_code"] == 0, (envelope, self.stderr)
        return envelope["data"]


@dataclass
class Cli:
    """`pyhsm` in a fresh store; `run()` logs in from the environment as the given role/user."""

    store: Path
    tmp: Path
    env: dict[str, str] = field(default_factory=dict)

    def environment(self, **extra: str | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYHSM_")}
        env.update(PYHSM_STORE_DIR=str(self.store), PYHSM_HISTORY=str(self.tmp / "history"), **self.env)
        for key, value in extra.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def run(self, *args: str, stdin: str | None = None, **env: str | None) -> Result:
        done = subprocess.run([PYHSM, *args], capture_output=True, text=True, input=stdin,
                              env=self.environment(**env), timeout=120, cwd=self.tmp)
        return Result(done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str, **env: str | None) -> Any:
        result = self.run(*args, **env)
        assert result.status == 0, (args, result.stdout, result.stderr)
        return result.data

    def module_env(self) -> dict[str, str]:
        return self.environment()


def new_cli(tmp_path: Path) -> Cli:
    """A store holding one token, LABEL, and the environment of its default crypto user."""
    store = tmp_path / "store"
    store.mkdir()
    tool = Cli(store, tmp_path)
    tool.ok("token", "init", "--label", LABEL, "--so-pin", SO_PIN, "--pin", USER_PIN)
    tool.env = {"PYHSM_ROLE": "crypto-user", "PYHSM_PASSWORD": USER_PIN}
    return tool


@pytest.fixture(name="cli")
def cli_fixture(tmp_path: Path) -> Cli:
    return new_cli(tmp_path)


def module_path() -> str:
    import pyhsm

    return str(Path(pyhsm.__file__).resolve().parent / "libpyhsm.so")
