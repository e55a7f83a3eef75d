"""NGINX 1.22 TLS offload: the RSA and ECDSA server keys live in the token, reached through libp11's OpenSSL engine.

Workers run as `nobody`, so everything they touch must be readable by it: the Python installation, the venv holding
pyhsm and the token store. pyenv's Python under /root is not, so this scenario installs pyhsm into a venv of Debian's
own /usr/bin/python3.11, as a user on a Debian 12 server would, in a world-readable directory. The supported setup
(README, "Use it with NGINX"):
- OPENSSL_CONF names an engine config with `init = 1` for every nginx invocation (start, -t, -s reload, -s stop);
- `env PYHSM_STORE_DIR=...;` in nginx.conf, because NGINX empties the workers' environment;
- the token store belongs to the worker user.
Verification is independent: curl and `openssl s_client -verify_return_error` with the certificates as trust anchors.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from nginx_setup import (
    ENGINE,
    Nginx,
    free_port,
    generate_token_keys,
    nginx_config,
    self_signed_certificates,
    token_key_uri,
    write_engine_config,
)

LABEL = "nginx"
RSA_ONLY = ("--tls-max", "1.2", "--ciphers", "ECDHE-RSA-AES128-GCM-SHA256")  # else TLS 1.3 picks the ECDSA cert


@dataclass
class Server:
    interop: Any
    dir: Path
    port: int
    nginx: Nginx  # its env: OPENSSL_CONF (engine, init = 1) and PYHSM_STORE_DIR

    def s_client(self, *args: str) -> str:
        result = self.interop.run(["openssl", "s_client", "-connect", f"127.0.0.1:{self.port}", "-servername",
                                   "localhost", "-verify_return_error", *args], input=b"Q\n", cwd=self.dir,
                                  env={"PATH": "/usr/bin:/bin"})
        assert result.returncode == 0, result.stdout + result.stderr
        return str(result.stdout) + str(result.stderr)

    def curl(self, cacert: str, *args: str) -> str:
        result = self.interop.run(["curl", "-sS", "--cacert", str(self.dir / cacert), "--resolve",
                                   f"localhost:{self.port}:127.0.0.1", f"https://localhost:{self.port}/", *args])
        assert result.returncode == 0, result.stderr
        return str(result.stdout)


def _readable_by_workers(path: Path) -> None:
    path.chmod(0o755)


@pytest.fixture(scope="module")
def server(interop, readable_install) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    for tool in ("nginx", "curl", "openssl", "pkcs11-tool"):
        interop.require_tool(tool)
    assert os.geteuid() == 0, "NGINX must start as root to run its workers as nobody (run the suite as root)"
    assert Path(ENGINE).exists(), "bash ci/install.sh installs libengine-pkcs11-openssl"
    base = Path(tempfile.mkdtemp(prefix="pyhsm-nginx-"))  # not under pytest's 0700 tmp: workers must read it
    _readable_by_workers(base)
    module = readable_install.module
    store = base / "store"
    store.mkdir()
    env = dict(os.environ, PYHSM_STORE_DIR=str(store))
    cli = readable_install.cli
    result = interop.run([*cli, "token", "init", "--label", LABEL, "--so-pin", interop.SO_PIN, "--pin",
                          interop.USER_PIN], env=env)
    assert result.returncode == 0, result.stderr
    generate_token_keys(module, LABEL, interop.USER_PIN, env)
    env["OPENSSL_CONF"] = str(write_engine_config(base / "engine.cnf", module, interop.USER_PIN))
    self_signed_certificates(base, LABEL, env)
    port = free_port()
    certificates = {str(base / f"{key}.pem"): f"engine:pkcs11:{token_key_uri(LABEL, key)}" for key in ("rsa", "ec")}
    (base / "nginx.conf").write_text(nginx_config(base, port, certificates, env={"PYHSM_STORE_DIR": str(store)},
                                                  body="served with a key in pyhsm"))
    shutil.chown(store, "nobody", "nogroup")
    for path in [*store.iterdir(), base / "tmp"]:
        shutil.chown(path, "nobody", "nogroup")
    srv = Server(interop, base, port, Nginx(base, env))
    srv.nginx()
    try:
        yield srv
    finally:
        srv.nginx("-s", "stop")
        time.sleep(0.5)
        shutil.rmtree(base, ignore_errors=True)


def test_rsa_and_ecdsa_keys_serve_tls_1_2_and_1_3(server: Server) -> None:
    cases = [
        (("-tls1_2", "-sigalgs", "RSA+SHA256", "-CAfile", "rsa.pem"), "Peer signature type: RSA\n"),
        (("-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256", "-CAfile", "rsa.pem"), "Peer signature type: RSA-PSS"),
        (("-tls1_2", "-sigalgs", "ECDSA+SHA256", "-CAfile", "ec.pem"), "Peer signature type: ECDSA"),
        (("-tls1_3", "-sigalgs", "ecdsa_secp256r1_sha256", "-CAfile", "ec.pem"), "Peer signature type: ECDSA"),
    ]
    for args, signature in cases:
        out = server.s_client(*args)
        assert "Verification: OK" in out and signature in out, out
    assert server.curl("rsa.pem", *RSA_ONLY) == "served with a key in pyhsm\n"
    assert server.curl("ec.pem", "--tlsv1.3") == "served with a key in pyhsm\n"
    print("s_client -verify_return_error: RSA (TLS 1.2), RSA-PSS (TLS 1.3), ECDSA (1.2 and 1.3); curl on each key")


def test_workers_run_as_nobody_and_reach_the_token(server: Server) -> None:
    ps = subprocess.run(["ps", "-o", "user=,args=", "-C", "nginx"], capture_output=True, text=True).stdout
    workers = [line for line in ps.splitlines() if "worker process" in line]
    assert workers and all(line.split()[0] == "nobody" for line in workers), ps
    assert server.curl("ec.pem") == "served with a key in pyhsm\n"
    print(f"{len(workers)} workers as nobody sign handshakes in the token")


def test_reload_keeps_serving(server: Server) -> None:
    server.nginx("-t")
    server.nginx("-s", "reload")
    time.sleep(1.5)
    assert server.curl("rsa.pem", *RSA_ONLY) == "served with a key in pyhsm\n"
    assert server.curl("ec.pem") == "served with a key in pyhsm\n"
    print("nginx -t and nginx -s reload: new workers serve with both keys")


def test_three_hundred_handshakes_without_a_failure(server: Server) -> None:
    failures = 0
    for i in range(300):
        cacert = "ec.pem" if i % 2 else "rsa.pem"
        args = () if i % 2 else RSA_ONLY
        result = server.interop.run(["curl", "-sS", "--cacert", str(server.dir / cacert), "--resolve",
                                     f"localhost:{server.port}:127.0.0.1", f"https://localhost:{server.port}/",
                                     *args])
        failures += result.returncode != 0 or result.stdout != "served with a key in pyhsm\n"
    assert failures == 0
    print("300 handshakes alternating RSA and ECDSA keys: no failure")
