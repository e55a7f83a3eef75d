"""Flow 1: Triple-DES keys leave a FIPS-mode token for a non-FIPS token with CKM_RSA_AES_KEY_WRAP, keeping their
attributes, with the `pyhsm` CLI as the CloudHSM migration guide does it with cloudhsm-cli.

The FIPS token no longer encrypts with 3DES (NIST SP 800-131A rev. 2: refused since 2023) but still decrypts legacy
data and may export the keys. The destination makes an RSA wrapping pair (`key generate-asymmetric-pair rsa`) and
exports its public key as PEM (`key generate-file`); on the source the key's owner imports it with wrap=true
(`key import pem`) and wraps the 3DES key (`key wrap rsa-aes`); the destination unwraps it with the original label
and usages (`key unwrap rsa-aes`). Legacy ciphertext (made by OpenSSL from the key's known value) decrypts on both
tokens, and what the destination encrypts equals OpenSSL's DES-EDE3-CBC.
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
    source, destination = make_hsm("3des-source", work, fips=True), make_hsm("3des-destination", work)
    key = os.urandom(24)
    (work / "legacy.key").write_bytes(key)
    source.tool("--write-object", "legacy.key", "--type", "secrkey", "--key-type", "DES3:24", "--label", "legacy-3des",
                "--extractable", "--usage-decrypt")
    (work / "legacy.key").unlink()
    destination.cli("key", "generate-asymmetric-pair", "rsa", "--modulus-size-bits", "3072",
                    "--public-label", "3des-import-public", "--private-label", "3des-import",
                    "--private-attributes", "unwrap=true")
    destination.cli("key", "generate-file", "--encoding", "pem", "--filter", "attr.label=3des-import-public",
                    "--path", str(work / "3des-import.pem"))
    source.cli("key", "import", "pem", "--path", str(work / "3des-import.pem"), "--label", "to-destination",
               "--key-type-class", "rsa-public", "--attributes", "wrap=true")
    (work / "plain").write_bytes(PLAINTEXT)
    openssl_3des(source, key, "-in", "plain", "-out", "legacy.ct")
    source.cli("key", "wrap", "rsa-aes", "--payload-filter", "attr.label=legacy-3des",
               "--wrapping-filter", "attr.label=to-destination", "--path", str(work / "legacy-3des.wrapped"))
    destination.cli("key", "unwrap", "rsa-aes", "--filter", "attr.label=3des-import", "--key-type-class", "des3",
                    "--label", "legacy-3des", "--data-path", str(work / "legacy-3des.wrapped"),
                    "--attributes", "encrypt=true", "decrypt=true")
    return source, destination, key


def openssl_3des(hsm: Any, key: bytes, *args: str) -> None:
    hsm.openssl("enc", "-des-ede3-cbc", "-K", key.hex(), "-iv", IV, "-nopad", *args)


def test_fips_source_refuses_3des_encryption_but_decrypts_legacy_data(moved: Any) -> None:
    source, _, _ = moved
    refused = source.interop.run([str(source.host), source.module, source.token.label, source.pin, "encrypt",
                                  "des3-cbc", "legacy-3des", IV, "plain", "refused.ct"], env=source.token.env,
                                 cwd=source.work)
    assert "FAIL C_EncryptInit: got 0x70 want 0x0" in refused.stdout, refused.stdout  # CKR_MECHANISM_INVALID
    source.migration_host("decrypt", "des3-cbc", "legacy-3des", IV, "legacy.ct", "legacy.source.out")
    assert (source.work / "legacy.source.out").read_bytes() == PLAINTEXT


def test_legacy_ciphertext_decrypts_on_the_destination(moved: Any) -> None:
    _, destination, _ = moved
    destination.migration_host("decrypt", "des3-cbc", "legacy-3des", IV, "legacy.ct", "legacy.out")
    assert (destination.work / "legacy.out").read_bytes() == PLAINTEXT


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
