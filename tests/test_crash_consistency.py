"""Crash consistency of token storage: writer processes (tests/crash_writer.py, through the module) create, change
and destroy token objects and are killed with SIGKILL at random moments, several at a time.

Afterwards every object whose creation was acknowledged (CKR_OK) is there exactly once, intact and usable (data
values byte for byte, AES keys encrypt as their known value does), holds the last acknowledged value of the
attribute being changed or the one being written when the kill came, acknowledged destructions stayed destroyed,
nothing half-written or unknown is visible, SQLite finds the database intact, and the token opens cleanly.
tests/test_storage.py has the basic one-writer kill -9 case; this adds concurrency, changes, destruction and value
checks.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from crash_writer import changeable_attribute, data_value, key_value
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from p11_helpers import STORE_DIR, USER_PIN, module_path
from pkcs11 import Attribute, Mechanism, ObjectClass

WRITER = Path(__file__).with_name("crash_writer.py")


@dataclass
class Fate:
    """What the writers' logs say about one label."""

    kind: str = ""
    created: bool = False  # acknowledged
    creating: bool = False  # attempted, maybe not acknowledged
    ids: set[str] = field(default_factory=lambda: {"v0"})  # the acknowledged value and any in-flight one
    destroyed: bool = False
    destroying: bool = False


class Writer:
    def __init__(self, token_label: str, name: str, seed: int, count: int) -> None:
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.proc = subprocess.Popen([sys.executable, str(WRITER), module_path(), token_label, USER_PIN, name,
                                      str(seed), str(count)], stdout=subprocess.PIPE, text=True)
        self.reader = threading.Thread(target=self._read)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.endswith("\n"):
                self.lines.append(line.split())
            if line.startswith("READY"):
                self.ready.set()
        self.ready.set()

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        assert self.wait() == -signal.SIGKILL, "the writer had stopped by itself"

    def wait(self) -> int:
        code = self.proc.wait(timeout=300)
        self.reader.join(timeout=60)
        return code


def ledger(writers: list[Writer]) -> dict[str, Fate]:
    fates: dict[str, Fate] = {}
    for writer in writers:
        last_id: dict[str, str] = {}
        for words in writer.lines:
            if words[0] not in ("TRY", "OK"):
                continue
            state, op, label, new_id = words
            fate = fates.setdefault(label, Fate())
            if op.startswith("CREATE"):
                fate.kind = op.removeprefix("CREATE_")
                fate.creating |= state == "TRY"
                fate.created |= state == "OK"
            elif op == "SET_ID":
                if state == "TRY":
                    fate.ids = {last_id.get(label, "v0"), new_id}
                else:
                    last_id[label] = new_id
                    fate.ids = {new_id}
            elif op == "DESTROY":
                fate.destroying |= state == "TRY"
                fate.destroyed |= state == "OK"
    return fates


def aes_ecb(key: bytes, block: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def check_token(token, fates: dict[str, Fate]) -> None:  # type: ignore[no-untyped-def]
    """The token as a fresh session sees it against the writers' ledger."""
    with token.open(user_pin=USER_PIN) as session:
        seen: dict[str, int] = {}
        for obj in session.get_objects({Attribute.TOKEN: True}):
            label = obj[Attribute.LABEL]
            seen[label] = seen.get(label, 0) + 1
            fate = fates.get(label)
            assert fate is not None and fate.creating, f"{label!r} was never written by anyone"
            assert not fate.destroyed, f"{label} came back after an acknowledged C_DestroyObject"
            changed = obj[changeable_attribute(fate.kind)]
            changed = changed.decode() if isinstance(changed, bytes) else changed
            assert changed in fate.ids, f"{label}: {changed!r} is not one of {fate.ids}"
            if fate.kind == "DATA":
                assert obj[Attribute.CLASS] == ObjectClass.DATA and obj[Attribute.VALUE] == data_value(label)
            else:
                assert obj[Attribute.CLASS] == ObjectClass.SECRET_KEY
                block = bytes(range(16))
                assert obj.encrypt(block, mechanism=Mechanism.AES_ECB) == aes_ecb(key_value(label), block), label
        assert all(count == 1 for count in seen.values()), {k: v for k, v in seen.items() if v > 1}
        lost = [label for label, fate in fates.items() if fate.created and not fate.destroying and label not in seen]
        assert not lost, f"acknowledged objects lost: {lost}"


def check_database(token) -> None:  # type: ignore[no-untyped-def]
    path = Path(STORE_DIR) / f"token-{token.slot.slot_id}.sqlite3"
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_writers_killed_at_random_points_lose_nothing_acknowledged_and_leave_nothing_half_written(token) -> None:
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    writers: list[Writer] = []
    for round_ in range(3):
        batch = [Writer(token.label, f"r{round_}w{i}", rng.randrange(1 << 30), 100000) for i in range(4)]
        for writer in batch:
            assert writer.ready.wait(timeout=120), "a writer never opened the token"
        for writer in batch:  # each dies at its own random moment, the others still writing
            time.sleep(rng.uniform(0.05, 1.0))
            writer.kill()
        writers += batch
        acknowledged = sum(1 for w in batch for words in w.lines if words[0] == "OK")
        assert acknowledged >= 4, "the writers were killed before doing anything"
    fates = ledger(writers)
    in_flight = sum(1 for f in fates.values() if f.creating != f.created or f.destroying != f.destroyed)
    print(f"{len(fates)} objects written, {in_flight} creations or destructions cut short by the kill")
    check_database(token)
    check_token(token, fates)


def test_four_concurrent_writers_lose_nothing(token) -> None:
    writers = [Writer(token.label, f"c{i}", 1000 + i, 40) for i in range(4)]
    assert [w.wait() for w in writers] == [0, 0, 0, 0]
    assert all(w.lines[-1] == ["DONE"] for w in writers)
    fates = ledger(writers)
    assert all(f.created == f.creating and f.destroyed == f.destroying for f in fates.values())
    check_database(token)
    check_token(token, fates)
    with token.open(user_pin=USER_PIN) as session:
        present = {o[Attribute.LABEL] for o in session.get_objects({Attribute.TOKEN: True})}
    assert present == {label for label, fate in fates.items() if fate.created and not fate.destroyed}
