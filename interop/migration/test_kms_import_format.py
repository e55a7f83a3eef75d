"""Flow 2: an EC P-256 signing key moved in the KMS import format, RSAES-OAEP (SHA-256, MGF1-SHA-256) under a
4096-bit wrapping key, in both directions between pyhsm and stock OpenSSL.

Out of pyhsm: the wrapping key pair belongs to the outside party (stock OpenSSL); its public key is imported into
the token for wrapping, the module wraps the token's signing key (C_WrapKey from migration_host.c), OpenSSL
unwraps the PKCS#8 key, signs with it, and the signature verifies with the public key that
`pyhsm key generate-file` exported.
Into pyhsm: the token makes the wrapping pair; OpenSSL wraps a key of its own under the exported public key; the
module unwraps it (C_UnwrapKey) and signs (pkcs11-tool), and OpenSSL verifies with its own public key.
"""

from __future__ import annotations

from typing import Any

import pytest

OAEP_SHA256 = ("-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256")


@pytest.fixture(scope="module")
def hsm(make_hsm, tmp_path_factory):  # type: ignore[no-untyped-def]
    return make_hsm("kms-import", tmp_path_factory.mktemp("kms-import-work"))


def test_token_key_wrapped_with_rsa_oaep_sha256_is_unwrapped_and_used_by_stock_openssl(hsm: Any) -> None:
    hsm.tool("--keypairgen", "--key-type", "EC:prime256v1", "--label", "signing", "--id", "01", "--extractable")
    hsm.openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096", "-out", "kms-wrapping.pem")
    hsm.openssl("pkey", "-in", "kms-wrapping.pem", "-pubout", "-outform", "DER", "-out", "kms-wrapping.pub.der")
    hsm.tool("--write-object", "kms-wrapping.pub.der", "--type", "pubkey", "--label", "kms-wrapping",
             "--usage-wrap")
    assert "wrapped 512 bytes" in hsm.migration_host("wrap", "rsa-oaep-sha256", "kms-wrapping", "signing",
                                                     "signing.wrapped")
    hsm.openssl("pkeyutl", "-decrypt", "-inkey", "kms-wrapping.pem", *OAEP_SHA256, "-in", "signing.wrapped",
                "-out", "signing.p8.der")
    assert "ASN1 OID: prime256v1" in hsm.openssl("pkey", "-inform", "DER", "-in", "signing.p8.der", "-noout",
                                                   "-text")
    hsm.openssl("pkey", "-inform", "DER", "-in", "signing.p8.der", "-out", "signing.pem")
    (hsm.work / "message").write_bytes(b"signed outside pyhsm with the key it exported\n")
    hsm.openssl("dgst", "-sha256", "-sign", "signing.pem", "-out", "message.sig", "message")
    hsm.cli("key", "generate-file", "--encoding", "pem", "--filter", "attr.label=signing", "attr.class=public-key",
            "--path", str(hsm.work / "signing.pub.pem"))
    out = hsm.openssl("dgst", "-sha256", "-verify", "signing.pub.pem", "-signature", "message.sig", "message")
    assert "Verified OK" in out
    # and the key is the same one the token still signs with
    hsm.tool("--sign", "-m", "ECDSA-SHA256", "--id", "01", "--signature-format", "openssl", "-i", "message",
             "-o", "token.sig")
    assert "Verified OK" in hsm.openssl("dgst", "-sha256", "-verify", "signing.pub.pem", "-signature", "token.sig",
                                        "message")


def test_key_wrapped_by_stock_openssl_is_unwrapped_into_the_token_and_signs(hsm: Any) -> None:
    hsm.tool("--keypairgen", "--key-type", "rsa:4096", "--label", "import-wrapping", "--id", "10")
    hsm.export_public_der("import-wrapping", "import-wrapping.pub.der")
    hsm.openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "outside.pem")
    hsm.openssl("pkcs8", "-topk8", "-nocrypt", "-in", "outside.pem", "-outform", "DER", "-out", "outside.p8.der")
    hsm.openssl("pkeyutl", "-encrypt", "-pubin", "-keyform", "DER", "-inkey", "import-wrapping.pub.der",
                *OAEP_SHA256, "-in", "outside.p8.der", "-out", "outside.wrapped")
    out = hsm.migration_host("unwrap", "rsa-oaep-sha256", "import-wrapping", "private", "ec", "imported",
                             "outside.wrapped", "11")
    assert "ok unwrapped key: not CKA_LOCAL, sensitive" in out
    (hsm.work / "message").write_bytes(b"signed in pyhsm with a key made outside\n")
    hsm.tool("--sign", "-m", "ECDSA-SHA256", "--id", "11", "--signature-format", "openssl", "-i", "message",
             "-o", "imported.sig")
    hsm.openssl("pkey", "-in", "outside.pem", "-pubout", "-out", "outside.pub.pem")
    assert "Verified OK" in hsm.openssl("dgst", "-sha256", "-verify", "outside.pub.pem", "-signature",
                                        "imported.sig", "message")


def test_wrapped_blob_for_another_key_fails_to_unwrap_with_a_precise_code(hsm: Any) -> None:
    """A blob wrapped for some other RSA key is rejected, not turned into a garbage key."""
    hsm.tool("--keypairgen", "--key-type", "rsa:4096", "--label", "expecting-wrapping", "--id", "20")
    hsm.openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "lost.pem")
    hsm.openssl("pkcs8", "-topk8", "-nocrypt", "-in", "lost.pem", "-outform", "DER", "-out", "lost.p8.der")
    hsm.openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096", "-out", "other.pem")
    hsm.openssl("pkeyutl", "-encrypt", "-inkey", "other.pem", *OAEP_SHA256, "-in", "lost.p8.der",
                "-out", "misdirected.wrapped")
    result = hsm.interop.run([str(hsm.host), hsm.module, hsm.token.label, hsm.pin, "unwrap", "rsa-oaep-sha256",
                              "expecting-wrapping", "private", "ec", "misdirected", "misdirected.wrapped"],
                             env=hsm.token.env, cwd=hsm.work)
    assert result.returncode == 1
    assert "FAIL C_UnwrapKey: got 0x110 want 0x0" in result.stdout, result.stdout  # CKR_WRAPPED_KEY_INVALID
