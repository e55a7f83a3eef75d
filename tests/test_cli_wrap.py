"""`pyhsm key wrap|unwrap <mechanism>`: every round trip is checked outside pyhsm with pyca/cryptography, which
holds the other half of each wrapping key, and the key's identity by its check value (AES-ECB of a zero block)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from cli_helpers import Cli, cli_fixture  # noqa: F401  (fixture)
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_unwrap_with_padding, aes_key_wrap

from pyhsm.cli.wrap import KINDS
from pyhsm.constants import CKF_WRAP
from pyhsm.mechanisms import registry

OAEP = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
RSA_KINDS = ["rsa-oaep", "rsa-pkcs", "rsa-aes"]
AES_KINDS = ["aes-gcm", "cloudhsm-aes-gcm", "aes-no-pad", "aes-pkcs5-pad", "aes-zero-pad"]


def check_value(key: bytes) -> str:
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return "0x" + (encryptor.update(bytes(16)) + encryptor.finalize())[:3].hex()


def implemented(kind: str) -> bool:
    """Whether this build wraps with the kind's mechanism (some arrive with other work in progress)."""
    mech = registry.all_mechanisms().get(KINDS[kind].mechanism)
    return mech is not None and bool(mech.info.flags & CKF_WRAP)


def assert_not_implemented(result_json: dict, kind: str) -> None:  # type: ignore[type-arg]
    assert result_json["error_code"] == 1
    assert f"(0x{KINDS[kind].mechanism:08x}) is not implemented to" in result_json["data"]


@pytest.fixture
def outside_rsa(cli: Cli, tmp_path: Path) -> rsa.RSAPrivateKey:
    """An RSA key pair made outside pyhsm whose public half is imported as the wrapping key "ext-pub"."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "ext.pem"
    pem.write_bytes(private.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo))
    cli.ok("key", "import", "pem", "--path", str(pem), "--label", "ext-pub", "--key-type-class", "rsa-public",
           "--attributes", "wrap=true")
    return private


def _payload(cli: Cli) -> str:
    key = cli.ok("key", "generate-symmetric", "aes", "--label", "payload", "--key-length-bytes", "32")["key"]
    return str(key["attributes"]["check-value"])


def unwrap_rsa_outside(kind: str, private: rsa.RSAPrivateKey, wrapped: bytes) -> bytes:
    if kind == "rsa-oaep":
        return private.decrypt(wrapped, OAEP)
    if kind == "rsa-pkcs":
        return private.decrypt(wrapped, padding.PKCS1v15())
    size = private.key_size // 8  # rsa-aes: OAEP(ephemeral AES key) || AES-KWP(ephemeral key, payload)
    return aes_key_unwrap_with_padding(private.decrypt(wrapped[:size], OAEP), wrapped[size:])


@pytest.mark.parametrize("kind", RSA_KINDS)
def test_rsa_wrap_is_unwrapped_by_the_private_key_outside(cli: Cli, outside_rsa: rsa.RSAPrivateKey,
                                                          kind: str) -> None:
    expected = _payload(cli)
    result = cli.run("key", "wrap", kind, "--payload-filter", "attr.label=payload", "--wrapping-filter",
                     "attr.label=ext-pub")
    if not implemented(kind):
        assert_not_implemented(result.json, kind)
        return
    data = result.data
    assert set(data) == {"payload_key_reference", "wrapping_key_reference", "wrapped_key_data"}
    key = unwrap_rsa_outside(kind, outside_rsa, base64.b64decode(data["wrapped_key_data"]))
    assert check_value(key) == expected


def wrap_rsa_outside(kind: str, public: rsa.RSAPublicKey, key: bytes) -> bytes:
    if kind == "rsa-oaep":
        return public.encrypt(key, OAEP)
    if kind == "rsa-pkcs":
        return public.encrypt(key, padding.PKCS1v15())
    ephemeral = os.urandom(32)
    from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

    return public.encrypt(ephemeral, OAEP) + aes_key_wrap_with_padding(ephemeral, key)


def _token_rsa(cli: Cli, tmp_path: Path) -> rsa.RSAPublicKey:
    cli.ok("key", "generate-asymmetric-pair", "rsa", "--modulus-size-bits", "2048", "--public-label", "t-pub",
           "--private-label", "t-priv", "--private-attributes", "unwrap=true")
    path = tmp_path / "t.pem"
    cli.ok("key", "generate-file", "--encoding", "pem", "--path", str(path), "--filter", "attr.label=t-pub")
    public = serialization.load_pem_public_key(path.read_bytes())
    assert isinstance(public, rsa.RSAPublicKey)
    return public


@pytest.mark.parametrize("kind", RSA_KINDS)
def test_rsa_unwrap_of_a_key_wrapped_outside_from_file_and_base64(cli: Cli, tmp_path: Path, kind: str) -> None:
    public = _token_rsa(cli, tmp_path)
    secret = os.urandom(32)
    wrapped = wrap_rsa_outside(kind, public, secret)
    (tmp_path / "wrapped.bin").write_bytes(wrapped)
    for n, source in enumerate((["--data-path", str(tmp_path / "wrapped.bin")],
                                ["--data", base64.b64encode(wrapped).decode()])):
        result = cli.run("key", "unwrap", kind, "--filter", "attr.label=t-priv", "--key-type-class", "aes",
                         "--label", f"unwrapped-{n}", *source)
        if not implemented(kind):
            assert_not_implemented(result.json, kind)
            return
        assert result.data["key"]["attributes"]["check-value"] == check_value(secret)


@pytest.fixture
def known_aes(cli: Cli, tmp_path: Path) -> bytes:
    """An AES wrapping key "kek" whose value the test knows (unwrapped into the token with RSA-OAEP)."""
    public = _token_rsa(cli, tmp_path)
    kek = os.urandom(32)
    cli.ok("key", "unwrap", "rsa-oaep", "--filter", "attr.label=t-priv", "--key-type-class", "aes", "--label",
           "kek", "--data", base64.b64encode(public.encrypt(kek, OAEP)).decode(), "--attributes", "wrap=true",
           "unwrap=true")
    return kek


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
def test_aes_wrap_round_trip_checked_outside(cli: Cli, known_aes: bytes, tmp_path: Path, kind: str) -> None:
    expected = _payload(cli)
    out = tmp_path / "wrapped.bin"
    result = cli.run("key", "wrap", kind, "--payload-filter", "attr.label=payload", "--wrapping-filter",
                     "attr.label=kek", "--path", str(out))
    if not implemented(kind):
        assert_not_implemented(result.json, kind)
        return
    data = result.data
    assert data["wrapped_key_path"] == str(out) and ("iv" in data) == (kind == "aes-gcm")
    assert check_value(unwrap_aes_outside(kind, known_aes, out.read_bytes(), data)) == expected
    extra = ["--iv", data["iv"]] if kind == "aes-gcm" else []
    back = cli.ok("key", "unwrap", kind, "--filter", "attr.label=kek", "--key-type-class", "aes", "--label",
                  "back", "--data-path", str(out), *extra)
    assert back["key"]["attributes"]["check-value"] == expected


def test_aes_no_pad_unwrap_of_a_key_wrapped_outside(cli: Cli, known_aes: bytes) -> None:
    secret = os.urandom(16)
    result = cli.run("key", "unwrap", "aes-no-pad", "--filter", "attr.label=kek", "--key-type-class", "aes",
                     "--label", "in", "--data", base64.b64encode(aes_key_wrap(known_aes, secret)).decode())
    if not implemented("aes-no-pad"):
        assert_not_implemented(result.json, "aes-no-pad")
        return
    assert result.data["key"]["attributes"]["check-value"] == check_value(secret)


def test_only_the_owner_rules_of_pkcs11_apply_a_non_extractable_key_is_not_wrapped(cli: Cli,
                                                                                 outside_rsa: object) -> None:
    cli.ok("key", "generate-symmetric", "aes", "--label", "stuck", "--key-length-bytes", "16", "--attributes",
           "extractable=false")
    result = cli.run("key", "wrap", "rsa-oaep", "--payload-filter", "attr.label=stuck", "--wrapping-filter",
                     "attr.label=ext-pub")
    assert result.status == 1 and result.json["data"].startswith("CKR_KEY_UNEXTRACTABLE")


def test_bad_base64_is_a_usage_error(cli: Cli) -> None:
    result = cli.run("key", "unwrap", "rsa-oaep", "--filter", "attr.label=x", "--key-type-class", "aes",
                     "--label", "y", "--data", "not base64!")
    assert result.status == 2 and result.json == {"error_code": 1, "data": "--data is base64"}
