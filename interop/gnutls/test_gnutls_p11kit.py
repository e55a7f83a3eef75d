"""GnuTLS 3.7's p11tool reaches the token through a p11-kit module file written by `pyhsm p11-kit install`.

p11-kit ignores per-user module files for root, so p11tool runs as `nobody` (setpriv) with its own HOME, and pyhsm is
the world-readable install the NGINX scenario also uses (a venv of Debian's python3.11). The token store belongs to
nobody. Verification is independent of pyhsm: `p11tool --test-sign` signs in the token and GnuTLS verifies the
signature itself, with the public parameters of the private key and with the public key object.

p11tool initialises modules with CKF_LIBRARY_CANT_CREATE_OS_THREADS: strace counts the threads the p11tool process
starts with pyhsm loaded and without it (OpenSC's module, which p11-kit also loads, starts one of its own).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pyhsm import constants as ck

LABEL = "gnutls"
USER, GROUP = "nobody", "nogroup"
KEYS = (("rsa:2048", "01", "rsa", "RSA-2048"), ("EC:prime256v1", "02", "ec", "EC/ECDSA-SECP256R1"))
TOKEN_URI = f"pkcs11:token={LABEL}"
SPY = "/usr/lib/x86_64-linux-gnu/pkcs11-spy.so"  # OpenSC's call logger, forwards to $PKCS11SPY


@dataclass
class Gnutls:
    interop: Any
    base: Path
    cli: list[str]
    module: str
    store: Path
    serial: str

    def as_user(self, *cmd: str, home: str = "home", strace_to: Path | None = None,
                pin: bool = False) -> Any:
        """Run cmd as nobody with a clean environment: HOME, PATH, the token store and, if asked, GNUTLS_PIN."""
        env = [f"HOME={self.base / home}", "PATH=/usr/bin:/bin", f"PYHSM_STORE_DIR={self.store}"]
        if pin:
            env.append(f"GNUTLS_PIN={self.interop.USER_PIN}")
        argv = ["setpriv", f"--reuid={USER}", f"--regid={GROUP}", "--clear-groups", "env", "-i", *env, *cmd]
        if strace_to is not None:
            argv = ["strace", "-f", "-qq", "-e", "trace=clone,clone3", "-o", str(strace_to), *argv]
        return self.interop.run(argv, env=dict(os.environ))

    def ok(self, *cmd: str, **kwargs: Any) -> str:
        result = self.as_user(*cmd, **kwargs)
        assert result.returncode == 0, f"{' '.join(cmd)} -> {result.returncode}\n{result.stdout}\n{result.stderr}"
        return str(result.stdout) + str(result.stderr)


def _threads_started(log: Path) -> int:
    return sum("CLONE_THREAD" in line for line in log.read_text().splitlines())


@pytest.fixture(scope="module")
def gnutls(interop, readable_install) -> Iterator[Gnutls]:  # type: ignore[no-untyped-def]
    for tool in ("p11tool", "p11-kit", "pkcs11-tool", "setpriv", "strace"):
        interop.require_tool(tool)
    assert os.geteuid() == 0, "the p11-kit scenario switches to nobody and writes /etc/pkcs11: run the suite as root"
    base = Path(tempfile.mkdtemp(prefix="pyhsm-gnutls-"))  # not under pytest's 0700 tmp: nobody must read it
    base.chmod(0o755)
    store = base / "store"
    env = dict(os.environ, PYHSM_STORE_DIR=str(store))
    cli = readable_install.cli
    result = interop.run([*cli, "token", "init", "--label", LABEL, "--so-pin", interop.SO_PIN, "--pin",
                          interop.USER_PIN, "--json"], env=env)
    assert result.returncode == 0, result.stderr
    serial = re.search(r'"serial": "(\w+)"', result.stdout)
    assert serial, result.stdout
    for key_type, key_id, label, _ in KEYS:
        result = interop.run(["pkcs11-tool", "--module", readable_install.module, "--token-label", LABEL, "--login",
                              "--pin", interop.USER_PIN, "--keypairgen", "--key-type", key_type, "--id", key_id,
                              "--label", label], env=env)
        assert result.returncode == 0, result.stderr
    (base / "home").mkdir()
    (base / "empty-home").mkdir()
    for path in [store, *store.iterdir(), base / "home", base / "empty-home"]:
        shutil.chown(path, USER, GROUP)
    try:
        yield Gnutls(interop, base, cli, readable_install.module, store, serial.group(1))
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def user_module(gnutls: Gnutls) -> Path:
    """`pyhsm p11-kit install --user`, run by nobody: ~/.config/pkcs11/modules/pyhsm.module in nobody's HOME."""
    out = gnutls.ok(*gnutls.cli, "p11-kit", "install", "--user")
    path = gnutls.base / "home" / ".config" / "pkcs11" / "modules" / "pyhsm.module"
    assert str(path) in out and path.is_file(), out
    return path


def test_p11kit_install_system_registers_the_module_and_uninstall_removes_it(gnutls: Gnutls) -> None:
    name = f"pyhsm-interop-{secrets.token_hex(4)}"
    path = Path("/etc/pkcs11/modules") / f"{name}.module"
    created = [d for d in (path.parent.parent, path.parent) if not d.exists()]
    result = gnutls.interop.run([*gnutls.cli, "p11-kit", "install", "--system", "--name", name])
    try:
        assert result.returncode == 0, result.stderr
        assert re.findall(r"(?m)^module: (.*)$", path.read_text()) == [gnutls.module]
        assert path.stat().st_mode & 0o777 == 0o644
        listing = gnutls.ok("p11-kit", "list-modules", home="empty-home")  # nobody, no module file of its own
        block = listing[listing.index(f"{name}: {gnutls.module}"):]
        assert re.search(rf"(?m)^    token: {LABEL}$", block) and f"serial-number: {gnutls.serial}" in block, block
    finally:
        removed = gnutls.interop.run([*gnutls.cli, "p11-kit", "uninstall", "--system", "--name", name])
        for directory in reversed(created):  # leave /etc as it was
            directory.rmdir()
    assert removed.returncode == 0 and not path.exists(), removed.stderr
    assert f"{name}:" not in gnutls.ok("p11-kit", "list-modules", home="empty-home")
    again = gnutls.interop.run([*gnutls.cli, "p11-kit", "uninstall", "--system", "--name", name])
    assert again.returncode == 2 and "nothing to uninstall" in again.stderr, again.stderr
    print(f"pyhsm p11-kit install --system: {path} (0644) makes p11-kit list the token for nobody; "
          "uninstall removes it")


def test_p11kit_uninstall_leaves_files_pyhsm_did_not_write_and_root_gets_no_user_module(gnutls: Gnutls) -> None:
    name = f"pyhsm-interop-{secrets.token_hex(4)}"
    foreign = Path("/etc/pkcs11/modules") / f"{name}.module"
    created = [d for d in (foreign.parent.parent, foreign.parent) if not d.exists()]
    foreign.parent.mkdir(parents=True, exist_ok=True)
    foreign.write_text("module: /usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so\n")
    try:
        refused = gnutls.interop.run([*gnutls.cli, "p11-kit", "uninstall", "--system", "--name", name])
        assert refused.returncode == 2 and "not written by pyhsm" in refused.stderr and foreign.exists(), refused
    finally:
        foreign.unlink()
        for directory in reversed(created):
            directory.rmdir()
    as_root = gnutls.interop.run([*gnutls.cli, "p11-kit", "install", "--user"], env=dict(os.environ))
    assert as_root.returncode == 2 and "ignores per-user modules for root" in as_root.stderr, as_root.stderr
    bad_name = gnutls.interop.run([*gnutls.cli, "p11-kit", "install", "--system", "--name", "../x"])
    assert bad_name.returncode == 2 and "invalid name" in bad_name.stderr, bad_name.stderr
    print("pyhsm p11-kit: uninstall keeps a module file it did not write; --user as root and a name with '/' are "
          "refused (exit 2)")


def test_p11tool_list_tokens_shows_the_token(gnutls: Gnutls, user_module: Path) -> None:
    out = gnutls.ok("p11tool", "--list-tokens")
    block = out[out.index(f"\tLabel: {LABEL}\n") - 200:]
    assert (f"URL: pkcs11:model=pyhsm;manufacturer=pyhsm;serial={gnutls.serial};token={LABEL}\n" in block
            and f"Module: {gnutls.module}" in block and "Flags: RNG, Requires login" in block), out
    print(f"p11tool --list-tokens as nobody (module file {user_module.name} in ~/.config/pkcs11/modules): token "
          f"{LABEL!r} serial {gnutls.serial}")


def _objects(listing: str) -> dict[str, dict[str, str]]:
    """p11tool --list-all output as {URL: {field: value}}."""
    objects: dict[str, dict[str, str]] = {}
    for block in listing.split("Object ")[1:]:
        fields = dict(re.findall(r"(?m)^\t([^:]+): (.*)$", block))
        objects[fields["URL"]] = fields
    return objects


def test_p11tool_list_all_shows_public_objects_and_private_keys_after_login(gnutls: Gnutls,
                                                                            user_module: Path) -> None:
    public = _objects(gnutls.ok("p11tool", "--list-all", TOKEN_URI))
    assert sorted((o["Type"], o["Label"], o["ID"]) for o in public.values()) == [
        ("Public key (EC/ECDSA-SECP256R1)", "ec", "02"), ("Public key (RSA-2048)", "rsa", "01")], public
    everything = _objects(gnutls.ok("p11tool", "--login", "--list-all", TOKEN_URI, pin=True))
    private = {url: o for url, o in everything.items() if url.endswith("type=private")}
    assert len(everything) == 4 and len(private) == 2, everything
    for _, key_id, label, kind in KEYS:
        key = private[f"pkcs11:model=pyhsm;manufacturer=pyhsm;serial={gnutls.serial};token={LABEL};"
                      f"id=%{key_id};object={label};type=private"]
        assert key["Type"] == f"Private key ({kind})", key
        assert {"CKA_PRIVATE", "CKA_SENSITIVE", "CKA_NEVER_EXTRACTABLE"} <= set(key["Flags"].split("; ")), key
    print("p11tool --list-all: 2 public keys without login; with --login also the RSA and EC private keys, "
          "private, sensitive, never extractable")


@pytest.mark.parametrize(("label", "params", "algorithm"), [
    ("rsa", (), "RSA-SHA256"), ("rsa", ("--sign-params", "rsa-pss"), "RSA-PSS-SHA256"), ("ec", (), "ECDSA-SHA256")])
def test_p11tool_test_sign_is_verified_by_gnutls(gnutls: Gnutls, user_module: Path, label: str,
                                                 params: tuple[str, ...], algorithm: str) -> None:
    trace = gnutls.base / f"strace-{label}-{algorithm}.log"
    out = gnutls.ok("p11tool", "--login", *params, "--test-sign", f"{TOKEN_URI};object={label};type=private",
                    pin=True, strace_to=trace)
    assert (f"Signing using {algorithm}... ok\nVerifying against private key parameters... ok\n"
            "Verifying against public key in the token... ok\n") in out, out
    baseline = gnutls.base / "strace-baseline.log"  # p11-kit with the same other modules, without pyhsm
    gnutls.ok("p11tool", "--list-tokens", home="empty-home", strace_to=baseline)
    assert _threads_started(trace) == _threads_started(baseline), (trace.read_text(), baseline.read_text())
    print(f"p11tool --test-sign {label} {' '.join(params)}: {algorithm} signature made in the token, verified by "
          f"GnuTLS with the key's parameters and the public key object; pyhsm started no thread "
          f"({_threads_started(trace)} started by the other p11-kit modules, as without pyhsm)")


def _spy_calls(log: str) -> list[tuple[str, str, str]]:
    """pkcs11-spy's log as [(function, its logged arguments, its CKR_ name)], in call order."""
    calls = []
    for entry in re.split(r"(?m)^\d+: ", log)[1:]:
        name, _, body = entry.partition("\n")
        returned = re.search(r"(?m)^Returned:\s+\d+ (\w+)", body)
        calls.append((name.strip(), body, returned.group(1) if returned else ""))
    return calls


def test_p11tool_logs_in_again_each_time_its_sessions_have_all_closed(gnutls: Gnutls) -> None:
    """p11tool works through many short sessions: with the last one closed the login is gone (v3.0 5.6), so each
    new login must answer CKR_OK, never CKR_USER_ALREADY_LOGGED_IN."""
    modules = gnutls.base / "spy-home" / ".config" / "pkcs11" / "modules"
    modules.mkdir(parents=True)
    (modules / "pyhsm-spy.module").write_text(f"module: {SPY}\n")
    log = gnutls.base / "spy.log"
    log.touch()
    for path in [gnutls.base / "spy-home", *(gnutls.base / "spy-home").rglob("*"), log]:
        shutil.chown(path, USER, GROUP)
    out = gnutls.ok("env", f"PKCS11SPY={gnutls.module}", f"PKCS11SPY_OUTPUT={log}", "p11tool", "--login",
                    "--list-all", TOKEN_URI, home="spy-home", pin=True)
    assert len(_objects(out)) == 4, out
    calls = _spy_calls(log.read_text())
    initialize = next(body for name, body, _ in calls if name == "C_Initialize")
    flags = re.search(r"flags: (\d+)", initialize)
    assert flags and int(flags.group(1)) & ck.CKF_LIBRARY_CANT_CREATE_OS_THREADS, initialize
    open_sessions, logins = 0, []
    for name, _, rv in calls:
        if name == "C_OpenSession" and rv == "CKR_OK":
            open_sessions += 1
        elif name == "C_CloseSession" and rv == "CKR_OK":
            open_sessions -= 1
        elif name == "C_Login":
            logins.append((rv, open_sessions))
    assert len(logins) >= 2 and all(rv == "CKR_OK" for rv, _ in logins), logins
    assert all(count == 1 for _, count in logins), logins  # each login in a fresh session, all others closed
    assert open_sessions == 0
    print(f"pkcs11-spy under p11-kit: p11tool --login --list-all initialised with CKF_LIBRARY_CANT_CREATE_OS_THREADS "
          f"and logged in {len(logins)} times, each in the only open session, each CKR_OK")
