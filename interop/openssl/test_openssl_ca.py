"""OpenSSL 3 with libp11's engine (Debian 12: libengine-pkcs11-openssl 0.4.12) running a CA on keys in the token.

A root CA (RSA-3072, PKCS#1 v1.5 self-signature) signs an intermediate (EC P-256) with RSA-PSS; the intermediate
signs a leaf whose key (EC P-384) is also in the token, with ECDSA. Every private key stays in the token; stock
OpenSSL, with no engine and no pyhsm, verifies the chain, the CSRs and the signature algorithms.

The engine config is a file of its own handed to each command through OPENSSL_CONF: putting the engine in the
default config breaks ordinary file-key openssl commands (see ../shared/docs/clients.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

LABEL = "openssl-ca"

EXTENSIONS = """[req]
distinguished_name = dn
[dn]
[v3_ca]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_leaf]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost
"""


@dataclass
class CA:
    interop: Any
    token: Any
    work: Path
    engine_env: dict[str, str]

    def engine_openssl(self, *args: str) -> str:
        result = self.interop.run(["openssl", *args], env=self.engine_env, cwd=self.work)
        assert result.returncode == 0, f"openssl {' '.join(args)}\n{result.stdout}\n{result.stderr}"
        return str(result.stdout)

    def stock_openssl(self, *args: str) -> str:
        """OpenSSL as anyone has it: no engine config, no pyhsm in the environment."""
        env = {k: v for k, v in os.environ.items() if k not in ("OPENSSL_CONF", "PYHSM_STORE_DIR")}
        result = self.interop.run(["openssl", *args], env=env, cwd=self.work)
        assert result.returncode == 0, f"openssl {' '.join(args)}\n{result.stdout}\n{result.stderr}"
        return str(result.stdout) + str(result.stderr)

    def key_uri(self, label: str) -> str:
        return f"pkcs11:token={self.token.label};object={label};type=private"


@pytest.fixture(scope="module")
def ca(interop, pyhsm_module, tmp_path_factory) -> CA:  # type: ignore[no-untyped-def]
    interop.require_tool("openssl")
    interop.require_tool("pkcs11-tool")
    base = tmp_path_factory.mktemp("openssl-ca")
    token = interop.init_token(interop.make_store(base), LABEL)
    for key_type, key_id, label in (("rsa:3072", "01", "root"), ("EC:prime256v1", "02", "intermediate"),
                                    ("EC:secp384r1", "03", "leaf")):
        result = interop.run(["pkcs11-tool", "--module", pyhsm_module, "--token-label", LABEL, "--login", "--pin",
                              token.pin, "--keypairgen", "--key-type", key_type, "--id", key_id, "--label", label],
                             env=token.env)
        assert result.returncode == 0, result.stderr
    work = base / "work"
    work.mkdir()
    return CA(interop, token, work, interop.openssl_engine_env(token, pyhsm_module, work / "engine.cnf", EXTENSIONS))


@pytest.fixture(scope="module")
def chain(ca: CA) -> CA:
    """root.pem, intermediate.pem and leaf.pem, every signature made in the token."""
    engine = ["-engine", "pkcs11"]
    ca.engine_openssl("req", *engine, "-keyform", "engine", "-key", ca.key_uri("root"), "-new", "-x509",
                      "-subj", "/CN=pyhsm interop root", "-days", "30", "-sha256", "-extensions", "v3_ca",
                      "-out", "root.pem")
    ca.engine_openssl("req", *engine, "-keyform", "engine", "-key",
                      f"pkcs11:token={ca.token.label};id=%02;type=private",  # by id this time
                      "-new", "-subj", "/CN=pyhsm interop intermediate", "-sha256", "-out", "intermediate.csr")
    ca.engine_openssl("x509", "-req", *engine, "-CAkeyform", "engine", "-CAkey", ca.key_uri("root"),
                      "-CA", "root.pem", "-in", "intermediate.csr", "-days", "20", "-sha256",
                      "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32",
                      "-extfile", "engine.cnf", "-extensions", "v3_ca", "-out", "intermediate.pem")
    ca.engine_openssl("req", *engine, "-keyform", "engine", "-key", ca.key_uri("leaf"), "-new",
                      "-subj", "/CN=localhost", "-sha384", "-out", "leaf.csr")
    ca.engine_openssl("x509", "-req", *engine, "-CAkeyform", "engine", "-CAkey", ca.key_uri("intermediate"),
                      "-CA", "intermediate.pem", "-in", "leaf.csr", "-days", "10", "-sha256",
                      "-extfile", "engine.cnf", "-extensions", "v3_leaf", "-out", "leaf.pem")
    return ca


def test_stock_openssl_verifies_the_chain_signed_in_the_token(chain: CA) -> None:
    out = chain.stock_openssl("verify", "-x509_strict", "-CAfile", "root.pem", "-untrusted", "intermediate.pem",
                              "leaf.pem")
    assert "leaf.pem: OK" in out
    print("openssl verify -x509_strict: root (RSA-3072) -> intermediate (P-256) -> leaf (P-384): OK")


def test_each_certificate_carries_the_algorithm_the_token_signed_with(chain: CA) -> None:
    expected = {"root.pem": "sha256WithRSAEncryption", "intermediate.pem": "rsassaPss",
                "leaf.pem": "ecdsa-with-SHA256"}
    for cert, algorithm in expected.items():
        text = chain.stock_openssl("x509", "-in", cert, "-noout", "-text")
        assert f"Signature Algorithm: {algorithm}" in text, text
    print("signatures: RSA PKCS#1 v1.5 (root), RSA-PSS (intermediate), ECDSA (leaf)")


def test_csrs_made_with_token_keys_carry_valid_self_signatures(chain: CA) -> None:
    for csr, curve in (("intermediate.csr", "prime256v1"), ("leaf.csr", "secp384r1")):
        out = chain.stock_openssl("req", "-in", csr, "-verify", "-noout", "-text")
        assert "self-signature verify OK" in out, out
        assert f"ASN1 OID: {curve}" in out, out
    print("CSRs by label and by id (RFC 7512 URIs): self-signatures verify with stock OpenSSL (P-256, P-384)")


def test_the_ca_keys_never_left_the_token(chain: CA, pyhsm_module: str) -> None:
    result = chain.interop.run(["pkcs11-tool", "--module", pyhsm_module, "--token-label", chain.token.label,
                                "--login", "--pin", chain.token.pin, "--list-objects", "--type", "privkey"],
                               env=chain.token.env)
    assert result.returncode == 0, result.stderr
    blocks = result.stdout.split("Private Key Object")[1:]
    assert len(blocks) == 3
    for block in blocks:
        assert "never extractable" in block and "sensitive" in block, block
    print("all three private keys: sensitive, always sensitive, never extractable, local")
