"""Secrets at rest: no byte the token store writes holds a sensitive key value, files are owner-only, and the PIN
KDF is scrypt with the documented parameters (pyhsm/store/sealing.py).

Keys of every sensitive kind (AES, HMAC, RSA private exponent and primes, EC private scalar) are imported with
known values and generated as extractable so their values can be read back, then changed, copied and backed up;
every file under the token store (databases, WAL and shared-memory files, backups, anything else written there)
is scanned for each value, raw and in hex.
"""

from __future__ import annotations

import sqlite3
import stat
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from p11_helpers import SO_PIN, STORE_DIR, USER_PIN, pyhsm_cli
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

P256 = encode_named_curve_parameters("secp256r1")
EXPORTABLE = {Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True, Attribute.TOKEN: True}
RSA_SECRETS = (Attribute.PRIVATE_EXPONENT, Attribute.PRIME_1, Attribute.PRIME_2, Attribute.EXPONENT_1,
               Attribute.EXPONENT_2, Attribute.COEFFICIENT)


public_modulus: list[bytes] = []  # a public value: stored in clear, so the scan must find it (it reads the right files)


def _int(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def imported_secrets(session) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    aes, mac = bytes.fromhex("5c" * 16 + "a3" * 16), bytes.fromhex("17e9" * 16)
    session.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES,
                           Attribute.VALUE: aes, Attribute.TOKEN: True, Attribute.LABEL: "imported-aes"})
    session.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.GENERIC_SECRET,
                           Attribute.VALUE: mac, Attribute.TOKEN: True, Attribute.LABEL: "imported-hmac"})
    numbers = rsa.generate_private_key(65537, 2048).private_numbers()
    rsa_values = {Attribute.PRIVATE_EXPONENT: numbers.d, Attribute.PRIME_1: numbers.p, Attribute.PRIME_2: numbers.q,
                  Attribute.EXPONENT_1: numbers.dmp1, Attribute.EXPONENT_2: numbers.dmq1,
                  Attribute.COEFFICIENT: numbers.iqmp}
    session.create_object({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.KEY_TYPE: KeyType.RSA,
                           Attribute.TOKEN: True, Attribute.LABEL: "imported-rsa",
                           Attribute.MODULUS: _int(numbers.public_numbers.n),
                           Attribute.PUBLIC_EXPONENT: _int(numbers.public_numbers.e),
                           **{a: _int(v) for a, v in rsa_values.items()}})
    scalar = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value.to_bytes(32, "big")
    session.create_object({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.KEY_TYPE: KeyType.EC,
                           Attribute.TOKEN: True, Attribute.LABEL: "imported-ec", Attribute.EC_PARAMS: P256,
                           Attribute.VALUE: scalar})
    public_modulus.append(_int(numbers.public_numbers.n))
    return {"imported AES": aes, "imported HMAC": mac, "imported EC scalar": scalar,
            **{f"imported RSA {a.name}": _int(v) for a, v in rsa_values.items()}}


def generated_secrets(session) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    aes = session.generate_key(KeyType.AES, 256, label="generated-aes", template=EXPORTABLE)
    mac = session.generate_key(KeyType.GENERIC_SECRET, 256, label="generated-hmac", template=EXPORTABLE)
    _, rsa_key = session.generate_keypair(KeyType.RSA, 2048, label="generated-rsa", store=True,
                                          private_template=EXPORTABLE)
    params = session.create_domain_parameters(KeyType.EC, {Attribute.EC_PARAMS: P256}, local=True)
    _, ec_key = params.generate_keypair(label="generated-ec", store=True, private_template=EXPORTABLE)
    return {"generated AES": aes[Attribute.VALUE], "generated HMAC": mac[Attribute.VALUE],
            "generated EC scalar": ec_key[Attribute.VALUE],
            **{f"generated RSA {a.name}": rsa_key[a] for a in RSA_SECRETS}}


def rewrite_everything(session) -> None:  # type: ignore[no-untyped-def]
    """Updates, copies and destroys rewrite rows, WAL frames and free pages: they must stay sealed too."""
    for key in session.get_objects({Attribute.TOKEN: True}):
        if key[Attribute.CLASS] in (ObjectClass.SECRET_KEY, ObjectClass.PRIVATE_KEY):
            key[Attribute.LABEL] = key[Attribute.LABEL] + "-renamed"
            key.copy({Attribute.LABEL: "copy"}).destroy()


def store_files() -> list[Path]:
    return [p for p in Path(STORE_DIR).rglob("*") if p.is_file()]


@pytest.fixture(scope="module")
def secrets(lib) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    label = "secrets-at-rest"
    result = pyhsm_cli("token", "init", "--label", label, "--so-pin", SO_PIN, "--pin", USER_PIN)
    assert result.returncode == 0, result.stderr
    token = lib.get_token(token_label=label)
    with token.open(rw=True, user_pin=USER_PIN) as session:
        values = imported_secrets(session) | generated_secrets(session)
        rewrite_everything(session)
    backup = pyhsm_cli("backup", "create", "--token", label, "--so-pin", SO_PIN)
    assert backup.returncode == 0, backup.stderr
    assert any(p.parent.name == "backups" for p in store_files()), "the backup was not written in the store"
    assert len(values) == 18 and all(len(v) >= 16 for v in values.values())
    return values


def test_no_store_file_holds_a_sensitive_value_raw_or_in_hex(secrets: dict[str, bytes]) -> None:
    files = store_files()
    assert any(p.name.endswith("-wal") for p in files)
    assert any(public_modulus[0] in p.read_bytes() for p in files), "the scan does not see what the store writes"
    for path in files:
        content = path.read_bytes()
        for name, value in secrets.items():
            for form in (value, value.hex().encode(), value.hex().upper().encode()):
                assert form not in content, f"{name} in {path}"


def test_store_files_are_0600_and_directories_0700(secrets: dict[str, bytes]) -> None:
    for path in [Path(STORE_DIR), *Path(STORE_DIR).rglob("*")]:
        want = 0o700 if path.is_dir() else 0o600
        assert stat.S_IMODE(path.stat().st_mode) == want, path


def test_each_pin_wraps_the_token_key_under_scrypt_with_the_documented_parameters(secrets: dict[str, bytes]) -> None:
    from pyhsm.engine.accounts import users_in
    from pyhsm.store.sealing import SCRYPT_LOG2_N, SCRYPT_P, SCRYPT_R

    assert (SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P) == (15, 8, 1)  # README and sealing.py state these
    wrapped = []
    for path in [p for p in store_files() if p.suffix == ".sqlite3"]:
        with sqlite3.connect(path) as db:
            meta = {str(k): bytes(v) for k, v in db.execute("SELECT key, value FROM meta")}
        wrapped += [user.wrapped_key for user in users_in(meta).values()]  # every credential: SO, user, named users
    assert wrapped
    for blob in wrapped:
        assert blob[:3] == b"PW1"
        assert struct.unpack("<BBB", blob[3:6]) == (SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P)
        assert SO_PIN.encode() not in blob and USER_PIN.encode() not in blob


def test_the_token_key_buffer_is_overwritten_when_cleared() -> None:
    from pyhsm.store.sealing import TokenKey

    key = TokenKey.generate()
    buffer = key._key  # the one mutable copy of the key Python holds
    assert any(buffer)
    key.clear()
    assert buffer == bytearray(32)
