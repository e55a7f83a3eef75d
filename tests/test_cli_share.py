"""`pyhsm key share|unshare` and key ownership, seen through PKCS#11 from other processes: crypto user bob uses a key
alice shared with him through pkcs11-tool (PIN "bob:password"), and loses it when she unshares it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cli_helpers import LABEL, SO_PIN, Cli, cli_fixture, module_path  # noqa: F401  (fixture)

ADMIN = {"PYHSM_ROLE": "admin", "PYHSM_USERNAME": "admin", "PYHSM_PASSWORD": SO_PIN}
ALICE = {"PYHSM_ROLE": "crypto-user", "PYHSM_USERNAME": "alice", "PYHSM_PASSWORD": "alice-password"}
BOB = {"PYHSM_ROLE": "crypto-user", "PYHSM_USERNAME": "bob", "PYHSM_PASSWORD": "bob-password"}

pytestmark = pytest.mark.skipif(shutil.which("pkcs11-tool") is None, reason="pkcs11-tool (opensc) missing")


@pytest.fixture
def two_users(cli: Cli) -> Cli:
    for user in (ALICE, BOB):
        cli.ok("user", "create", "--username", user["PYHSM_USERNAME"], "--role", "crypto-user",
               PYHSM_NEW_PASSWORD=user["PYHSM_PASSWORD"], **ADMIN)
    cli.ok("key", "generate-asymmetric-pair", "ec", "--curve", "secp256r1", "--public-label", "alice-pub",
           "--private-label", "alice-key", **ALICE)
    return cli


def bob_signs(cli: Cli, tmp: Path) -> subprocess.CompletedProcess[str]:
    (tmp / "data").write_bytes(b"shared signing")
    return subprocess.run(["pkcs11-tool", "--module", module_path(), "--token-label", LABEL, "--login", "--pin",
                           "bob:bob-password", "--sign", "--mechanism", "ECDSA-SHA256", "--label", "alice-key",
                           "-i", str(tmp / "data"), "-o", str(tmp / "sig")],
                          capture_output=True, text=True, env=cli.module_env(), timeout=120)


def test_private_keys_are_invisible_to_other_users_until_shared(two_users: Cli, tmp_path: Path) -> None:
    bobs_view = two_users.ok("key", "list", **BOB)
    assert [k["attributes"]["label"] for k in bobs_view["matched_keys"]] == ["alice-pub"]  # public keys: all
    assert bob_signs(two_users, tmp_path).returncode != 0
    assert two_users.ok("key", "share", "--filter", "attr.label=alice-key", "--username", "bob", **ALICE) == \
        {"message": "Key shared successfully"}
    key = two_users.ok("key", "list", "--filter", "attr.label=alice-key", "--verbose", **BOB)["matched_keys"][0]
    assert key["key-info"]["key-owners"] == [{"username": "alice", "key-coverage": "full"}]
    assert key["key-info"]["shared-users"] == [{"username": "bob", "key-coverage": "full"}]
    signed = bob_signs(two_users, tmp_path)
    assert signed.returncode == 0, signed.stderr
    assert two_users.ok("key", "unshare", "--filter", "attr.label=alice-key", "--username", "bob", **ALICE) == \
        {"message": "Key unshared successfully"}
    assert bob_signs(two_users, tmp_path).returncode != 0


def test_a_shared_user_may_use_but_not_manage_the_key(two_users: Cli) -> None:
    two_users.ok("key", "share", "--filter", "attr.label=alice-key", "--username", "bob", **ALICE)
    for command in (("key", "delete", "--filter", "attr.label=alice-key"),
                    ("key", "set-attribute", "--filter", "attr.label=alice-key", "--name", "label", "--value", "x"),
                    ("key", "unshare", "--filter", "attr.label=alice-key", "--username", "bob")):
        refused = two_users.run(*command, **BOB)
        assert refused.status == 1 and refused.json["data"].startswith("CKR_ACTION_PROHIBITED"), command
    signature = two_users.ok("crypto", "sign", "ecdsa", "--key-filter", "attr.label=alice-key", "--hash-function",
                             "sha256", "--data", "aGVsbG8=", **BOB)["signature"]
    assert two_users.ok("crypto", "verify", "ecdsa", "--key-filter", "attr.label=alice-pub", "--hash-function",
                        "sha256", "--data", "aGVsbG8=", "--signature", signature, **ALICE)


def test_sharing_at_generation(two_users: Cli) -> None:
    key = two_users.ok("key", "generate-symmetric", "aes", "--label", "team", "--key-length-bytes", "32",
                       "--share-crypto-users", "bob", **ALICE)["key"]
    assert key["key-info"]["shared-users"] == [{"username": "bob", "key-coverage": "full"}]
    assert two_users.ok("key", "list", "--filter", "attr.label=team", **BOB)["total_key_count"] == 1


def test_admins_cannot_use_keys_not_even_public_ones(two_users: Cli) -> None:
    signature = two_users.ok("crypto", "sign", "ecdsa", "--key-filter", "attr.label=alice-key", "--hash-function",
                             "sha256", "--data", "aGVsbG8=", **ALICE)["signature"]
    refused = two_users.run("crypto", "verify", "ecdsa", "--key-filter", "attr.label=alice-pub", "--hash-function",
                            "sha256", "--data", "aGVsbG8=", "--signature", signature, **ADMIN)
    assert refused.status == 1 and refused.json["data"].startswith("CKR_KEY_FUNCTION_NOT_PERMITTED")
