"""`pyhsm crypto sign|verify`, and keys crossing between the CLI and PKCS#11 hosts in other processes:
a CLI key used by pkcs11-tool (signature checked by openssl), a pkcs11-tool key listed and used by the CLI."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_helpers import LABEL, USER_PIN, Cli, cli_fixture, module_path  # noqa: F401  (fixture)
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

DATA = b"pyhsm CLI signing test"
B64 = base64.b64encode(DATA).decode()


def _sign(cli: Cli, algorithm: str, label: str, *extra: str) -> bytes:
    """Sign DATA with the private or secret key labelled `label`."""
    kind = "secret-key" if algorithm == "hmac" else "private-key"
    out = cli.ok("crypto", "sign", algorithm, "--key-filter", f"attr.label={label}", f"attr.class={kind}",
                 "--hash-function", "sha256", "--data", B64, *extra)
    return base64.b64decode(out["signature"])


def _public_key(cli: Cli, label: str, tmp: Path):  # type: ignore[no-untyped-def]
    path = tmp / f"{label}.pem"
    cli.ok("key", "generate-file", "--encoding", "pem", "--path", str(path), "--filter", f"attr.label={label}")
    return serialization.load_pem_public_key(path.read_bytes())


@pytest.fixture
def rsa_pair(cli: Cli) -> Cli:
    cli.ok("key", "generate-asymmetric-pair", "rsa", "--modulus-size-bits", "2048", "--public-label", "rsa-pub",
           "--private-label", "rsa-priv", "--private-attributes", "id=0x0a")
    return cli


def test_rsa_pkcs_and_pss_signatures_verify_outside_pyhsm(rsa_pair: Cli, tmp_path: Path) -> None:
    public = _public_key(rsa_pair, "rsa-priv", tmp_path)
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(_sign(rsa_pair, "rsa-pkcs", "rsa-priv"), DATA, padding.PKCS1v15(), hashes.SHA256())
    pss = _sign(rsa_pair, "rsa-pkcs-pss", "rsa-priv", "--salt-length", "32")
    public.verify(pss, DATA, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())


def test_digest_data_type_signs_a_precomputed_digest(rsa_pair: Cli, tmp_path: Path) -> None:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(DATA)
    out = rsa_pair.ok("crypto", "sign", "rsa-pkcs", "--key-filter", "attr.label=rsa-priv", "--hash-function",
                      "sha256", "--data-type", "digest", "--data", base64.b64encode(digest.finalize()).decode())
    public = _public_key(rsa_pair, "rsa-pub", tmp_path)
    public.verify(base64.b64decode(out["signature"]), DATA, padding.PKCS1v15(), hashes.SHA256())


def test_verify_accepts_good_and_rejects_bad_signatures_with_status_1(rsa_pair: Cli) -> None:
    signature = base64.b64encode(_sign(rsa_pair, "rsa-pkcs", "rsa-priv")).decode()
    ok = rsa_pair.ok("crypto", "verify", "rsa-pkcs", "--key-filter", "attr.label=rsa-pub", "--hash-function",
                     "sha256", "--data", B64, "--signature", signature)
    assert ok == {"message": "Signature verified successfully"}
    bad = rsa_pair.run("crypto", "verify", "rsa-pkcs", "--key-filter", "attr.label=rsa-pub", "--hash-function",
                       "sha256", "--data", base64.b64encode(b"other").decode(), "--signature", signature)
    assert bad.status == 1 and bad.json["data"].startswith("Signature verification failed")


def test_ecdsa_signature_is_der_and_verifies_with_openssl(cli: Cli, tmp_path: Path) -> None:
    cli.ok("key", "generate-asymmetric-pair", "ec", "--curve", "secp256r1", "--public-label", "ec-pub",
           "--private-label", "ec-priv")
    signature = _sign(cli, "ecdsa", "ec-priv")
    (tmp_path / "data").write_bytes(DATA)
    (tmp_path / "sig").write_bytes(signature)
    _public_key(cli, "ec-priv", tmp_path)
    done = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(tmp_path / "ec-priv.pem"), "-signature",
                           str(tmp_path / "sig"), str(tmp_path / "data")], capture_output=True, text=True)
    assert done.returncode == 0 and "Verified OK" in done.stdout
    ok = cli.ok("crypto", "verify", "ecdsa", "--key-filter", "attr.label=ec-pub", "--hash-function", "sha256",
                "--data", B64, "--signature-path", str(tmp_path / "sig"))
    assert ok["message"] == "Signature verified successfully"


def test_hmac_matches_an_independent_hmac(cli: Cli) -> None:
    # An HMAC key whose value is known: unwrap it under an RSA key whose private half lives in the token.
    cli.ok("key", "generate-asymmetric-pair", "rsa", "--modulus-size-bits", "2048", "--public-label", "w-pub",
           "--private-label", "w-priv", "--private-attributes", "unwrap=true")
    secret = bytes(range(32))
    public = _public_key(cli, "w-pub", cli.tmp)
    wrapped = public.encrypt(secret, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
    cli.ok("key", "unwrap", "rsa-oaep", "--filter", "attr.label=w-priv", "--key-type-class", "generic-secret",
           "--label", "mac", "--data", base64.b64encode(wrapped).decode())
    expected = hmac.HMAC(secret, hashes.SHA256())
    expected.update(DATA)
    assert _sign(cli, "hmac", "mac") == expected.finalize()


def _pkcs11_tool(*args: str, cli: Cli) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["pkcs11-tool", "--module", module_path(), "--token-label", LABEL, *args],
                          capture_output=True, text=True, env=cli.module_env(), timeout=120)


needs_pkcs11_tool = pytest.mark.skipif(shutil.which("pkcs11-tool") is None, reason="pkcs11-tool (opensc) missing")


@needs_pkcs11_tool
def test_cli_key_signs_through_pkcs11_tool_and_openssl_verifies(cli: Cli, tmp_path: Path) -> None:
    cli.ok("key", "generate-asymmetric-pair", "ec", "--curve", "secp256r1", "--public-label", "tool-pub",
           "--private-label", "tool-key", "--private-attributes", "id=0x42")
    data, sig = tmp_path / "data", tmp_path / "sig"
    data.write_bytes(DATA)
    done = _pkcs11_tool("--login", "--pin", USER_PIN, "--sign", "--mechanism", "ECDSA-SHA256", "--label",
                        "tool-key", "--signature-format", "openssl", "-i", str(data), "-o", str(sig), cli=cli)
    assert done.returncode == 0, done.stderr
    _public_key(cli, "tool-key", tmp_path)
    verified = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(tmp_path / "tool-key.pem"),
                               "-signature", str(sig), str(data)], capture_output=True, text=True)
    assert verified.returncode == 0 and "Verified OK" in verified.stdout


@needs_pkcs11_tool
def test_pkcs11_tool_key_is_listed_and_used_by_the_cli(cli: Cli) -> None:
    made = _pkcs11_tool("--login", "--pin", USER_PIN, "--keypairgen", "--key-type", "rsa:2048", "--label",
                        "from-tool", "--id", "07", cli=cli)
    assert made.returncode == 0, made.stderr
    listed = cli.ok("key", "list", "--filter", "attr.label=from-tool", "attr.class=private-key", "--verbose")
    assert listed["total_key_count"] == 1
    attrs = listed["matched_keys"][0]["attributes"]
    assert attrs["id"] == "0x07" and attrs["key-type"] == "rsa"
    public = rsa.RSAPublicNumbers(int(attrs["public-exponent"], 16), int(attrs["modulus"], 16)).public_key()
    signature = _sign(cli, "rsa-pkcs", "from-tool")
    public.verify(signature, DATA, padding.PKCS1v15(), hashes.SHA256())
    assert isinstance(public, rsa.RSAPublicKey) and not isinstance(public, ec.EllipticCurvePublicKey)
