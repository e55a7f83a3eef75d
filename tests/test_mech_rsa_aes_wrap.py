"""CKM_RSA_AES_KEY_WRAP (PKCS#11 v3.0 section 2.1.21) through the module, opened and produced by stock OpenSSL.

The RSA key is made outside the token and imported, so `openssl pkeyutl` can decrypt the temporary AES key and
`openssl enc -id-aesN-wrap-pad` (RFC 5649) can unwrap the target with it — an independent implementation of the
whole scheme. The reverse direction builds a wrapped blob with OpenSSL and unwraps it in the token.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pkcs11
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from mech_params import (
    RSA_AES_KEY_WRAP,
    Packed,
    mechanism,
    oaep,
    shared_session,  # noqa: F401  (one token per module)
)
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11.util.rsa import decode_rsa_private_key, decode_rsa_public_key

from pyhsm import constants as ck

TARGET = bytes(range(32))
RSA_AES_KEY_WRAP_MECH = mechanism(ck.CKM_RSA_AES_KEY_WRAP, "RSA_AES_KEY_WRAP")


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


@pytest.fixture
def pair(session, rsa_key):  # type: ignore[no-untyped-def]
    der = rsa_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    priv = session.create_object({**decode_rsa_private_key(der), Attribute.UNWRAP: True})
    pub_der = rsa_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    pub = session.create_object({**decode_rsa_public_key(pub_der), Attribute.WRAP: True})
    return pub, priv


@pytest.fixture
def target(session):  # type: ignore[no-untyped-def]
    return session.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES,
                                  Attribute.VALUE: TARGET, Attribute.EXTRACTABLE: True})


def params(packed: Packed, bits: int = 256, label: bytes = b"", hash_alg: int = ck.CKM_SHA256,
           mgf: int = ck.CKG_MGF1_SHA256) -> bytes:
    return packed.struct(RSA_AES_KEY_WRAP(bits, packed.ptr(oaep(packed, hash_alg, mgf, label))))


def openssl(*args: str, cwd: Path) -> bytes:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def _write_pem(rsa_key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    (tmp_path / "rsa.pem").write_bytes(rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def _openssl_unwrap(tmp_path: Path, wrapped: bytes, bits: int, md: str = "sha256") -> bytes:
    (tmp_path / "ek.bin").write_bytes(wrapped[:256])
    (tmp_path / "kwp.bin").write_bytes(wrapped[256:])
    aes_key = openssl("pkeyutl", "-decrypt", "-inkey", "rsa.pem", "-in", "ek.bin", "-pkeyopt",
                      "rsa_padding_mode:oaep", "-pkeyopt", f"rsa_oaep_md:{md}", "-pkeyopt", f"rsa_mgf1_md:{md}",
                      cwd=tmp_path)
    assert len(aes_key) == bits // 8
    return openssl("enc", "-d", f"-id-aes{bits}-wrap-pad", "-K", aes_key.hex(), "-iv", "A65959A6",
                   "-in", "kwp.bin", cwd=tmp_path)


@pytest.mark.parametrize("bits", [128, 192, 256])
def test_wrapped_secret_key_opens_with_stock_openssl(pair, target, rsa_key, tmp_path, bits) -> None:
    pub, _ = pair
    packed = Packed()
    wrapped = pub.wrap_key(target, mechanism=RSA_AES_KEY_WRAP_MECH, mechanism_param=params(packed, bits))
    assert len(wrapped) == 256 + 40  # RSA-2048 block + KWP of 32 bytes
    _write_pem(rsa_key, tmp_path)
    assert _openssl_unwrap(tmp_path, wrapped, bits) == TARGET


def test_wrapped_private_key_is_pkcs8_that_openssl_parses(session, pair, rsa_key, tmp_path) -> None:
    pub, _ = pair
    other_pub, other_priv = session.generate_keypair(
        KeyType.RSA, 2048, private_template={Attribute.EXTRACTABLE: True})
    packed = Packed()
    wrapped = pub.wrap_key(other_priv, mechanism=RSA_AES_KEY_WRAP_MECH, mechanism_param=params(packed))
    _write_pem(rsa_key, tmp_path)
    (tmp_path / "target.der").write_bytes(_openssl_unwrap(tmp_path, wrapped, 256))
    text = openssl("pkey", "-inform", "DER", "-in", "target.der", "-noout", "-text", cwd=tmp_path).decode()
    assert "Private-Key: (2048 bit" in text
    modulus = serialization.load_der_private_key((tmp_path / "target.der").read_bytes(), None)
    assert modulus.private_numbers().public_numbers.n == int.from_bytes(other_pub[Attribute.MODULUS], "big")


def test_blob_made_by_openssl_unwraps_in_the_token(pair, rsa_key, tmp_path) -> None:
    _, priv = pair
    aes_key, secret = os.urandom(24), os.urandom(20)
    (tmp_path / "secret.bin").write_bytes(secret)
    kwp = openssl("enc", "-e", "-id-aes192-wrap-pad", "-K", aes_key.hex(), "-iv", "A65959A6", "-in", "secret.bin",
                  cwd=tmp_path)
    ek = rsa_key.public_key().encrypt(aes_key, padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), b"lbl"))
    packed = Packed()
    key = priv.unwrap_key(ObjectClass.SECRET_KEY, KeyType.GENERIC_SECRET, ek + kwp,
                          mechanism=RSA_AES_KEY_WRAP_MECH,
                          mechanism_param=params(packed, 192, b"lbl", ck.CKM_SHA_1, ck.CKG_MGF1_SHA1),
                          template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True})
    assert key[Attribute.VALUE] == secret and key[Attribute.VALUE_LEN] == 20


def test_round_trip_inside_the_token(pair, target) -> None:
    pub, priv = pair
    packed = Packed()
    wrapped = pub.wrap_key(target, mechanism=RSA_AES_KEY_WRAP_MECH, mechanism_param=params(packed, 128))
    key = priv.unwrap_key(ObjectClass.SECRET_KEY, KeyType.AES, wrapped, mechanism=RSA_AES_KEY_WRAP_MECH,
                          mechanism_param=params(packed, 128),
                          template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True})
    assert key[Attribute.VALUE] == TARGET


def test_aes_key_bits_other_than_128_192_256_is_mechanism_param_invalid(pair, target) -> None:
    pub, _ = pair
    packed = Packed()
    with pytest.raises(pkcs11.exceptions.MechanismParamInvalid):
        pub.wrap_key(target, mechanism=RSA_AES_KEY_WRAP_MECH, mechanism_param=params(packed, 512))


def test_unknown_oaep_hash_is_mechanism_param_invalid(pair, target) -> None:
    pub, _ = pair
    packed = Packed()
    with pytest.raises(pkcs11.exceptions.MechanismParamInvalid):
        pub.wrap_key(target, mechanism=RSA_AES_KEY_WRAP_MECH,
                     mechanism_param=params(packed, 256, hash_alg=ck.CKM_AES_ECB))


def test_missing_oaep_params_is_mechanism_param_invalid(pair, target) -> None:
    pub, _ = pair
    with pytest.raises(pkcs11.exceptions.MechanismParamInvalid):
        pub.wrap_key(target, mechanism=RSA_AES_KEY_WRAP_MECH,
                     mechanism_param=bytes(RSA_AES_KEY_WRAP(256, None)))


def test_tampered_blob_is_wrapped_key_invalid(pair, target) -> None:
    pub, priv = pair
    packed = Packed()
    wrapped = bytearray(pub.wrap_key(target, mechanism=RSA_AES_KEY_WRAP_MECH,
                                     mechanism_param=params(packed)))
    wrapped[-1] ^= 1
    with pytest.raises(pkcs11.exceptions.WrappedKeyInvalid):
        priv.unwrap_key(ObjectClass.SECRET_KEY, KeyType.AES, bytes(wrapped), mechanism=RSA_AES_KEY_WRAP_MECH,
                        mechanism_param=params(packed))


def test_short_blob_is_wrapped_key_len_range(pair) -> None:
    _, priv = pair
    packed = Packed()
    with pytest.raises(pkcs11.exceptions.WrappedKeyLenRange):
        priv.unwrap_key(ObjectClass.SECRET_KEY, KeyType.AES, bytes(100), mechanism=RSA_AES_KEY_WRAP_MECH,
                        mechanism_param=params(packed))


def test_mechanism_info_is_wrap_and_unwrap(token) -> None:
    info = token.slot.get_mechanism_info(RSA_AES_KEY_WRAP_MECH)
    assert info.flags == pkcs11.MechanismFlag.WRAP | pkcs11.MechanismFlag.UNWRAP
    assert (info.min_key_length, info.max_key_length) == (1024, 16384)
