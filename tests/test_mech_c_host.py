"""Mechanism families through a non-Python host (tests/c_host/mechanisms.c), verified independently.

The C program checks known answers itself and prints the values it produced ("out NAME HEX"); the tests here check
those with pyca/cryptography or stock openssl, never with the module.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, keywrap, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from p11_helpers import USER_PIN, generated_header_path, init_token, module_path

SOURCE = Path(__file__).with_name("c_host") / "mechanisms.c"
TOKEN = "c-host-mechanisms"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build = generated_header_path(tmp_path_factory.mktemp("c_host_mechanisms"))
    binary = build / "mechanisms"
    subprocess.run(["gcc", "-Wall", "-Werror", "-O1", f"-I{build}", "-o", str(binary), str(SOURCE), "-ldl"],
                   check=True)
    init_token(TOKEN)
    return binary


def run(host: Path, scenario: str, *args: str) -> dict[str, bytes]:
    result = subprocess.run([str(host), module_path(), USER_PIN, TOKEN, scenario, *args], capture_output=True,
                            text=True, timeout=300)
    print(result.stdout, result.stderr)
    assert result.returncode == 0 and result.stdout.rstrip().endswith("ALL OK"), result.stdout + result.stderr
    values = {}
    for line in result.stdout.splitlines():
        if line.startswith("out "):
            _, name, value = line.split(" ")
            values[name] = bytes.fromhex(value)
    return values


def test_des3_known_answer_and_multi_part_cbc_pad_from_c(host: Path) -> None:
    values = run(host, "des3")
    key = bytes.fromhex("0123456789abcdef23456789abcdef01456789abcdef0123")
    dec = Cipher(TripleDES(key), modes.CBC(bytes(range(8)))).decryptor()
    padded = dec.update(values["des3_cbc_pad"]) + dec.finalize()
    assert padded == b"multi-part 3DES from C" + bytes([2, 2])


def test_rsa_aes_key_wrap_from_c_opens_with_cryptography(host: Path) -> None:
    import pkcs11
    from pkcs11.util.rsa import decode_rsa_public_key

    private = rsa.generate_private_key(65537, 2048)
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    token = pkcs11.lib(module_path()).get_token(token_label=TOKEN)
    with token.open(rw=True, user_pin=USER_PIN) as session:
        session.create_object({**decode_rsa_public_key(der), pkcs11.Attribute.TOKEN: True,
                               pkcs11.Attribute.LABEL: "rsa-aes-pub"})
    wrapped = run(host, "rsa-aes-wrap", "rsa-aes-pub")["rsa_aes_wrapped"]
    aes_key = private.decrypt(wrapped[:256], padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
    assert keywrap.aes_key_unwrap_with_padding(aes_key, wrapped[256:]) == b"an AES-256 key wrapped from C!!\0"


def test_cloudhsm_gcm_and_zero_pad_wrap_from_c(host: Path) -> None:
    values = run(host, "cloudhsm")
    kek = b"0123456789abcdef0123456789abcdef"
    blob = values["cloudhsm_gcm"]
    assert AESGCM(kek).decrypt(blob[:12], blob[12:], b"aad") == b"cloudhsm gcm"
    assert keywrap.aes_key_unwrap_with_padding(kek, values["zero_pad_wrapped"]) == b"twenty byte secret!\0"


def test_sha3_known_answer_and_multi_part_from_c(host: Path) -> None:
    values = run(host, "sha3")
    assert values["sha3_512"] == hashlib.sha3_512(b"multi-part sha3").digest()


def test_eddsa_rfc8032_sign_verify_and_pkcs8_wrap_from_c(host: Path) -> None:
    values = run(host, "eddsa")
    kek = b"kek for an Ed25519 private key!\0"
    der = keywrap.aes_key_unwrap_with_padding(kek, values["ed25519_pkcs8_kwp"])
    key = serialization.load_der_private_key(der, None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    assert key.private_bytes_raw().hex() == "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"


def test_x25519_derive_known_answer_from_c(host: Path) -> None:
    run(host, "x25519")


def test_hkdf_derive_and_hkdf_data_known_answers_from_c(host: Path) -> None:
    run(host, "hkdf")


def test_aes_ccm_and_cts_known_answers_from_c(host: Path) -> None:
    run(host, "aes-ccm-cts")
