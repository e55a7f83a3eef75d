"""Shared pieces of the key migration flows: tokens in stores of their own (two machines), and the hosts that move
keys between them: migration_host.c (C_WrapKey/C_UnwrapKey through the module), pkcs11-tool and stock OpenSSL."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent


@dataclass
class Hsm:
    """One pyhsm token in its own store, as if on its own machine."""

    interop: Any
    module: str
    host: Path
    token: Any
    work: Path
    user: tuple[str, str]  # the crypto user every host here logs in as: (name, password)

    @property
    def pin(self) -> str:
        return ":".join(self.user)  # C_Login's PIN for a named user

    def tool(self, *args: str) -> str:
        """pkcs11-tool logged in to this token."""
        result = self.interop.run(["pkcs11-tool", "--module", self.module, "--token-label", self.token.label,
                                   "--login", "--pin", self.pin, *args], env=self.token.env, cwd=self.work)
        assert result.returncode == 0, f"pkcs11-tool {' '.join(args)}\n{result.stdout}\n{result.stderr}"
        return str(result.stdout)

    def migration_host(self, *args: str) -> str:
        result = self.interop.run([str(self.host), self.module, self.token.label, self.pin, *args],
                                  env=self.token.env, cwd=self.work)
        assert result.returncode == 0 and result.stdout.rstrip().endswith("ALL OK"), result.stdout + result.stderr
        return str(result.stdout)

    def cli(self, *args: str) -> Any:
        """The `pyhsm` command on this token (run in the work directory's files by absolute paths)."""
        return self.interop.cli_data(self.token, *args, username=self.user[0], password=self.user[1])

    def admin(self, *args: str, **options: str) -> Any:
        """The `pyhsm` command as the token's first admin."""
        return self.interop.cli_data(self.token, *args, username="admin", password=self.token.so_pin, role="admin",
                                     **options)

    def export_public_der(self, label: str, path: str) -> None:
        """The public key as another host reads it off the token (SubjectPublicKeyInfo DER)."""
        self.tool("--read-object", "--type", "pubkey", "--label", label, "-o", path)

    def openssl(self, *args: str) -> str:
        """Stock OpenSSL in the work directory: no engine config, no pyhsm in the environment."""
        env = {k: v for k, v in os.environ.items() if k not in ("OPENSSL_CONF", "PYHSM_STORE_DIR")}
        result = self.interop.run(["openssl", *args], env=env, cwd=self.work)
        assert result.returncode == 0, f"openssl {' '.join(args)}\n{result.stdout}\n{result.stderr}"
        return str(result.stdout) + str(result.stderr)


@pytest.fixture(scope="module")
def migration_host(interop, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    interop.require_tool("gcc")
    return interop.build_c_host([HERE / "migration_host.c"], tmp_path_factory.mktemp("migration-host"))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def make_hsm(interop, pyhsm_module, migration_host, tmp_path_factory):  # type: ignore[no-untyped-def]
    interop.require_tool("pkcs11-tool")
    interop.require_tool("openssl")

    def make(label: str, work: Path, fips: bool = False) -> Hsm:
        """A token in a store of its own (in FIPS mode if asked) with a crypto user "operator" whom every host
        logs in as; its hosts run in `work` (one directory per flow: the files an operator carries between the
        machines)."""
        token = interop.init_token(interop.make_store(tmp_path_factory.mktemp(label)), label, fips=fips)
        hsm = Hsm(interop, pyhsm_module, migration_host, token, work, ("operator", f"{label}-operator-pw"))
        hsm.admin("user", "create", "--username", "operator", "--role", "crypto-user", new_password=hsm.user[1])
        return hsm

    return make
