"""The new mechanism families through OpenSC's pkcs11-tool 0.23 (a non-Python host), checked with hashlib, openssl
and pyca/cryptography.

What pkcs11-tool 0.23 can drive: DES3 key generation (not DES3 encryption: its --encrypt knows AES only), SHA3
digests, Ed25519 key pairs and EdDSA signatures, X25519 key pairs (its --derive cannot read an X25519 peer key;
tests/c_host/mechanisms.c covers the derivation).
"""

from __future__ import annotations

import hashlib
import re
import subprocess

import pytest
from p11_helpers import USER_PIN, init_token, module_path

TOKEN = "p11tool-mechanisms"


@pytest.fixture(scope="module")
def tool(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    init_token(TOKEN)
    work = tmp_path_factory.mktemp("p11tool-mech")

    def run(*args: str, login: bool = True) -> str:
        cmd = ["pkcs11-tool", "--module", module_path(), "--token-label", TOKEN]
        if login:
            cmd += ["--login", "--pin", USER_PIN]
        result = subprocess.run([*cmd, *args], cwd=work, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    run.work = work  # type: ignore[attr-defined]
    return run


def test_des3_key_generated_by_pkcs11_tool_has_odd_parity(tool) -> None:  # type: ignore[no-untyped-def]
    out = tool("--keygen", "--key-type", "DES3:24", "--id", "d3", "--label", "des3", "--extractable")
    assert "Secret Key Object; DES3" in out, out
    tool("--read-object", "--type", "secrkey", "--id", "d3", "-o", "des3.key")
    value = (tool.work / "des3.key").read_bytes()
    assert len(value) == 24 and all(bin(b).count("1") % 2 for b in value)


@pytest.mark.parametrize("bits", [224, 256, 384, 512])
def test_sha3_digest_through_pkcs11_tool(tool, bits) -> None:  # type: ignore[no-untyped-def]
    data = b"pkcs11-tool sha3 " * 50
    (tool.work / "data.bin").write_bytes(data)
    tool("--hash", "-m", f"SHA3-{bits}", "-i", "data.bin", "-o", f"sha3-{bits}.bin", login=False)
    assert (tool.work / f"sha3-{bits}.bin").read_bytes() == hashlib.new(f"sha3_{bits}", data).digest()


def test_ed25519_key_pair_signature_verified_by_openssl(tool) -> None:  # type: ignore[no-untyped-def]
    out = tool("--keypairgen", "--key-type", "EC:edwards25519", "--id", "ed", "--label", "ed25519")
    assert "Public Key Object; EC_EDWARDS" in out, out
    assert re.search(r"EC_POINT:\s+0420[0-9a-f]{64}\n", out), out
    (tool.work / "msg.bin").write_bytes(b"signed by pkcs11-tool with EDDSA")
    tool("--sign", "--id", "ed", "-m", "EDDSA", "-i", "msg.bin", "-o", "ed.sig")
    assert (tool.work / "ed.sig").stat().st_size == 64
    verdict = tool("--verify", "--id", "ed", "-m", "EDDSA", "-i", "msg.bin", "--signature-file", "ed.sig")
    assert "Signature is valid" in verdict
    tool("--read-object", "--type", "pubkey", "--id", "ed", "-o", "ed.pem")  # pkcs11-tool writes PEM here
    result = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "ed.pem", "-rawin", "-in",
                             "msg.bin", "-sigfile", "ed.sig"], cwd=tool.work, capture_output=True, text=True)
    assert result.returncode == 0 and "Signature Verified Successfully" in result.stdout, result.stderr


def test_x25519_key_pair_from_pkcs11_tool(tool) -> None:  # type: ignore[no-untyped-def]
    out = tool("--keypairgen", "--key-type", "EC:curve25519", "--id", "a2", "--label", "x25519")
    assert "EC_MONTGOMERY" in out, out
    assert re.search(r"EC_POINT:\s+0420[0-9a-f]{64}\n", out), out


def test_mechanism_list_names_the_new_families(tool) -> None:  # type: ignore[no-untyped-def]
    out = tool("--list-mechanisms", login=False)
    for name in ("DES3-CBC-PAD", "SHA3-256", "SHA3-256-HMAC", "EC-EDWARDS-KEY-PAIR-GEN", "EDDSA",
                 "EC-MONTGOMERY-KEY-PAIR-GEN", "ECDSA-SHA3-256",
                 # pkcs11-tool 0.23 has no names for these (RSA_AES_KEY_WRAP, AES CCM/CTS, SP 800-108, HKDF, vendor)
                 "mechtype-0x1054", "mechtype-0x1088", "mechtype-0x1089", "mechtype-0x3AC", "mechtype-0x402A",
                 "mechtype-0x402B", "mechtype-0x402C", "mechtype-0x80001087", "mechtype-0x8000216F"):
        assert re.search(rf"^  {re.escape(name)}[, ]", out, re.MULTILINE), f"{name} missing:\n{out}"
