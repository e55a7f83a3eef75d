"""OpenSC's pkcs11-tool (Debian 12: opensc 0.23) driving libpyhsm.so, checked against what the engine reports.

One token, initialised with the pyhsm CLI in a temporary store, serves the whole module. Expected values come from
the engine's own documented answers (C_GetInfo, the mechanism registry, the CLI's token list) and from independent
tools (openssl verifies the signatures with the public keys pkcs11-tool read off the token).

Notes on pkcs11-tool 0.23 behaviour the assertions rely on:
- `--verify` exits 0 even for a bad signature; the verdict is the line "Signature is valid" / "Invalid signature".
- "Using slot ..." and "Using signature algorithm ..." go to stderr; listings go to stdout.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest

import pyhsm
from pyhsm import constants as ck

LABEL = "p11tool-interop"
RSA_ID, RSA_LABEL = "01", "rsa-2048"
EC_ID, EC_LABEL = "02", "ec-p256"
P256_PARAMS_HEX = "06082a8648ce3d030107"  # DER OID 1.2.840.10045.3.1.7 (prime256v1)
DATA = b"pyhsm interop: data signed through pkcs11-tool\n" * 20


Tool = Any  # interop.Pkcs11Tool (interop/conftest.py): pkcs11-tool bound to the module, a token and a work dir


@pytest.fixture(scope="module")
def tool(interop, pyhsm_module, tmp_path_factory) -> Tool:  # type: ignore[no-untyped-def]
    tool = interop.Pkcs11Tool.on_new_token(pyhsm_module, tmp_path_factory.mktemp("pkcs11-tool"), LABEL)
    (tool.work / "data.bin").write_bytes(DATA)
    return tool


@pytest.fixture(scope="module")
def keypairs(tool: Tool) -> dict[str, Any]:
    """Generate the RSA-2048 and EC P-256 key pairs once; the tests assert on the results."""
    return {
        "rsa": tool.login("--keypairgen", "--key-type", "rsa:2048", "--id", RSA_ID, "--label", RSA_LABEL),
        "ec": tool.login("--keypairgen", "--key-type", "EC:prime256v1", "--id", EC_ID, "--label", EC_LABEL),
    }


@pytest.fixture(scope="module")
def keys(tool: Tool, keypairs: dict[str, Any]) -> dict[str, Any]:
    """The key pairs, for tests that need them to exist."""
    for result in keypairs.values():
        tool.ok(result)
    return keypairs


def words(value: str) -> set[str]:
    return {w.strip() for w in value.split(",") if w.strip()}


# ---- library, slots, mechanisms ------------------------------------------------------------------------------

def test_show_info(tool: Tool) -> None:
    out = tool.ok(tool("--show-info", select=False))
    major, minor = (int(p) for p in pyhsm.__version__.split(".")[:2])
    assert out.splitlines()[:3] == [
        "Cryptoki version 3.0",
        "Manufacturer     pyhsm",
        f"Library          pyhsm software HSM (ver {major}.{minor})",
    ], out
    print(f"-I: Cryptoki 3.0, manufacturer pyhsm, library version {major}.{minor}")


def test_list_slots(tool: Tool) -> None:
    out = tool.ok(tool("--list-slots", select=False))
    lines = out.splitlines()
    assert lines[0] == "Available slots:"
    slot_id = tool.token.slot
    header = f"Slot {tool.token.index} (0x{slot_id:x}): pyhsm slot {slot_id}"
    assert header in lines, out
    block = lines[lines.index(header) + 1:]
    block = block[:next((i for i, line in enumerate(block) if line.startswith("Slot ")), len(block))]
    fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in block) if v}
    assert fields["token label"] == LABEL
    assert fields["token manufacturer"] == "pyhsm"
    assert fields["token model"] == "pyhsm"
    assert fields["token flags"] == "login required, rng, token initialized, PIN initialized"
    assert fields["serial num"] == tool.token.serial
    # The engine always offers one more slot whose token is waiting to be initialised.
    assert "  token state:   uninitialized" in lines, out
    print(f"-L: slot {slot_id} holds {LABEL!r} serial {tool.token.serial} with the expected flags; "
          "a free uninitialised slot is listed")


# pkcs11-tool's names for the mechanisms asserted line by line (the rest are counted).
P11TOOL_NAMES = {
    ck.CKM_RSA_PKCS_KEY_PAIR_GEN: "RSA-PKCS-KEY-PAIR-GEN",
    ck.CKM_RSA_PKCS: "RSA-PKCS",
    ck.CKM_RSA_X_509: "RSA-X-509",
    ck.CKM_RSA_PKCS_OAEP: "RSA-PKCS-OAEP",
    ck.CKM_RSA_PKCS_PSS: "RSA-PKCS-PSS",
    ck.CKM_SHA256_RSA_PKCS: "SHA256-RSA-PKCS",
    ck.CKM_SHA256_RSA_PKCS_PSS: "SHA256-RSA-PKCS-PSS",
    ck.CKM_SHA256: "SHA256",
    ck.CKM_SHA256_HMAC: "SHA256-HMAC",
    ck.CKM_EC_KEY_PAIR_GEN: "ECDSA-KEY-PAIR-GEN",
    ck.CKM_ECDSA: "ECDSA",
    ck.CKM_ECDSA_SHA256: "ECDSA-SHA256",
    ck.CKM_ECDH1_DERIVE: "ECDH1-DERIVE",
    ck.CKM_AES_KEY_GEN: "AES-KEY-GEN",
    ck.CKM_AES_CBC: "AES-CBC",
    ck.CKM_AES_GCM: "AES-GCM",
    ck.CKM_GENERIC_SECRET_KEY_GEN: "GENERIC-SECRET-KEY-GEN",
}

# The order in which pkcs11-tool prints CK_MECHANISM_INFO flags.
P11TOOL_FLAGS = [
    (ck.CKF_HW, "hw"), (ck.CKF_ENCRYPT, "encrypt"), (ck.CKF_DECRYPT, "decrypt"), (ck.CKF_DIGEST, "digest"),
    (ck.CKF_SIGN, "sign"), (ck.CKF_SIGN_RECOVER, "sign_recover"), (ck.CKF_VERIFY, "verify"),
    (ck.CKF_VERIFY_RECOVER, "verify_recover"), (ck.CKF_GENERATE, "generate"),
    (ck.CKF_GENERATE_KEY_PAIR, "generate_key_pair"), (ck.CKF_WRAP, "wrap"), (ck.CKF_UNWRAP, "unwrap"),
    (ck.CKF_DERIVE, "derive"), (ck.CKF_EC_F_P, "EC F_P"), (ck.CKF_EC_F_2M, "EC F_2M"),
    (ck.CKF_EC_ECPARAMETERS, "EC parameters"), (ck.CKF_EC_OID, "EC OID"), (ck.CKF_EC_UNCOMPRESS, "EC uncompressed"),
    (ck.CKF_EC_COMPRESS, "EC compressed"), (ck.CKF_EC_CURVENAME, "EC curve name"),
]


def expected_mechanism_line(ckm: int) -> str:
    from pyhsm.mechanisms import registry

    info = registry.lookup(ckm).info
    parts = [P11TOOL_NAMES[ckm]]
    if info.min_key or info.max_key:
        parts.append(f"keySize={{{info.min_key or ''},{info.max_key or ''}}}")
    parts += [name for bit, name in P11TOOL_FLAGS if info.flags & bit]
    return "  " + ", ".join(parts)


def test_list_mechanisms(tool: Tool) -> None:
    import pyhsm.mechanisms  # noqa: F401  (registers every family)
    from pyhsm.mechanisms import registry

    out = tool.ok(tool("--list-mechanisms"))
    lines = out.splitlines()
    assert lines[0] == "Supported mechanisms:"
    listed = [line for line in lines[1:] if line.startswith("  ")]
    assert len(listed) == len(registry.all_mechanisms()), out
    for ckm in P11TOOL_NAMES:
        assert expected_mechanism_line(ckm) in listed, f"{expected_mechanism_line(ckm)!r} not in\n{out}"
    print(f"-M: {len(listed)} mechanisms listed (= the registry); {len(P11TOOL_NAMES)} lines match exactly")


# ---- key generation and objects ---------------------------------------------------------------------------

def test_keypairgen_rsa_2048(tool: Tool, keypairs: dict[str, Any]) -> None:
    out = tool.ok(keypairs["rsa"])
    assert out.startswith("Key pair generated:\n"), out
    private, public = tool.interop.parse_objects(out)
    assert private["header"] == "Private Key Object; RSA"
    assert (private["label"], private["ID"]) == (RSA_LABEL, RSA_ID)
    assert {"sign", "decrypt"} <= words(private["Usage"])
    assert {"sensitive", "always sensitive", "local"} <= words(private["Access"])
    assert public["header"] == "Public Key Object; RSA 2048 bits"
    assert (public["label"], public["ID"]) == (RSA_LABEL, RSA_ID)
    assert {"verify", "encrypt"} <= words(public["Usage"])
    print(f"--keypairgen rsa:2048: private {private['Usage']!r} {private['Access']!r}; public 2048 bits")


def test_keypairgen_ec_p256(tool: Tool, keypairs: dict[str, Any]) -> None:
    out = tool.ok(keypairs["ec"])
    assert out.startswith("Key pair generated:\n"), out
    private, public = tool.interop.parse_objects(out)
    assert private["header"] == "Private Key Object; EC"
    assert (private["label"], private["ID"]) == (EC_LABEL, EC_ID)
    assert "sign" in words(private["Usage"])
    assert {"sensitive", "always sensitive", "local"} <= words(private["Access"])
    assert public["header"] == "Public Key Object; EC  EC_POINT 256 bits"
    assert public["EC_PARAMS"] == P256_PARAMS_HEX
    # CKA_EC_POINT: DER OCTET STRING (04 41) around the uncompressed point (04 || X || Y).
    assert re.fullmatch(r"044104[0-9a-f]{128}", public["EC_POINT"]), public["EC_POINT"]
    assert (public["label"], public["ID"]) == (EC_LABEL, EC_ID)
    assert "verify" in words(public["Usage"])
    print(f"--keypairgen EC:prime256v1: EC_PARAMS {public['EC_PARAMS']}, 65-byte uncompressed EC_POINT")


def test_list_objects(tool: Tool, keys: dict[str, Any]) -> None:
    public_only = tool.interop.parse_objects(tool.ok(tool("--list-objects")))
    assert sorted((o["header"], o["label"], o["ID"]) for o in public_only) == [
        ("Public Key Object; EC  EC_POINT 256 bits", EC_LABEL, EC_ID),
        ("Public Key Object; RSA 2048 bits", RSA_LABEL, RSA_ID),
    ], public_only
    everything = tool.interop.parse_objects(tool.ok(tool.login("--list-objects")))
    assert sorted((o["header"], o["label"], o["ID"]) for o in everything) == [
        ("Private Key Object; EC", EC_LABEL, EC_ID),
        ("Private Key Object; RSA", RSA_LABEL, RSA_ID),
        ("Public Key Object; EC  EC_POINT 256 bits", EC_LABEL, EC_ID),
        ("Public Key Object; RSA 2048 bits", RSA_LABEL, RSA_ID),
    ], everything
    print("-O: 2 public objects before login; the 2 private keys appear after --login")


# ---- signatures ------------------------------------------------------------------------------------------

def read_pubkey(tool: Tool, key_id: str, name: str) -> Path:
    tool.ok(tool("--read-object", "--type", "pubkey", "--id", key_id, "-o", name))
    path = tool.work / name
    assert path.stat().st_size > 0
    return path


def openssl_verify(tool: Tool, pubkey: Path, signature: str, data: str = "data.bin") -> str:
    result = tool.interop.run(["openssl", "dgst", "-sha256", "-verify", str(pubkey), "-keyform", "DER",
                               "-signature", signature, data], cwd=tool.work)
    return f"{result.returncode}:{result.stdout.strip()}"


def token_verify(tool: Tool, key_id: str, mech: str, signature: str, data: str = "data.bin", *extra: str) -> str:
    result = tool("--verify", "--id", key_id, "-m", mech, "-i", data, "--signature-file", signature, *extra)
    return tool.ok(result).strip()


def test_rsa_sha256_sign_verify(tool: Tool, keys: dict[str, Any]) -> None:
    tool.ok(tool.login("--sign", "--id", RSA_ID, "-m", "SHA256-RSA-PKCS", "-i", "data.bin", "-o", "rsa.sig"))
    assert (tool.work / "rsa.sig").stat().st_size == 256
    assert token_verify(tool, RSA_ID, "SHA256-RSA-PKCS", "rsa.sig") == "Signature is valid"
    (tool.work / "tampered.bin").write_bytes(DATA + b"!")
    assert token_verify(tool, RSA_ID, "SHA256-RSA-PKCS", "rsa.sig", "tampered.bin") == "Invalid signature"
    pub = read_pubkey(tool, RSA_ID, "rsa-pub.der")
    assert openssl_verify(tool, pub, "rsa.sig") == "0:Verified OK"
    assert openssl_verify(tool, pub, "rsa.sig", "tampered.bin") == "1:Verification failure"
    print("SHA256-RSA-PKCS: 256-byte signature valid on the token and in openssl; tampered data refused by both")


def test_ecdsa_sha256_sign_verify(tool: Tool, keys: dict[str, Any]) -> None:
    tool.ok(tool.login("--sign", "--id", EC_ID, "-m", "ECDSA-SHA256", "-i", "data.bin", "-o", "ec-raw.sig"))
    assert (tool.work / "ec-raw.sig").stat().st_size == 64  # raw r || s
    assert token_verify(tool, EC_ID, "ECDSA-SHA256", "ec-raw.sig") == "Signature is valid"
    tool.ok(tool.login("--sign", "--id", EC_ID, "-m", "ECDSA-SHA256", "--signature-format", "openssl",
                  "-i", "data.bin", "-o", "ec.sig"))
    assert token_verify(tool, EC_ID, "ECDSA-SHA256", "ec.sig", "data.bin",
                        "--signature-format", "openssl") == "Signature is valid"
    (tool.work / "tampered.bin").write_bytes(DATA + b"!")
    assert token_verify(tool, EC_ID, "ECDSA-SHA256", "ec-raw.sig", "tampered.bin") == "Invalid signature"
    pub = read_pubkey(tool, EC_ID, "ec-pub.der")
    assert openssl_verify(tool, pub, "ec.sig") == "0:Verified OK"
    assert openssl_verify(tool, pub, "ec.sig", "tampered.bin") == "1:Verification failure"
    print("ECDSA-SHA256: raw 64-byte and DER signatures valid on the token; DER one valid in openssl")


def test_ecdsa_over_hash_sign_verify(tool: Tool, keys: dict[str, Any]) -> None:
    (tool.work / "data.sha256").write_bytes(hashlib.sha256(DATA).digest())
    tool.ok(tool.login("--sign", "--id", EC_ID, "-m", "ECDSA", "--signature-format", "openssl",
                  "-i", "data.sha256", "-o", "ec-hash.sig"))
    assert token_verify(tool, EC_ID, "ECDSA", "ec-hash.sig", "data.sha256",
                        "--signature-format", "openssl") == "Signature is valid"
    pub = read_pubkey(tool, EC_ID, "ec-pub.der")
    assert openssl_verify(tool, pub, "ec-hash.sig") == "0:Verified OK"  # = ECDSA-SHA256 over the data
    print("ECDSA over a SHA-256 digest: valid on the token and in openssl over the original data")


def test_read_pubkeys_match_openssl(tool: Tool, keys: dict[str, Any]) -> None:
    rsa = tool.interop.run(["openssl", "pkey", "-pubin", "-inform", "DER", "-in",
                            str(read_pubkey(tool, RSA_ID, "rsa-pub.der")), "-noout", "-text"])
    assert rsa.returncode == 0 and rsa.stdout.splitlines()[0] == "Public-Key: (2048 bit)", rsa.stdout
    ec = tool.interop.run(["openssl", "pkey", "-pubin", "-inform", "DER", "-in",
                           str(read_pubkey(tool, EC_ID, "ec-pub.der")), "-noout", "-text"])
    assert ec.returncode == 0 and "Public-Key: (256 bit)" in ec.stdout and "NIST CURVE: P-256" in ec.stdout
    print("--read-object --type pubkey: openssl parses a 2048-bit RSA key and a P-256 EC key")


# ---- pkcs11-tool's own self test ------------------------------------------------------------------------

def test_pkcs11_tool_self_test(tool: Tool, keys: dict[str, Any]) -> None:
    tool.ok(tool.login("--keygen", "--key-type", "AES:32", "--id", "a1", "--label", "self-test-aes"))
    tool.ok(tool.login("--keygen", "--key-type", "GENERIC:32", "--id", "a2", "--label", "self-test-hmac"))
    result = tool.login("--test", timeout=600)
    out = result.stdout
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{out}\nstderr:\n{result.stderr}"
    assert out.rstrip().splitlines()[-1] == "No errors", out
    assert "RSA-PKCS-OAEP" in out and "all 4 digest functions seem to work" in out, out
    print("--test --login: 'No errors' on a token holding RSA and EC key pairs, an AES key and an HMAC key")
