"""Token storage seen from outside: file modes, no plaintext secrets on disk, several processes on one token,
and committed objects surviving kill -9 of the process that created them."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

from p11_helpers import STORE_DIR, USER_PIN, module_path
from pkcs11 import Attribute, KeyType, ObjectClass

SECRET = bytes.fromhex("8f3a5c7e11d2b4a6c8e0f1a3b5c7d9e2") * 2


def _token_files(token) -> list[Path]:  # type: ignore[no-untyped-def]
    base = Path(STORE_DIR) / f"token-{token.slot.slot_id}.sqlite3"
    return [p for p in (base, Path(f"{base}-wal"), Path(f"{base}-shm")) if p.exists()]


def test_token_files_are_owner_only(session, token) -> None:
    session.create_object({Attribute.CLASS: ObjectClass.DATA, Attribute.TOKEN: True, Attribute.LABEL: "x"})
    files = _token_files(token)
    assert files
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_imported_secret_value_never_reaches_disk_in_plaintext(session, token) -> None:
    key = session.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES,
                                 Attribute.TOKEN: True, Attribute.VALUE: SECRET, Attribute.LABEL: "imported"})
    assert key[Attribute.VALUE_LEN] == 32
    for path in _token_files(token):
        assert SECRET not in path.read_bytes(), path
        assert SECRET[:16] not in path.read_bytes(), path


def _child_code(token_label: str, script: str) -> list[str]:
    """argv for a second process that opens the same token through the module (its own interpreter)."""
    header = (f"import pkcs11\nfrom pkcs11 import Attribute, ObjectClass\n"
              f"tok = pkcs11.lib({module_path()!r}).get_token(token_label={token_label!r})\n")
    return [sys.executable, "-c", header + textwrap.dedent(script)]


def test_objects_created_by_another_process_are_visible(token) -> None:
    with token.open(user_pin=USER_PIN) as s:  # this process already has the token open and cached
        assert list(s.get_objects({Attribute.LABEL: "from-child"})) == []
        result = subprocess.run(_child_code(token.label, f"""
            with tok.open(rw=True, user_pin={USER_PIN!r}) as s:
                s.create_object({{Attribute.CLASS: ObjectClass.DATA, Attribute.TOKEN: True,
                                  Attribute.LABEL: "from-child"}})
            print("done")
        """), capture_output=True, text=True, timeout=120)
        assert result.stdout.strip() == "done", result.stderr
        assert len(list(s.get_objects({Attribute.LABEL: "from-child"}))) == 1


def test_every_object_acknowledged_before_kill_9_survives(token) -> None:
    child = subprocess.Popen(_child_code(token.label, f"""
        with tok.open(rw=True, user_pin={USER_PIN!r}) as s:
            for i in range(100000):
                s.create_object({{Attribute.CLASS: ObjectClass.DATA, Attribute.TOKEN: True,
                                  Attribute.LABEL: f"k9-{{i}}"}})
                print(i, flush=True)
    """), stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    acknowledged = [int(child.stdout.readline()) for _ in range(40)]
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    with token.open(user_pin=USER_PIN) as s:
        labels = {o[Attribute.LABEL] for o in s.get_objects({Attribute.CLASS: ObjectClass.DATA})}
    assert {f"k9-{i}" for i in acknowledged} <= labels
    assert all(label.startswith("k9-") for label in labels)  # nothing half-written or foreign
