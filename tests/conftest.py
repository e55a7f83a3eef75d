"""Fixtures shared by every test: the built module, a private token store, fresh tokens.

Tests drive the installed libpyhsm.so through real hosts; the store directory is set in the environment before
any host loads the module, so nothing touches the user's real tokens.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

STORE_DIR = tempfile.mkdtemp(prefix="pyhsm-tests-")
os.environ["PYHSM_STORE_DIR"] = STORE_DIR

SO_PIN = "so-pin-1234"
USER_PIN = "user-pin-1234"


def module_path() -> str:
    spec = importlib.util.find_spec("pyhsm")
    assert spec is not None and spec.submodule_search_locations, "pyhsm is not installed"
    path = Path(next(iter(spec.submodule_search_locations))) / "libpyhsm.so"
    assert path.exists(), f"{path} missing: build with `pip install .`"
    return str(path)


def pyhsm_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pyhsm.cli.main", *args], capture_output=True, text=True,
                          env=env or os.environ.copy(), timeout=120)


def init_token(label: str, so_pin: str = SO_PIN, pin: str = USER_PIN) -> None:
    result = pyhsm_cli("token", "init", "--label", label, "--so-pin", so_pin, "--pin", pin)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="session")
def module() -> str:
    return module_path()


@pytest.fixture(scope="session")
def lib(module: str):  # type: ignore[no-untyped-def]
    import pkcs11

    return pkcs11.lib(module)


@pytest.fixture
def token(lib):  # type: ignore[no-untyped-def]
    """A freshly initialised token (SO_PIN / USER_PIN) of its own."""
    label = f"t-{uuid.uuid4().hex[:10]}"
    init_token(label)
    return lib.get_token(token_label=label)


@pytest.fixture
def session(token) -> Iterator:  # type: ignore[no-untyped-def]
    """A read-write session logged in as the user."""
    with token.open(rw=True, user_pin=USER_PIN) as s:
        yield s


@contextmanager
def raises_rv(rv: int) -> Iterator[None]:
    """Expect exactly CK_RV `rv` from a python-pkcs11 call for codes it has no exception class for."""
    import pkcs11

    with pytest.raises(pkcs11.exceptions.PKCS11Error) as info:
        yield
    assert str(info.value) == f"Unmapped error code {hex(rv)}"
