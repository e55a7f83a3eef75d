"""Java 17 SunPKCS11: keytool makes RSA and EC keys in the token, jarsigner signs a jar with each in the token.

The provider is configured by the file `pyhsm java-config` writes. Independent checks: OpenSC's pkcs11-tool lists the
keys Java made (sensitive, never extractable, by pyhsm's defaults: Java sends an empty private-key template);
OpenSC's pkcs11-spy, put between the JVM and the module for the signing runs, records which mechanisms Java used
(the hashed ones, CKM_SHA256_RSA_PKCS and CKM_ECDSA_SHA256, so the whole signature is made in the token); and
`jarsigner -verify -strict` checks the signed jar against a truststore holding the two certificates read off the
token with pkcs11-tool, and refuses it without that truststore.

JVM launches are CPU-heavy, so the run is kept to ten: 2 genkeypair, 1 list, 1 jar, 2 sign, 2 importcert, 2 verify.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pyhsm import constants as ck

LABEL = "java"
SPY = "/usr/lib/x86_64-linux-gnu/pkcs11-spy.so"
PROVIDER = "SunPKCS11-pyhsm"
TRUST_PASS = "trust-store-pass"
KEYS = {  # alias (= CKA_ID and certificate label) -> keytool arguments, expected key type, expected mechanism
    "rsakey": (["-keyalg", "RSA", "-keysize", "2048", "-sigalg", "SHA256withRSA"], "RSA", ck.CKM_SHA256_RSA_PKCS),
    "eckey": (["-keyalg", "EC", "-groupname", "secp256r1", "-sigalg", "SHA256withECDSA"], "EC",
              ck.CKM_ECDSA_SHA256),
}


@dataclass
class Java:
    interop: Any
    token: Any
    module: str
    work: Path
    config: Path

    def token_args(self, config: Path | None = None) -> list[str]:
        return ["-keystore", "NONE", "-storetype", "PKCS11", "-providerName", PROVIDER, "-addprovider", "SunPKCS11",
                "-providerArg", str(config or self.config), "-storepass", self.token.pin]

    def run(self, *cmd: str, env: dict[str, str] | None = None) -> str:
        result = self.interop.run(cmd, env=env or self.token.env, cwd=self.work, timeout=300)
        assert result.returncode == 0, f"{' '.join(cmd)} -> {result.returncode}\n{result.stdout}\n{result.stderr}"
        return str(result.stdout) + str(result.stderr)

    def pkcs11_tool(self, *args: str) -> str:
        return self.run("pkcs11-tool", "--module", self.module, "--token-label", LABEL, *args)


@pytest.fixture(scope="module")
def java(interop, pyhsm_module, tmp_path_factory) -> Java:  # type: ignore[no-untyped-def]
    for tool in ("keytool", "jarsigner", "jar", "pkcs11-tool", "openssl"):
        interop.require_tool(tool)
    assert Path(SPY).exists(), "OpenSC's pkcs11-spy (package opensc-pkcs11) is missing"
    base = tmp_path_factory.mktemp("java")
    token = interop.init_token(interop.make_store(base), LABEL)
    config = base / "pyhsm-java.cfg"
    result = interop.pyhsm_cli("java-config", "--token", LABEL, "--out", str(config), env=token.env)
    assert result.returncode == 0, result.stderr
    return Java(interop, token, pyhsm_module, base, config)


@pytest.fixture(scope="module")
def keys(java: Java) -> str:
    """keytool -genkeypair of both keys with -providerName, then keytool -list of the token."""
    for alias, (args, _, _) in KEYS.items():
        java.run("keytool", "-genkeypair", *java.token_args(), "-alias", alias, *args, "-dname", f"CN=pyhsm {alias}",
                 "-validity", "365")
    return java.run("keytool", "-list", *java.token_args())


@pytest.fixture(scope="module")
def signed_jar(java: Java, keys: str) -> tuple[Path, str]:
    """A jar made by `jar`, signed by jarsigner with both keys; pkcs11-spy logs the module calls of the signing."""
    (java.work / "classes").mkdir()
    (java.work / "classes" / "hello.txt").write_text("signed with keys that never left pyhsm\n")
    java.run("jar", "--create", "--file", "app.jar", "-C", "classes", ".")
    spy_config = java.work / "spy.cfg"
    spy_config.write_text(re.sub(r"(?m)^library = .*$", f"library = {SPY}", java.config.read_text()))
    spy_log = java.work / "spy.log"
    env = dict(java.token.env, PKCS11SPY=java.module, PKCS11SPY_OUTPUT=str(spy_log))
    unsigned = "app.jar"
    for alias in KEYS:
        java.run("jarsigner", *java.token_args(spy_config), "-signedjar", f"app-{alias}.jar", unsigned, alias,
                 env=env)
        unsigned = f"app-{alias}.jar"
    return java.work / unsigned, spy_log.read_text()


def test_java_config_names_the_module_and_the_slot_of_the_token(java: Java) -> None:
    settings = dict(re.findall(r"(?m)^(\w+) = (.*)$", java.config.read_text()))
    assert settings == {"name": "pyhsm", "library": java.module, "slot": str(java.token.slot)}, settings
    unknown = java.interop.pyhsm_cli("java-config", "--token", "no-such-token", env=java.token.env)
    assert unknown.returncode == 2 and "no initialised token is labelled 'no-such-token'" in unknown.stderr, unknown
    print(f"pyhsm java-config: name = pyhsm, library = {java.module}, slot = {java.token.slot}; an unknown label "
          "is refused (exit 2)")


def test_keytool_generates_rsa_and_ec_key_pairs_in_the_token(java: Java, keys: str) -> None:
    assert "Your keystore contains 2 entries" in keys, keys
    for alias in KEYS:
        assert re.search(rf"(?m)^{alias}, PrivateKeyEntry,", keys), keys
    objects = java.interop.parse_objects(java.pkcs11_tool("--login", "--pin", java.token.pin, "--list-objects"))
    found = {(o["header"].split(";")[0], bytes.fromhex(o["ID"]).decode()) for o in objects}
    assert found == {(kind, alias) for alias in KEYS for kind in ("Private Key Object", "Certificate Object")}, found
    print("keytool -genkeypair -providerName: an RSA-2048 and a P-256 private key and their certificates are token "
          "objects (pkcs11-tool -O); keytool -list shows 2 PrivateKeyEntry")


def test_keys_java_made_are_sensitive_and_never_extractable(java: Java, keys: str) -> None:
    objects = java.interop.parse_objects(java.pkcs11_tool("--login", "--pin", java.token.pin, "--list-objects",
                                                          "--type", "privkey"))
    assert len(objects) == len(KEYS), objects
    for obj in objects:
        alias = bytes.fromhex(obj["ID"]).decode()
        assert obj["header"] == f"Private Key Object; {KEYS[alias][1]}", obj
        access = {w.strip() for w in obj["Access"].split(",")}
        assert {"sensitive", "always sensitive", "never extractable"} <= access, obj
        assert "extractable" not in access, obj
    print("the private keys Java generated (empty private template, then C_CopyObject to the token) are "
          "sensitive, always sensitive, not extractable, never extractable")


def test_jarsigner_signs_in_the_token_with_the_hashed_mechanisms(signed_jar: tuple[Path, str]) -> None:
    _, spy = signed_jar
    used = re.findall(r"C_SignInit\n.*\n.*\n\[in\] pMechanism->type = (\S+)", spy)
    expected = [mech for _, _, mech in KEYS.values()]
    names = {ck.CKM_SHA256_RSA_PKCS: "CKM_SHA256_RSA_PKCS", ck.CKM_ECDSA_SHA256: f"0x{ck.CKM_ECDSA_SHA256:08x}"}
    assert used == [names[mech] for mech in expected], used  # pkcs11-spy has no name for CKM_ECDSA_SHA256
    assert "C_Digest" not in spy
    print(f"pkcs11-spy: jarsigner called C_SignInit with {used} (CKM_SHA256_RSA_PKCS, CKM_ECDSA_SHA256): the "
          "hashing and signing happen in the token")


def test_jarsigner_verify_strict_accepts_both_signatures_with_a_truststore(java: Java,
                                                                          signed_jar: tuple[Path, str]) -> None:
    jar, _ = signed_jar
    without = java.interop.run(["jarsigner", "-verify", "-strict", str(jar)], cwd=java.work, env=dict(os.environ))
    assert without.returncode != 0 and "certificate chain is invalid" in without.stdout, without.stdout
    for alias in KEYS:  # the certificates keytool stored in the token, read with pkcs11-tool, trusted by keytool
        java.pkcs11_tool("--read-object", "--type", "cert", "--id", alias.encode().hex(), "-o", f"{alias}.der")
        java.run("keytool", "-importcert", "-noprompt", "-alias", alias, "-file", f"{alias}.der", "-keystore",
                 "trust.p12", "-storetype", "PKCS12", "-storepass", TRUST_PASS)
    out = java.run("jarsigner", "-verify", "-strict", "-verbose", "-certs", "-keystore", "trust.p12", "-storepass",
                   TRUST_PASS, str(jar))
    assert "jar verified." in out and "signer errors" not in out, out
    for alias in KEYS:
        assert f"CN=pyhsm {alias}" in out, out
    print("jarsigner -verify -strict: the jar signed with the RSA and the EC token keys verifies against a "
          "truststore of the two certificates, and is refused without it")
