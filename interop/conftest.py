"""Fixtures for the interop suites: hosts (pkcs11-tool, openssl, ...) drive the built libpyhsm.so.

Test modules reach the helpers through the `interop` fixture (never `import conftest`: tests/ has a conftest.py
too, and which one `import conftest` finds depends on collection order).

Every token lives in a temporary store directory handed to the host through PYHSM_STORE_DIR, so a run never
touches the user's real tokens. The CLI and the module are the installed ones (`pip install .`), asked for from
outside the source tree.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
C_HOST_DIR = ROOT / "tests" / "c_host"
SO_PIN = "interop-so-pin"
USER_PIN = "interop-user-pin"


def run(cmd: Sequence[str], env: dict[str, str] | None = None, cwd: str | Path | None = None,
        timeout: float = 300, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Run a host command, capturing text output; never raises on a non-zero status."""
    return subprocess.run(list(cmd), check=False, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout,
                          input=None if input is None else input.decode())


def pyhsm_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed `pyhsm` command (this interpreter; -P and cwd=/ keep the source tree off sys.path)."""
    return run([sys.executable, "-P", "-m", "pyhsm.cli.main", *args], env=env, cwd="/")


@pytest.fixture(scope="session")
def pyhsm_module() -> str:
    """Absolute path of the built libpyhsm.so, as `pyhsm module-path` reports it."""
    result = pyhsm_cli("module-path")
    assert result.returncode == 0, f"`pyhsm module-path` failed: {result.stderr.strip()}"
    path = result.stdout.strip()
    assert os.path.isabs(path) and os.path.isfile(path), path
    return path


DEBIAN_PYTHON = "/usr/bin/python3.11"


@dataclass
class ReadableInstall:
    """pyhsm installed where an unprivileged user (NGINX workers, p11-kit's non-root hosts) can load it."""

    venv: Path
    module: str

    @property
    def cli(self) -> list[str]:
        return [str(self.venv / "bin" / "pyhsm")]


@pytest.fixture(scope="session")
def readable_install() -> Iterator[ReadableInstall]:
    """A venv of Debian's own /usr/bin/python3.11 holding pyhsm, in a world-readable directory, once per run.

    The suite's .venv may use an interpreter under a private home (pyenv in /root), which another user cannot
    read; a user on a Debian 12 server would install pyhsm like this."""
    assert Path(DEBIAN_PYTHON).exists(), "bash ci/install.sh installs python3 (Debian's python3.11)"
    base = Path(tempfile.mkdtemp(prefix="pyhsm-readable-"))  # not under pytest's 0700 tmp
    base.chmod(0o755)
    venv = base / "venv"
    subprocess.run([DEBIAN_PYTHON, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(ROOT)], check=True, timeout=600)
    module = subprocess.run([str(venv / "bin" / "pyhsm"), "module-path"], capture_output=True, text=True,
                            check=True).stdout.strip()
    try:
        yield ReadableInstall(venv, module)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed (bash ci/install.sh installs it)"
    return path


@dataclass
class TokenInfo:
    label: str
    slot: int
    index: int  # position in C_GetSlotList, as pkcs11-tool numbers slots
    serial: str
    env: dict[str, str] = field(repr=False)
    so_pin: str = SO_PIN
    pin: str = USER_PIN


def make_store(tmp: Path) -> dict[str, str]:
    store = tmp / "store"
    store.mkdir(parents=True, exist_ok=True)
    env = os.environ.copy()
    env["PYHSM_STORE_DIR"] = str(store)
    return env


def init_token(env: dict[str, str], label: str, so_pin: str = SO_PIN, pin: str = USER_PIN,
               fips: bool = False) -> TokenInfo:
    """`pyhsm token init` (in FIPS mode if asked) in the store of env, then its slot as `pyhsm token list --json`
    reports it."""
    result = pyhsm_cli("token", "init", "--label", label, "--so-pin", so_pin, "--pin", pin,
                       *(["--fips"] if fips else []), env=env)
    assert result.returncode == 0, f"pyhsm token init failed: {result.stderr.strip()}"
    listing = pyhsm_cli("token", "list", "--json", env=env)
    assert listing.returncode == 0, listing.stderr
    slots = json.loads(listing.stdout)
    for index, slot in enumerate(slots):
        if slot["initialized"] and slot["label"] == label:
            return TokenInfo(label, slot["slot"], index, slot["serial"], env, so_pin, pin)
    raise AssertionError(f"token {label!r} not in `pyhsm token list`: {slots}")


def cli_data(token: TokenInfo, *args: str, username: str | None = None, password: str | None = None,
             role: str = "crypto-user", new_password: str | None = None) -> Any:
    """`pyhsm --token LABEL ARGS` logged in from the environment as cloudhsm-cli does ($PYHSM_ROLE,
    $PYHSM_USERNAME, $PYHSM_PASSWORD; by default the token's user PIN), returning the data of its JSON envelope.
    `new_password` is what `user create/change-password` set ($PYHSM_NEW_PASSWORD: never an argument)."""
    env = dict(token.env, PYHSM_ROLE=role, PYHSM_PASSWORD=password if password is not None else token.pin)
    for name, value in (("PYHSM_USERNAME", username), ("PYHSM_NEW_PASSWORD", new_password)):
        env.pop(name, None)
        if value:
            env[name] = value
    result = pyhsm_cli("--token", token.label, *args, env=env)
    assert result.returncode == 0, f"pyhsm {' '.join(args)}\n{result.stdout}\n{result.stderr}"
    envelope = json.loads(result.stdout)
    assert envelope["error_code"] == 0, envelope
    return envelope["data"]


def openssl_engine_env(token: TokenInfo, module: str, path: Path, extra_config: str = "",
                       pin: str | None = None) -> dict[str, str]:
    """Write an OpenSSL config loading libp11's engine on `module` with the token's user PIN (or `pin`; plus
    `extra_config` sections) to `path` (nginx_setup.write_engine_config, the one template), and return the token's
    environment with OPENSSL_CONF naming it."""
    _load_by_path("nginx_setup", Path(__file__).parent / "nginx" / "nginx_setup.py").write_engine_config(
        path, module, pin or token.pin, init=False, extra_config=extra_config)
    return dict(token.env, OPENSSL_CONF=str(path))


def _load_by_path(name: str, path: Path) -> Any:
    """A helper module of another test tree (tests/, interop/nginx/), without putting its directory on sys.path."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_c_host(sources: Sequence[Path], build: Path, libraries: Sequence[str] = ()) -> Path:
    """Compile a C host the way tests/c_host's are built: with the generated pyhsm_gen.h and ck_constants.h, and
    tests/c_host/common.h on the include path. Returns the binary (named after the first source)."""
    _load_by_path("p11_helpers", C_HOST_DIR.parent / "p11_helpers.py").generated_header_path(build)
    binary = build / sources[0].stem
    result = run(["gcc", "-Wall", "-Wextra", "-Werror", "-O1", f"-I{build}", f"-I{C_HOST_DIR}", "-o", str(binary),
                  *map(str, sources), "-ldl", "-lpthread", *(f"-l{name}" for name in libraries)])
    assert result.returncode == 0, result.stderr
    return binary


def parse_objects(text: str) -> list[dict[str, str]]:
    """pkcs11-tool's object listing as [{'header': 'Private Key Object; RSA', 'label': ..., 'ID': ...}, ...]."""
    objects: list[dict[str, str]] = []
    for line in text.splitlines():
        if re.match(r"^\S.*Object;", line):
            objects.append({"header": line.rstrip()})
        elif objects and line.startswith("  ") and ":" in line:
            key, _, value = line.strip().partition(":")
            objects[-1][key.strip()] = value.strip()
    return objects


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """The stdout of a host command that must succeed (else the command, its status and its output)."""
    assert result.returncode == 0, (f"{' '.join(result.args)} -> exit {result.returncode}\n"
                                    f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return str(result.stdout)


@dataclass
class Pkcs11Tool:
    """OpenSC's pkcs11-tool bound to the module, a token (TokenInfo) and a work directory."""

    interop: type[Interop]
    module: str
    token: TokenInfo
    work: Path
    ok = staticmethod(ok)

    def __call__(self, *args: str, select: bool = True,
                 timeout: float = 300) -> subprocess.CompletedProcess[str]:
        cmd = ["pkcs11-tool", "--module", self.module]
        if select:
            cmd += ["--token-label", self.token.label]
        return run([*cmd, *args], env=self.token.env, cwd=self.work, timeout=timeout)

    def login(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return self("--login", "--pin", self.token.pin, *args, timeout=timeout)

    @classmethod
    def on_new_token(cls, module: str, base: Path, label: str) -> Pkcs11Tool:
        """A token initialised by the CLI in a store of its own under base, and an empty work directory."""
        require_tool("pkcs11-tool")
        token = init_token(make_store(base), label)
        work = base / "work"
        work.mkdir()
        return cls(Interop, module, token, work)


class Interop:
    """The helpers above, handed to tests as the `interop` fixture."""

    SO_PIN = SO_PIN
    USER_PIN = USER_PIN
    run = staticmethod(run)
    pyhsm_cli = staticmethod(pyhsm_cli)
    require_tool = staticmethod(require_tool)
    make_store = staticmethod(make_store)
    init_token = staticmethod(init_token)
    build_c_host = staticmethod(build_c_host)
    cli_data = staticmethod(cli_data)
    parse_objects = staticmethod(parse_objects)
    openssl_engine_env = staticmethod(openssl_engine_env)
    ok = staticmethod(ok)
    Pkcs11Tool = Pkcs11Tool


@pytest.fixture(scope="session")
def interop() -> type[Interop]:
    return Interop
