"""pkcs11-tool 0.23 round trips: import, read back, wrap/unwrap, ECDH, encrypt/decrypt, each checked outside pyhsm.

The key material is made here with pyca/cryptography, so every result the token produces can be recomputed
independently: bytes read back are compared with the originals, wrapped keys are unwrapped (and RSA ciphertexts
decrypted) with pyca or openssl, the ECDH secret is computed by pyca from the peer's side, ciphertexts are
decrypted by pyca and pyca's ciphertexts are decrypted by the token.

What pkcs11-tool 0.23 itself cannot do (README, "Use it with pkcs11-tool"): `--encrypt` only takes secret keys and
only AES-ECB/CBC/CBC-PAD (no GCM, no CTR, no RSA); `--wrap`/`--unwrap` with RSA-PKCS-OAEP send no
CK_RSA_PKCS_OAEP_PARAMS (pParameter = NULL), which the specification makes CKR_MECHANISM_PARAM_INVALID, so RSA wraps
here use RSA-PKCS (v1.5) and OAEP is exercised through `--decrypt`.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap
from cryptography.hazmat.primitives.padding import PKCS7
from cryptography.x509.oid import NameOID

LABEL = "p11tool-roundtrip"
RSA_ID, EC_ID, KEK_ID, DATA_KEY_ID = "30", "31", "40", "41"
IV = bytes(range(16))
DER = serialization.Encoding.DER
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
PKCS8 = serialization.PrivateFormat.PKCS8
NO_PASSWORD = serialization.NoEncryption()
OAEP_SHA256 = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)

Tool = Any  # interop.Pkcs11Tool (interop/conftest.py): pkcs11-tool bound to the module, a token and a work dir


def _self_signed(key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pyhsm imported")])
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=2)).sign(key, hashes.SHA256()))


@pytest.fixture(scope="module")
def tool(interop, pyhsm_module, tmp_path_factory) -> Tool:  # type: ignore[no-untyped-def]
    return interop.Pkcs11Tool.on_new_token(pyhsm_module, tmp_path_factory.mktemp("pkcs11-tool-roundtrips"), LABEL)


class Material:
    """Keys made outside the token, written to the work directory in the formats pkcs11-tool reads."""

    def __init__(self, work: Path) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.cert = _self_signed(self.rsa)
        self.kek, self.data_key = os.urandom(32), os.urandom(16)
        files = {
            "rsa.p8.der": self.rsa.private_bytes(DER, PKCS8, NO_PASSWORD),
            "rsa-pub.der": self.rsa.public_key().public_bytes(DER, SPKI),
            "ec.p8.der": self.ec.private_bytes(DER, PKCS8, NO_PASSWORD),
            "ec-pub.der": self.ec.public_key().public_bytes(DER, SPKI),
            "cert.der": self.cert.public_bytes(DER),
            "kek.bin": self.kek,
            "data-key.bin": self.data_key,
        }
        for name, value in files.items():
            (work / name).write_bytes(value)


@pytest.fixture(scope="module")
def material(tool: Tool) -> Material:
    """Import everything with --write-object: certificate, PKCS#8 private keys, public keys, AES keys."""
    made = Material(tool.work)
    for args in (
        ("cert.der", "--type", "cert", "--id", RSA_ID, "--label", "imported-rsa"),
        ("rsa.p8.der", "--type", "privkey", "--id", RSA_ID, "--label", "imported-rsa"),
        ("rsa-pub.der", "--type", "pubkey", "--id", RSA_ID, "--label", "imported-rsa"),
        ("ec.p8.der", "--type", "privkey", "--id", EC_ID, "--label", "imported-ec", "--usage-derive"),
        ("ec-pub.der", "--type", "pubkey", "--id", EC_ID, "--label", "imported-ec"),
        ("kek.bin", "--type", "secrkey", "--key-type", "AES:32", "--id", KEK_ID, "--label", "kek"),
        ("data-key.bin", "--type", "secrkey", "--key-type", "AES:16", "--id", DATA_KEY_ID, "--label", "data-key",
         "--extractable"),
    ):
        tool.ok(tool.login("--write-object", *args))
    return made


def read_object(tool: Tool, kind: str, key_id: str) -> bytes:
    tool.ok(tool("--read-object", "--type", kind, "--id", key_id, "-o", f"read-{kind}-{key_id}.der"))
    return (tool.work / f"read-{kind}-{key_id}.der").read_bytes()


def test_written_certificate_and_public_keys_read_back_byte_for_byte(tool: Tool, material: Material) -> None:
    assert read_object(tool, "cert", RSA_ID) == (tool.work / "cert.der").read_bytes()
    assert read_object(tool, "pubkey", RSA_ID) == (tool.work / "rsa-pub.der").read_bytes()
    assert read_object(tool, "pubkey", EC_ID) == (tool.work / "ec-pub.der").read_bytes()
    print("--write-object/--read-object: X.509 certificate, RSA and EC SubjectPublicKeyInfo identical to the "
          "originals")


def test_imported_pkcs8_private_keys_are_private_sensitive_and_sign(tool: Tool, material: Material) -> None:
    listing = tool.interop.parse_objects(tool.ok(tool.login("--list-objects", "--type", "privkey")))
    assert sorted((o["header"], o["ID"]) for o in listing) == [("Private Key Object; EC", EC_ID),
                                                                ("Private Key Object; RSA", RSA_ID)], listing
    for obj in listing:
        access = {word.strip() for word in obj["Access"].split(",")}
        assert "sensitive" in access and "extractable" not in access, obj
    assert tool("--list-objects", "--type", "privkey").stdout == ""  # private: invisible before login
    data = tool.work / "data.bin"
    data.write_bytes(b"signed by imported keys\n" * 10)
    tool.ok(tool.login("--sign", "--id", RSA_ID, "-m", "SHA256-RSA-PKCS", "-i", "data.bin", "-o", "rsa.sig"))
    material.cert.public_key().verify((tool.work / "rsa.sig").read_bytes(), data.read_bytes(),  # type: ignore
                                      padding.PKCS1v15(), hashes.SHA256())
    tool.ok(tool.login("--sign", "--id", EC_ID, "-m", "ECDSA-SHA256", "--signature-format", "openssl", "-i",
                       "data.bin", "-o", "ec.sig"))
    material.ec.public_key().verify((tool.work / "ec.sig").read_bytes(), data.read_bytes(), ec.ECDSA(hashes.SHA256()))
    print("--write-object --type privkey (PKCS#8 DER): RSA and EC keys are private, sensitive, not extractable; "
          "their SHA256-RSA-PKCS and ECDSA-SHA256 signatures verify with pyca against the originals")


def test_wrap_with_aes_key_wrap_and_rsa_pkcs_is_unwrapped_by_pyca(tool: Tool, material: Material) -> None:
    tool.ok(tool.login("--wrap", "-m", "AES-KEY-WRAP", "--id", KEK_ID, "--application-id", DATA_KEY_ID,
                       "-o", "aes-wrapped.bin"))
    wrapped = (tool.work / "aes-wrapped.bin").read_bytes()
    assert wrapped == aes_key_wrap(material.kek, material.data_key)  # RFC 3394 is deterministic
    assert aes_key_unwrap(material.kek, wrapped) == material.data_key
    tool.ok(tool.login("--wrap", "-m", "RSA-PKCS", "--id", RSA_ID, "--application-id", DATA_KEY_ID,
                       "-o", "rsa-wrapped.bin"))
    assert material.rsa.decrypt((tool.work / "rsa-wrapped.bin").read_bytes(), padding.PKCS1v15()) == \
        material.data_key
    print("--wrap: AES-KEY-WRAP output equals pyca's RFC 3394 wrap; RSA-PKCS output decrypts with pyca to the "
          "wrapped AES key")


def pyca_aes(mechanism: str, key: bytes, data: bytes, encrypt: bool) -> bytes:
    """AES-ECB, AES-CBC or AES-CBC-PAD (PKCS#7 padding) with IV, by pyca."""
    mode = modes.ECB() if mechanism == "AES-ECB" else modes.CBC(IV)
    cipher = Cipher(algorithms.AES(key), mode)
    if encrypt:
        if mechanism == "AES-CBC-PAD":
            padder = PKCS7(128).padder()
            data = padder.update(data) + padder.finalize()
        encryptor = cipher.encryptor()
        return encryptor.update(data) + encryptor.finalize()
    decryptor = cipher.decryptor()
    data = decryptor.update(data) + decryptor.finalize()
    if mechanism == "AES-CBC-PAD":
        unpadder = PKCS7(128).unpadder()
        data = unpadder.update(data) + unpadder.finalize()
    return data


@pytest.mark.parametrize("mechanism", ["AES-KEY-WRAP", "RSA-PKCS"])
def test_unwrap_of_a_pyca_wrapped_key_gives_a_working_token_key(tool: Tool, material: Material,
                                                                 mechanism: str) -> None:
    new_key, new_id = os.urandom(32), {"AES-KEY-WRAP": "50", "RSA-PKCS": "51"}[mechanism]
    if mechanism == "AES-KEY-WRAP":
        wrapped, unwrapping_id = aes_key_wrap(material.kek, new_key), KEK_ID
    else:
        wrapped, unwrapping_id = material.rsa.public_key().encrypt(new_key, padding.PKCS1v15()), RSA_ID
    (tool.work / f"to-unwrap-{new_id}.bin").write_bytes(wrapped)
    out = tool.ok(tool.login("--unwrap", "-m", mechanism, "--id", unwrapping_id, "-i", f"to-unwrap-{new_id}.bin",
                             "--key-type", "AES:32", "--application-id", new_id, "--application-label",
                             f"unwrapped-{new_id}"))
    assert "Secret Key Object; AES length 32" in out, out
    plain = b"encrypted in the token with an unwrapped key" * 3
    (tool.work / "plain.bin").write_bytes(plain)
    tool.ok(tool.login("--encrypt", "-m", "AES-CBC-PAD", "--id", new_id, "--iv", IV.hex(), "-i", "plain.bin",
                       "-o", f"ct-{new_id}.bin"))
    assert pyca_aes("AES-CBC-PAD", new_key, (tool.work / f"ct-{new_id}.bin").read_bytes(), False) == plain
    print(f"--unwrap -m {mechanism}: the key pyca wrapped becomes an AES-256 token key whose AES-CBC-PAD "
          "ciphertext pyca decrypts with the original key")


def test_ecdh_derive_matches_pyca(tool: Tool, material: Material) -> None:
    peer = ec.generate_private_key(ec.SECP256R1())
    (tool.work / "peer-pub.der").write_bytes(peer.public_key().public_bytes(DER, SPKI))
    tool.ok(tool.login("--derive", "-m", "ECDH1-DERIVE", "--id", EC_ID, "-i", "peer-pub.der", "-o", "shared.bin"))
    token_public = serialization.load_der_public_key(read_object(tool, "pubkey", EC_ID))
    expected = peer.exchange(ec.ECDH(), token_public)  # type: ignore[arg-type]
    assert (tool.work / "shared.bin").read_bytes() == expected
    print("--derive -m ECDH1-DERIVE: the 32-byte shared secret equals the one pyca computes from the peer's side")


@pytest.mark.parametrize("mechanism", ["AES-ECB", "AES-CBC", "AES-CBC-PAD"])
def test_aes_encrypt_decrypt_agree_with_pyca(tool: Tool, material: Material, mechanism: str) -> None:
    plain = os.urandom(100 if mechanism == "AES-CBC-PAD" else 96)
    (tool.work / "plain.bin").write_bytes(plain)
    iv = () if mechanism == "AES-ECB" else ("--iv", IV.hex())
    tool.ok(tool.login("--encrypt", "-m", mechanism, "--id", DATA_KEY_ID, *iv, "-i", "plain.bin", "-o", "ct.bin"))
    assert pyca_aes(mechanism, material.data_key, (tool.work / "ct.bin").read_bytes(), False) == plain
    (tool.work / "ct-pyca.bin").write_bytes(pyca_aes(mechanism, material.data_key, plain, True))
    tool.ok(tool.login("--decrypt", "-m", mechanism, "--id", DATA_KEY_ID, *iv, "-i", "ct-pyca.bin", "-o", "back.bin"))
    assert (tool.work / "back.bin").read_bytes() == plain
    print(f"--encrypt/--decrypt -m {mechanism}: the token's ciphertext decrypts with pyca, pyca's in the token")


def test_rsa_oaep_decrypt_of_an_openssl_ciphertext(tool: Tool, material: Material) -> None:
    secret = os.urandom(32)
    (tool.work / "secret.bin").write_bytes(secret)
    tool.ok(tool.interop.run(["openssl", "pkeyutl", "-encrypt", "-pubin", "-keyform", "DER", "-inkey",
                              "rsa-pub.der", "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256",
                              "-pkeyopt", "rsa_mgf1_md:sha256", "-in", "secret.bin", "-out", "oaep.bin"],
                             cwd=tool.work))
    tool.ok(tool.login("--decrypt", "-m", "RSA-PKCS-OAEP", "--hash-algorithm", "SHA256", "--mgf", "MGF1-SHA256",
                       "--id", RSA_ID, "-i", "oaep.bin", "-o", "oaep-plain.bin"))
    assert (tool.work / "oaep-plain.bin").read_bytes() == secret
    assert material.rsa.decrypt((tool.work / "oaep.bin").read_bytes(), OAEP_SHA256) == secret  # the input is sound
    print("--decrypt -m RSA-PKCS-OAEP (SHA-256, MGF1-SHA256): openssl's ciphertext decrypts in the token to the "
          "original 32 bytes")
