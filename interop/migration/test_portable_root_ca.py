"""Flow 3: a portable root CA. The root key is generated in token A (online), self-signs the root certificate
through OpenSSL's libp11 engine and signs a subordinate CA's CSR; then it is wrapped to an "offline" token B in a
store of its own (another machine), and B's copy signs a second subordinate that stock OpenSSL verifies under the
same root certificate.

Transport: B makes an RSA-4096 key pair whose public half goes to A (pkcs11-tool, with CKA_WRAP); A wraps the
root key under it with CKM_RSA_AES_KEY_WRAP (an RSA key's PKCS#8 is too long for RSA-OAEP alone) and B unwraps it,
both by C_WrapKey/C_UnwrapKey in migration_host.c.
"""

from __future__ import annotations

from typing import Any

import pytest

EXTENSIONS = """[req]
distinguished_name = dn
[dn]
[v3_ca]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def engine_openssl(hsm: Any, env: dict[str, str], *args: str) -> None:
    result = hsm.interop.run(["openssl", *args], env=env, cwd=hsm.work)
    assert result.returncode == 0, f"openssl {' '.join(args)}\n{result.stdout}\n{result.stderr}"


def sign_subordinate(hsm: Any, env: dict[str, str], name: str) -> None:
    """A subordinate CA whose key is a file of its own; the root key in `hsm`'s token signs its certificate."""
    hsm.openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", f"{name}.key")
    hsm.openssl("req", "-new", "-key", f"{name}.key", "-subj", f"/CN=pyhsm {name}", "-out", f"{name}.csr")
    engine_openssl(hsm, env, "x509", "-req", "-engine", "pkcs11", "-CAkeyform", "engine",
                   "-CAkey", f"pkcs11:token={hsm.token.label};object=root;type=private", "-CA", "root.pem",
                   "-in", f"{name}.csr", "-days", "30", "-sha256", "-extfile", "engine.cnf", "-extensions", "v3_ca",
                   "-out", f"{name}.pem")


@pytest.fixture(scope="module")
def online(make_hsm, pyhsm_module, interop, tmp_path_factory) -> tuple[Any, dict[str, str]]:  # type: ignore[no-untyped-def]
    """Token A: the root key (RSA-3072, extractable so that it can be moved) and the root certificate."""
    hsm = make_hsm("root-online", tmp_path_factory.mktemp("root-ca-work"))
    hsm.tool("--keypairgen", "--key-type", "rsa:3072", "--label", "root", "--id", "01", "--extractable")
    env = interop.openssl_engine_env(hsm.token, pyhsm_module, hsm.work / "engine.cnf", EXTENSIONS, hsm.pin)
    engine_openssl(hsm, env, "req", "-engine", "pkcs11", "-keyform", "engine",
                   "-key", "pkcs11:token=root-online;object=root;type=private", "-new", "-x509",
                   "-subj", "/CN=pyhsm portable root", "-days", "60", "-sha256", "-extensions", "v3_ca",
                   "-out", "root.pem")
    sign_subordinate(hsm, env, "subordinate-a")
    return hsm, env


@pytest.fixture(scope="module")
def offline(make_hsm, online, pyhsm_module, interop) -> tuple[Any, dict[str, str]]:  # type: ignore[no-untyped-def]
    """Token B in another store, holding a copy of the root key moved by wrapping."""
    a, _ = online
    b = make_hsm("root-offline", a.work)  # the files are what an operator carries between the two machines
    b.tool("--keypairgen", "--key-type", "rsa:4096", "--label", "transport", "--id", "10")
    b.export_public_der("transport", "transport.pub.der")
    a.tool("--write-object", "transport.pub.der", "--type", "pubkey", "--label", "transport-to-b", "--usage-wrap")
    a.migration_host("wrap", "rsa-aes", "transport-to-b", "root", "root.wrapped")
    b.migration_host("unwrap", "rsa-aes", "transport", "private", "rsa", "root", "root.wrapped", "01")
    a.export_public_der("root", "root.pub.der")
    b.tool("--write-object", "root.pub.der", "--type", "pubkey", "--label", "root", "--id", "01")
    env = interop.openssl_engine_env(b.token, pyhsm_module, a.work / "engine-b.cnf", EXTENSIONS, b.pin)
    return b, env


def test_root_key_in_token_a_self_signs_and_signs_a_subordinate(online: tuple[Any, dict[str, str]]) -> None:
    a, _ = online
    assert "root.pem: OK" in a.openssl("verify", "-x509_strict", "-CAfile", "root.pem", "root.pem")
    assert "subordinate-a.pem: OK" in a.openssl("verify", "-x509_strict", "-CAfile", "root.pem", "subordinate-a.pem")


def test_root_key_copy_in_offline_token_b_signs_under_the_same_root(
        online: tuple[Any, dict[str, str]], offline: tuple[Any, dict[str, str]]) -> None:
    b, env = offline
    sign_subordinate(b, env, "subordinate-b")
    assert "subordinate-b.pem: OK" in b.openssl("verify", "-x509_strict", "-CAfile", "root.pem", "subordinate-b.pem")
    issuers = {b.openssl("x509", "-in", cert, "-noout", "-issuer", "-ext", "authorityKeyIdentifier")
               for cert in ("subordinate-a.pem", "subordinate-b.pem")}
    assert len(issuers) == 1  # same issuer name, same authority key identifier


def test_root_key_copy_in_token_b_is_sensitive_and_not_local(offline: tuple[Any, dict[str, str]]) -> None:
    b, _ = offline
    roots = [o for o in b.interop.parse_objects(b.tool("--list-objects", "--type", "privkey"))
             if o.get("label") == "root"]
    assert len(roots) == 1, roots
    access = roots[0]["Access"]
    assert "sensitive" in access and "local" not in access, access  # unwrapped, not generated there


def test_signature_of_token_b_verifies_with_the_public_key_token_a_generated(
        online: tuple[Any, dict[str, str]], offline: tuple[Any, dict[str, str]]) -> None:
    a, b = online[0], offline[0]
    (a.work / "data").write_bytes(b"signed offline")
    b.tool("--sign", "-m", "SHA256-RSA-PKCS", "--id", "01", "-i", "data", "-o", "data.sig")
    a.openssl("pkey", "-pubin", "-inform", "DER", "-in", "root.pub.der", "-out", "root.pub.pem")
    assert "Verified OK" in a.openssl("dgst", "-sha256", "-verify", "root.pub.pem", "-signature", "data.sig", "data")
