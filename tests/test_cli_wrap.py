"""`pyhsm key wrap|unwrap <mechanism>`: every round trip is checked outside pyhsm with pyca/cryptography, which
holds the other half of each wrapping key, and the key's identity by its check value (AES-ECB of a zero block).

One token serves the module (token initialisation and RSA key generation are slow on purpose); each test makes its
own payload keys under labels of its own."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_helpers import Cli, new_cli
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import (
    aes_key_unwrap,
    aes_key_unwrap_with_padding,
    aes_key_wrap,
    aes_key_wrap_with_padding,
)

OAEP = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
RSA_KINDS = ["rsa-oaep", "rsa-pkcs", "rsa-aes"]
AES_KINDS = ["aes-gcm", "cloudhsm-aes-gcm", "aes-no-pad", "aes-pkcs5-pad", "aes-zero-pad"]


def check_value(key: bytes) -> str:
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return "0x" + (encryptor.update(bytes(16)) + encryptor.finalize())[:3].hex()


@dataclass
class Setup:
    cli: Cli
    outside: rsa.RSAPrivateKey  # its public half is the token's wrapping key "ext-pub"
    token_public: rsa.RSAPublicKey  # the public half of the token's unwrapping key "t-priv"
    kek: bytes  # the value of the token's AES wrapping key "kek"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    tmp = tmp_path_factory.mktemp("wrap")
    cli = new_cli(tmp)
    outside = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp / "ext.pem"
    pem.write_bytes(outside.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo))
    cli.ok("key", "import", "pem", "--path", str(pem), "--label", "ext-pub", "--key-type-class", "rsa-public",
           "--attributes", "wrap=true")
    cli.ok("key", "generate-asymmetric-pair", "rsa", "--modulus-size-bits", "2048", "--public-label", "t-pub",
           "--private-label", "t-priv", "--private-attributes", "unwrap=true")
    path = tmp / "t.pem"
    cli.ok("key", "generate-file", "--encoding", "pem", "--path", str(path), "--filter", "attr.label=t-pub")
    token_public = serialization.load_pem_public_key(path.read_bytes())
    assert isinstance(token_public, rsa.RSAPublicKey)
    kek = os.urandom(32)  # an AES wrapping key whose value the test knows, unwrapped into the token
    cli.ok("key", "unwrap", "rsa-oaep", "--filter", "attr.label=t-priv", "--key-type-class", "aes", "--label",
           "kek", "--data", base64.b64encode(token_public.encrypt(kek, OAEP)).decode(), "--attributes",
           "wrap=true", "unwrap=true")
    return Setup(cli, outside, token_public, kek)


def _payload(cli: Cli, label: str) -> str:
    key = cli.ok("key", "generate-symmetric", "aes", "--label", label, "--key-length-bytes", "32")["key"]
    return str(key["attributes"]["check-value"])


def unwrap_rsa_outside(kind: str, private: rsa.RSAPrivateKey, wrapped: bytes) -> bytes:
    if kind == "rsa-oaep":
        return private.decrypt(wrapped, OAEP)
    if kind == "rsa-pkcs":
        return private.decrypt(wrapped, padding.PKCS1v15())
    size = private.key_size // 8  # rsa-aes: OAEP(ephemeral AES key) || AES-KWP(ephemeral key, payload)
    return aes_key_unwrap_with_padding(private.decrypt(wrapped[:size], OAEP), wrapped[size:])


def wrap_rsa_outside(kind: str, public: rsa.RSAPublicKey, key: bytes) -> bytes:
    if kind == "rsa-oaep":
        return public.encrypt(key, OAEP)
    if kind == "rsa-pkcs":
        return public.encrypt(key, padding.PKCS1v15())
    ephemeral = os.urandom(32)
    return public.encrypt(ephemeral, OAEP) + aes_key_wrap_with_padding(ephemeral, key)


@pytest.mark.parametrize("kind", RSA_KINDS)
def test_rsa_wrap_is_unwrapped_by_the_private_key_outside(setup: Setup, kind: str) -> None:
    expected = _payload(setup.cli, f"out-{kind}")
    data = setup.cli.ok("key", "wrap", kind, "--payload-filter", f"attr.label=out-{kind}", "--wrapping-filter",
                        "attr.label=ext-pub")
    assert set(data) == {"payload_key_reference", "wrapping_key_reference", "wrapped_key_data"}
    key = unwrap_rsa_outside(kind, setup.outside, base64.b64decode(data["wrapped_key_data"]))
    assert check_value(key) == expected


@pytest.mark.parametrize("kind", RSA_KINDS)
def test_rsa_unwrap_of_a_key_wrapped_outside_from_file_and_base64(setup: Setup, tmp_path: Path, kind: str) -> None:
    secret = os.urandom(32)
    wrapped = wrap_rsa_outside(kind, setup.token_public, secret)
    (tmp_path / "wrapped.bin").write_bytes(wrapped)
    for n, source in enumerate((["--data-path", str(tmp_path / "wrapped.bin")],
                                ["--data", base64.b64encode(wrapped).decode()])):
        key = setup.cli.ok("key", "unwrap", kind, "--filter", "attr.label=t-priv", "--key-type-class", "aes",
                           "--label", f"in-{kind}-{n}", *source)["key"]
        assert key["attributes"]["check-value"] == check_value(secret)
        assert key["attributes"]["label"] == f"in-{kind}-{n}"


def unwrap_aes_outside(kind: str, kek: bytes, wrapped: bytes, data: dict) -> bytes:  # type: ignore[type-arg]
    if kind == "aes-gcm":
        return AESGCM(kek).decrypt(bytes.fromhex(data["iv"][2:]), wrapped, None)
    if kind == "cloudhsm-aes-gcm":
        return AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], None)
    if kind == "aes-zero-pad":  # AWS specifies its zero-padding key wrap as RFC 5649
        return aes_key_unwrap_with_padding(kek, wrapped)
    padded = aes_key_unwrap(kek, wrapped)
    if kind == "aes-pkcs5-pad":
        return padded[:-padded[-1]]
    return padded


@pytest.mark.parametrize("kind", AES_KINDS)
def test_aes_wrap_round_trip_checked_outside(setup: Setup, tmp_path: Path, kind: str) -> None:
    expected = _payload(setup.cli, f"aes-{kind}")
    out = tmp_path / "wrapped.bin"
    data = setup.cli.ok("key", "wrap", kind, "--payload-filter", f"attr.label=aes-{kind}", "--wrapping-filter",
                        "attr.label=kek", "--path", str(out))
    assert data["wrapped_key_path"] == str(out) and ("iv" in data) == (kind == "aes-gcm")
    assert check_value(unwrap_aes_outside(kind, setup.kek, out.read_bytes(), data)) == expected
    extra = ["--iv", data["iv"]] if kind == "aes-gcm" else []
    back = setup.cli.ok("key", "unwrap", kind, "--filter", "attr.label=kek", "--key-type-class", "aes", "--label",
                        f"back-{kind}", "--data-path", str(out), *extra)
    assert back["key"]["attributes"]["check-value"] == expected


def test_aes_no_pad_unwrap_of_a_key_wrapped_outside(setup: Setup) -> None:
    secret = os.urandom(16)
    key = setup.cli.ok("key", "unwrap", "aes-no-pad", "--filter", "attr.label=kek", "--key-type-class", "aes",
                       "--label", "in-kw", "--data", base64.b64encode(aes_key_wrap(setup.kek, secret)).decode())
    assert key["key"]["attributes"]["check-value"] == check_value(secret)


def test_a_non_extractable_key_is_not_wrapped(setup: Setup) -> None:
    setup.cli.ok("key", "generate-symmetric", "aes", "--label", "stuck", "--key-length-bytes", "16",
                 "--attributes", "extractable=false")
    result = setup.cli.run("key", "wrap", "rsa-oaep", "--payload-filter", "attr.label=stuck", "--wrapping-filter",
                           "attr.label=ext-pub")
    assert result.status == 1 and result.json["data"].startswith("CKR_KEY_UNEXTRACTABLE")


def test_bad_base64_is_a_usage_error(setup: Setup) -> None:
    result = setup.cli.run("key", "unwrap", "rsa-oaep", "--filter", "attr.label=t-priv", "--key-type-class", "aes",
                           "--label", "y", "--data", "not base64!")
    assert result.status == 2 and result.json == {"error_code": 1, "data": "--data is base64"}
