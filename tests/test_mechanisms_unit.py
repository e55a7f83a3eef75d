"""Direct unit tests of the mechanism classes (no engine, no C ABI).

Known-answer vectors come from FIPS 180 / RFC 4231 / RFC 2202 (digests, HMAC), SP 800-38A (ECB/CBC/CTR),
the GCM specification test cases, RFC 4493 (CMAC), RFC 3394 and RFC 5649 (key wrap). Everything else is
cross-checked against pyca/cryptography or an independent textbook computation.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from cryptography.hazmat.primitives import cmac, hashes, keywrap, serialization
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import pyhsm.mechanisms  # noqa: F401  (registers every family)
from pyhsm import constants as ck
from pyhsm.errors import CKRError
from pyhsm.mechanisms import aes_wrap, libcrypto
from pyhsm.mechanisms.params import (
    CtrParams,
    Ecdh1Params,
    GcmParams,
    OaepParams,
    ParamKind,
    PssParams,
)
from pyhsm.mechanisms.registry import Mechanism, all_mechanisms, lookup
from pyhsm.objects.keys import der_octet_string


class Key:
    """A KeyView over a plain attribute dict, counting how often each cached value is built."""

    def __init__(self, attrs: dict[int, Any]) -> None:
        self.attrs = attrs
        self.cache: dict[str, Any] = {}
        self.builds: dict[str, int] = {}

    def cached(self, name: str, factory: Callable[[], Any]) -> Any:
        if name not in self.cache:
            self.builds[name] = self.builds.get(name, 0) + 1
            self.cache[name] = factory()
        return self.cache[name]


def m(ckm: int) -> Mechanism:
    return lookup(ckm)


def rv_of(fn: Callable[[], Any]) -> int:
    with pytest.raises(CKRError) as info:
        fn()
    return info.value.rv


def rv(fn: Callable[..., Any], *args: Any) -> int:
    """The CKR code fn(*args) fails with (for calls inside loops, where a lambda would capture late)."""
    return rv_of(lambda: fn(*args))


def secret(value: bytes, key_type: int = ck.CKK_AES) -> Key:
    return Key({ck.CKA_CLASS: ck.CKO_SECRET_KEY, ck.CKA_KEY_TYPE: key_type, ck.CKA_VALUE: value})


def _b(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


# ---- registry --------------------------------------------------------------------------------------------------
def test_every_mechanism_declares_info_key_types_and_param_kind() -> None:
    mechs = all_mechanisms()
    assert len(mechs) >= 49
    for ckm, mech in mechs.items():
        assert mech.ckm == ckm
        assert mech.info.flags and mech.info.min_key <= mech.info.max_key
        assert isinstance(mech.key_types, frozenset) and isinstance(mech.param_kind, ParamKind)
        generates = mech.info.flags & (ck.CKF_GENERATE | ck.CKF_GENERATE_KEY_PAIR | ck.CKF_DIGEST)
        assert bool(mech.key_types) != bool(generates), hex(ckm)


def test_ec_mechanisms_advertise_the_ec_capability_flags() -> None:
    for ckm in (ck.CKM_EC_KEY_PAIR_GEN, ck.CKM_ECDSA, ck.CKM_ECDSA_SHA256, ck.CKM_ECDH1_DERIVE):
        flags = m(ckm).info.flags
        assert flags & ck.CKF_EC_F_P and flags & ck.CKF_EC_OID and flags & ck.CKF_EC_UNCOMPRESS
    assert (m(ck.CKM_EC_KEY_PAIR_GEN).info.min_key, m(ck.CKM_EC_KEY_PAIR_GEN).info.max_key) == (256, 521)
    assert (m(ck.CKM_RSA_PKCS_KEY_PAIR_GEN).info.min_key, m(ck.CKM_RSA_PKCS_KEY_PAIR_GEN).info.max_key) == (
        2048, 4096)
    assert (m(ck.CKM_AES_GCM).info.min_key, m(ck.CKM_AES_GCM).info.max_key) == (16, 32)


def test_a_parameter_on_a_mechanism_without_one_is_mechanism_param_invalid() -> None:
    assert rv_of(lambda: m(ck.CKM_SHA256).check_param(b"x")) == ck.CKR_MECHANISM_PARAM_INVALID
    m(ck.CKM_SHA256).check_param(None)


def test_unsupported_functions_are_mechanism_invalid() -> None:
    assert rv_of(lambda: m(ck.CKM_SHA256).sign(secret(bytes(16)), None)) == ck.CKR_MECHANISM_INVALID
    assert rv_of(lambda: m(ck.CKM_AES_ECB).wrap(secret(bytes(16)), None, bytes(16))) == ck.CKR_MECHANISM_INVALID


# ---- digests ---------------------------------------------------------------------------------------------------
FIPS_180_ABC = {
    ck.CKM_SHA_1: "a9993e364706816aba3e25717850c26c9cd0d89d",
    ck.CKM_SHA224: "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7",
    ck.CKM_SHA256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    ck.CKM_SHA384: "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded163"
                   "1a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
    ck.CKM_SHA512: "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                   "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
}


@pytest.mark.parametrize("ckm", sorted(FIPS_180_ABC))
def test_digest_matches_the_fips_180_abc_vector(ckm: int) -> None:
    assert m(ckm).digest(None).oneshot(b"abc").hex() == FIPS_180_ABC[ckm]


@pytest.mark.parametrize("ckm", sorted(FIPS_180_ABC))
def test_digest_multi_part_equals_single_part(ckm: int) -> None:
    op = m(ckm).digest(None)
    for part in (b"a", b"", b"bc"):
        op.update(part)
    assert op.final().hex() == FIPS_180_ABC[ckm]


def test_digest_final_without_update_is_the_digest_of_nothing() -> None:
    assert m(ck.CKM_SHA256).digest(None).final() == hashlib.sha256(b"").digest()


# ---- HMAC and generic secrets ------------------------------------------------------------------------------------
JEFE, WHAT = b"Jefe", b"what do ya want for nothing?"
HMAC_CASE_2 = {  # RFC 2202 (SHA-1) and RFC 4231 (SHA-2) test case 2
    ck.CKM_SHA_1_HMAC: "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
    ck.CKM_SHA224_HMAC: "a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44",
    ck.CKM_SHA256_HMAC: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ck.CKM_SHA384_HMAC: "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47"
                        "e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
    ck.CKM_SHA512_HMAC: "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
                        "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
}


@pytest.mark.parametrize("ckm", sorted(HMAC_CASE_2))
def test_hmac_matches_the_rfc_test_case_2(ckm: int) -> None:
    key = secret(JEFE, ck.CKK_GENERIC_SECRET)
    assert m(ckm).sign(key, None).oneshot(WHAT).hex() == HMAC_CASE_2[ckm]
    m(ckm).verify(key, None).oneshot(WHAT, bytes.fromhex(HMAC_CASE_2[ckm]))


@pytest.mark.parametrize("ckm", sorted(HMAC_CASE_2))
def test_hmac_multi_part_equals_single_part(ckm: int) -> None:
    key = secret(JEFE, ck.CKK_GENERIC_SECRET)
    sign = m(ckm).sign(key, None)
    verify = m(ckm).verify(key, None)
    for op in (sign, verify):
        op.update(WHAT[:10])
        op.update(WHAT[10:])
    assert sign.final().hex() == HMAC_CASE_2[ckm]
    verify.final(bytes.fromhex(HMAC_CASE_2[ckm]))


def test_hmac_accepts_generic_secret_and_the_matching_hmac_key_type() -> None:
    assert m(ck.CKM_SHA256_HMAC).key_types == {ck.CKK_GENERIC_SECRET, ck.CKK_SHA256_HMAC}
    assert m(ck.CKM_SHA_1_HMAC_GENERAL).key_types == {ck.CKK_GENERIC_SECRET, ck.CKK_SHA_1_HMAC}


def test_hmac_wrong_mac_is_signature_invalid() -> None:
    key = secret(JEFE, ck.CKK_GENERIC_SECRET)
    bad = bytearray.fromhex(HMAC_CASE_2[ck.CKM_SHA256_HMAC])
    bad[-1] ^= 1
    assert rv_of(lambda: m(ck.CKM_SHA256_HMAC).verify(key, None).oneshot(WHAT, bytes(bad))) == \
        ck.CKR_SIGNATURE_INVALID


def test_hmac_mac_of_the_wrong_length_is_signature_len_range() -> None:
    key = secret(JEFE, ck.CKK_GENERIC_SECRET)
    mac = bytes.fromhex(HMAC_CASE_2[ck.CKM_SHA256_HMAC])
    assert rv_of(lambda: m(ck.CKM_SHA256_HMAC).verify(key, None).oneshot(WHAT, mac[:16])) == \
        ck.CKR_SIGNATURE_LEN_RANGE


def test_hmac_general_output_is_the_leading_bytes_of_the_full_mac() -> None:
    key = secret(JEFE, ck.CKK_GENERIC_SECRET)
    full = bytes.fromhex(HMAC_CASE_2[ck.CKM_SHA256_HMAC])
    mech = m(ck.CKM_SHA256_HMAC_GENERAL)
    assert mech.sign(key, 12).oneshot(WHAT) == full[:12]
    mech.verify(key, 12).oneshot(WHAT, full[:12])
    assert rv_of(lambda: mech.verify(key, 12).oneshot(WHAT, full)) == ck.CKR_SIGNATURE_LEN_RANGE


@pytest.mark.parametrize("param", [None, 0, 33, b"\x10"])
def test_hmac_general_with_a_bad_length_is_mechanism_param_invalid(param: Any) -> None:
    assert rv_of(lambda: m(ck.CKM_SHA256_HMAC_GENERAL).check_param(param)) == ck.CKR_MECHANISM_PARAM_INVALID


def test_generic_secret_generation_honours_value_len() -> None:
    value = m(ck.CKM_GENERIC_SECRET_KEY_GEN).generate_key({ck.CKA_VALUE_LEN: 48})[ck.CKA_VALUE]
    assert len(value) == 48


def test_generic_secret_generation_without_value_len_is_template_incomplete() -> None:
    assert rv_of(lambda: m(ck.CKM_GENERIC_SECRET_KEY_GEN).generate_key({})) == ck.CKR_TEMPLATE_INCOMPLETE


def test_generic_secret_generation_with_a_zero_length_is_attribute_value_invalid() -> None:
    assert rv_of(lambda: m(ck.CKM_GENERIC_SECRET_KEY_GEN).generate_key({ck.CKA_VALUE_LEN: 0})) == \
        ck.CKR_ATTRIBUTE_VALUE_INVALID


# ---- AES: key generation and the block modes -------------------------------------------------------------------
SP800_38A_KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
SP800_38A_P1 = bytes.fromhex("6bc1bee22e409f96e93d7e117393172a")


@pytest.mark.parametrize("length", [16, 24, 32])
def test_aes_key_generation_makes_keys_of_value_len(length: int) -> None:
    assert len(m(ck.CKM_AES_KEY_GEN).generate_key({ck.CKA_VALUE_LEN: length})[ck.CKA_VALUE]) == length


def test_aes_key_generation_without_value_len_is_template_incomplete() -> None:
    assert rv_of(lambda: m(ck.CKM_AES_KEY_GEN).generate_key({})) == ck.CKR_TEMPLATE_INCOMPLETE


def test_aes_key_generation_with_a_bad_value_len_is_attribute_value_invalid() -> None:
    assert rv_of(lambda: m(ck.CKM_AES_KEY_GEN).generate_key({ck.CKA_VALUE_LEN: 20})) == \
        ck.CKR_ATTRIBUTE_VALUE_INVALID


def test_aes_ecb_matches_sp800_38a_f11() -> None:
    key = secret(SP800_38A_KEY)
    ct = m(ck.CKM_AES_ECB).encrypt(key, None).oneshot(SP800_38A_P1)
    assert ct.hex() == "3ad77bb40d7a3660a89ecaf32466ef97"
    assert m(ck.CKM_AES_ECB).decrypt(key, None).oneshot(ct) == SP800_38A_P1


def test_aes_cbc_matches_sp800_38a_f21() -> None:
    key, iv = secret(SP800_38A_KEY), bytes(range(16))
    ct = m(ck.CKM_AES_CBC).encrypt(key, iv).oneshot(SP800_38A_P1)
    assert ct.hex() == "7649abac8119b246cee98e9b12e9197d"
    assert m(ck.CKM_AES_CBC).decrypt(key, iv).oneshot(ct) == SP800_38A_P1


def test_aes_ctr_matches_sp800_38a_f51() -> None:
    key = secret(SP800_38A_KEY)
    param = CtrParams(128, bytes.fromhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"))
    ct = m(ck.CKM_AES_CTR).encrypt(key, param).oneshot(SP800_38A_P1)
    assert ct.hex() == "874d6191b620e3261bef6864990db6ce"
    assert m(ck.CKM_AES_CTR).decrypt(key, param).oneshot(ct) == SP800_38A_P1


def test_cbc_data_that_is_not_a_block_multiple_is_data_len_range() -> None:
    key = secret(bytes(16))
    assert rv_of(lambda: m(ck.CKM_AES_CBC).encrypt(key, bytes(16)).oneshot(bytes(15))) == ck.CKR_DATA_LEN_RANGE
    op = m(ck.CKM_AES_CBC).encrypt(key, bytes(16))
    assert op.update(bytes(20)) and len(op.update(bytes(20))) == 16
    assert rv_of(op.final) == ck.CKR_DATA_LEN_RANGE


def test_cbc_ciphertext_that_is_not_a_block_multiple_is_encrypted_data_len_range() -> None:
    key = secret(bytes(16))
    assert rv_of(lambda: m(ck.CKM_AES_CBC).decrypt(key, bytes(16)).oneshot(bytes(17))) == \
        ck.CKR_ENCRYPTED_DATA_LEN_RANGE
    assert rv_of(lambda: m(ck.CKM_AES_ECB).decrypt(key, None).oneshot(bytes(8))) == ck.CKR_ENCRYPTED_DATA_LEN_RANGE


@pytest.mark.parametrize("ckm", [ck.CKM_AES_CBC, ck.CKM_AES_CBC_PAD])
@pytest.mark.parametrize("iv", [None, b"", bytes(8), bytes(17)])
def test_an_iv_of_the_wrong_length_is_mechanism_param_invalid(ckm: int, iv: Any) -> None:
    assert rv_of(lambda: m(ckm).check_param(iv)) == ck.CKR_MECHANISM_PARAM_INVALID


def test_block_mode_update_returns_the_whole_blocks_that_are_ready() -> None:
    key, iv = secret(os.urandom(32)), os.urandom(16)
    data = os.urandom(96)
    single = m(ck.CKM_AES_CBC).encrypt(key, iv).oneshot(data)
    op = m(ck.CKM_AES_CBC).encrypt(key, iv)
    outs = [op.update(data[i:i + 7]) for i in range(0, 96, 7)]
    assert all(len(out) % 16 == 0 for out in outs)
    assert b"".join(outs) + op.final() == single


def test_cbc_pad_matches_a_pkcs7_reference_and_round_trips() -> None:
    key, iv = os.urandom(32), os.urandom(16)
    for length in (0, 1, 15, 16, 17, 100):
        data = os.urandom(length)
        ct = m(ck.CKM_AES_CBC_PAD).encrypt(secret(key), iv).oneshot(data)
        padder = sym_padding.PKCS7(128).padder()
        enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        assert ct == enc.update(padder.update(data) + padder.finalize()) + enc.finalize()
        assert m(ck.CKM_AES_CBC_PAD).decrypt(secret(key), iv).oneshot(ct) == data


def test_cbc_pad_multi_part_equals_single_part_and_decrypt_holds_back_the_last_block() -> None:
    key, iv = secret(os.urandom(16)), os.urandom(16)
    data = os.urandom(64)
    ct = m(ck.CKM_AES_CBC_PAD).encrypt(key, iv).oneshot(data)
    enc = m(ck.CKM_AES_CBC_PAD).encrypt(key, iv)
    assert b"".join(enc.update(data[i:i + 5]) for i in range(0, 64, 5)) + enc.final() == ct
    dec = m(ck.CKM_AES_CBC_PAD).decrypt(key, iv)
    out = dec.update(ct)  # 80 bytes of ciphertext: the last block (all padding) is held back
    assert out == data[:64] or out == data[:48]
    assert out + dec.final() == data
    dec = m(ck.CKM_AES_CBC_PAD).decrypt(key, iv)
    assert dec.update(ct[:16]) == b""


def test_block_cipher_contexts_agree_with_pyca_cryptography_public_api() -> None:
    """block.py may build its contexts with pyca/cryptography's Rust constructors; they must match Cipher()."""
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES

    from pyhsm.mechanisms import block

    public_encryptor, public_decryptor = block.public_constructors()
    data = os.urandom(64)
    for algorithm, mode in ((algorithms.AES(os.urandom(32)), modes.CBC(os.urandom(16))),
                            (algorithms.AES(os.urandom(16)), modes.ECB()),
                            (TripleDES(os.urandom(24)), modes.CBC(os.urandom(8)))):
        ct = block.new_encryptor(algorithm, mode).update(data)
        assert ct == public_encryptor(algorithm, mode).update(data)
        assert block.new_decryptor(algorithm, mode).update(ct) == public_decryptor(algorithm, mode).update(ct) == data


@pytest.mark.parametrize("last_block", [b"x" * 15 + b"\x05", b"x" * 15 + b"\x00", b"x" * 15 + b"\x11",
                                        b"x" * 14 + b"\x03\x02", b"\x10" * 15 + b"\x11"])
def test_cbc_pad_with_bad_padding_is_encrypted_data_invalid(last_block: bytes) -> None:
    key, iv = os.urandom(16), os.urandom(16)
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ct = enc.update(b"y" * 16 + last_block) + enc.finalize()
    assert rv_of(lambda: m(ck.CKM_AES_CBC_PAD).decrypt(secret(key), iv).oneshot(ct)) == \
        ck.CKR_ENCRYPTED_DATA_INVALID
    op = m(ck.CKM_AES_CBC_PAD).decrypt(secret(key), iv)
    op.update(ct)
    assert rv_of(op.final) == ck.CKR_ENCRYPTED_DATA_INVALID


@pytest.mark.parametrize("length", [0, 1, 15, 16, 17, 31])
def test_cbc_pad_single_part_and_multi_part_decryption_agree(length: int) -> None:
    key, iv, data = os.urandom(16), os.urandom(16), os.urandom(length)
    ct = m(ck.CKM_AES_CBC_PAD).encrypt(secret(key), iv).oneshot(data)
    assert len(ct) == (length // 16 + 1) * 16
    assert m(ck.CKM_AES_CBC_PAD).decrypt(secret(key), iv).oneshot(ct) == data
    multi = m(ck.CKM_AES_CBC_PAD).decrypt(secret(key), iv)
    assert multi.update(ct) + multi.final() == data


def test_cbc_pad_ciphertext_of_a_bad_length_is_encrypted_data_len_range() -> None:
    key = secret(bytes(16))
    for length in (0, 15, 33):
        assert rv(m(ck.CKM_AES_CBC_PAD).decrypt(key, bytes(16)).oneshot, bytes(length)) == \
            ck.CKR_ENCRYPTED_DATA_LEN_RANGE


def test_cbc_pad_wraps_and_unwraps_keys_of_any_length() -> None:
    kek, iv = secret(os.urandom(32)), os.urandom(16)
    material = os.urandom(1217)
    wrapped = m(ck.CKM_AES_CBC_PAD).wrap(kek, iv, material)
    assert m(ck.CKM_AES_CBC_PAD).unwrap(kek, iv, wrapped) == material
    assert rv_of(lambda: m(ck.CKM_AES_CBC_PAD).unwrap(kek, iv, wrapped[:-1])) == ck.CKR_WRAPPED_KEY_LEN_RANGE


@pytest.mark.parametrize("param", [None, CtrParams(0, bytes(16)), CtrParams(129, bytes(16)), bytes(16)])
def test_ctr_counter_bits_out_of_range_is_mechanism_param_invalid(param: Any) -> None:
    assert rv_of(lambda: m(ck.CKM_AES_CTR).check_param(param)) == ck.CKR_MECHANISM_PARAM_INVALID


def test_ctr_refuses_to_wrap_the_counter() -> None:
    key = secret(os.urandom(16))
    param = CtrParams(8, bytes(15) + b"\xfe")  # two counter values left: 0xfe and 0xff
    assert len(m(ck.CKM_AES_CTR).encrypt(key, param).oneshot(bytes(32))) == 32
    assert rv_of(lambda: m(ck.CKM_AES_CTR).encrypt(key, param).oneshot(bytes(33))) == ck.CKR_DATA_LEN_RANGE
    op = m(ck.CKM_AES_CTR).decrypt(key, param)
    op.update(bytes(20))
    assert rv_of(lambda: op.update(bytes(13))) == ck.CKR_ENCRYPTED_DATA_LEN_RANGE


def test_ctr_multi_part_equals_single_part_and_update_returns_everything() -> None:
    key, param = secret(os.urandom(16)), CtrParams(32, os.urandom(12) + bytes(4))
    data = os.urandom(50)
    op = m(ck.CKM_AES_CTR).encrypt(key, param)
    parts = [op.update(data[:7]), op.update(data[7:])]
    assert len(parts[0]) == 7
    assert b"".join(parts) + op.final() == m(ck.CKM_AES_CTR).encrypt(key, param).oneshot(data)


# ---- AES-GCM ----------------------------------------------------------------------------------------------------
def test_gcm_matches_the_gcm_spec_test_cases_1_and_2() -> None:
    key, param = secret(bytes(16)), GcmParams(bytes(12), 96, b"", 128)
    assert m(ck.CKM_AES_GCM).encrypt(key, param).oneshot(b"").hex() == "58e2fccefa7e3061367f1d57a4e7455a"
    out = m(ck.CKM_AES_GCM).encrypt(key, param).oneshot(bytes(16))
    assert out.hex() == "0388dace60b6a392f328c2b971b2fe78" "ab6e47d42cec13bdf53a67b21257bddf"
    assert m(ck.CKM_AES_GCM).decrypt(key, param).oneshot(out) == bytes(16)


def test_gcm_with_aad_matches_cryptography_and_multi_part_equals_single_part() -> None:
    raw, iv, aad = os.urandom(32), os.urandom(12), b"header"
    param, data = GcmParams(iv, 96, aad, 128), os.urandom(70)
    expected = AESGCM(raw).encrypt(iv, data, aad)
    assert m(ck.CKM_AES_GCM).encrypt(secret(raw), param).oneshot(data) == expected
    op = m(ck.CKM_AES_GCM).encrypt(secret(raw), param)
    assert op.update(data[:33]) + op.update(data[33:]) + op.final() == expected
    dec = m(ck.CKM_AES_GCM).decrypt(secret(raw), param)
    assert dec.update(expected[:40]) == b"" and dec.update(expected[40:]) == b""  # nothing before the tag
    assert dec.final() == data


@pytest.mark.parametrize("tag_bits", [96, 104, 112, 120, 128])
def test_gcm_tags_of_96_to_128_bits_are_truncations_of_the_full_tag(tag_bits: int) -> None:
    raw, iv = os.urandom(16), os.urandom(12)
    param = GcmParams(iv, 96, b"a", tag_bits)
    full = AESGCM(raw).encrypt(iv, b"message", b"a")
    out = m(ck.CKM_AES_GCM).encrypt(secret(raw), param).oneshot(b"message")
    assert out == full[:7 + tag_bits // 8]
    op = m(ck.CKM_AES_GCM).encrypt(secret(raw), param)
    assert op.update(b"message") + op.final() == out
    assert m(ck.CKM_AES_GCM).decrypt(secret(raw), param).oneshot(out) == b"message"


@pytest.mark.parametrize("tag_bits", [96, 128])
def test_gcm_with_a_bad_tag_is_encrypted_data_invalid(tag_bits: int) -> None:
    key, param = secret(os.urandom(16)), GcmParams(os.urandom(12), 96, b"", tag_bits)
    out = bytearray(m(ck.CKM_AES_GCM).encrypt(key, param).oneshot(b"gcm data"))
    out[-1] ^= 1
    assert rv_of(lambda: m(ck.CKM_AES_GCM).decrypt(key, param).oneshot(bytes(out))) == \
        ck.CKR_ENCRYPTED_DATA_INVALID
    assert rv_of(lambda: m(ck.CKM_AES_GCM).decrypt(key, param).oneshot(bytes(5))) == \
        ck.CKR_ENCRYPTED_DATA_LEN_RANGE


@pytest.mark.parametrize("param", [None, b"x" * 12, GcmParams(bytes(12), 96, b"", 100),
                                   GcmParams(bytes(12), 96, b"", 0), GcmParams(bytes(12), 96, b"", 136),
                                   GcmParams(b"", 0, b"", 128), GcmParams(bytes(4), 32, b"", 128)])
def test_gcm_bad_parameters_are_mechanism_param_invalid(param: Any) -> None:
    assert rv_of(lambda: m(ck.CKM_AES_GCM).check_param(param)) == ck.CKR_MECHANISM_PARAM_INVALID


# ---- CMAC -------------------------------------------------------------------------------------------------------
RFC4493_M64 = bytes.fromhex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
                            "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")


@pytest.mark.parametrize("length,mac", [(0, "bb1d6929e95937287fa37d129b756746"),
                                        (16, "070a16b46b4d4144f79bdd9dd04a287c"),
                                        (40, "dfa66747de9ae63030ca32611497c827"),
                                        (64, "51f0bebf7e3b9d92fc49741779363cfe")])
def test_cmac_matches_rfc_4493(length: int, mac: str) -> None:
    key = secret(SP800_38A_KEY)
    assert m(ck.CKM_AES_CMAC).sign(key, None).oneshot(RFC4493_M64[:length]).hex() == mac
    op = m(ck.CKM_AES_CMAC).sign(key, None)
    op.update(RFC4493_M64[:length // 3])
    op.update(RFC4493_M64[length // 3:length])
    assert op.final().hex() == mac
    m(ck.CKM_AES_CMAC).verify(key, None).oneshot(RFC4493_M64[:length], bytes.fromhex(mac))


def test_cmac_verify_rejects_bad_and_short_macs() -> None:
    key = secret(os.urandom(32))
    ref = cmac.CMAC(algorithms.AES(key.attrs[ck.CKA_VALUE]))
    ref.update(b"data")
    mac = ref.finalize()
    m(ck.CKM_AES_CMAC).verify(key, None).oneshot(b"data", mac)
    assert rv_of(lambda: m(ck.CKM_AES_CMAC).verify(key, None).oneshot(b"datA", mac)) == ck.CKR_SIGNATURE_INVALID
    assert rv_of(lambda: m(ck.CKM_AES_CMAC).verify(key, None).oneshot(b"data", mac[:8])) == \
        ck.CKR_SIGNATURE_LEN_RANGE


# ---- AES key wrap -----------------------------------------------------------------------------------------------
RFC3394 = [  # (KEK, key data, wrapped): sections 4.1 and 4.6
    ("000102030405060708090a0b0c0d0e0f", "00112233445566778899aabbccddeeff",
     "1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5"),
    ("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
     "00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f",
     "28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21"),
]
RFC5649_KEK = "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8"
RFC5649 = [("c37b7e6492584340bed12207808941155068f738",
            "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"),
           ("466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f")]


@pytest.mark.parametrize("kek,data,wrapped", RFC3394)
def test_aes_key_wrap_matches_rfc_3394(kek: str, data: str, wrapped: str) -> None:
    key, mech = secret(bytes.fromhex(kek)), m(ck.CKM_AES_KEY_WRAP)
    assert mech.wrap(key, None, bytes.fromhex(data)).hex() == wrapped
    assert mech.encrypt(key, aes_wrap.KW_IV).oneshot(bytes.fromhex(data)).hex() == wrapped
    assert mech.unwrap(key, None, bytes.fromhex(wrapped)).hex() == data
    # the W / W^-1 used for explicit IVs gives the same answer with the default IV
    assert aes_wrap._kw_wrap(bytes.fromhex(kek), aes_wrap.KW_IV, bytes.fromhex(data)).hex() == wrapped
    assert aes_wrap._kw_unwrap(bytes.fromhex(kek), bytes.fromhex(wrapped)) == (aes_wrap.KW_IV, bytes.fromhex(data))


def test_aes_key_wrap_with_an_explicit_iv_round_trips_and_checks_the_iv() -> None:
    key, iv, mech = secret(os.urandom(16)), os.urandom(8), m(ck.CKM_AES_KEY_WRAP)
    wrapped = mech.wrap(key, iv, bytes(24))
    assert wrapped != keywrap.aes_key_wrap(key.attrs[ck.CKA_VALUE], bytes(24))
    assert mech.unwrap(key, iv, wrapped) == bytes(24)
    assert rv_of(lambda: mech.unwrap(key, None, wrapped)) == ck.CKR_WRAPPED_KEY_INVALID


def test_aes_key_wrap_input_of_a_bad_length_is_data_len_range_and_key_size_range_when_wrapping() -> None:
    key, mech = secret(bytes(16)), m(ck.CKM_AES_KEY_WRAP)
    assert rv_of(lambda: mech.encrypt(key, None).oneshot(bytes(20))) == ck.CKR_DATA_LEN_RANGE
    assert rv_of(lambda: mech.encrypt(key, None).oneshot(bytes(8))) == ck.CKR_DATA_LEN_RANGE
    assert rv_of(lambda: mech.wrap(key, None, bytes(20))) == ck.CKR_KEY_SIZE_RANGE


def test_aes_key_wrap_tampered_or_short_input_is_invalid() -> None:
    key, mech = secret(os.urandom(16)), m(ck.CKM_AES_KEY_WRAP)
    wrapped = bytearray(mech.wrap(key, None, os.urandom(32)))
    wrapped[3] ^= 1
    assert rv_of(lambda: mech.decrypt(key, None).oneshot(bytes(wrapped))) == ck.CKR_ENCRYPTED_DATA_INVALID
    assert rv_of(lambda: mech.unwrap(key, None, bytes(wrapped))) == ck.CKR_WRAPPED_KEY_INVALID
    assert rv_of(lambda: mech.unwrap(key, None, bytes(wrapped[:-3]))) == ck.CKR_WRAPPED_KEY_LEN_RANGE
    assert rv_of(lambda: mech.decrypt(key, None).oneshot(bytes(16))) == ck.CKR_ENCRYPTED_DATA_LEN_RANGE


@pytest.mark.parametrize("ckm,size", [(ck.CKM_AES_KEY_WRAP, 8), (ck.CKM_AES_KEY_WRAP_PAD, 8),
                                      (ck.CKM_AES_KEY_WRAP_KWP, 4)])
def test_key_wrap_iv_of_the_wrong_length_is_mechanism_param_invalid(ckm: int, size: int) -> None:
    m(ckm).check_param(None)
    m(ckm).check_param(bytes(size))
    assert rv_of(lambda: m(ckm).check_param(bytes(size + 1))) == ck.CKR_MECHANISM_PARAM_INVALID


@pytest.mark.parametrize("data,wrapped", RFC5649)
def test_aes_key_wrap_kwp_matches_rfc_5649(data: str, wrapped: str) -> None:
    key, mech = secret(bytes.fromhex(RFC5649_KEK)), m(ck.CKM_AES_KEY_WRAP_KWP)
    assert mech.wrap(key, None, bytes.fromhex(data)).hex() == wrapped
    assert mech.unwrap(key, None, bytes.fromhex(wrapped)).hex() == data
    kek = bytes.fromhex(RFC5649_KEK)
    assert aes_wrap._kwp_wrap(kek, aes_wrap.KWP_IV, bytes.fromhex(data)).hex() == wrapped
    assert aes_wrap._kwp_unwrap(kek, aes_wrap.KWP_IV, bytes.fromhex(wrapped)).hex() == data


def test_aes_key_wrap_kwp_with_an_explicit_iv_round_trips_any_length() -> None:
    key, iv, mech = secret(os.urandom(32)), os.urandom(4), m(ck.CKM_AES_KEY_WRAP_KWP)
    for length in (1, 8, 9, 1217):
        data = os.urandom(length)
        wrapped = mech.wrap(key, iv, data)
        assert mech.unwrap(key, iv, wrapped) == data
        assert rv(mech.unwrap, key, None, wrapped) == ck.CKR_WRAPPED_KEY_INVALID
    assert rv_of(lambda: mech.encrypt(key, None).oneshot(b"")) == ck.CKR_DATA_LEN_RANGE


def test_aes_key_wrap_pad_is_pkcs7_padding_then_rfc_3394() -> None:
    raw = os.urandom(16)
    key, mech = secret(raw), m(ck.CKM_AES_KEY_WRAP_PAD)
    for length, pad in ((13, 3), (16, 8), (8, 8)):
        data = os.urandom(length)
        wrapped = mech.wrap(key, None, data)
        assert wrapped == keywrap.aes_key_wrap(raw, data + bytes([pad]) * pad)
        assert mech.unwrap(key, None, wrapped) == data
    assert rv_of(lambda: mech.encrypt(key, None).oneshot(bytes(7))) == ck.CKR_DATA_LEN_RANGE
    bad_padding = keywrap.aes_key_wrap(raw, bytes(16))
    assert rv_of(lambda: mech.decrypt(key, None).oneshot(bad_padding)) == ck.CKR_ENCRYPTED_DATA_INVALID


def test_key_wrap_multi_part_encryption_equals_single_part() -> None:
    key, data = secret(os.urandom(16)), os.urandom(40)
    op = m(ck.CKM_AES_KEY_WRAP).encrypt(key, None)
    assert op.update(data[:11]) == b"" and op.update(data[11:]) == b""
    assert op.final() == keywrap.aes_key_wrap(key.attrs[ck.CKA_VALUE], data)


# ---- RSA --------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


def _rsa_attrs(key: rsa.RSAPrivateKey) -> tuple[Key, Key]:
    n = key.private_numbers()
    pub = {ck.CKA_CLASS: ck.CKO_PUBLIC_KEY, ck.CKA_KEY_TYPE: ck.CKK_RSA, ck.CKA_MODULUS: _b(n.public_numbers.n),
           ck.CKA_PUBLIC_EXPONENT: _b(n.public_numbers.e)}
    priv = pub | {ck.CKA_CLASS: ck.CKO_PRIVATE_KEY} | {
        ck.CKA_PRIVATE_EXPONENT: _b(n.d), ck.CKA_PRIME_1: _b(n.p), ck.CKA_PRIME_2: _b(n.q),
        ck.CKA_EXPONENT_1: _b(n.dmp1), ck.CKA_EXPONENT_2: _b(n.dmq1), ck.CKA_COEFFICIENT: _b(n.iqmp)}
    return Key(pub), Key(priv)


@pytest.fixture
def rsa_pair(rsa_key: rsa.RSAPrivateKey) -> tuple[Key, Key]:
    return _rsa_attrs(rsa_key)


def test_rsa_key_pair_generation_returns_the_documented_attributes() -> None:
    pub, priv = m(ck.CKM_RSA_PKCS_KEY_PAIR_GEN).generate_key_pair({ck.CKA_MODULUS_BITS: 2048}, {})
    assert set(pub) == {ck.CKA_MODULUS, ck.CKA_PUBLIC_EXPONENT, ck.CKA_MODULUS_BITS}
    assert set(priv) == {ck.CKA_MODULUS, ck.CKA_PUBLIC_EXPONENT, ck.CKA_PRIVATE_EXPONENT, ck.CKA_PRIME_1,
                         ck.CKA_PRIME_2, ck.CKA_EXPONENT_1, ck.CKA_EXPONENT_2, ck.CKA_COEFFICIENT}
    assert pub[ck.CKA_MODULUS_BITS] == 2048 and pub[ck.CKA_PUBLIC_EXPONENT] == b"\x01\x00\x01"
    assert all(isinstance(v, bytes) and v[0] != 0 for v in priv.values())
    n, p, q = (int.from_bytes(priv[t], "big") for t in (ck.CKA_MODULUS, ck.CKA_PRIME_1, ck.CKA_PRIME_2))
    assert n == p * q and n.bit_length() == 2048 and pub[ck.CKA_MODULUS] == priv[ck.CKA_MODULUS]
    # the generated key signs and verifies through the mechanisms
    sig = m(ck.CKM_SHA256_RSA_PKCS).sign(Key(priv), None).oneshot(b"m")
    m(ck.CKM_SHA256_RSA_PKCS).verify(Key(pub), None).oneshot(b"m", sig)


def test_rsa_key_pair_generation_takes_the_exponent_from_the_template() -> None:
    pub, _ = m(ck.CKM_RSA_PKCS_KEY_PAIR_GEN).generate_key_pair(
        {ck.CKA_MODULUS_BITS: 2048, ck.CKA_PUBLIC_EXPONENT: b"\x00\x01\x00\x01"}, {})
    assert pub[ck.CKA_PUBLIC_EXPONENT] == b"\x01\x00\x01"
    assert rv_of(lambda: m(ck.CKM_RSA_PKCS_KEY_PAIR_GEN).generate_key_pair(
        {ck.CKA_MODULUS_BITS: 2048, ck.CKA_PUBLIC_EXPONENT: b"\x03"}, {})) == ck.CKR_ATTRIBUTE_VALUE_INVALID


def test_rsa_key_pair_generation_without_modulus_bits_is_template_incomplete() -> None:
    assert rv_of(lambda: m(ck.CKM_RSA_PKCS_KEY_PAIR_GEN).generate_key_pair({}, {})) == ck.CKR_TEMPLATE_INCOMPLETE


@pytest.mark.parametrize("bits", [1024, 2047, 4104, 8192])
def test_rsa_key_pair_generation_of_an_unsupported_size_is_key_size_range(bits: int) -> None:
    assert rv_of(lambda: m(ck.CKM_RSA_PKCS_KEY_PAIR_GEN).generate_key_pair({ck.CKA_MODULUS_BITS: bits}, {})) == \
        ck.CKR_KEY_SIZE_RANGE


def test_rsa_pkcs_signs_arbitrary_input_with_type_1_padding(rsa_key: rsa.RSAPrivateKey,
                                                            rsa_pair: tuple[Key, Key]) -> None:
    pub, priv = rsa_pair
    n, e = rsa_key.public_key().public_numbers().n, 65537
    data = b"not a DigestInfo"
    sig = m(ck.CKM_RSA_PKCS).sign(priv, None).oneshot(data)
    block = pow(int.from_bytes(sig, "big"), e, n).to_bytes(256, "big")
    assert block == b"\x00\x01" + b"\xff" * (256 - 3 - len(data)) + b"\x00" + data
    m(ck.CKM_RSA_PKCS).verify(pub, None).oneshot(data, sig)


def test_rsa_pkcs_signature_over_a_digest_info_verifies_with_cryptography(rsa_key: rsa.RSAPrivateKey,
                                                                          rsa_pair: tuple[Key, Key]) -> None:
    digest_info = bytes.fromhex("3031300d060960864801650304020105000420") + hashlib.sha256(b"m").digest()
    op = m(ck.CKM_RSA_PKCS).sign(rsa_pair[1], None)
    op.update(digest_info[:7])
    op.update(digest_info[7:])
    rsa_key.public_key().verify(op.final(), b"m", padding.PKCS1v15(), hashes.SHA256())


def test_rsa_pkcs_sign_input_longer_than_k_minus_11_is_data_len_range(rsa_pair: tuple[Key, Key]) -> None:
    assert len(m(ck.CKM_RSA_PKCS).sign(rsa_pair[1], None).oneshot(bytes(245))) == 256
    assert rv_of(lambda: m(ck.CKM_RSA_PKCS).sign(rsa_pair[1], None).oneshot(bytes(246))) == ck.CKR_DATA_LEN_RANGE
    op = m(ck.CKM_RSA_PKCS).sign(rsa_pair[1], None)
    op.update(bytes(200))
    assert rv_of(lambda: op.update(bytes(46))) == ck.CKR_DATA_LEN_RANGE


def test_rsa_pkcs_wrong_signature_is_signature_invalid_and_wrong_length_is_signature_len_range(
        rsa_pair: tuple[Key, Key]) -> None:
    pub, priv = rsa_pair
    sig = m(ck.CKM_RSA_PKCS).sign(priv, None).oneshot(b"data")
    assert rv_of(lambda: m(ck.CKM_RSA_PKCS).verify(pub, None).oneshot(b"date", sig)) == ck.CKR_SIGNATURE_INVALID
    assert rv_of(lambda: m(ck.CKM_RSA_PKCS).verify(pub, None).oneshot(b"data", bytes(256))) == \
        ck.CKR_SIGNATURE_INVALID
    assert rv_of(lambda: m(ck.CKM_RSA_PKCS).verify(pub, None).oneshot(b"data", sig[1:])) == \
        ck.CKR_SIGNATURE_LEN_RANGE


def test_rsa_pkcs_encryption_interoperates_with_cryptography(rsa_key: rsa.RSAPrivateKey,
                                                             rsa_pair: tuple[Key, Key]) -> None:
    pub, priv = rsa_pair
    ct = m(ck.CKM_RSA_PKCS).encrypt(pub, None).oneshot(b"hello")
    assert rsa_key.decrypt(ct, padding.PKCS1v15()) == b"hello"
    ct2 = rsa_key.public_key().encrypt(b"world", padding.PKCS1v15())
    assert m(ck.CKM_RSA_PKCS).decrypt(priv, None).oneshot(ct2) == b"world"
    assert rv_of(lambda: m(ck.CKM_RSA_PKCS).encrypt(pub, None).oneshot(bytes(246))) == ck.CKR_DATA_LEN_RANGE


def test_rsa_decrypt_of_a_ciphertext_of_the_wrong_length_is_encrypted_data_len_range(
        rsa_pair: tuple[Key, Key]) -> None:
    for ckm, param in ((ck.CKM_RSA_PKCS, None), (ck.CKM_RSA_X_509, None),
                       (ck.CKM_RSA_PKCS_OAEP, OaepParams(ck.CKM_SHA_1, ck.CKG_MGF1_SHA1, 1, b""))):
        assert rv(m(ckm).decrypt(rsa_pair[1], param).oneshot, bytes(255)) == \
            ck.CKR_ENCRYPTED_DATA_LEN_RANGE


def test_rsa_pkcs_decrypt_of_bad_padding_gives_no_padding_oracle(rsa_pair: tuple[Key, Key]) -> None:
    """Implicit rejection: a bad ciphertext yields a pseudo-random message (or CKR_ENCRYPTED_DATA_INVALID),
    deterministic for the same ciphertext, never an unexpected error."""
    garbage = bytes([0x5A]) * 256
    results = []
    for _ in range(2):
        try:
            results.append(m(ck.CKM_RSA_PKCS).decrypt(rsa_pair[1], None).oneshot(garbage))
        except CKRError as exc:
            assert exc.rv == ck.CKR_ENCRYPTED_DATA_INVALID
            results.append(b"error")
    assert results[0] == results[1]


def test_rsa_pkcs_and_oaep_wrap_and_unwrap_round_trip(rsa_pair: tuple[Key, Key]) -> None:
    pub, priv = rsa_pair
    material = os.urandom(32)
    for ckm, param in ((ck.CKM_RSA_PKCS, None),
                       (ck.CKM_RSA_PKCS_OAEP, OaepParams(ck.CKM_SHA256, ck.CKG_MGF1_SHA256, 1, b""))):
        wrapped = m(ckm).wrap(pub, param, material)
        assert m(ckm).unwrap(priv, param, wrapped) == material
        assert rv(m(ckm).unwrap, priv, param, bytes(10)) == ck.CKR_WRAPPED_KEY_LEN_RANGE
        assert rv(m(ckm).wrap, pub, param, bytes(300)) == ck.CKR_KEY_SIZE_RANGE


def test_rsa_x_509_raw_private_operation_matches_the_textbook_reference(rsa_key: rsa.RSAPrivateKey,
                                                                        rsa_pair: tuple[Key, Key]) -> None:
    pub, priv = rsa_pair
    numbers = rsa_key.private_numbers()
    n, d = numbers.public_numbers.n, numbers.d
    data = b"raw message"  # left-padded with zeros to the modulus length
    sig = m(ck.CKM_RSA_X_509).sign(priv, None).oneshot(data)
    assert sig == pow(int.from_bytes(data, "big"), d, n).to_bytes(256, "big")
    m(ck.CKM_RSA_X_509).verify(pub, None).oneshot(data, sig)
    m(ck.CKM_RSA_X_509).verify(pub, None).oneshot(bytes(245) + data, sig)
    assert rv_of(lambda: m(ck.CKM_RSA_X_509).verify(pub, None).oneshot(b"raw messagf", sig)) == \
        ck.CKR_SIGNATURE_INVALID


def test_rsa_x_509_raw_public_operation_and_decryption_round_trip(rsa_key: rsa.RSAPrivateKey,
                                                                  rsa_pair: tuple[Key, Key]) -> None:
    pub, priv = rsa_pair
    n = rsa_key.public_key().public_numbers().n
    data = os.urandom(100)
    ct = m(ck.CKM_RSA_X_509).encrypt(pub, None).oneshot(data)
    assert ct == pow(int.from_bytes(data, "big"), 65537, n).to_bytes(256, "big")
    assert m(ck.CKM_RSA_X_509).decrypt(priv, None).oneshot(ct) == data.rjust(256, b"\x00")


def test_rsa_x_509_input_longer_than_the_modulus_is_data_len_range(rsa_pair: tuple[Key, Key]) -> None:
    pub, priv = rsa_pair
    assert rv_of(lambda: m(ck.CKM_RSA_X_509).sign(priv, None).oneshot(bytes(257))) == ck.CKR_DATA_LEN_RANGE
    assert rv_of(lambda: m(ck.CKM_RSA_X_509).encrypt(pub, None).oneshot(bytes(257))) == ck.CKR_DATA_LEN_RANGE


def test_rsa_x_509_input_not_below_the_modulus_is_refused(rsa_pair: tuple[Key, Key]) -> None:
    pub, priv = rsa_pair
    assert rv_of(lambda: m(ck.CKM_RSA_X_509).sign(priv, None).oneshot(b"\xff" * 256)) == ck.CKR_DATA_INVALID
    assert rv_of(lambda: m(ck.CKM_RSA_X_509).decrypt(priv, None).oneshot(b"\xff" * 256)) == \
        ck.CKR_ENCRYPTED_DATA_INVALID
    assert rv_of(lambda: m(ck.CKM_RSA_X_509).verify(pub, None).oneshot(b"x", b"\xff" * 256)) == \
        ck.CKR_SIGNATURE_INVALID


def test_rsa_keys_are_parsed_once_per_key_object(rsa_pair: tuple[Key, Key]) -> None:
    _, priv = rsa_pair
    for _ in range(3):
        m(ck.CKM_RSA_X_509).sign(priv, None).oneshot(b"x")
        m(ck.CKM_SHA256_RSA_PKCS).sign(priv, None).oneshot(b"x")
    assert priv.builds["rsa.private"] == priv.builds["rsa.evp_private"] == 1
    assert set(priv.builds.values()) == {1}  # whatever else is derived from the key (signing functions) too


@pytest.mark.parametrize("tampered", [ck.CKA_PRIME_1, ck.CKA_EXPONENT_1, ck.CKA_EXPONENT_2, ck.CKA_COEFFICIENT,
                                      ck.CKA_PRIVATE_EXPONENT])
def test_rsa_private_key_with_values_that_do_not_fit_together_is_refused(rsa_pair: tuple[Key, Key],
                                                                         tampered: int) -> None:
    """Private keys are loaded without pyca's 100 ms primality checks; the relations between the values still hold."""
    _, priv = rsa_pair
    attrs = dict(priv.attrs)
    value = int.from_bytes(attrs[tampered], "big") + 2
    attrs[tampered] = value.to_bytes((value.bit_length() + 7) // 8, "big")
    assert rv_of(lambda: m(ck.CKM_SHA256_RSA_PKCS).sign(Key(attrs), None).oneshot(b"x")) == ck.CKR_FUNCTION_FAILED


def test_raw_rsa_failures_leave_no_openssl_errors_for_the_host(rsa_pair: tuple[Key, Key]) -> None:
    _, priv = rsa_pair
    assert rv_of(lambda: m(ck.CKM_RSA_X_509).sign(priv, None).oneshot(b"\xff" * 256)) == ck.CKR_DATA_INVALID
    assert libcrypto.error_queue_is_empty()


def test_raw_rsa_is_correct_from_many_threads_sharing_one_key(rsa_key: rsa.RSAPrivateKey,
                                                             rsa_pair: tuple[Key, Key]) -> None:
    _, priv = rsa_pair
    numbers = rsa_key.private_numbers()
    inputs = [os.urandom(200) for _ in range(64)]
    with ThreadPoolExecutor(8) as pool:
        outputs = list(pool.map(lambda data: m(ck.CKM_RSA_X_509).sign(priv, None).oneshot(data), inputs))
    for data, sig in zip(inputs, outputs, strict=True):
        assert sig == pow(int.from_bytes(data, "big"), numbers.d, numbers.public_numbers.n).to_bytes(256, "big")


def test_rsa_attributes_with_leading_zero_bytes_are_accepted(rsa_key: rsa.RSAPrivateKey) -> None:
    pub, _ = _rsa_attrs(rsa_key)
    pub.attrs[ck.CKA_PUBLIC_EXPONENT] = b"\x00\x00\x01\x00\x01"
    ct = m(ck.CKM_RSA_PKCS).encrypt(pub, None).oneshot(b"x")
    assert rsa_key.decrypt(ct, padding.PKCS1v15()) == b"x"


PSS_SHA256 = PssParams(ck.CKM_SHA256, ck.CKG_MGF1_SHA256, 32)


def test_rsa_pkcs_pss_signature_over_a_digest_verifies_with_cryptography(rsa_key: rsa.RSAPrivateKey,
                                                                         rsa_pair: tuple[Key, Key]) -> None:
    pub, priv = rsa_pair
    digest = hashlib.sha256(b"pss").digest()
    sig = m(ck.CKM_RSA_PKCS_PSS).sign(priv, PSS_SHA256).oneshot(digest)
    rsa_key.public_key().verify(sig, digest, padding.PSS(padding.MGF1(hashes.SHA256()), 32),
                                Prehashed(hashes.SHA256()))
    m(ck.CKM_RSA_PKCS_PSS).verify(pub, PSS_SHA256).oneshot(digest, sig)
    assert rv_of(lambda: m(ck.CKM_RSA_PKCS_PSS).verify(pub, PSS_SHA256).oneshot(bytes(32), sig)) == \
        ck.CKR_SIGNATURE_INVALID


def test_rsa_pkcs_pss_input_that_is_not_a_digest_of_the_hash_is_data_len_range(rsa_pair: tuple[Key, Key]) -> None:
    assert rv_of(lambda: m(ck.CKM_RSA_PKCS_PSS).sign(rsa_pair[1], PSS_SHA256).oneshot(bytes(20))) == \
        ck.CKR_DATA_LEN_RANGE


@pytest.mark.parametrize("param", [None, b"", PssParams(0x1234, ck.CKG_MGF1_SHA256, 32),
                                   PssParams(ck.CKM_SHA256, 0x99, 32), PssParams(ck.CKM_SHA256, ck.CKG_MGF1_SHA256, -1),
                                   OaepParams(ck.CKM_SHA256, ck.CKG_MGF1_SHA256, 1, b"")])
def test_rsa_pss_bad_parameters_are_mechanism_param_invalid(param: Any) -> None:
    assert rv_of(lambda: m(ck.CKM_RSA_PKCS_PSS).check_param(param)) == ck.CKR_MECHANISM_PARAM_INVALID


def test_rsa_pss_salt_too_long_for_the_key_is_mechanism_param_invalid(rsa_pair: tuple[Key, Key]) -> None:
    param = PssParams(ck.CKM_SHA256, ck.CKG_MGF1_SHA256, 256 - 32 - 1)
    assert rv_of(lambda: m(ck.CKM_RSA_PKCS_PSS).sign(rsa_pair[1], param)) == ck.CKR_MECHANISM_PARAM_INVALID
    ok = PssParams(ck.CKM_SHA256, ck.CKG_MGF1_SHA256, 256 - 32 - 2)
    m(ck.CKM_RSA_PKCS_PSS).sign(rsa_pair[1], ok).oneshot(bytes(32))


def test_hash_rsa_pss_with_a_mismatched_hash_is_mechanism_param_invalid() -> None:
    assert rv_of(lambda: m(ck.CKM_SHA384_RSA_PKCS_PSS).check_param(PSS_SHA256)) == ck.CKR_MECHANISM_PARAM_INVALID
    m(ck.CKM_SHA256_RSA_PKCS_PSS).check_param(PSS_SHA256)


HASH_RSA = [(ck.CKM_SHA1_RSA_PKCS, ck.CKM_SHA_1, hashes.SHA1()),
            (ck.CKM_SHA224_RSA_PKCS, ck.CKM_SHA224, hashes.SHA224()),
            (ck.CKM_SHA256_RSA_PKCS, ck.CKM_SHA256, hashes.SHA256()),
            (ck.CKM_SHA384_RSA_PKCS, ck.CKM_SHA384, hashes.SHA384()),
            (ck.CKM_SHA512_RSA_PKCS, ck.CKM_SHA512, hashes.SHA512())]
HASH_PSS = [(ck.CKM_SHA1_RSA_PKCS_PSS, ck.CKM_SHA_1, ck.CKG_MGF1_SHA1, hashes.SHA1()),
            (ck.CKM_SHA224_RSA_PKCS_PSS, ck.CKM_SHA224, ck.CKG_MGF1_SHA224, hashes.SHA224()),
            (ck.CKM_SHA256_RSA_PKCS_PSS, ck.CKM_SHA256, ck.CKG_MGF1_SHA256, hashes.SHA256()),
            (ck.CKM_SHA384_RSA_PKCS_PSS, ck.CKM_SHA384, ck.CKG_MGF1_SHA384, hashes.SHA384()),
            (ck.CKM_SHA512_RSA_PKCS_PSS, ck.CKM_SHA512, ck.CKG_MGF1_SHA512, hashes.SHA512())]


@pytest.mark.parametrize("ckm,hash_ckm,alg", HASH_RSA)
def test_hash_rsa_pkcs_verifies_with_cryptography_and_multi_part_equals_single_part(
        ckm: int, hash_ckm: int, alg: hashes.HashAlgorithm, rsa_key: rsa.RSAPrivateKey,
        rsa_pair: tuple[Key, Key]) -> None:
    pub, priv = rsa_pair
    single = m(ckm).sign(priv, None).oneshot(b"message")
    rsa_key.public_key().verify(single, b"message", padding.PKCS1v15(), alg)
    op = m(ckm).sign(priv, None)
    op.update(b"mess")
    op.update(b"age")
    assert op.final() == single
    verify = m(ckm).verify(pub, None)
    verify.update(b"message")
    verify.final(single)
    assert rv_of(lambda: m(ckm).verify(pub, None).oneshot(b"massage", single)) == ck.CKR_SIGNATURE_INVALID
    assert rv_of(lambda: m(ckm).verify(pub, None).oneshot(b"message", single + b"\x00")) == \
        ck.CKR_SIGNATURE_LEN_RANGE


@pytest.mark.parametrize("ckm,hash_ckm,mgf,alg", HASH_PSS)
def test_hash_rsa_pss_verifies_with_cryptography_single_and_multi_part(
        ckm: int, hash_ckm: int, mgf: int, alg: hashes.HashAlgorithm, rsa_key: rsa.RSAPrivateKey,
        rsa_pair: tuple[Key, Key]) -> None:
    pub, priv = rsa_pair
    param = PssParams(hash_ckm, mgf, alg.digest_size)
    pss = padding.PSS(padding.MGF1(alg), alg.digest_size)
    single = m(ckm).sign(priv, param).oneshot(b"message")
    rsa_key.public_key().verify(single, b"message", pss, alg)
    op = m(ckm).sign(priv, param)
    op.update(b"mes")
    op.update(b"sage")
    multi = op.final()
    rsa_key.public_key().verify(multi, b"message", pss, alg)
    verify = m(ckm).verify(pub, param)
    verify.update(b"message")
    verify.final(multi)


@pytest.mark.parametrize("hash_ckm,mgf,alg", [(ck.CKM_SHA_1, ck.CKG_MGF1_SHA1, hashes.SHA1()),
                                              (ck.CKM_SHA224, ck.CKG_MGF1_SHA224, hashes.SHA224()),
                                              (ck.CKM_SHA256, ck.CKG_MGF1_SHA256, hashes.SHA256()),
                                              (ck.CKM_SHA384, ck.CKG_MGF1_SHA384, hashes.SHA384()),
                                              (ck.CKM_SHA512, ck.CKG_MGF1_SHA512, hashes.SHA512())])
def test_oaep_interoperates_with_cryptography_with_a_label(hash_ckm: int, mgf: int, alg: hashes.HashAlgorithm,
                                                           rsa_key: rsa.RSAPrivateKey,
                                                           rsa_pair: tuple[Key, Key]) -> None:
    pub, priv = rsa_pair
    param = OaepParams(hash_ckm, mgf, ck.CKZ_DATA_SPECIFIED, b"label")
    ref = padding.OAEP(padding.MGF1(alg), alg, b"label")
    ct = m(ck.CKM_RSA_PKCS_OAEP).encrypt(pub, param).oneshot(b"secret")
    assert rsa_key.decrypt(ct, ref) == b"secret"
    ct2 = rsa_key.public_key().encrypt(b"secret2", ref)
    assert m(ck.CKM_RSA_PKCS_OAEP).decrypt(priv, param).oneshot(ct2) == b"secret2"


def test_oaep_with_different_hash_and_mgf_hash(rsa_key: rsa.RSAPrivateKey, rsa_pair: tuple[Key, Key]) -> None:
    param = OaepParams(ck.CKM_SHA256, ck.CKG_MGF1_SHA1, ck.CKZ_DATA_SPECIFIED, b"")
    ct = m(ck.CKM_RSA_PKCS_OAEP).encrypt(rsa_pair[0], param).oneshot(b"x")
    assert rsa_key.decrypt(ct, padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA256(), None)) == b"x"


def test_oaep_input_too_long_is_data_len_range(rsa_pair: tuple[Key, Key]) -> None:
    param = OaepParams(ck.CKM_SHA256, ck.CKG_MGF1_SHA256, ck.CKZ_DATA_SPECIFIED, b"")
    assert len(m(ck.CKM_RSA_PKCS_OAEP).encrypt(rsa_pair[0], param).oneshot(bytes(256 - 66))) == 256
    assert rv_of(lambda: m(ck.CKM_RSA_PKCS_OAEP).encrypt(rsa_pair[0], param).oneshot(bytes(256 - 65))) == \
        ck.CKR_DATA_LEN_RANGE


def test_oaep_bad_ciphertext_or_wrong_label_is_encrypted_data_invalid(rsa_pair: tuple[Key, Key]) -> None:
    pub, priv = rsa_pair
    param = OaepParams(ck.CKM_SHA256, ck.CKG_MGF1_SHA256, ck.CKZ_DATA_SPECIFIED, b"A")
    ct = m(ck.CKM_RSA_PKCS_OAEP).encrypt(pub, param).oneshot(b"secret")
    other = OaepParams(ck.CKM_SHA256, ck.CKG_MGF1_SHA256, ck.CKZ_DATA_SPECIFIED, b"B")
    assert rv_of(lambda: m(ck.CKM_RSA_PKCS_OAEP).decrypt(priv, other).oneshot(ct)) == ck.CKR_ENCRYPTED_DATA_INVALID
    assert rv_of(lambda: m(ck.CKM_RSA_PKCS_OAEP).decrypt(priv, param).oneshot(bytes(256))) == \
        ck.CKR_ENCRYPTED_DATA_INVALID


@pytest.mark.parametrize("param", [None, PssParams(ck.CKM_SHA256, ck.CKG_MGF1_SHA256, 0),
                                   OaepParams(0x1234, ck.CKG_MGF1_SHA256, 1, b""),
                                   OaepParams(ck.CKM_SHA256, 0x77, 1, b""),
                                   OaepParams(ck.CKM_SHA256, ck.CKG_MGF1_SHA256, 2, b""),
                                   OaepParams(ck.CKM_SHA256, ck.CKG_MGF1_SHA256, 0, b"label")])
def test_oaep_bad_parameters_are_mechanism_param_invalid(param: Any) -> None:
    assert rv_of(lambda: m(ck.CKM_RSA_PKCS_OAEP).check_param(param)) == ck.CKR_MECHANISM_PARAM_INVALID


# ---- EC ---------------------------------------------------------------------------------------------------------
CURVES = {"06082a8648ce3d030107": ec.SECP256R1(), "06052b81040022": ec.SECP384R1(),
          "06052b81040023": ec.SECP521R1(), "06052b8104000a": ec.SECP256K1()}


def _ec_pair(params_hex: str) -> tuple[Key, Key, ec.EllipticCurvePublicKey]:
    params = bytes.fromhex(params_hex)
    pub, priv = m(ck.CKM_EC_KEY_PAIR_GEN).generate_key_pair({ck.CKA_EC_PARAMS: params}, {})
    point = pub[ck.CKA_EC_POINT]
    raw = point[2:] if point[1] < 0x80 else point[3:]
    ref = ec.EllipticCurvePublicKey.from_encoded_point(CURVES[params_hex], raw)
    return Key(pub), Key(priv), ref


def _der_sig(sig: bytes) -> bytes:
    half = len(sig) // 2
    return encode_dss_signature(int.from_bytes(sig[:half], "big"), int.from_bytes(sig[half:], "big"))


@pytest.mark.parametrize("params_hex", sorted(CURVES))
def test_ec_key_pair_generation_returns_the_documented_attributes(params_hex: str) -> None:
    params = bytes.fromhex(params_hex)
    curve = CURVES[params_hex]
    size = (curve.key_size + 7) // 8
    pub, priv = m(ck.CKM_EC_KEY_PAIR_GEN).generate_key_pair({ck.CKA_EC_PARAMS: params}, {})
    assert set(pub) == {ck.CKA_EC_PARAMS, ck.CKA_EC_POINT}
    assert set(priv) == {ck.CKA_EC_PARAMS, ck.CKA_VALUE, ck.CKA_EC_POINT}
    assert pub[ck.CKA_EC_PARAMS] == priv[ck.CKA_EC_PARAMS] == params
    assert pub[ck.CKA_EC_POINT] == priv[ck.CKA_EC_POINT]
    assert len(priv[ck.CKA_VALUE]) == size
    key = ec.derive_private_key(int.from_bytes(priv[ck.CKA_VALUE], "big"), curve)
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    assert pub[ck.CKA_EC_POINT] == der_octet_string(point)


def test_ec_key_pair_generation_for_an_unknown_curve_is_curve_not_supported() -> None:
    secp224r1 = bytes.fromhex("06052b81040021")
    assert rv_of(lambda: m(ck.CKM_EC_KEY_PAIR_GEN).generate_key_pair({ck.CKA_EC_PARAMS: secp224r1}, {})) == \
        ck.CKR_CURVE_NOT_SUPPORTED


@pytest.mark.parametrize("params", ["", "06", "06082a8648ce3d0301", "0400", "ffff"])
def test_ec_key_pair_generation_with_malformed_params_is_domain_params_invalid(params: str) -> None:
    assert rv_of(lambda: m(ck.CKM_EC_KEY_PAIR_GEN).generate_key_pair(
        {ck.CKA_EC_PARAMS: bytes.fromhex(params)}, {})) == ck.CKR_DOMAIN_PARAMS_INVALID


def test_ec_key_pair_generation_without_params_is_template_incomplete() -> None:
    assert rv_of(lambda: m(ck.CKM_EC_KEY_PAIR_GEN).generate_key_pair({}, {})) == ck.CKR_TEMPLATE_INCOMPLETE


HASH_ECDSA = [(ck.CKM_ECDSA_SHA1, hashes.SHA1()), (ck.CKM_ECDSA_SHA224, hashes.SHA224()),
              (ck.CKM_ECDSA_SHA256, hashes.SHA256()), (ck.CKM_ECDSA_SHA384, hashes.SHA384()),
              (ck.CKM_ECDSA_SHA512, hashes.SHA512())]


@pytest.mark.parametrize("params_hex", sorted(CURVES))
@pytest.mark.parametrize("ckm,alg", HASH_ECDSA)
def test_hash_ecdsa_signature_is_raw_r_s_and_verifies_with_cryptography(params_hex: str, ckm: int,
                                                                       alg: hashes.HashAlgorithm) -> None:
    pub, priv, ref = _ec_pair(params_hex)
    size = (CURVES[params_hex].key_size + 7) // 8
    sig = m(ckm).sign(priv, None).oneshot(b"message")
    assert len(sig) == 2 * size
    ref.verify(_der_sig(sig), b"message", ec.ECDSA(alg))
    op = m(ckm).sign(priv, None)
    op.update(b"mess")
    op.update(b"age")
    multi = op.final()
    ref.verify(_der_sig(multi), b"message", ec.ECDSA(alg))
    verify = m(ckm).verify(pub, None)
    verify.update(b"message")
    verify.final(multi)


@pytest.mark.parametrize("params_hex", sorted(CURVES))
def test_raw_ecdsa_signs_digests_of_any_length_with_fips_186_truncation(params_hex: str) -> None:
    pub, priv, ref = _ec_pair(params_hex)
    size = (CURVES[params_hex].key_size + 7) // 8
    for length in (20, 32, 48, 64, size, size + 5):
        digest = os.urandom(length)
        sig = m(ck.CKM_ECDSA).sign(priv, None).oneshot(digest)
        assert len(sig) == 2 * size
        m(ck.CKM_ECDSA).verify(pub, None).oneshot(digest, sig)
        if length in (20, 28, 32, 48, 64):
            alg = {20: hashes.SHA1(), 28: hashes.SHA224(), 32: hashes.SHA256(), 48: hashes.SHA384(),
                   64: hashes.SHA512()}[length]
            ref.verify(_der_sig(sig), digest, ec.ECDSA(Prehashed(alg)))


def test_raw_ecdsa_of_a_long_input_equals_signing_its_leading_order_length_bytes() -> None:
    pub, priv, _ = _ec_pair("06082a8648ce3d030107")
    digest = os.urandom(64)
    sig = m(ck.CKM_ECDSA).sign(priv, None).oneshot(digest)  # SHA-512 digest on P-256: leftmost 256 bits count
    m(ck.CKM_ECDSA).verify(pub, None).oneshot(digest[:32], sig)


def test_raw_ecdsa_of_empty_input_is_data_len_range() -> None:
    _, priv, _ = _ec_pair("06082a8648ce3d030107")
    assert rv_of(lambda: m(ck.CKM_ECDSA).sign(priv, None).oneshot(b"")) == ck.CKR_DATA_LEN_RANGE


def test_ecdsa_verify_of_a_signature_of_the_wrong_length_is_signature_len_range() -> None:
    pub, priv, _ = _ec_pair("06052b81040022")
    sig = m(ck.CKM_ECDSA_SHA384).sign(priv, None).oneshot(b"m")
    assert rv_of(lambda: m(ck.CKM_ECDSA_SHA384).verify(pub, None).oneshot(b"m", sig[:-1])) == \
        ck.CKR_SIGNATURE_LEN_RANGE
    assert rv_of(lambda: m(ck.CKM_ECDSA_SHA384).verify(pub, None).oneshot(b"m", _der_sig(sig))) == \
        ck.CKR_SIGNATURE_LEN_RANGE


def test_ecdsa_wrong_signature_is_signature_invalid() -> None:
    pub, priv, _ = _ec_pair("06082a8648ce3d030107")
    sig = m(ck.CKM_ECDSA_SHA256).sign(priv, None).oneshot(b"m")
    assert rv_of(lambda: m(ck.CKM_ECDSA_SHA256).verify(pub, None).oneshot(b"n", sig)) == ck.CKR_SIGNATURE_INVALID
    assert rv_of(lambda: m(ck.CKM_ECDSA_SHA256).verify(pub, None).oneshot(b"m", bytes(64))) == \
        ck.CKR_SIGNATURE_INVALID


def _peer(curve: ec.EllipticCurve) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    peer = ec.generate_private_key(curve)
    return peer, peer.public_key().public_bytes(serialization.Encoding.X962,
                                                serialization.PublicFormat.UncompressedPoint)


@pytest.mark.parametrize("params_hex", sorted(CURVES))
def test_ecdh1_derive_with_the_null_kdf_is_the_shared_secret(params_hex: str) -> None:
    _, priv, ref = _ec_pair(params_hex)
    peer, point = _peer(CURVES[params_hex])
    expected = peer.exchange(ec.ECDH(), ref)
    for public_data in (point, der_octet_string(point)):
        out = m(ck.CKM_ECDH1_DERIVE).derive(priv, Ecdh1Params(ck.CKD_NULL, b"", public_data), {})
        assert out == {ck.CKA_VALUE: expected}


def test_ecdh1_derive_with_value_len_keeps_the_trailing_bytes() -> None:
    _, priv, ref = _ec_pair("06082a8648ce3d030107")
    peer, point = _peer(ec.SECP256R1())
    expected = peer.exchange(ec.ECDH(), ref)
    out = m(ck.CKM_ECDH1_DERIVE).derive(priv, Ecdh1Params(ck.CKD_NULL, b"", point), {ck.CKA_VALUE_LEN: 16})
    assert out[ck.CKA_VALUE] == expected[-16:]
    assert rv_of(lambda: m(ck.CKM_ECDH1_DERIVE).derive(priv, Ecdh1Params(ck.CKD_NULL, b"", point),
                                                       {ck.CKA_VALUE_LEN: 33})) == ck.CKR_TEMPLATE_INCONSISTENT


@pytest.mark.parametrize("kdf,name", [(ck.CKD_SHA1_KDF, "sha1"), (ck.CKD_SHA224_KDF, "sha224"),
                                      (ck.CKD_SHA256_KDF, "sha256"), (ck.CKD_SHA384_KDF, "sha384"),
                                      (ck.CKD_SHA512_KDF, "sha512")])
def test_ecdh1_derive_with_an_x963_kdf_matches_the_ansi_construction(kdf: int, name: str) -> None:
    _, priv, ref = _ec_pair("06052b81040022")
    peer, point = _peer(ec.SECP384R1())
    z = peer.exchange(ec.ECDH(), ref)
    shared = b"shared info"
    stream = b"".join(hashlib.new(name, z + counter.to_bytes(4, "big") + shared).digest() for counter in range(1, 5))
    out = m(ck.CKM_ECDH1_DERIVE).derive(priv, Ecdh1Params(kdf, shared, point), {ck.CKA_VALUE_LEN: 70})
    assert out[ck.CKA_VALUE] == stream[:70]


@pytest.mark.parametrize("param", [None, b"x", Ecdh1Params(0x99, b"", b"\x04" * 65),
                                   Ecdh1Params(ck.CKD_NULL, b"shared", b"\x04" * 65),
                                   Ecdh1Params(ck.CKD_NULL, b"", b"")])
def test_ecdh1_bad_parameters_are_mechanism_param_invalid(param: Any) -> None:
    assert rv_of(lambda: m(ck.CKM_ECDH1_DERIVE).check_param(param)) == ck.CKR_MECHANISM_PARAM_INVALID


def test_ecdh1_with_a_point_not_on_the_curve_is_mechanism_param_invalid() -> None:
    _, priv, _ = _ec_pair("06082a8648ce3d030107")
    bad = b"\x04" + bytes(31) + b"\x01" + bytes(31) + b"\x02"
    assert rv_of(lambda: m(ck.CKM_ECDH1_DERIVE).derive(priv, Ecdh1Params(ck.CKD_NULL, b"", bad), {})) == \
        ck.CKR_MECHANISM_PARAM_INVALID
