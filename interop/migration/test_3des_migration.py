"""Flow 1: Triple-DES keys leave a token for another token with CKM_RSA_AES_KEY_WRAP, keeping their attributes.

The destination makes an RSA wrapping pair; its public key, exported as PEM, is imported on the source with
CKA_WRAP; the source wraps the 3DES key; the destination unwraps it with the original label and usages. Data that
the key encrypted before the move (legacy ciphertext, made by OpenSSL from the key's known value, and made by the
source token) decrypts on the destination, and what the destination encrypts equals OpenSSL's DES-EDE3-CBC.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

PLAINTEXT = b"card data: 4111 1111 1111 1111\n".ljust(32, b".")  # whole DES blocks: CKM_DES3_CBC does not pad
IV = "0011223344556677"


@pytest.fixture(scope="module")
def moved(make_hsm, tmp_path_factory) -> tuple[Any, Any, bytes]:  # type: ignore[no-untyped-def]
    work = tmp_path_factory.mktemp("3des-work")
    source, destination = make_hsm("3des-source", work), make_hsm("3des-destination", work)
    key = os.urandom(24)
    (work / "legacy.key").write_bytes(key)
    source.tool("--write-object", "legacy.key", "--type", "secrkey", "--key-type", "DES3:24", "--label", "legacy-3des",
                "--extractable", "--usage-decrypt")
    (work / "legacy.key").unlink()
    destination.tool("--keypairgen", "--key-type", "rsa:3072", "--label", "3des-import", "--id", "30")
    destination.export_public_der("3des-import", "3des-import.pub.der")
    destination.openssl("pkey", "-pubin", "-inform", "DER", "-in", "3des-import.pub.der", "-out", "3des-import.pem")
    source.openssl("pkey", "-pubin", "-in", "3des-import.pem", "-outform", "DER", "-out", "wrapping.der")
    source.tool("--write-object", "wrapping.der", "--type", "pubkey", "--label", "to-destination", "--usage-wrap")
    (work / "plain").write_bytes(PLAINTEXT)
    source.migration_host("encrypt", "des3-cbc", "legacy-3des", IV, "plain", "source.ct")
    source.migration_host("wrap", "rsa-aes", "to-destination", "legacy-3des", "legacy-3des.wrapped")
    destination.migration_host("unwrap", "rsa-aes", "3des-import", "secret", "des3", "legacy-3des",
                               "legacy-3des.wrapped")
    return source, destination, key


def openssl_3des(hsm: Any, key: bytes, *args: str) -> None:
    hsm.openssl("enc", "-des-ede3-cbc", "-K", key.hex(), "-iv", IV, "-nopad", *args)


def test_ciphertext_from_the_source_and_legacy_ciphertext_decrypt_on_the_destination(moved: Any) -> None:
    source, destination, key = moved
    openssl_3des(source, key, "-in", "plain", "-out", "legacy.ct")
    assert (source.work / "source.ct").read_bytes() == (source.work / "legacy.ct").read_bytes()
    for ct in ("source.ct", "legacy.ct"):
        destination.migration_host("decrypt", "des3-cbc", "legacy-3des", IV, ct, f"{ct}.out")
        assert (destination.work / f"{ct}.out").read_bytes() == PLAINTEXT


def test_destination_encrypts_exactly_as_openssl_with_the_original_key(moved: Any) -> None:
    _, destination, key = moved
    destination.migration_host("encrypt", "des3-cbc", "legacy-3des", IV, "plain", "destination.ct")
    openssl_3des(destination, key, "-d", "-in", "destination.ct", "-out", "destination.out")
    assert (destination.work / "destination.out").read_bytes() == PLAINTEXT


def test_moved_key_keeps_its_label_type_and_usages_and_is_sensitive_on_the_destination(moved: Any) -> None:
    _, destination, _ = moved
    keys = [o for o in destination.interop.parse_objects(destination.tool("--list-objects", "--type", "secrkey"))
            if o.get("label") == "legacy-3des"]
    assert len(keys) == 1, keys
    assert keys[0]["header"].startswith("Secret Key Object; DES3"), keys[0]
    assert "encrypt" in keys[0]["Usage"] and "decrypt" in keys[0]["Usage"]
    assert "sensitive" in keys[0]["Access"] and "local" not in keys[0]["Access"]
