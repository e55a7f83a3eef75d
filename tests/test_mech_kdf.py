"""Key derivation mechanisms (PKCS#11 v3.0 HKDF and SP 800-108 counter mode) through the module, checked against
the RFC 5869 test vectors and pyca/cryptography's HKDF / KBKDF (an independent implementation of SP 800-108).
CKM_HKDF_DATA (which makes a data object) is driven from C in tests/c_host/mechanisms.c."""

from __future__ import annotations

import hmac

import pkcs11
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF as PycaHKDF
from cryptography.hazmat.primitives.kdf.kbkdf import KBKDFCMAC, KBKDFHMAC, CounterLocation, Mode
from mech_params import (
    COUNTER_FORMAT,
    DKM_LENGTH_FORMAT,
    HKDF,
    PRF_DATA_PARAM,
    SP800_108,
    Packed,
    key_type,
    mechanism,
    shared_session,  # noqa: F401  (one token per module)
)
from pkcs11 import Attribute, KeyType, ObjectClass

from pyhsm import constants as ck

HKDF_DERIVE = mechanism(ck.CKM_HKDF_DERIVE, "HKDF_DERIVE")
HKDF_KEY_GEN = mechanism(ck.CKM_HKDF_KEY_GEN, "HKDF_KEY_GEN")
SP800_108_COUNTER = mechanism(ck.CKM_SP800_108_COUNTER_KDF, "SP800_108_COUNTER_KDF")
KEY_HKDF = key_type(ck.CKK_HKDF, "HKDF")
CLEAR = {Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True}
# RFC 5869 appendix A.1 (test case 1, SHA-256).
IKM = bytes([0x0B]) * 22
SALT = bytes(range(13))
INFO = bytes(range(0xF0, 0xFA))
PRK = bytes.fromhex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5")
OKM = bytes.fromhex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")


def _secret(session, value: bytes, kind: KeyType = KeyType.GENERIC_SECRET):  # type: ignore[no-untyped-def]
    return session.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: kind,
                                  Attribute.VALUE: value, Attribute.DERIVE: True})


def hkdf_params(packed: Packed, extract: bool = True, expand: bool = True, prf: int = ck.CKM_SHA256,
                salt_type: int = ck.CKF_HKDF_SALT_DATA, salt: bytes = SALT, salt_key: int = 0,
                info: bytes = INFO) -> bytes:
    return packed.struct(HKDF(extract, expand, prf, salt_type, packed.buf(salt) if salt else None, len(salt),
                              salt_key, packed.buf(info) if info else None, len(info)))


def _derive(base, mech, param: bytes, length: int | None, kind: KeyType = KeyType.GENERIC_SECRET):  # type: ignore
    template = dict(CLEAR)
    if length is None:
        template[Attribute.VALUE_LEN] = pkcs11.DEFAULT
    return base.derive_key(kind, 8 * (length or 0), mechanism=mech, mechanism_param=param, template=template)


# ---- HKDF -------------------------------------------------------------------------------------------------------
def test_rfc5869_extract_and_expand(session) -> None:
    packed = Packed()
    assert _derive(_secret(session, IKM), HKDF_DERIVE, hkdf_params(packed), 42)[Attribute.VALUE] == OKM


def test_rfc5869_extract_only_gives_the_prk(session) -> None:
    packed = Packed()
    base = _secret(session, IKM)
    assert _derive(base, HKDF_DERIVE, hkdf_params(packed, expand=False), 32)[Attribute.VALUE] == PRK
    assert _derive(base, HKDF_DERIVE, hkdf_params(packed, expand=False), None)[Attribute.VALUE] == PRK
    with pytest.raises(pkcs11.exceptions.TemplateInconsistent):
        _derive(base, HKDF_DERIVE, hkdf_params(packed, expand=False), 16)


def test_rfc5869_expand_only_from_the_prk(session) -> None:
    packed = Packed()
    prk = _secret(session, PRK, KEY_HKDF)
    assert _derive(prk, HKDF_DERIVE, hkdf_params(packed, extract=False), 42)[Attribute.VALUE] == OKM


def test_salt_from_a_key_equals_salt_as_data(session) -> None:
    packed = Packed()
    salt_key = _secret(session, SALT)
    param = hkdf_params(packed, salt_type=ck.CKF_HKDF_SALT_KEY, salt=b"", salt_key=salt_key.handle)
    assert _derive(_secret(session, IKM), HKDF_DERIVE, param, 42)[Attribute.VALUE] == OKM


def test_null_salt_and_sha3_match_cryptography(session) -> None:
    packed = Packed()
    param = hkdf_params(packed, prf=ck.CKM_SHA3_256, salt_type=ck.CKF_HKDF_SALT_NULL, salt=b"")
    expected = PycaHKDF(hashes.SHA3_256(), 40, None, INFO).derive(IKM)
    assert _derive(_secret(session, IKM), HKDF_DERIVE, param, 40)[Attribute.VALUE] == expected


def test_derived_aes_key_takes_its_length_from_the_template(session) -> None:
    packed = Packed()
    key = _derive(_secret(session, IKM), HKDF_DERIVE, hkdf_params(packed), 16, KeyType.AES)
    assert key[Attribute.VALUE] == OKM[:16] and key[Attribute.KEY_TYPE] == KeyType.AES


@pytest.mark.parametrize("bad", [dict(extract=False, expand=False), dict(prf=ck.CKM_AES_ECB),
                                 dict(salt_type=ck.CKF_HKDF_SALT_DATA | ck.CKF_HKDF_SALT_NULL),
                                 dict(salt=b"")])
def test_bad_hkdf_params_are_mechanism_param_invalid(session, bad) -> None:
    packed = Packed()
    with pytest.raises(pkcs11.exceptions.MechanismParamInvalid):
        _derive(_secret(session, IKM), HKDF_DERIVE, hkdf_params(packed, **bad), 32)


def test_hkdf_key_gen_makes_an_hkdf_key_usable_for_derivation(session) -> None:
    key = session.generate_key(KEY_HKDF, 256, mechanism=HKDF_KEY_GEN, capabilities=pkcs11.MechanismFlag.DERIVE,
                               template=CLEAR)
    assert key[Attribute.KEY_TYPE] == ck.CKK_HKDF and len(key[Attribute.VALUE]) == 32
    packed = Packed()
    derived = _derive(key, HKDF_DERIVE, hkdf_params(packed), 42)
    assert derived[Attribute.VALUE] == PycaHKDF(hashes.SHA256(), 42, SALT, INFO).derive(key[Attribute.VALUE])


# ---- SP 800-108 counter mode -------------------------------------------------------------------------------------
def sp800_108_params(packed: Packed, prf: int, items: list[tuple[int, object]], additional: int = 0) -> bytes:
    array = (PRF_DATA_PARAM * max(len(items), 1))()
    for i, (kind, value) in enumerate(items):
        if isinstance(value, bytes):
            array[i] = PRF_DATA_PARAM(kind, packed.buf(value), len(value))
        else:
            array[i] = PRF_DATA_PARAM(kind, packed.ptr(value), len(bytes(value)))  # type: ignore[arg-type]
    return packed.struct(SP800_108(prf, len(items), packed.ptr(array) if items else None, additional, None))


def counter(width: int = 32, little: bool = False) -> tuple[int, COUNTER_FORMAT]:
    return ck.CK_SP800_108_ITERATION_VARIABLE, COUNTER_FORMAT(little, width)


def dkm(width: int = 32, method: int = ck.CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS) -> tuple[int, DKM_LENGTH_FORMAT]:
    return ck.CK_SP800_108_DKM_LENGTH, DKM_LENGTH_FORMAT(method, False, width)


def fixed(label: bytes, context: bytes) -> tuple[int, bytes]:
    return ck.CK_SP800_108_BYTE_ARRAY, label + b"\x00" + context


def test_hmac_sha256_counter_mode_matches_cryptography_kbkdf(session) -> None:
    key = bytes(range(32))
    packed = Packed()
    param = sp800_108_params(packed, ck.CKM_SHA256_HMAC, [counter(), fixed(b"label", b"context"), dkm()])
    expected = KBKDFHMAC(hashes.SHA256(), Mode.CounterMode, 42, 4, 4, CounterLocation.BeforeFixed, b"label",
                         b"context", None).derive(key)
    assert _derive(_secret(session, key), SP800_108_COUNTER, param, 42)[Attribute.VALUE] == expected


def test_aes_cmac_counter_mode_matches_cryptography_kbkdf(session) -> None:
    key = bytes(range(16))
    packed = Packed()
    param = sp800_108_params(packed, ck.CKM_AES_CMAC, [counter(8), fixed(b"cmac", b"ctx"), dkm(16)])
    expected = KBKDFCMAC(algorithms.AES, Mode.CounterMode, 40, 1, 2, CounterLocation.BeforeFixed, b"cmac", b"ctx",
                         None).derive(key)
    assert _derive(_secret(session, key, KeyType.AES), SP800_108_COUNTER, param, 40)[Attribute.VALUE] == expected


def test_little_endian_counter_after_the_data_and_segment_length(session) -> None:
    key = bytes(range(20))
    packed = Packed()
    param = sp800_108_params(packed, ck.CKM_SHA_1_HMAC, [(ck.CK_SP800_108_BYTE_ARRAY, b"fixed"),
                                                          counter(16, little=True),
                                                          dkm(8, ck.CK_SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS)])
    # Two SHA-1 blocks for 30 bytes: the DKM length is 2 * 160 bits = 320, mod 2^8 = 64.
    expected = b"".join(hmac.digest(key, b"fixed" + i.to_bytes(2, "little") + bytes([64]), "sha1")
                        for i in (1, 2))[:30]
    assert _derive(_secret(session, key), SP800_108_COUNTER, param, 30)[Attribute.VALUE] == expected


@pytest.mark.parametrize("case", ["no-counter", "two-counters", "odd-width", "optional-counter", "not-a-prf",
                                  "additional-keys"])
def test_bad_sp800_108_params_are_mechanism_param_invalid(session, case) -> None:
    packed = Packed()
    items: list[tuple[int, object]] = {
        "no-counter": [fixed(b"a", b"b")],
        "two-counters": [counter(), counter()],
        "odd-width": [counter(12)],
        "optional-counter": [counter(), (ck.CK_SP800_108_OPTIONAL_COUNTER, COUNTER_FORMAT(False, 8))],
    }.get(case, [counter()])
    prf = ck.CKM_SHA256 if case == "not-a-prf" else ck.CKM_SHA256_HMAC
    param = sp800_108_params(packed, prf, items, additional=1 if case == "additional-keys" else 0)
    with pytest.raises(pkcs11.exceptions.MechanismParamInvalid):
        _derive(_secret(session, bytes(32)), SP800_108_COUNTER, param, 32)


def test_missing_value_len_for_a_generic_secret_is_template_incomplete(session) -> None:
    packed = Packed()
    param = sp800_108_params(packed, ck.CKM_SHA256_HMAC, [counter()])
    with pytest.raises(pkcs11.exceptions.TemplateIncomplete):
        _derive(_secret(session, bytes(32)), SP800_108_COUNTER, param, None)
