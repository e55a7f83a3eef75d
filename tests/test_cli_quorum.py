"""`pyhsm quorum token-sign ...` and `--approval FILE`: M-of-N approval of user management by admins who sign the
token's payload with the private keys of the quorum keys they registered; tokens are used once and expire."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cli_helpers import SO_PIN, Cli, cli_fixture  # noqa: F401  (fixture)
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

ADMIN = {"PYHSM_ROLE": "admin", "PYHSM_USERNAME": "admin", "PYHSM_PASSWORD": SO_PIN}
ADMIN2 = {"PYHSM_ROLE": "admin", "PYHSM_USERNAME": "admin2", "PYHSM_PASSWORD": "admin2-password"}


@pytest.fixture
def quorum_of_two(cli: Cli, tmp_path: Path) -> dict[str, ec.EllipticCurvePrivateKey]:
    """Two admins with registered quorum keys, and user management needing both of them."""
    cli.ok("user", "create", "--username", "admin2", "--role", "admin", PYHSM_NEW_PASSWORD="admin2-password",
           **ADMIN)
    keys = {}
    for who in (ADMIN, ADMIN2):
        name = who["PYHSM_USERNAME"]
        keys[name] = ec.generate_private_key(ec.SECP256R1())
        pem = tmp_path / f"{name}.pem"
        pem.write_bytes(keys[name].public_key().public_bytes(serialization.Encoding.PEM,
                                                             serialization.PublicFormat.SubjectPublicKeyInfo))
        cli.ok("user", "change-quorum", "token-sign", "register", "--public-key", str(pem), **who)
    assert cli.ok("quorum", "token-sign", "set-quorum-value", "--service", "user", "--value", "2", **ADMIN) == \
        {"message": "Set quorum value successfully"}
    return keys


def approved_token(cli: Cli, keys: dict[str, ec.EllipticCurvePrivateKey], path: Path) -> Path:
    assert cli.ok("quorum", "token-sign", "generate", "--service", "user", "--token", str(path), **ADMIN) == \
        {"filepath": str(path)}
    document = json.loads(path.read_text())
    payload = base64.b64decode(document["unsigned"])
    document["signatures"] = [{"username": name, "signature": base64.b64encode(
        key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()} for name, key in keys.items()]
    path.write_text(json.dumps(document))
    return path


def test_quorum_values_and_user_list_show_the_setup(cli: Cli, quorum_of_two: dict) -> None:  # type: ignore[type-arg]
    assert cli.ok("quorum", "token-sign", "list-quorum-values", **ADMIN) == {"user": 2, "quorum": 1}
    users = {u["username"]: u for u in cli.ok("user", "list", **ADMIN)["users"]}
    assert users["admin2"]["quorum"] == [{"strategy": "token-sign", "status": "enabled"}]


def test_user_management_needs_the_approved_token_once(cli: Cli, quorum_of_two: dict,  # type: ignore[type-arg]
                                                        tmp_path: Path) -> None:
    new = {"PYHSM_NEW_PASSWORD": "eve-password"}
    refused = cli.run("user", "create", "--username", "eve", "--role", "crypto-user", **new, **ADMIN)
    assert refused.status == 1 and refused.json["data"].startswith("CKR_ACTION_PROHIBITED")
    token = approved_token(cli, quorum_of_two, tmp_path / "token.json")
    listed = cli.ok("quorum", "token-sign", "list", **ADMIN)["tokens"]
    assert [(t["service"], t["username"], t["approvals"]) for t in listed] == [("user", "admin", 0)]
    assert cli.ok("user", "create", "--username", "eve", "--role", "crypto-user", "--approval", str(token),
                  **new, **ADMIN) == {"username": "eve", "role": "crypto-user"}
    reused = cli.run("user", "create", "--username", "eve2", "--role", "crypto-user", "--approval", str(token),
                     **new, **ADMIN)
    assert reused.status == 1  # used once


def test_one_signature_is_not_a_quorum_of_two(cli: Cli, quorum_of_two: dict,  # type: ignore[type-arg]
                                              tmp_path: Path) -> None:
    token = approved_token(cli, {"admin": quorum_of_two["admin"]}, tmp_path / "token.json")
    refused = cli.run("user", "create", "--username", "eve", "--role", "crypto-user", "--approval", str(token),
                      PYHSM_NEW_PASSWORD="eve-password", **ADMIN)
    assert refused.status == 1 and refused.json["data"].startswith("CKR_ACTION_PROHIBITED")


def test_an_approved_token_expires_after_ten_minutes(cli: Cli, quorum_of_two: dict,  # type: ignore[type-arg]
                                                     tmp_path: Path) -> None:
    token = approved_token(cli, quorum_of_two, tmp_path / "token.json")
    late = cli.run("user", "create", "--username", "eve", "--role", "crypto-user", "--approval", str(token),
                   PYHSM_NEW_PASSWORD="eve-password", PYHSM_CLOCK_SKIP_SECONDS="601", **ADMIN)
    assert late.status == 1 and late.json["error_code"] == 1


def test_a_malformed_approval_file_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    result = cli.run("user", "create", "--username", "eve", "--role", "crypto-user", "--approval", str(bad),
                     PYHSM_NEW_PASSWORD="eve-password", **ADMIN)
    assert result.status == 2 and "not a quorum token file" in result.json["data"]


def test_key_usage_quorum_set_at_generation_needs_owner_and_shared_user(cli: Cli, tmp_path: Path) -> None:
    users = {"alice": "alice-password", "bob": "bob-password12"}
    keys = {}
    for name, password in users.items():
        cli.ok("user", "create", "--username", name, "--role", "crypto-user", PYHSM_NEW_PASSWORD=password, **ADMIN)
        keys[name] = ec.generate_private_key(ec.SECP256R1())
        pem = tmp_path / f"{name}.pem"
        pem.write_bytes(keys[name].public_key().public_bytes(serialization.Encoding.PEM,
                                                             serialization.PublicFormat.SubjectPublicKeyInfo))
        cli.ok("user", "change-quorum", "token-sign", "register", "--public-key", str(pem), PYHSM_USERNAME=name,
               PYHSM_PASSWORD=password)
    alice = {"PYHSM_USERNAME": "alice", "PYHSM_PASSWORD": users["alice"]}
    key = cli.ok("key", "generate-symmetric", "generic-secret", "--label", "mac", "--key-length-bytes", "32",
                 "--share-crypto-users", "bob", "--use-key-quorum-value", "2", **alice)["key"]
    assert key["key-info"]["key-quorum-values"] == {"manage-key-quorum-value": 0, "use-key-quorum-value": 2}
    sign = ("crypto", "sign", "hmac", "--key-filter", "attr.label=mac", "--hash-function", "sha256", "--data",
            "aGVsbG8=")
    refused = cli.run(*sign, **alice)
    assert refused.status == 1 and refused.json["data"].startswith("CKR_KEY_FUNCTION_NOT_PERMITTED")
    path = tmp_path / "usage.json"
    assert cli.ok("quorum", "token-sign", "generate", "--service", "key-usage", "--key-filter", "attr.label=mac",
                  "--token", str(path), **alice) == {"filepath": str(path)}
    document = json.loads(path.read_text())
    payload = base64.b64decode(document["unsigned"])
    document["signatures"] = [{"username": name, "signature": base64.b64encode(
        key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()} for name, key in keys.items()]
    path.write_text(json.dumps(document))
    assert len(base64.b64decode(cli.ok(*sign, "--approval", str(path), **alice)["signature"])) == 32
