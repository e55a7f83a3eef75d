"""Backup and restore round trip: a restored token is a new token of the same lineage whose users log in with
their old PINs and whose keys (every type) compute exactly what the original's do, through python-pkcs11 and
through OpenSC's pkcs11-tool; progress bars go to a terminal only."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import subprocess
import sys
import uuid

import pytest
from backup_helpers import DATA, check_same_keys, create_backup, make_keys, ok, pkcs11_tool_sign, restore
from p11_helpers import SO_PIN, USER_PIN
from pkcs11 import Mechanism, ObjectClass


@pytest.fixture
def backed_up(token, tmp_path):  # type: ignore[no-untyped-def]
    """A token holding one key of every type, and a backup of it."""
    with token.open(rw=True, user_pin=USER_PIN) as s:
        make_keys(s)
    return token, create_backup(token.label, tmp_path)


def test_restore_creates_a_new_token_of_the_same_lineage(lib, backed_up) -> None:
    token, path = backed_up
    label = f"r-{uuid.uuid4().hex[:8]}"
    restored = restore(path, label)
    assert restored["label"] == label
    assert restored["backup"]["source"]["label"] == token.label
    assert restored["serial"] != token.serial.decode().strip()
    assert restored["slot"] != token.slot.slot_id
    new = lib.get_token(token_label=label)
    assert new.serial.decode().strip() == restored["serial"]
    listed = {b["file"]: b for b in ok("backup", "list", "--dir", str(path.parent))["backups"]}
    assert listed[str(path)]["lineage"] == restored["backup"]["lineage"]


def test_restored_keys_of_every_type_compute_what_the_originals_do(lib, backed_up) -> None:
    token, path = backed_up
    label = f"r-{uuid.uuid4().hex[:8]}"
    restore(path, label)
    with token.open(user_pin=USER_PIN) as origin, lib.get_token(token_label=label).open(user_pin=USER_PIN) as copy:
        check_same_keys(origin, copy)
        assert (sorted(o[3] for o in origin.get_objects())  # CKA_LABEL of every object, keys and all
                == sorted(o[3] for o in copy.get_objects()))


def test_restored_token_keeps_the_so_pin(lib, backed_up) -> None:
    _, path = backed_up
    label = f"r-{uuid.uuid4().hex[:8]}"
    restore(path, label)
    with lib.get_token(token_label=label).open(rw=True, so_pin=SO_PIN) as so:
        so.init_pin(USER_PIN + "-new")
    with lib.get_token(token_label=label).open(user_pin=USER_PIN + "-new") as s:
        assert s.get_key(object_class=ObjectClass.SECRET_KEY, label="aes")


def test_pkcs11_tool_signs_with_a_restored_key_like_the_original(lib, backed_up, tmp_path) -> None:
    token, path = backed_up
    label = f"r-{uuid.uuid4().hex[:8]}"
    restore(path, label)
    with token.open(user_pin=USER_PIN) as origin:
        expected = origin.get_key(object_class=ObjectClass.PRIVATE_KEY, label="rsa").sign(
            DATA, mechanism=Mechanism.SHA256_RSA_PKCS)
    assert pkcs11_tool_sign(label, "rsa", tmp_path) == expected


def _with_terminal_stderr(*args: str) -> tuple[dict, bytes]:  # type: ignore[type-arg]
    """Run the CLI with stderr on a pseudo-terminal: (the JSON envelope on stdout, what the terminal got)."""
    primary, secondary = pty.openpty()
    result = subprocess.run([sys.executable, "-P", "-m", "pyhsm.cli.main", *args], stdout=subprocess.PIPE,
                            stderr=secondary, timeout=120, cwd="/")
    os.close(secondary)
    screen = b""
    with contextlib.suppress(OSError):  # reading past the end of a closed pty raises EIO
        while chunk := os.read(primary, 65536):
            screen += chunk
    os.close(primary)
    return json.loads(result.stdout), screen


def test_progress_bars_go_to_a_terminal_and_stdout_stays_json(backed_up) -> None:
    token, path = backed_up
    created, screen = _with_terminal_stderr("backup", "create", "--token", token.label, "--dir", str(path.parent),
                                            "--so-pin", SO_PIN)
    assert created["error_code"] == 0
    assert b"Snapshot (pages)" in screen and b"Encrypt (bytes)" in screen
    restored, screen = _with_terminal_stderr("backup", "restore", created["data"]["file"], "--label",
                                             f"r-{uuid.uuid4().hex[:8]}", "--so-pin", SO_PIN)
    assert restored["error_code"] == 0
    assert b"Verify (bytes)" in screen
