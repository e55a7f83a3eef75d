"""NGINX worker CPU time per TLS handshake with the server keys in pyhsm, in SoftHSM and in PEM files.

One nginx per key location (one worker each) on a free 127.0.0.1 port, set up with the interop scenario's helpers
(interop/nginx/nginx_setup.py). A Python TLS 1.2 client makes full handshakes (no session resumption) with an
ECDHE-RSA or an ECDHE-ECDSA suite, so the worker signs once per handshake with the RSA-2048 or the P-256 key. The
worker's CPU time is read from /proc/<pid>/stat (utime + stime) before and after; the three locations take turns,
batch by batch, so that the noise of a shared machine falls on all of them.
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from collections.abc import Mapping
from pathlib import Path

from nginx_setup import (
    Nginx,
    free_port,
    generate_token_keys,
    nginx_config,
    run,
    self_signed_certificates,
    token_key_uri,
    write_engine_config,
)

LABEL = "nginx"
SUITES = {"rsa": "ECDHE-RSA-AES128-GCM-SHA256", "ec": "ECDHE-ECDSA-AES128-GCM-SHA256"}
BATCHES = 3
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def worker_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14 and 15 of stat)


class Location:
    """One nginx serving the RSA and the EC certificate with keys in one place."""

    def __init__(self, directory: Path, name: str, module: tuple[str, dict[str, str]] | None, pin: str) -> None:
        directory.mkdir()
        self.name, self.dir, self.port = name, directory, free_port()
        env = dict(os.environ)
        worker_env: dict[str, str] = {}
        if module is None:  # keys in PEM files
            for key, algorithm in (("rsa", ["-newkey", "rsa:2048"]), ("ec", ["-newkey", "ec", "-pkeyopt",
                                                                              "ec_paramgen_curve:P-256"])):
                run(["openssl", "req", "-x509", "-nodes", *algorithm, "-keyout", str(directory / f"{key}.key"),
                     "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-days", "2",
                     "-out", str(directory / f"{key}.pem")])
            keys = {key: str(directory / f"{key}.key") for key in SUITES}
        else:
            path, module_env = module
            env.update(module_env)
            worker_env = {name: module_env[name] for name in ("PYHSM_STORE_DIR", "SOFTHSM2_CONF") if name in module_env}
            generate_token_keys(path, LABEL, pin, env)
            env["OPENSSL_CONF"] = str(write_engine_config(directory / "engine.cnf", path, pin))
            self_signed_certificates(directory, LABEL, env)
            keys = {key: f"engine:pkcs11:{token_key_uri(LABEL, key)}" for key in SUITES}
        certificates = {str(directory / f"{key}.pem"): value for key, value in keys.items()}
        (directory / "nginx.conf").write_text(nginx_config(directory, self.port, certificates, user="root root",
                                                           workers=1, env=worker_env))
        self.nginx = Nginx(directory, env)
        self.nginx()
        self.contexts = {}
        for key, suite in SUITES.items():
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.load_verify_locations(directory / f"{key}.pem")
            context.maximum_version = ssl.TLSVersion.TLSv1_2
            context.set_ciphers(suite)
            self.contexts[key] = context

    def handshakes(self, key: str, count: int) -> None:
        for _ in range(count):
            with socket.create_connection(("127.0.0.1", self.port), timeout=30) as raw, \
                    self.contexts[key].wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
                response = b""
                while chunk := tls.recv(4096):
                    response += chunk
                if not response.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(f"nginx ({self.name}, {key}) answered {response[:80]!r}")

    def worker_cpu_per_handshake_ms(self, key: str, count: int) -> float:
        (worker,) = self.nginx.worker_pids()
        before = worker_cpu_seconds(worker)
        self.handshakes(key, count)
        return (worker_cpu_seconds(worker) - before) * 1e3


def measure(work: Path, modules: Mapping[str, tuple[str, dict[str, str]]], pin: str,
            handshakes: int) -> dict[str, dict[str, float]]:
    """{location: {"rsa": ms, "ec": ms}}: worker CPU per handshake, over `handshakes` handshakes per key."""
    places: list[tuple[str, tuple[str, dict[str, str]] | None]] = [*modules.items(), ("PEM file", None)]
    locations: list[Location] = []
    try:
        for name, module in places:
            locations.append(Location(work / f"nginx-{len(locations)}", name, module, pin))
        for location in locations:  # the first handshakes start the module in the worker: not measured
            for key in SUITES:
                location.handshakes(key, 3)
        spent: dict[str, dict[str, float]] = {loc.name: dict.fromkeys(SUITES, 0.0) for loc in locations}
        batch = max(1, handshakes // BATCHES)
        for _ in range(BATCHES):
            for location in locations:
                for key in SUITES:
                    spent[location.name][key] += location.worker_cpu_per_handshake_ms(key, batch)
        return {name: {key: ms / (batch * BATCHES) for key, ms in keys.items()} for name, keys in spent.items()}
    finally:
        for location in locations:
            location.nginx("-s", "stop")
        time.sleep(0.5)
