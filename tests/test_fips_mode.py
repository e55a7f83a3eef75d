"""FIPS mode, chosen when a token is initialised: no DES3 generation or encryption, no PKCS#1 v1.5 encryption or
wrapping; decrypting and unwrapping legacy data stays possible; mechanism info says what the token's mode allows."""

from __future__ import annotations

import subprocess
import uuid

import pkcs11
import pytest
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from p11_helpers import SO_PIN, USER_PIN, init_token, module_path, pyhsm_cli
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

from pyhsm import constants as ck
from pyhsm.engine.policy import FIPS_REFUSED, FUNCTION_FLAGS
from pyhsm.mechanisms import registry


@pytest.fixture(scope="module")
def fips_token(lib):  # type: ignore[no-untyped-def]
    label = f"fips-{uuid.uuid4().hex[:8]}"
    result = pyhsm_cli("token", "init", "--label", label, "--so-pin", SO_PIN, "--pin", USER_PIN, "--fips")
    assert result.returncode == 0, result.stderr
    return lib.get_token(token_label=label)


@pytest.fixture(scope="module")
def plain_token(lib):  # type: ignore[no-untyped-def]
    label = f"nofips-{uuid.uuid4().hex[:8]}"
    init_token(label)  # the default mode
    return lib.get_token(token_label=label)


REGISTERED_REFUSALS = [m for m in FIPS_REFUSED if m in registry.all_mechanisms()]


@pytest.mark.parametrize("mechanism", REGISTERED_REFUSALS, ids=hex)
def test_mechanism_info_reports_only_what_the_mode_allows(fips_token, plain_token, mechanism: int) -> None:  # type: ignore[no-untyped-def]
    full = registry.lookup(mechanism).info.flags
    assert int(plain_token.slot.get_mechanism_info(mechanism).flags) & full == full
    allowed = full & ~FIPS_REFUSED[mechanism]
    if allowed & FUNCTION_FLAGS:
        assert mechanism in fips_token.slot.get_mechanisms()
        flags = int(fips_token.slot.get_mechanism_info(mechanism).flags)
        assert flags & FIPS_REFUSED[mechanism] == 0 and flags == allowed
    else:
        assert mechanism not in fips_token.slot.get_mechanisms()


def test_rsa_pkcs_encryption_and_wrapping_are_refused_but_legacy_decryption_works(fips_token) -> None:  # type: ignore[no-untyped-def]
    with fips_token.open(rw=True, user_pin=USER_PIN) as s:
        public, private = s.generate_keypair(KeyType.RSA, 2048, label="fips-rsa")
        with pytest.raises(pkcs11.exceptions.MechanismInvalid):
            public.encrypt(b"legacy", mechanism=Mechanism.RSA_PKCS)
        aes = s.generate_key(KeyType.AES, 128, template={Attribute.EXTRACTABLE: True, Attribute.SENSITIVE: False})
        with pytest.raises(pkcs11.exceptions.MechanismInvalid):
            public.wrap_key(aes, mechanism=Mechanism.RSA_PKCS)
        numbers = rsa.RSAPublicNumbers(int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big"),
                                       int.from_bytes(public[Attribute.MODULUS], "big"))
        legacy = numbers.public_key().encrypt(b"legacy data", padding.PKCS1v15())
        assert private.decrypt(legacy, mechanism=Mechanism.RSA_PKCS) == b"legacy data"
        key_value = bytes(range(16))
        unwrapped = private.unwrap_key(ObjectClass.SECRET_KEY, KeyType.AES,
                                       numbers.public_key().encrypt(key_value, padding.PKCS1v15()),
                                       mechanism=Mechanism.RSA_PKCS,
                                       template={Attribute.EXTRACTABLE: True, Attribute.SENSITIVE: False})
        assert unwrapped[Attribute.VALUE] == key_value
        oaep = public.encrypt(b"approved", mechanism=Mechanism.RSA_PKCS_OAEP)  # FIPS-approved padding works
        assert private.decrypt(oaep, mechanism=Mechanism.RSA_PKCS_OAEP) == b"approved"


def test_the_same_operations_work_on_a_non_fips_token(plain_token) -> None:  # type: ignore[no-untyped-def]
    with plain_token.open(rw=True, user_pin=USER_PIN) as s:
        public, private = s.generate_keypair(KeyType.RSA, 2048)
        assert private.decrypt(public.encrypt(b"m", mechanism=Mechanism.RSA_PKCS), mechanism=Mechanism.RSA_PKCS) == b"m"


@pytest.mark.skipif(ck.CKM_DES3_KEY_GEN not in registry.all_mechanisms(), reason="DES3 is not built yet")
def test_des3_generation_and_encryption_are_refused_but_decryption_works(fips_token) -> None:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    value = bytes.fromhex("0123456789abcdeffedcba987654321089abcdef01234567")
    legacy = Cipher(TripleDES(value), modes.ECB()).encryptor().update(b"8 bytes!")
    with fips_token.open(rw=True, user_pin=USER_PIN) as s:
        with pytest.raises(pkcs11.exceptions.MechanismInvalid):
            s.generate_key(KeyType.DES3)
        des3 = s.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.DES3,
                                Attribute.VALUE: value, Attribute.ENCRYPT: True, Attribute.DECRYPT: True})
        with pytest.raises(pkcs11.exceptions.MechanismInvalid):
            des3.encrypt(b"8 bytes!", mechanism=Mechanism.DES3_ECB)
        assert des3.decrypt(legacy, mechanism=Mechanism.DES3_ECB) == b"8 bytes!"


def test_pkcs11_tool_lists_rsa_pkcs_without_encrypt_and_wrap_in_fips_mode(fips_token) -> None:  # type: ignore[no-untyped-def]
    listed = subprocess.run(["pkcs11-tool", "--module", module_path(), "--token-label", fips_token.label, "-M"],
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    line = next(x for x in listed.stdout.splitlines() if x.strip().startswith("RSA-PKCS,"))
    flags = {f.strip() for f in line.split(",")}
    assert {"decrypt", "sign", "verify", "unwrap"} <= flags and not {"encrypt", "wrap"} & flags, line
