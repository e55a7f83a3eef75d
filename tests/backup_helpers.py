"""Helpers for the backup tests: the `pyhsm backup ...` and `pyhsm key replicate` commands, their JSON envelopes,
and one key of every type with what each computes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from p11_helpers import SO_PIN, USER_PIN, module_path, pyhsm_cli


def cli_json(*args: str) -> tuple[int, Any]:
    """Run a CLI command; (exit status, the data of the envelope it prints)."""
    result: subprocess.CompletedProcess[str] = pyhsm_cli(*args)
    envelope = json.loads(result.stdout)
    assert "(pages)" not in result.stderr and "(bytes)" not in result.stderr  # progress bars only on a terminal
    assert envelope["error_code"] == (0 if result.returncode == 0 else 1), result
    return result.returncode, envelope["data"]


def ok(*args: str) -> Any:
    status, data = cli_json(*args)
    assert status == 0, data
    return data


def create_backup(label: str, directory: Path, so_pin: str = SO_PIN) -> Path:
    return Path(ok("backup", "create", "--token", label, "--dir", str(directory), "--so-pin", so_pin)["file"])


def restore(path: Path, label: str, *extra: str, so_pin: str = SO_PIN) -> dict[str, Any]:
    result: dict[str, Any] = ok("backup", "restore", str(path), "--label", label, "--so-pin", so_pin, *extra)
    return result


def refused(*args: str) -> str:
    """The message of a command that must fail."""
    status, data = cli_json(*args)
    assert status == 1, data
    return str(data)


# ---- one key of every type, and what each computes ---------------------------------------------------------
DATA = b"pyhsm backup round trip\n" * 8
IV = bytes(range(16))
AES_VALUE = bytes.fromhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")


def _mechanisms(session) -> set:  # type: ignore[no-untyped-def]
    return set(session.token.slot.get_mechanisms())


def make_keys(session, prefix: str = "") -> None:  # type: ignore[no-untyped-def]
    """RSA and EC pairs, generated and imported AES keys and an HMAC key (plus DES3 and Ed25519 keys where the
    build has them), token objects labelled `prefix` + type; the RSA pair's CKA_ID is its label too (pkcs11-tool
    signs by id)."""
    from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
    from pkcs11.util.ec import encode_named_curve_parameters

    session.generate_keypair(KeyType.RSA, 2048, store=True, label=prefix + "rsa", id=(prefix + "rsa").encode())
    params = session.create_domain_parameters(
        KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True)
    params.generate_keypair(store=True, label=prefix + "ec")
    session.generate_key(KeyType.AES, 256, store=True, label=prefix + "aes")
    session.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES,
                           Attribute.TOKEN: True, Attribute.VALUE: AES_VALUE, Attribute.LABEL: prefix + "aes-imported",
                           Attribute.ENCRYPT: True, Attribute.DECRYPT: True})
    session.generate_key(KeyType.GENERIC_SECRET, 256, store=True, label=prefix + "hmac",
                         template={Attribute.SIGN: True, Attribute.VERIFY: True})
    mechanisms = _mechanisms(session)
    if Mechanism.DES3_KEY_GEN in mechanisms:
        session.generate_key(KeyType.DES3, store=True, label=prefix + "des3")
    if Mechanism.EC_EDWARDS_KEY_PAIR_GEN in mechanisms:
        session.generate_keypair(KeyType.EC_EDWARDS, store=True, label=prefix + "ed25519",
                                 public_template={Attribute.EC_PARAMS: b"\x13\x0cedwards25519"},
                                 mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN)


def deterministic_results(session, prefix: str = "") -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    """Outputs that depend only on the key and the input: equal on every token holding the same keys."""
    from pkcs11 import Mechanism, ObjectClass

    def key(label: str, cls: ObjectClass = ObjectClass.SECRET_KEY):  # type: ignore[no-untyped-def]
        return session.get_key(object_class=cls, label=prefix + label)

    results = {
        "rsa-pkcs": key("rsa", ObjectClass.PRIVATE_KEY).sign(DATA, mechanism=Mechanism.SHA256_RSA_PKCS),
        "aes-cbc": key("aes").encrypt(DATA, mechanism=Mechanism.AES_CBC_PAD, mechanism_param=IV),
        "aes-imported": key("aes-imported").encrypt(DATA, mechanism=Mechanism.AES_CBC_PAD, mechanism_param=IV),
        "hmac": key("hmac").sign(DATA, mechanism=Mechanism.SHA256_HMAC),
    }
    mechanisms = _mechanisms(session)
    if Mechanism.DES3_KEY_GEN in mechanisms:
        results["des3"] = key("des3").encrypt(DATA, mechanism=Mechanism.DES3_CBC_PAD, mechanism_param=IV[:8])
    if Mechanism.EC_EDWARDS_KEY_PAIR_GEN in mechanisms:  # Ed25519 signatures are deterministic (RFC 8032)
        results["ed25519"] = key("ed25519", ObjectClass.PRIVATE_KEY).sign(DATA, mechanism=Mechanism.EDDSA)
    return results


def check_same_keys(origin, copy, prefix: str = "") -> None:  # type: ignore[no-untyped-def]
    """`copy` holds `origin`'s keys: equal deterministic outputs, and each decrypts/verifies the other's work."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from pkcs11 import MGF, Mechanism, ObjectClass

    assert deterministic_results(copy, prefix) == deterministic_results(origin, prefix)
    padder = padding.PKCS7(128).padder()
    enc = Cipher(algorithms.AES(AES_VALUE), modes.CBC(IV)).encryptor()
    assert deterministic_results(copy, prefix)["aes-imported"] == enc.update(
        padder.update(DATA) + padder.finalize()) + enc.finalize()

    oaep = {"mechanism": Mechanism.RSA_PKCS_OAEP, "mechanism_param": (Mechanism.SHA256, MGF.SHA256, None)}
    ciphertext = origin.get_key(object_class=ObjectClass.PUBLIC_KEY, label=prefix + "rsa").encrypt(DATA[:64], **oaep)
    assert copy.get_key(object_class=ObjectClass.PRIVATE_KEY, label=prefix + "rsa").decrypt(
        ciphertext, **oaep) == DATA[:64]
    signature = copy.get_key(object_class=ObjectClass.PRIVATE_KEY, label=prefix + "ec").sign(
        DATA, mechanism=Mechanism.ECDSA_SHA256)
    assert origin.get_key(object_class=ObjectClass.PUBLIC_KEY, label=prefix + "ec").verify(
        DATA, signature, mechanism=Mechanism.ECDSA_SHA256)
    ciphertext = copy.get_key(object_class=ObjectClass.SECRET_KEY, label=prefix + "aes").encrypt(
        DATA, mechanism=Mechanism.AES_CBC_PAD, mechanism_param=IV)
    assert origin.get_key(object_class=ObjectClass.SECRET_KEY, label=prefix + "aes").decrypt(
        ciphertext, mechanism=Mechanism.AES_CBC_PAD, mechanism_param=IV) == DATA


def pkcs11_tool_sign(token_label: str, key_label: str, work: Path) -> bytes:
    """OpenSC's pkcs11-tool signs DATA (SHA256-RSA-PKCS) with the key whose CKA_ID is `key_label` (it selects
    signing keys by id, not label)."""
    (work / "data").write_bytes(DATA)
    result = subprocess.run(
        ["pkcs11-tool", "--module", module_path(), "--token-label", token_label, "--login", "--pin", USER_PIN,
         "--sign", "--mechanism", "SHA256-RSA-PKCS", "--id", key_label.encode().hex(),
         "--input-file", str(work / "data"), "--output-file", str(work / "sig")],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return (work / "sig").read_bytes()
