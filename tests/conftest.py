"""Fixtures shared by every test: the built module, a private token store, fresh tokens.

Tests drive the installed libpyhsm.so through real hosts.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from p11_helpers import USER_PIN, init_token, module_path


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
