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
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEBIAN_PYTHON = "/usr/bin/python3.11"
ENGINE = "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so"
LABEL = "nginx"
RSA_ONLY = ("--tls-max", "1.2", "--ciphers", "ECDHE-RSA-AES128-GCM-SHA256")  # else TLS 1.3 picks the ECDSA cert

ENGINE_CONFIG = """openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = {engine}
MODULE_PATH = {module}
PIN = {pin}
init = 1
"""

REQ_CONFIG = """[req]
distinguished_name = dn
[dn]
[v3]
subjectAltName = DNS:localhost,IP:127.0.0.1
basicConstraints = critical,CA:true
"""

NGINX_CONFIG = """user nobody nogroup;
worker_processes 2;
error_log {dir}/error.log info;
pid {dir}/nginx.pid;
env PYHSM_STORE_DIR={store};
events {{}}
http {{
  access_log off;
  client_body_temp_path {dir}/tmp/body; proxy_temp_path {dir}/tmp/proxy; fastcgi_temp_path {dir}/tmp/fcgi;
  uwsgi_temp_path {dir}/tmp/uwsgi; scgi_temp_path {dir}/tmp/scgi;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate {dir}/rsa.pem;
    ssl_certificate_key "engine:pkcs11:pkcs11:token={label};object=rsa;type=private";
    ssl_certificate {dir}/ec.pem;
    ssl_certificate_key "engine:pkcs11:pkcs11:token={label};object=ec;type=private";
    location / {{ return 200 "served with a key in pyhsm\\n"; }}
  }}
}}
"""


@dataclass
class Server:
    interop: Any
    dir: Path
    port: int
    env: dict[str, str]  # OPENSSL_CONF (engine, init = 1) and PYHSM_STORE_DIR

    def nginx(self, *args: str) -> None:
        result = self.interop.run(["nginx", "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"), *args],
                                  env=self.env)
        assert result.returncode == 0, result.stderr

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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _readable_by_workers(path: Path) -> None:
    path.chmod(0o755)


@pytest.fixture(scope="module")
def server(interop) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    for tool in ("nginx", "curl", "openssl", "pkcs11-tool"):
        interop.require_tool(tool)
    assert os.geteuid() == 0, "NGINX must start as root to run its workers as nobody (run the suite as root)"
    assert Path(DEBIAN_PYTHON).exists() and Path(ENGINE).exists(), "bash ci/install.sh installs these"
    base = Path(tempfile.mkdtemp(prefix="pyhsm-nginx-"))  # not under pytest's 0700 tmp: workers must read it
    _readable_by_workers(base)
    venv = base / "venv"
    subprocess.run([DEBIAN_PYTHON, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(ROOT)], check=True, timeout=600)
    module = subprocess.run([str(venv / "bin" / "pyhsm"), "module-path"], capture_output=True, text=True,
                            check=True).stdout.strip()
    store = base / "store"
    store.mkdir()
    env = dict(os.environ, PYHSM_STORE_DIR=str(store))
    cli = [str(venv / "bin" / "pyhsm")]
    result = interop.run([*cli, "token", "init", "--label", LABEL, "--so-pin", interop.SO_PIN, "--pin",
                          interop.USER_PIN], env=env)
    assert result.returncode == 0, result.stderr
    for key_type, key_id, label in (("rsa:2048", "01", "rsa"), ("EC:prime256v1", "02", "ec")):
        result = interop.run(["pkcs11-tool", "--module", module, "--token-label", LABEL, "--login", "--pin",
                              interop.USER_PIN, "--keypairgen", "--key-type", key_type, "--id", key_id,
                              "--label", label], env=env)
        assert result.returncode == 0, result.stderr
    (base / "engine.cnf").write_text(ENGINE_CONFIG.format(engine=ENGINE, module=module, pin=interop.USER_PIN))
    (base / "req.cnf").write_text(REQ_CONFIG)
    env["OPENSSL_CONF"] = str(base / "engine.cnf")
    for key in ("rsa", "ec"):  # self-signed server certificates, signed in the token
        result = interop.run(["openssl", "req", "-new", "-x509", "-keyform", "engine", "-engine", "pkcs11", "-key",
                              f"pkcs11:token={LABEL};object={key};type=private", "-subj", "/CN=localhost",
                              "-days", "2", "-sha256", "-config", str(base / "req.cnf"), "-extensions", "v3",
                              "-out", str(base / f"{key}.pem")], env=env)
        assert result.returncode == 0, result.stderr
    (base / "tmp").mkdir()
    shutil.chown(store, "nobody", "nogroup")
    for path in [*store.iterdir(), base / "tmp"]:
        shutil.chown(path, "nobody", "nogroup")
    port = _free_port()
    (base / "nginx.conf").write_text(NGINX_CONFIG.format(dir=base, store=store, port=port, label=LABEL))
    srv = Server(interop, base, port, env)
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
