"""Backups under the CloudHSM user model: named users with their passwords, key ownership, sharing and FIPS mode
come back with a restore; replication keeps a key's owner and sharing, needs them on the destination, and is the
owner's to do."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from backup_helpers import DATA, create_backup, ok, refused, restore
from p11_helpers import SO_PIN, STORE_DIR, USER_PIN, init_token, pyhsm_cli
from pkcs11 import KeyType, Mechanism, ObjectClass
from users_helpers import create_users, manage
from users_helpers import ok as all_ok

ALICE, BOB = "alice:alice-password", "bob:bob-password"
IV = bytes(16)


@pytest.fixture
def origin(lib) -> str:  # type: ignore[no-untyped-def]
    """alice owns an AES key shared with bob."""
    label = f"u-{uuid.uuid4().hex[:8]}"
    init_token(label)
    create_users(label, SO_PIN, ("alice", "alice-password"), ("bob", "bob-password"))
    with lib.get_token(token_label=label).open(rw=True, user_pin=ALICE) as s:
        s.generate_key(KeyType.AES, 256, store=True, label="alice-aes")
    all_ok(manage(label, ALICE, ("share_key", {"label": "alice-aes"}, "bob")))
    return label


def _encrypt(lib, token: str, pin: str, label: str) -> bytes:  # type: ignore[no-untyped-def]
    with lib.get_token(token_label=token).open(user_pin=pin) as s:
        key = s.get_key(object_class=ObjectClass.SECRET_KEY, label=label)
        return bytes(key.encrypt(DATA, mechanism=Mechanism.AES_CBC_PAD, mechanism_param=IV))


def _sharing(token: str, pin: str, label: str) -> str:
    return str(all_ok(manage(token, pin, ("key_sharing", {"label": label})))[0]["ok"])


def _audit_events(slot: int) -> list[dict]:  # type: ignore[type-arg]
    path = Path(STORE_DIR) / f"token-{slot}.audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_users_passwords_ownership_and_sharing_come_back(lib, origin, tmp_path) -> None:  # type: ignore[no-untyped-def]
    green = f"g-{uuid.uuid4().hex[:8]}"
    backup = create_backup(origin, tmp_path)
    restored = restore(backup, green)
    events = [e for e in _audit_events(restored["slot"]) if e["event"] == "backup-restore"]
    assert [e["detail"]["file"] for e in events] == [backup.name]  # the new token's own log starts with it
    expected = _encrypt(lib, origin, ALICE, "alice-aes")
    assert _encrypt(lib, green, ALICE, "alice-aes") == expected  # the owner, with her password
    assert _encrypt(lib, green, BOB, "alice-aes") == expected  # the shared user, with his
    assert _sharing(green, ALICE, "alice-aes") == _sharing(origin, ALICE, "alice-aes")
    assert "owner='alice'" in _sharing(green, ALICE, "alice-aes")


def test_replication_needs_the_owner_and_every_shared_user_on_the_destination(lib, origin, tmp_path) -> None:  # type: ignore[no-untyped-def]
    green = f"g-{uuid.uuid4().hex[:8]}"
    restore(create_backup(origin, tmp_path), green)
    create_users(origin, SO_PIN, ("carol", "carol-password"))  # after the backup: green has no carol
    with lib.get_token(token_label=origin).open(rw=True, user_pin=ALICE) as s:
        s.generate_key(KeyType.AES, 256, store=True, label="late")
    all_ok(manage(origin, ALICE, ("share_key", {"label": "late"}, "carol")))
    replicate = ("key", "replicate", "--filter", "attr.label=late", "--source", origin, "--destination", green,
                 "--pin", ALICE)
    assert "carol must exist on the destination" in refused(*replicate)
    create_users(green, SO_PIN, ("carol", "carol-password"))
    assert [k["replicated"] for k in ok(*replicate)["keys"]] == [True]
    assert _sharing(green, ALICE, "late") == _sharing(origin, ALICE, "late")
    assert _encrypt(lib, green, "carol:carol-password", "late") == _encrypt(lib, origin, ALICE, "late")


def test_only_the_owner_replicates_a_key(origin, tmp_path) -> None:  # type: ignore[no-untyped-def]
    green = f"g-{uuid.uuid4().hex[:8]}"
    restore(create_backup(origin, tmp_path), green)
    message = refused("key", "replicate", "--filter", "attr.label=alice-aes", "--source", origin,
                      "--destination", green, "--pin", BOB)
    assert "only the owner (alice) may replicate" in message


def test_fips_mode_travels_and_restore_refuses_the_other_mode(lib, tmp_path) -> None:  # type: ignore[no-untyped-def]
    label = f"f-{uuid.uuid4().hex[:8]}"
    made = pyhsm_cli("token", "init", "--label", label, "--so-pin", SO_PIN, "--pin", USER_PIN, "--fips")
    assert made.returncode == 0, made.stderr
    path = create_backup(label, tmp_path)
    assert [b["fips_mode"] for b in ok("backup", "list", "--dir", str(tmp_path))["backups"]] == [True]
    assert "cannot become a non-FIPS token" in refused("backup", "restore", str(path), "--label", "x-" + label,
                                                         "--so-pin", SO_PIN, "--no-fips")
    copy = f"c-{uuid.uuid4().hex[:8]}"
    assert restore(path, copy, "--fips")["backup"]["fips_mode"] is True
    mechanisms = set(lib.get_token(token_label=copy).slot.get_mechanisms())
    assert mechanisms == set(lib.get_token(token_label=label).slot.get_mechanisms())
    assert Mechanism.DES3_KEY_GEN not in mechanisms  # the restored token enforces FIPS mode
